"""The analytic loss gradient equals finite differences, term by term and for every model feature."""

from __future__ import annotations

import numpy as np
import pytest

from paceui.ace.yaml_io import load_potential
from paceui.fit.loss import ACELoss, LossConfig
from tests.conftest import POTENTIALS, modified_potential, need_reference
from tests.fitdata import random_problem


def _fd(loss, th, data, i):
    h = 1e-6 * max(1.0, abs(th[i]))  # small: F'' of m<1 embeddings jumps at ρ = 0

    def L(x):
        t = th.copy()
        t[i] += x
        return loss(t, data, grad=False).loss
    return (8 * (L(h) - L(-h)) - (L(2 * h) - L(-2 * h))) / (12 * h)


CASES = [("Cu-III.yaml", None, LossConfig(kappa=0.4)),  # ndensity 2, ChebExpCos, rank 4
         ("Al-Ni_opt_all.yaml", None, LossConfig(kappa=0.5)),  # 2 species, FS + FSSS, core repulsion
         ("Al-Ni_opt_all.yaml", "SBessel", LossConfig(kappa=0.5)),
         ("Al-Ni_opt_all.yaml", "ChebLinear", LossConfig(kappa=0.5)),
         ("Al-Ni_opt_all.yaml", "distance", LossConfig(kappa=0.5)),
         ("Al-Ni_opt_all.yaml", "zbl", LossConfig(kappa=0.5)),
         ("ternary_AlCuZn.yaml", None, LossConfig(kappa=0.7)),  # ternary blocks
         ("Cu-III.yaml", None, LossConfig(kappa=0.3, L1_coeffs=1e-3, L2_coeffs=1e-2, w0_rad=1e-2, w1_rad=1e-2,
                                          w2_rad=1e-3, w_orth=1e-2))]


ANALYTIC = [("Al-Ni_opt_all.yaml", "zbl", LossConfig(kappa=0.5))]  # ACELoss(spline=False): pacemaker's model
PARAMS = [(*c, True) for c in CASES] + [(*c, False) for c in ANALYTIC]


@pytest.mark.parametrize("name,kind,cfg,spline", PARAMS,
                         ids=[f"{n}-{k}-{i}-{'spline' if sp else 'analytic'}" for i, (n, k, _, sp) in enumerate(PARAMS)])
def test_gradient_equals_finite_differences(name, kind, cfg, spline):
    need_reference()
    pot = modified_potential(name, kind)
    loss = ACELoss(pot, cfg, spline=spline)
    data = random_problem(pot)
    rng = np.random.default_rng(1)
    th = loss.pmap.get(pot) * (1 + 0.1 * rng.normal(size=loss.pmap.size)) + 0.01 * rng.normal(size=loss.pmap.size)
    res = loss(th, data)
    scale = np.abs(res.grad).max()
    crad_idx = rng.choice(loss.pmap.n_crad, size=min(8, loss.pmap.n_crad), replace=False)
    func_idx = loss.pmap.n_crad + rng.choice(loss.pmap.size - loss.pmap.n_crad, size=12, replace=False)
    for i in np.concatenate([crad_idx, func_idx]):
        fd = _fd(loss, th, data, i)
        assert abs(fd - res.grad[i]) <= 1e-4 * max(abs(fd), 1e-3 * scale), (i, fd, res.grad[i])


def test_least_squares_form_is_consistent(reference):
    """Σ r² equals the loss without L1 (here 0) and Jᵀr equals half the gradient."""
    pot = load_potential(POTENTIALS / "Cu-III.yaml")
    loss = ACELoss(pot, LossConfig(kappa=0.3, L2_coeffs=1e-3))
    data = random_problem(pot, seed=3)
    th = loss.pmap.get(pot)
    r = loss.residuals(th, data)
    res = loss(th, data)
    assert np.sum(r * r) == pytest.approx(res.loss, rel=1e-12)
    np.testing.assert_allclose(loss.residuals_vjp(th, data, r), 0.5 * res.grad, rtol=1e-10, atol=1e-12 * np.abs(res.grad).max())


@pytest.mark.parametrize("spline", [True, False])
def test_predict_matches_the_evaluator(reference, spline):
    """The fit's model is the evaluator's: tabulated (the fit's table, R_nl rebuilt from g_k's coefficients,
    against the evaluator's own table with rank-1 folded in: the same function to rounding) or analytic."""
    from paceui.ace.evaluator import ACEModel

    pot = load_potential(POTENTIALS / "multispecies_AlNi.yaml")
    loss = ACELoss(pot, LossConfig(), spline=spline)
    data = random_problem(pot, n_struct=3, seed=5)
    e, f = loss.predict(loss.pmap.get(pot), data)
    model = ACEModel(pot, spline=spline)
    from paceui.ace.neighbors import NeighborList
    for s in range(data.n_struct):
        a0, a1 = data.struct_off[s], data.struct_off[s + 1]
        offs = data.nbr_off[a0:a1 + 1] - data.nbr_off[a0]
        sl = slice(data.nbr_off[a0], data.nbr_off[a1])
        nl = NeighborList(offsets=offs, j=data.nbr_j[sl] - a0, vec=data.vec[sl], shift=np.zeros((sl.stop - sl.start, 3), np.int64))
        r = model.evaluate_arrays(data.species[a0:a1], nl)
        assert r.energy == pytest.approx(e[s], rel=1e-12)
        np.testing.assert_allclose(r.forces, f[a0:a1], atol=1e-10)


def test_fit_table_follows_new_coefficients(reference):
    """After new θ the fit's table (R_nl rebuilt from the g_k columns) gives the evaluator's energies and forces
    for the potential of that θ (its own table, built from R_nl at the nodes), and differs from the analytic
    model by the spline error only."""
    from paceui.ace.evaluator import ACEModel
    from paceui.ace.neighbors import NeighborList

    pot = load_potential(POTENTIALS / "multispecies_AlNi.yaml")
    loss = ACELoss(pot, LossConfig())
    data = random_problem(pot, n_struct=2, seed=8)
    th = loss.pmap.get(pot) * (1 + 0.2 * np.random.default_rng(4).normal(size=loss.pmap.size))
    loss.predict(loss.pmap.get(pot), data)  # a table of the old θ first
    e, f = loss.predict(th, data)
    e_an, f_an = ACELoss(pot, LossConfig(), spline=False).predict(th, data)
    new = loss.pmap.apply(pot, th)
    model = ACEModel(new)
    ref = model._sp_tab  # the evaluator's unfolded table: R_nl's coefficients from R_nl at the nodes
    np.testing.assert_allclose(loss.model._sp_tab, ref, rtol=0, atol=1e-13 * np.abs(ref).max())
    for s in range(data.n_struct):
        a0, a1 = data.struct_off[s], data.struct_off[s + 1]
        offs = data.nbr_off[a0:a1 + 1] - data.nbr_off[a0]
        sl = slice(data.nbr_off[a0], data.nbr_off[a1])
        nl = NeighborList(offsets=offs, j=data.nbr_j[sl] - a0, vec=data.vec[sl],
                          shift=np.zeros((sl.stop - sl.start, 3), np.int64))
        r = model.evaluate_arrays(data.species[a0:a1], nl)
        assert r.energy == pytest.approx(e[s], rel=1e-12)
        np.testing.assert_allclose(r.forces, f[a0:a1], atol=1e-10)
    assert 0 < np.abs(e - e_an).max() < 1e-9 * np.abs(e).max()  # 5e-12 here
    assert 0 < np.abs(f - f_an).max() < 1e-6 * np.abs(f).max()  # 9e-9 here


@pytest.mark.parametrize("kind", [None, "zbl"])
def test_chunked_fused_passes_equal_the_two_pass_gradient(reference, monkeypatch, kind):
    """Both passes chunk by chunk with kept pair data (one structure per chunk here) give the same loss and
    gradient as pass 1 over all data followed by pass 2 recomputing every pair quantity."""
    import paceui.fit.loss as L

    pot = modified_potential("Al-Ni_opt_all.yaml", kind)
    loss = ACELoss(pot, LossConfig(kappa=0.4))
    data = random_problem(pot, n_struct=4, seed=11)
    th = loss.pmap.get(pot) * (1 + 0.1 * np.random.default_rng(0).normal(size=loss.pmap.size))
    monkeypatch.setattr(L, "CHUNK_BYTES", 1)
    res = loss(th, data)
    assert len(loss._chunks(data)) == data.n_struct
    e, f = loss.predict(th, data)
    nat = data.n_atoms.astype(float)
    g = np.zeros(loss.pmap.size)
    loss._pass2(data, 2.0 * data.w_f[:, None] * (f - data.f_ref),
                2.0 * 0.6 * data.w_e * (e - data.e_ref) / nat ** 2, 0.4, g)
    loss._regularize(th, loss._load(th), {}, g)
    np.testing.assert_allclose(res.e_pred, e, rtol=1e-14)
    np.testing.assert_allclose(res.f_pred, f, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(res.grad, g, rtol=1e-12, atol=1e-13 * np.abs(g).max())
