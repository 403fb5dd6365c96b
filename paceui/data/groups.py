"""Configuration groups: one group name per structure, weights per group and a per-group split.

A structure's group comes from (first that applies) ``data: group_patterns`` ({regex: group}, matched with
``re.search`` on the structure's ``name``, first match wins), the frame column / ``atoms.info`` key
``data: group_key`` (default ``config_type``), else ``"default"``. ``data: group_weights`` maps a group to
factors ``{energy: f, forces: f, stress: f}`` (default 1) that multiply the structure's weights before
they are normalised.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

DEFAULT_GROUP = "default"
WEIGHT_KEYS = ("energy", "forces", "stress")


def assign_groups(df: pd.DataFrame, key: str = "config_type",
                  patterns: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Copy of ``df`` with a ``group`` column (str per structure)."""
    out = df.copy()
    n = len(out)
    col = out[key] if key in out.columns else None
    atoms = out["ase_atoms"] if "ase_atoms" in out.columns else None
    names = out["name"] if "name" in out.columns else pd.Series([""] * n, index=out.index)
    compiled = []
    for pat, grp in (patterns or {}).items():
        try:
            compiled.append((re.compile(str(pat)), str(grp)))
        except re.error as exc:
            raise ValueError(f"data: group_patterns: {pat!r} is not a regular expression ({exc})") from None
    groups = []
    for k in range(n):
        g = None
        for rx, grp in compiled:
            if rx.search(str(names.iloc[k])):
                g = grp
                break
        if g is None and col is not None and isinstance(col.iloc[k], str):
            g = col.iloc[k]
        if g is None and atoms is not None and atoms.iloc[k] is not None:
            v = atoms.iloc[k].info.get(key)
            g = str(v) if v is not None else None
        groups.append(g if g is not None else DEFAULT_GROUP)
    out["group"] = pd.Series(groups, index=out.index, dtype=object)
    return out


def check_group_weights(gw: Any) -> dict[str, dict[str, float]]:
    """``data: group_weights`` validated: {group: {energy|forces|stress: factor >= 0}}."""
    if gw is None:
        return {}
    if not isinstance(gw, Mapping):
        raise ValueError(f"data: group_weights must map group names to {{energy, forces, stress}} factors, got {gw!r}")
    out: dict[str, dict[str, float]] = {}
    for g, fac in gw.items():
        if isinstance(fac, (int, float)) and not isinstance(fac, bool):
            fac = {k: fac for k in WEIGHT_KEYS}
        if not isinstance(fac, Mapping):
            raise ValueError(f"data: group_weights.{g} must be a number or a mapping of {', '.join(WEIGHT_KEYS)}")
        bad = sorted(set(map(str, fac)) - set(WEIGHT_KEYS))
        if bad:
            raise ValueError(f"data: group_weights.{g}: unknown key(s) {', '.join(bad)} "
                             f"(known: {', '.join(WEIGHT_KEYS)})")
        d = {}
        for k, v in fac.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v < 0:
                raise ValueError(f"data: group_weights.{g}.{k} must be a finite number >= 0, got {v!r}")
            d[str(k)] = float(v)
        out[str(g)] = d
    return out


def apply_group_weights(df: pd.DataFrame, gw: Mapping[str, Mapping[str, float]]) -> pd.DataFrame:
    """Multiply w_energy, w_forces and w_stress (created as 1 where the frame has stresses) by the group
    factors (copy)."""
    out = df.copy()
    if "w_stress" not in out.columns and "stress" in out.columns:
        out["w_stress"] = 1.0
    if not gw or "group" not in out.columns:
        return out
    fac = {k: np.array([gw.get(g, {}).get(k, 1.0) for g in out["group"]]) for k in WEIGHT_KEYS}
    out["w_energy"] = out["w_energy"].to_numpy(float) * fac["energy"]
    out["w_forces"] = [np.asarray(w, float) * f for w, f in zip(out["w_forces"], fac["forces"])]
    if "w_stress" in out.columns:
        out["w_stress"] = out["w_stress"].to_numpy(float) * fac["stress"]
    return out


def stratified_split(groups: np.ndarray, test_size: float | int, seed: int | None) -> np.ndarray:
    """Test positions drawn within every group: a fraction per group (at least one where a group has two or
    more structures), or for a count the same fraction of the whole set; sorted."""
    from paceui.data.split import split_indices

    groups = np.asarray(groups, dtype=object)
    n = len(groups)
    frac = float(test_size) if float(test_size) < 1 else float(test_size) / n
    test = []
    for k, g in enumerate(sorted(set(groups))):
        pos = np.flatnonzero(groups == g)
        if len(pos) < 2:
            continue
        m = min(len(pos) - 1, max(1, int(round(frac * len(pos)))))
        _, te = split_indices(len(pos), m, None if seed is None else seed + k)
        test.append(pos[te])
    return np.sort(np.concatenate(test)) if test else np.zeros(0, dtype=np.int64)
