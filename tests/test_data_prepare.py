"""End-to-end data preparation from pacemaker ``data:`` / ``fit: weighting:`` sections."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

from paceui.data import DataConfig, Dataset, DataWarning, load_dataframe, prepare_dataset, save_dataframe
from tests.test_data_common import DATASETS, SHARED, ZUO, atoms_equal, cu_frame, need


def _check_prepared(p, cutoff: float) -> None:  # type: ignore[no-untyped-def]
    for frame, pack in ((p.train, p.train_neighbors), (p.test, p.test_neighbors)):
        if frame is None:
            assert pack is None
            continue
        assert abs(frame["w_energy"].sum() - 1) < 1e-12
        assert abs(sum(w.sum() for w in frame["w_forces"]) - 1) < 1e-12
        assert pack.n_structures == len(frame) and pack.cutoff == cutoff
        for k in (0, len(frame) - 1):
            at = frame["ase_atoms"].iloc[k]
            assert pack.structure_slice(k).stop - pack.structure_slice(k).start == len(at)
            off, j, vec, _ = pack.structure(k)
            r = at.positions[j] - at.positions[np.repeat(np.arange(len(at)), np.diff(off))]
            frac = np.linalg.solve(at.cell.array.T, (vec - r).T).T if at.pbc.all() else np.zeros_like(r)
            np.testing.assert_allclose(frac, np.round(frac), atol=1e-8)  # vec = r_j - r_i + lattice vector
            assert np.all(np.linalg.norm(vec, axis=1) < cutoff)


def test_cu_example(tmp_path: Path) -> None:
    cfg = {"filename": "Cu_df1_A1_A2_A3_EV_elast_phon.pckl.gzip", "datapath": str(need(DATASETS)), "test_size": 0.1}
    cfg_before = copy.deepcopy(cfg)
    p = prepare_dataset(cfg, elements=["Cu"], cutoff=6.0, cache_dir=tmp_path, seed=42)
    assert cfg == cfg_before
    assert len(p.train) == 95 and len(p.test) == 10 and not p.dropped
    assert p.reference_energy is None and p.elements == ("Cu",)
    assert set(p.train.index).isdisjoint(p.test.index)
    assert p.train["train"].all() and not p.test["train"].any()
    _check_prepared(p, 6.0)
    again = Dataset.prepare(cfg, elements=["Cu"], cutoff=6.0, cache_dir=tmp_path, seed=42)
    assert list(again.test.index) == list(p.test.index)
    assert len(list(tmp_path.glob("nl-*.npz"))) == 1
    other = prepare_dataset({**cfg, "seed": 7}, cutoff=6.0, cache_dir=tmp_path)
    assert list(other.test.index) != list(p.test.index)
    assert "train 95 structures" in p.summary()


def test_hea_example_energy_weighting(tmp_path: Path) -> None:
    inp = yaml.safe_load(need(SHARED / "reference" / "inputs" / "examples_HEA_input.yaml").read_text())
    data = {**inp["data"], "datapath": str(DATASETS)}
    p = prepare_dataset(data, elements=inp["potential"]["elements"], cutoff=inp["cutoff"],
                        weighting=inp["fit"]["weighting"], cache_dir=tmp_path)
    assert len(p.train) == 20 and p.test is None
    eff = p.train["effective_energy"].to_numpy()
    w = 1 / (eff + 1e6) ** 2
    np.testing.assert_allclose(p.train["w_energy"], w / w.sum(), rtol=1e-12)
    _check_prepared(p, float(inp["cutoff"]))


def test_zuo_train_test_files_auto_reference(tmp_path: Path) -> None:
    data = {"filename": str(need(ZUO / "Si_train.xyz.gz")), "test_filename": str(ZUO / "Si_test.xyz.gz"),
            "reference_energy": "auto"}
    p = prepare_dataset(data, cutoff=3.0, cache_dir=tmp_path, progress=False)
    assert len(p.train) == 214 and len(p.test) == 25
    assert set(p.reference_energy or {}) == {"Si", "shift"}
    assert p.reference_energy_json is not None and '"Si"' in p.reference_energy_json
    raw = load_dataframe(ZUO / "Si_train.xyz.gz")
    e_si, shift = p.reference_energy["Si"], p.reference_energy["shift"]  # type: ignore[index]
    nat = np.array([len(a) for a in raw["ase_atoms"]])
    np.testing.assert_allclose(p.train["energy_corrected"], raw["energy"] - nat * e_si + shift * nat, rtol=1e-12)
    assert np.allclose(p.test.index, np.arange(214, 214 + 25))
    _check_prepared(p, 3.0)


def test_drops_and_augmented_weights(tmp_path: Path) -> None:
    real = cu_frame(6)
    real["energy_corrected"] = real["energy"]
    real.at[2, "forces"] = np.zeros((5, 3))  # wrong shape
    aug = cu_frame(2, seed=3)
    aug["name"] = ["augmented_0", "augmented_1"]
    save_dataframe(real, tmp_path / "real.pckl.gzip")
    save_dataframe(aug, tmp_path / "aug.pckl.gzip")
    data = {"filename": ["real.pckl.gzip", "aug.pckl.gzip"], "datapath": str(tmp_path), "aug_factor": 1e-2}
    p = prepare_dataset(data, cutoff=4.0, use_cache=False)
    assert [r.index for r in p.dropped] == [2] and "shape" in p.dropped[0].reason
    assert len(p.train) == 7
    we = p.train.set_index("name")["w_energy"]
    assert we["augmented_0"] == pytest.approx(we["cu:0"] * 1e-2)
    with pytest.warns(DataWarning, match="test_size is ignored"):
        DataConfig.from_dict({"filename": "a", "test_filename": "b", "test_size": 0.1})


def test_unknown_elements_dropped_and_external_weights(tmp_path: Path) -> None:
    df = cu_frame(4)
    at = df.at[1, "ase_atoms"].copy()
    at[0].symbol = "Ag"
    df.at[1, "ase_atoms"] = at
    save_dataframe(df, tmp_path / "d.pckl.gzip")
    w = df.assign(w_energy=[1.0, 1.0, 3.0, 1.0], w_forces=[np.ones(len(a)) for a in df["ase_atoms"]])
    w = w[["w_energy", "w_forces"]]
    save_dataframe(w, tmp_path / "w.pckl.gzip")
    p = prepare_dataset({"filename": str(tmp_path / "d.pckl.gzip")}, elements=["Cu"],
                        weighting={"type": "ExternalWeightingPolicy", "filename": str(tmp_path / "w.pckl.gzip")})
    assert [r.index for r in p.dropped] == [1] and "Ag" in p.dropped[0].reason
    np.testing.assert_allclose(p.train["w_energy"], [0.2, 0.6, 0.2])
    assert p.train_neighbors is None


def test_data_config_errors() -> None:
    assert DataConfig.from_dict("x.pckl.gzip").filename == ("x.pckl.gzip",)
    c = DataConfig.from_dict({"filename": ["a", "b"], "test_size": 5, "reference_energy": {"Cu": -1}})
    assert c.filename == ("a", "b") and c.test_size == 5 and c.aug_factor == 1e-4
    with pytest.raises(ValueError, match="unknown key.*test_sise"):
        DataConfig.from_dict({"filename": "a", "test_sise": 0.1})
    with pytest.raises(ValueError, match="filename is required"):
        DataConfig.from_dict({"test_size": 0.1})
    with pytest.raises(ValueError, match="test_size must be a number"):
        DataConfig.from_dict({"filename": "a", "test_size": "10%"})
    with pytest.raises(ValueError, match="ignore_weights"):
        DataConfig.from_dict({"filename": "a", "ignore_weights": "yes"})
    with pytest.warns(DataWarning, match="cache_ref_df.*legacy"):
        DataConfig.from_dict({"filename": "a", "cache_ref_df": True})
    with pytest.raises(FileNotFoundError, match="nothere.pckl.gzip"):
        prepare_dataset({"filename": "nothere.pckl.gzip"})
    with pytest.raises(Exception):
        c.test_size = 3  # type: ignore[misc]


def test_atoms_are_shared_not_copied_but_unchanged(tmp_path: Path) -> None:
    """The prepared frames reference equal structures; the cached file data is untouched."""
    src = need(DATASETS / "df_AlNi.pckl.gzip")
    raw = src.read_bytes()
    p = prepare_dataset({"filename": str(src), "test_size": 2}, cutoff=5.0, cache_dir=tmp_path)
    assert src.read_bytes() == raw
    ref = load_dataframe(src)
    for k in p.train.index:
        assert atoms_equal(p.train.at[k, "ase_atoms"], ref.at[k, "ase_atoms"])
    _check_prepared(p, 5.0)
