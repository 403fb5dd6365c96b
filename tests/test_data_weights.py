"""Weighting policies against hand-computed values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ase import Atoms

from paceui.data import (
    EnergyBasedWeightingPolicy,
    ExternalWeightingPolicy,
    UniformWeightingPolicy,
    load_dataframe,
    normalize_weights,
    save_dataframe,
    weighting_from_dict,
)
from paceui.data.hull import lower_hull_energy
from paceui.data.weights import adjust_aug_weights, apply_w_factor, assign_weights
from tests.test_data_common import DATASETS, cu_frame, need, same, snapshot


def _energy_frame(epa: list[float], fx: list[float]) -> pd.DataFrame:
    """Cu structures with the given energy per atom (eV/atom); every atom gets force (fx, 0, 0)."""
    df = cu_frame(len(epa))
    nat = np.array([len(a) for a in df["ase_atoms"]])
    df["energy_corrected"] = np.array(epa) * nat
    df["energy_corrected_per_atom"] = epa
    df["forces"] = [np.tile([f, 0.0, 0.0], (n, 1)) for f, n in zip(fx, nat)]
    return df


def test_uniform() -> None:
    df = cu_frame(4)
    before = snapshot(df)
    out = normalize_weights(UniformWeightingPolicy().generate(df))
    assert same(snapshot(df), before)
    nat = np.array([len(a) for a in df["ase_atoms"]])
    np.testing.assert_allclose(out["w_energy"], 0.25)
    for w, n in zip(out["w_forces"], nat):
        np.testing.assert_allclose(w, 1.0 / nat.sum())
        assert w.shape == (n,)


def test_energy_based_hand_computed() -> None:
    df = _energy_frame([-4.0, -3.9, -3.5, -2.0, 10.0], [0.0, 1.0, 0.5, 2.0, 0.0])
    before = snapshot(df)
    pol = EnergyBasedWeightingPolicy(DElow=0.5, DEup=5.0, DE=0.1, DF=0.5, wlow=0.8, energy="cohesive")
    out = pol.generate(df)
    assert same(snapshot(df), before)
    assert list(out.index) == [0, 1, 2, 3]  # E_eff = 14 >= DEup removed
    np.testing.assert_allclose(out["effective_energy"], [0.0, 0.1, 0.5, 2.0], atol=1e-12)
    # tiers: low {0, 1} (E_eff < 0.5) rescaled to 0.8, up {2, 3} to 0.2
    up2, up3 = 1 / 0.6 ** 2, 1 / 2.1 ** 2
    expected = [0.8 * 100 / 125, 0.8 * 25 / 125, 0.2 * up2 / (up2 + up3), 0.2 * up3 / (up2 + up3)]
    np.testing.assert_allclose(out["w_energy"], expected, rtol=1e-12)
    nat = np.array([len(a) for a in out["ase_atoms"]])
    raw = [np.full(n, we / (f * f + 0.5)) for we, f, n in zip(expected, [0.0, 1.0, 0.5, 2.0], nat)]
    total = sum(r.sum() for r in raw)
    for w, r in zip(out["w_forces"], raw):
        np.testing.assert_allclose(w, r / total, rtol=1e-12)
    # without wlow: plain 1/(E+DE)^2, normalised
    out2 = EnergyBasedWeightingPolicy(DElow=0.5, DEup=5.0, DE=0.1, energy="cohesive").generate(df)
    plain = np.array([1 / 0.01, 1 / 0.04, up2, up3])
    np.testing.assert_allclose(out2["w_energy"], plain / plain.sum(), rtol=1e-12)


def test_energy_based_selection() -> None:
    epa = [-4.0, -3.95, -3.9, -3.0, -2.5, -2.0, -1.5]
    df = _energy_frame(epa, [0.1, 0.1, 5.0, 0.1, 0.1, 0.1, 0.1])
    out = EnergyBasedWeightingPolicy(nfit=4, seed=3, energy="cohesive").generate(df)
    assert len(out) == 4 and {0, 1, 2} <= set(out.index)  # all low tier kept, one of the upper tier
    again = EnergyBasedWeightingPolicy(nfit=4, seed=3, energy="cohesive").generate(df)
    assert list(again.index) == list(out.index)
    sub = EnergyBasedWeightingPolicy(n_lower=2, n_upper=3, seed=1, energy="cohesive").generate(df)
    eff = sub["effective_energy"].to_numpy()
    assert (eff < 1.0).sum() == 2 and (eff >= 1.0).sum() == 3
    capped = EnergyBasedWeightingPolicy(DFup=1.0, energy="cohesive").generate(df)
    assert 2 not in capped.index and len(capped) == 6
    assert abs(capped["w_energy"].sum() - 1) < 1e-12


def test_convex_hull_binary() -> None:
    """Al/Ni: hull Ni(0) - AlNi(-0.5) - Al(0); Al3Ni sits 0.35 eV/atom above, 2nd Al 0.1 above."""
    rows = []
    for syms, epa in [("Al", -3.0), ("Al", -2.9), ("Ni", -5.0), ("AlNi", -4.5), ("Al3Ni", -3.4)]:
        at = Atoms(syms, positions=np.arange(len(Atoms(syms)) * 3).reshape(-1, 3) * 0.7, cell=[8, 8, 8], pbc=True)
        rows.append({"name": syms, "ase_atoms": at, "energy_corrected": epa * len(at),
                     "energy_corrected_per_atom": epa, "forces": np.zeros((len(at), 3))})
    df = pd.DataFrame(rows)
    out = EnergyBasedWeightingPolicy(DEup=10.0).generate(df)
    np.testing.assert_allclose(out["e_chull_dist_per_atom"], [0.0, 0.1, 0.0, 0.0, 0.35], atol=1e-10)
    np.testing.assert_allclose(out["e_formation_per_atom"], [0.0, 0.1, 0.0, -0.5, 0.1], atol=1e-10)
    # the linear-programming fallback (Qhull needs >= 3 compositions in 2D) gives the same
    x = np.array([[1.0], [0.0], [0.5], [0.75]])
    lp = lower_hull_energy(x[:2], np.array([0.0, 0.0]), x)
    np.testing.assert_allclose(lp, [0.0, 0.0, 0.0, 0.0], atol=1e-12)
    q = lower_hull_energy(x[:3], np.array([0.0, 0.0, -0.5]), x)
    np.testing.assert_allclose(q, [0.0, 0.0, -0.5, -0.25], atol=1e-12)


def test_convex_hull_single_composition_reference_data() -> None:
    df = load_dataframe(need(DATASETS / "HEA_randII_example.pckl.gzip"))
    out = EnergyBasedWeightingPolicy(DE=1e6, DF=1e6, seed=42).generate(df)
    epa = df["energy_corrected_per_atom"].to_numpy()
    np.testing.assert_allclose(out["effective_energy"], epa - epa.min(), atol=1e-10)


def test_external_policy(tmp_path: Path) -> None:
    df = cu_frame(4)
    wfile = pd.DataFrame({"w_energy": [3.0, 1.0],
                          "w_forces": [np.full(len(df.at[k, "ase_atoms"]), 2.0) for k in (1, 3)]}, index=[1, 3])
    save_dataframe(wfile, tmp_path / "w.pckl.gzip")
    before = snapshot(df)
    out = normalize_weights(ExternalWeightingPolicy(str(tmp_path / "w.pckl.gzip")).generate(df))
    assert same(snapshot(df), before)
    assert list(out.index) == [1, 3]
    np.testing.assert_allclose(out["w_energy"], [0.75, 0.25])
    n1, n3 = len(df.at[1, "ase_atoms"]), len(df.at[3, "ase_atoms"])
    np.testing.assert_allclose(out.at[1, "w_forces"], 1.0 / (n1 + n3))
    bad = wfile.copy()
    bad.at[1, "w_forces"] = np.ones(n1 + 5)
    save_dataframe(bad, tmp_path / "bad.pckl.gzip")
    with pytest.raises(ValueError, match="structure 1"):
        ExternalWeightingPolicy(str(tmp_path / "bad.pckl.gzip")).generate(df)


def test_existing_columns_used_unless_ignored() -> None:
    df = load_dataframe(need(DATASETS / "df_AlNi.pckl.gzip"))
    out = normalize_weights(assign_weights(df, UniformWeightingPolicy()))
    we = df["w_energy"].to_numpy()
    np.testing.assert_allclose(out["w_energy"], we / we.sum())
    tot = sum(np.sum(w) for w in df["w_forces"])
    for a, b in zip(out["w_forces"], df["w_forces"]):
        np.testing.assert_allclose(a, np.asarray(b) / tot)
    ign = assign_weights(df, UniformWeightingPolicy(), ignore_weights=True)
    np.testing.assert_allclose(ign["w_energy"], 1 / len(df))


def test_w_factor_aug_and_normalisation() -> None:
    df = UniformWeightingPolicy().generate(cu_frame(4))
    df["w_factor"] = [1.0, 2.0, 0.0, 1.0]
    out = normalize_weights(apply_w_factor(df))
    np.testing.assert_allclose(out["w_energy"], [0.25, 0.5, 0.0, 0.25])
    assert abs(sum(w.sum() for w in out["w_forces"]) - 1) < 1e-12
    assert np.all(out.at[2, "w_forces"] == 0)
    aug = UniformWeightingPolicy().generate(cu_frame(4))
    aug["name"] = ["a", "b", "augmented_0", "augmented_1"]
    aug.at[3, "w_energy"] = np.nan
    aug.at[3, "w_forces"] = None
    res = adjust_aug_weights(aug, aug_factor=1e-3)
    np.testing.assert_allclose(res["w_energy"], [0.25, 0.25, 0.25e-3, 0.25e-3])
    assert np.allclose(res.at[3, "w_forces"], 0.25e-3) and res.at[3, "w_forces"].shape == (len(aug.at[3, "ase_atoms"]),)
    with pytest.raises(ValueError, match="sum to 0"):
        normalize_weights(df.assign(w_energy=0.0))


def test_weighting_from_dict() -> None:
    assert weighting_from_dict(None) == UniformWeightingPolicy()
    p = weighting_from_dict({"type": "EnergyBasedWeightingPolicy", "nfit": 200, "DElow": 1.0, "DEup": 10.0,
                             "DE": 1000000.0, "DF": 1000000.0, "wlow": "none", "energy": "convex_hull", "seed": 42})
    assert isinstance(p, EnergyBasedWeightingPolicy) and p.nfit == 200 and p.wlow is None and p.seed == 42
    with pytest.raises(ValueError, match="unknown key.*nfits"):
        weighting_from_dict({"type": "EnergyBasedWeightingPolicy", "nfits": 1})
    with pytest.raises(ValueError, match="unknown type 'Fancy'"):
        weighting_from_dict({"type": "Fancy"})
    with pytest.raises(ValueError, match="needs a 'type'"):
        weighting_from_dict({"nfit": 3})
    with pytest.raises(ValueError, match="needs 'filename'"):
        weighting_from_dict({"type": "ExternalWeightingPolicy"})
    with pytest.raises(ValueError, match="energy must be"):
        weighting_from_dict({"type": "EnergyBasedWeightingPolicy", "energy": "formation"})
    with pytest.raises(ValueError, match="DEup"):
        EnergyBasedWeightingPolicy(DElow=2.0, DEup=1.0)
    with pytest.raises(Exception):
        p.nfit = 3  # type: ignore[misc]  # frozen


def test_qhull_and_linear_program_agree_ternary() -> None:
    from paceui.data.hull import _lp_lower_hull, _qhull_lower

    rng = np.random.default_rng(5)
    c = rng.dirichlet([1.0, 1.0, 1.0], size=40)
    c[:3] = np.eye(3)
    e = rng.normal(0, 0.3, 40)
    e[:3] = 0.0
    q = _qhull_lower(c[:, :2], e, c[:, :2])
    assert q is not None
    lp = np.array([_lp_lower_hull(c[:, :2], e, x) for x in c[:, :2]])
    np.testing.assert_allclose(q, lp, atol=1e-9)
    assert np.all(e - q >= -1e-9) and np.sum(np.abs(e - q) < 1e-9) >= 4


def test_policy_errors_and_existing_weight_warning() -> None:
    df = _energy_frame([-4.0, -3.0], [0.0, 0.0])
    with pytest.raises(ValueError, match="kept no structure"):
        EnergyBasedWeightingPolicy(DFup=-1.0, energy="cohesive").generate(df)
    w = UniformWeightingPolicy().generate(df)
    from paceui.data import DataWarning

    with pytest.warns(DataWarning, match="ignore_weights"):
        out = assign_weights(w, EnergyBasedWeightingPolicy(energy="cohesive"))
    assert "effective_energy" not in out.columns
