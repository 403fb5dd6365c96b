"""Numba kernel of the linear design matrix: per structure, the energy, force and virial rows of every trained
function coefficient (θ column) of a potential with linear embeddings.

For F(ρ) = ρ the atomic energy is E_i = f_i Σ_c X_c(i) θ_c + (core terms), where a column's basis value
X_c(i) = Σ_e M_ec B_e(i) sums the C-tilde entries e (rank-1 radial sums and m-combinations Re Π_t A_t, with
the density weights w_d) that the column's function owns (:mod:`paceui.fit.design_layout`). So the column has
the energy entry f_i X_c(i), the pair entry ∂(f_i X_c)/∂r_ij = f_i ∂X_c/∂r_ij + X_c ∂f_i/∂r_ij (force rows
+pair on atom i, −pair on atom j) and the virial entry Σ_p pair ⊗ r_p. With the per-atom weights

    Ω_c[a] = Σ_{e, t: A-index of factor t of e = a} M_ec (−1)^m conj^[m<0] Π_{s≠t} A_s      (docs/loss.md (L14))

∂X_c/∂r_ij = Re Σ_a Ω_c[a] ∂A_a/∂r_ij with ∂A_{μnlm}/∂r_ij = R_nl' r̂ Ŷ_lm + R_nl ∇Ŷ_lm (docs/model.md (M11),
(M15)) for the neighbour's species block, all in real arithmetic; each column touches a handful of A entries.
Parallel over structures (an atom's rows are written only by the atoms of its own structure: no atomics).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from paceui.ace.contraction import contract_block, crad_dot
from paceui.ace.harmonics import lm_index, ylm_with_grad
from paceui.ace.kernels import (
    BI_CODE,
    BI_LMAX,
    BI_NBASE,
    BI_NRAD,
    BP_DC,
    BP_DIN,
    BP_LAM,
    BP_LAMC,
    BP_PRE,
    BP_RC,
    BP_RIN,
    BP_ZI,
    BP_ZJ,
    RADIAL_TABLE,
    spline_g_phi,
)
from paceui.ace.radial import INNER_ZBL, core_repulsion, poly_switch, radial_basis
from paceui.fit.kernels import _sign_conj

COL_BLOCK = 128
"""Columns whose pair entries are summed together (acc: 128 × 3 × pairs doubles, in L2 beside ∂A)."""


@nb.njit(nogil=True, cache=True, inline="always")
def _pair_rows(out_f: np.ndarray, out_w: np.ndarray, want_w: bool, s: int, j: int, col: int, fi: np.ndarray, u: int,
               fcut: float, b0: float, dbx: float, dby: float, dbz: float, ux: float, uy: float, uz: float,
               rx: float, ry: float, rz: float) -> None:
    """Column col's pair entry ∂(f_i X)/∂r_ij = f_i ∇X + X ∂f_i/∂r_ij (b0 = X·∂f_i/∂r along û): − on atom j's
    force rows, + into the atom's own accumulator fi[u], and into structure s's virial rows."""
    px, py, pz = fcut * dbx + b0 * ux, fcut * dby + b0 * uy, fcut * dbz + b0 * uz
    fi[u, 0] += px
    fi[u, 1] += py
    fi[u, 2] += pz
    out_f[j, col, 0] -= px
    out_f[j, col, 1] -= py
    out_f[j, col, 2] -= pz
    if want_w:
        out_w[s, col, 0] += px * rx
        out_w[s, col, 1] += px * ry
        out_w[s, col, 2] += px * rz
        out_w[s, col, 3] += py * rx
        out_w[s, col, 4] += py * ry
        out_w[s, col, 5] += py * rz
        out_w[s, col, 6] += pz * rx
        out_w[s, col, 7] += pz * ry
        out_w[s, col, 8] += pz * rz


@nb.njit(parallel=True, nogil=True, cache=True)
def design_structures(struct_off, species, nbr_off, nbr_j, vec, b_int, b_par, crad, inner, e_par, dmax,
                      sp_r1, r1_aidx, sp_fn, fn_c0, comb_aidx, comb_m, comb_rank, nmax, lmax, kmax, rmax,
                      sp_col, col_ids, sp_r1c, r1_cols, cm_ptr, cm_col, cm_val, cm_slot, sl_ptr, sl_col, ent_loc,
                      r1_ptr, r1_a, r1_v, want_w, out_e, out_f, out_w, radial, sp_tab, sp_scale):
    """Add the design entries of structures 0..S-1 to out_e[S, P], out_f[N, P, 3] (force component a of atom i,
    F = −∂E/∂r) and, with ``want_w``, out_w[S, P, 9] (W_ab = Σ_p (∂E_i/∂r_ij)_a (r_ij)_b, entry 3a+b).
    The column layout (sp_col … r1_v) is :class:`paceui.fit.design_layout.DesignLayout`. Arrays must be zero.
    g_k and φ as the loss evaluates them: from the fit's table where ``radial`` is RADIAL_TABLE, else analytic."""
    n_struct = struct_off.shape[0] - 1
    S = b_int.shape[0]
    nlm = (lmax + 1) * (lmax + 2) // 2
    gsz = S * kmax * nlm
    asz = S * nmax * nlm
    n_r1 = r1_aidx.shape[0]
    n_col = r1_ptr.shape[0] - 1
    n_slot = ent_loc.shape[0]
    for s in nb.prange(n_struct):
        a0, a1 = struct_off[s], struct_off[s + 1]
        mn = 0
        for i in range(a0, a1):
            mn = max(mn, nbr_off[i + 1] - nbr_off[i])
        gk = np.empty((mn, kmax + 2))
        dgk = np.empty((mn, kmax + 2))
        T = np.empty(kmax + 2)
        dT = np.empty(kmax + 2)
        P = np.empty(nlm)
        dP = np.empty(nlm)
        Yq = np.empty(nlm, np.complex128)
        dYq = np.empty((nlm, 3), np.complex128)
        Y = np.empty((mn, nlm), np.complex128)
        dY = np.empty((mn, nlm, 3), np.complex128)
        uu = np.empty((mn, 3))
        inside = np.empty(mn, np.bool_)
        dphi = np.empty(mn)
        G = np.empty(gsz, np.complex128)
        A = np.empty(asz, np.complex128)
        dAp = np.empty((nmax * nlm, 6, mn))  # per pair: Re ∂A/∂r (x, y, z), Im ∂A/∂r (x, y, z)
        plist = np.empty(mn, np.int64)
        sfq = np.empty(mn)
        acc = np.empty((COL_BLOCK, 3, mn))
        Xc = np.empty(n_col)
        Wc = np.empty((n_slot, 2))
        fi = np.empty((n_col, 3))
        fa = np.empty(rmax + 1, np.complex128)
        pa = np.empty(rmax + 1, np.complex128)
        sa = np.empty(rmax + 1, np.complex128)
        wt = np.empty(rmax + 1, np.complex128)
        for i in range(a0, a1):
            mu_i = species[i]
            G[:] = 0.0
            rho_core = 0.0
            dmin = 1e300
            qmin = -1
            r_min = 0.0
            for p in range(nbr_off[i], nbr_off[i + 1]):
                j = nbr_j[p]
                mu_j = species[j]
                dx, dy, dz = vec[p, 0], vec[p, 1], vec[p, 2]
                r = math.sqrt(dx * dx + dy * dy + dz * dz)
                qq = p - nbr_off[i]
                # docs/model.md (M1)
                inside[qq] = r < b_par[mu_i, mu_j, BP_RC]
                if not inside[qq]:
                    continue
                ux, uy, uz = dx / r, dy / r, dz / r
                uu[qq, 0], uu[qq, 1], uu[qq, 2] = ux, uy, uz
                bp = b_par[mu_i, mu_j]
                nb_ = b_int[mu_i, mu_j, BI_NBASE]
                lb = b_int[mu_i, mu_j, BI_LMAX]
                nlm_b = lm_index(lb, lb) + 1
                if radial == RADIAL_TABLE:
                    bb = mu_i * S + mu_j
                    phi, dph = spline_g_phi(sp_tab, bb, sp_scale[bb], nb_, r, gk, dgk, qq)
                else:
                    radial_basis(b_int[mu_i, mu_j, BI_CODE], bp[BP_LAM], bp[BP_RC], bp[BP_DC], bp[BP_RIN],
                                 bp[BP_DIN], inner, nb_, r, gk[qq], dgk[qq], T, dT)
                    phi, dph = core_repulsion(inner, bp[BP_PRE], bp[BP_LAMC], bp[BP_RC], bp[BP_DC], bp[BP_RIN],
                                              bp[BP_DIN], bp[BP_ZI], bp[BP_ZJ], r)
                ylm_with_grad(ux, uy, uz, r, lb, P, dP, Yq, dYq)
                for lm in range(nlm_b):
                    Y[qq, lm] = Yq[lm]
                    dY[qq, lm, 0] = dYq[lm, 0]
                    dY[qq, lm, 1] = dYq[lm, 1]
                    dY[qq, lm, 2] = dYq[lm, 2]
                dphi[qq] = dph
                rho_core += phi
                # docs/loss.md (L5): G
                for k in range(nb_):
                    base = (mu_j * kmax + k) * nlm
                    g0 = gk[qq, k]
                    for lm in range(nlm_b):
                        G[base + lm] += g0 * Yq[lm]
                if inner == INNER_ZBL:
                    d = r - (b_par[mu_i, mu_j, BP_RIN] - b_par[mu_i, mu_j, BP_DIN])
                    if d < dmin:
                        dmin, r_min, qmin = d, r, qq
            # ---- A = crad·G, docs/loss.md (L5)
            A[:] = 0.0
            for mu in range(S):
                contract_block(crad, mu_i, mu, b_int[mu_i, mu, BI_NRAD], b_int[mu_i, mu, BI_LMAX],
                               b_int[mu_i, mu, BI_NBASE], G, mu * kmax * nlm, A, mu * nmax * nlm, nlm)
            # ---- column values X_c and weights Ω_c of the atom's species
            c_lo, c_hi = sp_col[mu_i], sp_col[mu_i + 1]
            r_lo, r_hi = sp_r1c[mu_i], sp_r1c[mu_i + 1]
            nc = c_hi - c_lo
            fi[:nc + r_hi - r_lo, :] = 0.0
            for u in range(c_lo, c_hi):
                Xc[col_ids[u]] = 0.0
            for q in range(sl_ptr[mu_i, 0], sl_ptr[mu_i, S]):
                Wc[q, 0] = 0.0
                Wc[q, 1] = 0.0
            for u in range(r_lo, r_hi):
                col = r1_cols[u]
                Xc[col] = 0.0
                for q in range(r1_ptr[col], r1_ptr[col + 1]):
                    Xc[col] += r1_v[q] * G[r1_a[q] * nlm].real  # A1 = G[μ, k, 0, 0]
            for fn in range(sp_fn[mu_i], sp_fn[mu_i + 1]):
                for cc in range(fn_c0[fn], fn_c0[fn + 1]):
                    rk = comb_rank[cc]
                    for t in range(rk):
                        fa[t] = _sign_conj(A[comb_aidx[cc, t]], comb_m[cc, t])
                    # docs/loss.md (L13): prefix and suffix products
                    pa[0] = 1.0
                    for t in range(rk):
                        pa[t + 1] = pa[t] * fa[t]
                    sa[rk] = 1.0
                    for t in range(rk - 1, -1, -1):
                        sa[t] = sa[t + 1] * fa[t]
                    b = pa[rk].real
                    for t in range(rk):  # docs/loss.md (L14): ∂ Re Π / ∂A of factor t, as Re(w ∂A)
                        wt[t] = _sign_conj(pa[t] * sa[t + 1], comb_m[cc, t])
                    for q in range(cm_ptr[n_r1 + cc], cm_ptr[n_r1 + cc + 1]):
                        v = cm_val[q]
                        Xc[cm_col[q]] += v * b
                        for t in range(rk):
                            sl = cm_slot[q, t]
                            Wc[sl, 0] += v * wt[t].real
                            Wc[sl, 1] += v * wt[t].imag
            # ---- inner cutoff factor f_i and its derivative
            if inner == INNER_ZBL:
                fcut, dfr = 1.0, 0.0
                if qmin >= 0:
                    pj = species[nbr_j[nbr_off[i] + qmin]]
                    din = b_par[mu_i, pj, BP_DIN]
                    fcut, dft = poly_switch(b_par[mu_i, pj, BP_RIN] - r_min, din, din)
                    dfr = -dft
                dfc = 0.0
            else:
                fcut, dfc = poly_switch(rho_core, e_par[mu_i, 2 * dmax], e_par[mu_i, 2 * dmax + 1])
                dfr = 0.0
                qmin = -1
            for u in range(c_lo, c_hi):
                out_e[s, col_ids[u]] += fcut * Xc[col_ids[u]]
            for u in range(r_lo, r_hi):
                out_e[s, r1_cols[u]] += fcut * Xc[r1_cols[u]]
            for qq in range(nbr_off[i + 1] - nbr_off[i]):  # ∂f_i/∂r_ij of each pair inside (a vector along û)
                if inside[qq]:
                    sfq[qq] = dfc * dphi[qq] + (dfr if qq == qmin else 0.0)
            # ---- pair derivatives, per neighbour species μ: ∂A/∂r_ij of the block's pairs, then per block of
            # columns Re Σ Ω ∂A for all those pairs at once (the pairs innermost: one slot's weight against a
            # contiguous row of pairs), then the columns' pair entries
            for mu in range(S):
                npg = 0
                for p in range(nbr_off[i], nbr_off[i + 1]):
                    qq = p - nbr_off[i]
                    if inside[qq] and species[nbr_j[p]] == mu:
                        plist[npg] = qq
                        npg += 1
                if npg == 0:
                    continue
                lb = b_int[mu_i, mu, BI_LMAX]
                nb_ = b_int[mu_i, mu, BI_NBASE]
                # ∂A[μ, n, l, m]/∂r_ij = R_nl' û Ŷ_lm + R_nl ∇Ŷ_lm, docs/model.md (M11), (M15)
                for k in range(npg):
                    qq = plist[k]
                    ux, uy, uz = uu[qq, 0], uu[qq, 1], uu[qq, 2]
                    for n in range(b_int[mu_i, mu, BI_NRAD]):
                        for l in range(lb + 1):
                            R = crad_dot(crad, mu_i, mu, n, l, nb_, gk[qq], 0, 1)
                            dR = crad_dot(crad, mu_i, mu, n, l, nb_, dgk[qq], 0, 1)
                            for m in range(l + 1):
                                lm = lm_index(l, m)
                                e = n * nlm + lm
                                yr, yi = Y[qq, lm].real, Y[qq, lm].imag
                                dAp[e, 0, k] = dR * ux * yr + R * dY[qq, lm, 0].real
                                dAp[e, 1, k] = dR * uy * yr + R * dY[qq, lm, 1].real
                                dAp[e, 2, k] = dR * uz * yr + R * dY[qq, lm, 2].real
                                dAp[e, 3, k] = dR * ux * yi + R * dY[qq, lm, 0].imag
                                dAp[e, 4, k] = dR * uy * yi + R * dY[qq, lm, 1].imag
                                dAp[e, 5, k] = dR * uz * yi + R * dY[qq, lm, 2].imag
                q = sl_ptr[mu_i, mu]
                q_end = sl_ptr[mu_i, mu + 1]
                for u0 in range(0, nc, COL_BLOCK):
                    u1 = min(nc, u0 + COL_BLOCK)
                    acc[:u1 - u0, :, :npg] = 0.0
                    while q < q_end and sl_col[q] < u1:  # slots are sorted by column
                        ub = sl_col[q] - u0
                        e = ent_loc[q]
                        wr, wi = Wc[q, 0], Wc[q, 1]
                        for k in range(npg):
                            acc[ub, 0, k] += wr * dAp[e, 0, k] - wi * dAp[e, 3, k]
                            acc[ub, 1, k] += wr * dAp[e, 1, k] - wi * dAp[e, 4, k]
                            acc[ub, 2, k] += wr * dAp[e, 2, k] - wi * dAp[e, 5, k]
                        q += 1
                    for k in range(npg):
                        qq = plist[k]
                        p = nbr_off[i] + qq
                        j = nbr_j[p]
                        ux, uy, uz = uu[qq, 0], uu[qq, 1], uu[qq, 2]
                        rx, ry, rz = vec[p, 0], vec[p, 1], vec[p, 2]
                        sf = sfq[qq]
                        for u in range(u0, u1):
                            col = col_ids[c_lo + u]
                            _pair_rows(out_f, out_w, want_w, s, j, col, fi, u, fcut, Xc[col] * sf,
                                       acc[u - u0, 0, k], acc[u - u0, 1, k], acc[u - u0, 2, k],
                                       ux, uy, uz, rx, ry, rz)
            for p in range(nbr_off[i], nbr_off[i + 1]):  # rank 1: ∇(g_k Ŷ_00)
                qq = p - nbr_off[i]
                if not inside[qq]:
                    continue
                j = nbr_j[p]
                mu_j = species[j]
                ux, uy, uz = uu[qq, 0], uu[qq, 1], uu[qq, 2]
                rx, ry, rz = vec[p, 0], vec[p, 1], vec[p, 2]
                sf = sfq[qq]
                y0r = Y[qq, 0].real
                d0x, d0y, d0z = dY[qq, 0, 0].real, dY[qq, 0, 1].real, dY[qq, 0, 2].real
                for u in range(r_lo, r_hi):
                    col = r1_cols[u]
                    dbx, dby, dbz = 0.0, 0.0, 0.0
                    for q in range(r1_ptr[col], r1_ptr[col + 1]):
                        a = r1_a[q]
                        if a // kmax == mu_j:
                            k = a - mu_j * kmax
                            gv, dgv = gk[qq, k] * r1_v[q], dgk[qq, k] * r1_v[q]
                            dbx += dgv * ux * y0r + gv * d0x
                            dby += dgv * uy * y0r + gv * d0y
                            dbz += dgv * uz * y0r + gv * d0z
                    _pair_rows(out_f, out_w, want_w, s, j, col, fi, nc + u - r_lo, fcut, Xc[col] * sf, dbx, dby,
                               dbz, ux, uy, uz, rx, ry, rz)
            # ---- the atom's own force rows: Σ_j of the pair entries
            for u in range(c_lo, c_hi):
                col = col_ids[u]
                out_f[i, col, 0] += fi[u - c_lo, 0]
                out_f[i, col, 1] += fi[u - c_lo, 1]
                out_f[i, col, 2] += fi[u - c_lo, 2]
            for u in range(r_lo, r_hi):
                col = r1_cols[u]
                out_f[i, col, 0] += fi[nc + u - r_lo, 0]
                out_f[i, col, 1] += fi[nc + u - r_lo, 1]
                out_f[i, col, 2] += fi[nc + u - r_lo, 2]
