"""Numba kernels of the ACE evaluator: atomic energies and pair forces ∂E_i/∂r_ij.

Parallel over chunks of atoms; each chunk owns its scratch arrays and writes only its own atoms'
energies and pairs' forces, so no atomics are needed and results are deterministic. The layout of
the compiled arrays is described in :mod:`paceui.ace.evaluator`.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from paceui.ace.contraction import crad_dot
from paceui.ace.harmonics import lm_index, n_lm, ylm_with_grad
from paceui.ace.radial import INNER_ZBL, core_repulsion, embedding, poly_switch, radial_basis

# b_int[mu_i, mu_j, :] columns
BI_CODE, BI_NRAD, BI_LMAX, BI_NBASE = 0, 1, 2, 3
# b_par[mu_i, mu_j, :] columns
BP_LAM, BP_RC, BP_DC, BP_RIN, BP_DIN, BP_PRE, BP_LAMC, BP_ZI, BP_ZJ = range(9)


@nb.njit(nogil=True, cache=True)
def spline_eval(tab: np.ndarray, scale: float, nf: int, r: float, out: np.ndarray, dout: np.ndarray) -> None:
    """Cubic Hermite lookup of nf tabulated functions at r (docs/model.md (M12))."""
    x = r * scale
    m = int(math.floor(x))
    nlut = tab.shape[0] - 1
    if m >= nlut:
        for f in range(nf):
            out[f] = 0.0
            dout[f] = 0.0
        return
    w = x - m
    for f in range(nf):
        c0, c1, c2, c3 = tab[m, 0, f], tab[m, 1, f], tab[m, 2, f], tab[m, 3, f]
        out[f] = c0 + w * (c1 + w * (c2 + w * c3))
        dout[f] = (c1 + w * (2.0 * c2 + 3.0 * w * c3)) * scale


@nb.njit(nogil=True, cache=True)
def radial_values(mu_i: int, mu_j: int, r: float, b_int: np.ndarray, b_par: np.ndarray, crad: np.ndarray,
                  inner: int, use_spline: bool, sp_tab: np.ndarray, sp_scale: np.ndarray, nf: int,
                  kmax: int, lmax1: int, val: np.ndarray, dval: np.ndarray, g: np.ndarray, dg: np.ndarray,
                  T: np.ndarray, dT: np.ndarray) -> None:
    """All radial values of a pair in table order: g_k (kmax), R_nl (nmax*(lmax+1)), core φ (1)."""
    nbase = b_int[mu_i, mu_j, BI_NBASE]
    nrad = b_int[mu_i, mu_j, BI_NRAD]
    lb = b_int[mu_i, mu_j, BI_LMAX]
    S = b_int.shape[0]
    if use_spline:
        spline_eval(sp_tab[mu_i * S + mu_j], sp_scale[mu_i * S + mu_j], nf, r, val, dval)
        return
    p = b_par[mu_i, mu_j]
    radial_basis(b_int[mu_i, mu_j, BI_CODE], p[BP_LAM], p[BP_RC], p[BP_DC], p[BP_RIN], p[BP_DIN], inner,
                 nbase, r, g, dg, T, dT)
    for k in range(kmax):
        val[k] = g[k] if k < nbase else 0.0
        dval[k] = dg[k] if k < nbase else 0.0
    nmax = (nf - 1 - kmax) // lmax1
    for n in range(nmax):
        for l in range(lmax1):
            v, d = 0.0, 0.0
            if n < nrad and l <= lb:
                v = crad_dot(crad, mu_i, mu_j, n, l, nbase, g, 0, 1)
                d = crad_dot(crad, mu_i, mu_j, n, l, nbase, dg, 0, 1)
            val[kmax + n * lmax1 + l] = v
            dval[kmax + n * lmax1 + l] = d
    phi, dphi = core_repulsion(inner, p[BP_PRE], p[BP_LAMC], p[BP_RC], p[BP_DC], p[BP_RIN], p[BP_DIN],
                               p[BP_ZI], p[BP_ZJ], r)
    val[nf - 1] = phi
    dval[nf - 1] = dphi


@nb.njit(nogil=True, cache=True)
def store_pair(p: int, kmax: int, nf: int, nlm_b: int, g: np.ndarray, dg: np.ndarray, val: np.ndarray,
               dval: np.ndarray, Y: np.ndarray, dY: np.ndarray, pc_r: np.ndarray, pc_y: np.ndarray) -> None:
    """Keep pair p's radial basis, core term and harmonics for the gradient pass."""
    for k in range(kmax):
        pc_r[p, k] = g[k]
        pc_r[p, kmax + k] = dg[k]
    pc_r[p, 2 * kmax] = val[nf - 1]
    pc_r[p, 2 * kmax + 1] = dval[nf - 1]
    for lm in range(nlm_b):
        pc_y[p, 0, lm] = Y[lm]
        pc_y[p, 1, lm] = dY[lm, 0]
        pc_y[p, 2, lm] = dY[lm, 1]
        pc_y[p, 3, lm] = dY[lm, 2]


def empty_pair_cache(nlm: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Arrays for ``ace_atoms(store=False)``: nothing is kept."""
    return np.zeros((0, 2)), np.zeros((0, 4, nlm), np.complex128)


@nb.njit(nogil=True, cache=True)
def _atom_range_maxn(offsets: np.ndarray, a0: int, a1: int) -> int:
    mx = 0
    for i in range(a0, a1):
        mx = max(mx, offsets[i + 1] - offsets[i])
    return mx


@nb.njit(parallel=True, nogil=True, cache=True)
def ace_atoms(species, offsets, nbr_j, vec, b_int, b_par, crad, inner, e_int, e_par, E0,
              sp_r1, r1_aidx, r1_ct, sp_fn, fn_c0, comb_aidx, comb_m, comb_rank, comb_ct,
              use_spline, sp_tab, sp_scale, nmax, lmax, kmax, rmax, nthreads, energies, pairf,
              store, pc_r, pc_y):
    """Atomic energies (eV) and pair forces pairf[p] = ∂E_i/∂r_ij (eV/Å) for every atom.

    e_int[mu] = (npoti code, ndensity); e_par[mu] = (w1, m1, w2, m2, ..., rho_core_cut, drho_core_cut).
    With ``store`` (analytic radial functions only), the pair quantities the gradient pass needs are kept
    for every pair inside the cutoff: pc_r[p] = (g_k, dg_k/dr, φ, dφ/dr), pc_y[p] = (Ŷ_lm, ∇Ŷ_lm).
    """
    n_atoms = species.shape[0]
    S = b_int.shape[0]
    lmax1 = lmax + 1
    nlm = n_lm(lmax)
    nf = kmax + nmax * lmax1 + 1
    asz = S * nmax * nlm
    dmax = r1_ct.shape[1]
    nchunk = min(n_atoms, 8 * nthreads)  # get_num_threads() here would defeat caching
    for c in nb.prange(nchunk):
        a0 = c * n_atoms // nchunk
        a1 = (c + 1) * n_atoms // nchunk
        mn = _atom_range_maxn(offsets, a0, a1)
        sel = np.empty(mn, np.int64)
        rr = np.empty(mn)
        uu = np.empty((mn, 3))
        val = np.empty((mn, nf))
        dval = np.empty((mn, nf))
        Y = np.empty((mn, nlm), np.complex128)
        dY = np.empty((mn, nlm, 3), np.complex128)
        A = np.empty(asz, np.complex128)
        A1 = np.empty(S * kmax)
        Abar = np.empty((dmax, asz), np.complex128)
        A1bar = np.empty((dmax, S * kmax))
        rho = np.empty(dmax)
        rbar = np.empty(dmax)
        g = np.empty(kmax + 2)
        dg = np.empty(kmax + 2)
        T = np.empty(kmax + 2)
        dT = np.empty(kmax + 2)
        P = np.empty(nlm)
        dP = np.empty(nlm)
        fac = np.empty(rmax + 1, np.complex128)
        pre = np.empty(rmax + 1, np.complex128)
        suf = np.empty(rmax + 1, np.complex128)
        for i in range(a0, a1):
            mu_i = species[i]
            A[:] = 0.0
            A1[:] = 0.0
            rho_core = 0.0
            dmin = 1e300
            qmin = -1
            cnt = 0
            for p in range(offsets[i], offsets[i + 1]):
                mu_j = species[nbr_j[p]]
                dx, dy, dz = vec[p, 0], vec[p, 1], vec[p, 2]
                r = math.sqrt(dx * dx + dy * dy + dz * dz)
                # docs/model.md (M1)
                if r >= b_par[mu_i, mu_j, BP_RC]:
                    continue
                sel[cnt] = p
                rr[cnt] = r
                uu[cnt, 0], uu[cnt, 1], uu[cnt, 2] = dx / r, dy / r, dz / r
                radial_values(mu_i, mu_j, r, b_int, b_par, crad, inner, use_spline, sp_tab, sp_scale, nf,
                              kmax, lmax1, val[cnt], dval[cnt], g, dg, T, dT)
                lb = b_int[mu_i, mu_j, BI_LMAX]
                ylm_with_grad(uu[cnt, 0], uu[cnt, 1], uu[cnt, 2], r, lb, P, dP, Y[cnt], dY[cnt])
                if store:
                    store_pair(p, kmax, nf, lm_index(lb, lb) + 1, g, dg, val[cnt], dval[cnt], Y[cnt], dY[cnt],
                               pc_r, pc_y)
                # docs/model.md (M14), (M15)
                for k in range(kmax):
                    A1[mu_j * kmax + k] += val[cnt, k]
                for n in range(b_int[mu_i, mu_j, BI_NRAD]):
                    base = (mu_j * nmax + n) * nlm
                    for l in range(lb + 1):
                        R = val[cnt, kmax + n * lmax1 + l]
                        for m in range(l + 1):
                            A[base + lm_index(l, m)] += R * Y[cnt, lm_index(l, m)]
                rho_core += val[cnt, nf - 1]
                if inner == INNER_ZBL:
                    d = r - (b_par[mu_i, mu_j, BP_RIN] - b_par[mu_i, mu_j, BP_DIN])
                    if d < dmin:
                        dmin = d
                        qmin = cnt
                cnt += 1
            # ---- densities and their per-density adjoints w.r.t. A
            nd = e_int[mu_i, 1]
            Abar[:nd, :] = 0.0
            A1bar[:nd, :] = 0.0
            for d in range(nd):
                rho[d] = 0.0
            for f in range(sp_r1[mu_i], sp_r1[mu_i + 1]):
                a = r1_aidx[f]
                for d in range(nd):
                    rho[d] += r1_ct[f, d] * A1[a]
                    A1bar[d, a] += r1_ct[f, d]
            # docs/model.md (M19); factors by (M13); Π_{t≠s} A_t = P_s Q_s from prefix/suffix products (§6)
            for f in range(sp_fn[mu_i], sp_fn[mu_i + 1]):
                for cc in range(fn_c0[f], fn_c0[f + 1]):
                    rk = comb_rank[cc]
                    for t in range(rk):
                        z = A[comb_aidx[cc, t]]
                        m = comb_m[cc, t]
                        if m < 0:
                            z = z.conjugate()
                            if m % 2 != 0:
                                z = -z
                        fac[t] = z
                    pre[0] = 1.0
                    for t in range(rk):
                        pre[t + 1] = pre[t] * fac[t]
                    suf[rk] = 1.0
                    for t in range(rk - 1, -1, -1):
                        suf[t] = suf[t + 1] * fac[t]
                    prod_re = pre[rk].real
                    for t in range(rk):
                        w = pre[t] * suf[t + 1]
                        m = comb_m[cc, t]
                        if m < 0:
                            w = w.conjugate()
                            if m % 2 != 0:
                                w = -w
                        a = comb_aidx[cc, t]
                        for d in range(nd):
                            Abar[d, a] += comb_ct[cc, d] * w
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
                    pj = species[nbr_j[sel[qmin]]]
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
                z = 0.0j
                for d in range(nd):
                    z += rbar[d] * Abar[d, a]
                Abar[0, a] = z
            for a in range(S * kmax):
                x1 = 0.0
                for d in range(nd):
                    x1 += rbar[d] * A1bar[d, a]
                A1bar[0, a] = x1
            # docs/model.md (M26): ∂E(i)/∂r_ij through R_nl, Ŷ_lm, φ and the switch
            # ---- pair forces ∂E_i/∂r_ij
            for q in range(cnt):
                mu_j = species[nbr_j[sel[q]]]
                lb = b_int[mu_i, mu_j, BI_LMAX]
                s_r = w_core * dval[q, nf - 1]
                if q == qmin:
                    s_r += (e_ace - rho_core) * dfcut_dr
                for k in range(kmax):
                    s_r += A1bar[0, mu_j * kmax + k] * dval[q, k]
                gx, gy, gz = 0.0, 0.0, 0.0
                for n in range(b_int[mu_i, mu_j, BI_NRAD]):
                    base = (mu_j * nmax + n) * nlm
                    for l in range(lb + 1):
                        R = val[q, kmax + n * lmax1 + l]
                        dR = dval[q, kmax + n * lmax1 + l]
                        for m in range(l + 1):
                            lm = lm_index(l, m)
                            ab = Abar[0, base + lm]
                            s_r += dR * (ab * Y[q, lm]).real
                            gx += R * (ab * dY[q, lm, 0]).real
                            gy += R * (ab * dY[q, lm, 1]).real
                            gz += R * (ab * dY[q, lm, 2]).real
                p = sel[q]
                pairf[p, 0] = s_r * uu[q, 0] + gx
                pairf[p, 1] = s_r * uu[q, 1] + gy
                pairf[p, 2] = s_r * uu[q, 2] + gz


# docs/model.md (M26)
@nb.njit(nogil=True, cache=True)
def reduce_pair_forces(n_atoms: int, offsets: np.ndarray, nbr_j: np.ndarray, vec: np.ndarray,
                       pairf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forces F_k = -∂E/∂r_k (eV/Å) and the virial Σ_p f_p ⊗ r_p (eV) from pair forces."""
    forces = np.zeros((n_atoms, 3))
    vir = np.zeros((3, 3))
    for i in range(n_atoms):
        for p in range(offsets[i], offsets[i + 1]):
            j = nbr_j[p]
            for a in range(3):
                f = pairf[p, a]
                forces[i, a] += f
                forces[j, a] -= f
                for b in range(3):
                    vir[a, b] += f * vec[p, b]
    return forces, vir


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
                    v = crad_dot(cr5, 0, 0, n, l, nbase, g, 0, 1)
                    dv = crad_dot(cr5, 0, 0, n, l, nbase, dg, 0, 1)
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
