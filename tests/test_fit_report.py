"""paceui.fit.report: figure files exist, are valid images, are written atomically."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from paceui.fit.report import ef_distributions, learning_curves, write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NAMES = ("EF-pairplots", "E-dE-dist", "Fi-dFi-dist", "F-dF-dist")


def _dataset(seed: int, nstruct: int = 20, nn: bool = True) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    nat = rng.integers(1, 8, nstruct)
    n = int(nat.sum())
    e_ref = rng.uniform(-5, -3, nstruct)
    f_ref = rng.normal(0, 1, (n, 3))
    d = {"e_ref_per_atom": e_ref, "e_pred_per_atom": e_ref + rng.normal(0, 0.01, nstruct),
         "f_ref": f_ref, "f_pred": f_ref + rng.normal(0, 0.05, (n, 3))}
    if nn:
        d["nn_min"] = rng.uniform(1.8, 3.0, nstruct)
    return d


def _history(n: int = 40) -> pd.DataFrame:
    it = np.arange(n)
    test = np.where(it % 10 == 0, 2e-3 / (1 + it), np.nan)
    return pd.DataFrame({"iter_num": it, "loss": 1e-3 / (1 + it), "rmse_epa": 0.02 / np.sqrt(1 + it),
                         "low_rmse_epa": 0.015 / np.sqrt(1 + it), "rmse_f_comp": 0.1 / np.sqrt(1 + it),
                         "test_loss": test})


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert len(data) > 1000 and data[:8] == PNG_SIGNATURE, path


def _assert_no_temp(folder: Path) -> None:
    leftovers = [p.name for p in folder.iterdir() if p.name.startswith(".") or p.suffix == ".tmp"]
    assert leftovers == []


def test_train_only_report(tmp_path: Path):
    out = tmp_path / "report"
    paths = write_report(out, _dataset(0, nn=False), None, None)
    assert sorted(p.name for p in paths) == sorted(f"train_{n}.png" for n in NAMES)
    for p in paths:
        assert p.parent == out
        _assert_png(p)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths)
    _assert_no_temp(out)


def test_train_test_report_with_nn_and_history(tmp_path: Path):
    out = tmp_path / "report"
    paths = write_report(out, _dataset(1), _dataset(2, nstruct=8), _history())
    expected = {f"{pre}{n}.png" for pre in ("train_", "test_") for n in NAMES + ("E-dE-nn",)}
    expected.add("learning_curves.png")
    assert {p.name for p in paths} == expected
    assert {p.name for p in out.iterdir()} == expected
    for p in paths:
        _assert_png(p)
    _assert_no_temp(out)
    # rewriting replaces the files in place, still without leftovers
    write_report(out, _dataset(1), None, _history(5))
    assert {p.name for p in out.iterdir()} == expected
    _assert_no_temp(out)


def test_learning_curves_without_iteration_column_and_other_format(tmp_path: Path):
    hist = _history(10).drop(columns=["iter_num"])
    p = learning_curves(tmp_path / "lc.svg", hist, image_format="svg")
    assert p.read_text().lstrip().startswith("<?xml")
    _assert_no_temp(tmp_path)


def test_ef_distributions(tmp_path: Path):
    d = _dataset(3)
    p = ef_distributions(tmp_path / "train_ef-distributions.png", d["e_ref_per_atom"],
                         np.linalg.norm(d["f_ref"], axis=1))
    _assert_png(p)
    assert [q.name for q in tmp_path.iterdir()] == ["train_ef-distributions.png"]


def test_bad_input_leaves_nothing_behind(tmp_path: Path):
    d = _dataset(4)
    d["f_pred"] = d["f_pred"][:-1]
    with pytest.raises(ValueError):
        write_report(tmp_path, d, None, None)
    assert list(tmp_path.iterdir()) == []


def test_import_is_lazy():
    code = "import sys, paceui.fit.report, paceui.fit.metrics; print('matplotlib' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "False"
