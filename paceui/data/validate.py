"""Dataset checks with messages naming the structure (row index and ``name``).

Fatal problems (missing columns, empty dataset, mixed periodicity inside a structure) raise
:class:`DataValidationError`; per-structure problems (NaN/inf energies or forces, wrong force
shape, unknown elements, atoms without neighbours, bad weights) drop the row and are recorded
in a report; suspicious units only warn.  The input frame is never modified.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from paceui.data.reference import DataWarning
from paceui.errors import DataValidationError

if TYPE_CHECKING:
    from paceui.data.nlcache import PackedNeighbors

__all__ = ["DataValidationError", "DropRecord", "MAX_ENERGY_SPREAD", "MAX_FORCE", "check_columns",
           "check_units", "close_pair_reasons", "filter_rows", "isolated_atom_reasons", "row_problems"]

log = logging.getLogger(__name__)

#: spread of energy per atom (eV/atom) above which units are probably mixed
MAX_ENERGY_SPREAD = 1.0e4
#: force component magnitude (eV/Å) above which units are probably wrong
MAX_FORCE = 1.0e4


@dataclass(frozen=True)
class DropRecord:
    """One removed structure: row ``index`` (label in the input frame), its ``name``, and why."""

    index: Any
    name: str
    reason: str

    def __str__(self) -> str:
        return f"structure {self.index} ({self.name}): {self.reason}"


def _label(df: pd.DataFrame, pos: int) -> str:
    name = df["name"].iloc[pos] if "name" in df.columns else None
    return f"structure {df.index[pos]} ({name if name is not None else 'no name'})"


def check_columns(df: pd.DataFrame) -> None:
    """Raise unless the frame is non-empty with ``ase_atoms``, ``forces`` and an energy column."""
    if len(df) == 0:
        raise DataValidationError("the dataset is empty (0 structures)")
    missing = [c for c in ("ase_atoms", "forces") if c not in df.columns]
    if "energy" not in df.columns and "energy_corrected" not in df.columns:
        missing.append("energy or energy_corrected")
    if missing:
        raise DataValidationError(f"dataset is missing column(s): {', '.join(missing)} "
                                  f"(has: {', '.join(map(str, df.columns))}){_key_hint(df)}")


def _key_hint(df: pd.DataFrame) -> str:
    """For structures read from extxyz: the info and arrays keys the first one has, and the data keys that name
    them (labels under other names, e.g. ``dft_energy``, are not guessed)."""
    if "ase_atoms" not in df.columns or not len(df):
        return ""
    at = df["ase_atoms"].iloc[0]
    info = sorted(k for k, v in getattr(at, "info", {}).items() if np.ndim(v) == 0 and not isinstance(v, str))
    arrays = sorted(k for k in getattr(at, "arrays", {}) if k not in ("numbers", "positions"))
    return (f"; its first structure has info keys {', '.join(info) or 'none'} and arrays keys "
            f"{', '.join(arrays) or 'none'}: name the energy and force keys with data: energy_key / forces_key")


def _check_pbc(df: pd.DataFrame) -> None:
    bad = [pos for pos, at in enumerate(df["ase_atoms"]) if len(set(bool(x) for x in at.pbc)) > 1]
    if bad:
        shown = "; ".join(f"{_label(df, p)} pbc={list(map(bool, df['ase_atoms'].iloc[p].pbc))}"
                          for p in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise DataValidationError("only fully periodic or fully non-periodic structures are supported "
                                  f"(as in pacemaker); mixed pbc in {shown}{more}")


def _finite_scalar(x: Any) -> bool:
    try:
        return bool(np.isfinite(float(x)))
    except (TypeError, ValueError):
        return False


def row_problems(df: pd.DataFrame, elements: Sequence[str] | None = None,
                 energy_columns: Sequence[str] | None = None) -> list[DropRecord]:
    """Per-structure problems; a row is fine when any of ``energy_columns`` is finite.

    ``energy_columns`` defaults to ``energy_corrected`` if present, else ``energy``.
    """
    return [r for _, r in _row_problems(df, elements, energy_columns)]


def _row_problems(df: pd.DataFrame, elements: Sequence[str] | None,
                  energy_columns: Sequence[str] | None) -> list[tuple[int, DropRecord]]:
    """(row position, record) for every structure with a problem."""
    if energy_columns is None:
        energy_columns = ["energy_corrected"] if "energy_corrected" in df.columns else ["energy"]
    ecols = [c for c in energy_columns if c in df.columns]
    allowed = set(elements) if elements is not None else None
    has_we, has_wf = "w_energy" in df.columns, "w_forces" in df.columns
    out: list[tuple[int, DropRecord]] = []
    for pos in range(len(df)):
        idx = df.index[pos]
        name = str(df["name"].iloc[pos]) if "name" in df.columns else ""
        at = df["ase_atoms"].iloc[pos]

        def drop(reason: str) -> None:
            out.append((pos, DropRecord(idx, name, reason)))  # noqa: B023 (called in this iteration only)

        if at is None or not hasattr(at, "get_chemical_symbols"):
            drop(f"ase_atoms is {type(at).__name__}, not an ase.Atoms")
            continue
        nat = len(at)
        if nat == 0:
            drop("structure has no atoms")
            continue
        if not np.isfinite(at.positions).all() or not np.isfinite(at.cell.array).all():
            drop("positions or cell contain NaN/inf")
            continue
        if not any(_finite_scalar(df[c].iloc[pos]) for c in ecols):
            vals = ", ".join(f"{c}={df[c].iloc[pos]!r}" for c in ecols) or "no energy"
            drop(f"energy is missing or not finite ({vals})")
            continue
        f = df["forces"].iloc[pos]
        arr = np.asarray(f, dtype=np.float64) if isinstance(f, (np.ndarray, list, tuple)) else None
        if arr is None:
            drop(f"forces missing (got {type(f).__name__})")
            continue
        if arr.shape != (nat, 3):
            drop(f"forces have shape {arr.shape}, expected ({nat}, 3) for {nat} atoms")
            continue
        if not np.isfinite(arr).all():
            drop(f"forces contain NaN/inf ({int((~np.isfinite(arr)).any(axis=1).sum())} atoms)")
            continue
        if allowed is not None:
            unknown = sorted(set(at.get_chemical_symbols()) - allowed)
            if unknown:
                drop(f"element(s) {', '.join(unknown)} not in the potential's elements "
                     f"({', '.join(sorted(allowed))})")
                continue
        aug = name.startswith("augmented")
        if has_we and not aug and not (_finite_scalar(df["w_energy"].iloc[pos])
                                       and float(df["w_energy"].iloc[pos]) >= 0):
            drop(f"w_energy is {df['w_energy'].iloc[pos]!r} (must be a finite number >= 0)")
            continue
        if has_wf and not aug:
            w = df["w_forces"].iloc[pos]
            wa = np.asarray(w, dtype=np.float64) if isinstance(w, (np.ndarray, list, tuple)) else None
            if wa is None or wa.reshape(-1).shape != (nat,) or not np.isfinite(wa).all() or (wa < 0).any():
                drop(f"w_forces must be {nat} finite numbers >= 0, got "
                     f"{'shape ' + str(wa.shape) if wa is not None else type(w).__name__}")
                continue
    return out


def check_units(df: pd.DataFrame) -> list[str]:
    """Warnings (also issued as :class:`DataWarning`) for energies/forces in suspicious units."""
    msgs: list[str] = []
    col = "energy_corrected" if "energy_corrected" in df.columns else "energy"
    if col in df.columns and len(df):
        nat = np.array([len(a) for a in df["ase_atoms"]], dtype=np.float64)
        epa = df[col].to_numpy(dtype=np.float64) / np.maximum(nat, 1)
        epa = epa[np.isfinite(epa)]
        if epa.size and epa.max() - epa.min() > MAX_ENERGY_SPREAD:
            lo, hi = int(np.nanargmin(df[col] / nat)), int(np.nanargmax(df[col] / nat))
            msgs.append(f"{col} per atom spans {epa.min():.4g}..{epa.max():.4g} eV/atom (> {MAX_ENERGY_SPREAD:g}):"
                        f" mixed units or references? lowest {_label(df, lo)}, highest {_label(df, hi)}")
    if "forces" in df.columns:
        for pos, f in enumerate(df["forces"]):
            if isinstance(f, np.ndarray) and f.size and np.nanmax(np.abs(f)) > MAX_FORCE:
                msgs.append(f"{_label(df, pos)}: |force| component {np.nanmax(np.abs(f)):.4g} eV/Å "
                            f"> {MAX_FORCE:g}: wrong units?")
    for m in msgs:
        warnings.warn(m, DataWarning, stacklevel=3)
        log.warning(m)
    return msgs


def isolated_atom_reasons(neighbors: "PackedNeighbors") -> dict[int, str]:
    """Structure position → reason, for structures with an atom without neighbours within the cutoff."""
    counts = np.diff(neighbors.nbr_offsets)
    lonely = np.flatnonzero(counts == 0)
    out: dict[int, str] = {}
    if lonely.size == 0:
        return out
    struct = np.searchsorted(neighbors.atom_offsets, lonely, side="right") - 1
    for s in np.unique(struct):
        atoms = lonely[struct == s] - neighbors.atom_offsets[s]
        els = [neighbors.elements[neighbors.species[neighbors.atom_offsets[s] + a]] for a in atoms[:5]]
        shown = ", ".join(f"{a} ({e})" for a, e in zip(atoms[:5], els))
        more = f" and {atoms.size - 5} more" if atoms.size > 5 else ""
        out[int(s)] = (f"atom(s) {shown}{more} have no neighbour within the cutoff "
                       f"{neighbors.cutoff:g} Å (isolated)")
    return out


MIN_PAIR_DISTANCE = 0.1
"""Å: structures with two atoms closer than this are dropped (at r -> 0 the radial functions, pair
directions and core repulsion have no finite value, so one such pair makes the loss and gradient NaN)."""


def close_pair_reasons(neighbors: "PackedNeighbors", rmin: float = MIN_PAIR_DISTANCE) -> dict[int, str]:
    """Structure position → reason, for structures with coincident or near-coincident atoms (< ``rmin`` Å)."""
    r = np.sqrt(np.einsum("ij,ij->i", neighbors.vec, neighbors.vec))
    bad = np.flatnonzero(~(r >= rmin))
    out: dict[int, str] = {}
    if bad.size == 0:
        return out
    atom_of_pair = np.searchsorted(neighbors.nbr_offsets, bad, side="right") - 1
    struct = np.searchsorted(neighbors.atom_offsets, atom_of_pair, side="right") - 1
    for s in np.unique(struct):
        k = bad[struct == s][0]
        i = int(atom_of_pair[k == bad][0] - neighbors.atom_offsets[s])
        j = int(neighbors.nbr_j[k] - neighbors.atom_offsets[s])
        out[int(s)] = (f"atoms {i} and {j} are {r[k]:.3g} Å apart (coincident or nearly: closer than "
                       f"{rmin:g} Å, no finite energy)")
    return out


def filter_rows(df: pd.DataFrame, elements: Sequence[str] | None = None, *,
                neighbors: "PackedNeighbors | None" = None, energy_columns: Sequence[str] | None = None,
                strict: bool = False) -> tuple[pd.DataFrame, list[DropRecord]]:
    """Cleaned copy of ``df`` and the list of dropped rows with reasons.

    ``neighbors`` (packed lists of exactly these rows) enables the isolated-atom check.
    ``strict`` raises :class:`DataValidationError` listing every problem instead of dropping.
    """
    check_columns(df)
    _check_pbc(df)
    found = _row_problems(df, elements, energy_columns)
    if neighbors is not None:
        if neighbors.n_structures != len(df):
            raise ValueError(f"neighbour lists cover {neighbors.n_structures} structures, frame has {len(df)}")
        bad = {p for p, _ in found}
        for pos, reason in isolated_atom_reasons(neighbors).items():
            if pos not in bad:
                name = str(df["name"].iloc[pos]) if "name" in df.columns else ""
                found.append((pos, DropRecord(df.index[pos], name, reason)))
    found.sort(key=lambda t: t[0])
    report = [r for _, r in found]
    if strict and report:
        raise DataValidationError(f"{len(report)} invalid structure(s):\n" + "\n".join(map(str, report)))
    keep = np.ones(len(df), dtype=bool)
    keep[[p for p, _ in found]] = False
    out = df.iloc[keep].copy()
    if len(out) == 0:
        raise DataValidationError("no structure left after validation:\n" + "\n".join(map(str, report[:20])))
    check_units(out)
    for r in report:
        log.info("dropped %s", r)
    return out, report
