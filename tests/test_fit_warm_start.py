"""The linear warm start (``fit: warm_start``) on Zuo Cu structures: the warm-started potential with a
non-linear second density reproduces the one-density linear solution exactly, iteration 0's loss is the
solve's, the gradient in the second density is finite and the optimizer goes on from there; pacemaker
inputs without the key are unchanged; bad values are one-line errors naming the key."""

from __future__ import annotations

import copy
import gzip
from pathlib import Path

import numpy as np
import pytest
import yaml

from paceui.ace.basis import build_potential
from paceui.errors import InputError, SettingsError
from paceui.fit.arrays import FitArrays, fit_arrays
from paceui.fit.config import FitConfig, InputConfig
from paceui.fit.design import LinearSolveError, assemble
from paceui.fit.fitter import Fitter
from paceui.fit.linear_solve import bayesian_ridge, ridge
from paceui.fit.loss import ACELoss, LossConfig
from paceui.fit.warm_start import first_density, linear_warm_start, warm_start_name

ROOT = Path(__file__).resolve().parents[1]
ZUO_CU = ROOT / "assets" / "zuo" / "Cu_train.xyz.gz"
BASIS = {"elements": ["Cu"],
         "embeddings": {"ALL": {"npot": "FinnisSinclairShiftedScaled", "fs_parameters": [1, 1, 1, 0.5],
                                "ndensity": 2}},
         "bonds": {"ALL": {"radbase": "ChebExpCos", "radparameters": [5.25], "rcut": 4.5, "dcut": 0.01}},
         "functions": {"ALL": {"nradmax_by_orders": [6, 3, 2], "lmax_by_orders": [0, 2, 1]}}}


def _small_zuo(tmp: Path, n: int = 8) -> Path:
    """The first ``n`` Zuo Cu training structures (real DFT energies and forces) as an extxyz file."""
    with gzip.open(ZUO_CU, "rt") as fh:
        text = fh.read().splitlines()
    out, i = [], 0
    while len(out) < n and i < len(text):
        k = int(text[i])
        out.append("\n".join(text[i:i + k + 2]))
        i += k + 2
    p = tmp / "cu_small.xyz"
    p.write_text("\n".join(out) + "\n")
    return p


@pytest.fixture(scope="module")
def cu(tmp_path_factory) -> tuple[FitArrays, Path]:
    from paceui.data import prepare_dataset

    path = _small_zuo(tmp_path_factory.mktemp("zuo"))
    prep = prepare_dataset({"filename": str(path), "reference_energy": "auto"}, elements=["Cu"], cutoff=4.5,
                           use_cache=False)
    return fit_arrays(prep.train, prep.train_neighbors), path


def _fit_cfg(**kw) -> FitConfig:
    return FitConfig(**{"loss": {"kappa": 0.1}, "optimizer": "BFGS", "maxiter": 0, **kw})


@pytest.mark.parametrize("method", ["bayesian_ridge", "linear"])
def test_warm_start_equals_the_linear_solution(cu, method):
    """After the warm start and 0 iterations: energies and forces of the two-density potential (ρ₁ + F(ρ₂),
    m₂ = 0.5) equal the one-density linear solution's; iteration 0's loss is the solve's ‖Xc − b‖² (+ L2)."""
    train, _ = cu
    pot = build_potential(BASIS, seed=3)
    cfg = LossConfig(kappa=0.1, L2_coeffs=1e-7)
    fitter = Fitter(pot, train, _fit_cfg(warm_start=method, loss={"kappa": 0.1, "L2_coeffs": 1e-7}))
    rec = fitter.step()
    assert rec is not None and rec.event == "initial" and fitter.step() is None  # maxiter 0
    ws = fitter.warm_start
    assert ws is not None and ws.solution.method == method
    # the same solve done here by hand on the one-density potential
    lin = first_density(pot)
    system = assemble(lin, train, cfg)
    sol = bayesian_ridge(system) if method == "bayesian_ridge" else ridge(system, cfg.L2_coeffs)
    np.testing.assert_allclose(ws.solution.coef, sol.coef, rtol=1e-12, atol=1e-14)
    th1 = system.theta0.copy()
    th1[system.cols] = sol.coef
    e_lin, f_lin = ACELoss(lin, cfg).predict(th1, train)
    out = fitter.potential()
    assert all(len(f.coeffs) == 2 and f.coeffs[1] == 0.0 for f in out.functions())
    assert any(f.coeffs[0] != 0.0 for f in out.functions())
    loss = ACELoss(out, cfg)
    th = loss.pmap.get(out)
    e, f = loss.predict(th, train)
    np.testing.assert_allclose(e, e_lin, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(f, f_lin, rtol=0, atol=1e-10)
    want = sol.rss + cfg.L2_coeffs * float(sol.coef @ sol.coef)
    assert rec.loss == pytest.approx(want, rel=1e-10)
    assert fitter.state.history[0]["loss"] == pytest.approx(want, rel=1e-10)
    # the second density's gradient at 0 is finite and not 0 (F'(0) = 1.25 for m = 0.5): BFGS can move it
    g = loss(th, train).grad
    d2 = np.concatenate([np.arange(sl.start + 1, sl.stop) for sl in loss.pmap.func_slices])
    assert np.isfinite(g).all() and np.abs(g[d2]).max() > 0.0
    if method == "linear":  # the exact least-squares minimum in the first density: stationary there
        d1 = np.array([sl.start for sl in loss.pmap.func_slices])
        assert np.abs(g[d1]).max() < 1e-6 * np.abs(g).max()


def test_shifted_scaled_slope_at_zero_is_finite():
    """F(0) = 0 and F'(0) = 1 + y₀ − x₀ (docs/model.md (M21)) for the embedding kernel, against central
    differences on either side of 0."""
    from paceui.ace.radial import FS_SHIFTED_SCALED, embedding2

    for m in (0.5, 0.25, 0.75, 2.0):
        nu = 1.0 / m
        x0, y0 = nu ** (nu / (1 - nu)), nu ** (1 / (1 - nu))
        F0, dF0, _ = embedding2(FS_SHIFTED_SCALED, 0.0, m)
        assert F0 == 0.0 and dF0 == pytest.approx(1 + y0 - x0, rel=1e-14)
        h = 1e-6
        for s in (1.0, -1.0):
            num = (embedding2(FS_SHIFTED_SCALED, s * 2 * h, m)[0] - embedding2(FS_SHIFTED_SCALED, 0.0, m)[0]) / (2 * h * s)
            assert num == pytest.approx(dF0, rel=1e-5)


def test_warm_started_fit_goes_on_and_improves(cu):
    """Two BFGS iterations from the warm start lower the loss below the linear solution's (the non-linear
    density and the radial functions add freedom); the default start is far above both."""
    train, _ = cu
    pot = build_potential(BASIS, seed=3)
    warm = Fitter(pot, train, _fit_cfg(warm_start="bayesian_ridge", maxiter=2))
    cold = Fitter(pot, train, _fit_cfg(maxiter=2))
    warm.run()
    cold.run()
    lw = [h["loss"] for h in warm.state.history]
    lc = [h["loss"] for h in cold.state.history]
    assert lw[-1] < lw[0] and lw[0] < lc[0]
    assert lw[-1] < lc[-1]


def test_pause_during_the_warm_start_redoes_it(cu):
    """A set interrupt (a session's pause) abandons the warm start's assembly between chunks of structures
    (FitInterrupted, nothing recorded); the next step does the whole warm start and gives the same start."""
    from paceui.fit.fitter import FitInterrupted

    train, _ = cu
    pot = build_potential(BASIS, seed=3)
    ref = Fitter(pot, train, _fit_cfg(warm_start="linear")).step()
    fitter = Fitter(pot, train, _fit_cfg(warm_start="linear"))
    fitter.interruptible = True
    fitter.interrupt.set()
    with pytest.raises(FitInterrupted):
        fitter.step()
    assert fitter.warm_start is None and not fitter.state.history
    fitter.interrupt.clear()
    rec = fitter.step()
    assert rec is not None and ref is not None and rec.loss == ref.loss and fitter.warm_start is not None


def test_switched_on_during_a_fit_restarts_from_the_solve(cu):
    """What a session does when warm_start is switched on mid-fit (Fitter.restart(warm=True)): the new cycle's
    iteration 0 is the linear solve with the radial coefficients the fit has reached."""
    from dataclasses import replace

    train, _ = cu
    pot = build_potential(BASIS, seed=3)
    cfg = _fit_cfg(maxiter=3)
    fitter = Fitter(pot, train, cfg)
    fitter.run(2)
    moved = fitter.potential()
    fitter.update(replace(cfg, warm_start="linear"))
    fitter.restart(warm=True)
    rec = fitter.step()
    assert rec is not None and rec.event == "initial" and rec.cycle == 1
    want = linear_warm_start(moved, train, LossConfig(kappa=0.1), "linear")
    np.testing.assert_allclose(fitter.theta, want.theta, rtol=1e-10, atol=1e-12)
    assert rec.loss == pytest.approx(want.solution.rss, rel=1e-10)


def test_ladder_warm_start_is_the_first_steps_functions(cu):
    """With a ladder the warm start solves the first step's functions; the next step adds its functions at
    zero (its iteration 0 starts at the loss the first step ended with)."""
    train, _ = cu
    pot = build_potential(BASIS, seed=3)
    n = len(pot.functions())
    fitter = Fitter(pot, train, _fit_cfg(warm_start="bayesian_ridge", maxiter=1, ladder_step=n // 2))
    fitter.run()
    ws = fitter.warm_start
    assert ws is not None and len(ws.solution.coef) == n // 2
    first = [h for h in fitter.state.history if h["ladder_step"] == 1]
    end0 = [h for h in fitter.state.history if h["ladder_step"] == 0][-1]["loss"]
    assert first and first[0]["loss"] == pytest.approx(end0, rel=1e-10)


def test_pacemaker_input_without_the_key_is_unchanged(cu):
    """No warm_start key: FitConfig's default, and the fit's first record is pacemaker's start (the initial
    coefficients, all 0), bit for bit the same as with warm_start: none."""
    train, path = cu
    d = {"cutoff": 4.5, "potential": BASIS, "data": {"filename": str(path)}, "fit": {"loss": {"kappa": 0.1}}}
    assert InputConfig.from_dict(d).fit.warm_start is None
    off = copy.deepcopy(d)
    off["fit"]["warm_start"] = "none"
    assert InputConfig.from_dict(off).fit == InputConfig.from_dict(d).fit
    pot = build_potential(BASIS, seed=3)
    runs = []
    for inp in (d, off):
        fit = InputConfig.from_dict({**inp, "fit": {**inp["fit"], "maxiter": 1}}).fit
        runs.append(Fitter(pot, train, fit))
        runs[-1].run()
        assert runs[-1].warm_start is None
    assert all(c == 0.0 for f in pot.functions() for c in f.coeffs)  # pacemaker's initial coefficients
    loss = ACELoss(pot, LossConfig(kappa=0.1))
    assert runs[0].state.history[0]["loss"] == loss(loss.pmap.get(pot), train, grad=False).loss
    assert [h["loss"] for h in runs[0].state.history] == [h["loss"] for h in runs[1].state.history]


@pytest.mark.parametrize("value, msg", [
    ("bayes_ridge", "fit.warm_start must be none, bayesian_ridge, linear"),
    (3, "fit.warm_start must be none, bayesian_ridge, linear"),
    ([1], "fit.warm_start must be none"),
])
def test_bad_values_name_the_key(cu, value, msg):
    _, path = cu
    d = {"cutoff": 4.5, "potential": BASIS, "data": {"filename": str(path)}, "fit": {"warm_start": value}}
    with pytest.raises(InputError, match=msg) as exc:
        InputConfig.from_dict(d, source="in.yaml")
    assert "\n" not in str(exc.value) and str(exc.value).startswith("in.yaml: fit.warm_start")
    with pytest.raises(InputError, match="fit.warm_start runs its linear solve in this process"):
        InputConfig.from_dict({**d, "fit": {"warm_start": "ard"}, "backend": {"evaluator": "dask"}})


def test_names_and_refusals(cu):
    train, _ = cu
    assert [warm_start_name(v) for v in (None, False, "none", "", "ridge", "BRR", "ard")] == \
        [None, None, None, None, "linear", "bayesian_ridge", "ard"]
    pot = build_potential({**BASIS, "embeddings": {"ALL": {"npot": "FinnisSinclairShiftedScaled",
                                                           "fs_parameters": [1, 0.5, 1, 1], "ndensity": 2}}})
    with pytest.raises(LinearSolveError, match="first density linear"):
        linear_warm_start(pot, train, LossConfig(kappa=0.1), "bayesian_ridge")
    fitter = Fitter(build_potential(BASIS), train, _fit_cfg(warm_start="bayesian_ridge", trainable_parameters="radial"))
    with pytest.raises(InputError, match="fit.warm_start sets every function coefficient"):
        fitter.step()


def test_paceui_fit_cli_and_session(cu, tmp_path):
    """``paceui fit input.yaml`` with warm_start logs the solve and its iteration 0 is the warm-started loss;
    a session's change_settings(warm_start=...) before start does the same, and the settings table gives the
    key to both forms."""
    from paceui.fit.runner import run_fit
    from paceui.fit.settings_table import form_settings, setting
    from paceui.session import Session

    _, path = cu
    inp = {"cutoff": 4.5, "seed": 3, "potential": BASIS, "data": {"filename": str(path), "reference_energy": "auto"},
           "fit": {"loss": {"kappa": 0.1}, "optimizer": "BFGS", "maxiter": 1, "warm_start": "bayesian_ridge"},
           "backend": {"evaluator": "numba", "display_step": 1}}
    (tmp_path / "input.yaml").write_text(yaml.safe_dump(inp))
    run = run_fit(tmp_path / "input.yaml", workdir=tmp_path, no_predict=True)
    assert run.fitter is not None and run.fitter.warm_start is not None
    log = (tmp_path / "log.txt").read_text()
    assert "linear warm start: bayesian_ridge solve of" in log
    l0 = run.fitter.state.history[0]["loss"]
    assert l0 == pytest.approx(run.fitter.warm_start.solution.rss, rel=1e-10)

    assert setting("warm_start") in form_settings() and setting("warm_start").path == "fit.warm_start"
    cold = {**inp, "fit": {k: v for k, v in inp["fit"].items() if k != "warm_start"}}
    (tmp_path / "cold.yaml").write_text(yaml.safe_dump(cold))
    with Session.from_input(tmp_path / "cold.yaml") as s:
        with pytest.raises(SettingsError, match="fit.warm_start must be none"):
            s.preview_settings(warm_start="yes")
        report = s.change_settings(warm_start="bayesian_ridge").result(timeout=60)
        assert report.kind == "restart" and s.settings["fit"]["warm_start"] == "bayesian_ridge"
        s.run(iterations=1, timeout=600)
        assert s.fitter.warm_start is not None
        assert float(s.history["loss"].iloc[0]) == pytest.approx(l0, rel=1e-9)
