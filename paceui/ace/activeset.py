"""Active sets (per-species MaxVol over projections), the extrapolation grade γ and the ``.asi`` file.

shared/spec/active_learning.md §2–4. γ_i = max_k |(b_i · A_act⁻¹)_k| (dimensionless): ≤ 1 (up to the
MaxVol tolerance) inside the training data, > 1 extrapolation. A ``.asi`` is a NumPy npz archive with
one A_act⁻¹ per element keyed by its symbol (read by pyace and LAMMPS ``pair_style pace/extrapolation``).
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from paceui._atomic import atomic_write_bytes
from paceui.ace.evaluator import ACEModel
from paceui.ace.maxvol import ZERO_COLUMN_EPS, MaxVolError, gamma_of, maxvol
from paceui.ace.potential import ACEPotential
from paceui.ace.projections import KINDS, Projections, as_model, iter_projections, layout
from paceui.ace.projections import batches as projection_batches
from paceui.errors import ActiveSetError

DEFAULT_TOL = 1.01
DEFAULT_MAX_ITERS = 300
DEFAULT_MEMORY_MB = 1000.0
PAIR_DENSITY = 0.1
"""Atoms per Å³ assumed when sizing batches by the neighbour-list memory (dense metals: ~0.085)."""


@dataclass(frozen=True)
class ActiveSet:
    """Per element the inverse A_act⁻¹ (n_s × n_s) of the active submatrix of its projections."""

    kind: str
    inverse: dict[str, np.ndarray]

    def gamma(self, proj: Projections) -> dict[str, np.ndarray]:
        """Per element the γ of every row of ``proj``."""
        if proj.kind != self.kind:
            raise ActiveSetError(f"projections are {proj.kind}, the active set is {self.kind}")
        out = {}
        for el, rows in proj.rows.items():
            if len(rows) == 0:
                out[el] = np.zeros(0)
                continue
            inv = self.inverse.get(el)
            if inv is None:
                raise ActiveSetError(f"the active set has no element {el} (it has {sorted(self.inverse)})")
            if inv.shape[0] != rows.shape[1]:
                raise ActiveSetError(f"active set of {el} is {inv.shape[0]}×{inv.shape[1]}, the potential "
                                     f"has {rows.shape[1]} {self.kind} projections: another potential's .asi?")
            out[el] = gamma_of(rows, inv)
        return out

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the pyace/LAMMPS ``.asi`` (npz keyed by element symbol; the name is kept as given)."""
        path = Path(path)
        if list(self.inverse) != sorted(self.inverse):
            warnings.warn(f"{path}: elements {list(self.inverse)} are not sorted; readers that map sorted "
                          f"keys to species indices (LAMMPS) need the potential to list them sorted",
                          stacklevel=2)
        buf = io.BytesIO()
        np.savez(buf, **{el: np.ascontiguousarray(m, dtype=float) for el, m in self.inverse.items()})
        atomic_write_bytes(path, buf.getvalue())  # the one write path: no half file, no stray .tmp
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str], potential: Any = None, kind: str | None = None) -> "ActiveSet":
        """Read an ``.asi`` (kind from the name: ``.nonlinear`` → full) and check it against the potential."""
        path = Path(path)
        if not path.exists():
            raise ActiveSetError(f"{path}: active-set file not found")
        try:
            with np.load(path, allow_pickle=False) as z:
                inverse = {k: np.asarray(z[k], dtype=float) for k in z.files}
        except (OSError, ValueError) as e:
            raise ActiveSetError(f"{path}: not a .asi (npz) file: {e}") from None
        if kind is None:
            kind = "full" if path.name.endswith(".nonlinear") else "linear"
        for el, m in inverse.items():
            if m.ndim != 2 or m.shape[0] != m.shape[1]:
                raise ActiveSetError(f"{path}: entry {el} is not a square matrix (shape {m.shape})")
        aset = cls(kind=kind, inverse=inverse)
        if potential is not None:
            aset.check(as_model(potential), str(path))
        return aset

    def check(self, model: ACEModel, where: str = "active set") -> None:
        """Every element of the potential present with the right size; warn on an unsorted element list."""
        widths = layout(model).width(self.kind)
        if model.elements != sorted(model.elements):
            warnings.warn(f"{where}: the potential lists its elements {model.elements} unsorted; a reader "
                          f"that maps the sorted .asi keys to species indices would misread it", stacklevel=3)
        for el, w in widths.items():
            m = self.inverse.get(el)
            if m is None:
                raise ActiveSetError(f"{where}: no entry for element {el} (has {sorted(self.inverse)})")
            if m.shape[0] != w:
                other = "full" if self.kind == "linear" else "linear"
                raise ActiveSetError(f"{where}: {el} is {m.shape[0]}×{m.shape[0]}, the potential has {w} "
                                     f"{self.kind} projections (a {other} set, or another potential's?)")


@dataclass(frozen=True)
class SpeciesReport:
    """Per element: active-set size, data rows, structures drawn from, max γ over the data, MaxVol swaps."""

    element: str
    size: int
    n_rows: int
    n_structures: int
    max_gamma: float
    n_iters: int


@dataclass
class _Pool:
    """Candidate rows of one element and where they came from."""

    rows: np.ndarray
    structure: np.ndarray
    atom: np.ndarray

    def take(self, idx: np.ndarray) -> "_Pool":
        return _Pool(self.rows[idx], self.structure[idx], self.atom[idx])

    def join(self, other: "_Pool") -> "_Pool":
        return _Pool(np.concatenate([self.rows, other.rows]), np.concatenate([self.structure, other.structure]),
                     np.concatenate([self.atom, other.atom]))


def batch_atoms_for(model: ACEModel, kind: str, memory_limit_mb: float) -> int:
    """Atoms per projection batch so that a batch's rows, C = A A_act⁻¹ and scratch fit the limit."""
    w = max(list(layout(model).width(kind).values()) + [1])
    per_atom = 8.0 * w * 5  # kernel output, per-element copy, scaled copy and C of MaxVol, γ products
    pairs = 4.0 / 3.0 * np.pi * model.cutoff ** 3 * PAIR_DENSITY
    per_atom += pairs * 2 * 64  # neighbour list (j, vec, shift, offsets) and the batch's joined copy
    fixed = sum(8.0 * v * v * 8 for v in layout(model).width(kind).values())
    avail = memory_limit_mb * 1e6 - fixed
    n = int(avail / per_atom)
    if n < 1:
        raise ActiveSetError(f"memory limit {memory_limit_mb} MB is too small for {kind} projections "
                             f"of width {w} and cutoff {model.cutoff:g} Å (one atom per batch needs "
                             f"{(fixed + per_atom) / 1e6:.2f} MB)")
    return n


def build_active_set(model: ACEModel | ACEPotential | str | os.PathLike[str], structures: Sequence[Any],
                     kind: str = "linear", tol: float = DEFAULT_TOL, max_iters: int = DEFAULT_MAX_ITERS,
                     memory_limit_mb: float = DEFAULT_MEMORY_MB, refinement_steps: int = 2
                     ) -> tuple[ActiveSet, list[SpeciesReport]]:
    """Active set of ``structures`` (``ase.Atoms``) per element by MaxVol, in memory-bounded batches.

    One batch: exact MaxVol of all rows. Several: stage 1, cumulative MaxVol (active ∪ next batch);
    stage 2, ``refinement_steps`` passes of MaxVol on active ∪ rows with γ > tol.
    """
    if kind not in KINDS:
        raise ActiveSetError(f"active-set kind {kind!r} unknown, expected one of {list(KINDS)}")
    m = as_model(model)
    lay = layout(m)
    widths = lay.width(kind)
    elements = list(lay.elements)
    if not structures:
        raise ActiveSetError("no structures to build an active set from")
    n_per_el = dict.fromkeys(elements, 0)
    for a in structures:
        for s in a.get_chemical_symbols():
            if s in n_per_el:
                n_per_el[s] += 1
    missing = [e for e in elements if n_per_el[e] == 0]
    if missing:
        raise ActiveSetError(f"no atoms of element(s) {', '.join(missing)} in the data "
                             f"({len(structures)} structures): their active set cannot be built")
    under = [f"{e}: {n_per_el[e]} atoms < {widths[e]} functions" for e in elements if n_per_el[e] < widths[e]]
    if under:
        raise ActiveSetError("under-determined active set (" + "; ".join(under) + f"; {kind} projections): "
                             "add data or use a smaller basis")
    batch_atoms = batch_atoms_for(m, kind, memory_limit_mb)
    batches = sum(1 for _ in projection_batches(structures, batch_atoms))
    iters = dict.fromkeys(elements, 0)
    active: dict[str, _Pool] = {}
    # stage 1: cumulative MaxVol over batches (exact when one batch holds everything)
    for proj in iter_projections(m, structures, kind, batch_atoms):
        for el in elements:
            pool = _Pool(proj.rows[el], proj.structure[el], proj.atom[el])
            if el in active:
                pool = active[el].join(pool)
            if len(pool.rows) < widths[el]:
                active[el] = pool  # not enough rows yet: carry them to the next batch
                continue
            res = _maxvol(pool, el, tol, max_iters, kind)
            iters[el] += res[1]
            active[el] = pool.take(res[0])
        last: Projections | None = proj if batches == 1 else None
    inverse = {el: _inverse(active[el]) for el in elements}
    # stage 2: refinement with the atoms that the current set extrapolates
    if batches > 1:
        for _ in range(refinement_steps):
            grown = False
            cand: dict[str, list[_Pool]] = {el: [] for el in elements}
            cap = {el: max(batch_atoms - widths[el], widths[el]) for el in elements}
            for proj in iter_projections(m, structures, kind, batch_atoms):
                for el in elements:
                    g = gamma_of(proj.rows[el], inverse[el])
                    sel = np.flatnonzero(g > tol)
                    if len(sel):
                        cand[el].append(_Pool(proj.rows[el][sel], proj.structure[el][sel], proj.atom[el][sel]))
                        # keep the memory bounded: only the largest-γ rows beyond the cap
                        if sum(len(p.rows) for p in cand[el]) > cap[el]:
                            allp = cand[el][0]
                            for p in cand[el][1:]:
                                allp = allp.join(p)
                            gg = gamma_of(allp.rows, inverse[el])
                            cand[el] = [allp.take(np.argsort(-gg)[:cap[el]])]
            for el in elements:
                if not cand[el]:
                    continue
                grown = True
                pool = active[el]
                for p in cand[el]:
                    pool = pool.join(p)
                res = _maxvol(pool, el, tol, max_iters, kind)
                iters[el] += res[1]
                active[el] = pool.take(res[0])
                inverse[el] = _inverse(active[el])
            if not grown:
                break
    aset = ActiveSet(kind=kind, inverse=inverse)
    # report: max γ over all data (one batch: its projections are still at hand)
    gmax = dict.fromkeys(elements, 0.0)
    passes = [last] if last is not None else iter_projections(m, structures, kind, batch_atoms)
    for proj in passes:
        for el, g in aset.gamma(proj).items():
            if len(g):
                gmax[el] = max(gmax[el], float(g.max()))
    reports = [SpeciesReport(element=el, size=widths[el], n_rows=n_per_el[el],
                             n_structures=len(set(active[el].structure[active[el].structure >= 0].tolist())),
                             max_gamma=gmax[el], n_iters=iters[el]) for el in elements]
    return aset, reports


def _maxvol(pool: _Pool, el: str, tol: float, max_iters: int, kind: str) -> tuple[np.ndarray, int]:
    try:
        res = maxvol(pool.rows, tol=tol, max_iters=max_iters, what=f"element {el} ({kind} projections)")
    except MaxVolError as e:
        raise ActiveSetError(str(e)) from None
    rows = res.rows
    if np.any(rows < 0):  # zero columns: keep an ε row (structure −1) so the set stays square
        n = pool.rows.shape[1]
        zero = np.flatnonzero(np.abs(pool.rows).max(axis=0) == 0.0)
        eps_rows = np.zeros((len(zero), n))
        eps_rows[np.arange(len(zero)), zero] = ZERO_COLUMN_EPS
        pool.rows = np.concatenate([pool.rows, eps_rows])
        pool.structure = np.concatenate([pool.structure, -np.ones(len(zero), np.int64)])
        pool.atom = np.concatenate([pool.atom, -np.ones(len(zero), np.int64)])
        rows = rows.copy()
        rows[rows < 0] = len(pool.rows) - len(zero) + np.arange(len(zero))
    return rows, res.n_iters


def _inverse(pool: _Pool) -> np.ndarray:
    try:
        return np.linalg.inv(pool.rows)
    except np.linalg.LinAlgError:
        return np.linalg.pinv(pool.rows)


def structure_gamma(model: ACEModel | ACEPotential | str | os.PathLike[str], active_set: ActiveSet,
                    structures: Sequence[Any], memory_limit_mb: float = DEFAULT_MEMORY_MB) -> list[np.ndarray]:
    """Per structure the γ of each of its atoms (memory-bounded batches)."""
    m = as_model(model)
    active_set.check(m)
    start = np.concatenate([[0], np.cumsum([len(a) for a in structures])]).astype(np.int64)
    flat = np.zeros(int(start[-1]))
    for proj in iter_projections(m, structures, active_set.kind, batch_atoms_for(m, active_set.kind,
                                                                                 memory_limit_mb)):
        for el, g in active_set.gamma(proj).items():
            flat[start[proj.structure[el]] + proj.atom[el]] = g
    return [flat[start[k]:start[k + 1]].copy() for k in range(len(structures))]
