"""The evaluator's energy+forces kernel for spline potentials (ASE calculator, ``ACEModel.evaluate``).

The same arithmetic as :func:`paceui.ace.kernels.ace_atom_range` with ``radial=RADIAL_FOLDED, store=False``,
operation for operation on every float (the results are bit-identical), on a leaner data layout:

* the spline table (:func:`value_table`) keeps, per bond and node, the values f and scaled derivatives d
  of the R_nl (and φ) columns and the four Hermite coefficients of the folded rank-1 density columns only:
  c₂ = 3(f₁ − f₀) − d₁ − 2d₀ and c₃ = −2(f₁ − f₀) + d₁ + d₀ of an R_nl column are recomputed from the nodes
  m and m+1 with the expressions :func:`paceui.ace.kernels.build_spline_table` used (same bits), so the table
  is 224 instead of 384 bytes per node for Cu-I: the pair loop's working set fits the L2 cache;
* the φ column is dropped where core repulsion is zero for every bond (adding 0.0 changes nothing);
* the (−1)^m conj(A) of a negative m is a pair of ±1.0 factors per product factor (:func:`factor_signs`),
  exact multiplications instead of branches; prefix and suffix products skip their leading 1 (exact), and
  ranks 2 and 3 are written out in registers (the same products in the same order);
* the harmonics are written in place into the pair rows (no array views in the pair loop: their reference
  counts cost more than the arithmetic);
* each atom's shortest pair distance (Å) is written out (``dmin``), so the caller checks too-close atoms
  without another pass over the pairs.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from paceui.ace.harmonics import n_lm, ylm_real_row
from paceui.ace.kernels import (
    BI_LMAX,
    BI_NRAD,
    BP_DIN,
    BP_RC,
    BP_RIN,
    _atom_range_maxn,
    others_product,
    pair_terms_nl,
    prefix_suffix,
)
from paceui.ace.precompile import KernelSpec
from paceui.ace.radial import INNER_ZBL, embedding, poly_switch

__all__ = ["EVAL_ATOMS", "eval_atom_range", "factor_signs", "value_table"]


def value_table(tab_e: np.ndarray, dmax: int, core: bool) -> np.ndarray:
    """float64[S·S, nlut+2, 2·nr + 4·dmax] from the folded table ``tab_e[S·S, nlut+1, 4, dmax + nr0]``
    (:func:`paceui.ace.kernels.fold_rank1`; nr0 = nmax·(lmax+1) + 1 columns R_nl, φ): per node the values
    (nr columns), the derivatives ×(Å per node) (nr), then c₀..c₃ of the dmax density columns; nr = nr0,
    or nr0 − 1 without the φ column (``core=False``). The last node row is zero (f₁ = d₁ = 0 past the end,
    as the table build)."""
    SS, nn, _, nf = tab_e.shape
    nr = nf - dmax - (0 if core else 1)
    out = np.zeros((SS, nn + 1, 2 * nr + 4 * dmax))
    out[:, :nn, :nr] = tab_e[:, :, 0, dmax:dmax + nr]
    out[:, :nn, nr:2 * nr] = tab_e[:, :, 1, dmax:dmax + nr]
    for c in range(4):
        out[:, :nn, 2 * nr + c * dmax:2 * nr + (c + 1) * dmax] = tab_e[:, :, c, :dmax]
    return out


def factor_signs(c_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(±1 on the real part, ±1 on the imaginary part) of each product factor: Ŷ_{l,−m} = (−1)^m conj(Ŷ_lm)
    (docs/model.md (M13)) turns A into (−1)^m (Re A, −Im A) for m < 0; 1, 1 for m ≥ 0."""
    neg = c_m < 0
    odd = (np.abs(c_m) % 2) == 1
    sr = np.where(neg & odd, -1.0, 1.0)
    si = np.where(neg & ~odd, -1.0, 1.0)
    return np.ascontiguousarray(sr), np.ascontiguousarray(si)


@nb.njit(nogil=True, cache=True)
def eval_atom_range(a0, a1, species, offsets, nbr_j, vec, b_int, b_par, inner, e_int, e_par, E0,
                    sp_fn, fn_c0, comb_aidx, comb_sr, comb_si, comb_rank, comb_ct, tab, sp_scale,
                    nr, core, nmax, lmax, rmax, rlo, energies, pairf, dmin):
    """Energies E_i (eV), pair forces pairf[p] = ∂E_i/∂r_ij (eV/Å) and shortest distances dmin[i] (Å) of
    the atoms a0..a1−1, serially, with its own scratch arrays (see the module docstring for the layout).

    ``tab`` from :func:`value_table` (``nr`` R_nl/φ columns, ``core``: whether the last is φ), ``sp_scale``
    nodes per Å per bond; pairs closer than ``rlo`` (Å) are left out (the caller rejects the structure).
    """
    S = b_int.shape[0]
    lmax1 = lmax + 1
    nlm = n_lm(lmax)
    dmax = comb_ct.shape[1]
    nlut = tab.shape[1] - 2
    c0 = 2 * nr  # first density coefficient column
    nf = dmax + nr  # columns of val: densities, then R_nl (and φ)
    asz = S * nmax * nlm
    mn = _atom_range_maxn(offsets, a0, a1)
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
    R1 = np.empty(dmax)
    Abr = np.empty((dmax, asz))
    Abi = np.empty((dmax, asz))
    rho = np.empty(dmax)
    rbar = np.empty(dmax)
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
        dm = 1e300
        for p in range(offsets[i], offsets[i + 1]):
            dx, dy, dz = vec[p, 0], vec[p, 1], vec[p, 2]
            r = math.sqrt(dx * dx + dy * dy + dz * dz)
            dm = min(dm, r)
            mu_j = species[nbr_j[p]]
            if r >= b_par[mu_i, mu_j, BP_RC] or r < rlo:
                continue
            sel[cnt] = p
            sj[cnt] = mu_j
            rr[cnt] = r
            ir = 1.0 / r
            uu[cnt, 0], uu[cnt, 1], uu[cnt, 2] = dx * ir, dy * ir, dz * ir
            cnt += 1
        dmin[i] = dm
        # docs/model.md (M12): cubic Hermite lookup; R_nl coefficients c2, c3 from the nodes m, m+1
        for q in range(cnt):
            b = mu_i * S + sj[q]
            scale = sp_scale[b]
            x = rr[q] * scale
            m = int(math.floor(x))
            if m >= nlut:
                for f in range(nf):
                    val[q, f] = 0.0
                    dval[q, f] = 0.0
                continue
            w = x - m
            for d in range(dmax):
                t0 = tab[b, m, c0 + d]
                t1 = tab[b, m, c0 + dmax + d]
                t2 = tab[b, m, c0 + 2 * dmax + d]
                t3 = tab[b, m, c0 + 3 * dmax + d]
                val[q, d] = t0 + w * (t1 + w * (t2 + w * t3))
                dval[q, d] = (t1 + w * (2.0 * t2 + 3.0 * w * t3)) * scale
            for f in range(nr):
                f0 = tab[b, m, f]
                d0 = tab[b, m, nr + f]
                f1 = tab[b, m + 1, f]
                d1 = tab[b, m + 1, nr + f]
                t2 = 3.0 * (f1 - f0) - d1 - 2.0 * d0
                t3 = -2.0 * (f1 - f0) + d1 + d0
                val[q, dmax + f] = f0 + w * (d0 + w * (t2 + w * t3))
                dval[q, dmax + f] = (d0 + w * (2.0 * t2 + 3.0 * w * t3)) * scale
        Ar[:] = 0.0
        Ai[:] = 0.0
        R1[:] = 0.0
        rho_core = 0.0
        dmn = 1e300
        qmin = -1
        for q in range(cnt):
            mu_j = sj[q]
            lb = b_int[mu_i, mu_j, BI_LMAX]
            ylm_real_row(uu[q, 0], uu[q, 1], uu[q, 2], 1.0 / rr[q], lb, P, dP, Yr, Yi, dYr, dYi, q)
            # docs/model.md (M14), (M15)
            for d in range(dmax):
                R1[d] += val[q, d]
            for n in range(b_int[mu_i, mu_j, BI_NRAD]):
                base = (mu_j * nmax + n) * nlm
                for l in range(lb + 1):
                    R = val[q, dmax + n * lmax1 + l]
                    l0 = (l * (l + 1)) // 2
                    for lm in range(l0, l0 + l + 1):
                        Ar[base + lm] += R * Yr[q, lm]
                        Ai[base + lm] += R * Yi[q, lm]
            if core:
                rho_core += val[q, nf - 1]
            if inner == INNER_ZBL:
                d = rr[q] - (b_par[mu_i, mu_j, BP_RIN] - b_par[mu_i, mu_j, BP_DIN])
                if d < dmn:
                    dmn = d
                    qmin = q
        # ---- densities and their per-density adjoints w.r.t. A
        nd = e_int[mu_i, 1]
        Abr[:nd, :] = 0.0
        Abi[:nd, :] = 0.0
        for d in range(nd):
            rho[d] = R1[d]
        # docs/model.md (M19); factors by (M13); Π_{t≠s} A_t = P_s Q_s from prefix/suffix products (§6)
        for cc in range(fn_c0[sp_fn[mu_i]], fn_c0[sp_fn[mu_i + 1]]):
            rk = comb_rank[cc]
            if rk == 2:  # the general case below, operation for operation, in registers
                a0, a1 = comb_aidx[cc, 0], comb_aidx[cc, 1]
                f0r, f0i = comb_sr[cc, 0] * Ar[a0], comb_si[cc, 0] * Ai[a0]
                f1r, f1i = comb_sr[cc, 1] * Ar[a1], comb_si[cc, 1] * Ai[a1]
                prod_re = f0r * f1r - f0i * f1i
                ua, ur, ui = a0, f1r * comb_sr[cc, 0], f1i * comb_si[cc, 0]
                for d in range(nd):
                    ct = comb_ct[cc, d]
                    Abr[d, ua] += ct * ur
                    Abi[d, ua] += ct * ui
                ua, ur, ui = a1, f0r * comb_sr[cc, 1], f0i * comb_si[cc, 1]
                for d in range(nd):
                    ct = comb_ct[cc, d]
                    Abr[d, ua] += ct * ur
                    Abi[d, ua] += ct * ui
            elif rk == 3:
                a0, a1, a2 = comb_aidx[cc, 0], comb_aidx[cc, 1], comb_aidx[cc, 2]
                f0r, f0i = comb_sr[cc, 0] * Ar[a0], comb_si[cc, 0] * Ai[a0]
                f1r, f1i = comb_sr[cc, 1] * Ar[a1], comb_si[cc, 1] * Ai[a1]
                f2r, f2i = comb_sr[cc, 2] * Ar[a2], comb_si[cc, 2] * Ai[a2]
                p2r = f0r * f1r - f0i * f1i
                p2i = f0r * f1i + f0i * f1r
                s1r = f2r * f1r - f2i * f1i
                s1i = f2r * f1i + f2i * f1r
                prod_re = p2r * f2r - p2i * f2i
                ua, ur, ui = a0, s1r * comb_sr[cc, 0], s1i * comb_si[cc, 0]
                for d in range(nd):
                    ct = comb_ct[cc, d]
                    Abr[d, ua] += ct * ur
                    Abi[d, ua] += ct * ui
                w1r = f0r * f2r - f0i * f2i
                w1i = f0r * f2i + f0i * f2r
                ua, ur, ui = a1, w1r * comb_sr[cc, 1], w1i * comb_si[cc, 1]
                for d in range(nd):
                    ct = comb_ct[cc, d]
                    Abr[d, ua] += ct * ur
                    Abi[d, ua] += ct * ui
                ua, ur, ui = a2, p2r * comb_sr[cc, 2], p2i * comb_si[cc, 2]
                for d in range(nd):
                    ct = comb_ct[cc, d]
                    Abr[d, ua] += ct * ur
                    Abi[d, ua] += ct * ui
            else:
                for t in range(rk):
                    a = comb_aidx[cc, t]
                    fr[t] = comb_sr[cc, t] * Ar[a]
                    fi[t] = comb_si[cc, t] * Ai[a]
                prod_re = prefix_suffix(rk, fr, fi, pr, pi, sr, si)
                for t in range(rk):
                    wr, wi = others_product(t, rk, pr, pi, sr, si)
                    ua, ur, ui = comb_aidx[cc, t], wr * comb_sr[cc, t], wi * comb_si[cc, t]
                    for d in range(nd):
                        ct = comb_ct[cc, d]
                        Abr[d, ua] += ct * ur
                        Abi[d, ua] += ct * ui
            for d in range(nd):
                rho[d] += comb_ct[cc, d] * prod_re
        # ---- embedding, core repulsion, energy: docs/model.md (M20)
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
        # docs/model.md (M26): ∂E(i)/∂r_ij through R_nl, Ŷ_lm, φ and the switch
        for q in range(cnt):
            mu_j = sj[q]
            lb = b_int[mu_i, mu_j, BI_LMAX]
            s_r = w_core * dval[q, nf - 1] if core else w_core * 0.0
            if q == qmin:
                s_r += (e_ace - rho_core) * dfcut_dr
            for d in range(nd):
                s_r += rbar[d] * dval[q, d]
            s_r, gx, gy, gz = pair_terms_nl(b_int[mu_i, mu_j, BI_NRAD], lb, mu_j, nmax, nlm, lmax1, dmax, q, val, dval,
                                            Abr, Abi, Yr, Yi, dYr, dYi, s_r, 0.0, 0.0, 0.0)
            p = sel[q]
            pairf[p, 0] = s_r * uu[q, 0] + gx
            pairf[p, 1] = s_r * uu[q, 1] + gy
            pairf[p, 2] = s_r * uu[q, 2] + gz


# its one signature, for paceui.ace.precompile
EVAL_ATOMS = KernelSpec("paceui.ace.eval_kernels", "eval_atom_range",
                        "i i i1 i1 i1 f2 i3 f3 i i2 f2 f1 i1 i1 i2 f2 f2 i1 f2 f3 f1 i b i i i f f1 f2 f1")
