"""Numba kernels of the ACE evaluator: atomic energies and pair forces ∂E_i/∂r_ij.

Parallel over chunks of atoms; each chunk owns its scratch arrays and writes only its own atoms'
energies and pairs' forces, so no atomics are needed and results are deterministic. The layout of
the compiled arrays is described in :mod:`paceui.ace.evaluator`.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from paceui.ace import precompile
from paceui.ace.chunks import run_chunks
from paceui.ace.contraction import crad_dot2
from paceui.ace.harmonics import LMAX_TABLE, lm_index, n_lm, ylm_real_row
from paceui.ace.precompile import KernelSpec
from paceui.ace.radial import INNER_ZBL, core_repulsion, embedding, poly_switch, radial_basis

# b_int[mu_i, mu_j, :] columns
BI_CODE, BI_NRAD, BI_LMAX, BI_NBASE = 0, 1, 2, 3
# b_par[mu_i, mu_j, :] columns
BP_LAM, BP_RC, BP_DC, BP_RIN, BP_DIN, BP_PRE, BP_LAMC, BP_ZI, BP_ZJ = range(9)
# where ace_atom_range takes a pair's radial functions from (CompiledModel.radial): analytic; the spline table
# with g_k, R_nl, φ columns (the fit's, docs/model.md (M12)); the evaluator's, rank-1 densities folded in
RADIAL_ANALYTIC, RADIAL_TABLE, RADIAL_FOLDED = 0, 1, 2


@nb.njit(nogil=True, cache=True, inline="always")
def _hermite(tab: np.ndarray, b: int, m: int, f: int, w: float, scale: float) -> tuple[float, float]:
    """Column f of bond b's table on segment m at w ∈ [0, 1): the value and its r-derivative (M12)."""
    c0, c1, c2, c3 = tab[b, m, 0, f], tab[b, m, 1, f], tab[b, m, 2, f], tab[b, m, 3, f]
    return c0 + w * (c1 + w * (c2 + w * c3)), (c1 + w * (2.0 * c2 + 3.0 * w * c3)) * scale


@nb.njit(nogil=True, cache=True, inline="always")
def spline_eval(tab: np.ndarray, b: int, scale: float, nf: int, r: float, out: np.ndarray, dout: np.ndarray,
                q: int) -> None:
    """Cubic Hermite lookup of nf tabulated functions of bond b (tab[b]) at r (docs/model.md (M12)) into row q
    of out, dout."""
    x = r * scale
    m = int(math.floor(x))
    nlut = tab.shape[1] - 1
    if m >= nlut:
        for f in range(nf):
            out[q, f] = 0.0
            dout[q, f] = 0.0
        return
    w = x - m
    for f in range(nf):
        out[q, f], dout[q, f] = _hermite(tab, b, m, f, w, scale)


@nb.njit(nogil=True, cache=True, inline="always")
def spline_g_phi(tab: np.ndarray, b: int, scale: float, kmax: int, r: float, g: np.ndarray, dg: np.ndarray,
                 q: int) -> tuple[float, float]:
    """From a RADIAL_TABLE table: g_k, dg_k/dr (k < kmax) of bond b at r into row q of g, dg, and (φ, dφ/dr),
    the last column; the same bits as :func:`spline_eval` of all columns."""
    spline_eval(tab, b, scale, kmax, r, g, dg, q)
    x = r * scale
    m = int(math.floor(x))
    if m >= tab.shape[1] - 1:
        return 0.0, 0.0
    return _hermite(tab, b, m, tab.shape[3] - 1, x - m, scale)


@nb.njit(nogil=True, cache=True)
def crad_by_k(crad: np.ndarray, b_int: np.ndarray, nr: int) -> np.ndarray:
    """ctr[μi, μj, k, n·(lmax+1) + l] = crad[μi, μj, n, l, k] for n < nradmax, l ≤ lmax of the bond, else 0:
    the radial coefficients with k outermost, for :func:`radial_rows`."""
    S, lmax1, kmax = crad.shape[0], crad.shape[3], crad.shape[4]
    ctr = np.zeros((S, S, kmax, nr))
    for a in range(S):
        for b in range(S):
            for n in range(b_int[a, b, BI_NRAD]):
                for l in range(b_int[a, b, BI_LMAX] + 1):
                    for k in range(b_int[a, b, BI_NBASE]):
                        ctr[a, b, k, n * lmax1 + l] = crad[a, b, n, l, k]
    return ctr


@nb.njit(nogil=True, cache=True, inline="always")
def radial_rows(mu_i: int, mu_j: int, r: float, b_int: np.ndarray, b_par: np.ndarray, ctr: np.ndarray, inner: int,
                kmax: int, nr: int, val: np.ndarray, dval: np.ndarray, q: int, g: np.ndarray, dg: np.ndarray,
                T: np.ndarray, dT: np.ndarray, rv: np.ndarray) -> None:
    """All radial values of a pair without splines, in table order into row q of val, dval: g_k (kmax), R_nl
    (nr = nmax·(lmax+1)), core φ (1); R_nl = Σ_k crad_nlk g_k summed in increasing k (the same sums as
    :func:`paceui.ace.contraction.crad_dot2`) as k-outer updates of all nl at once (contiguous rows of ``ctr``
    from :func:`crad_by_k`; entries past the bond's nradmax, lmax hold ±0). Written in place (no row views:
    their reference counts cost more than the arithmetic); ``rv`` is scratch of 2·nr."""
    nbase = b_int[mu_i, mu_j, BI_NBASE]
    radial_basis(b_int[mu_i, mu_j, BI_CODE], b_par[mu_i, mu_j, BP_LAM], b_par[mu_i, mu_j, BP_RC],
                 b_par[mu_i, mu_j, BP_DC], b_par[mu_i, mu_j, BP_RIN], b_par[mu_i, mu_j, BP_DIN], inner,
                 nbase, r, g, dg, T, dT)
    for k in range(kmax):
        val[q, k] = g[k] if k < nbase else 0.0
        dval[q, k] = dg[k] if k < nbase else 0.0
    g0, d0 = g[0], dg[0]
    for x in range(nr):
        c = ctr[mu_i, mu_j, 0, x]
        rv[x] = c * g0
        rv[nr + x] = c * d0
    for k in range(1, nbase):
        gk, dk = g[k], dg[k]
        for x in range(nr):
            c = ctr[mu_i, mu_j, k, x]
            rv[x] += c * gk
            rv[nr + x] += c * dk
    for x in range(nr):
        val[q, kmax + x] = rv[x]
        dval[q, kmax + x] = rv[nr + x]
    nf = kmax + nr + 1
    phi, dphi = core_repulsion(inner, b_par[mu_i, mu_j, BP_PRE], b_par[mu_i, mu_j, BP_LAMC],
                               b_par[mu_i, mu_j, BP_RC], b_par[mu_i, mu_j, BP_DC], b_par[mu_i, mu_j, BP_RIN],
                               b_par[mu_i, mu_j, BP_DIN], b_par[mu_i, mu_j, BP_ZI], b_par[mu_i, mu_j, BP_ZJ], r)
    val[q, nf - 1] = phi
    dval[q, nf - 1] = dphi


def empty_pair_cache(nlm: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Arrays for ``ace_atoms(store=False)``: nothing is kept."""
    return np.zeros((0, 2)), np.zeros((0, 4, nlm), np.complex128)


@nb.njit(nogil=True, cache=True)
def _atom_range_maxn(offsets: np.ndarray, a0: int, a1: int) -> int:
    mx = 0
    for i in range(a0, a1):
        mx = max(mx, offsets[i + 1] - offsets[i])
    return mx


# docs/model.md (M19), §6: Π_{u≠t} f_u of a rank-rk product from prefix and suffix products
@nb.njit(nogil=True, cache=True, inline="always")
def prefix_suffix(rk: int, fr: np.ndarray, fi: np.ndarray, pr: np.ndarray, pi: np.ndarray, sr: np.ndarray,
                  si: np.ndarray) -> float:
    """pr/pi[t] = Π_{u<t} f_u and sr/si[t] = Π_{u≥t} f_u for 1 ≤ t ≤ rk − 1 (complex f = fr + i fi, rk ≥ 2),
    without the leading 1 (exact); returns Re Π_u f_u. Shared by :func:`ace_atom_range` and the evaluator."""
    pr[1], pi[1] = fr[0], fi[0]
    for t in range(1, rk - 1):
        pr[t + 1] = pr[t] * fr[t] - pi[t] * fi[t]
        pi[t + 1] = pr[t] * fi[t] + pi[t] * fr[t]
    sr[rk - 1], si[rk - 1] = fr[rk - 1], fi[rk - 1]
    for t in range(rk - 2, 0, -1):
        sr[t] = sr[t + 1] * fr[t] - si[t + 1] * fi[t]
        si[t] = sr[t + 1] * fi[t] + si[t + 1] * fr[t]
    return pr[rk - 1] * fr[rk - 1] - pi[rk - 1] * fi[rk - 1]


@nb.njit(nogil=True, cache=True, inline="always")
def others_product(t: int, rk: int, pr: np.ndarray, pi: np.ndarray, sr: np.ndarray, si: np.ndarray
                   ) -> tuple[float, float]:
    """Π_{u≠t} f_u (re, im) from :func:`prefix_suffix`'s products."""
    if t == 0:
        return sr[1], si[1]
    if t == rk - 1:
        return pr[t], pi[t]
    return pr[t] * sr[t + 1] - pi[t] * si[t + 1], pr[t] * si[t + 1] + pi[t] * sr[t + 1]


# docs/model.md (M26)
@nb.njit(nogil=True, cache=True, inline="always")
def pair_terms_nl(nrad: int, lb: int, mu_j: int, nmax: int, nlm: int, lmax1: int, koff: int, q: int,
                  val: np.ndarray, dval: np.ndarray, Abr: np.ndarray, Abi: np.ndarray, Yr: np.ndarray, Yi: np.ndarray,
                  dYr: np.ndarray, dYi: np.ndarray, s_r: float, gx: float, gy: float, gz: float
                  ) -> tuple[float, float, float, float]:
    """The R_nl, Ŷ_lm terms of pair q's ∂E/∂r_ij, added in (n, l, m) order to the caller's sums: s_r (eV/Å,
    along r̂) += Σ R'_nl Re(Ā_nlm Ŷ_lm) and g (eV/Å) += Σ R_nl Re(Ā_nlm ∇Ŷ_lm). R_nl of row q sit at
    val[q, koff + n·(lmax+1) + l]; Ā (contracted densities) in row 0 of Abr, Abi. One body for the spline
    evaluator and the RADIAL_FOLDED path of :func:`ace_atom_range` (the same bits)."""
    for n in range(nrad):
        base = (mu_j * nmax + n) * nlm
        for l in range(lb + 1):
            R = val[q, koff + n * lmax1 + l]
            dR = dval[q, koff + n * lmax1 + l]
            l0 = (l * (l + 1)) // 2
            t0, tx, ty, tz = 0.0, 0.0, 0.0, 0.0
            for lm in range(l0, l0 + l + 1):
                br, bi = Abr[0, base + lm], Abi[0, base + lm]
                t0 += br * Yr[q, lm] - bi * Yi[q, lm]
                tx += br * dYr[q, 0, lm] - bi * dYi[q, 0, lm]
                ty += br * dYr[q, 1, lm] - bi * dYi[q, 1, lm]
                tz += br * dYr[q, 2, lm] - bi * dYi[q, 2, lm]
            s_r += dR * t0
            gx += R * tx
            gy += R * ty
            gz += R * tz
    return s_r, gx, gy, gz


@nb.njit(nogil=True, cache=True)
def ace_atom_range(a0, a1, species, offsets, nbr_j, vec, b_int, b_par, crad, inner, e_int, e_par, E0,
                   sp_r1, r1_aidx, r1_ct, sp_fn, fn_c0, comb_aidx, comb_m, comb_rank, comb_ct,
                   radial, sp_tab, sp_scale, nmax, lmax, kmax, rmax, energies, pairf, store, pc_r, pc_y):
    """:func:`ace_atoms` for the atoms a0..a1−1, serially, with its own scratch arrays.

    Real arithmetic throughout (Ŷ, A and their adjoints as real and imaginary parts); per atom, three
    passes over its pairs: the cutoff filter, the radial functions (a tight loop, so that the spline
    table rows of many pairs are fetched at once), then the harmonics and the A-basis. ``radial`` is one
    of RADIAL_*: with RADIAL_FOLDED the rank-1 functions come folded into the table, one column per
    density (see :func:`fold_rank1`); RADIAL_TABLE reads g_k, R_nl, φ from the table, the columns that
    :func:`radial_rows` computes.
    """
    spline = radial != RADIAL_ANALYTIC
    folded = radial == RADIAL_FOLDED
    S = b_int.shape[0]
    lmax1 = lmax + 1
    nlm = n_lm(lmax)
    dmax = r1_ct.shape[1]
    kc = dmax if folded else kmax  # columns before R_nl: folded rank-1 densities, or g_k
    nf = kc + nmax * lmax1 + 1
    asz = S * nmax * nlm
    mn = _atom_range_maxn(offsets, a0, a1)
    nr = nmax * lmax1
    ctr = crad_by_k(crad, b_int, nr) if not spline else np.zeros((S, S, 1, nr))
    rv = np.empty(2 * nr)
    sel = np.empty(mn, np.int64)
    sj = np.empty(mn, np.int64)
    rr = np.empty(mn)
    uu = np.empty((mn, 3))
    val = np.empty((mn, nf))
    dval = np.empty((mn, nf))
    Yr = np.empty((mn, nlm))
    Yi = np.empty((mn, nlm))
    dYr = np.empty((mn, 3, nlm))
    dYi = np.empty((mn, 3, nlm))
    Ar = np.empty(asz)
    Ai = np.empty(asz)
    A1 = np.empty(S * kmax)
    R1 = np.empty(dmax)
    Abr = np.empty((dmax, asz))
    Abi = np.empty((dmax, asz))
    A1bar = np.empty((dmax, S * kmax))
    rho = np.empty(dmax)
    rbar = np.empty(dmax)
    g = np.empty(kmax + 2)
    dg = np.empty(kmax + 2)
    T = np.empty(kmax + 2)
    dT = np.empty(kmax + 2)
    P = np.empty(nlm)
    dP = np.empty(nlm)
    fr = np.empty(rmax + 1)
    fi = np.empty(rmax + 1)
    pr = np.empty(rmax + 1)
    pi = np.empty(rmax + 1)
    sr = np.empty(rmax + 1)
    si = np.empty(rmax + 1)
    for i in range(a0, a1):
        mu_i = species[i]
        # docs/model.md (M1): the pairs inside the cutoff
        cnt = 0
        for p in range(offsets[i], offsets[i + 1]):
            dx, dy, dz = vec[p, 0], vec[p, 1], vec[p, 2]
            r = math.sqrt(dx * dx + dy * dy + dz * dz)
            mu_j = species[nbr_j[p]]
            if r >= b_par[mu_i, mu_j, BP_RC]:
                continue
            sel[cnt] = p
            sj[cnt] = mu_j
            rr[cnt] = r
            ir = 1.0 / r
            uu[cnt, 0], uu[cnt, 1], uu[cnt, 2] = dx * ir, dy * ir, dz * ir
            cnt += 1
        for q in range(cnt):
            if spline:
                b = mu_i * S + sj[q]
                spline_eval(sp_tab, b, sp_scale[b], nf, rr[q], val, dval, q)
            else:
                radial_rows(mu_i, sj[q], rr[q], b_int, b_par, ctr, inner, kmax, nr, val, dval, q, g, dg, T, dT,
                            rv)
        Ar[:] = 0.0
        Ai[:] = 0.0
        A1[:] = 0.0
        R1[:] = 0.0
        rho_core = 0.0
        dmin = 1e300
        qmin = -1
        for q in range(cnt):
            mu_j = sj[q]
            lb = b_int[mu_i, mu_j, BI_LMAX]
            ylm_real_row(uu[q, 0], uu[q, 1], uu[q, 2], 1.0 / rr[q], lb, P, dP, Yr, Yi, dYr, dYi, q)
            if store:  # g_k (zero beyond the bond's nradbase), φ, Ŷ, ∇Ŷ: not with a folded table
                p = sel[q]
                for k in range(kmax):
                    pc_r[p, k] = val[q, k]
                    pc_r[p, kmax + k] = dval[q, k]
                pc_r[p, 2 * kmax] = val[q, nf - 1]
                pc_r[p, 2 * kmax + 1] = dval[q, nf - 1]
                for lm in range(lm_index(lb, lb) + 1):
                    pc_y[p, 0, lm] = complex(Yr[q, lm], Yi[q, lm])
                    pc_y[p, 1, lm] = complex(dYr[q, 0, lm], dYi[q, 0, lm])
                    pc_y[p, 2, lm] = complex(dYr[q, 1, lm], dYi[q, 1, lm])
                    pc_y[p, 3, lm] = complex(dYr[q, 2, lm], dYi[q, 2, lm])
            # docs/model.md (M14), (M15)
            if folded:
                for d in range(dmax):
                    R1[d] += val[q, d]
            else:
                for k in range(kmax):
                    A1[mu_j * kmax + k] += val[q, k]
            for n in range(b_int[mu_i, mu_j, BI_NRAD]):
                base = (mu_j * nmax + n) * nlm
                for l in range(lb + 1):
                    R = val[q, kc + n * lmax1 + l]
                    l0 = (l * (l + 1)) // 2
                    for lm in range(l0, l0 + l + 1):
                        Ar[base + lm] += R * Yr[q, lm]
                        Ai[base + lm] += R * Yi[q, lm]
            rho_core += val[q, nf - 1]
            if inner == INNER_ZBL:
                d = rr[q] - (b_par[mu_i, mu_j, BP_RIN] - b_par[mu_i, mu_j, BP_DIN])
                if d < dmin:
                    dmin = d
                    qmin = q
        # ---- densities and their per-density adjoints w.r.t. A
        nd = e_int[mu_i, 1]
        Abr[:nd, :] = 0.0
        Abi[:nd, :] = 0.0
        A1bar[:nd, :] = 0.0
        for d in range(nd):
            rho[d] = R1[d]
        for f in range(sp_r1[mu_i], sp_r1[mu_i + 1] if not folded else sp_r1[mu_i]):
            a = r1_aidx[f]
            for d in range(nd):
                rho[d] += r1_ct[f, d] * A1[a]
                A1bar[d, a] += r1_ct[f, d]
        # docs/model.md (M19); factors by (M13); Π_{t≠s} A_t = P_s Q_s from prefix/suffix products (§6)
        for f in range(sp_fn[mu_i], sp_fn[mu_i + 1]):
            for cc in range(fn_c0[f], fn_c0[f + 1]):
                rk = comb_rank[cc]
                for t in range(rk):
                    a = comb_aidx[cc, t]
                    m = comb_m[cc, t]
                    zr, zi = Ar[a], Ai[a]
                    if m < 0:  # (−1)^m conj(A)
                        zi = -zi
                        if m % 2 != 0:
                            zr, zi = -zr, -zi
                    fr[t], fi[t] = zr, zi
                prod_re = prefix_suffix(rk, fr, fi, pr, pi, sr, si)
                for t in range(rk):
                    wr, wi = others_product(t, rk, pr, pi, sr, si)
                    m = comb_m[cc, t]
                    if m < 0:
                        wi = -wi
                        if m % 2 != 0:
                            wr, wi = -wr, -wi
                    a = comb_aidx[cc, t]
                    for d in range(nd):
                        ct = comb_ct[cc, d]
                        Abr[d, a] += ct * wr
                        Abi[d, a] += ct * wi
                for d in range(nd):
                    rho[d] += comb_ct[cc, d] * prod_re
        # ---- embedding, core repulsion, energy
        # docs/model.md (M20)
        e_ace = 0.0
        code = e_int[mu_i, 0]
        for d in range(nd):
            F, dF = embedding(code, rho[d], e_par[mu_i, 2 * d + 1])
            e_ace += e_par[mu_i, 2 * d] * F
            rbar[d] = e_par[mu_i, 2 * d] * dF
        # docs/model.md (M25), else (M24)
        if inner == INNER_ZBL:
            fcut, dfcut_dr = 1.0, 0.0
            if qmin >= 0:
                pj = sj[qmin]
                din = b_par[mu_i, pj, BP_DIN]
                fcut, dft = poly_switch(b_par[mu_i, pj, BP_RIN] - rr[qmin], din, din)
                dfcut_dr = -dft
            energies[i] = e_ace * fcut + rho_core * (1.0 - fcut) + E0[mu_i]
            w_ace, w_core = fcut, 1.0 - fcut
        else:
            fcut, dfc = poly_switch(rho_core, e_par[mu_i, 2 * dmax], e_par[mu_i, 2 * dmax + 1])
            energies[i] = e_ace * fcut + rho_core + E0[mu_i]
            w_ace, w_core = fcut, e_ace * dfc + 1.0
            dfcut_dr = 0.0
        for d in range(nd):
            rbar[d] *= w_ace
        for a in range(asz):  # contract densities: Abar[0] = Σ_d ρ̄_d Abar[d]
            xr, xi = 0.0, 0.0
            for d in range(nd):
                xr += rbar[d] * Abr[d, a]
                xi += rbar[d] * Abi[d, a]
            Abr[0, a] = xr
            Abi[0, a] = xi
        for a in range(S * kmax):
            x1 = 0.0
            for d in range(nd):
                x1 += rbar[d] * A1bar[d, a]
            A1bar[0, a] = x1
        # docs/model.md (M26): ∂E(i)/∂r_ij through R_nl, Ŷ_lm, φ and the switch
        # ---- pair forces ∂E_i/∂r_ij
        for q in range(cnt):
            mu_j = sj[q]
            lb = b_int[mu_i, mu_j, BI_LMAX]
            s_r = w_core * dval[q, nf - 1]
            if q == qmin:
                s_r += (e_ace - rho_core) * dfcut_dr
            if folded:
                for d in range(nd):
                    s_r += rbar[d] * dval[q, d]
            else:
                for k in range(kmax):
                    s_r += A1bar[0, mu_j * kmax + k] * dval[q, k]
            gx, gy, gz = 0.0, 0.0, 0.0
            if not folded:
                # the fit's form, fewer operations (240 instead of 360 for nmax 3, lmax 2), the sums in another
                # order (pair forces within ~1e-15 of the spline path's order): W_lm = Σ_n R_nl Ā_nlm and
                # V_lm = Σ_n R'_nl Ā_nlm, then Re(V_lm Ŷ_lm) into ∂E/∂r and Re(W_lm ∇Ŷ_lm) per lm
                nrad = b_int[mu_i, mu_j, BI_NRAD]
                for l in range(lb + 1):
                    l0 = (l * (l + 1)) // 2
                    for lm in range(l0, l0 + l + 1):
                        wr, wi, vr, vi = 0.0, 0.0, 0.0, 0.0
                        for n in range(nrad):
                            b = (mu_j * nmax + n) * nlm + lm
                            R = val[q, kc + n * lmax1 + l]
                            dR = dval[q, kc + n * lmax1 + l]
                            br, bi = Abr[0, b], Abi[0, b]
                            wr += R * br
                            wi += R * bi
                            vr += dR * br
                            vi += dR * bi
                        s_r += vr * Yr[q, lm] - vi * Yi[q, lm]
                        gx += wr * dYr[q, 0, lm] - wi * dYi[q, 0, lm]
                        gy += wr * dYr[q, 1, lm] - wi * dYi[q, 1, lm]
                        gz += wr * dYr[q, 2, lm] - wi * dYi[q, 2, lm]
            else:  # in the order of eval_kernels.eval_atom_range (same bits)
                s_r, gx, gy, gz = pair_terms_nl(b_int[mu_i, mu_j, BI_NRAD], lb, mu_j, nmax, nlm, lmax1, kc, q, val,
                                                dval, Abr, Abi, Yr, Yi, dYr, dYi, s_r, gx, gy, gz)
            p = sel[q]
            pairf[p, 0] = s_r * uu[q, 0] + gx
            pairf[p, 1] = s_r * uu[q, 1] + gy
            pairf[p, 2] = s_r * uu[q, 2] + gz


# the kernel of ace_atoms and its one signature, for paceui.ace.precompile (checked by tests/test_precompile.py)
ACE_ATOMS = KernelSpec("paceui.ace.kernels", "ace_atom_range",
                       "i i i1 i1 i1 f2 i3 f3 f5 i i2 f2 f1 i1 i1 f2 i1 i1 i2 i2 i1 f2 i f4 f1 i i i i f1 f2 b f2 c3")
MIN_CHUNK_ATOMS = 8  # atoms per chunk at least: a chunk's call from Python costs ~10 µs


def ace_atoms(species, offsets, nbr_j, vec, b_int, b_par, crad, inner, e_int, e_par, E0,
              sp_r1, r1_aidx, r1_ct, sp_fn, fn_c0, comb_aidx, comb_m, comb_rank, comb_ct,
              radial, sp_tab, sp_scale, nmax, lmax, kmax, rmax, nthreads, energies, pairf,
              store, pc_r, pc_y):
    """Atomic energies (eV) and pair forces pairf[p] = ∂E_i/∂r_ij (eV/Å) for every atom.

    e_int[mu] = (npoti code, ndensity); e_par[mu] = (w1, m1, w2, m2, ..., rho_core_cut, drho_core_cut).
    With ``store`` (``radial`` not RADIAL_FOLDED), the pair quantities the gradient pass needs are kept
    for every pair inside the cutoff: pc_r[p] = (g_k, dg_k/dr, φ, dφ/dr), pc_y[p] = (Ŷ_lm, ∇Ŷ_lm).
    Parallel over up to 8·nthreads chunks of atoms, handed out one at a time to ``nthreads`` threads (a
    loaded core takes fewer) by :func:`paceui.ace.chunks.run_chunks`; each chunk is one call of the nogil
    kernel :func:`ace_atom_range` (no parallel region: numba compiles the body once). Every atom's outputs
    depend on that atom only, so the chunking does not change the results.
    """
    if lmax > LMAX_TABLE:
        raise ValueError("lmax above paceui.ace.harmonics.LMAX_TABLE")
    if store and radial == RADIAL_FOLDED:
        raise ValueError("ace_atoms: store needs g_k: analytic radial functions or the RADIAL_TABLE table")
    n_atoms = species.shape[0]
    if n_atoms == 0:
        return
    nchunk = max(1, min(n_atoms // MIN_CHUNK_ATOMS, 8 * nthreads))
    args = (species, offsets, nbr_j, vec, b_int, b_par, crad, inner, e_int, e_par, E0, sp_r1, r1_aidx, r1_ct,
            sp_fn, fn_c0, comb_aidx, comb_m, comb_rank, comb_ct, radial, sp_tab, sp_scale, nmax, lmax, kmax,
            rmax, energies, pairf, store, pc_r, pc_y)
    precompile.wait([ACE_ATOMS])  # a cold cache: let a compiling child finish (no-op otherwise)
    run_chunks(lambda c: ace_atom_range(c * n_atoms // nchunk, (c + 1) * n_atoms // nchunk, *args), nchunk,
               nthreads)


# docs/model.md (M26)
@nb.njit(nogil=True, cache=True)
def reduce_pair_forces(n_atoms: int, offsets: np.ndarray, nbr_j: np.ndarray, vec: np.ndarray,
                       pairf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forces F_k = −∂E/∂r_k (eV/Å) and the virial Σ_p f_p ⊗ r_p (eV) from pair forces; the virial is
    summed in registers (0.79 → 0.57 µs/atom on Cu-I against a 3×3 array, the same sums in the same order)."""
    forces = np.zeros((n_atoms, 3))
    v00, v01, v02, v10, v11, v12, v20, v21, v22 = 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    for i in range(n_atoms):
        for p in range(offsets[i], offsets[i + 1]):
            j = nbr_j[p]
            f0, f1, f2 = pairf[p, 0], pairf[p, 1], pairf[p, 2]
            x0, x1, x2 = vec[p, 0], vec[p, 1], vec[p, 2]
            forces[i, 0] += f0
            forces[j, 0] -= f0
            forces[i, 1] += f1
            forces[j, 1] -= f1
            forces[i, 2] += f2
            forces[j, 2] -= f2
            v00 += f0 * x0
            v01 += f0 * x1
            v02 += f0 * x2
            v10 += f1 * x0
            v11 += f1 * x1
            v12 += f1 * x2
            v20 += f2 * x0
            v21 += f2 * x1
            v22 += f2 * x2
    vir = np.empty((3, 3))
    vir[0, 0], vir[0, 1], vir[0, 2] = v00, v01, v02
    vir[1, 0], vir[1, 1], vir[1, 2] = v10, v11, v12
    vir[2, 0], vir[2, 1], vir[2, 2] = v20, v21, v22
    return forces, vir


def fold_rank1(tab: np.ndarray, kmax: int, sp_r1: np.ndarray, r1_aidx: np.ndarray, r1_ct: np.ndarray) -> np.ndarray:
    """The evaluator's spline table: tab[μi·S+μj, node, 0..3, :] (columns g_k, R_nl, φ) with the kmax g_k
    columns replaced by dmax columns h_d = Σ_k c̃_{μi μj k, d} g_k, the rank-1 part of density d
    (docs/model.md (M14), (M19)): Hermite coefficients are linear in the function, so the table of h_d is
    the same combination of the g_k tables."""
    SS = tab.shape[0]
    S = int(round(SS ** 0.5))
    dmax = r1_ct.shape[1]
    w = np.zeros((SS, kmax, dmax))
    for mu in range(S):
        for f in range(sp_r1[mu], sp_r1[mu + 1]):
            mu_j, k = divmod(int(r1_aidx[f]), kmax)
            w[mu * S + mu_j, k] += r1_ct[f]
    h = np.einsum("bnck,bkd->bncd", tab[..., :kmax], w)
    return np.ascontiguousarray(np.concatenate([h, tab[..., kmax:]], axis=-1))


# docs/model.md (M12)
@nb.njit(nogil=True, cache=True)
def table_rnl(tab: np.ndarray, ctr: np.ndarray, kmax: int, nr: int, n0: int, n1: int) -> None:
    """A fit's table (columns g_k, R_nl, φ): nodes n0..n1−1 of every bond μi·S+μj get the R_nl columns'
    Hermite coefficients Σ_k crad[μi, μj, n, l, k] × the g_k columns' (each coefficient is linear in the
    function), summed in increasing k; column kmax + n·(lmax+1) + l. ``ctr`` is crad k-major
    (:func:`crad_by_k`): the x loop runs over contiguous, independent sums. Numba, not BLAS: OpenBLAS's
    threads spin after a call and took the cores from the pass that follows (Cu-I: a loss+gradient
    evaluation in 28 instead of 16 ms, median)."""
    S = ctr.shape[0]
    acc = np.empty(nr)
    for b in range(tab.shape[0]):
        mu_i, mu_j = b // S, b % S
        for node in range(n0, n1):
            for q in range(4):
                g = tab[b, node, q, 0]
                for x in range(nr):
                    acc[x] = ctr[mu_i, mu_j, 0, x] * g
                for k in range(1, kmax):
                    g = tab[b, node, q, k]
                    for x in range(nr):
                        acc[x] += ctr[mu_i, mu_j, k, x] * g
                for x in range(nr):
                    tab[b, node, q, kmax + x] = acc[x]


# docs/model.md (M12)
@nb.njit(nogil=True, cache=True)
def build_spline_table(code: int, lam: float, rc: float, dc: float, r_in: float, delta_in: float, inner: int,
                       nbase: int, nrad: int, lb: int, crad_b: np.ndarray, pre_c: float, lamc: float,
                       zi: float, zj: float, kmax: int, nmax: int, lmax1: int, nlut: int,
                       tab: np.ndarray) -> None:
    """Hermite coefficients tab[node, 0..3, func] from analytic values at the nodes r_n = n rc/nlut."""
    nf = kmax + nmax * lmax1 + 1
    scale = nlut / rc
    f0 = np.zeros(nf)
    d0 = np.zeros(nf)
    f1 = np.zeros(nf)
    d1 = np.zeros(nf)
    g = np.zeros(kmax + 2)
    dg = np.zeros(kmax + 2)
    T = np.zeros(kmax + 2)
    dT = np.zeros(kmax + 2)
    tab[:] = 0.0
    cr5 = np.ascontiguousarray(crad_b).reshape((1, 1, crad_b.shape[0], crad_b.shape[1], crad_b.shape[2]))
    for node in range(nlut, 0, -1):
        r = node / scale
        radial_basis(code, lam, rc, dc, r_in, delta_in, inner, nbase, r, g, dg, T, dT)
        for k in range(kmax):
            f0[k] = g[k] if k < nbase else 0.0
            d0[k] = (dg[k] if k < nbase else 0.0) / scale
        for n in range(nmax):
            for l in range(lmax1):
                v, dv = 0.0, 0.0
                if n < nrad and l <= lb:
                    v, dv = crad_dot2(cr5, 0, 0, n, l, nbase, g, dg)
                f0[kmax + n * lmax1 + l] = v
                d0[kmax + n * lmax1 + l] = dv / scale
        phi, dphi = core_repulsion(inner, pre_c, lamc, rc, dc, r_in, delta_in, zi, zj, r)
        f0[nf - 1] = phi
        d0[nf - 1] = dphi / scale
        for f in range(nf):
            tab[node, 0, f] = f0[f]
            tab[node, 1, f] = d0[f]
            tab[node, 2, f] = 3.0 * (f1[f] - f0[f]) - d1[f] - 2.0 * d0[f]
            tab[node, 3, f] = -2.0 * (f1[f] - f0[f]) + d1[f] + d0[f]
            f1[f] = f0[f]
            d1[f] = d0[f]
