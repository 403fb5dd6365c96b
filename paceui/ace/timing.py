"""Speed of a potential on standard random cells (``paceui timing``, as pacemaker's ``pace_timing``).

The cells: fcc or bcc 2×2×2 cubic supercells (32 or 16 atoms) with a lattice constant drawn from
[3.5, 4.5] Å, every atom displaced by N(0, 0.1 Å) noise and given a random element of the potential.
Energy and forces are timed per cell (best of ``repeat`` calls, neighbour list included) with one
numba thread and with all of them; the figure is µs per atom.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numba
import numpy as np

from paceui.ace.evaluator import ACEModel
from paceui.ace.neighbors import neighbor_list

FCC = np.array([[0.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.5, 0.0, 0.5], [0.5, 0.5, 0.0]])
BCC = np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]])


@dataclass(frozen=True)
class Cell:
    """One random periodic cell: positions (Å), cell rows (Å), species ids of the potential's elements."""

    lattice: str
    a: float
    positions: np.ndarray
    cell: np.ndarray
    species: np.ndarray


@dataclass(frozen=True)
class TimingRow:
    """µs/atom of energy+forces over the cells at one thread count (median, fastest and slowest cell)."""

    threads: int
    median_us: float
    min_us: float
    max_us: float


def random_cells(n_elements: int, n: int, seed: int = 0) -> list[Cell]:
    """``n`` random fcc/bcc 2×2×2 supercells (a ∈ [3.5, 4.5] Å, 0.1 Å noise, random species)."""
    if n < 1:
        raise ValueError(f"-n/--nstructures must be at least 1, got {n}")
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        lattice = "fcc" if k % 2 == 0 else "bcc"
        basis = FCC if lattice == "fcc" else BCC
        a = float(rng.uniform(3.5, 4.5))
        grid = np.array([(i, j, l) for i in range(2) for j in range(2) for l in range(2)], float)
        frac = (grid[:, None, :] + basis[None, :, :]).reshape(-1, 3)
        pos = frac * a + rng.normal(0.0, 0.1, frac.shape)
        out.append(Cell(lattice, a, pos, np.eye(3) * 2 * a, rng.integers(0, n_elements, len(pos))))
    return out


def _time_cell(model: ACEModel, c: Cell, repeat: int) -> float:
    """Best wall time (s) of neighbour list + energy + forces of one cell."""
    best = float("inf")
    pbc = np.ones(3, bool)
    for _ in range(repeat):
        t = time.perf_counter()
        nl = neighbor_list(c.positions, c.cell, pbc, model.cutoff)
        res = model.evaluate_arrays(c.species, nl)
        best = min(best, time.perf_counter() - t)
    if not (np.isfinite(res.energy) and np.isfinite(res.forces).all()):
        raise ValueError(f"{c.lattice} cell a={c.a:.3f} Å: the energy or forces are not finite")
    return best


def time_potential(path: str | os.PathLike[str], n: int = 10, repeat: int = 3, seed: int = 0,
                   threads: list[int] | None = None) -> tuple[ACEModel, list[Cell], list[TimingRow]]:
    """Time energy+forces of the potential at ``path`` on :func:`random_cells` at each thread count
    (default: 1 and all numba threads). Compilation is done by a first call that is not timed."""
    if repeat < 1:
        raise ValueError(f"--repeat must be at least 1, got {repeat}")
    model = ACEModel(path)
    cells = random_cells(len(model.elements), n, seed)
    all_t = int(getattr(numba.config, "NUMBA_NUM_THREADS"))  # noqa: B009 (not in the stubs)
    counts = threads or sorted({1, all_t})
    before = numba.get_num_threads()
    rows = []
    try:
        for th in counts:
            numba.set_num_threads(th)
            _time_cell(model, cells[0], 1)  # compile / warm up
            us = [_time_cell(model, c, repeat) / len(c.species) * 1e6 for c in cells]
            rows.append(TimingRow(th, float(np.median(us)), float(min(us)), float(max(us))))
    finally:
        numba.set_num_threads(before)
    return model, cells, rows
