"""Session.structures and Session.predictions: the tables the Data and Analysis views show."""

from __future__ import annotations

import numpy as np
import pytest

from paceui.ace.calculator import ACECalculator
from paceui.session.testing import tiny_session

from .session_fixtures import _cache, frame  # noqa: F401


@pytest.fixture(scope="module")
def fitted():
    s = tiny_session(n=10)
    s.run(iterations=5)
    yield s
    s.close()


def test_structures_table_lists_every_structure(fitted):
    t = fitted.structures()
    assert list(t["subset"]).count("train") == fitted.data.n_train
    assert list(t["subset"]).count("test") == fitted.data.n_test == 3
    assert (t["n_atoms"] > 0).all() and (t["formula"].str.startswith("Cu")).all()
    np.testing.assert_allclose(t["energy_per_atom"], t["energy"] / t["n_atoms"])
    train = t[t["subset"] == "train"]
    assert train["w_energy"].sum() == pytest.approx(1.0)
    assert len(fitted.structures("test")) == 3


def test_predictions_match_the_ase_calculator(fitted):
    """Per-structure errors agree with an independent evaluation of the same potential with ASE."""
    pred = fitted.predictions("test")
    calc = ACECalculator(fitted.potential)
    frame = fitted.data.prepared.test
    for i, atoms in enumerate(frame["ase_atoms"]):
        a = atoms.copy()
        a.calc = calc
        e_pa = a.get_potential_energy() / len(a)
        assert pred.table["e_pred_per_atom"].iloc[i] == pytest.approx(e_pa, abs=1e-9)
    de = (pred.table["e_pred_per_atom"] - pred.table["e_ref_per_atom"]) * 1e3
    np.testing.assert_allclose(pred.table["de_per_atom_mev"], de)
    assert pred.energy_mae_mev == pytest.approx(np.mean(np.abs(de)))
    assert pred.f_pred.shape == pred.f_ref.shape == (int(pred.table["n_atoms"].sum()), 3)
    worst = pred.worst(2)
    assert abs(worst["de_per_atom_mev"].iloc[0]) == pytest.approx(np.max(np.abs(de)))


def test_predictions_of_best_and_current(fitted):
    assert fitted.predictions("train", best=True).table.shape[0] == fitted.data.n_train
