"""Linear and Bayesian solves: the numba design equals the model, the QR solve reaches the loss minimum,
the evidence picks a ridge parameter near the validation optimum, committees and the fitter's optimizer names."""

from __future__ import annotations

import numpy as np
import pytest

from paceui.ace.basis import build_potential
from paceui.fit.design import LinearSolveError, assemble, design_rows
from paceui.fit.linear_solve import bayesian_ridge, ridge, solve
from paceui.fit.loss import ACELoss, LossConfig
from tests.test_fit_stress import periodic_problem

BASE = {"elements": ["Al", "Ni"],
        "embeddings": {"ALL": {"npot": "FinnisSinclairShiftedScaled", "fs_parameters": [1, 1], "ndensity": 1}},
        "bonds": {"ALL": {"radbase": "ChebExpCos", "radparameters": [5.25], "rcut": 4.5, "dcut": 0.01}},
        "functions": {"ALL": {"nradmax_by_orders": [4, 2, 1], "lmax_by_orders": [0, 1, 1]}}}
CORE = {**BASE, "bonds": {"ALL": {**BASE["bonds"]["ALL"], "r_in": 2.2, "delta_in": 0.3,
                                  "core-repulsion": [100.0, 2.0]}}}
DENS2 = {**BASE, "embeddings": {"ALL": {"npot": "FinnisSinclairShiftedScaled", "fs_parameters": [1, 1, 2, 1],
                                        "ndensity": 2}}}


@pytest.mark.parametrize("basis", [BASE, CORE, DENS2], ids=["plain", "core-repulsion", "two-densities"])
def test_design_rows_reproduce_energies_forces_and_virials(basis):
    pot = build_potential(basis, seed=2)
    data, _ = periodic_problem(pot, seed=3)
    E, F, W, cols = design_rows(pot, data)
    loss = ACELoss(pot, LossConfig())
    th = loss.pmap.get(pot).copy()
    th[cols] = 0.0
    e0, f0, w0 = loss.predict_virials(th, data)
    c = np.random.default_rng(0).normal(size=len(cols))
    th[cols] = c
    e, f, w = loss.predict_virials(th, data)
    np.testing.assert_allclose(e0 + E @ c, e, rtol=1e-12, atol=1e-11 * np.abs(e).max())
    np.testing.assert_allclose(f0.ravel() + F @ c, f.ravel(), atol=1e-11 * np.abs(f).max())
    np.testing.assert_allclose(w0 + W @ c, w, atol=1e-11 * np.abs(w).max())


@pytest.mark.parametrize("chunk", [None, 1])
def test_ridge_solve_is_the_loss_minimum_with_stress(chunk):
    """The solve of the QR-reduced system is stationary in the coefficients for energies + forces +
    stresses with L2, whatever the chunking (one structure per chunk with chunk=1)."""
    pot = build_potential(CORE, seed=2)
    data, _ = periodic_problem(pot, n_struct=5, seed=4)
    cfg = LossConfig(kappa=0.3, stress=0.5, L2_coeffs=1e-5)
    system = assemble(pot, data, cfg, chunk_bytes=chunk)
    sol = ridge(system, cfg.L2_coeffs)
    loss = ACELoss(pot, cfg)
    th = system.theta0.copy()
    th[system.cols] = sol.coef
    res = loss(th, data)
    fm = loss.pmap.func_mask()
    assert np.abs(res.grad[fm]).max() < 1e-9 * max(1.0, np.abs(res.grad).max())
    assert res.loss == pytest.approx(sol.rss + cfg.L2_coeffs * float(sol.coef @ sol.coef), rel=1e-10)


def test_linear_embeddings_are_required():
    pot = build_potential({**BASE, "embeddings": {"ALL": {"npot": "FinnisSinclairShiftedScaled",
                                                          "fs_parameters": [1, 1, 1, 0.5], "ndensity": 2}}})
    data, _ = periodic_problem(pot, n_struct=1)
    with pytest.raises(LinearSolveError, match="linear embeddings"):
        assemble(pot, data, LossConfig(kappa=0.1))
    with pytest.raises(LinearSolveError, match="L1_coeffs"):
        assemble(build_potential(BASE), data, LossConfig(kappa=0.1, L1_coeffs=1e-3))


def _system_from_rows(X, b):
    from paceui.fit.design import LinearSystem

    Q, R = np.linalg.qr(X)
    qb = Q.T @ b
    return LinearSystem(R, qb, float(b @ b - qb @ qb), len(b), np.arange(X.shape[1]), np.zeros(X.shape[1]))


def test_evidence_regularisation_is_near_the_validation_optimum():
    """Rows of a real design (energies and forces of periodic Al–Ni cells), targets from coefficients drawn
    from a Gaussian prior plus noise: the evidence's α/β is within a factor 3 of the ridge parameter that a
    validation scan on held-out rows finds best."""
    pot = build_potential(BASE, seed=2)
    data, _ = periodic_problem(pot, n_struct=40, seed=5)
    E, F, W, cols = design_rows(pot, data)
    X = np.vstack([E / data.n_atoms[:, None], F])
    X = X / np.linalg.norm(X, axis=0).mean()
    rng = np.random.default_rng(7)
    perm = rng.permutation(len(X))
    tr, va = perm[: len(X) // 2], perm[len(X) // 2:]
    alpha_true, sigma = 4.0, 0.05
    c_true = rng.normal(size=X.shape[1]) / np.sqrt(alpha_true)
    b = X @ c_true + sigma * rng.normal(size=len(X))
    sys_tr = _system_from_rows(X[tr], b[tr])
    bay = bayesian_ridge(sys_tr)
    lams = np.logspace(-6, 1, 57)
    val = [float(np.sum((X[va] @ ridge(sys_tr, lam).coef - b[va]) ** 2)) for lam in lams]
    best = lams[int(np.argmin(val))]
    assert best / 3 <= bay.lam <= best * 3, (bay.lam, best, bay.alpha, bay.beta)
    assert bay.beta == pytest.approx(1 / sigma ** 2, rel=0.3)
    draws = bay.sample(400, seed=1)
    assert np.allclose(draws.mean(axis=0), bay.coef, atol=5 * np.abs(bay.cov_factor).max())
    ar = solve(sys_tr, "ard")
    assert np.isfinite(ar.coef).all() and ar.rss <= 1.5 * bay.rss


def test_fitter_runs_linear_solves_by_optimizer_name():
    from paceui.fit.config import FitConfig
    from paceui.fit.fitter import Fitter

    pot = build_potential(BASE, seed=2)
    data, _ = periodic_problem(pot, n_struct=4, seed=6)
    cfg = LossConfig(kappa=0.3, stress=0.2, L2_coeffs=1e-6)
    system = assemble(pot, data, cfg)
    want = ridge(system, cfg.L2_coeffs).coef
    for name in ("linear", "bayesian_ridge", "ard"):
        f = Fitter(pot, data, FitConfig(loss={"kappa": 0.3, "stress": 0.2, "L2_coeffs": 1e-6}, optimizer=name,
                                        maxiter=10))
        st = f.run()
        assert st.stop_reason == "converged" and f.state.iteration == 1, st.stop_message
        assert f.linear_solution.method == name
        if name == "linear":
            np.testing.assert_allclose(f.theta[system.cols], want, rtol=1e-9, atol=1e-12)
        assert st.history[-1]["loss"] <= st.history[0]["loss"]


def test_linear_cycle_evaluates_without_gradient_passes(monkeypatch):
    """A linear solve's records need errors only: no loss evaluation of the cycle asks for a gradient (a gradient
    pass of a 3106-function basis costs as much as the loss itself)."""
    from paceui.fit.config import FitConfig
    from paceui.fit.fitter import Fitter
    from paceui.fit.loss import ACELoss

    pot = build_potential(BASE, seed=2)
    data, _ = periodic_problem(pot, n_struct=4, seed=6)
    test, _ = periodic_problem(pot, n_struct=2, seed=7)
    asked: list[tuple[bool, bool]] = []
    call = ACELoss.__call__

    def spy(self, theta, d, grad=True):
        asked.append((grad, d is data))
        return call(self, theta, d, grad=grad)

    monkeypatch.setattr(ACELoss, "__call__", spy)
    f = Fitter(pot, data, FitConfig(loss={"kappa": 0.3, "L2_coeffs": 1e-6}, optimizer="bayesian_ridge", maxiter=10),
               test=test)
    st = f.run()
    assert st.stop_reason == "converged" and not any(g for g, _ in asked), asked
    # the training set is evaluated for the two records only: the cycle's end reuses the last record's loss
    assert sum(on_train for _, on_train in asked) == 2, asked
    assert st.history[-1]["loss"] == pytest.approx(f.loss(f.theta, data, grad=False).loss, rel=1e-12)


def test_session_runs_a_bayesian_solve_and_reports_groups(tmp_path):
    """A session with ``optimizer: bayesian_ridge`` on Zuo structures: one solve, converged, and the
    predictions carry the per-group table."""
    from paceui.session import Session
    from paceui.session.testing import zuo_frame

    basis = {"elements": ["Cu"],
             "embeddings": {"ALL": {"npot": "FinnisSinclairShiftedScaled", "fs_parameters": [1, 1], "ndensity": 1}},
             "bonds": {"ALL": {"radbase": "ChebExpCos", "radparameters": [5.25], "rcut": 4.5, "dcut": 0.01}},
             "functions": {"ALL": {"nradmax_by_orders": [6, 2, 1], "lmax_by_orders": [0, 1, 1]}}}
    s = Session.from_objects(basis, zuo_frame(12), {"loss": {"kappa": 0.3, "L2_coeffs": 1e-8},
                                                     "optimizer": "bayesian_ridge", "maxiter": 20},
                             path=tmp_path / "s", data_config={"reference_energy": "auto", "test_size": 3})
    try:
        st = s.run(iterations=20)
        h = s.history
        assert len(h) == 2 and h["loss"].iloc[-1] < h["loss"].iloc[0], (st, h)
        p = s.predictions("test")
        assert list(p.groups["group"]) == ["default", "ALL"] and p.groups["n_structures"].iloc[-1] == 3
    finally:
        s.close()


def test_fewer_rows_than_columns_solve_on_the_rows_and_keep_the_prior_elsewhere():
    """A design of r < P rows (a small data set, a large basis): the solves take the SVD of R's r non-zero rows
    (r²P, not P³) and give what the SVD of the whole zero-padded R gives: the same ridge and Bayesian
    coefficients, α, β and evidence; posterior draws have the covariance V diag(1/(βs² + α)) Vᵀ over all P
    directions, the unseen ones at the prior's 1/α."""
    from paceui.fit.design import LinearSystem

    rng = np.random.default_rng(4)
    r, P = 4, 7
    X, b = rng.normal(size=(r, P)), rng.normal(size=r)
    Ra = np.linalg.qr(np.column_stack([X, b]), mode="r")
    R, qb = np.zeros((P, P)), np.zeros(P)
    R[:r], qb[:r] = Ra[:, :P], Ra[:, P]
    system = LinearSystem(R, qb, 0.0, r, np.arange(P), np.zeros(P))
    U, s, Vt = np.linalg.svd(R)           # the whole padded R: P - r zero singular values
    z = U.T @ qb
    lam = 0.3
    np.testing.assert_allclose(ridge(system, lam).coef, Vt.T @ (s / (s * s + lam) * z), rtol=1e-10, atol=1e-12)
    bay = bayesian_ridge(system)
    a, be = bay.alpha, bay.beta
    np.testing.assert_allclose(bay.coef, Vt.T @ (be * s / (be * s * s + a) * z), rtol=1e-9, atol=1e-12)
    lp = be * s * s + a
    log_ev = 0.5 * (P * np.log(a) + r * np.log(be) - be * bay.rss - a * float(bay.coef @ bay.coef)
                    - float(np.sum(np.log(lp))) - r * np.log(2 * np.pi))
    assert bay.log_evidence == pytest.approx(log_ev, rel=1e-10)
    cov = (Vt.T / lp) @ Vt
    draws = bay.sample(200_000, seed=1) - bay.coef
    np.testing.assert_allclose(np.cov(draws.T), cov, atol=0.02 * np.abs(cov).max())
    assert bay.cov_factor.shape == (P, r)
