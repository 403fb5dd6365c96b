"""Energies, per-atom energies, forces and stresses against pyace (pyace_reference_values.json)."""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np
import pytest
from ase import Atoms

from paceui.ace.evaluator import ACEModel
from tests.conftest import POTENTIALS, REFERENCE


def _cases() -> list[dict]:
    f = REFERENCE / "pyace_reference_values.json"
    if not f.exists():
        return []
    return json.loads(f.read_text())["results"]


def _structures() -> dict:
    return json.loads((REFERENCE / "pyace_reference_values.json").read_text())["structures"]


@lru_cache(maxsize=None)
def _model(name: str, spline: bool) -> ACEModel:
    return ACEModel(POTENTIALS / name, spline=spline)


CASES = _cases()
IDS = [f"{c['potential']}:{c['structure']}" for c in CASES]


@pytest.mark.parametrize("case", CASES or [None], ids=IDS or ["no-reference"])
def test_spline_evaluator_matches_pyace(case, reference):
    s = _structures()[case["structure"]]
    at = Atoms(symbols=s["symbols"], positions=s["positions"], cell=s["cell"], pbc=s["pbc"])
    res = _model(case["potential"], True).evaluate(at)
    n = len(at)
    assert abs(res.energy - case["energy"]) / n < 1e-9
    np.testing.assert_allclose(res.energies, case["atomic_energies"], rtol=0, atol=1e-8)
    fscale = max(1.0, float(np.abs(case["forces"]).max()))
    np.testing.assert_allclose(res.forces, case["forces"], rtol=0, atol=1e-9 * fscale)
    if case.get("stress") is not None:
        np.testing.assert_allclose(res.stress, case["stress"], rtol=0, atol=1e-8)
    else:
        assert res.stress is None


@pytest.mark.parametrize("case", CASES or [None], ids=IDS or ["no-reference"])
def test_analytic_evaluator_matches_pyace_within_spline_error(case, reference):
    """Without splines the only difference is pyace's O(Δ⁴) interpolation error."""
    s = _structures()[case["structure"]]
    at = Atoms(symbols=s["symbols"], positions=s["positions"], cell=s["cell"], pbc=s["pbc"])
    res = _model(case["potential"], False).evaluate(at)
    escale = max(1.0, float(np.abs(case["atomic_energies"]).max()))
    np.testing.assert_allclose(res.energies, case["atomic_energies"], rtol=0, atol=1e-7 * escale)
    # the unphysical test potentials (|E_i| up to ~1e4 eV) carry the interpolation error into forces
    fscale = max(escale, float(np.abs(case["forces"]).max()))
    np.testing.assert_allclose(res.forces, case["forces"], rtol=0, atol=1e-6 * fscale)
