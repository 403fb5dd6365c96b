"""What the front ends show as "current" numbers, each with the iteration it belongs to.

Train metrics come with every record; test metrics only every ``display_step`` iterations (and at the
start of each cycle). :func:`live_metrics` takes both from :attr:`Session.history` and says at which
total iteration each was computed, so a front end can write "test (it 100, 20 behind)" instead of
showing an old test error beside a new train error as if they were of one potential.

>>> import pandas as pd
>>> h = pd.DataFrame({"iteration": [0, 1, 2], "loss": [3., 2., 1.], "test_loss": [4., None, None]})
>>> m = live_metrics(h)
>>> (m.train_at, m.test_at, m.test_stale, m.test_label)
(2, 0, True, 'test @0 (stale: 2 it behind)')
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import pandas as pd


def record_iterations(history: pd.DataFrame) -> np.ndarray:
    """Total optimizer iterations at each history record (a cycle's initial record, iteration 0, shares
    the count of the iteration before it); the x of every curve and the iteration of every number."""
    n = len(history)
    if n == 0:
        return np.zeros(0, np.int64)
    it = history["iteration"].to_numpy(dtype=np.int64) if "iteration" in history else np.ones(n, np.int64)
    return np.cumsum(it > 0).astype(np.int64)


@dataclass(frozen=True)
class LiveMetrics:
    """The latest train metrics and the latest evaluated test metrics (history units: eV, eV/Å).

    ``train_at`` / ``test_at``: the total iteration each was computed at (None: never)."""

    train: Mapping[str, float] = field(default_factory=dict)
    train_at: int | None = None
    test: Mapping[str, float] = field(default_factory=dict)
    test_at: int | None = None

    @property
    def has_test(self) -> bool:
        return self.test_at is not None

    @property
    def test_behind(self) -> int:
        """Iterations between the test and the train metrics (0: same potential)."""
        if self.test_at is None or self.train_at is None:
            return 0
        return self.train_at - self.test_at

    @property
    def test_stale(self) -> bool:
        """The test metrics are of an older potential than the train metrics."""
        return self.test_behind > 0

    @property
    def train_label(self) -> str:
        return "train" if self.train_at is None else f"train @{self.train_at}"

    @property
    def test_label(self) -> str:
        if self.test_at is None:
            return "test"
        return f"test @{self.test_at}" + (f" (stale: {self.test_behind} it behind)" if self.test_stale else "")


def live_metrics(history: pd.DataFrame) -> LiveMetrics:
    """:class:`LiveMetrics` of a session's history (empty where nothing is recorded yet)."""
    if len(history) == 0:
        return LiveMetrics()
    at = record_iterations(history)
    last = history.iloc[-1]
    train = {str(k): float(v) for k, v in last.items() if not str(k).startswith("test_") and _is_num(v)}
    test: dict[str, float] = {}
    test_at = None
    if "test_loss" in history:
        rows = np.flatnonzero(history["test_loss"].notna().to_numpy())
        if rows.size:
            row = history.iloc[int(rows[-1])]
            test = {str(k)[5:]: float(v) for k, v in row.items() if str(k).startswith("test_") and _is_num(v)}
            test_at = int(at[rows[-1]])
    return LiveMetrics(train, int(at[-1]), test, test_at)


def _is_num(v: object) -> bool:
    try:
        return not math.isnan(float(v))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
