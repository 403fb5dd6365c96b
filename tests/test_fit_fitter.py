"""The fitter on real data (a Zuo Cu subset shipped in assets/): loss goes down, ladder grows,
cycles keep the best, callbacks run and may fail safely, early stopping and user stop have reasons."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import ase.io
import numpy as np
import pytest

from paceui.ace.basis import build_potential
from paceui.data import prepare_dataset
from paceui.fit.arrays import fit_arrays
from paceui.fit.config import FitConfig
from paceui.fit.fitter import Fitter

ZUO = Path(__file__).resolve().parents[1] / "assets" / "zuo" / "Cu_train.xyz.gz"
POT = {"elements": ["Cu"],
       "embeddings": {"ALL": {"npot": "FinnisSinclairShiftedScaled", "fs_parameters": [1, 1, 1, 0.5], "ndensity": 2}},
       "bonds": {"ALL": {"radbase": "ChebExpCos", "radparameters": [5.25], "rcut": 4.5, "dcut": 0.01}},
       "functions": {"ALL": {"nradmax_by_orders": [6, 2, 1], "lmax_by_orders": [0, 1, 1]}}}


@pytest.fixture(scope="module")
def problem(tmp_path_factory):
    frames = [a for a in ase.io.read(ZUO, index=":") if len(a) <= 30][:12]
    f = tmp_path_factory.mktemp("zuo") / "cu.extxyz"
    ase.io.write(f, frames)
    target = build_potential(POT)
    prep = prepare_dataset({"filename": str(f), "reference_energy": "auto", "test_size": 3}, elements=target.elements,
                           cutoff=target.cutoff, seed=1, cache_dir=tmp_path_factory.mktemp("cache"))
    return target, fit_arrays(prep.train, prep.train_neighbors), fit_arrays(prep.test, prep.test_neighbors)


def test_fit_reduces_loss_and_reports_maxiter(problem):
    target, train, test = problem
    fitter = Fitter(target, train, FitConfig(loss={"kappa": 0.3}, maxiter=15), test=test)
    st = fitter.run()
    losses = [h["loss"] for h in st.history]
    # measured: 0.6071 of the initial loss with 1 and with 2 numba threads (equal to 1e-13; scipy's BFGS: 0.5950),
    # numpy 2.4.6 / scipy 1.17.1 / numba 0.68.1; 0.7 bounds the 15-iteration progress with a 15 % margin
    assert losses[-1] < 0.7 * losses[0]
    assert all(b <= a * (1 + 1e-12) for a, b in zip(losses[1:-1], losses[2:]))  # BFGS iterates never go up
    assert st.stop_reason == "maxiter" and "maximum" in st.stop_message
    assert st.history[-1]["iteration"] == 15
    assert any("test_loss" in h for h in st.history)  # test metrics at iteration 0 (display_step 20)
    pot = fitter.potential()
    assert len(pot.functions()) == len(target.functions())


def test_ladder_grows_basis_to_the_target(problem):
    target, train, _ = problem
    fitter = Fitter(target, train, FitConfig(loss={"kappa": 0.3}, maxiter=3, ladder_step=5))
    sizes = []
    while (rec := fitter.step()) is not None:
        sizes.append(rec.nfuncs)
    n = len(target.functions())
    steps = sorted(set(sizes))
    assert steps[0] == 5 and steps[-1] == n and all(b - a <= 5 for a, b in zip(steps, steps[1:]))
    assert fitter.state.stop_reason in ("maxiter", "converged", "stalled")


def test_cycles_keep_the_best_and_callbacks_are_safe(problem):
    target, train, _ = problem
    seen = []

    def good(**kw):
        seen.append((kw["current_fit_cycle"], kw["current_fit_iteration"], len(kw["potential"].functions())))

    def bad(**kw):
        raise RuntimeError("boom")

    fitter = Fitter(target, train, FitConfig(loss={"kappa": 0.3}, maxiter=4, fit_cycles=3, noise_relative_sigma=0.5),
                    callbacks=[good, bad], seed=3)
    st = fitter.run()
    assert [c for c, *_ in seen].count(0) == 4 and {c for c, *_ in seen} == {0, 1, 2}
    assert len(fitter.callback_errors) == 12 and "boom" in fitter.callback_errors[0]
    ends = [h["loss"] for h, nxt in zip(st.history, st.history[1:] + [None]) if nxt is None or nxt["cycle"] != h["cycle"]]
    assert st.best_loss == pytest.approx(min(ends), rel=1e-9)


def test_early_stopping_and_user_stop(problem):
    target, train, _ = problem
    cfg = FitConfig(loss={"kappa": 0.3}, maxiter=50, min_relative_train_loss_per_iter=10.0, early_stopping_patience=2)
    st = Fitter(target, train, cfg).run()
    assert st.stop_reason == "early_stopping" and st.history[-1]["iteration"] == 3
    fitter = Fitter(target, train, replace(cfg, min_relative_train_loss_per_iter=None))
    fitter.step()
    fitter.step()
    fitter.request_stop()
    while fitter.step() is not None:
        pass
    assert fitter.state.stop_reason == "user" and fitter.state.history[-1]["iteration"] == 1


def test_trainable_func_only_keeps_radial_coefficients(problem):
    target, train, _ = problem
    fitter = Fitter(target, train, FitConfig(loss={"kappa": 0.3}, maxiter=3, trainable_parameters="func"))
    fitter.run()
    before = {b.elements: b.bond.crad for b in target.blocks if b.bond is not None}
    for b in fitter.potential().blocks:
        if b.bond is not None:
            np.testing.assert_array_equal(b.bond.crad, before[b.elements])
    assert any(any(c != 0 for c in f.coeffs) for f in fitter.potential().functions())


@pytest.mark.parametrize("optimizer", ["trf", "L-BFGS-B", "Adam"])
def test_other_optimizers_reduce_the_loss(problem, optimizer):
    target, train, _ = problem
    opts = {"learning_rate": 1e-6} if optimizer == "Adam" else None  # Adam steps are ≈ lr per coefficient
    st = Fitter(target, train, FitConfig(loss={"kappa": 0.3}, optimizer=optimizer, maxiter=4, options=opts)).run()
    assert st.history[-1]["loss"] < st.history[0]["loss"]


def test_repulsion_auto_adds_zbl_with_the_shortest_distance(problem, tmp_path):
    from paceui.ace.evaluator import ACEModel
    from paceui.fit.repulsion import add_zbl_repulsion, min_pair_distances

    target, train, _ = problem
    frames = [a for a in ase.io.read(ZUO, index=":") if len(a) <= 30][:12]
    from paceui.data.nlcache import build_packed_neighbors
    packed = build_packed_neighbors(frames, 4.5, ["Cu"], use_cache=False, progress=False)
    dmin = min_pair_distances(packed)[("Cu", "Cu")]
    assert 1.9 < dmin < 2.6
    pot = add_zbl_repulsion(target, packed)
    bond = pot.bonds()[("Cu", "Cu")]
    assert bond.inner_cutoff_type == "zbl" and bond.r_in == dmin and bond.delta_in == 0.1
    from ase import Atoms
    model = ACEModel(pot)
    e_close = model.evaluate(Atoms("Cu2", positions=[[0, 0, 0], [0, 0, 1.0]])).energy
    e_far = model.evaluate(Atoms("Cu2", positions=[[0, 0, 0], [0, 0, 2.5]])).energy
    assert e_close > 10.0 and abs(e_far) < 1.0  # strong screened-Coulomb wall below r_in, none beyond
