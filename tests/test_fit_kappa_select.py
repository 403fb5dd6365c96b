"""One pass, any κ: the energy/force split of the linear design (assemble_parts, combine) equals a fresh
assembly at every κ, and select_kappa keeps the κ with the best validation energy × force MAE."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from paceui.ace.basis import build_potential
from paceui.fit.design import assemble, assemble_parts, at_kappa
from paceui.fit.linear_solve import ridge, select_kappa, solve
from paceui.fit.loss import ACELoss, LossConfig
from tests.test_fit_linear_solve import CORE
from tests.test_fit_stress import periodic_problem


@pytest.mark.parametrize("kappa", [0.05, 0.5, 0.9])
def test_combined_parts_equal_the_assembly_at_that_kappa(kappa):
    pot = build_potential(CORE, seed=2)
    data, _ = periodic_problem(pot, n_struct=4, seed=5)
    cfg = LossConfig(kappa=0.3, stress=0.2, L2_coeffs=1e-6)
    parts = assemble_parts(pot, data, cfg, chunk_bytes=1)
    direct = assemble(pot, data, replace(cfg, kappa=kappa))
    comb = at_kappa(parts, cfg.kappa, kappa)
    assert comb.n_rows == direct.n_rows
    np.testing.assert_allclose(comb.R.T @ comb.R, direct.R.T @ direct.R, rtol=1e-9, atol=1e-12 * np.abs(direct.R).max() ** 2)
    np.testing.assert_allclose(comb.R.T @ comb.qb, direct.R.T @ direct.qb, rtol=1e-9,
                               atol=1e-12 * np.abs(direct.R.T @ direct.qb).max())
    b2 = lambda s: s.rss0 + float(s.qb @ s.qb)  # noqa: E731 (‖b‖²)
    assert b2(comb) == pytest.approx(b2(direct), rel=1e-10)
    np.testing.assert_allclose(ridge(comb, 1e-6).coef, ridge(direct, 1e-6).coef, rtol=1e-7, atol=1e-9)
    with pytest.raises(ValueError, match="0 < kappa < 1"):
        assemble_parts(pot, data, replace(cfg, kappa=0.0))


def test_select_kappa_keeps_the_best_validation_product():
    pot = build_potential(CORE, seed=2)
    train, _ = periodic_problem(pot, n_struct=5, seed=6)
    val, _ = periodic_problem(pot, n_struct=2, seed=7)
    loss = ACELoss(pot, LossConfig(kappa=0.1, L2_coeffs=1e-8))
    theta0 = loss.pmap.get(pot).copy()
    kappas = [0.01, 0.1, 0.5]
    sel = select_kappa(loss, pot, train, val, theta0, "bayesian_ridge", kappas)
    assert set(sel.table) == set(kappas)
    assert sel.kappa == min(kappas, key=lambda k: sel.table[k][0] * sel.table[k][1])
    # the chosen θ is the solve of a fresh assembly at that κ, and its validation errors are those reported
    direct = assemble(pot, train, replace(loss.cfg, kappa=sel.kappa))
    th = theta0.copy()
    th[direct.cols] = solve(direct, "bayesian_ridge").coef
    np.testing.assert_allclose(sel.theta, th, rtol=1e-6, atol=1e-8 * np.abs(th).max())
    e, f, _ = loss.predict_virials(sel.theta, val)
    assert 1e3 * np.mean(np.abs((e - val.e_ref) / val.n_atoms)) == pytest.approx(sel.table[sel.kappa][0], abs=1e-3)
    with pytest.raises(ValueError, match="kappa_grid"):
        select_kappa(loss, pot, train, val, theta0, "linear", [0.0, 0.5])


def test_kappa_walk_stops_after_two_worse_than_the_best():
    """The walk goes up the κ axis (any order given) and stops once two κ in a row score worse than the best
    so far; the κ it solved score exactly as in the whole grid, and it keeps the best of them. (On this toy
    problem the product is not unimodal, so the whole grid's choice differs: the walk is for products that
    fall and then rise, as every recorded Zuo grid does.)"""
    pot = build_potential(CORE, seed=2)
    train, _ = periodic_problem(pot, n_struct=5, seed=6)
    val, _ = periodic_problem(pot, n_struct=2, seed=7)
    loss = ACELoss(pot, LossConfig(kappa=0.1, L2_coeffs=1e-8))
    theta0 = loss.pmap.get(pot).copy()
    grid = [0.9, 0.001, 0.01, 0.03, 0.1, 0.3, 0.5, 0.7]      # unsorted on purpose: walked ascending
    full = select_kappa(loss, pot, train, val, theta0, "bayesian_ridge", grid, patience=0)
    walk = select_kappa(loss, pot, train, val, theta0, "bayesian_ridge", grid)
    assert list(full.table) == sorted(grid)
    solved = list(walk.table)
    assert 3 <= len(solved) < len(grid) and solved == sorted(grid)[:len(solved)]
    assert all(walk.table[k] == full.table[k] for k in solved)
    score = {k: v[0] * v[1] for k, v in walk.table.items()}
    assert walk.kappa == min(solved, key=score.__getitem__)
    after = solved[solved.index(walk.kappa) + 1:]
    assert len(after) == 2 and all(score[k] >= score[walk.kappa] for k in after)


def _uniform(data):
    """``data`` with pacemaker's uniform weights normalised over it (Σ w_e = Σ w_f = 1), stress weights 1."""
    S, N = data.n_struct, int(data.struct_off[-1])
    return replace(data, w_e=np.full(S, 1.0 / S), w_f=np.full(N, 1.0 / N), w_s=np.ones(S))


def test_refit_on_train_and_validation_equals_a_fit_of_the_union():
    """``refit``: after κ is chosen on the validation split, the solve at that κ on train + validation, from
    the training part's parts and a pass over the validation part only, is the solve of one assembly of the
    whole set weighted as one (uniform weights renormalised over the union), to rounding; the κ table is
    the training-only solves' (as without refit)."""
    from paceui.fit.arrays import slice_structures

    pot = build_potential(CORE, seed=2)
    whole, _ = periodic_problem(pot, n_struct=7, seed=8)
    train, val = _uniform(slice_structures(whole, 0, 5)), _uniform(slice_structures(whole, 5, 7))
    union = _uniform(whole)
    loss = ACELoss(pot, LossConfig(kappa=0.1, stress=0.3, L2_coeffs=1e-6))
    theta0 = loss.pmap.get(pot).copy()
    kappas = [0.01, 0.1, 0.5]
    plain = select_kappa(loss, pot, train, val, theta0, "linear", kappas)
    sel = select_kappa(loss, pot, train, val, theta0, "linear", kappas, refit=True)
    assert sel.refit and not plain.refit and sel.table == plain.table and sel.kappa == plain.kappa
    direct = assemble(pot, union, replace(loss.cfg, kappa=sel.kappa))
    assert sel.system.n_rows == direct.n_rows
    scale = np.abs(direct.R).max() ** 2
    np.testing.assert_allclose(sel.system.R.T @ sel.system.R, direct.R.T @ direct.R, rtol=1e-9, atol=1e-12 * scale)
    th = theta0.copy()
    th[direct.cols] = solve(direct, "linear", lam=1e-6).coef
    np.testing.assert_allclose(sel.theta, th, rtol=1e-7, atol=1e-9 * np.abs(th).max())
    assert not np.allclose(sel.theta, plain.theta, rtol=1e-3)  # the validation rows did change the solution


def _write_inputs(tmp_path, grid: bool, kappa: float = 0.1) -> None:
    import ase.io
    import yaml
    from ase.build import bulk
    from ase.calculators.singlepoint import SinglePointCalculator

    rng = np.random.default_rng(3)
    frames = []
    for k in range(10):
        at = bulk("Cu", "fcc", a=3.55 + 0.03 * k, cubic=True).repeat((2, 1, 1))
        at.rattle(0.06, seed=k)
        at.calc = SinglePointCalculator(at, energy=-3.5 * len(at) + 0.1 * rng.normal(), forces=rng.normal(size=(8, 3)))
        frames.append(at)
    ase.io.write(tmp_path / "cu.extxyz", frames)
    inp = {"cutoff": 4.5, "seed": 42, "data": {"filename": "cu.extxyz", "reference_energy": "auto"},
           "potential": {"deltaSplineBins": 0.001, "elements": ["Cu"],
                         "embeddings": {"ALL": {"npot": "FinnisSinclairShiftedScaled", "fs_parameters": [1, 1],
                                                "ndensity": 1}},
                         "bonds": {"ALL": {"radbase": "SBessel", "rcut": 4.5, "dcut": 0.01}},
                         "functions": {"ALL": {"nradmax_by_orders": [6, 2, 1], "lmax_by_orders": [0, 2, 1]}}},
           "fit": {"loss": {"kappa": kappa, "L2_coeffs": 1e-8}, "optimizer": "linear", "maxiter": 1},
           "backend": {"evaluator": "numba"}}
    if grid:
        inp["data"]["test_size"] = 0.3
        inp["fit"]["options"] = {"kappa_grid": [0.01, 0.1, 0.5], "refit_all": True}
    (tmp_path / "input.yaml").write_text(yaml.safe_dump(inp))


def test_paceui_fit_with_refit_all_writes_the_fit_of_the_whole_file(tmp_path, monkeypatch):
    """``paceui fit`` with a κ grid and ``refit_all``: κ is chosen on the validation split, the potential
    written is the solve of the whole training file at that κ (a second run without a split, at that κ,
    writes the same coefficients), and the log says which errors are whose."""
    import re

    from paceui.ace.yaml_io import load_potential
    from paceui.cli import main

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    _write_inputs(tmp_path / "a", grid=True)
    assert main(["fit", "input.yaml"]) == 0
    log = (tmp_path / "a" / "log.txt").read_text()
    kappa = float(re.findall(r"kappa (\S+) chosen on the validation set", log)[-1])
    assert "then solved at that kappa on training + validation" in log and f"refit at kappa {kappa:g}" in log
    assert "Test (fitted in the final refit) errors per group" in log
    monkeypatch.chdir(tmp_path / "b")
    _write_inputs(tmp_path / "b", grid=False, kappa=kappa)
    assert main(["fit", "input.yaml"]) == 0
    a, b = (load_potential(tmp_path / d / "output_potential.yaml") for d in "ab")
    ca = np.concatenate([np.ravel(f.coeffs) for f in a.functions()])
    cb = np.concatenate([np.ravel(f.coeffs) for f in b.functions()])
    np.testing.assert_allclose(ca, cb, rtol=1e-6, atol=1e-9 * np.abs(cb).max())
