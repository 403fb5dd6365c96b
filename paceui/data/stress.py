"""Reference stresses and virials of a dataset: one column ``stress`` (ASE Voigt σ, eV/Å³).

Rule (ASE's conventions): σ = (1/Ω) ∂E/∂ε, Voigt order xx yy zz yz xz xy, eV/Å³ (``atoms.get_stress()``);
the virial is V = −Ω σ (eV). A frame column ``stress`` holds σ (6 Voigt numbers or a 3×3 / 9-number
tensor); a column ``virial`` holds V (3×3, 9 or 6 numbers) and becomes ``stress = −V/Ω``. In extxyz files
the keys looked up are, in order: the user's ``stress_key`` / ``virial_key``, ``REF_stress``, the calculator's
``stress``, ``stress``, ``REF_virial``, ``virial``. Only 3-D periodic structures keep a stress; others get none.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

STRESS_KEYS = ("REF_stress", "stress")
VIRIAL_KEYS = ("REF_virial", "virial")
_UPPER = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))


def to_voigt(x: Any, what: str = "stress") -> np.ndarray:
    """6 Voigt numbers (xx yy zz yz xz xy) from 6 Voigt numbers, 9 numbers or a 3×3 tensor (row-major)."""
    a = np.asarray(x, dtype=np.float64).reshape(-1)
    if a.size == 6:
        return a.copy()
    if a.size == 9:
        t = a.reshape(3, 3)
        return np.array([t[i, j] for i, j in _UPPER])
    raise ValueError(f"{what} must have 6 (Voigt) or 9 (3×3) numbers, got {a.size}")


def _periodic_volume(atoms: Any) -> float:
    """Cell volume (Å³) of a 3-D periodic structure, else 0."""
    if atoms is None or not np.all(atoms.pbc):
        return 0.0
    return float(abs(np.linalg.det(np.asarray(atoms.cell.array, float))))


def stress_from_info(atoms: Any, results: dict[str, Any], stress_key: str | None = None,
                     virial_key: str | None = None) -> tuple[np.ndarray | None, list[str]]:
    """σ (Voigt, eV/Å³) of one structure read from its info/calculator; the info keys used."""
    info = atoms.info
    vol = _periodic_volume(atoms)
    order: list[tuple[str, str]] = []
    if stress_key:
        order.append(("stress", stress_key))
    if virial_key:
        order.append(("virial", virial_key))
    order += [("stress", "REF_stress"), ("calc", "stress"), ("stress", "stress"),
              ("virial", "REF_virial"), ("virial", "virial")]
    for kind, key in order:
        val = results.get(key) if kind == "calc" else info.get(key)
        if val is None:
            continue
        used = [] if kind == "calc" else [key]
        if vol <= 0.0:
            return None, used
        v = to_voigt(val, f"{key} of {atoms.get_chemical_formula()}")
        return (-v / vol if kind == "virial" else v), used
    return None, []


def normalize_stress_columns(df: pd.DataFrame) -> pd.DataFrame:
    """A ``stress`` column (σ, Voigt, eV/Å³, None where absent) from ``stress`` and/or ``virial`` columns."""
    if "stress" not in df.columns and "virial" not in df.columns:
        return df
    out = df.copy()
    col: list[np.ndarray | None] = []
    for k in range(len(out)):
        at = out["ase_atoms"].iloc[k] if "ase_atoms" in out.columns else None
        vol = _periodic_volume(at)
        s = out["stress"].iloc[k] if "stress" in out.columns else None
        v = out["virial"].iloc[k] if "virial" in out.columns else None
        val = None
        if _present(s):
            val = to_voigt(s, f"stress of row {k}")
        elif _present(v) and vol > 0:
            val = -to_voigt(v, f"virial of row {k}") / vol
        col.append(val if vol > 0 and val is not None and np.all(np.isfinite(val)) else None)
    out["stress"] = pd.Series(col, index=out.index, dtype=object)
    return out.drop(columns=[c for c in ("virial",) if c in out.columns])


def _present(x: Any) -> bool:
    if x is None:
        return False
    if isinstance(x, float) and np.isnan(x):
        return False
    return np.asarray(x).size > 0


def stress_arrays(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(W_ref = Ω·σ [S, 6] eV with NaN rows where no stress, weights [S] summing to 1 over the structures
    with stress (column ``w_stress`` as relative factors, default 1), volumes [S] Å³)."""
    S = len(frame)
    vol = np.array([_periodic_volume(a) for a in frame["ase_atoms"]]) if "ase_atoms" in frame.columns \
        else np.zeros(S)
    w_ref = np.full((S, 6), np.nan)
    if "stress" in frame.columns:
        for k, s in enumerate(frame["stress"]):
            if _present(s) and vol[k] > 0:
                w_ref[k] = to_voigt(s) * vol[k]
    has = np.all(np.isfinite(w_ref), axis=1)
    w = frame["w_stress"].to_numpy(float) if "w_stress" in frame.columns else np.ones(S)
    w = np.where(has & np.isfinite(w), w, 0.0)
    tot = w.sum()
    return w_ref, (w / tot if tot > 0 else w), vol
