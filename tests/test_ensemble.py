"""EnsembleCalculator against the individual ACECalculators of its members."""

from __future__ import annotations

import numpy as np
import pytest

from paceui.ace.calculator import ACECalculator
from paceui.ace.ensemble import EnsembleCalculator
from paceui.ace.yaml_io import load_potential
from tests.conftest import POTENTIALS, need_reference
from tests.test_projections import rattled


def members(n: int = 3) -> list:
    """Cu-I with its coefficients randomised (as randomize_func_coeffs cycles do), seeds 0..n-1."""
    out = []
    for s in range(n):
        pot = load_potential(POTENTIALS / "Cu-I_active_learning.yaml")
        rng = np.random.default_rng(s)
        for f in pot.functions():
            f.coeffs = [c * (1 + 0.05 * rng.normal()) for c in f.coeffs]
        out.append(pot)
    return out


def test_ensemble_mean_and_std_equal_members():
    need_reference()
    pots = members()
    at = rattled(["Cu"], seed=4, n=1)[0]
    at.calc = EnsembleCalculator(pots)
    e, f, s = at.get_potential_energy(), at.get_forces(), at.get_stress()
    r = at.calc.results
    E, F, S = [], [], []
    for p in pots:
        b = at.copy()
        b.calc = ACECalculator(p)
        E.append(b.get_potential_energy())
        F.append(b.get_forces())
        S.append(b.get_stress())
    E, F, S = np.array(E), np.array(F), np.array(S)
    assert e == pytest.approx(E.mean(), rel=1e-13)
    np.testing.assert_allclose(f, F.mean(0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(s, S.mean(0), rtol=1e-12, atol=1e-14)
    assert r["energy_std"] == pytest.approx(E.std(), rel=1e-10) and r["energy_std"] > 0
    np.testing.assert_allclose(r["forces_std"], F.std(0), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(r["force_std_per_atom"], np.sqrt(F.var(0).sum(1)), rtol=1e-10)
    assert r["max_force_std"] == pytest.approx(np.sqrt(F.var(0).sum(1)).max())
    np.testing.assert_allclose(r["stress_std"], S.std(0), rtol=1e-10, atol=1e-15)


def test_identical_members_have_zero_spread_and_errors():
    need_reference()
    p = POTENTIALS / "Cu-I_active_learning.yaml"
    at = rattled(["Cu"], seed=4, n=1)[0]
    at.calc = EnsembleCalculator([p, p])
    at.get_potential_energy()
    assert at.calc.results["max_force_std"] == 0.0 and at.calc.results["energy_std"] == 0.0
    with pytest.raises(ValueError, match="at least 2"):
        EnsembleCalculator([p])
    with pytest.raises(ValueError, match="different elements"):
        EnsembleCalculator([p, POTENTIALS / "multispecies_AlNi.yaml"])
