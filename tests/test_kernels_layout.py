"""The evaluator kernel's data layout: real-arithmetic harmonics and the folded rank-1 spline columns."""

from __future__ import annotations

import numpy as np

from paceui.ace import kernels as K
from paceui.ace.evaluator import ACEModel
from paceui.ace.harmonics import n_lm, ylm_real_row, ylm_with_grad
from tests.conftest import POTENTIALS


def test_real_harmonics_equal_complex_ones():
    rng = np.random.default_rng(3)
    for lmax in (0, 1, 2, 4, 7):
        nlm = n_lm(lmax)
        P, dP = np.zeros(nlm), np.zeros(nlm)
        Y, dY = np.zeros(nlm, np.complex128), np.zeros((nlm, 3), np.complex128)
        Yr, Yi, dYr, dYi = np.zeros((2, nlm)), np.zeros((2, nlm)), np.zeros((2, 3, nlm)), np.zeros((2, 3, nlm))
        for _ in range(20):
            v = rng.normal(size=3) * rng.uniform(0.5, 6.0)
            r = float(np.linalg.norm(v))
            u = v / r
            ylm_with_grad(u[0], u[1], u[2], r, lmax, P, dP, Y, dY)
            ylm_real_row(u[0], u[1], u[2], 1.0 / r, lmax, P, dP, Yr, Yi, dYr, dYi, 1)
            assert np.abs(Y - (Yr[1] + 1j * Yi[1])).max() < 1e-14
            assert np.abs(dY.T - (dYr[1] + 1j * dYi[1])).max() < 1e-13


def test_folded_rank1_columns_are_the_density_combinations(reference):
    m = ACEModel(POTENTIALS / "multispecies_AlNi.yaml")
    S, kmax, dmax = len(m.elements), m.kmax, m._r1_ct.shape[1]
    folded = m.compiled.sp_tab
    assert folded.shape[-1] == dmax + m.nmax * (m.lmax + 1) + 1  # g_k columns (kmax) -> one per density
    np.testing.assert_array_equal(folded[..., dmax:], m._sp_tab[..., kmax:])
    for mu in range(S):
        want = np.zeros((S,) + folded.shape[1:3] + (dmax,))
        for f in range(m._sp_r1[mu], m._sp_r1[mu + 1]):
            mu_j, k = divmod(int(m._r1_aidx[f]), kmax)
            want[mu_j] += m._sp_tab[mu * S + mu_j, :, :, k, None] * m._r1_ct[f]
        np.testing.assert_allclose(folded[mu * S:(mu + 1) * S, ..., :dmax], want, rtol=1e-13, atol=1e-13)
    assert K.fold_rank1(m._sp_tab, kmax, m._sp_r1, m._r1_aidx, m._r1_ct).shape == folded.shape


def test_spline_and_analytic_kernels_agree(reference):
    from ase.build import bulk

    at = bulk("Al", "fcc", a=4.05, cubic=True).repeat(2)
    at.symbols[[1, 5, 6]] = "Ni"
    at.rattle(0.05, seed=2)
    rs, ra = (ACEModel(POTENTIALS / "multispecies_AlNi.yaml", spline=s).evaluate(at) for s in (True, False))
    assert abs(rs.energy - ra.energy) < 1e-9 * abs(ra.energy)  # the spline's own error, not a layout slip
    assert np.abs(rs.forces - ra.forces).max() < 1e-7 * np.abs(ra.forces).max()


def test_k_outer_radial_rows_equal_crad_dot2(reference):
    """The analytic radial functions of the fit's pass 1 and of the projections (R_nl as k-outer updates on
    crad_by_k's copy, radial_rows) are crad_dot2's sums (those the spline tables are built from), bit for bit
    (±0 past a bond's nradmax or lmax), with g_k and the core term of radial_basis, core_repulsion; on bonds
    of different sizes, written into row 1 of two."""
    from paceui.ace.contraction import crad_dot2
    from paceui.ace.radial import core_repulsion, radial_basis

    for name in ("multispecies_AlNi.yaml", "Al-r1234l12_crad_dif.yaml"):
        c = ACEModel(POTENTIALS / name, spline=False).compiled
        S, kmax, lmax1 = c.b_int.shape[0], c.kmax, c.lmax + 1
        nr = c.nmax * lmax1
        nf = kmax + nr + 1
        ctr = K.crad_by_k(c.crad, c.b_int, nr)
        rng = np.random.default_rng(5)
        b, db = np.zeros((2, nf)), np.zeros((2, nf))
        g, dg, T, dT = (np.zeros(kmax + 2) for _ in range(4))
        rv = np.zeros(2 * nr)
        for mu_i in range(S):
            for mu_j in range(S):
                bi, bp = c.b_int[mu_i, mu_j], c.b_par[mu_i, mu_j]
                nbase, nrad, lb = bi[K.BI_NBASE], bi[K.BI_NRAD], bi[K.BI_LMAX]
                for r in rng.uniform(0.5, bp[K.BP_RC], size=25):
                    K.radial_rows(mu_i, mu_j, r, c.b_int, c.b_par, ctr, c.inner, kmax, nr, b, db, 1, g, dg, T, dT,
                                  rv)
                    radial_basis(bi[K.BI_CODE], bp[K.BP_LAM], bp[K.BP_RC], bp[K.BP_DC], bp[K.BP_RIN], bp[K.BP_DIN],
                                 c.inner, nbase, r, g, dg, T, dT)
                    a, da = np.zeros(nf), np.zeros(nf)
                    a[:nbase], da[:nbase] = g[:nbase], dg[:nbase]
                    for n in range(nrad):
                        for l in range(lb + 1):
                            a[kmax + n * lmax1 + l], da[kmax + n * lmax1 + l] = crad_dot2(
                                c.crad, mu_i, mu_j, n, l, nbase, g, dg)
                    a[-1], da[-1] = core_repulsion(c.inner, bp[K.BP_PRE], bp[K.BP_LAMC], bp[K.BP_RC], bp[K.BP_DC],
                                                   bp[K.BP_RIN], bp[K.BP_DIN], bp[K.BP_ZI], bp[K.BP_ZJ], r)
                    assert np.any(a[kmax:-1] != 0.0)
                    np.testing.assert_array_equal(b[1], a)
                    np.testing.assert_array_equal(db[1], da)
                    assert not b[0].any()
