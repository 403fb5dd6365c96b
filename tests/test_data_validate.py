"""Dataset validation: every bad case names the structure; inputs are never modified."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from ase import Atoms

from paceui.data import DataValidationError, DataWarning, build_packed_neighbors, filter_rows
from tests.test_data_common import cu_frame, same, snapshot


def _bad_frame() -> pd.DataFrame:
    df = cu_frame(8)
    df.at[1, "energy"] = np.nan
    f = df.at[2, "forces"].copy()
    f[0, 1] = np.inf
    df.at[2, "forces"] = f
    df.at[3, "forces"] = np.zeros((len(df.at[3, "ase_atoms"]) + 1, 3))
    at = df.at[4, "ase_atoms"].copy()
    at[0].symbol = "Ag"
    df.at[4, "ase_atoms"] = at
    df.at[5, "forces"] = None
    df.at[6, "energy"] = np.inf
    return df


def test_filter_rows_reasons_and_untouched_input() -> None:
    df = _bad_frame()
    before = snapshot(df)
    out, report = filter_rows(df, elements=["Cu"])
    assert same(snapshot(df), before)
    assert list(out.index) == [0, 7]
    by = {r.index: r for r in report}
    assert sorted(by) == [1, 2, 3, 4, 5, 6]
    assert "not finite" in by[1].reason and by[1].name == "cu:1"
    assert "NaN/inf" in by[2].reason
    assert "shape" in by[3].reason and "expected" in by[3].reason
    assert "Ag" in by[4].reason and "potential's elements" in by[4].reason
    assert "forces missing" in by[5].reason
    assert "not finite" in by[6].reason
    assert str(by[3]).startswith("structure 3 (cu:3):")
    # without an element list Ag is fine
    _, rep2 = filter_rows(df)
    assert 4 not in {r.index for r in rep2}


def test_strict_mode_lists_all_problems() -> None:
    with pytest.raises(DataValidationError) as err:
        filter_rows(_bad_frame(), elements=["Cu"], strict=True)
    msg = str(err.value)
    assert "6 invalid structure(s)" in msg
    for k in (1, 2, 3, 4, 5, 6):
        assert f"structure {k} (cu:{k})" in msg


def test_fatal_problems() -> None:
    df = cu_frame(3)
    with pytest.raises(DataValidationError, match="missing column.*forces"):
        filter_rows(df.drop(columns="forces"))
    with pytest.raises(DataValidationError, match="energy or energy_corrected"):
        filter_rows(df.drop(columns="energy"))
    with pytest.raises(DataValidationError, match="empty"):
        filter_rows(df.iloc[:0])
    mixed = df.copy()
    at = mixed.at[2, "ase_atoms"].copy()
    at.pbc = [True, True, False]
    mixed.at[2, "ase_atoms"] = at
    with pytest.raises(DataValidationError, match=r"mixed pbc in structure 2 \(cu:2\)"):
        filter_rows(mixed)
    allbad = df.copy()
    allbad["energy"] = np.nan
    with pytest.raises(DataValidationError, match="no structure left"):
        filter_rows(allbad)


def test_isolated_atom_dropped(tmp_path) -> None:  # type: ignore[no-untyped-def]
    df = cu_frame(3)
    lone = Atoms("Cu2", positions=[[0, 0, 0], [2.5, 0, 0]], cell=[20, 20, 20], pbc=False)
    far = Atoms("Cu3", positions=[[0, 0, 0], [2.5, 0, 0], [12, 0, 0]], cell=[30, 30, 30], pbc=False)
    extra = pd.DataFrame([{"name": "dimer", "ase_atoms": lone, "energy": -5.0, "forces": np.zeros((2, 3))},
                          {"name": "far", "ase_atoms": far, "energy": -5.0, "forces": np.zeros((3, 3))}])
    df = pd.concat([df, extra], ignore_index=True)
    before = snapshot(df)
    nb = build_packed_neighbors(list(df["ase_atoms"]), 5.0, ["Cu"], use_cache=False, progress=False)
    out, report = filter_rows(df, neighbors=nb)
    assert same(snapshot(df), before)
    assert [r.index for r in report] == [4]
    assert report[0].name == "far" and "atom(s) 2 (Cu)" in report[0].reason and "5 Å" in report[0].reason
    assert len(out) == 4


def test_unit_warnings() -> None:
    df = cu_frame(3)
    df.at[0, "energy"] = -1e6
    with pytest.warns(DataWarning, match=r"per atom spans.*structure 0 \(cu:0\)"):
        filter_rows(df)
    df2 = cu_frame(3)
    f = df2.at[1, "forces"].copy()
    f[0, 0] = 5e4
    df2.at[1, "forces"] = f
    with pytest.warns(DataWarning, match=r"structure 1 \(cu:1\).*force"):
        out, rep = filter_rows(df2)
    assert len(out) == 3 and not rep


def test_bad_weights_dropped() -> None:
    df = cu_frame(4)
    df["w_energy"] = [1.0, -1.0, np.nan, 1.0]
    df["w_forces"] = [np.ones(len(a)) for a in df["ase_atoms"]]
    df.at[3, "w_forces"] = np.ones(len(df.at[3, "ase_atoms"]) + 2)
    df.at[2, "name"] = "augmented_2"  # NaN weights are allowed for augmented data
    _, report = filter_rows(df)
    assert [r.index for r in report] == [1, 3]
    assert "w_energy" in report[0].reason and "w_forces" in report[1].reason
