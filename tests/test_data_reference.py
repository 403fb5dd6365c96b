"""Reference energies (pacemaker ``data: reference_energy``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from paceui.data import DataWarning, apply_reference_energy, load_dataframe, reference_energy_json
from paceui.data.reference import composition_matrix
from tests.test_data_common import DATASETS, cu_frame, need, same, snapshot


def test_auto_matches_numpy_least_squares() -> None:
    df = load_dataframe(need(DATASETS / "exmpl_df_AlNi.pckl.gzip"))
    before = snapshot(df)
    out, used = apply_reference_energy(df, "auto")
    assert same(snapshot(df), before)
    assert used is not None and set(used) == {"Al", "Ni", "shift"}
    n = composition_matrix(df, ["Al", "Ni"]).astype(float)
    e = df["energy"].to_numpy()
    sol, *_ = np.linalg.lstsq(n, e, rcond=None)
    assert used["Al"] == pytest.approx(sol[0], rel=1e-10)
    assert used["Ni"] == pytest.approx(sol[1], rel=1e-10)
    nat = n.sum(axis=1)
    vol = np.array([abs(np.linalg.det(a.cell.array)) / len(a) for a in df["ase_atoms"]])
    k = int(np.argmax(vol))
    shift = -(e[k] - n[k] @ sol) / nat[k]
    assert used["shift"] == pytest.approx(shift, rel=1e-9, abs=1e-12)
    expected = e - n @ sol + shift * nat
    np.testing.assert_allclose(out["energy_corrected"], expected, rtol=1e-10, atol=1e-9)
    assert out["energy_corrected_per_atom"].iloc[k] == pytest.approx(0.0, abs=1e-9)
    assert list(out["NUMBER_OF_ATOMS"]) == list(nat.astype(int))
    assert out["energy_corrected_per_atom"].iloc[3] == pytest.approx(expected[3] / nat[3])


def test_dict_number_and_shift() -> None:
    df = cu_frame(3)
    nat = np.array([len(a) for a in df["ase_atoms"]])
    out, used = apply_reference_energy(df, {"Cu": -3.0, "shift": 0.25})
    assert used == {"Cu": -3.0, "shift": 0.25}
    np.testing.assert_allclose(out["energy_corrected"], df["energy"] + 3.0 * nat + 0.25 * nat)
    out2, used2 = apply_reference_energy(df, -3.0)
    assert used2 == {"Cu": -3.0, "shift": 0.0}
    np.testing.assert_allclose(out2["energy_corrected"], df["energy"] + 3.0 * nat)
    # JSON as stored in potential metadata, and back
    text = reference_energy_json(used)
    assert json.loads(text or "") == {"Cu": -3.0, "shift": 0.25}
    out3, used3 = apply_reference_energy(df, text)
    assert used3 == used and np.allclose(out3["energy_corrected"], out["energy_corrected"])
    assert "energy_corrected" not in df.columns  # input untouched


def test_no_reference_keeps_energy_corrected() -> None:
    df = load_dataframe(need(DATASETS / "Cu_df1_A1_A2_A3_EV_elast_phon.pckl.gzip"))
    out, used = apply_reference_energy(df)
    assert used is None
    np.testing.assert_array_equal(out["energy_corrected"], df["energy_corrected"])
    e = cu_frame(2)
    out, used = apply_reference_energy(e)
    assert used is None and np.array_equal(out["energy_corrected"], e["energy"])


def test_auto_switch_outside_window() -> None:
    """FHI-aims total energies (about -6600 eV/atom) without reference → warning and auto."""
    df = load_dataframe(need(DATASETS / "df_weights.pckl.gzip")).drop(columns="energy_corrected")
    with pytest.warns(DataWarning, match=r"outside \[-20.0, 250.0\].*auto"):
        out, used = apply_reference_energy(df)
    assert used is not None and "Al" in used and "shift" in used
    assert np.abs(out["energy_corrected_per_atom"]).max() < 20
    e = cu_frame(2)
    e["energy"] *= 100  # -350 eV/atom, a single composition
    with pytest.warns(DataWarning):
        _, used = apply_reference_energy(e)
    assert used is not None


def test_reference_errors() -> None:
    df = cu_frame(2)
    with pytest.raises(ValueError, match="no value for element.*Cu"):
        apply_reference_energy(df, {"Al": -1.0})
    with pytest.raises(ValueError, match="VASP_PBE.*not bundled"):
        apply_reference_energy(df, "VASP_PBE_500_0.125_0.1_NM")
    with pytest.raises(ValueError, match="not a number"):
        apply_reference_energy(df, {"Cu": "x"})
    ec = df.rename(columns={"energy": "energy_corrected"})
    with pytest.raises(ValueError, match="no 'energy' column"):
        apply_reference_energy(ec, "auto")
    with pytest.raises(ValueError, match="neither"):
        apply_reference_energy(df.drop(columns="energy"))
