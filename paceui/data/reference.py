"""Atomic reference energies (pacemaker ``data: reference_energy``), energies in eV.

``energy_corrected = energy - sum_el n_el * E_el + shift * N_atoms`` for a dict, a single number
(same E for every element) or ``auto`` (least squares over compositions; the shift makes the
structure with the largest volume per atom have zero corrected energy).
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["DataWarning", "ENERGY_PER_ATOM_RANGE", "ReferenceEnergySpec", "apply_reference_energy",
           "composition_matrix", "fit_reference_energies"]

log = logging.getLogger(__name__)

#: outside this corrected-energy-per-atom window (eV/atom) with no reference given → ``auto``
ENERGY_PER_ATOM_RANGE: tuple[float, float] = (-20.0, 250.0)

ReferenceEnergySpec = None | str | float | int | Mapping[str, float]


class DataWarning(UserWarning):
    """A dataset problem that does not stop the fit (automatic choices, suspicious values)."""


def _elements_of(df: pd.DataFrame) -> list[str]:
    return sorted({s for at in df["ase_atoms"] for s in at.get_chemical_symbols()})


def composition_matrix(df: pd.DataFrame, elements: Sequence[str]) -> np.ndarray:
    """int64[S, n_el]: atoms of each element (order of ``elements``) in every structure."""
    index = {el: k for k, el in enumerate(elements)}
    out = np.zeros((len(df), len(elements)), dtype=np.int64)
    for s, at in enumerate(df["ase_atoms"]):
        for sym in at.get_chemical_symbols():
            if sym not in index:
                raise ValueError(f"structure {df.index[s]} ({_name(df, s)}): element {sym} has no "
                                 f"reference energy (known: {', '.join(elements)})")
            out[s, index[sym]] += 1
    return out


def _name(df: pd.DataFrame, s: int) -> str:
    return str(df["name"].iloc[s]) if "name" in df.columns else "?"


def _volume_per_atom(df: pd.DataFrame) -> np.ndarray:
    """Å^3/atom from |det(cell)| (0 for structures without a cell)."""
    return np.array([abs(float(np.linalg.det(at.cell.array))) / max(len(at), 1) for at in df["ase_atoms"]])


def fit_reference_energies(df: pd.DataFrame, energy: np.ndarray) -> dict[str, float]:
    """``auto``: least-squares E_el (``pinv(rcond=1e-10)``) plus the largest-volume shift (eV/atom)."""
    elements = _elements_of(df)
    n = composition_matrix(df, elements).astype(np.float64)
    e_el = np.linalg.pinv(n, rcond=1e-10) @ energy
    corrected = energy - n @ e_el
    nat = n.sum(axis=1)
    k = int(np.argmax(_volume_per_atom(df)))  # first structure with the largest volume/atom
    shift = -float(corrected[k] / nat[k])
    out = {el: float(e) for el, e in zip(elements, e_el)}
    out["shift"] = shift
    return out


def _parse(spec: ReferenceEnergySpec, elements: list[str]) -> dict[str, float] | str | None:
    if spec is None:
        return None
    if isinstance(spec, str):
        text = spec.strip()
        if text.lower() == "auto":
            return "auto"
        if text.startswith("{"):
            return _parse(json.loads(text), elements)
        try:
            return _parse(float(text), elements)
        except ValueError:
            raise ValueError(f"reference_energy {spec!r}: expected 'auto', a number (eV) or a dict "
                             "{Element: eV, shift: eV}; named presets such as "
                             "VASP_PBE_500_0.125_0.1_NM are not bundled with paceui") from None
    if isinstance(spec, bool):
        raise ValueError(f"reference_energy must be 'auto', a number or a dict, got {spec!r}")
    if isinstance(spec, (int, float, np.floating, np.integer)):
        return {**{el: float(spec) for el in elements}, "shift": 0.0}
    if isinstance(spec, Mapping):
        out: dict[str, float] = {}
        for key, val in spec.items():
            try:
                out[str(key)] = float(val)
            except (TypeError, ValueError):
                raise ValueError(f"reference_energy[{key!r}] = {val!r} is not a number (eV)") from None
        missing = [el for el in elements if el not in out]
        if missing:
            raise ValueError(f"reference_energy has no value for element(s) {', '.join(missing)} "
                             f"present in the data (given: {', '.join(out)})")
        out.setdefault("shift", 0.0)
        return out
    raise ValueError(f"reference_energy must be 'auto', a number or a dict, got {type(spec).__name__}")


def apply_reference_energy(df: pd.DataFrame, reference_energy: ReferenceEnergySpec = None,
                           ) -> tuple[pd.DataFrame, dict[str, float] | None]:
    """Return a copy with ``energy_corrected`` (eV), ``energy_corrected_per_atom`` (eV/atom) and
    ``NUMBER_OF_ATOMS``, and the reference-energy dict used (``None`` if none was applied).

    Without a reference energy an existing ``energy_corrected`` is kept (else ``energy`` is used);
    if any corrected energy per atom lies outside :data:`ENERGY_PER_ATOM_RANGE` the method
    switches to ``auto`` with a :class:`DataWarning`.  ``reference_energy`` may be the JSON string
    stored in a potential's metadata.
    """
    if "ase_atoms" not in df.columns:
        raise ValueError("dataset has no 'ase_atoms' column")
    out = df.copy()
    nat = np.array([len(at) for at in out["ase_atoms"]], dtype=np.int64)
    out["NUMBER_OF_ATOMS"] = nat
    has_e = "energy" in out.columns
    spec = _parse(reference_energy, _elements_of(out) if len(out) else [])
    if spec is None:
        if "energy_corrected" in out.columns and not out["energy_corrected"].isna().all():
            ecorr = out["energy_corrected"].to_numpy(dtype=np.float64)
            if has_e:
                missing = ~np.isfinite(ecorr)
                ecorr = np.where(missing, out["energy"].to_numpy(dtype=np.float64), ecorr)
        elif has_e:
            ecorr = out["energy"].to_numpy(dtype=np.float64)
        else:
            raise ValueError("dataset has neither an 'energy' nor an 'energy_corrected' column")
        with np.errstate(invalid="ignore", divide="ignore"):
            epa = ecorr / nat
        lo, hi = ENERGY_PER_ATOM_RANGE
        finite = epa[np.isfinite(epa)]
        if finite.size and (finite.min() < lo or finite.max() > hi):
            if not has_e:
                raise ValueError(f"energies per atom span {finite.min():.3f}..{finite.max():.3f} eV/atom, "
                                 f"outside [{lo}, {hi}], and there is no 'energy' column to fit "
                                 "reference energies on: give data: reference_energy")
            msg = (f"corrected energies per atom span {finite.min():.3f}..{finite.max():.3f} eV/atom, "
                   f"outside [{lo}, {hi}] eV/atom, and no reference_energy was given: using "
                   "reference_energy: auto (least-squares atomic energies)")
            warnings.warn(msg, DataWarning, stacklevel=2)
            log.warning(msg)
            spec = "auto"
        else:
            out["energy_corrected"] = ecorr
            out["energy_corrected_per_atom"] = epa
            return out, None
    if not has_e:
        raise ValueError("reference_energy was given but the dataset has no 'energy' column "
                         "(total energies are needed to subtract atomic reference energies)")
    energy = out["energy"].to_numpy(dtype=np.float64)
    if spec == "auto":
        ok = np.isfinite(energy)
        if not ok.any():
            raise ValueError("reference_energy: auto needs finite energies; all are NaN/inf")
        used = fit_reference_energies(out[ok], energy[ok])
    else:
        assert isinstance(spec, dict)
        used = spec
    elements = [k for k in used if k != "shift"]
    n = composition_matrix(out, elements).astype(np.float64)
    e_el = np.array([used[el] for el in elements])
    ecorr = energy - n @ e_el + used.get("shift", 0.0) * nat
    out["energy_corrected"] = ecorr
    with np.errstate(invalid="ignore", divide="ignore"):
        out["energy_corrected_per_atom"] = ecorr / nat
    return out, dict(used)


def reference_energy_json(used: Mapping[str, Any] | None) -> str | None:
    """The dict as the JSON string stored in potential metadata (``reference_energy``)."""
    return None if used is None else json.dumps({k: float(v) for k, v in used.items()})


__all__.append("reference_energy_json")
