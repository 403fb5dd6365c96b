"""What a session knows about where its potential can be trusted: the active set, γ tables, candidates and
the D-optimal selection (the active-learning loop; model layer in :mod:`paceui.ace.activeset` and
:mod:`paceui.ace.selection`, math in ``spec/active_learning.md``).

γ (extrapolation grade, dimensionless) of an atom is the largest coefficient needed to write its
projection as a combination of the active set's rows: γ ≤ 1 interpolates, γ > 1 extrapolates
(pacemaker's calculator warns from 1.1 and calls a structure unreliable from 5). A structure's γ is the
max over its atoms. An active set belongs to one potential: any change of the coefficients makes it stale.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
import pandas as pd

from paceui.ace.potential import ACEPotential
from paceui.errors import DataError

GammaSubset = Literal["train", "test", "candidates"]
GAMMA_LOWER, GAMMA_UPPER = 1.1, 5.0
"""Customary γ thresholds (pacemaker's calculator): above the lower one a structure is worth selecting,
above the upper one the potential is unreliable there."""


def potential_digest(pot: ACEPotential) -> str:
    """SHA-256 (24 hex digits) of every coefficient of ``pot`` (radial crad and function coefficients)."""
    h = hashlib.sha256()
    for b in pot.blocks:
        h.update(b.name.encode())
        if b.bond is not None:
            h.update(np.ascontiguousarray(b.bond.crad, dtype=np.float64).tobytes())
            h.update(repr((b.bond.radbase, list(b.bond.radparameters), b.bond.rcut, b.bond.dcut)).encode())
        for f in b.functions:
            h.update(np.asarray(f.coeffs, dtype=np.float64).tobytes())
            h.update(repr((f.ns, f.ls, f.LS, f.skip)).encode())
    return h.hexdigest()[:24]


@dataclass(frozen=True)
class ActiveSetState:
    """The session's active set and the potential it belongs to (``iteration``: the session's total
    iterations when it was computed; ``digest``: :func:`potential_digest` of that potential)."""

    active_set: Any                       # paceui.ace.activeset.ActiveSet
    kind: str                             # linear | full
    iteration: int
    ladder_step: int
    cycle: int
    digest: str
    n_train: int                          # training structures it was computed over
    sizes: dict[str, int]                 # element -> active rows (= functions of that element)
    seconds: float

    def describe(self) -> str:
        sizes = ", ".join(f"{e} {n}" for e, n in self.sizes.items())
        return (f"{self.kind} active set of iteration {self.iteration} (ladder step {self.ladder_step}, cycle "
                f"{self.cycle}) over {self.n_train} training structures: {sizes} rows; {self.seconds:.2f} s")

    def to_doc(self) -> dict[str, Any]:
        return {"kind": self.kind, "iteration": self.iteration, "ladder_step": self.ladder_step, "cycle": self.cycle,
                "digest": self.digest, "n_train": self.n_train, "sizes": dict(self.sizes), "seconds": self.seconds}

    @classmethod
    def from_doc(cls, doc: dict[str, Any], asi: bytes) -> "ActiveSetState":
        from paceui.ace.activeset import ActiveSet

        with np.load(io.BytesIO(asi), allow_pickle=False) as z:
            inverse = {k: np.array(z[k]) for k in z.files}
        return cls(ActiveSet(kind=str(doc["kind"]), inverse=inverse), str(doc["kind"]), int(doc["iteration"]),
                   int(doc["ladder_step"]), int(doc["cycle"]), str(doc["digest"]), int(doc["n_train"]),
                   {str(k): int(v) for k, v in dict(doc["sizes"]).items()}, float(doc["seconds"]))


def asi_bytes(active_set: Any) -> bytes:
    """The ``.asi`` content of an active set: an npz of A_act⁻¹ per element symbol (pyace's format)."""
    buf = io.BytesIO()
    arrays: dict[str, Any] = {str(k): np.asarray(v, dtype=np.float64) for k, v in active_set.inverse.items()}
    np.savez(buf, **arrays)
    return buf.getvalue()


@dataclass(frozen=True)
class GammaTable:
    """Per-structure γ of one set: ``table`` has ``name``, ``n_atoms``, ``gamma`` (max over the atoms),
    ``gamma_mean`` and ``n_extrapolating`` (atoms with γ > 1); ``per_atom`` the atoms' γ per structure.
    ``active_iteration`` / ``potential_iteration``: the session iterations the active set and the
    potential belong to; ``stale``: the active set is of an older potential."""

    subset: str
    table: pd.DataFrame
    per_atom: list[np.ndarray]
    active_iteration: int
    potential_iteration: int
    stale: bool

    @property
    def max(self) -> float:
        return float(self.table["gamma"].max()) if len(self.table) else float("nan")

    def above(self, threshold: float = GAMMA_LOWER) -> pd.DataFrame:
        """Structures whose γ exceeds ``threshold``, largest first."""
        t = self.table
        return t[t["gamma"] > threshold].sort_values("gamma", ascending=False)

    def describe(self) -> str:
        t = self.table
        n_hi = int((t["gamma"] > GAMMA_LOWER).sum()) if len(t) else 0
        note = " (STALE: the active set is of an older potential)" if self.stale else ""
        return (f"γ on {self.subset}: max {self.max:.4g} over {len(t)} structures, {n_hi} above {GAMMA_LOWER}; "
                f"active set of iteration {self.active_iteration}, potential of iteration "
                f"{self.potential_iteration}{note}")


def gamma_table(subset: str, names: Sequence[str], per_atom: list[np.ndarray], active_iteration: int,
                potential_iteration: int, stale: bool) -> GammaTable:
    """A :class:`GammaTable` from per-atom γ arrays (one per structure)."""
    g = [np.asarray(x, dtype=np.float64).reshape(-1) for x in per_atom]
    table = pd.DataFrame({"name": [str(n) for n in names], "n_atoms": [len(x) for x in g],
                          "gamma": [float(x.max()) if x.size else np.nan for x in g],
                          "gamma_mean": [float(x.mean()) if x.size else np.nan for x in g],
                          "n_extrapolating": [int((x > 1.0).sum()) for x in g]})
    return GammaTable(subset, table, g, active_iteration, potential_iteration, stale)


def gamma_histogram(values: np.ndarray, bins: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """(counts, edges) of γ values on log-spaced bins from min(γ, 0.1) to max(γ, 2) (γ spans decades)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v) & (v > 0)]
    lo = min(float(v.min()) if v.size else 0.1, 0.1)
    hi = max(float(v.max()) if v.size else 2.0, 2.0)
    edges = np.geomspace(lo, hi * 1.0001, bins + 1)
    counts, _ = np.histogram(v, edges)
    return counts, edges


# ---------------------------------------------------------------------------------- candidates
LAMMPS_DUMP_SUFFIXES = (".dump", ".lammpstrj", ".lammpsdump")


def read_structures(source: Any, what: str = "candidates") -> pd.DataFrame:
    """Structures (labelled or not) as a frame with ``ase_atoms`` and ``name`` (and ``energy`` / ``forces``
    where the source has them): an extxyz / ASE trajectory / LAMMPS dump file (ASE reads it; ``.dump``
    and ``.lammpstrj`` as ``lammps-dump-text``), a pacemaker dataframe file, a DataFrame, or ASE Atoms."""
    from paceui.data.io import frame_from_atoms, load_dataframe

    if isinstance(source, pd.DataFrame):
        df = source.copy()
    elif isinstance(source, (str, os.PathLike)):
        p = Path(source)
        if not p.exists():
            raise DataError(f"{what}: file {p} not found")
        name = p.name.lower()
        if any(name.endswith(s) for s in (".pckl.gzip", ".pkl.gz", ".pckl", ".pkl", ".pkl.gzip")):
            df = load_dataframe(p)
        else:
            import ase.io

            fmt = "lammps-dump-text" if any(name.endswith(s) for s in LAMMPS_DUMP_SUFFIXES) else None
            try:
                images = ase.io.read(str(p), index=":", format=fmt)
            except Exception as exc:  # noqa: BLE001 - ASE raises many kinds
                raise DataError(f"{what}: cannot read {p} ({type(exc).__name__}: {exc})") from None
            df = frame_from_atoms(images if isinstance(images, list) else [images], str(p))
    else:
        atoms = list(source)
        if not atoms:
            raise DataError(f"{what}: no structures")
        df = frame_from_atoms(atoms, what)
    if "ase_atoms" not in df:
        raise DataError(f"{what}: no 'ase_atoms' column")
    if not len(df):
        raise DataError(f"{what}: no structures")
    if "name" not in df:
        src = str(source) if isinstance(source, (str, os.PathLike)) else what
        df["name"] = [f"{src}:{i}" for i in range(len(df))]
    return df.reset_index(drop=True)


def is_labelled(df: pd.DataFrame) -> np.ndarray:
    """Rows with a finite energy and forces (what adding to the training set needs)."""
    e = df["energy"] if "energy" in df else df.get("energy_corrected")
    if e is None or "forces" not in df:
        return np.zeros(len(df), dtype=bool)
    ok_e = np.isfinite(pd.to_numeric(e, errors="coerce").to_numpy(float))
    ok_f = np.array([f is not None and np.all(np.isfinite(np.asarray(f, float))) for f in df["forces"]], bool)
    return ok_e & ok_f


def selection_table(candidates: pd.DataFrame, indices: Sequence[int], gamma: np.ndarray) -> pd.DataFrame:
    """The selected candidates: ``rank``, ``index`` (row in the candidates), ``name``, ``n_atoms``,
    ``gamma`` (max γ against the active set; NaN without one) and ``labelled``."""
    idx = [int(i) for i in indices]
    sub = candidates.iloc[idx]
    return pd.DataFrame({"rank": np.arange(1, len(idx) + 1), "index": idx,
                         "name": sub["name"].astype(str).to_numpy(),
                         "n_atoms": [len(a) for a in sub["ase_atoms"]],
                         "gamma": np.asarray(gamma, dtype=np.float64).reshape(-1)[:len(idx)],
                         "labelled": is_labelled(sub)})


def frame_bytes(df: pd.DataFrame) -> bytes:
    """A dataframe as the bytes of a ``.pckl.gzip`` file (read back with :func:`frame_from_bytes`)."""
    from paceui.data.io import save_dataframe

    with tempfile.TemporaryDirectory(prefix="paceui-") as d:
        p = save_dataframe(df, Path(d) / "frame.pckl.gzip")
        return Path(p).read_bytes()


def frame_from_bytes(data: bytes) -> pd.DataFrame:
    from paceui.data.io import load_dataframe

    with tempfile.TemporaryDirectory(prefix="paceui-") as d:
        p = Path(d) / "frame.pckl.gzip"
        p.write_bytes(data)
        return load_dataframe(p)


def write_selection(candidates: pd.DataFrame, selection: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write the selected structures for DFT: extxyz (``γ`` in each frame's ``info['gamma']``, the
    name in ``info['name']``), or a pacemaker dataframe for a ``.pckl.gzip`` path."""
    from paceui._atomic import atomic_write_bytes

    p = Path(path)
    sub = candidates.iloc[selection["index"].to_numpy(int)].copy()
    sub["gamma"] = selection["gamma"].to_numpy(float)
    if p.name.endswith((".pckl.gzip", ".pkl.gz")):
        atomic_write_bytes(p, frame_bytes(sub.reset_index(drop=True)))
        return p
    import ase.io

    images = []
    for (_, row), g in zip(sub.iterrows(), sub["gamma"]):
        at = row["ase_atoms"].copy()
        at.info["name"], at.info["gamma"] = str(row["name"]), float(g)
        images.append(at)
    buf = io.StringIO()
    ase.io.write(buf, images, format="extxyz")
    atomic_write_bytes(p, buf.getvalue().encode())
    return p
