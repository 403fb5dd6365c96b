"""The on-disk form of a session (``sessions/<name>/`` or any folder) and its crash-safe save protocol.

Layout::

    session.yaml                  the commit point: format version, every setting, status, file list
    snapshots/g000012/            one saved state: potential.yaml (current), best_potential.yaml,
                                  target_potential.yaml, state_*.yaml (fitter potentials), history.csv,
                                  state.json + state.npz (optimizer and fitter state)
    dataset/<revision>/           prepared frames, neighbour lists (see paceui.session.session_data)
    potential.yaml, best_potential.yaml, history.csv   links to the committed snapshot's files

Saving writes a new snapshot folder (and a dataset folder when the data changed), every file
atomically, then replaces ``session.yaml`` atomically: a save killed at any moment leaves the
previous commit intact and loadable. The previous snapshot is kept; older ones are removed.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import math
import os
import shutil
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import yaml

from paceui import __version__
from paceui._atomic import atomic_write_bytes, atomic_write_text
from paceui.ace.potential import ACEPotential
from paceui.ace.yaml_io import load_potential, load_yaml_file, potential_to_yaml
from paceui.errors import SessionFormatError
from paceui.fit.metrics import CSV_ROUND_TRIP
from paceui.session.session_data import SessionData, load_session_data, save_session_data
from paceui.session.settings import plain_value

FORMAT = "paceui-session"
FORMAT_VERSION = 1
SESSION_FILE = "session.yaml"
SNAPSHOT_DOC = "session.yaml"
"""Each snapshot folder keeps a copy of the document that committed it (for falling back)."""
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}
"""Upgrades of a session document from format ``v`` to ``v + 1`` (none yet: format 1 is the first)."""


class SessionVersionError(SessionFormatError):
    """A session saved in a format this paceui cannot read (newer, or too old); never fallen back from."""


class RecoveredSessionWarning(UserWarning):
    """Session.load fell back to an older intact snapshot; the message says which and why."""


@dataclass(frozen=True)
class Snapshot:
    """What a save writes besides the dataset: the document and the state files."""

    doc: dict[str, Any]                        # name, settings, options, status (plain YAML values)
    fit_state: dict[str, Any]                  # Fitter.state_dict() without its history
    history: list[dict[str, Any]]
    potentials: dict[str, ACEPotential]        # potential, best_potential, target_potential
    extra: dict[str, bytes] = field(default_factory=dict)  # more snapshot files (active set, candidates)


def _flatten(v: Any, key: str, arrays: dict[str, np.ndarray], pots: dict[str, ACEPotential]) -> Any:
    if isinstance(v, np.ndarray):
        arrays[key] = v
        return {"__array__": key}
    if isinstance(v, ACEPotential):
        pots[key] = v
        return {"__potential__": key}
    if isinstance(v, dict):
        return {str(k): _flatten(x, f"{key}.{k}", arrays, pots) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_flatten(x, f"{key}.{i}", arrays, pots) for i, x in enumerate(v)]
    return v.item() if isinstance(v, np.generic) else v


def _unflatten(v: Any, arrays: Any, pots: dict[str, ACEPotential]) -> Any:
    if isinstance(v, dict):
        if set(v) == {"__array__"}:
            return np.array(arrays[v["__array__"]])
        if set(v) == {"__potential__"}:
            return pots[v["__potential__"]]
        return {k: _unflatten(x, arrays, pots) for k, x in v.items()}
    if isinstance(v, list):
        return [_unflatten(x, arrays, pots) for x in v]
    return v


def history_csv(rows: list[dict[str, Any]]) -> bytes:
    """The metric history as CSV (floats in shortest round-trip form)."""
    return pd.DataFrame(rows).to_csv(index=False).encode() if rows else b""


def history_rows(data: bytes) -> list[dict[str, Any]]:
    """Rows of :func:`history_csv` back, exactly (rows without test metrics have no ``test_*`` keys)."""
    if not data.strip():
        return []
    df = pd.read_csv(io.BytesIO(data), **CSV_ROUND_TRIP)
    test = [c for c in df.columns if c.startswith("test_")]
    rows = []
    for rec in df.to_dict("records"):
        if test and all(isinstance(rec[c], float) and math.isnan(rec[c]) for c in test):
            rec = {k: x for k, x in rec.items() if k not in test}
        rows.append(rec)
    return rows


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_doc(root: Path, f: Path | None = None) -> dict[str, Any]:
    f = f or root / SESSION_FILE
    if not f.exists():
        raise SessionFormatError(f"{root}: no {SESSION_FILE} here, so this is not a saved paceui session "
                                 "(save one with session.save(path))")
    try:
        doc = load_yaml_file(f)
    except Exception as exc:  # a YAML error of any kind
        raise SessionFormatError(f"{f}: not readable as YAML ({type(exc).__name__}: {exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise SessionFormatError(f"{f}: not a paceui session file (no 'format: {FORMAT}')")
    v = doc.get("format_version")
    if not isinstance(v, int):
        raise SessionFormatError(f"{f}: 'format_version' is missing or not an integer")
    if v > FORMAT_VERSION:
        raise SessionVersionError(f"{f}: saved by paceui {doc.get('paceui_version', '?')} in session format {v}; "
                                 f"this paceui ({__version__}) reads formats up to {FORMAT_VERSION}: upgrade paceui")
    while v < FORMAT_VERSION:
        if v not in MIGRATIONS:
            raise SessionVersionError(f"{f}: session format {v} (paceui {doc.get('paceui_version', '?')}) can no "
                                     f"longer be read by paceui {__version__} (format {FORMAT_VERSION}); open it "
                                     f"with the older paceui and export the potential, or refit")
        doc, v = MIGRATIONS[v](doc), v + 1
    _check_doc(doc, f)
    return doc


_DOC_SCHEMA: dict[str, Any] = {
    "generation": int, "name": str, "settings": dict, "status": dict,
    "snapshot": {"folder": str, "files": dict, "potentials": dict},
    "dataset": {"folder": str, "files": dict},
}
"""The keys of session.yaml that loading needs, with their types."""


def _check_doc(doc: dict[str, Any], f: Path, schema: dict[str, Any] | None = None, pre: str = "") -> None:
    """Every key of :data:`_DOC_SCHEMA` present with its type, else a SessionFormatError naming file and key."""
    for key, want in (schema or _DOC_SCHEMA).items():
        if key not in doc:
            raise SessionFormatError(f"{f}: key '{pre}{key}' is missing (damaged or edited session file)")
        v = doc[key]
        if isinstance(want, dict):
            if not isinstance(v, dict):
                raise SessionFormatError(f"{f}: key '{pre}{key}' must be a mapping, got {type(v).__name__}")
            _check_doc(v, f, want, f"{pre}{key}.")
        elif not isinstance(v, want) or (want is int and isinstance(v, bool)):
            kind = {int: "an integer (int)", str: "a string", dict: "a mapping"}.get(want, want.__name__)
            raise SessionFormatError(f"{f}: key '{pre}{key}' must be {kind}, got {type(v).__name__} {v!r}"[:300])
    if not pre:
        for name, digest in {**doc["snapshot"]["files"], **doc["dataset"]["files"]}.items():
            if not isinstance(digest, str):
                raise SessionFormatError(f"{f}: checksum of '{name}' must be a string, got {digest!r}")


# docs/persistence.md (P3)–(P5)
def save_snapshot(root: str | os.PathLike[str], snap: Snapshot, data: SessionData) -> int:
    """Write a new generation of the session in ``root``; returns its generation number."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    damaged = False
    try:
        prev: dict[str, Any] | None = _read_doc(root)
    except SessionFormatError:
        prev, damaged = None, (root / SESSION_FILE).exists()
    gen = int(prev["generation"]) + 1 if prev else _newest_generation(root) + 1
    if damaged:  # keep the damaged commit for inspection; every older snapshot stays (no garbage collection)
        keep = root / f"{SESSION_FILE}.damaged-{_dt.datetime.now().strftime('%Y%m%dT%H%M%S')}"
        atomic_write_bytes(keep, (root / SESSION_FILE).read_bytes())
    ds_rel = f"dataset/{data.revision}"
    ds_files = _ensure_dataset(root / ds_rel, data)
    snap_rel = f"snapshots/g{gen:06d}"
    folder = root / snap_rel
    if folder.exists():
        shutil.rmtree(folder)  # left by a save that was killed before its commit: never referenced
    arrays: dict[str, np.ndarray] = {}
    pots: dict[str, ACEPotential] = {}
    state = _flatten(snap.fit_state, "state", arrays, pots)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    files = {"state.json": json.dumps(state).encode(), "state.npz": buf.getvalue(),
             "history.csv": history_csv(snap.history), **snap.extra}
    for key, pot in {**snap.potentials, **{k.replace(".", "_"): p for k, p in pots.items()}}.items():
        files[f"{key}.yaml"] = potential_to_yaml(pot).encode()
    for name, content in files.items():
        atomic_write_bytes(folder / name, content)
    doc = {"format": FORMAT, "format_version": FORMAT_VERSION, "paceui_version": __version__,
           "saved": _dt.datetime.now().isoformat(timespec="seconds"), "generation": gen, **plain_value(snap.doc),
           "dataset": {"folder": ds_rel, "sources": [list(s) for s in data.sources], "n_train": data.n_train,
                       "n_test": data.n_test, "files": ds_files},
           "snapshot": {"folder": snap_rel, "files": {k: _sha(v) for k, v in files.items()},
                        "potentials": {k: f"{k.replace('.', '_')}.yaml" for k in pots}},
           "previous": {"snapshot": prev["snapshot"]["folder"], "dataset": prev["dataset"]["folder"]} if prev else None}
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=110)
    atomic_write_text(folder / SNAPSHOT_DOC, text)  # the snapshot's own copy: Session.load falls back to it
    atomic_write_text(root / SESSION_FILE, text)
    for name in ("potential.yaml", "best_potential.yaml", "history.csv"):
        _link(folder / name, root / name)
    if not damaged:
        _collect_garbage(root, {snap_rel, doc["previous"]["snapshot"] if prev else snap_rel},
                         {ds_rel, doc["previous"]["dataset"] if prev else ds_rel})
    return gen


def _newest_generation(root: Path) -> int:
    """The largest snapshot generation present in ``root/snapshots`` (0 if none)."""
    gens = [int(d.name[1:]) for d in (root / "snapshots").glob("g[0-9]*") if d.name[1:].isdigit()] \
        if (root / "snapshots").is_dir() else []
    return max(gens, default=0)


def _ensure_dataset(folder: Path, data: SessionData) -> dict[str, str]:
    """The dataset folder of this revision (written once; ``files.json`` marks it complete)."""
    marker = folder / "files.json"
    if marker.exists():
        try:
            return dict(json.loads(marker.read_text()))
        except (OSError, ValueError):
            pass
    hashes = save_session_data(data, folder)
    atomic_write_text(marker, json.dumps(hashes, indent=1))
    return hashes


def _link(src: Path, dst: Path) -> None:
    """``dst`` becomes (atomically) a hard link to ``src``, or a copy where links are not possible."""
    if not src.exists():
        if dst.exists():
            dst.unlink()
        return
    tmp = dst.with_name(f".{dst.name}.link")
    try:
        if tmp.exists():
            tmp.unlink()
        os.link(src, tmp)
        os.replace(tmp, dst)
    except OSError:
        atomic_write_bytes(dst, src.read_bytes())


def _collect_garbage(root: Path, keep_snapshots: set[str], keep_datasets: set[str]) -> None:
    """Remove unreferenced snapshots and datasets, and temporary files of writes that were killed."""
    for sub, keep in (("snapshots", keep_snapshots), ("dataset", keep_datasets)):
        for d in (root / sub).iterdir() if (root / sub).exists() else []:
            if f"{sub}/{d.name}" not in keep and d.is_dir():
                shutil.rmtree(d, ignore_errors=True)
    for folder in [root, *(root / k for k in keep_datasets)]:
        for f in folder.glob(".*.tmp"):
            f.unlink(missing_ok=True)


@dataclass(frozen=True)
class Loaded:
    """A session read back by :func:`load_snapshot`."""

    doc: dict[str, Any]
    fit_state: dict[str, Any]
    potentials: dict[str, ACEPotential]
    data: SessionData
    files: dict[str, bytes] = field(default_factory=dict)  # every snapshot file, as read (checksums verified)
    recovered_from: str | None = None  # the snapshot folder loaded instead of a damaged commit


def load_snapshot(root: str | os.PathLike[str], fallback: bool = False) -> Loaded:
    """Read the committed generation of the session in ``root`` (checks every file's SHA-256). With
    ``fallback``, a damaged commit falls back to the newest intact snapshot (RecoveredSessionWarning)."""
    root = Path(root)
    try:
        return _load_doc(root, _read_doc(root))
    except SessionVersionError:
        raise
    except SessionFormatError as exc:
        if not fallback or not (root / SESSION_FILE).exists():
            raise
        for d in sorted((root / "snapshots").glob("g[0-9]*"), reverse=True) if (root / "snapshots").is_dir() else []:
            if not (d / SNAPSHOT_DOC).exists():
                continue
            try:
                got = _load_doc(root, _read_doc(root, d / SNAPSHOT_DOC))
            except SessionFormatError:
                continue
            msg = (f"{root}: the last commit cannot be read ({exc}); loaded the newest intact snapshot "
                   f"{d.relative_to(root)} (generation {got.doc.get('generation')}) instead")
            warnings.warn(msg, RecoveredSessionWarning, stacklevel=3)
            return replace(got, recovered_from=str(d.relative_to(root)))
        raise SessionFormatError(f"{exc}; no intact older snapshot to fall back to") from None


def _load_doc(root: Path, doc: dict[str, Any]) -> Loaded:
    folder = root / doc["snapshot"]["folder"]
    blobs: dict[str, bytes] = {}
    for name, digest in doc["snapshot"]["files"].items():
        p = folder / name
        if not p.exists():
            raise SessionFormatError(f"{root}: file {doc['snapshot']['folder']}/{name} of the saved session is missing")
        blobs[name] = p.read_bytes()
        if _sha(blobs[name]) != digest:
            raise SessionFormatError(f"{root}: file {doc['snapshot']['folder']}/{name} does not match its checksum "
                                     "in session.yaml (edited or damaged after saving)")
    ds = root / doc["dataset"]["folder"]
    for name, digest in doc["dataset"]["files"].items():
        if not (ds / name).exists() or file_digest(ds / name) != digest:
            raise SessionFormatError(f"{root}: dataset file {doc['dataset']['folder']}/{name} is missing or damaged")
    pots = {name[:-5]: load_potential(folder / name) for name in blobs if name.endswith(".yaml")}
    with np.load(io.BytesIO(blobs["state.npz"]), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    flat_pots = {k: pots[v[:-5]] for k, v in doc["snapshot"]["potentials"].items()}
    state = _unflatten(json.loads(blobs["state.json"]), arrays, flat_pots)
    state["history"] = history_rows(blobs["history.csv"])
    named = {k: p for k, p in pots.items() if not k.startswith("state_")}
    factors = (doc.get("options") or {}).get("weight_factors") or {}
    return Loaded(doc, state, named, load_session_data(ds, factors), blobs)


def file_digest(path: Path) -> str:
    return _sha(path.read_bytes())
