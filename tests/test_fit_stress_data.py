"""Reference stresses from data files (virial keys, user key names, dataframe columns), the Dask stress sums
and a short fit with the stress term on the Ti–Al set (../shared/acedata)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator

from paceui.data.io import load_dataframe, save_dataframe
from paceui.fit.loss import ACELoss, LossConfig
from tests.conftest import SHARED

TIAL = SHARED / "acedata" / "TiAl_tutorial.xyz.gz"
TIAL_BASIS = {"elements": ["Al", "Ti"],
              "embeddings": {"ALL": {"npot": "FinnisSinclairShiftedScaled", "fs_parameters": [1, 1], "ndensity": 1}},
              "bonds": {"ALL": {"radbase": "ChebExpCos", "radparameters": [5.25], "rcut": 5.0, "dcut": 0.01}},
              "functions": {"ALL": {"nradmax_by_orders": [6, 2], "lmax_by_orders": [0, 1]}}}


def need_tial() -> Path:
    if not TIAL.exists():
        pytest.skip(f"{TIAL} not found (the shared/acedata folder beside the checkout)")
    return TIAL


def test_virial_and_stress_keys_follow_ase_conventions(tmp_path):
    """σ from a calculator stress, from info 'virial' (σ = −V/Ω) and from a user key, all equal; a
    non-periodic structure keeps no stress; dataframe 'virial' columns become 'stress'."""
    import ase.io

    at = bulk("Cu", "fcc", a=3.6, cubic=True)
    sig = np.array([0.01, 0.02, 0.03, 0.004, 0.005, 0.006])
    s3 = np.array([[sig[0], sig[5], sig[4]], [sig[5], sig[1], sig[3]], [sig[4], sig[3], sig[2]]])
    vir = -s3 * at.get_volume()
    a1 = at.copy()
    a1.calc = SinglePointCalculator(a1, energy=-1.0, forces=np.zeros((4, 3)), stress=sig)
    a2 = at.copy()
    a2.info.update(energy=-1.0, virial=vir)
    a2.arrays["forces"] = np.zeros((4, 3))
    a3 = at.copy()
    a3.info.update(energy=-1.0, dft_virial=vir.ravel())
    a3.arrays["forces"] = np.zeros((4, 3))
    a4 = at.copy()
    a4.pbc = False
    a4.info.update(energy=-1.0, virial=vir)
    a4.arrays["forces"] = np.zeros((4, 3))
    ase.io.write(tmp_path / "s.xyz", [a1, a2, a4], format="extxyz")
    ase.io.write(tmp_path / "u.xyz", [a3], format="extxyz")
    df = load_dataframe(tmp_path / "s.xyz")
    np.testing.assert_allclose(df["stress"].iloc[0], sig, rtol=1e-12)
    np.testing.assert_allclose(df["stress"].iloc[1], sig, rtol=1e-12)
    assert df["stress"].iloc[2] is None and "virial" not in df["ase_atoms"].iloc[1].info
    np.testing.assert_allclose(load_dataframe(tmp_path / "u.xyz", virial_key="dft_virial")["stress"].iloc[0], sig,
                               rtol=1e-12)
    assert "stress" not in load_dataframe(tmp_path / "u.xyz").columns
    frame = pd.DataFrame({"ase_atoms": [at], "energy": [-1.0], "forces": [np.zeros((4, 3))], "virial": [vir]})
    save_dataframe(frame, tmp_path / "f.pckl.gzip")
    np.testing.assert_allclose(load_dataframe(tmp_path / "f.pckl.gzip")["stress"].iloc[0], sig, rtol=1e-12)
    save_dataframe(df, tmp_path / "back.xyz")  # written as a calculator stress, read back the same
    np.testing.assert_allclose(load_dataframe(tmp_path / "back.xyz")["stress"].iloc[1], sig, rtol=1e-12)


def tial_data(tmp: Path, n: int = 40, test_size: int = 8):
    """(potential, train, test, prepared) on ``n`` Ti–Al structures of every kind, with a small basis."""
    from paceui.ace.basis import build_potential
    from paceui.data import prepare_dataset
    from paceui.fit.arrays import fit_arrays

    need_tial()
    pot = build_potential(TIAL_BASIS, seed=1)
    frame = load_dataframe(TIAL).iloc[::329 // n][:n].reset_index(drop=True)
    save_dataframe(frame, tmp / "tial.pckl.gzip")
    prep = prepare_dataset({"filename": str(tmp / "tial.pckl.gzip"), "reference_energy": "auto",
                            "test_size": test_size}, elements=pot.elements, cutoff=pot.cutoff, use_cache=False)
    return pot, fit_arrays(prep.train, prep.train_neighbors), fit_arrays(prep.test, prep.test_neighbors), prep



def test_tial_stress_labels_and_dask_sums_equal_in_process(tmp_path):
    distributed = pytest.importorskip("distributed")
    from paceui.fit.config import BackendConfig
    from paceui.fit.dask.evaluator import DaskEvaluator
    from paceui.fit.evaluation import fit_metrics
    from tests.test_dask_helpers import assert_metrics_equal, assert_same

    pot, train, test, prep = tial_data(tmp_path)
    assert train.has_stress.all() and abs(train.w_s.sum() - 1) < 1e-12
    cfg = LossConfig(kappa=0.2, stress=0.5, L2_coeffs=1e-6)
    local = ACELoss(pot, cfg)
    theta = local.pmap.get(pot) * (1 + np.random.default_rng(3).normal(0, 0.05, local.pmap.size))
    lc = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  scheduler_kwargs={"dashboard": False}, silence_logs=logging.ERROR)
    try:
        be = BackendConfig(evaluator="dask", scheduler=lc.scheduler_address)
        for ev in (DaskEvaluator.from_arrays(be, train, test),
                   DaskEvaluator.from_frames(be, prep.train, prep.test, pot.cutoff, tuple(pot.elements))):
            try:
                dl = ev.loss(pot, cfg)
                for arrays, handle in ((train, ev.train), (test, ev.test)):
                    ref, got = local(theta, arrays), dl(theta, handle)
                    assert ref.parts["s_loss_contrib"] > 0
                    assert_same(got.loss, ref.loss)
                    assert_same(got.grad, ref.grad, "gradient")
                    assert_same(got.parts["s_loss"], ref.parts["s_loss"], "s_loss")
                    np.testing.assert_allclose(got.w_pred, ref.w_pred, rtol=1e-10, atol=1e-12)
                    nf, nc = len(pot.functions()), local.pmap.size
                    m = fit_metrics(ref, arrays, cfg.kappa, nf, nc)
                    assert m.n_stress == arrays.n_struct and np.isfinite(m.rmse_stress)
                    assert m.loss == pytest.approx(ref.loss, rel=1e-14)
                    assert_metrics_equal(fit_metrics(got, handle, cfg.kappa, nf, nc), m)
            finally:
                ev.close()
    finally:
        lc.close()


TIAL_INPUT = """cutoff: 5.0
seed: 42
data:
  filename: {data}
  test_size: 0.2
  split_by_group: true
  reference_energy: auto
  group_weights:
    TiAl_T5000: {{energy: 2.0, forces: 0.5, stress: 3.0}}
potential:
  deltaSplineBins: 0.001
  elements: [Al, Ti]
  embeddings:
    ALL: {{npot: FinnisSinclairShiftedScaled, fs_parameters: [1, 1], ndensity: 1}}
  bonds:
    ALL: {{radbase: ChebExpCos, radparameters: [5.25], rcut: 5.0, dcut: 0.01}}
  functions:
    ALL: {{nradmax_by_orders: [6, 2], lmax_by_orders: [0, 1]}}
fit:
  loss: {{kappa: 0.1, stress: 0.1}}
  optimizer: BFGS
  maxiter: 3
backend:
  display_step: 1
"""


def test_paceui_fit_with_virials_and_groups(tmp_path, monkeypatch):
    """``paceui fit`` on a Ti–Al subset: virials read, the stress term in the log and metrics files, per-group
    errors in the log and report, a per-group split and per-group weights."""
    from paceui.cli import main
    from paceui.fit.metrics import read_metrics_file

    need_tial()
    frame = load_dataframe(TIAL)
    frame = pd.concat([frame[frame["ase_atoms"].map(lambda a: a.info["config_type"]) == "FLD_TiAl"].iloc[:30],
                       frame[frame["ase_atoms"].map(lambda a: a.info["config_type"]) == "TiAl_T5000"].iloc[:6]])
    save_dataframe(frame.reset_index(drop=True), tmp_path / "tial.pckl.gzip")
    (tmp_path / "input.yaml").write_text(TIAL_INPUT.format(data="tial.pckl.gzip"))
    monkeypatch.chdir(tmp_path)
    assert main(["fit", "input.yaml"]) == 0
    log = (tmp_path / "log.txt").read_text()
    assert "Stress:" in log and "errors per group" in log and "TiAl_T5000" in log
    m = read_metrics_file(tmp_path / "metrics.txt")
    assert {"s_loss_contrib", "rmse_stress"} <= set(m.columns) and (m["s_loss_contrib"] > 0).all()
    assert m["loss"].iloc[-1] < m["loss"].iloc[0]
    groups = pd.read_csv(tmp_path / "report" / "test_group_errors.csv")
    assert set(groups["group"]) == {"FLD_TiAl", "TiAl_T5000", "ALL"}  # the split drew from both groups
    assert (groups["n_stress"] == groups["n_structures"]).all()
    assert (tmp_path / "report" / "train_S-pairplots.png").exists()
    pred = pd.read_pickle(tmp_path / "train_pred.pckl.gzip", compression="gzip")
    assert pred["stress_pred"].map(len).eq(6).all()


def test_group_weights_multiply_the_normalised_weights(tmp_path):
    from paceui.data import prepare_dataset

    need_tial()
    frame = load_dataframe(TIAL).iloc[::20].reset_index(drop=True)
    save_dataframe(frame, tmp_path / "t.pckl.gzip")
    base = {"filename": str(tmp_path / "t.pckl.gzip"), "reference_energy": "auto"}
    a = prepare_dataset(base, ["Al", "Ti"]).train
    b = prepare_dataset({**base, "group_weights": {"TiAl_T5000": {"energy": 3.0, "stress": 2.0}}}, ["Al", "Ti"]).train
    hot = (a["group"] == "TiAl_T5000").to_numpy()
    assert hot.any() and (~hot).any()
    ratio = b["w_energy"].to_numpy() / a["w_energy"].to_numpy()
    assert np.allclose(ratio[hot] / ratio[~hot], 3.0)
    assert np.allclose(b["w_stress"][hot], 2.0) and np.allclose(b["w_stress"][~hot], 1.0)
    with pytest.raises(ValueError, match="group_weights.X: unknown key"):
        prepare_dataset({**base, "group_weights": {"X": {"energie": 1}}}, ["Al", "Ti"])
    g = prepare_dataset({**base, "group_patterns": {r":(0|20)$": "first"}}, ["Al", "Ti"]).train
    assert list(g["group"].iloc[:3]) == ["first", "first", "FLD_TiAl"] and "TiAl_T5000" in set(g["group"])


def test_paceui_fit_bayesian_solve_with_stresses_writes_a_committee(tmp_path, monkeypatch):
    """``fit: optimizer: bayesian_ridge`` with energies, forces and virials of Ti–Al, a committee of 3."""
    from paceui.ace.yaml_io import load_potential
    from paceui.cli import main

    need_tial()
    save_dataframe(load_dataframe(TIAL).iloc[::6].reset_index(drop=True), tmp_path / "tial.pckl.gzip")
    text = TIAL_INPUT.format(data="tial.pckl.gzip").replace("optimizer: BFGS", "optimizer: bayesian_ridge\n"
                                                           "  options: {committee: 3}")
    (tmp_path / "input.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    assert main(["fit", "input.yaml"]) == 0
    log = (tmp_path / "log.txt").read_text()
    assert "bayesian_ridge solve of 64 coefficients" in log and "committee of 3" in log
    pots = [load_potential(tmp_path / f"committee_potential_{k}.yaml") for k in range(3)]
    best = load_potential(tmp_path / "output_potential.yaml")
    c = [np.concatenate([f.coeffs for f in p.functions()]) for p in pots + [best]]
    assert not np.allclose(c[0], c[1]) and np.allclose(np.mean(c[:3], axis=0), c[3], atol=10 * np.std(c[:3]))
