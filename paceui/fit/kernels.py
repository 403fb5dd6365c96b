"""Numba kernel of the loss gradient (docs/loss.md §4–§5): the second neighbour pass.

Given per-atom force residual weights v_j = 2 w_j (F_j − F_ref_j) and per-structure energy factors
α_s = 2(1−κ) w_s (E_s − E_ref_s)/N_s², every atom contributes ∂Φ_i/∂θ with Φ_i = α E_i − κ Ė_i, where
Ė_i is the tangent of E_i along the displacement field u_ij = v_j − v_i. The tangent is carried in
forward mode (Ġ = Σ_j u·∇(g_k Ŷ_lm)), the products of A's as dual numbers, and one reverse sweep per
atom gives the gradients with respect to the C-tilde coefficients and to crad. Parallel over chunks
of atoms (atom_struct[i]: the structure of atom i) with per-chunk accumulators (no atomics, deterministic sums).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from paceui.ace import precompile
from paceui.ace.chunks import run_chunks
from paceui.ace.harmonics import lm_index, n_lm, ylm_real_row
from paceui.ace.kernels import (
    ACE_ATOMS,
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
from paceui.ace.precompile import KernelSpec
from paceui.ace.radial import INNER_ZBL, core_repulsion, embedding2, poly_switch, radial_basis


@nb.njit(nogil=True, cache=True)
def _sign_conj(z: complex, m: int) -> complex:
    """A_{l,m} for m < 0 from the stored A_{l,|m|}: (−1)^m conj(A)."""
    if m < 0:
        z = z.conjugate()
        if m % 2 != 0:
            z = -z
    return z


@nb.njit(nogil=True, cache=True, inline="always")
def _add_two_pairs(Gacc: np.ndarray, b0: int, nlm_b: int, kp: int, g2: np.ndarray, u2: np.ndarray,
                   Y4: np.ndarray, a: int, b: int) -> None:
    """docs/loss.md (L5), (L8): the pairs in slots a then b into the G, Ġ rows from b0 (real arithmetic, k
    innermost): rows re G, im G, re Ġ, im Ġ of each lm += g_k Ŷ, g_k Ŷ, ġ_k Ŷ + g_k Ŷ̇ (ġ_k = g_k' ṙ,
    Ŷ̇ = ∇Ŷ·u), one load and store of each entry for both: (G + t_a) + t_b, the additions of pair after pair.
    A slot of zero g, ġ (finite Ŷ) adds ±0: one pair alone."""
    for lm in range(nlm_b):
        ar, ai, adr, adi = Y4[a, 0, lm], Y4[a, 1, lm], Y4[a, 2, lm], Y4[a, 3, lm]
        br, bi, bdr, bdi = Y4[b, 0, lm], Y4[b, 1, lm], Y4[b, 2, lm], Y4[b, 3, lm]
        b4 = b0 + 4 * lm
        for k in range(kp):
            ga, gua, gb, gub = g2[a, k], u2[a, k], g2[b, k], u2[b, k]
            Gacc[b4, k] = (Gacc[b4, k] + ga * ar) + gb * br
            Gacc[b4 + 1, k] = (Gacc[b4 + 1, k] + ga * ai) + gb * bi
            Gacc[b4 + 2, k] = (Gacc[b4 + 2, k] + (gua * ar + ga * adr)) + (gub * br + gb * bdr)
            Gacc[b4 + 3, k] = (Gacc[b4 + 3, k] + (gua * ai + ga * adi)) + (gub * bi + gb * bdi)


# the kernel of grad_pass and its one signature, for paceui.ace.precompile (checked by tests/test_precompile.py)
GRAD_PASS = KernelSpec("paceui.fit.kernels", "grad_chunk",
                       "i i1 i1 i1 i1 f2 f2 f1 f i3 f3 f5 i i2 f2 i1 i1 f2 i1 i1 i2 i2 i1 f2 i i i i i f3 f3 f6"
                       " b f2 c3 i f4 f1 b f3")


@nb.njit(nogil=True, cache=True)
def grad_chunk(c, atom_struct, species, nbr_off, nbr_j, vec, v, alpha, kappa, b_int, b_par, crad, inner, e_int, e_par,
               sp_r1, r1_aidx, r1_ct, sp_fn, fn_c0, comb_aidx, comb_m, comb_rank, comb_ct,
               nmax, lmax, kmax, rmax, nchunk, g_r1, g_comb, g_crad, cached, pc_r, pc_y, radial, sp_tab, sp_scale,
               has_strain, strain):
    """Chunk c of :func:`grad_pass`: atoms c·N/nchunk .. (c+1)·N/nchunk − 1, into g_r1[c], g_comb[c], g_crad[c]."""
    n_atoms = species.shape[0]
    S = b_int.shape[0]
    nlm = n_lm(lmax)
    asz = S * nmax * nlm
    dmax = r1_ct.shape[1]
    n_comb = comb_ct.shape[0]
    a0 = c * n_atoms // nchunk
    a1 = (c + 1) * n_atoms // nchunk
    mn = 0
    for i in range(a0, a1):
        mn = max(mn, nbr_off[i + 1] - nbr_off[i])
    gk = np.empty(kmax + 2)
    dgk = np.empty(kmax + 2)
    gs = np.empty((1, kmax + 2))  # one row of spline_g_phi's (pair, k) layout
    dgs = np.empty((1, kmax + 2))
    T = np.empty(kmax + 2)
    dT = np.empty(kmax + 2)
    P = np.empty(nlm)
    dP = np.empty(nlm)
    Yr = np.empty((1, nlm))  # one row of ylm_real_row's (pair, lm) layout
    Yi = np.empty((1, nlm))
    dYr = np.empty((1, 3, nlm))
    dYi = np.empty((1, 3, nlm))
    kp = 4 * ((kmax + 3) // 4)  # k rows padded to whole 4-wide vectors
    g2 = np.zeros((3, kp))  # two pair slots and a slot of zeros
    u2 = np.zeros((3, kp))
    Y4 = np.zeros((3, 4, nlm))
    Gacc = np.empty((4 * S * nlm, kp))
    A = np.empty(asz, np.complex128)
    Ad = np.empty(asz, np.complex128)
    Jr = np.empty((dmax, asz))
    Ji = np.empty((dmax, asz))
    Hr = np.empty((dmax, asz))
    Hi = np.empty((dmax, asz))
    AbarF = np.empty(asz, np.complex128)
    AbarD = np.empty(asz, np.complex128)
    rho = np.empty(dmax)
    rhod = np.empty(dmax)
    beta = np.empty(dmax)
    gamma = np.empty(dmax)
    PR = np.empty(n_comb)
    PdR = np.empty(n_comb)
    sgr = np.empty(rmax + 1)
    sgi = np.empty(rmax + 1)
    far = np.empty(rmax + 1)
    fai = np.empty(rmax + 1)
    fdr = np.empty(rmax + 1)
    fdi = np.empty(rmax + 1)
    par = np.empty(rmax + 1)
    pai = np.empty(rmax + 1)
    pdr = np.empty(rmax + 1)
    pdi = np.empty(rmax + 1)
    sar = np.empty(rmax + 1)
    sai = np.empty(rmax + 1)
    sdr = np.empty(rmax + 1)
    sdi = np.empty(rmax + 1)
    for i in range(a0, a1):
        s = atom_struct[i]
        mu_i = species[i]
        Gacc[:] = 0.0
        rho_core = 0.0
        rhod_core = 0.0
        dmin = 1e300
        r_min = 0.0
        ud_min = 0.0
        qmin = -1
        ps, pmu, pnlm = -1, 0, 0  # the slot of a pair not yet added (−1: none), its species and n_lm
        for p in range(nbr_off[i], nbr_off[i + 1] + 1):  # one step past the pairs adds the pending one
            sl, mu_j, nlm_b = 0, -1, 0
            if p < nbr_off[i + 1]:
                j = nbr_j[p]
                mu_j = species[j]
                dx, dy, dz = vec[p, 0], vec[p, 1], vec[p, 2]
                r = math.sqrt(dx * dx + dy * dy + dz * dz)
                if r >= b_par[mu_i, mu_j, BP_RC]:
                    continue
                ux, uy, uz = dx / r, dy / r, dz / r
                # docs/loss.md (L7): u_ij = v_j − v_i
                wx, wy, wz = v[j, 0] - v[i, 0], v[j, 1] - v[i, 1], v[j, 2] - v[i, 2]
                if has_strain:
                    wx = kappa * wx - (strain[s, 0, 0] * dx + strain[s, 0, 1] * dy + strain[s, 0, 2] * dz)
                    wy = kappa * wy - (strain[s, 1, 0] * dx + strain[s, 1, 1] * dy + strain[s, 1, 2] * dz)
                    wz = kappa * wz - (strain[s, 2, 0] * dx + strain[s, 2, 1] * dy + strain[s, 2, 2] * dz)
                ur = wx * ux + wy * uy + wz * uz  # tangent of r along u
                nb_ = b_int[mu_i, mu_j, BI_NBASE]
                lb = b_int[mu_i, mu_j, BI_LMAX]
                nlm_b = lm_index(lb, lb) + 1
                # docs/loss.md (L5) G and (L8) Ġ, in real arithmetic: a real factor times (re, im) is the complex
                # product's value (its terms with the zero imaginary part add exact zeros). The pair goes to the free
                # slot sl; two pairs of one neighbour species are added together (one pass over the rows)
                sl = 1 if ps == 0 else 0
                if cached:
                    for k in range(nb_):
                        g2[sl, k] = pc_r[p, k]
                        u2[sl, k] = pc_r[p, kmax + k] * ur
                    phi, dphi = pc_r[p, 2 * kmax], pc_r[p, 2 * kmax + 1]
                    for lm in range(nlm_b):  # Ŷ and its tangent along u, once per neighbour
                        y, d0, d1, d2 = pc_y[p, 0, lm], pc_y[p, 1, lm], pc_y[p, 2, lm], pc_y[p, 3, lm]
                        Y4[sl, 0, lm] = y.real
                        Y4[sl, 1, lm] = y.imag
                        Y4[sl, 2, lm] = d0.real * wx + d1.real * wy + d2.real * wz
                        Y4[sl, 3, lm] = d0.imag * wx + d1.imag * wy + d2.imag * wz
                else:  # the pass-1 model's radial functions: from its table, or analytic
                    if radial == RADIAL_TABLE:
                        bb = mu_i * S + mu_j
                        phi, dphi = spline_g_phi(sp_tab, bb, sp_scale[bb], nb_, r, gs, dgs, 0)
                        for k in range(nb_):
                            gk[k] = gs[0, k]
                            dgk[k] = dgs[0, k]
                    else:
                        radial_basis(b_int[mu_i, mu_j, BI_CODE], b_par[mu_i, mu_j, BP_LAM], b_par[mu_i, mu_j, BP_RC],
                                     b_par[mu_i, mu_j, BP_DC], b_par[mu_i, mu_j, BP_RIN], b_par[mu_i, mu_j, BP_DIN],
                                     inner, nb_, r, gk, dgk, T, dT)
                        phi, dphi = core_repulsion(inner, b_par[mu_i, mu_j, BP_PRE], b_par[mu_i, mu_j, BP_LAMC],
                                                   b_par[mu_i, mu_j, BP_RC], b_par[mu_i, mu_j, BP_DC],
                                                   b_par[mu_i, mu_j, BP_RIN], b_par[mu_i, mu_j, BP_DIN],
                                                   b_par[mu_i, mu_j, BP_ZI], b_par[mu_i, mu_j, BP_ZJ], r)
                    ylm_real_row(ux, uy, uz, 1.0 / r, lb, P, dP, Yr, Yi, dYr, dYi, 0)
                    for lm in range(nlm_b):
                        Y4[sl, 0, lm] = Yr[0, lm]
                        Y4[sl, 1, lm] = Yi[0, lm]
                        Y4[sl, 2, lm] = dYr[0, 0, lm] * wx + dYr[0, 1, lm] * wy + dYr[0, 2, lm] * wz
                        Y4[sl, 3, lm] = dYi[0, 0, lm] * wx + dYi[0, 1, lm] * wy + dYi[0, 2, lm] * wz
                    for k in range(nb_):
                        g2[sl, k] = gk[k]
                        u2[sl, k] = dgk[k] * ur
                for k in range(nb_, kp):  # rows padded to whole 4-wide vectors: ±0 terms past nradbase, never read
                    g2[sl, k] = 0.0
                    u2[sl, k] = 0.0
                rho_core += phi
                rhod_core += dphi * ur
                if inner == INNER_ZBL:
                    d = r - (b_par[mu_i, mu_j, BP_RIN] - b_par[mu_i, mu_j, BP_DIN])
                    if d < dmin:
                        dmin, r_min, ud_min, qmin = d, r, ur, mu_j
            a_, b_, mb, nb_pend = -1, 2, pmu, pnlm  # one call site of _add_two_pairs (compile time)
            if ps >= 0:
                if mu_j == pmu and nlm_b == pnlm:  # a second pair of the pending one's species
                    a_, b_ = ps, sl
                    sl = -1
                else:  # the pending pair alone (slot 2: zeros)
                    a_ = ps
                ps = -1
            if mu_j >= 0 and sl >= 0:  # this pair waits for a partner
                ps, pmu, pnlm = sl, mu_j, nlm_b
            if a_ >= 0:
                _add_two_pairs(Gacc, mb * nlm * 4, nb_pend, kp, g2, u2, Y4, a_, b_)
        # docs/loss.md (L5), (L8)
        # ---- A = crad·G, Ȧ = crad·Ġ: contiguous dot products over k of the accumulator rows, each one in real
        # arithmetic as paceui.ace.contraction.crad_dot sums it (increasing k)
        A[:] = 0.0
        Ad[:] = 0.0
        for mu in range(S):
            nbase = b_int[mu_i, mu, BI_NBASE]
            for n in range(b_int[mu_i, mu, BI_NRAD]):
                for l in range(b_int[mu_i, mu, BI_LMAX] + 1):
                    for lm in range(lm_index(l, 0), lm_index(l, l) + 1):
                        b4 = (mu * nlm + lm) * 4
                        cf = crad[mu_i, mu, n, l, 0]
                        xr, xi = cf * Gacc[b4, 0], cf * Gacc[b4 + 1, 0]
                        yr, yi = cf * Gacc[b4 + 2, 0], cf * Gacc[b4 + 3, 0]
                        for k in range(1, nbase):
                            cf = crad[mu_i, mu, n, l, k]
                            xr += cf * Gacc[b4, k]
                            xi += cf * Gacc[b4 + 1, k]
                            yr += cf * Gacc[b4 + 2, k]
                            yi += cf * Gacc[b4 + 3, k]
                        A[(mu * nmax + n) * nlm + lm] = complex(xr, xi)
                        Ad[(mu * nmax + n) * nlm + lm] = complex(yr, yi)
        # ---- densities, tangents, Jacobians J = ∂ρ/∂A and H = ∂ρ̇/∂A
        nd = e_int[mu_i, 1]
        Jr[:nd, :] = 0.0
        Ji[:nd, :] = 0.0
        Hr[:nd, :] = 0.0
        Hi[:nd, :] = 0.0
        for d in range(nd):
            rho[d] = 0.0
            rhod[d] = 0.0
        for f in range(sp_r1[mu_i], sp_r1[mu_i + 1]):
            a = r1_aidx[f]  # = mu*kmax + k
            b4 = (a // kmax) * nlm * 4  # G[μ, k, 0] (l = m = 0: real) with a = μ·kmax + k
            a1 = Gacc[b4, a % kmax]
            a1d = Gacc[b4 + 2, a % kmax]
            for d in range(nd):
                rho[d] += r1_ct[f, d] * a1
                rhod[d] += r1_ct[f, d] * a1d
        for f in range(sp_fn[mu_i], sp_fn[mu_i + 1]):
            for cc in range(fn_c0[f], fn_c0[f + 1]):
                rk = comb_rank[cc]
                # real arithmetic: each complex product and sum as numba evaluates it, (ac − bd, ad + bc);
                # (−1)^m conj(·) for m < 0 as exact ±1 factors on the real and imaginary parts
                for t in range(rk):
                    ai = comb_aidx[cc, t]
                    m = comb_m[cc, t]
                    xr, xi = 1.0, 1.0
                    if m < 0:
                        if m % 2 != 0:
                            xr = -1.0
                        else:
                            xi = -1.0
                    sgr[t], sgi[t] = xr, xi
                    z, zd = A[ai], Ad[ai]
                    far[t], fai[t] = xr * z.real, xi * z.imag
                    fdr[t], fdi[t] = xr * zd.real, xi * zd.imag
                # docs/loss.md (L13): prefix and suffix products of dual numbers a_t + ε ȧ_t; p[t] = Π_{u<t} for
                # t ≥ 1 and s[t] = Π_{u≥t} for t ≥ 1, without the leading (1, 0) factors (their products are the
                # other factor's value, exactly; only the sign of an exact zero may differ)
                par[1], pai[1], pdr[1], pdi[1] = far[0], fai[0], fdr[0], fdi[0]
                for t in range(1, rk):  # dual-number prefix products
                    ar, ai_, cr, ci = par[t], pai[t], pdr[t], pdi[t]
                    br, bi, er, ei = far[t], fai[t], fdr[t], fdi[t]
                    par[t + 1] = ar * br - ai_ * bi
                    pai[t + 1] = ar * bi + ai_ * br
                    pdr[t + 1] = (cr * br - ci * bi) + (ar * er - ai_ * ei)
                    pdi[t + 1] = (cr * bi + ci * br) + (ar * ei + ai_ * er)
                sar[rk - 1], sai[rk - 1], sdr[rk - 1], sdi[rk - 1] = far[rk - 1], fai[rk - 1], fdr[rk - 1], fdi[rk - 1]
                for t in range(rk - 2, 0, -1):
                    ar, ai_, cr, ci = sar[t + 1], sai[t + 1], sdr[t + 1], sdi[t + 1]
                    br, bi, er, ei = far[t], fai[t], fdr[t], fdi[t]
                    sar[t] = ar * br - ai_ * bi
                    sai[t] = ar * bi + ai_ * br
                    sdr[t] = (cr * br - ci * bi) + (ar * er - ai_ * ei)
                    sdi[t] = (cr * bi + ci * br) + (ar * ei + ai_ * er)
                PR[cc] = par[rk]
                PdR[cc] = pdr[rk]
                # docs/loss.md (L14): J column P_t Q_{t+1} and its tangent H
                for t in range(rk):
                    if t == 0:
                        wjr, wji, whr, whi = sar[1], sai[1], sdr[1], sdi[1]
                    elif t == rk - 1:
                        wjr, wji, whr, whi = par[t], pai[t], pdr[t], pdi[t]
                    else:
                        ar, ai_, cr, ci = par[t], pai[t], pdr[t], pdi[t]
                        br, bi, er, ei = sar[t + 1], sai[t + 1], sdr[t + 1], sdi[t + 1]
                        wjr = ar * br - ai_ * bi
                        wji = ar * bi + ai_ * br
                        whr = (ar * er - ai_ * ei) + (cr * br - ci * bi)
                        whi = (ar * ei + ai_ * er) + (cr * bi + ci * br)
                    wjr, wji, whr, whi = sgr[t] * wjr, sgi[t] * wji, sgr[t] * whr, sgi[t] * whi
                    ai = comb_aidx[cc, t]
                    for d in range(nd):
                        ct = comb_ct[cc, d]
                        Jr[d, ai] += ct * wjr
                        Ji[d, ai] += ct * wji
                        Hr[d, ai] += ct * whr
                        Hi[d, ai] += ct * whi
                for d in range(nd):
                    rho[d] += comb_ct[cc, d] * PR[cc]
                    rhod[d] += comb_ct[cc, d] * PdR[cc]
        # ---- embedding, inner cutoffs: Φ = α' E_ACE − κ' Ė_ACE
        code = e_int[mu_i, 0]
        e_ace = 0.0
        for d in range(nd):
            F, dF, d2F = embedding2(code, rho[d], e_par[mu_i, 2 * d + 1])
            w = e_par[mu_i, 2 * d]
            e_ace += w * F
            beta[d] = w * dF   # temporarily F'
            gamma[d] = w * d2F  # temporarily F''
        # docs/loss.md (L10): the switch f and its tangent ḟ
        if inner == INNER_ZBL:
            fcut, fdot = 1.0, 0.0
            if qmin >= 0:
                din = b_par[mu_i, qmin, BP_DIN]
                fcut, dft = poly_switch(b_par[mu_i, qmin, BP_RIN] - r_min, din, din)
                fdot = -dft * ud_min
        else:
            fcut, dfc = poly_switch(rho_core, e_par[mu_i, 2 * dmax], e_par[mu_i, 2 * dmax + 1])
            fdot = dfc * rhod_core
        # docs/loss.md (L11): β_p, γ_p
        kap = 1.0 if has_strain else kappa
        al = alpha[s] * fcut - kap * fdot
        ka = kap * fcut
        for d in range(nd):
            dF, d2F = beta[d], gamma[d]
            beta[d] = al * dF - ka * d2F * rhod[d]
            gamma[d] = -ka * dF
        # docs/loss.md (L12)
        # ---- gradients w.r.t. C-tilde coefficients
        for f in range(sp_r1[mu_i], sp_r1[mu_i + 1]):
            a = r1_aidx[f]
            b4 = (a // kmax) * nlm * 4  # G[μ, k, 0] (l = m = 0: real) with a = μ·kmax + k
            a1 = Gacc[b4, a % kmax]
            a1d = Gacc[b4 + 2, a % kmax]
            for d in range(nd):
                g_r1[c, f, d] += beta[d] * a1 + gamma[d] * a1d
        for f in range(sp_fn[mu_i], sp_fn[mu_i + 1]):
            for cc in range(fn_c0[f], fn_c0[f + 1]):
                for d in range(nd):
                    g_comb[c, cc, d] += beta[d] * PR[cc] + gamma[d] * PdR[cc]
        # docs/loss.md (L15), (L16)
        # ---- gradient w.r.t. crad: Σ_m Re(Ā_Φ G + Ǡ_Φ Ġ)
        for a in range(asz):
            zfr, zfi, zdr, zdi = 0.0, 0.0, 0.0, 0.0
            for d in range(nd):
                b_, g_ = beta[d], gamma[d]
                zfr += b_ * Jr[d, a] + g_ * Hr[d, a]
                zfi += b_ * Ji[d, a] + g_ * Hi[d, a]
                zdr += g_ * Jr[d, a]
                zdi += g_ * Ji[d, a]
            AbarF[a] = complex(zfr, zfi)
            AbarD[a] = complex(zdr, zdi)
        for mu in range(S):
            lb = b_int[mu_i, mu, BI_LMAX]
            for n in range(b_int[mu_i, mu, BI_NRAD]):
                for l in range(lb + 1):
                    ab = (mu * nmax + n) * nlm
                    for k in range(b_int[mu_i, mu, BI_NBASE]):
                        acc = 0.0
                        for m in range(l + 1):
                            lm = lm_index(l, m)
                            b4 = (mu * nlm + lm) * 4
                            zf, zd = AbarF[ab + lm], AbarD[ab + lm]
                            acc += ((zf.real * Gacc[b4, k] - zf.imag * Gacc[b4 + 1, k])
                                    + (zd.real * Gacc[b4 + 2, k] - zd.imag * Gacc[b4 + 3, k]))
                        g_crad[c, mu_i, mu, n, l, k] += acc


def grad_pass(atom_struct, species, nbr_off, nbr_j, vec, v, alpha, kappa, b_int, b_par, crad, inner, e_int, e_par,
              sp_r1, r1_aidx, r1_ct, sp_fn, fn_c0, comb_aidx, comb_m, comb_rank, comb_ct,
              nmax, lmax, kmax, rmax, nchunk, g_r1, g_comb, g_crad, cached, pc_r, pc_y, radial, sp_tab, sp_scale,
              has_strain, strain):
    """Accumulate ∂Σ_i Φ_i/∂(r1_ct, comb_ct, crad) into per-chunk arrays g_r1, g_comb, g_crad.

    With ``has_strain`` the tangent field is u_ij = κ (v_j − v_i) − M_s r_ij with M_s = strain[s] (3×3, per
    structure) and Φ_i = α E_i − Ė_i: the −M_s r_ij part gives ∂/∂θ Σ_ab M_ab W_ab with the virial
    W_ab = Σ_p (∂E_i/∂r_ij)_a (r_ij)_b, the stress term's gradient (a homogeneous strain of the structure).

    With ``cached``, each pair's radial basis, core term and harmonics are read from pc_r / pc_y
    (kept by the first pass, :func:`paceui.ace.kernels.ace_atoms` with ``store``) instead of recomputed;
    without, from the pass-1 model's table where ``radial`` is RADIAL_TABLE (sp_tab, sp_scale), else analytic.

    Parallel over the ``nchunk`` chunks of atoms, handed out one at a time to numba.get_num_threads() threads
    (:func:`paceui.ace.chunks.run_chunks`), each one call of the nogil kernel :func:`grad_chunk` (no
    parallel region: numba compiles the body once); chunk c accumulates into row c only.
    """
    args = (atom_struct, species, nbr_off, nbr_j, vec, v, alpha, kappa, b_int, b_par, crad, inner, e_int, e_par,
            sp_r1, r1_aidx, r1_ct, sp_fn, fn_c0, comb_aidx, comb_m, comb_rank, comb_ct,
            nmax, lmax, kmax, rmax, nchunk, g_r1, g_comb, g_crad, cached, pc_r, pc_y, radial, sp_tab, sp_scale,
            has_strain, strain)
    precompile.wait([GRAD_PASS])  # a cold cache: let a compiling child finish (no-op otherwise)
    run_chunks(lambda c: grad_chunk(c, *args), nchunk, nb.get_num_threads())


@nb.njit(nogil=True, cache=True)
def structure_virials(struct_off, nbr_off, vec, pairf, out):
    """Per-structure W_ab = Σ_p f_p,a r_p,b (eV; Ω·σ in ASE's sign) into out[S, 3, 3]."""
    for s in range(struct_off.shape[0] - 1):
        for a in range(3):
            for b in range(3):
                out[s, a, b] = 0.0
        for p in range(nbr_off[struct_off[s]], nbr_off[struct_off[s + 1]]):
            for a in range(3):
                f = pairf[p, a]
                for b in range(3):
                    out[s, a, b] += f * vec[p, b]


# The two big kernels of a loss+gradient evaluation, compiled in child processes on a cold cache
# (paceui.ace.precompile): started when a session is built, waited for before their first call.
FIT_KERNELS = (ACE_ATOMS, GRAD_PASS)
