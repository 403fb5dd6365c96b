"""Fit error metrics and loss terms (named as pacemaker's), plus pacemaker's metrics tables.

Array in, numbers out: energies are per-structure totals (eV), forces are ``[N_atoms_total, 3]``
(eV/Å) concatenated in structure order. All :class:`FitMetrics` values are in eV (energies per
atom) and eV/Å (forces); the log and the tables multiply by 1000 to show meV/atom and meV/Å.
"""

from __future__ import annotations

import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any, Literal, Mapping, Sequence

import numpy as np
import pandas as pd

LOW_ENERGY_WINDOW = 1.0
"""Width (eV/atom) of the "low" subset above the lowest reference energy per atom."""

REG_KEYS: dict[str, str] = {
    "l1": "l1_reg_contrib",
    "l2": "l2_reg_contrib",
    "orth": "smooth_orth",
    "w0": "smooth_w1",
    "w1": "smooth_w2",
    "w2": "smooth_w3",
}
"""Regulariser key of :func:`compute_metrics` → :class:`FitMetrics` field (w0_rad·S0 → smooth_w1, ...)."""

_REG_ALIASES: dict[str, str] = {**REG_KEYS, **{v: v for v in REG_KEYS.values()}}

NAN = float("nan")


@dataclass(frozen=True)
class FitMetrics:
    """Errors (eV/atom, eV/Å), loss terms (dimensionless loss units) and counts of one evaluation.

    ``*_epa``: energy per atom; ``*_f``: per-atom force vector norm; ``*_f_comp``: per Cartesian
    component. ``low_*``: the same over the low-energy subset (NaN when that subset is empty).
    """

    loss: float = 0.0
    e_loss: float = 0.0
    f_loss: float = 0.0
    e_loss_contrib: float = 0.0
    f_loss_contrib: float = 0.0
    reg_loss: float = 0.0
    l1_reg_contrib: float = 0.0
    l2_reg_contrib: float = 0.0
    smooth_orth: float = 0.0
    smooth_w1: float = 0.0
    smooth_w2: float = 0.0
    smooth_w3: float = 0.0
    kappa: float = 0.0
    rmse_epa: float = NAN
    mae_epa: float = NAN
    max_abs_epa: float = NAN
    rmse_f: float = NAN
    rmse_f_comp: float = NAN
    mae_f: float = NAN
    mae_f_comp: float = NAN
    max_abs_f: float = NAN
    max_abs_f_comp: float = NAN
    low_rmse_epa: float = NAN
    low_mae_epa: float = NAN
    low_max_abs_epa: float = NAN
    low_rmse_f: float = NAN
    low_rmse_f_comp: float = NAN
    low_mae_f: float = NAN
    low_mae_f_comp: float = NAN
    low_max_abs_f: float = NAN
    low_max_abs_f_comp: float = NAN
    nfuncs: int = 0
    ncoefs: int = 0
    n_structures: int = 0
    n_atoms: int = 0
    n_low_structures: int = 0
    n_low_atoms: int = 0

    def as_dict(self) -> dict[str, float | int]:
        """All fields as a plain ``{name: value}`` dict (eV, eV/Å, counts)."""
        return asdict(self)


def _as_1d(name: str, a: object, n: int | None = None) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64).reshape(-1)
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name}: expected {n} values, got {arr.shape[0]}")
    return arr


def _validate(e_pred: object, e_ref: object, n_atoms: object, f_pred: object,
              f_ref: object) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shape-checked float64 copies; returns (e_pred, e_ref, nat, f_pred, f_ref)."""
    ep = _as_1d("e_pred", e_pred)
    er = _as_1d("e_ref", e_ref, ep.shape[0])
    nat = np.asarray(n_atoms).reshape(-1)
    if nat.shape[0] != ep.shape[0]:
        raise ValueError(f"n_atoms: expected {ep.shape[0]} values, got {nat.shape[0]}")
    if nat.size and (np.any(nat < 1) or np.any(nat != np.round(nat))):
        raise ValueError("n_atoms must be positive integers")
    nat = nat.astype(np.int64)
    fp = np.asarray(f_pred, dtype=np.float64).reshape(-1, 3)
    fr = np.asarray(f_ref, dtype=np.float64).reshape(-1, 3)
    total = int(nat.sum())
    if fp.shape[0] != total or fr.shape[0] != total:
        raise ValueError(f"forces: expected [{total}, 3] (sum of n_atoms), "
                         f"got f_pred {fp.shape}, f_ref {fr.shape}")
    return ep, er, nat, fp, fr


def low_energy_mask(e_ref_per_atom: np.ndarray, window: float = LOW_ENERGY_WINDOW) -> np.ndarray:
    """Structures with E_ref/atom ≤ min(E_ref/atom) + window (eV/atom)."""
    e = np.asarray(e_ref_per_atom, dtype=np.float64).reshape(-1)
    if e.size == 0:
        return np.zeros(0, dtype=bool)
    return e <= e.min() + window


def _resolve_low(low_mask: object | None, e_ref_pa: np.ndarray) -> np.ndarray:
    if low_mask is None:
        return low_energy_mask(e_ref_pa)
    low = np.asarray(low_mask, dtype=bool).reshape(-1)
    if low.shape[0] != e_ref_pa.shape[0]:
        raise ValueError(f"low_mask: expected {e_ref_pa.shape[0]} values, got {low.shape[0]}")
    return low


def energy_stats(de: np.ndarray) -> tuple[float, float, float]:
    """(rmse, mae, max |·|) of per-atom energy errors (eV/atom); NaN when empty."""
    if de.size == 0:
        return NAN, NAN, NAN
    a = np.abs(de)
    return float(np.sqrt(np.mean(de * de))), float(a.mean()), float(a.max())


FORCE_STAT_KEYS = ("rmse_f", "rmse_f_comp", "mae_f", "mae_f_comp", "max_abs_f", "max_abs_f_comp")


def _force_stats(df: np.ndarray) -> dict[str, float]:
    """Norm and component statistics of force errors ``[n, 3]`` (eV/Å); NaN when empty."""
    keys = FORCE_STAT_KEYS
    if df.shape[0] == 0:
        return dict.fromkeys(keys, NAN)
    sq = np.sum(df * df, axis=1)
    norm = np.sqrt(sq)
    comp = np.abs(df)
    vals = (np.sqrt(sq.mean()), np.sqrt(np.mean(df * df)), norm.mean(), comp.mean(),
            norm.max(), comp.max())
    return {k: float(v) for k, v in zip(keys, vals)}


def force_stats_from_sums(n: float, sq: float, norm: float, comp: float, max_norm: float,
                          max_comp: float) -> dict[str, float]:
    """:func:`_force_stats` from sums over n atoms (Σ|ΔF|², Σ|ΔF|, Σ|ΔF_c|, max |ΔF|, max |ΔF_c|): shards add
    their sums, then the statistics are those of all atoms together."""
    if not n:
        return dict.fromkeys(FORCE_STAT_KEYS, NAN)
    vals = (np.sqrt(sq / n), np.sqrt(sq / (3 * n)), norm / n, comp / (3 * n), max_norm, max_comp)
    return {k: float(v) for k, v in zip(FORCE_STAT_KEYS, vals)}


def _weights(name: str, w: object | None, n: int) -> np.ndarray:
    if w is None:
        return np.full(n, 1.0 / n) if n else np.zeros(0)
    return _as_1d(name, w, n)


def compute_metrics(e_pred: np.ndarray, e_ref: np.ndarray, n_atoms: np.ndarray,
                    f_pred: np.ndarray, f_ref: np.ndarray,
                    w_e: np.ndarray | None, w_f: np.ndarray | None, kappa: float,
                    low_mask: np.ndarray | None = None, reg: Mapping[str, float] | None = None,
                    nfuncs: int = 0, ncoefs: int = 0) -> FitMetrics:
    """Errors and loss of one evaluation.

    e_pred, e_ref: per-structure total energies (eV); n_atoms: atoms per structure;
    f_pred, f_ref: ``[N_atoms_total, 3]`` forces (eV/Å); w_e: per-structure, w_f: per-atom weights
    (``None`` → uniform, summing to 1); kappa: force fraction in [0, 1]; low_mask: per-structure
    "low" flags (default: E_ref/atom ≤ min + 1 eV); reg: already weighted regulariser values with
    keys among ``l1, l2, orth, w0, w1, w2`` (or the field names ``l1_reg_contrib`` ... ``smooth_w3``).
    ``loss = (1−κ)·Σ w_e (ΔE/N)² + κ·Σ w_f |ΔF|² + Σ reg``.
    """
    ep, er, nat, fp, fr = _validate(e_pred, e_ref, n_atoms, f_pred, f_ref)
    kappa = float(kappa)
    if not 0.0 <= kappa <= 1.0:
        raise ValueError(f"kappa must be in [0, 1], got {kappa}")
    ns, na = ep.shape[0], fp.shape[0]
    we = _weights("w_e", w_e, ns)
    wf = _weights("w_f", w_f, na)
    reg_vals = {field: 0.0 for field in REG_KEYS.values()}
    for key, val in (reg or {}).items():
        if key not in _REG_ALIASES:
            raise ValueError(f"unknown regulariser '{key}', expected one of {list(_REG_ALIASES)}")
        reg_vals[_REG_ALIASES[key]] = float(val)

    de = (ep - er) / nat
    df = fp - fr
    low = _resolve_low(low_mask, er / nat)
    low_atoms = np.repeat(low, nat)

    e_loss = float(np.sum(we * de * de))
    f_loss = float(np.sum(wf * np.sum(df * df, axis=1)))
    reg_loss = float(sum(reg_vals.values()))
    e_contrib, f_contrib = (1.0 - kappa) * e_loss, kappa * f_loss

    rmse_e, mae_e, max_e = energy_stats(de)
    low_rmse_e, low_mae_e, low_max_e = energy_stats(de[low])
    fstats = _force_stats(df)
    low_fstats = {"low_" + k: v for k, v in _force_stats(df[low_atoms]).items()}
    return FitMetrics(
        loss=e_contrib + f_contrib + reg_loss, e_loss=e_loss, f_loss=f_loss,
        e_loss_contrib=e_contrib, f_loss_contrib=f_contrib, reg_loss=reg_loss, kappa=kappa,
        rmse_epa=rmse_e, mae_epa=mae_e, max_abs_epa=max_e,
        low_rmse_epa=low_rmse_e, low_mae_epa=low_mae_e, low_max_abs_epa=low_max_e,
        nfuncs=int(nfuncs), ncoefs=int(ncoefs), n_structures=ns, n_atoms=na,
        n_low_structures=int(low.sum()), n_low_atoms=int(low_atoms.sum()),
        **reg_vals, **fstats, **low_fstats,
    )


def per_structure_errors(e_pred: np.ndarray, e_ref: np.ndarray, n_atoms: np.ndarray,
                         f_pred: np.ndarray, f_ref: np.ndarray,
                         w_e: np.ndarray | None = None, names: Sequence[str] | None = None,
                         low_mask: np.ndarray | None = None) -> pd.DataFrame:
    """One row per structure (index = structure position) for analysis tables.

    Columns: ``name`` (if given), ``n_atoms``, ``e_ref_per_atom`` / ``e_pred_per_atom`` (eV/atom),
    ``de_per_atom_mev`` (signed, meV/atom), ``f_rmse_mev`` (component RMSE, meV/Å),
    ``df_max_mev`` (max |ΔF_i| vector norm, meV/Å), ``w_energy``, ``low`` (bool).
    """
    ep, er, nat, fp, fr = _validate(e_pred, e_ref, n_atoms, f_pred, f_ref)
    ns = ep.shape[0]
    e_ref_pa, e_pred_pa = er / nat, ep / nat
    df = fp - fr
    if ns:
        starts = np.concatenate(([0], np.cumsum(nat)[:-1]))
        sq = np.sum(df * df, axis=1)
        f_rmse = np.sqrt(np.add.reduceat(sq, starts) / (3.0 * nat))
        df_max = np.sqrt(np.maximum.reduceat(sq, starts))
    else:
        f_rmse = df_max = np.zeros(0)
    cols: dict[str, object] = {}
    if names is not None:
        if len(names) != ns:
            raise ValueError(f"names: expected {ns} values, got {len(names)}")
        cols["name"] = list(names)
    cols.update(
        n_atoms=nat, e_ref_per_atom=e_ref_pa, e_pred_per_atom=e_pred_pa,
        de_per_atom_mev=(e_pred_pa - e_ref_pa) * 1e3, f_rmse_mev=f_rmse * 1e3,
        df_max_mev=df_max * 1e3, w_energy=_weights("w_e", w_e, ns),
        low=_resolve_low(low_mask, e_ref_pa),
    )
    return pd.DataFrame(cols)


# ------------------------------------------------------------------------------ metrics files

MetricsLevel = Literal["iteration", "cycle", "ladder"]

METRICS_COLUMNS: tuple[str, ...] = (
    "ladder_step", "cycle_step", "iter_num", "loss", "e_loss_contrib", "f_loss_contrib", "reg_loss",
    "rmse_epa", "rmse_f_comp", "low_rmse_epa", "low_rmse_f_comp", "mae_f_comp", "low_mae_f_comp",
    "nfuncs", "ncoefs", "l1_reg_contrib", "l2_reg_contrib", "smooth_orth", "smooth_w1",
    "smooth_w2", "smooth_w3",
)
"""Columns of ``metrics.txt`` (iteration level); values in eV, eV/Å and loss units."""

_DROPPED: dict[str, tuple[str, ...]] = {
    "iteration": (), "cycle": ("iter_num",), "ladder": ("cycle_step", "iter_num")}
_NARROW = frozenset({"ladder_step", "cycle_step", "iter_num", "nfuncs", "ncoefs"})
_WIDE = 22


def metrics_columns(level: MetricsLevel) -> tuple[str, ...]:
    """Columns of a metrics table at ``level`` (cycle drops iter_num, ladder also cycle_step)."""
    if level not in _DROPPED:
        raise ValueError(f"level must be one of {list(_DROPPED)}, got {level!r}")
    return tuple(c for c in METRICS_COLUMNS if c not in _DROPPED[level])


def metrics_file_name(level: MetricsLevel, test: bool = False) -> str:
    """``metrics.txt``, ``cycle_metrics.txt``, ``ladder_metrics.txt`` (``test_`` prefix for test)."""
    metrics_columns(level)
    base = "metrics.txt" if level == "iteration" else f"{level}_metrics.txt"
    return ("test_" if test else "") + base


def _cell(name: str, value: object) -> str:
    width = len(name) if name in _NARROW else _WIDE
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        text = str(int(value))
    else:
        text = repr(float(value))  # type: ignore[arg-type]
    return f"{text:<{width}}"


class MetricsFileWriter:
    """Appends rows to one of pacemaker's whitespace metrics tables, one fsync'ed line per row.

    The header is written once, when the file is new or empty. Re-opening an existing file appends
    after its rows; a torn last line (crash mid-write) is cut off, and a header that does not match
    the expected columns raises ``ValueError``. Thread-safe.
    """

    def __init__(self, path: str | os.PathLike[str], level: MetricsLevel = "iteration",
                 fsync: bool = True) -> None:
        self._path = Path(path)
        self._columns = metrics_columns(level)
        self._level = level
        self._fsync = fsync
        self._fh: IO[str] | None = None
        self._lock = threading.Lock()

    @classmethod
    def for_run(cls, out_dir: str | os.PathLike[str], level: MetricsLevel = "iteration",
                test: bool = False, fsync: bool = True) -> "MetricsFileWriter":
        """Writer for the standard file name of ``level`` inside ``out_dir``."""
        return cls(Path(out_dir) / metrics_file_name(level, test), level, fsync)

    @property
    def path(self) -> Path:
        return self._path

    @property
    def columns(self) -> tuple[str, ...]:
        return self._columns

    def header(self) -> str:
        """The header line (no newline)."""
        return " ".join(f"{c:<{len(c) if c in _NARROW else _WIDE}}" for c in self._columns).rstrip()

    def format_row(self, metrics: FitMetrics | Mapping[str, object], ladder_step: int = 0,
                   cycle_step: int = 0, iter_num: int = 0) -> str:
        """One table line (no newline) for ``metrics`` at the given step counters."""
        values = metrics.as_dict() if isinstance(metrics, FitMetrics) else dict(metrics)
        values.update(ladder_step=int(ladder_step), cycle_step=int(cycle_step), iter_num=int(iter_num))
        missing = [c for c in self._columns if c not in values]
        if missing:
            raise KeyError(f"metrics lack columns {missing}")
        return " ".join(_cell(c, values[c]) for c in self._columns).rstrip()

    def _open(self) -> IO[str]:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._path, "a+b") as raw:
            raw.seek(0)
            data = raw.read()
            keep = data.rfind(b"\n") + 1
            if keep != len(data):  # torn last line from an interrupted write
                raw.truncate(keep)
                data = data[:keep]
        if data:
            first = data.split(b"\n", 1)[0].decode("utf-8", "replace").split()
            if tuple(first) != self._columns:
                raise ValueError(f"{self._path}: header {first} does not match the "
                                 f"{self._level} columns {list(self._columns)}")
        fh = open(self._path, "a", encoding="utf-8", newline="\n")
        if not data:
            self._write(fh, self.header())
        return fh

    def _write(self, fh: IO[str], line: str) -> None:
        fh.write(line + "\n")
        fh.flush()
        if self._fsync:
            os.fsync(fh.fileno())

    def append(self, metrics: FitMetrics | Mapping[str, object], ladder_step: int = 0,
               cycle_step: int = 0, iter_num: int = 0) -> str:
        """Write one row (header first if the file is new); returns the line written."""
        line = self.format_row(metrics, ladder_step, cycle_step, iter_num)
        with self._lock:
            if self._fh is None:
                self._fh = self._open()
            self._write(self._fh, line)
        return line

    def close(self) -> None:
        """Close the file; a later :meth:`append` re-opens it without a second header."""
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None

    def __enter__(self) -> "MetricsFileWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


CSV_ROUND_TRIP: dict[str, Any] = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}
"""read_csv options that parse floats exactly (pandas 2's default parser is not; pandas 3's is, and deprecates
the option)."""


def read_metrics_file(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a metrics table back (whitespace separated, header line), every float exactly as written."""
    return pd.read_csv(path, sep=r"\s+", **CSV_ROUND_TRIP)
