"""The one check of input keys: every section of input.yaml (and of the Python equivalents) goes through
:func:`check_keys`, which refuses unknown keys naming the key, the section, the file and the closest
valid key, and warns about keys pacemaker accepts that have no effect in paceui.

pacemaker's keys without effect here: paceui's numba engine has no TF
batches, GPU or process pool, and the basis is built once from the ``potential:`` section.
"""

from __future__ import annotations

import difflib
import warnings
from typing import Any, Iterable

from paceui.errors import InputError

NO_EFFECT: dict[str, dict[str, str]] = {
    "potential": {"overwrite_blocks_from_initial_bbasis": "the ladder always keeps the initial potential's blocks"},
    "backend": {"batch_size": "the numba engine evaluates every structure in one pass (no TF batches)",
                "batch_size_reduction": "there are no TF batches to shrink on out-of-memory",
                "batch_size_reduction_factor": "there are no TF batches to shrink on out-of-memory",
                "gpu_config": "the numba engine runs on the CPU",
                "parallel_mode": "the numba engine uses threads; use 'evaluator: dask' for processes/clusters"},
}
"""Section → key → why the key (accepted by pacemaker) does nothing in paceui."""


class NoEffectWarning(UserWarning):
    """A pacemaker key that paceui accepts but does not implement (the fit runs without it)."""


def closest(key: Any, known: Iterable[str]) -> str | None:
    """The valid key nearest to ``key`` (difflib), or None when nothing is close."""
    got = difflib.get_close_matches(str(key), sorted(map(str, known)), n=1, cutoff=0.6)
    if not got:  # case slips (deltaSplineBin vs deltaSplineBins, Kappa vs kappa)
        low = {k.lower(): k for k in map(str, known)}
        got = difflib.get_close_matches(str(key).lower(), sorted(low), n=1, cutoff=0.6)
        got = [low[g] for g in got]
    return got[0] if got else None


def check_keys(d: Any, known: Iterable[str], section: str, source: str = "", *,
               error: type[Exception] = InputError, no_effect: str | None = None) -> None:
    """Refuse a non-mapping ``d`` or keys not in ``known`` (or in ``NO_EFFECT[no_effect]``); warn about the
    latter when present. ``section`` is e.g. ``potential`` or ``fit.loss``; ``source`` the file name."""
    where = f"{source}: {section}" if source else section
    if not isinstance(d, dict):
        raise error(f"{where} must be a mapping, got {type(d).__name__} {d!r}"[:300])
    ignored = NO_EFFECT.get(no_effect or "", {})
    valid = set(map(str, known)) | set(ignored)
    for k in d:
        if str(k) not in valid:
            near = closest(k, valid)
            hint = f"; did you mean '{near}'?" if near else f"; valid keys: {', '.join(sorted(valid))}"
            raise error(f"{where}: unknown key '{k}'{hint}")
    for k in d:
        if str(k) in ignored and str(k) not in known:
            warnings.warn(f"{where}.{k} has no effect in paceui: {ignored[str(k)]}", NoEffectWarning, stacklevel=3)
