"""Helpers shared by the ``test_data_*`` modules: data locations, small frames, deep snapshots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from ase import Atoms
from ase.build import bulk

SHARED = Path(__file__).resolve().parents[2] / "shared"
DATASETS = SHARED / "reference" / "datasets"
DATASETS_XYZ = SHARED / "reference" / "datasets_extxyz"
ZUO = SHARED / "zuo"


def need(path: Path) -> Path:
    """``path``, or skip: the reference data lives in the shared/ folder beside the checkout."""
    if not path.exists():
        pytest.skip(f"reference data not found: {path} (shared/ folder beside the checkout is absent); "
                    "these tests read the pacemaker example datasets and the Zuo et al. data")
    return path


def cu_frame(n: int = 4, seed: int = 0, energy_col: str = "energy") -> pd.DataFrame:
    """Small periodic Cu structures (rattled fcc, 1–4 atoms) with energies (eV) and forces (eV/Å)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        at = bulk("Cu", "fcc", a=3.6 + 0.02 * i, cubic=bool(i % 2))
        at.positions += rng.normal(0, 0.02, at.positions.shape)
        rows.append({"name": f"cu:{i}", "ase_atoms": at, energy_col: -3.5 * len(at) + 0.01 * i,
                     "forces": rng.normal(0, 0.1, (len(at), 3))})
    return pd.DataFrame(rows)


def snapshot(df: pd.DataFrame) -> Any:
    """Deep, comparable copy of everything in a frame (arrays and Atoms included)."""

    def value(v: Any) -> Any:
        if isinstance(v, Atoms):
            calc = None if v.calc is None else {k: value(x) for k, x in v.calc.results.items()}
            return ("Atoms", v.numbers.tolist(), v.positions.tolist(), v.cell.array.tolist(), v.pbc.tolist(),
                    {k: value(x) for k, x in v.info.items()}, sorted(v.arrays), calc)
        if isinstance(v, np.ndarray):
            return ("nd", v.dtype.str, v.shape, v.tolist())
        if isinstance(v, dict):
            return {k: value(x) for k, x in v.items()}
        if isinstance(v, float) and np.isnan(v):
            return "nan"
        return v

    return (list(df.columns), list(df.index), [str(t) for t in df.dtypes],
            [[value(x) for x in df[c]] for c in df.columns], dict(df.attrs))


def same(a: Any, b: Any) -> bool:
    """Equality of two snapshots."""
    return a == b


def atoms_equal(a: Atoms, b: Atoms) -> bool:
    return (np.array_equal(a.numbers, b.numbers) and np.allclose(a.positions, b.positions, atol=1e-8)
            and np.allclose(a.cell.array, b.cell.array, atol=1e-8) and np.array_equal(a.pbc, b.pbc))


def test_snapshot_sees_changes() -> None:
    df = cu_frame(2)
    s0 = snapshot(df)
    df["forces"].iloc[0][0, 0] += 1.0
    assert snapshot(df) != s0
    df2 = cu_frame(2)
    df2["ase_atoms"].iloc[1].positions[0, 0] += 1e-3
    assert snapshot(df2) != snapshot(cu_frame(2))
