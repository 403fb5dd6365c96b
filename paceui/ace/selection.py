"""D-optimal selection of candidate structures (shared/spec/active_learning.md §5, as pace_select).

Per element, MaxVol runs on the rows of the current active set (A_act = (A_act⁻¹)⁻¹) together with the
candidates' rows; the candidate structures that own rows of the new active set are selected. With an
active set only rows with γ > tol can enter, so only those are kept; candidates are read in batches
(cumulative MaxVol), so the memory limit holds for any number of candidates.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from paceui.ace.activeset import (
    DEFAULT_MEMORY_MB,
    DEFAULT_TOL,
    ActiveSet,
    ActiveSetError,
    _maxvol,
    _Pool,
    batch_atoms_for,
    structure_gamma,
)
from paceui.ace.evaluator import ACEModel
from paceui.ace.maxvol import gamma_of, maxvol
from paceui.ace.potential import ACEPotential
from paceui.ace.projections import as_model, compute_projections, iter_projections, layout


@dataclass(frozen=True)
class Selection:
    """Chosen candidate indices (largest γ first) and each one's max γ (nan without an active set)."""

    indices: list[int]
    gamma: np.ndarray


def select_d_optimal(model: ACEModel | ACEPotential | str | os.PathLike[str], candidates: Sequence[Any],
                     active_set: ActiveSet | None = None, max_structures: int | None = None,
                     kind: str = "linear", memory_limit_mb: float = DEFAULT_MEMORY_MB,
                     tol: float = DEFAULT_TOL, max_iters: int = 300) -> Selection:
    """Candidates (``ase.Atoms``) that MaxVol puts into the active set, at most ``max_structures``."""
    m = as_model(model)
    if active_set is not None:
        active_set.check(m)
        kind = active_set.kind
    lay = layout(m)
    widths = lay.width(kind)
    batch_atoms = batch_atoms_for(m, kind, memory_limit_mb)
    pools: dict[str, _Pool] = {}
    for el in lay.elements:
        if active_set is not None:
            rows = np.linalg.inv(active_set.inverse[el])
            n = rows.shape[0]
            pools[el] = _Pool(rows, -np.ones(n, np.int64), -np.ones(n, np.int64))
        else:
            pools[el] = _Pool(np.zeros((0, widths[el])), np.zeros(0, np.int64), np.zeros(0, np.int64))
    for proj in iter_projections(m, candidates, kind, batch_atoms):
        for el in lay.elements:
            r, s, a = proj.rows[el], proj.structure[el], proj.atom[el]
            if active_set is not None and len(r):
                keep = gamma_of(r, active_set.inverse[el]) > tol
                r, s, a = r[keep], s[keep], a[keep]
            if not len(r):
                continue
            pool = pools[el].join(_Pool(r, s, a))
            if len(pool.rows) < widths[el]:
                pools[el] = pool
                continue
            idx, _ = _maxvol(pool, el, tol, max_iters, kind)
            pools[el] = pool.take(idx)
    if active_set is None:
        short = [f"{el}: {len(p.rows)} atoms < {widths[el]} functions" for el, p in pools.items()
                 if 0 < len(p.rows) < widths[el]]
        if short:
            raise ActiveSetError("too few candidate atoms for a selection without an active set ("
                                 + "; ".join(short) + ")")
    owners: dict[int, int] = {}
    for p in pools.values():
        for s in p.structure[p.structure >= 0].tolist():
            owners[s] = owners.get(s, 0) + 1
    chosen = sorted(owners)
    if active_set is not None:
        g = structure_gamma(m, active_set, [candidates[k] for k in chosen], memory_limit_mb)
        gam = np.array([x.max() if len(x) else 0.0 for x in g])
        order = np.argsort(-gam, kind="stable")
        if max_structures is not None and max_structures < len(chosen):
            pick = _greedy(m, active_set, [candidates[k] for k in chosen], max_structures, tol, max_iters,
                           memory_limit_mb)
            order = pick[np.argsort(-gam[pick], kind="stable")]  # reported largest γ first
    else:
        gam = np.full(len(chosen), np.nan)
        order = np.argsort([-owners[k] for k in chosen], kind="stable")
    if max_structures is not None:
        order = order[:max_structures]
    return Selection(indices=[chosen[k] for k in order], gamma=gam[order])


def _greedy(m: ACEModel, active_set: ActiveSet, structures: Sequence[Any], k: int, tol: float, max_iters: int,
            memory_limit_mb: float) -> np.ndarray:
    """Greedy D-optimal order of the first ``k`` of ``structures``: each pick has the largest γ among those
    not yet picked with respect to the active set augmented by the earlier picks (MaxVol over its rows and
    the picks' atoms). Without it, truncating MaxVol's structures by their γ against the original active set
    can take two structures that extend it in the same directions."""
    inv = dict(active_set.inverse)
    left = list(range(len(structures)))
    out: list[int] = []
    while left and len(out) < k:
        g = structure_gamma(m, ActiveSet(active_set.kind, inv), [structures[c] for c in left], memory_limit_mb)
        best = left[int(np.argmax([x.max() if len(x) else 0.0 for x in g]))]
        out.append(best)
        left.remove(best)
        for el, rows in compute_projections(m, [structures[best]], active_set.kind).rows.items():
            if len(rows):
                inv[el] = maxvol(np.vstack([np.linalg.inv(inv[el]), rows]), tol, max_iters, el).inverse
    return np.array(out, dtype=np.int64)
