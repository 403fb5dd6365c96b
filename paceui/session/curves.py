"""Learning curves cut into comparable segments, for both front ends.

A fit's history is one sequence of records, but its losses are only comparable within a stretch that
keeps one basis, one loss and one optimizer run: every cycle start (an ``iteration`` 0 record: a new
ladder step, an automatic fit cycle, a randomize, a settings change, added structures, an undo) begins
a new :class:`Segment`. Curves are drawn against total iterations with one line per segment (never a
line from one segment into the next) and a labelled marker where each begins; the label says why
(``randomize σ=0.05``, ``+14 functions``, ``kappa 0.3→0.5``) where the session recorded the command
(:class:`ChangeMark`), else ``step N`` / ``cycle N``.

>>> import pandas as pd
>>> h = pd.DataFrame({"ladder_step": [0, 0, 0, 0, 1, 1], "cycle": [0, 0, 0, 1, 0, 0],
...                   "iteration": [0, 1, 2, 0, 0, 1], "loss": [4., 3., 2., 5., 6., 1.]})
>>> [(g.start, g.stop, g.x0, g.label) for g in segments(h, [ChangeMark(3, "randomize", "randomize σ=0.1")])]
[(0, 3, 0, 'start'), (3, 4, 2, 'randomize σ=0.1'), (4, 6, 2, 'step 1')]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from paceui.session.live import record_iterations


@dataclass(frozen=True)
class ChangeMark:
    """A command that began a new segment: the history ``row`` of its initial record, the session
    ``action`` (randomize, extend_ladder, settings, add_structures, undo) and a short ``label``."""

    row: int
    action: str
    label: str

    def as_list(self) -> list[Any]:
        return [self.row, self.action, self.label]

    @classmethod
    def from_list(cls, v: Sequence[Any]) -> "ChangeMark":
        return cls(int(v[0]), str(v[1]), str(v[2]))


@dataclass(frozen=True)
class Segment:
    """Records ``start:stop`` of a history, comparable among themselves; ``x0`` the total iteration of
    the first; ``kind``: start, ladder, cycle or the action of its :class:`ChangeMark`."""

    start: int
    stop: int
    x0: int
    label: str
    kind: str
    ladder_step: int = 0
    cycle: int = 0


def segments(history: pd.DataFrame, changes: Iterable[ChangeMark] = ()) -> list[Segment]:
    """The comparable stretches of ``history`` (see the module docstring); [] for an empty history."""
    n = len(history)
    if n == 0:
        return []
    it = history["iteration"].to_numpy(np.int64) if "iteration" in history else np.ones(n, np.int64)
    step = history["ladder_step"].to_numpy(np.int64) if "ladder_step" in history else np.zeros(n, np.int64)
    cyc = history["cycle"].to_numpy(np.int64) if "cycle" in history else np.zeros(n, np.int64)
    x = record_iterations(history)
    marks = {m.row: m for m in changes}
    starts = sorted({0, *np.flatnonzero(it == 0).tolist()})
    out = []
    for i, a in enumerate(starts):
        b = starts[i + 1] if i + 1 < len(starts) else n
        if (m := marks.get(a)) is not None and a > 0:
            label, kind = m.label, m.action
        elif a == 0:
            label, kind = "start", "start"
        elif step[a] != step[a - 1]:
            label, kind = f"step {step[a]}", "ladder"
        else:
            label, kind = f"cycle {cyc[a]}", "cycle"
        out.append(Segment(a, b, int(x[a]), label, kind, int(step[a]), int(cyc[a])))
    return out


@dataclass(frozen=True)
class Series:
    """One segment's curve: ``x`` total iterations, ``train``/``test`` values (scaled; NaN where not
    evaluated, test every ``display_step``)."""

    segment: Segment
    x: np.ndarray
    train: np.ndarray
    test: np.ndarray


def curve_series(history: pd.DataFrame, column: str, scale: float = 1.0, changes: Iterable[ChangeMark] = (),
                 since_last_change: bool = False, max_points: int | None = None) -> list[Series]:
    """The curve of history ``column`` (and ``test_<column>``) as one :class:`Series` per segment;
    ``since_last_change``: only the segments from the last :class:`ChangeMark` (or ladder step) on;
    ``max_points``: at most about that many records in all (evenly strided; each segment's first and
    last kept)."""
    segs = segments(history, changes)
    if since_last_change and segs:
        last = max((i for i, g in enumerate(segs) if g.kind not in ("cycle",)), default=0)
        segs = segs[last:]
    if not segs or column not in history:
        return []
    x = record_iterations(history).astype(np.float64)
    y = history[column].to_numpy(np.float64) * scale
    tcol = f"test_{column}"
    yt = history[tcol].to_numpy(np.float64) * scale if tcol in history else np.full(len(history), np.nan)
    total = sum(g.stop - g.start for g in segs)
    stride = max(1, int(np.ceil(total / max_points))) if max_points else 1
    out = []
    for g in segs:
        idx = np.arange(g.start, g.stop)
        if stride > 1 and len(idx) > 2:
            idx = np.unique(np.r_[idx[::stride], idx[-1]])
        out.append(Series(g, x[idx], y[idx], yt[idx]))
    return out


def change_label(action: str, detail: Any) -> str:
    """The short marker label of a command (``detail``: σ for randomize, functions added for extend,
    the ChangeReport's ``changes`` (key, old, new) for settings)."""
    if action == "randomize":
        return f"randomize σ={detail:g}"
    if action == "extend_ladder":
        return f"+{detail} functions"
    if action == "settings":
        parts = [f"{str(k).split('.')[-1]} {_short(old)}→{_short(new)}" for k, old, new in detail]
        text = ", ".join(parts) or "settings"
        return text if len(text) <= 32 else text[:31] + "…"
    return str(detail) if detail else action


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    s = str(v)
    return s if len(s) <= 10 else s[:9] + "…"
