"""Read and write pacemaker datasets: pickled DataFrames and any ASE-readable file.

Columns follow pacemaker's reference dataframe: ``ase_atoms``, ``energy`` (eV, total),
``energy_corrected`` (eV, minus atomic reference energies), ``forces`` (eV/Å, [N, 3]),
``name``, optional ``w_energy`` / ``w_forces`` weights and ``stress`` (ASE Voigt σ, eV/Å³; read from stress or
virial keys, see :mod:`paceui.data.stress`).
"""

from __future__ import annotations

import gzip
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from paceui._atomic import atomic_write_bytes
from paceui.data.pickles import LEGACY_DROP_COLUMNS, UnsafePickleError, dumps_portable, read_pickle_frame
from paceui.data.stress import normalize_stress_columns, stress_from_info

__all__ = ["PICKLE_SUFFIXES", "UnsafePickleError", "frame_from_atoms", "load_dataframe", "load_files",
           "resolve_path", "save_dataframe"]

PICKLE_SUFFIXES: tuple[str, ...] = (".pckl.gzip", ".pkl.gzip", ".pckl.gz", ".pkl.gz", ".pckl", ".pkl",
                                    ".pickle", ".pickle.gz", ".pickle.gzip")
_XYZ_SUFFIXES = (".xyz", ".extxyz", ".xyz.gz", ".extxyz.gz")

# keys looked up in atoms.info / atoms.arrays, in order of precedence (after REF_* comes the calculator)
_ENERGY_INFO = ("REF_energy",)
_ENERGY_INFO_LATE = ("energy",)
_ECORR_INFO = ("REF_energy_corrected", "energy_corrected")
_FORCE_ARRAYS = ("REF_forces",)
_FORCE_ARRAYS_LATE = ("forces", "force")


def _is_pickle(path: Path) -> bool:
    return path.name.lower().endswith(PICKLE_SUFFIXES)


def resolve_path(filename: str | os.PathLike[str], datapath: str | os.PathLike[str] | None = None) -> Path:
    """``filename`` if it exists, else ``datapath/filename`` (datapath default ``$PACEMAKERDATAPATH``)."""
    p = Path(filename).expanduser()
    if p.exists():
        return p
    dp = datapath if datapath is not None else os.environ.get("PACEMAKERDATAPATH")
    if dp:
        q = Path(dp).expanduser() / p
        if q.exists():
            return q
    where = f" (also looked in datapath {dp})" if dp else " (no datapath / $PACEMAKERDATAPATH set)"
    raise FileNotFoundError(f"data file not found: {filename}{where}")


def _first(mapping: dict[str, Any], keys: Sequence[str]) -> tuple[str | None, Any]:
    for k in keys:
        if k in mapping and mapping[k] is not None:
            return k, mapping[k]
    return None, None


def _label(mapping: dict[str, Any], results: dict[str, Any], named: str | None, early: Sequence[str], calc_key: str,
           late: Sequence[str]) -> tuple[str | None, Any]:
    """(key used, value) of one label: only the user's ``named`` key when given (a structure without it has no
    such label), else the ``early`` keys, the calculator's ``calc_key``, then the ``late`` keys."""
    if named:
        return named, mapping.get(named)
    k, v = _first(mapping, early)
    if v is None:
        k, v = None, results.get(calc_key)
    if v is None:
        k, v = _first(mapping, late)
    return k, v


def frame_from_atoms(images: Sequence[Any], source: str, stress_key: str | None = None,
                     virial_key: str | None = None, energy_key: str | None = None,
                     forces_key: str | None = None) -> pd.DataFrame:
    """DataFrame from ase Atoms: energies/forces from ``energy_key`` / ``forces_key`` (an info and an arrays
    key named by the user, e.g. ``dft_energy``, ``dft_force``), else REF_* keys, the calculator, then
    info/arrays; stress from ``stress_key`` / ``virial_key`` (info keys named by the user) or the usual keys.

    The stored Atoms are copies without calculator and without the keys that became columns.
    """
    rows: list[dict[str, Any]] = []
    for i, at in enumerate(images):
        results = dict(at.calc.results) if at.calc is not None else {}
        info, arrays = dict(at.info), {k: v for k, v in at.arrays.items()}
        row: dict[str, Any] = {}
        used_info: list[str | None] = []
        used_arr: list[str | None] = []
        k, e = _label(info, results, energy_key, _ENERGY_INFO, "energy", _ENERGY_INFO_LATE)
        used_info.append(k)
        row["energy"] = np.nan if e is None else float(e)
        k, ec = _first(info, _ECORR_INFO)
        used_info.append(k)
        row["energy_corrected"] = np.nan if ec is None else float(ec)
        k, f = _label(arrays, results, forces_key, _FORCE_ARRAYS, "forces", _FORCE_ARRAYS_LATE)
        used_arr.append(k)
        row["forces"] = None if f is None else np.array(f, dtype=np.float64).reshape(-1, 3)
        sig, used = stress_from_info(at, results, stress_key, virial_key)
        used_info += used
        row["stress"] = sig
        if "w_energy" in info:
            row["w_energy"] = float(info["w_energy"])
            used_info.append("w_energy")
        if "w_forces" in arrays:
            row["w_forces"] = np.array(arrays["w_forces"], dtype=np.float64).reshape(-1)
            used_arr.append("w_forces")
        name = info.get("name")
        used_info.append("name")
        row["name"] = str(name) if name is not None else f"{source}:{i}"
        clean = at.copy()
        clean.calc = None
        for key in used_info:
            if key is not None:
                clean.info.pop(key, None)
        for key in used_arr:
            if key is not None and key in clean.arrays:
                del clean.arrays[key]
        row["ase_atoms"] = clean
        rows.append(row)
    df = pd.DataFrame(rows)
    for col in ("energy", "energy_corrected"):
        if col in df.columns and df[col].isna().all():
            df = df.drop(columns=col)
    for col in ("forces", "stress"):
        if col in df.columns and df[col].isna().all():
            df = df.drop(columns=col)
    return _plain_object_strings(df)


def _plain_object_strings(df: pd.DataFrame) -> pd.DataFrame:
    """String columns and the column index as ``object`` dtype (old pandas cannot read pandas-3 strings)."""
    out = df.copy()
    for c in out.columns:
        if pd.api.types.is_string_dtype(out[c].dtype) and out[c].dtype != object:
            out[c] = out[c].astype(object)
    out.columns = pd.Index(list(out.columns), dtype=object)
    return out


def load_dataframe(path: str | os.PathLike[str], stress_key: str | None = None,
                   virial_key: str | None = None, energy_key: str | None = None,
                   forces_key: str | None = None) -> pd.DataFrame:
    """Load one dataset file: pacemaker pickle (restricted unpickler) or anything ``ase.io.read`` reads;
    ``stress``/``virial`` columns become one ``stress`` column (σ, ASE Voigt, eV/Å³).

    Raises :class:`UnsafePickleError` for pickles that reference non-allow-listed globals.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"data file not found: {p}")
    if _is_pickle(p):
        return _plain_object_strings(normalize_stress_columns(read_pickle_frame(p)))
    import ase.io

    try:
        low = p.name.lower()
        if low.endswith((".xyz.gz", ".extxyz.gz")):  # ase seeks backwards in gzip streams: slow
            text = io.StringIO(gzip.decompress(p.read_bytes()).decode())
            images = ase.io.read(text, index=":", format="extxyz")
        else:
            images = ase.io.read(str(p), index=":")
    except Exception as exc:  # ase raises many kinds of errors for unknown formats
        raise ValueError(f"{p}: ase.io.read could not read it ({type(exc).__name__}: {exc})") from exc
    if not isinstance(images, list):
        images = [images]
    return frame_from_atoms(images, str(path), stress_key, virial_key, energy_key, forces_key)


def load_files(filenames: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
               datapath: str | os.PathLike[str] | None = None, stress_key: str | None = None,
               virial_key: str | None = None, energy_key: str | None = None,
               forces_key: str | None = None) -> pd.DataFrame:
    """Load and concatenate files (pickles keep their columns); index reset to 0..n-1.

    A ``name`` column ``"<filename>:<row>"`` is filled in where missing.
    """
    names = [filenames] if isinstance(filenames, (str, os.PathLike)) else list(filenames)
    if not names:
        raise ValueError("no data file given (data: filename is empty)")
    frames = []
    for fname in names:
        df = load_dataframe(resolve_path(fname, datapath), stress_key, virial_key, energy_key, forces_key)
        default = pd.Series([f"{os.fspath(fname)}:{i}" for i in range(len(df))], index=df.index, dtype=object)
        if "name" not in df.columns:
            df["name"] = default
        else:
            df["name"] = df["name"].where(df["name"].notna(), default).astype(object)
        frames.append(df)
    out = frames[0] if len(frames) == 1 else pd.concat(frames, axis=0, ignore_index=True, sort=False)
    return _plain_object_strings(out.reset_index(drop=True))


def _pickle_bytes(df: pd.DataFrame) -> bytes:
    frame = pd.DataFrame(df).drop(columns=[c for c in LEGACY_DROP_COLUMNS if c in df.columns])
    frame = _plain_object_strings(frame)
    frame.attrs = {}
    return gzip.compress(dumps_portable(frame), mtime=0)


def _is_array(x: Any) -> bool:
    return isinstance(x, (np.ndarray, list, tuple))


def _extxyz_bytes(df: pd.DataFrame, gz: bool) -> bytes:
    import ase.io
    from ase.calculators.singlepoint import SinglePointCalculator

    if "ase_atoms" not in df.columns:
        raise ValueError("cannot write extxyz: the frame has no 'ase_atoms' column")
    images = []
    for _, row in df.iterrows():
        at = row["ase_atoms"].copy()
        at.calc = None
        res: dict[str, Any] = {}
        if "energy" in df.columns and pd.notna(row["energy"]):
            res["energy"] = float(row["energy"])
        if "forces" in df.columns and _is_array(row["forces"]):
            res["forces"] = np.asarray(row["forces"], dtype=np.float64).reshape(len(at), 3)
        if "energy_corrected" in df.columns and pd.notna(row["energy_corrected"]):
            at.info["energy_corrected"] = float(row["energy_corrected"])
        if "name" in df.columns and row["name"] is not None:
            at.info["name"] = str(row["name"])
        if "w_energy" in df.columns and pd.notna(row["w_energy"]):
            at.info["w_energy"] = float(row["w_energy"])
        if "stress" in df.columns and _is_array(row["stress"]):
            from paceui.data.stress import to_voigt

            res["stress"] = to_voigt(row["stress"])
        if "w_forces" in df.columns and _is_array(row["w_forces"]):
            at.arrays["w_forces"] = np.asarray(row["w_forces"], dtype=np.float64).reshape(len(at))
        if res:
            at.calc = SinglePointCalculator(at, **res)
        images.append(at)
    buf = io.StringIO()
    ase.io.write(buf, images, format="extxyz")
    data = buf.getvalue().encode()
    return gzip.compress(data, mtime=0) if gz else data


def save_dataframe(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write atomically: ``.pckl.gzip``/``.pkl.gzip`` → gzip pickle (protocol 4, plain DataFrame,
    readable by pacemaker); ``.xyz``/``.extxyz`` (optionally ``.gz``) → extended XYZ."""
    p = Path(path)
    low = p.name.lower()
    if low.endswith(PICKLE_SUFFIXES):
        data = _pickle_bytes(df)
        if not low.endswith((".gzip", ".gz")):
            data = gzip.decompress(data)
    elif low.endswith(_XYZ_SUFFIXES):
        data = _extxyz_bytes(df, gz=low.endswith(".gz"))
    else:
        raise ValueError(f"{p}: unknown dataset suffix; use .pckl.gzip, .pkl.gzip, .xyz, .extxyz(.gz)")
    return atomic_write_bytes(p, data)
