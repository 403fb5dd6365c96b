"""What front ends show to judge a fit: the structures table and per-structure predictions.

:func:`structures_table` lists every structure of a session's dataset (sizes, reference energies, weights);
:func:`predict_set` evaluates a potential on the train or test set and returns the per-structure error
table with the arrays for parity plots. Energies in eV and eV/atom, errors in meV/atom and meV/Å.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from paceui.ace.potential import ACEPotential
from paceui.fit.arrays import FitArrays
from paceui.fit.error_tables import group_errors, per_structure_errors
from paceui.fit.loss import ACELoss, LossConfig
from paceui.session.session_data import SessionData

Subset = Literal["train", "test"]


def _formula(atoms: object) -> str:
    try:
        return str(atoms.get_chemical_formula(mode="metal"))  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - a structure without ase_atoms still gets a row
        return ""


def structures_table(data: SessionData, subset: Literal["train", "test", "all"] = "all") -> pd.DataFrame:
    """One row per structure: ``subset``, ``name``, ``formula``, ``n_atoms``, ``energy`` (eV),
    ``energy_per_atom`` / ``energy_corrected_per_atom`` (eV/atom), ``f_max`` (max |F|, eV/Å),
    ``w_energy`` (normalised energy weight as fitted), ``w_forces`` (sum of the atoms' force weights)."""
    rows = []
    for name, arr in (("train", data.train), ("test", data.test)):
        frame = data.prepared.train if name == "train" else data.prepared.test
        if arr is None or frame is None or subset not in (name, "all"):
            continue
        nat = arr.n_atoms
        fnorm = np.sqrt(np.einsum("ij,ij->i", arr.f_ref, arr.f_ref))
        starts = arr.struct_off[:-1]
        fmax = np.maximum.reduceat(fnorm, starts) if len(fnorm) else np.zeros(len(nat))
        wf = np.add.reduceat(arr.w_f, starts) if len(fnorm) else np.zeros(len(nat))
        energy = frame["energy"].to_numpy(float) if "energy" in frame else arr.e_ref
        rows.append(pd.DataFrame({
            "subset": name, "name": frame["name"].astype(str).to_numpy() if "name" in frame else "",
            "formula": [_formula(a) for a in frame["ase_atoms"]] if "ase_atoms" in frame else "",
            "n_atoms": nat, "energy": energy, "energy_per_atom": energy / nat,
            "energy_corrected_per_atom": arr.e_ref / nat, "f_max": fmax, "w_energy": arr.w_e, "w_forces": wf}))
    if not rows:
        return pd.DataFrame(columns=["subset", "name", "formula", "n_atoms", "energy", "energy_per_atom",
                                     "energy_corrected_per_atom", "f_max", "w_energy", "w_forces"])
    return pd.concat(rows, ignore_index=True)


@dataclass(frozen=True)
class Predictions:
    """A potential evaluated on one set: ``table`` from :func:`paceui.fit.metrics.per_structure_errors`
    (``name``, ``n_atoms``, ``e_ref_per_atom``, ``e_pred_per_atom``, ``de_per_atom_mev``, ``f_rmse_mev``,
    ``df_max_mev``, ``w_energy``, ``low``) and the force components for parity plots (eV/Å, shape (N, 3))."""

    subset: Subset
    table: pd.DataFrame
    f_ref: np.ndarray
    f_pred: np.ndarray
    groups: pd.DataFrame | None = None  # :func:`paceui.fit.metrics.group_errors` (meV/atom, meV/Å, GPa)
    s_ref: np.ndarray | None = None     # [S_stress, 6] reference stresses of the structures with one (eV/Å³)
    s_pred: np.ndarray | None = None    # [S_stress, 6] predicted (eV/Å³)

    @property
    def energy_mae_mev(self) -> float:
        """Energy MAE over structures, meV/atom."""
        return float(np.mean(np.abs(self.table["de_per_atom_mev"]))) if len(self.table) else float("nan")

    @property
    def force_rmse_mev(self) -> float:
        """Force component RMSE over atoms, meV/Å."""
        d = self.f_pred - self.f_ref
        return float(np.sqrt(np.mean(d * d)) * 1e3) if d.size else float("nan")

    @property
    def n_stress(self) -> int:
        """Structures with a reference stress."""
        return 0 if self.s_ref is None else len(self.s_ref)

    @property
    def stress_rmse_gpa(self) -> float:
        """Stress component RMSE (6 Voigt components) over the structures with a reference, GPa."""
        if self.s_ref is None or self.s_pred is None or not len(self.s_ref):
            return float("nan")
        d = self.s_pred - self.s_ref
        return float(np.sqrt(np.mean(d * d)) * 160.21766208)

    @property
    def stress_mae_gpa(self) -> float:
        """Stress component MAE over the structures with a reference, GPa."""
        if self.s_ref is None or self.s_pred is None or not len(self.s_ref):
            return float("nan")
        return float(np.mean(np.abs(self.s_pred - self.s_ref)) * 160.21766208)

    def worst(self, n: int = 10, by: str = "de_per_atom_mev") -> pd.DataFrame:
        """The ``n`` structures with the largest absolute ``by`` error."""
        return self.table.reindex(self.table[by].abs().sort_values(ascending=False).index).head(n)


def predict_set(potential: ACEPotential, data: SessionData, subset: Subset = "train") -> Predictions:
    """Evaluate ``potential`` on the session's train or test structures (blocks; call from a worker)."""
    arr: FitArrays | None = data.train if subset == "train" else data.test
    frame = data.prepared.train if subset == "train" else data.prepared.test
    if arr is None or frame is None:
        raise ValueError(f"the session has no {subset} set")
    loss = ACELoss(potential, LossConfig())
    e, f, w = loss.predict_virials(loss.pmap.get(potential), arr)
    names = frame["name"].astype(str).tolist() if "name" in frame else None
    table = per_structure_errors(e, arr.e_ref, arr.n_atoms, f, arr.f_ref, arr.w_e, names)
    groups = frame["group"].astype(str).tolist() if "group" in frame else ["default"] * arr.n_struct
    table["group"] = groups
    gt = group_errors(groups, e, arr.e_ref, arr.n_atoms, f, arr.f_ref, w, arr.s_ref, arr.vol)
    vol, ref = arr.vol, arr.s_ref
    assert vol is not None and ref is not None  # FitArrays fills them in __post_init__
    has = arr.has_stress & (vol > 0)
    s_ref = s_pred = None
    if has.any():
        s_ref, s_pred = ref[has] / vol[has, None], w[has] / vol[has, None]
    return Predictions(subset, table, arr.f_ref, f, gt, s_ref, s_pred)
