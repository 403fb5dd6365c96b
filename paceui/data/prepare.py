"""The data pipeline of a fit: load → validate → reference energy → neighbours → split → weights.

:func:`prepare_dataset` takes pacemaker's ``data:`` dict (see :class:`DataConfig`) and returns
train/test frames with normalised weights, the reference-energy dict, the report of dropped
structures and, when a cutoff (Å) is given, packed neighbour lists aligned with the rows.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from paceui._keys import check_keys
from paceui.data.io import load_files
from paceui.data.nlcache import PackedNeighbors, build_packed_neighbors
from paceui.data.reference import DataWarning, apply_reference_energy, reference_energy_json
from paceui.data.split import split_indices
from paceui.data.validate import DropRecord, close_pair_reasons, filter_rows, isolated_atom_reasons
from paceui.data.weights import (
    WeightingPolicy,
    adjust_aug_weights,
    apply_w_factor,
    assign_weights,
    normalize_weights,
    weighting_from_dict,
)

__all__ = ["DataConfig", "PreparedData", "prepare_dataset"]

log = logging.getLogger(__name__)

_LEGACY_KEYS = frozenset({"cache_ref_df", "query", "query_limit", "ref_df_cache"})


def _names(v: Any, key: str) -> tuple[str, ...] | None:
    if v is None:
        return None
    if isinstance(v, (str, os.PathLike)):
        return (os.fspath(v),)
    if isinstance(v, Sequence) and all(isinstance(x, (str, os.PathLike)) for x in v) and len(v) > 0:
        return tuple(os.fspath(x) for x in v)
    raise ValueError(f"data: {key} must be a file name or a non-empty list of file names, got {v!r}")


@dataclass(frozen=True)
class DataConfig:
    """pacemaker's ``data:`` section (energies in eV)."""

    filename: tuple[str, ...]
    test_filename: tuple[str, ...] | None = None
    test_size: float | int | None = None
    reference_energy: Any = None  # None, "auto", a number or {El: eV, shift: eV}
    datapath: str | None = None
    ignore_weights: bool = False
    aug_factor: float = 1e-4
    seed: int | None = None
    stress_key: str | None = None  # paceui: info key of reference stresses (σ, eV/Å³, ASE Voigt or 3×3)
    virial_key: str | None = None  # paceui: info key of reference virials (V = −Ωσ, eV), e.g. dft_virial
    energy_key: str | None = None  # paceui: info key of reference total energies (eV), e.g. dft_energy
    forces_key: str | None = None  # paceui: arrays key of reference forces (eV/Å), e.g. dft_force
    group_key: str = "config_type"  # paceui: column / info key naming each structure's group
    group_patterns: Any = None  # paceui: {regex on name: group}, before group_key
    group_weights: Any = None  # paceui: {group: {energy, forces, stress: factor}}
    split_by_group: bool = False  # paceui: test_size drawn within every group

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | str | Sequence[str], source: str = "") -> "DataConfig":
        """Parse the ``data:`` value (a dict, or a bare file name / list); unknown keys raise."""
        if isinstance(data, (str, os.PathLike)) or (isinstance(data, Sequence) and not isinstance(data, Mapping)):
            data = {"filename": data}
        if not isinstance(data, Mapping):
            raise ValueError(f"data: must be a mapping or a file name, got {type(data).__name__}")
        d = dict(data)
        for k in sorted(set(d) & _LEGACY_KEYS) + sorted(k for k in d if str(k).startswith("query")):
            if k in d:
                warnings.warn(f"data: {k} is a legacy pacemaker option (not in 0.3.0); ignored",
                              DataWarning, stacklevel=2)
                d.pop(k)
        check_keys(d, {f.name for f in dataclasses.fields(cls)}, "data", source)
        if "filename" not in d:
            raise ValueError("data: filename is required (a file name or a list of them)")
        files = _names(d["filename"], "filename")
        assert files is not None
        test_files = _names(d.get("test_filename"), "test_filename")
        ts = d.get("test_size")
        if ts is not None and (isinstance(ts, bool) or not isinstance(ts, (int, float))):
            raise ValueError(f"data: test_size must be a number, got {ts!r}")
        if test_files and ts is not None:
            warnings.warn("data: both test_filename and test_size given; test_size is ignored",
                          DataWarning, stacklevel=2)
            ts = None
        try:
            aug = float(d.get("aug_factor", 1e-4))
        except (TypeError, ValueError):
            raise ValueError(f"data: aug_factor must be a number, got {d.get('aug_factor')!r}") from None
        seed = d.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"data: seed must be an integer, got {seed!r}")
        iw = d.get("ignore_weights", False)
        if not isinstance(iw, bool):
            raise ValueError(f"data: ignore_weights must be true or false, got {iw!r}")
        dp = d.get("datapath")
        ref = d.get("reference_energy")
        if isinstance(ref, Mapping):
            ref = dict(ref)
        keys: dict[str, Any] = {}
        for k in ("stress_key", "virial_key", "energy_key", "forces_key"):
            v = d.get(k)
            if v is not None and not isinstance(v, str):
                raise ValueError(f"data: {k} must be a string (an info key of the extxyz file), got {v!r}")
            keys[k] = v
        gk = d.get("group_key", "config_type")
        if not isinstance(gk, str):
            raise ValueError(f"data: group_key must be a string (a column or info key), got {gk!r}")
        gp = d.get("group_patterns")
        if gp is not None and not isinstance(gp, Mapping):
            raise ValueError(f"data: group_patterns must map regular expressions to group names, got {gp!r}")
        from paceui.data.groups import check_group_weights

        gw = check_group_weights(d.get("group_weights"))
        sg = d.get("split_by_group", False)
        if not isinstance(sg, bool):
            raise ValueError(f"data: split_by_group must be true or false, got {sg!r}")
        keys.update(group_key=gk, group_patterns=dict(gp) if gp else None, group_weights=gw or None,
                    split_by_group=sg)
        return cls(files, test_files, ts, ref, None if dp is None else os.fspath(dp), iw, aug, seed, **keys)


@dataclass(frozen=True)
class PreparedData:
    """Result of :func:`prepare_dataset`; row ``k`` of ``train`` ↔ structure ``k`` of ``train_neighbors``."""

    train: pd.DataFrame
    test: pd.DataFrame | None
    elements: tuple[str, ...]
    reference_energy: dict[str, float] | None
    dropped: tuple[DropRecord, ...]
    config: DataConfig
    cutoff: float | None = None
    train_neighbors: PackedNeighbors | None = None
    test_neighbors: PackedNeighbors | None = None
    messages: tuple[str, ...] = field(default=())

    @property
    def reference_energy_json(self) -> str | None:
        """The reference-energy dict as stored in potential metadata."""
        return reference_energy_json(self.reference_energy)

    def summary(self) -> str:
        """A few lines for logs: sizes, elements, reference energies, drops."""
        n_te = 0 if self.test is None else len(self.test)
        lines = [f"train {len(self.train)} structures ({int(self.train['NUMBER_OF_ATOMS'].sum())} atoms), "
                 f"test {n_te}; elements {', '.join(self.elements)}"]
        if self.reference_energy is not None:
            lines.append("reference energies (eV): "
                         + ", ".join(f"{k}={v:.6g}" for k, v in self.reference_energy.items()))
        if self.train_neighbors is not None:
            lines.append(f"neighbour pairs within {self.cutoff:g} Å: train {self.train_neighbors.n_pairs}"
                         + (f", test {self.test_neighbors.n_pairs}" if self.test_neighbors is not None else ""))
        if self.dropped:
            lines.append(f"dropped {len(self.dropped)} structure(s):")
            lines += [f"  {r}" for r in self.dropped[:20]]
            if len(self.dropped) > 20:
                lines.append(f"  ... and {len(self.dropped) - 20} more")
        return "\n".join(lines)


def _dropped_by(before: pd.DataFrame, after: pd.DataFrame, reason: str) -> list[DropRecord]:
    gone = before.index.difference(after.index, sort=False)
    return [DropRecord(i, str(before.at[i, "name"]), reason) for i in gone]


def prepare_dataset(data_config: Mapping[str, Any] | DataConfig | str, elements: Sequence[str] | None = None,
                    cutoff: float | None = None, weighting: Mapping[str, Any] | WeightingPolicy | None = None,
                    seed: int = 42, *, cache_dir: str | os.PathLike[str] | None = None, use_cache: bool = True,
                    progress: bool = False, strict: bool = False) -> PreparedData:
    """Load and prepare the data of a fit (see module doc); nothing passed in is modified.

    ``elements``: the potential's elements (others are dropped with a reason); ``cutoff`` (Å)
    builds packed neighbour lists (cached in ``cache_dir``) and drops structures with isolated
    atoms; ``weighting``: pacemaker's ``fit: weighting:`` dict; ``seed`` for split and weights
    (``data: seed`` wins).  ``strict`` raises instead of dropping invalid structures.
    """
    cfg = data_config if isinstance(data_config, DataConfig) else DataConfig.from_dict(data_config)
    policy = weighting_from_dict(weighting)
    seed = cfg.seed if cfg.seed is not None else seed
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        result = _prepare(cfg, elements, cutoff, policy, seed, cache_dir, use_cache, progress, strict)
    msgs = []
    for w in caught:
        if issubclass(w.category, DataWarning):
            msgs.append(str(w.message))
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return dataclasses.replace(result, messages=tuple(msgs))


def load_joint(cfg: DataConfig) -> pd.DataFrame:
    """The training file(s) and the test file(s) of ``cfg`` in one frame, column ``train`` telling which."""
    joint = _load_checked(cfg.filename, cfg.datapath, cfg)
    joint["train"] = True
    if cfg.test_filename:
        test_raw = _load_checked(cfg.test_filename, cfg.datapath, cfg)
        test_raw["train"] = False
        joint = pd.concat([joint, test_raw], axis=0, ignore_index=True, sort=False)
    return joint


def _load_checked(names: Sequence[str], datapath: str | None, cfg: DataConfig) -> pd.DataFrame:
    """The files ``names`` concatenated, each checked on its own (empty, missing columns: named), with the
    user's label keys of ``cfg`` (stress_key, virial_key, energy_key, forces_key)."""
    from paceui.data.validate import DataValidationError, check_columns

    frames = []
    for name in names:
        df = load_files([name], datapath, cfg.stress_key, cfg.virial_key, cfg.energy_key, cfg.forces_key)
        try:
            check_columns(df)
        except DataValidationError as exc:
            raise DataValidationError(f"{name}: {exc}") from None
        frames.append(df)
    out = frames[0] if len(frames) == 1 else pd.concat(frames, axis=0, ignore_index=True, sort=False)
    return out.reset_index(drop=True)


def split_and_weight(joint: pd.DataFrame, cfg: DataConfig, policy: Any, seed: int
                     ) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame, list[DropRecord]]:
    """The train/test split (test_size) and the weights of the structures kept: (train, test, all
    weighted, structures the weighting policy left out); weights normalised per set."""
    from paceui.data.groups import apply_group_weights, assign_groups, stratified_split

    joint = assign_groups(joint, cfg.group_key, cfg.group_patterns)
    if not cfg.test_filename and cfg.test_size is not None:
        train_pos = np.flatnonzero(joint["train"].to_numpy(bool))
        if cfg.split_by_group:
            te = stratified_split(joint["group"].to_numpy(object)[train_pos], cfg.test_size, seed)
        else:
            _, te = split_indices(len(train_pos), cfg.test_size, seed)
        flags = joint["train"].to_numpy(bool).copy()
        flags[train_pos[te]] = False
        joint["train"] = flags
    weighted = assign_weights(joint, policy, ignore_weights=cfg.ignore_weights, seed=seed)
    dropped = _dropped_by(joint, weighted, f"not selected by {type(policy).__name__}")
    weighted = apply_group_weights(apply_w_factor(adjust_aug_weights(weighted, cfg.aug_factor)),
                                   cfg.group_weights or {})
    is_train = weighted["train"].to_numpy(bool)
    train = normalize_weights(weighted.iloc[is_train])
    if len(train) == 0:
        raise ValueError("no training structures left after splitting and weighting")
    test = normalize_weights(weighted.iloc[~is_train]) if (~is_train).any() else None
    return train, test, weighted, list(dropped)


def _prepare(cfg: DataConfig, elements: Sequence[str] | None, cutoff: float | None, policy: WeightingPolicy,
             seed: int, cache_dir: str | os.PathLike[str] | None, use_cache: bool, progress: bool,
             strict: bool) -> PreparedData:
    joint = load_joint(cfg)
    els = tuple(sorted(set(elements))) if elements is not None else None
    ecols = [c for c in ("energy_corrected", "energy") if c in joint.columns]
    joint, dropped = filter_rows(joint, els, energy_columns=ecols, strict=strict)
    joint, ref_used = apply_reference_energy(joint, cfg.reference_energy)
    joint, more = filter_rows(joint, els, energy_columns=["energy_corrected"], strict=strict)
    dropped += more
    if els is None:
        els = tuple(sorted({s for at in joint["ase_atoms"] for s in at.get_chemical_symbols()}))
    pack: PackedNeighbors | None = None
    if cutoff is not None:
        pack = build_packed_neighbors(list(joint["ase_atoms"]), cutoff, els, cache_dir=cache_dir,
                                      use_cache=use_cache, progress=progress)
        lonely = {**isolated_atom_reasons(pack), **close_pair_reasons(pack)}
        if lonely:
            recs = [DropRecord(joint.index[p], str(joint["name"].iloc[p]), r) for p, r in sorted(lonely.items())]
            if strict:
                from paceui.data.validate import DataValidationError

                raise DataValidationError("\n".join(map(str, recs)))
            dropped += recs
            keep = np.setdiff1d(np.arange(len(joint)), np.fromiter(lonely, dtype=np.int64))
            joint, pack = joint.iloc[keep].copy(), pack.select(keep)
    train, test, weighted, more = split_and_weight(joint, cfg, policy, seed)
    dropped += more
    if cfg.test_size is not None and test is None and not cfg.test_filename:
        warnings.warn(f"test_size {cfg.test_size} gives an empty test set for {len(weighted)} structures",
                      DataWarning, stacklevel=3)
    tr_nb = te_nb = None
    if pack is not None:
        tr_nb = pack.select(joint.index.get_indexer(train.index))
        te_nb = pack.select(joint.index.get_indexer(test.index)) if test is not None else None
    log.info("data: %d train / %d test structures, %d dropped", len(train), 0 if test is None else len(test),
             len(dropped))
    return PreparedData(train, test, els, ref_used, tuple(dropped), cfg, None if cutoff is None else float(cutoff),
                        tr_nb, te_nb)
