"""The dataset of a session: prepared train/test frames, neighbour lists, weights and the packed arrays.

:func:`prepare_session_data` runs the data pipeline (paceui.data) on pacemaker's ``data:`` section
and records the SHA-256 of every source file; per-structure weight factors (by structure ``name``)
are applied on top and the weights normalised again. :func:`save_session_data` writes the prepared
frames and neighbour lists into a folder (atomically, file by file) so that a saved session loads
without reading, validating or re-weighting the source again; the source files are only read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from paceui._atomic import atomic_write_bytes, atomic_write_text
from paceui.data import DataConfig, PackedNeighbors, PreparedData, normalize_weights, prepare_dataset
from paceui.data.io import load_dataframe, resolve_path, save_dataframe
from paceui.data.validate import DropRecord
from paceui.errors import DataError, DatasetChangedError
from paceui.fit.arrays import FitArrays, fit_arrays

DATA_FILES = ("data.json", "train.pckl.gzip", "train_neighbors.npz", "test.pckl.gzip", "test_neighbors.npz")


@dataclass(frozen=True)
class SessionData:
    """Prepared data (weights as prepared) and the arrays the fit uses (with ``weight_factors`` applied)."""

    prepared: PreparedData
    train: FitArrays
    test: FitArrays | None
    sources: tuple[tuple[str, str], ...]      # (path as given in the data config, sha256) per source file
    weight_factors: tuple[tuple[str, float], ...] = ()
    added: pd.DataFrame | None = None         # structures added by the session (raw rows, see add_structures)

    @property
    def revision(self) -> str:
        """Content key: same sources, settings and factors ↔ same key (names the saved folder)."""
        cfg = dataclasses.asdict(self.prepared.config)
        key = json.dumps([self.sources, cfg, self.prepared.elements, self.prepared.cutoff,
                          _frame_key(self.prepared.train), _frame_key(self.prepared.test), self.weight_factors]
                         + ([len(self.added), list(self.added["name"].astype(str))] if self.added is not None else []),
                         sort_keys=True, default=str)
        return hashlib.sha256(key.encode()).hexdigest()[:24]

    @property
    def n_train(self) -> int:
        return self.train.n_struct

    @property
    def n_test(self) -> int:
        return 0 if self.test is None else self.test.n_struct

    def with_weight_factors(self, factors: Mapping[str, float]) -> "SessionData":
        """The same data with per-structure weight factors (by name; replaces earlier factors)."""
        return _with_arrays(self.prepared, self.sources, factors, self.added)

    def summary(self) -> str:
        return self.prepared.summary()


def _frame_key(df: pd.DataFrame | None) -> list[Any]:
    if df is None:
        return []
    return [len(df), hashlib.sha256(df["w_energy"].to_numpy(float).tobytes()).hexdigest()[:16],
            hashlib.sha256(pd.util.hash_pandas_object(df["name"].astype(str), index=False).to_numpy().tobytes())
            .hexdigest()[:16]]


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def source_files(data: Mapping[str, Any], base_dir: str | os.PathLike[str]) -> list[tuple[str, Path]]:
    """(name as given, resolved path) of every train/test file of a ``data:`` section."""
    cfg = DataConfig.from_dict(data)
    out = []
    for name in cfg.filename + (cfg.test_filename or ()):
        p = Path(name)
        p = p if p.is_absolute() else Path(base_dir) / p
        out.append((name, p if p.exists() else resolve_path(name, cfg.datapath)))
    return out


def check_sources(data: Mapping[str, Any], base_dir: str | os.PathLike[str],
                  recorded: tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
    """SHA-256 of the source files; raises :class:`DatasetChangedError` when one differs from ``recorded``."""
    want = dict(recorded)
    out = []
    for name, path in source_files(data, base_dir):
        if not path.exists():
            raise DatasetChangedError(f"dataset file {name} not found (looked at {path})")
        digest = file_sha256(path)
        if name in want and want[name] != digest:
            raise DatasetChangedError(f"dataset file {path} changed since the session was created "
                                      f"(sha256 {digest[:12]}… now, {want[name][:12]}… then); the session's "
                                      "saved copy of the prepared data is still usable, but re-preparing it "
                                      "(new weighting, split or cutoff) needs the original file")
        out.append((name, digest))
    return out


def prepare_session_data(data: Mapping[str, Any], base_dir: str | os.PathLike[str], elements: list[str],
                         cutoff: float, weighting: Mapping[str, Any] | None, seed: int,
                         weight_factors: Mapping[str, float] | None = None,
                         cache_dir: str | os.PathLike[str] | None = None,
                         recorded: tuple[tuple[str, str], ...] = ()) -> SessionData:
    """Run the data pipeline; ``cutoff`` (Å) for the neighbour lists; relative files from ``base_dir``."""
    sources = tuple(check_sources(data, base_dir, recorded))
    cfg = dict(data)
    cfg["filename"] = [str(p) for _, p in source_files({"filename": cfg["filename"]}, base_dir)]
    if cfg.get("test_filename"):
        cfg["test_filename"] = [str(p) for _, p in source_files({"filename": cfg["test_filename"]}, base_dir)]
    prepared = prepare_dataset(cfg, elements=elements, cutoff=cutoff, weighting=weighting, seed=seed,
                               cache_dir=cache_dir, progress=False)
    return _with_arrays(prepared, sources, weight_factors or {})


def _with_arrays(prepared: PreparedData, sources: tuple[tuple[str, str], ...],
                 factors: Mapping[str, float], added: pd.DataFrame | None = None) -> SessionData:
    factors = {str(k): float(v) for k, v in factors.items()}
    bad = [f"{k}: {v}" for k, v in factors.items() if not (np.isfinite(v) and v >= 0)]
    if bad:
        raise ValueError(f"weight factors must be finite and >= 0: {', '.join(bad)}")
    frames = [_weighted(prepared.train, factors), _weighted(prepared.test, factors)]
    known = set(prepared.train["name"].astype(str)) | (set() if prepared.test is None else
                                                        set(prepared.test["name"].astype(str)))
    if unknown := sorted(set(factors) - known):
        raise ValueError(f"weight factors for unknown structure name(s): {', '.join(unknown[:5])}"
                         + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""))
    if prepared.train_neighbors is None:
        raise ValueError("the dataset has no neighbour lists yet (prepare it first)")
    train = fit_arrays(frames[0], prepared.train_neighbors)
    test = None
    if frames[1] is not None and len(frames[1]) and prepared.test_neighbors is not None:
        test = fit_arrays(frames[1], prepared.test_neighbors)
    return SessionData(prepared, train, test, tuple(sources), tuple(sorted(factors.items())), added)


def _weighted(df: pd.DataFrame | None, factors: Mapping[str, float]) -> pd.DataFrame | None:
    if df is None or not factors:
        return df
    f = df["name"].astype(str).map(lambda n: factors.get(n, 1.0)).to_numpy(float)
    if np.all(f == 1.0):
        return df
    out = df.copy()
    out["w_energy"] = out["w_energy"].to_numpy(float) * f
    out["w_forces"] = [np.asarray(w, float) * k for w, k in zip(out["w_forces"], f)]
    return normalize_weights(out)


# ---------------------------------------------------------------------------------- saved copy
def save_session_data(data: SessionData, folder: str | os.PathLike[str]) -> dict[str, str]:
    """Write the prepared data into ``folder`` (atomically, file by file); returns {file: sha256}."""
    folder = Path(folder)
    p = data.prepared
    written: dict[str, bytes] = {}
    for split, frame, packed in (("train", p.train, p.train_neighbors), ("test", p.test, p.test_neighbors)):
        if frame is None or packed is None:
            continue
        save_dataframe(frame, folder / f"{split}.pckl.gzip")
        written[f"{split}.pckl.gzip"] = (folder / f"{split}.pckl.gzip").read_bytes()
        written[f"{split}_neighbors.npz"] = packed.to_npz_bytes()
        atomic_write_bytes(folder / f"{split}_neighbors.npz", written[f"{split}_neighbors.npz"])
    if data.added is not None and len(data.added):
        save_dataframe(data.added, folder / "added.pckl.gzip")
        written["added.pckl.gzip"] = (folder / "added.pckl.gzip").read_bytes()
    meta = {"format": "paceui-session-data", "version": 1, "config": dataclasses.asdict(p.config),
            "elements": list(p.elements), "reference_energy": p.reference_energy, "cutoff": p.cutoff,
            "dropped": [[str(r.index), r.name, r.reason] for r in p.dropped], "messages": list(p.messages),
            "sources": [list(s) for s in data.sources], "revision": data.revision}
    written["data.json"] = json.dumps(meta, indent=1, default=str).encode()
    atomic_write_text(folder / "data.json", written["data.json"].decode())
    return {k: hashlib.sha256(v).hexdigest() for k, v in written.items()}


def load_session_data(folder: str | os.PathLike[str], weight_factors: Mapping[str, float] | None = None) -> SessionData:
    """Read a folder written by :func:`save_session_data`."""
    folder = Path(folder)
    meta = json.loads((folder / "data.json").read_text())
    cfg = meta["config"]
    config = DataConfig(tuple(cfg["filename"]), tuple(cfg["test_filename"]) if cfg["test_filename"] else None,
                        cfg["test_size"], cfg["reference_energy"], cfg["datapath"], cfg["ignore_weights"],
                        cfg["aug_factor"], cfg["seed"])
    frames: dict[str, pd.DataFrame | None] = {"train": None, "test": None}
    packs: dict[str, PackedNeighbors | None] = {"train": None, "test": None}
    for split in frames:
        if (folder / f"{split}.pckl.gzip").exists():
            frames[split] = load_dataframe(folder / f"{split}.pckl.gzip")
            packs[split] = PackedNeighbors.from_npz(folder / f"{split}_neighbors.npz", use_mmap=False)[0]
    assert frames["train"] is not None
    prepared = PreparedData(frames["train"], frames["test"], tuple(meta["elements"]), meta["reference_energy"],
                            tuple(DropRecord(*r) for r in meta["dropped"]), config, meta["cutoff"], packs["train"],
                            packs["test"], tuple(meta["messages"]))
    added = load_dataframe(folder / "added.pckl.gzip") if (folder / "added.pckl.gzip").exists() else None
    return _with_arrays(prepared, tuple((str(a), str(b)) for a, b in meta["sources"]), weight_factors or {}, added)


# ---------------------------------------------------------------------------------- added structures
def labelled_frame(structures: Any, what: str = "structures") -> pd.DataFrame:
    """A dataset frame (``ase_atoms``, ``energy``, ``forces``, ``name``) of labelled structures: a file
    (extxyz, ASE trajectory, pacemaker dataframe), a DataFrame, or ASE Atoms with energies and forces
    (calculator results or ``info``/``arrays``). Raises ValueError naming what lacks a label."""
    if isinstance(structures, pd.DataFrame):
        df = structures.copy()
    elif isinstance(structures, (str, os.PathLike)):
        from paceui.data.io import load_files

        df = load_files([structures])
    else:
        from paceui.data.io import frame_from_atoms

        df = frame_from_atoms(list(structures), what)
    if "ase_atoms" not in df or not len(df):
        raise DataError(f"{what}: no structures")
    if "energy" not in df and "energy_corrected" not in df:
        raise DataError(f"{what}: no energies (DFT labels are needed to add structures to the training set)")
    if "forces" not in df:
        raise DataError(f"{what}: no forces (DFT labels are needed to add structures to the training set)")
    if "name" not in df:
        df["name"] = [f"{what}:{i}" for i in range(len(df))]
    return df.reset_index(drop=True)


def extend_session_data(data: SessionData, new: pd.DataFrame, weighting: Mapping[str, Any] | None, seed: int,
                        cache_dir: str | os.PathLike[str] | None = None,
                        record: bool = True) -> tuple[SessionData, list[DropRecord]]:
    """``data`` with the labelled structures of ``new`` appended to the training set.

    Only the new structures are validated, corrected with the session's reference energies, given
    neighbour lists (cutoff of the data) and weights (the session's weighting policy over the new rows);
    weights of the old and the new rows are then scaled to one per structure (energy) and one per atom
    (forces) and normalised together, which for uniform weighting equals weighting everything again.
    ``record``: keep the raw rows in ``added`` (so that preparing the data again re-adds them).
    Returns the new data and the structures dropped (with reasons)."""
    from paceui.data.nlcache import build_packed_neighbors, concatenate_packs
    from paceui.data.reference import apply_reference_energy
    from paceui.data.validate import filter_rows, isolated_atom_reasons
    from paceui.data.weights import adjust_aug_weights, apply_w_factor, assign_weights, weighting_from_dict

    p = data.prepared
    if p.train_neighbors is None or p.cutoff is None:
        raise DataError("the session's data has no neighbour lists: cannot add structures")
    raw = new.reset_index(drop=True)
    names = set(p.train["name"].astype(str)) | (set() if p.test is None else set(p.test["name"].astype(str)))
    if dup := sorted(set(raw["name"].astype(str)) & names):
        raise DataError(f"structure name(s) already in the dataset: {', '.join(dup[:5])}"
                         + (f" and {len(dup) - 5} more" if len(dup) > 5 else ""))
    ecols = [c for c in ("energy_corrected", "energy") if c in raw.columns]
    df, dropped = filter_rows(raw, p.elements, energy_columns=ecols)
    df, _ = apply_reference_energy(df, p.reference_energy)
    df, more = filter_rows(df, p.elements, energy_columns=["energy_corrected"])
    dropped += more
    pack = build_packed_neighbors(list(df["ase_atoms"]), p.cutoff, p.elements, cache_dir=cache_dir, progress=False)
    if lonely := isolated_atom_reasons(pack):
        dropped += [DropRecord(df.index[k], str(df["name"].iloc[k]), r) for k, r in sorted(lonely.items())]
        keep = np.setdiff1d(np.arange(len(df)), np.fromiter(lonely, dtype=np.int64))
        if not len(keep):
            raise DataError("no structure left to add: " + "; ".join(map(str, dropped[:5])))
        df, pack = df.iloc[keep].copy(), pack.select(keep)
    df["train"] = True
    w = assign_weights(df, weighting_from_dict(weighting), ignore_weights=p.config.ignore_weights, seed=seed)
    if len(w) != len(df):
        raise DataError(f"the weighting policy kept {len(w)} of the {len(df)} new structures; add them with "
                         "uniform weighting or weights of their own (w_energy, w_forces columns)")
    w = normalize_weights(apply_w_factor(adjust_aug_weights(w, p.config.aug_factor)))
    old = p.train
    cols = [c for c in old.columns if c in w.columns]
    joined = pd.concat([_per_unit(old), _per_unit(w)[cols]], axis=0, ignore_index=True, sort=False)
    joined = normalize_weights(joined)
    prepared = dataclasses.replace(p, train=joined, train_neighbors=concatenate_packs([p.train_neighbors, pack]),
                                   dropped=p.dropped + tuple(dropped))
    added = data.added
    if record:
        kept = raw.loc[df.index]
        added = kept if added is None else pd.concat([added, kept], axis=0, ignore_index=True, sort=False)
    return _with_arrays(prepared, data.sources, dict(data.weight_factors), added), list(dropped)


def _per_unit(df: pd.DataFrame) -> pd.DataFrame:
    """Weights scaled to a mean of one per structure (energy) and per atom (forces)."""
    out = df.copy()
    n_at = sum(len(np.asarray(f).reshape(-1)) for f in out["w_forces"])
    out["w_energy"] = out["w_energy"].to_numpy(float) * len(out)
    out["w_forces"] = [np.asarray(f, float).reshape(-1) * n_at for f in out["w_forces"]]
    return out
