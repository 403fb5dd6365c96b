"""Structure (energy) and per-atom (force) weights, as in pacemaker's ``fit: weighting:``.

Policies are frozen dataclasses built with :func:`weighting_from_dict`.  Each returns a copy
of the frame with ``w_energy`` (one number per structure) and ``w_forces`` (array of N per
structure).  :func:`normalize_weights` then makes Σ_structures w_energy = 1 and
Σ_atoms w_forces = 1 (applied to train and test separately).
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Union

import numpy as np
import pandas as pd

from paceui.data.hull import effective_energies
from paceui.data.reference import DataWarning

__all__ = ["EnergyBasedWeightingPolicy", "ExternalWeightingPolicy", "UniformWeightingPolicy",
           "WeightingPolicy", "adjust_aug_weights", "apply_w_factor", "assign_weights", "normalize_weights",
           "weighting_from_dict"]

log = logging.getLogger(__name__)


def _nat(df: pd.DataFrame) -> np.ndarray:
    return np.array([len(a) for a in df["ase_atoms"]], dtype=np.int64)


@dataclass(frozen=True)
class UniformWeightingPolicy:
    """Every structure weighs the same; every atom weighs the same (after normalisation)."""

    def generate(self, df: pd.DataFrame, seed: int | None = None) -> pd.DataFrame:
        """Copy of ``df`` with ``w_energy = 1/S`` and ``w_forces_i = w_energy``."""
        out = df.copy()
        w = 1.0 / max(len(out), 1)
        out["w_energy"] = w
        out["w_forces"] = [np.full(n, w) for n in _nat(out)]
        return out


@dataclass(frozen=True)
class EnergyBasedWeightingPolicy:
    """Weights decaying with the energy above the convex hull (or above the minimum), eV/atom.

    ``w_e = 1/(E_eff + |DE|)^2``; ``w_f,i = w_e / (|F_i|^2 + |DF|)``.  Structures with
    ``E_eff >= DEup`` or max |F| > ``DFup`` (eV/Å) are removed, then at most ``nfit`` are kept
    (low tier ``E_eff < DElow`` first, chosen at random with ``seed`` when too many).
    ``reftype`` (all/bulk/cluster) selects the structures that define the hull / minimum.
    """

    nfit: int | None = None
    cutoff: float | None = None  # accepted for compatibility; unused
    DElow: float = 1.0
    DEup: float = 10.0
    DE: float = 1.0
    DF: float = 1.0
    wlow: float | None = None
    DFup: float | None = None
    n_lower: int | None = None
    n_upper: int | None = None
    reftype: Literal["all", "bulk", "cluster"] = "all"
    seed: int | None = None
    energy: Literal["convex_hull", "cohesive"] = "convex_hull"

    def __post_init__(self) -> None:
        if self.reftype not in ("all", "bulk", "cluster"):
            raise ValueError(f"EnergyBasedWeightingPolicy: reftype must be all, bulk or cluster, got {self.reftype!r}")
        if self.energy not in ("convex_hull", "cohesive"):
            raise ValueError(f"EnergyBasedWeightingPolicy: energy must be convex_hull or cohesive, got {self.energy!r}")
        if self.DEup <= self.DElow:
            raise ValueError(f"EnergyBasedWeightingPolicy: DEup ({self.DEup}) must exceed DElow ({self.DElow})")
        if self.wlow is not None and not 0.0 <= self.wlow <= 1.0:
            raise ValueError(f"EnergyBasedWeightingPolicy: wlow must be in [0, 1], got {self.wlow}")
        for k in ("nfit", "n_lower", "n_upper"):
            v = getattr(self, k)
            if v is not None and v < 0:
                raise ValueError(f"EnergyBasedWeightingPolicy: {k} must be >= 0, got {v}")

    def generate(self, df: pd.DataFrame, seed: int | None = None) -> pd.DataFrame:
        """Copy with the selected rows only, ``effective_energy`` and the weights (not normalised
        across train/test; w_energy sums to 1 and w_forces to 1 over the selection)."""
        out = df.copy()
        if "energy_corrected_per_atom" not in out.columns:
            out["energy_corrected_per_atom"] = out["energy_corrected"].to_numpy(float) / _nat(out)
        pbc = np.array([bool(np.all(a.pbc)) for a in out["ase_atoms"]])
        ref = {"all": np.ones(len(out), bool), "bulk": pbc, "cluster": ~pbc}[self.reftype]
        if not ref.any():
            raise ValueError(f"EnergyBasedWeightingPolicy: no {self.reftype} structures to use as reference")
        e_eff, extra = effective_energies(out, self.energy, ref)
        for k, v in extra.items():
            out[k] = v
        out["effective_energy"] = e_eff
        keep = e_eff < self.DEup
        if self.DFup is not None:
            fmax = np.array([np.max(np.linalg.norm(np.asarray(f), axis=1)) if len(f) else 0.0
                             for f in out["forces"]])
            keep &= fmax <= self.DFup
        low = np.flatnonzero(keep & (e_eff < self.DElow))
        up = np.flatnonzero(keep & (e_eff >= self.DElow))
        rng = np.random.RandomState(self.seed if self.seed is not None else seed)
        nfit = self.nfit if self.nfit is not None else len(out)
        if self.n_lower is not None and self.n_upper is not None:
            nfit = self.n_lower + self.n_upper
        n_low = min(len(low), self.n_lower if self.n_lower is not None else nfit)
        if n_low < len(low):
            low = np.sort(rng.choice(low, n_low, replace=False))
        n_up = self.n_upper if self.n_upper is not None else max(nfit - len(low), 0)
        if n_up < len(up):
            up = np.sort(rng.choice(up, n_up, replace=False))
        chosen = np.sort(np.concatenate([low, up])).astype(np.int64)
        if chosen.size == 0:
            raise ValueError(f"EnergyBasedWeightingPolicy kept no structure (DEup={self.DEup} eV/atom, "
                             f"DFup={self.DFup} eV/Å, nfit={nfit}); lowest E_eff is {np.min(e_eff):.4g} eV/atom")
        log.info("EnergyBasedWeightingPolicy: %d lower-tier + %d upper-tier of %d structures kept",
                 len(low), len(up), len(out))
        out = out.iloc[chosen].copy()
        e = out["effective_energy"].to_numpy(float)
        w = 1.0 / (e + abs(self.DE)) ** 2
        w /= w.sum()
        is_low = e < self.DElow
        w_low = float(w[is_low].sum())
        if self.wlow is not None and 0.0 < w_low < 1.0:
            w = np.where(is_low, w * self.wlow / w_low, w * (1.0 - self.wlow) / (1.0 - w_low))
        out["w_energy"] = w
        wf = [we / (np.einsum("ij,ij->i", np.asarray(f, float), np.asarray(f, float)) + abs(self.DF))
              for we, f in zip(w, out["forces"])]
        total = sum(float(x.sum()) for x in wf)
        out["w_forces"] = [x / total for x in wf]
        return out


@dataclass(frozen=True)
class ExternalWeightingPolicy:
    """Weights from a file (pickled DataFrame or any dataset file) with ``w_energy``/``w_forces``
    columns, indexed like the dataset; rows missing from the file are removed."""

    filename: str

    def generate(self, df: pd.DataFrame, seed: int | None = None) -> pd.DataFrame:
        """Inner join of ``df`` (without its own weights) and the file's weights on the index."""
        from paceui.data.io import load_dataframe, resolve_path

        ext = load_dataframe(resolve_path(self.filename))
        missing = [c for c in ("w_energy", "w_forces") if c not in ext.columns]
        if missing:
            raise ValueError(f"ExternalWeightingPolicy: {self.filename} lacks column(s) {', '.join(missing)}")
        out = df.drop(columns=[c for c in ("w_energy", "w_forces") if c in df.columns])
        out = out.join(ext[["w_energy", "w_forces"]], how="inner")
        if len(out) == 0:
            raise ValueError(f"ExternalWeightingPolicy: no index of {self.filename} matches the dataset index")
        nat = _nat(out)
        for (idx, wf), n in zip(out["w_forces"].items(), nat):
            if np.asarray(wf).reshape(-1).shape != (n,):
                raise ValueError(f"ExternalWeightingPolicy: w_forces of structure {idx} has "
                                 f"{np.asarray(wf).size} values for {n} atoms")
        out["w_forces"] = [np.asarray(w, float).reshape(-1).copy() for w in out["w_forces"]]
        return out


WeightingPolicy = Union[UniformWeightingPolicy, EnergyBasedWeightingPolicy, ExternalWeightingPolicy]

_POLICIES: dict[str, type] = {c.__name__: c for c in
                              (UniformWeightingPolicy, EnergyBasedWeightingPolicy, ExternalWeightingPolicy)}


def _none_str(v: Any) -> Any:
    return None if isinstance(v, str) and v.strip().lower() in ("none", "null", "") else v


def weighting_from_dict(d: Mapping[str, Any] | WeightingPolicy | None) -> WeightingPolicy:
    """Policy from pacemaker's ``fit: weighting:`` dict (``type`` key); ``None`` → uniform."""
    if d is None:
        return UniformWeightingPolicy()
    if isinstance(d, tuple(_POLICIES.values())):
        return d  # type: ignore[return-value]
    if not isinstance(d, Mapping):
        raise ValueError(f"fit: weighting must be a mapping with a 'type' key, got {type(d).__name__}")
    params = dict(d)
    kind = params.pop("type", None)
    if kind is None:
        raise ValueError(f"fit: weighting needs a 'type' ({', '.join(_POLICIES)})")
    cls = _POLICIES.get(str(kind))
    if cls is None:
        from paceui._keys import closest

        near = closest(kind, _POLICIES)
        raise ValueError(f"fit: weighting: unknown type {kind!r}; {f'did you mean {near!r}? ' if near else ''}"
                         f"known: {', '.join(_POLICIES)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    from paceui._keys import check_keys

    check_keys(params, set(fields), f"fit.weighting ({kind})")
    clean: dict[str, Any] = {}
    for k, v in params.items():
        v = _none_str(v)
        if v is not None and k in ("nfit", "n_lower", "n_upper", "seed"):
            if float(v) != int(float(v)):
                raise ValueError(f"fit: weighting ({kind}): {k} must be an integer, got {v!r}")
            v = int(float(v))
        elif v is not None and k in ("cutoff", "DElow", "DEup", "DE", "DF", "wlow", "DFup"):
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise ValueError(f"fit: weighting ({kind}): {k} must be a number, got {v!r}") from None
        clean[k] = v
    if cls is ExternalWeightingPolicy and "filename" not in clean:
        raise ValueError("fit: weighting (ExternalWeightingPolicy) needs 'filename'")
    return cls(**clean)


def assign_weights(df: pd.DataFrame, policy: WeightingPolicy, *, ignore_weights: bool = False,
                   seed: int | None = None) -> pd.DataFrame:
    """Weights from existing ``w_energy``/``w_forces`` columns (unless ``ignore_weights``) or the policy.

    Only one of the two columns given → the other comes from the policy.
    """
    has_e, has_f = "w_energy" in df.columns, "w_forces" in df.columns
    if has_e and has_f and not ignore_weights:
        if not isinstance(policy, UniformWeightingPolicy):
            msg = (f"the data has w_energy / w_forces columns: using them, {type(policy).__name__} is not "
                   "applied (set data: ignore_weights: true to apply it)")
            warnings.warn(msg, DataWarning, stacklevel=2)
        log.info("using the w_energy / w_forces columns of the data")
        return df.copy()
    base = df.drop(columns=[c for c in ("w_energy", "w_forces") if c in df.columns])
    out = policy.generate(base, seed=seed)
    if not ignore_weights:
        for col, has in (("w_energy", has_e), ("w_forces", has_f)):
            if has:
                out[col] = df.loc[out.index, col]
    return out


def apply_w_factor(df: pd.DataFrame) -> pd.DataFrame:
    """Multiply both weights by a ``w_factor`` column, if present (copy)."""
    if "w_factor" not in df.columns:
        return df
    out = df.copy()
    fac = out["w_factor"].to_numpy(float)
    out["w_energy"] = out["w_energy"].to_numpy(float) * fac
    out["w_forces"] = [np.asarray(w, float) * f for w, f in zip(out["w_forces"], fac)]
    return out


def adjust_aug_weights(df: pd.DataFrame, aug_factor: float = 1e-4) -> pd.DataFrame:
    """Weights of structures named ``augmented*`` times ``aug_factor``; missing (NaN) ones first get
    the median weight of the real structures.  ``w_forces_mask`` (0/1 per atom) is applied if present."""
    out = df.copy()
    names = out["name"].astype(str) if "name" in out.columns else pd.Series("", index=out.index)
    aug = names.str.startswith("augmented").to_numpy()
    we = out["w_energy"].to_numpy(float).copy()
    nat = _nat(out)
    wf: list[np.ndarray] = [np.asarray(w, float).reshape(-1) if isinstance(w, (np.ndarray, list, tuple))
                            else np.full(n, np.nan) for w, n in zip(out["w_forces"], nat)]
    if aug.any():
        real = ~aug
        med_e = float(np.nanmedian(we[real])) if real.any() else 1.0
        real_f = [w for w, r in zip(wf, real) if r]
        med_f = float(np.median(np.concatenate(real_f))) if real_f else med_e
        for k in np.flatnonzero(aug):
            if not np.isfinite(we[k]):
                we[k] = med_e
            if wf[k].shape != (nat[k],) or not np.isfinite(wf[k]).all():
                wf[k] = np.full(nat[k], med_f)
            we[k] *= aug_factor
            wf[k] = wf[k] * aug_factor
    if "w_forces_mask" in out.columns:
        wf = [w * np.asarray(m, float).reshape(-1) if isinstance(m, (np.ndarray, list, tuple)) else w
              for w, m in zip(wf, out["w_forces_mask"])]
    out["w_energy"] = we
    out["w_forces"] = wf
    return out


def normalize_weights(df: pd.DataFrame) -> pd.DataFrame:
    """Copy with Σ w_energy = 1 over structures and Σ w_forces = 1 over all atoms."""
    out = df.copy()
    if len(out) == 0:
        return out
    we = out["w_energy"].to_numpy(float)
    se = we.sum()
    if not (np.isfinite(se) and se > 0):
        raise ValueError(f"energy weights sum to {se}; cannot normalise")
    out["w_energy"] = we / se
    wf = [np.asarray(w, float).reshape(-1) for w in out["w_forces"]]
    sf = float(sum(w.sum() for w in wf))
    if not (np.isfinite(sf) and sf > 0):
        raise ValueError(f"force weights sum to {sf}; cannot normalise")
    out["w_forces"] = [w / sf for w in wf]
    return out
