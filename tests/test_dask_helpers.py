"""Data and comparisons shared by the Dask tests (no tests here)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np

from paceui.fit.metrics import FitMetrics
from tests.conftest import REFERENCE, need_reference

RTOL = 1e-10  # relative agreement required between the Dask and the in-process engine


def assert_same(got: Any, want: Any, what: str = "value") -> None:
    """Equal to RTOL relative (arrays: relative to their largest entry)."""
    g, w = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    scale = max(float(np.max(np.abs(w))) if w.size else 0.0, 1e-300)
    err = float(np.max(np.abs(g - w))) / scale if w.size else 0.0
    assert g.shape == w.shape and err <= RTOL, f"{what}: relative difference {err:.3g} (got {got}, want {want})"


def assert_metrics_equal(got: FitMetrics, want: FitMetrics) -> None:
    for f in dataclasses.fields(FitMetrics):
        a, b = getattr(got, f.name), getattr(want, f.name)
        if isinstance(b, float) and math.isnan(b):
            assert math.isnan(a), f.name
        else:
            assert_same(a, b, f"metric {f.name}")


def _prepared(pot: Any, frame_or_file: Any, tmp: Path, **data: Any) -> tuple[Any, Any, Any, Any]:
    from paceui.data import prepare_dataset
    from paceui.data.io import save_dataframe
    from paceui.fit.arrays import fit_arrays

    if not isinstance(frame_or_file, (str, Path)):
        save_dataframe(frame_or_file, tmp / "data.pckl.gzip")
        frame_or_file = tmp / "data.pckl.gzip"
    prep = prepare_dataset({"filename": str(frame_or_file), **data}, elements=pot.elements, cutoff=pot.cutoff,
                           use_cache=False)
    return pot, fit_arrays(prep.train, prep.train_neighbors), fit_arrays(prep.test, prep.test_neighbors), prep


def zuo_data(tmp: Path, n: int = 30) -> tuple[Any, Any, Any, Any]:
    """(potential, train, test, prepared) on ``n`` Zuo Cu structures (5 test) with the 14-function basis."""
    from paceui.ace.basis import build_potential
    from paceui.session.testing import TINY_BASIS, zuo_frame

    pot = build_potential(TINY_BASIS, seed=1)
    return _prepared(pot, zuo_frame(n), tmp, reference_energy="auto", test_size=5)


def cu_i_data(tmp: Path) -> tuple[Any, Any, Any, Any]:
    """pacemaker's Cu-I example (82 functions, 7 Å cutoff; 105 structures, 10 % test)."""
    from paceui.fit.config import InputConfig
    from paceui.fit.target import build_target

    need_reference()
    cfg = InputConfig.from_file(REFERENCE / "inputs" / "examples_Cu-I_input.yaml")
    pot, _ = build_target(cfg)
    return _prepared(pot, REFERENCE / "datasets" / "Cu_df1_A1_A2_A3_EV_elast_phon.pckl.gzip", tmp, test_size=0.1,
                     seed=3)
