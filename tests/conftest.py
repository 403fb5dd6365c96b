"""Shared test helpers: where the reference material lives, and small structure factories."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
REFERENCE = SHARED / "reference"
POTENTIALS = REFERENCE / "potentials"


def need_reference() -> Path:
    """The python-ace reference folder, or skip the test with the reason."""
    if not (REFERENCE / "pyace_reference_values.json").exists():
        pytest.skip(f"reference data not found at {REFERENCE} (the shared/ folder beside the checkout); "
                    "these tests compare paceui with values computed by pyace")
    return REFERENCE


@pytest.fixture
def reference() -> Path:
    return need_reference()


def random_cluster(symbols: list[str], seed: int, density: float = 0.06, dmin: float = 1.9,
                   pbc: bool | list[bool] = True) -> "ase.Atoms":  # noqa: F821
    """Random structure (Å) with no pair closer than dmin, in a triclinic cell."""
    from ase import Atoms

    rng = np.random.default_rng(seed)
    n = len(symbols)
    vol = n / density
    a = vol ** (1 / 3)
    cell = np.diag([a, a * 1.05, a * 0.95]) + rng.uniform(-0.15, 0.15, (3, 3)) * a
    at = Atoms(symbols=symbols, cell=cell, pbc=pbc)
    pos: list[np.ndarray] = []
    while len(pos) < n:
        p = rng.uniform(0, 1, 3) @ cell
        trial = Atoms(symbols=["H"] * (len(pos) + 1), positions=pos + [p], cell=cell, pbc=pbc)
        if len(pos) == 0 or trial.get_distances(len(pos), range(len(pos)), mic=True).min() > dmin:
            pos.append(p)
    at.positions = np.array(pos)
    return at


def modified_potential(name: str, kind: str | None):
    """A reference potential changed in memory to reach a radial basis or inner-cutoff type."""
    from paceui.ace.yaml_io import load_potential

    need_reference()
    pot = load_potential(POTENTIALS / name)
    for b in pot.blocks:
        if b.bond is None or kind is None:
            continue
        if kind in ("ChebLinear", "SBessel", "ChebPow"):
            b.bond.radbase = kind
        if kind in ("distance", "zbl"):
            b.bond.inner_cutoff_type = kind
            b.bond.r_in, b.bond.delta_in = 2.6, 0.5
            if kind == "zbl":
                b.bond.core_repulsion = [1.0, 1.0]
    return pot
