"""Numba kernel of the per-atom B-basis projections (shared/spec/active_learning.md §1).

For every atom: the A-basis (A1 of rank 1 from g_k, A_{μnlm} from R_nl Ŷ_lm), the real part of every
m-combination product of the atom's species, and B_k = Σ_c M_kc Re Π A_c (M: the generalized CG
matrix of the B → C-tilde template). The full projection multiplies B_k by ∂E_i/∂ρ_p = w_p F_p'(ρ_p).
Parallel over chunks of atoms, each writing only its own rows.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from paceui.ace.harmonics import lm_index, ylm_with_grad
from paceui.ace.kernels import BI_LMAX, BI_NRAD, BP_DIN, BP_RC, BP_RIN, crad_by_k, radial_rows, spline_eval
from paceui.ace.radial import INNER_ZBL, embedding, poly_switch


@nb.njit(parallel=True, nogil=True, cache=True)
def projection_rows(species, offsets, nbr_j, vec, b_int, b_par, crad, inner, e_int, e_par,
                    use_spline, sp_tab, sp_scale, nmax, lmax, kmax, rmax,
                    sp_c0, cb_rank, cb_aidx, cb_m, sp_f0, f_ptr, f_comb, f_coef, f_c,
                    full, nchunk, out):
    """Fill out[i, :] with atom i's projection (linear: n_s values, full: n_s·P values, k·P + p).

    sp_c0[s]:sp_c0[s+1] are the combinations of species s (cb_rank 1: A1 index in cb_aidx[c, 0]);
    sp_f0[s]:sp_f0[s+1] its functions in output order, function f = Σ f_coef[f_ptr[f]:f_ptr[f+1]] ·
    value of comb f_comb[...]; f_c[f, p] its coefficients (full only).
    """
    n_atoms = species.shape[0]
    S = b_int.shape[0]
    lmax1 = lmax + 1
    nlm = (lmax + 1) * (lmax + 2) // 2
    nf = kmax + nmax * lmax1 + 1
    asz = S * nmax * nlm
    dmax = f_c.shape[1]
    ncmax = 0
    nfmax = 0
    for s in range(S):
        ncmax = max(ncmax, sp_c0[s + 1] - sp_c0[s])
        nfmax = max(nfmax, sp_f0[s + 1] - sp_f0[s])
    nr = nmax * lmax1
    ctr = crad_by_k(crad, b_int, nr) if not use_spline else np.zeros((S, S, 1, nr))
    for c in nb.prange(nchunk):
        a0 = c * n_atoms // nchunk
        a1 = (c + 1) * n_atoms // nchunk
        val = np.empty((1, nf))
        dval = np.empty((1, nf))
        rv = np.empty(2 * nr)
        Y = np.empty(nlm, np.complex128)
        dY = np.empty((nlm, 3), np.complex128)
        A = np.empty(asz, np.complex128)
        A1 = np.empty(S * kmax)
        g = np.empty(kmax + 2)
        dg = np.empty(kmax + 2)
        T = np.empty(kmax + 2)
        dT = np.empty(kmax + 2)
        P = np.empty(nlm)
        dP = np.empty(nlm)
        cv = np.empty(max(ncmax, 1))
        B = np.empty(max(nfmax, 1))
        rho = np.empty(dmax)
        rmin = 0.0
        for i in range(a0, a1):
            mu_i = species[i]
            A[:] = 0.0
            A1[:] = 0.0
            rho_core = 0.0
            dmin = 1e300
            jmin = -1
            for p in range(offsets[i], offsets[i + 1]):
                mu_j = species[nbr_j[p]]
                dx, dy, dz = vec[p, 0], vec[p, 1], vec[p, 2]
                r = math.sqrt(dx * dx + dy * dy + dz * dz)
                if r >= b_par[mu_i, mu_j, BP_RC]:
                    continue
                if use_spline:
                    spline_eval(sp_tab, mu_i * S + mu_j, sp_scale[mu_i * S + mu_j], nf, r, val, dval, 0)
                else:
                    radial_rows(mu_i, mu_j, r, b_int, b_par, ctr, inner, kmax, nr, val, dval, 0, g, dg, T, dT, rv)
                lb = b_int[mu_i, mu_j, BI_LMAX]
                ylm_with_grad(dx / r, dy / r, dz / r, r, lb, P, dP, Y, dY)
                for k in range(kmax):
                    A1[mu_j * kmax + k] += val[0, k]
                for n in range(b_int[mu_i, mu_j, BI_NRAD]):
                    base = (mu_j * nmax + n) * nlm
                    for l in range(lb + 1):
                        R = val[0, kmax + n * lmax1 + l]
                        for m in range(l + 1):
                            A[base + lm_index(l, m)] += R * Y[lm_index(l, m)]
                rho_core += val[0, nf - 1]
                if inner == INNER_ZBL:
                    d = r - (b_par[mu_i, mu_j, BP_RIN] - b_par[mu_i, mu_j, BP_DIN])
                    if d < dmin:
                        dmin = d
                        jmin = mu_j
                        rmin = r
            c0 = sp_c0[mu_i]
            for cc in range(c0, sp_c0[mu_i + 1]):
                rk = cb_rank[cc]
                if rk == 1:
                    cv[cc - c0] = A1[cb_aidx[cc, 0]]
                    continue
                z = 1.0 + 0.0j
                for t in range(rk):
                    a = A[cb_aidx[cc, t]]
                    m = cb_m[cc, t]
                    if m < 0:
                        a = a.conjugate()
                        if m % 2 != 0:
                            a = -a
                    z *= a
                cv[cc - c0] = z.real
            f0 = sp_f0[mu_i]
            nfun = sp_f0[mu_i + 1] - f0
            for k in range(nfun):
                f = f0 + k
                x = 0.0
                for q in range(f_ptr[f], f_ptr[f + 1]):
                    x += f_coef[q] * cv[f_comb[q] - c0]
                B[k] = x
            if not full:
                for k in range(nfun):
                    out[i, k] = B[k]
                continue
            nd = e_int[mu_i, 1]
            for d in range(nd):
                rho[d] = 0.0
            for k in range(nfun):
                for d in range(nd):
                    rho[d] += f_c[f0 + k, d] * B[k]
            # the ACE part of E_i is switched by f_cut (core region), as in the evaluator
            if inner == INNER_ZBL:
                fcut = 1.0
                if jmin >= 0:
                    din = b_par[mu_i, jmin, BP_DIN]
                    fcut, _ = poly_switch(b_par[mu_i, jmin, BP_RIN] - rmin, din, din)
            else:
                fcut, _ = poly_switch(rho_core, e_par[mu_i, 2 * dmax], e_par[mu_i, 2 * dmax + 1])
            code = e_int[mu_i, 0]
            for d in range(nd):
                F, dF = embedding(code, rho[d], e_par[mu_i, 2 * d + 1])
                rho[d] = fcut * e_par[mu_i, 2 * d] * dF
            for k in range(nfun):
                for d in range(nd):
                    out[i, k * nd + d] = rho[d] * B[k]
