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
