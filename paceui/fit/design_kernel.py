"""Numba kernel of the linear design matrix: per structure, the energy, force and virial rows of every
C-tilde basis entry (rank-1 entries, then product combinations) of a potential with linear embeddings.

For F(ρ) = ρ the atomic energy is E_i = f_i Σ_d w_d ρ_d + (core terms), ρ_d = Σ_e c̃_{e,d} B_e(i), so each
entry e has the energy column f_i B_e(i), the pair column ∂(f_i B_e(i))/∂r_ij = f_i ∂B_e/∂r_ij + B_e ∂f_i/∂r_ij
(force rows +pair on atom i, −pair on atom j) and the virial column Σ_p pair ⊗ r_p. The densities' weights
w_d and the map from C-tilde entries to function coefficients are applied by the caller. Parallel over
structures (an atom's rows are written only by the atoms of its own structure).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from paceui.ace.contraction import contract_block, crad_dot
from paceui.ace.harmonics import lm_index, ylm_with_grad
from paceui.ace.kernels import BI_CODE, BI_LMAX, BI_NBASE, BI_NRAD, BP_DIN, BP_RC, BP_RIN
from paceui.ace.radial import INNER_ZBL, core_repulsion, poly_switch, radial_basis
from paceui.fit.kernels import _sign_conj


@nb.njit(nogil=True, cache=True, inline="always")
def _add_pair_rows(out_f: np.ndarray, out_w: np.ndarray, s: int, i: int, j: int, col: int, fcut: float, b0: float,
                   dbx: float, dby: float, dbz: float, ux: float, uy: float, uz: float, rx: float, ry: float,
                   rz: float) -> None:
    """Column col's pair derivative ∂(f_i B)/∂r_ij = f_i ∇B + B ∂f_i/∂r_ij (b0 = B·∂f_i/∂r along û) into the
    force rows of atoms i (+) and j (−) and the virial rows of structure s."""
    px, py, pz = fcut * dbx + b0 * ux, fcut * dby + b0 * uy, fcut * dbz + b0 * uz
    out_f[3 * i, col] += px
    out_f[3 * i + 1, col] += py
    out_f[3 * i + 2, col] += pz
    out_f[3 * j, col] -= px
    out_f[3 * j + 1, col] -= py
    out_f[3 * j + 2, col] -= pz
    out_w[s, 0, col] += px * rx
    out_w[s, 1, col] += px * ry
    out_w[s, 2, col] += px * rz
    out_w[s, 3, col] += py * rx
    out_w[s, 4, col] += py * ry
    out_w[s, 5, col] += py * rz
    out_w[s, 6, col] += pz * rx
    out_w[s, 7, col] += pz * ry
    out_w[s, 8, col] += pz * rz


@nb.njit(parallel=True, nogil=True, cache=True)
def design_structures(struct_off, species, nbr_off, nbr_j, vec, b_int, b_par, crad, inner, e_par, dmax,
                      sp_r1, r1_aidx, sp_fn, fn_c0, comb_aidx, comb_m, comb_rank,
                      nmax, lmax, kmax, rmax, out_e, out_f, out_w):
    """Add the design entries of structures 0..S-1 to out_e[S, n_ct], out_f[3N, n_ct] (row 3i+a: force
    component a of atom i, F = −∂E/∂r) and out_w[S, 9, n_ct] (W_ab = Σ_p (∂E_i/∂r_ij)_a (r_ij)_b, row 3a+b);
    columns: the n_r1 rank-1 entries, then the combinations. Arrays must be zero on entry."""
    n_struct = struct_off.shape[0] - 1
    S = b_int.shape[0]
    nlm = (lmax + 1) * (lmax + 2) // 2
    gsz = S * kmax * nlm
    asz = S * nmax * nlm
    n_r1 = r1_aidx.shape[0]
    n_comb = comb_rank.shape[0]
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
        dphi = np.empty(mn)
        G = np.empty(gsz, np.complex128)
        A = np.empty(asz, np.complex128)
        dA = np.empty((nmax * nlm, 3), np.complex128)
        Bv = np.empty(n_r1 + n_comb)
        W = np.empty((n_comb, rmax + 1), np.complex128)
        fa = np.empty(rmax + 1, np.complex128)
        pa = np.empty(rmax + 1, np.complex128)
        sa = np.empty(rmax + 1, np.complex128)
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
                if r >= b_par[mu_i, mu_j, BP_RC]:
                    uu[qq, 0] = 0.0  # marks a pair beyond the cutoff
                    uu[qq, 1] = 0.0
                    uu[qq, 2] = 0.0
                    dphi[qq] = 0.0
                    continue
                ux, uy, uz = dx / r, dy / r, dz / r
                uu[qq, 0], uu[qq, 1], uu[qq, 2] = ux, uy, uz
                bp = b_par[mu_i, mu_j]
                nb_ = b_int[mu_i, mu_j, BI_NBASE]
                lb = b_int[mu_i, mu_j, BI_LMAX]
                nlm_b = lm_index(lb, lb) + 1
                radial_basis(b_int[mu_i, mu_j, BI_CODE], bp[0], bp[1], bp[2], bp[3], bp[4], inner, nb_, r,
                             gk[qq], dgk[qq], T, dT)
                ylm_with_grad(ux, uy, uz, r, lb, P, dP, Yq, dYq)
                for lm in range(nlm_b):
                    Y[qq, lm] = Yq[lm]
                    dY[qq, lm, 0] = dYq[lm, 0]
                    dY[qq, lm, 1] = dYq[lm, 1]
                    dY[qq, lm, 2] = dYq[lm, 2]
                phi, dph = core_repulsion(inner, bp[5], bp[6], bp[1], bp[2], bp[3], bp[4], bp[7], bp[8], r)
                dphi[qq] = dph
                rho_core += phi
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
            # ---- basis values and the partial products of every combination
            for f in range(sp_r1[mu_i], sp_r1[mu_i + 1]):
                Bv[f] = G[r1_aidx[f] * nlm].real
            for fn in range(sp_fn[mu_i], sp_fn[mu_i + 1]):
                for cc in range(fn_c0[fn], fn_c0[fn + 1]):
                    rk = comb_rank[cc]
                    for t in range(rk):
                        fa[t] = _sign_conj(A[comb_aidx[cc, t]], comb_m[cc, t])
                    pa[0] = 1.0
                    for t in range(rk):
                        pa[t + 1] = pa[t] * fa[t]
                    sa[rk] = 1.0
                    for t in range(rk - 1, -1, -1):
                        sa[t] = sa[t + 1] * fa[t]
                    Bv[n_r1 + cc] = pa[rk].real
                    for t in range(rk):
                        W[cc, t] = _sign_conj(pa[t] * sa[t + 1], comb_m[cc, t])
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
            r1lo, r1hi = sp_r1[mu_i], sp_r1[mu_i + 1]
            clo, chi = fn_c0[sp_fn[mu_i]], fn_c0[sp_fn[mu_i + 1]]
            for f in range(r1lo, r1hi):
                out_e[s, f] += fcut * Bv[f]
            for cc in range(clo, chi):
                out_e[s, n_r1 + cc] += fcut * Bv[n_r1 + cc]
            # ---- pair derivatives
            for p in range(nbr_off[i], nbr_off[i + 1]):
                qq = p - nbr_off[i]
                if uu[qq, 0] == 0.0 and uu[qq, 1] == 0.0 and uu[qq, 2] == 0.0:
                    continue
                j = nbr_j[p]
                mu_j = species[j]
                lb = b_int[mu_i, mu_j, BI_LMAX]
                nb_ = b_int[mu_i, mu_j, BI_NBASE]
                ux, uy, uz = uu[qq, 0], uu[qq, 1], uu[qq, 2]
                # ∂f_i/∂r_ij (a vector along û)
                sf = dfc * dphi[qq]
                if qq == qmin:
                    sf += dfr
                # dA[n, lm] = ∇(R_nl Ŷ_lm) = R_nl' û Ŷ_lm + R_nl ∇Ŷ_lm for the neighbour's species block (M11)
                for n in range(b_int[mu_i, mu_j, BI_NRAD]):
                    for l in range(lb + 1):
                        R = crad_dot(crad, mu_i, mu_j, n, l, nb_, gk[qq], 0, 1)
                        dR = crad_dot(crad, mu_i, mu_j, n, l, nb_, dgk[qq], 0, 1)
                        for m in range(l + 1):
                            lm = lm_index(l, m)
                            yv = Y[qq, lm]
                            dA[n * nlm + lm, 0] = dR * ux * yv + R * dY[qq, lm, 0]
                            dA[n * nlm + lm, 1] = dR * uy * yv + R * dY[qq, lm, 1]
                            dA[n * nlm + lm, 2] = dR * uz * yv + R * dY[qq, lm, 2]
                blk0 = mu_j * nmax * nlm
                blk1 = blk0 + nmax * nlm
                for col in range(r1lo, r1hi):
                    a = r1_aidx[col]
                    if a // kmax != mu_j:
                        dbx, dby, dbz = 0.0, 0.0, 0.0
                    else:
                        k = a - mu_j * kmax
                        yv = Y[qq, 0]
                        g0, g1 = gk[qq, k], dgk[qq, k]
                        dbx = (g1 * ux * yv + g0 * dY[qq, 0, 0]).real
                        dby = (g1 * uy * yv + g0 * dY[qq, 0, 1]).real
                        dbz = (g1 * uz * yv + g0 * dY[qq, 0, 2]).real
                    _add_pair_rows(out_f, out_w, s, i, j, col, fcut, Bv[col] * sf, dbx, dby, dbz, ux, uy, uz,
                                   vec[p, 0], vec[p, 1], vec[p, 2])
                for cc in range(clo, chi):
                    dbx, dby, dbz = 0.0, 0.0, 0.0
                    for t in range(comb_rank[cc]):
                        ai = comb_aidx[cc, t]
                        if ai < blk0 or ai >= blk1:
                            continue
                        w = W[cc, t]
                        loc = ai - blk0
                        dbx += (w * dA[loc, 0]).real
                        dby += (w * dA[loc, 1]).real
                        dbz += (w * dA[loc, 2]).real
                    col = n_r1 + cc
                    _add_pair_rows(out_f, out_w, s, i, j, col, fcut, Bv[col] * sf, dbx, dby, dbz, ux, uy, uz,
                                   vec[p, 0], vec[p, 1], vec[p, 2])
