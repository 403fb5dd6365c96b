"""The phase of a session and an immutable snapshot of where its fit stands (what front ends show)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from enum import Enum
from typing import Any


class Phase(str, Enum):
    """What the session's fit is doing."""

    READY = "ready"          # created or loaded; not fitting yet
    RUNNING = "running"      # the background thread iterates
    PAUSED = "paused"        # halted at an iteration boundary; resume continues exactly
    STOPPED = "stopped"      # halted by stop() or after run(iterations=N); start() continues exactly
    FINISHED = "finished"    # the fit reached its end (maxiter, convergence, early stopping, full ladder)
    ERROR = "error"          # an iteration raised; start() continues with a fresh optimizer


PENDING_WORDS = {"pause": "pausing…", "stop": "stopping…", "save": "saving…", "change_settings": "applying…",
                 "randomize": "randomizing…", "extend_ladder": "extending…", "start": "starting…",
                 "resume": "resuming…", "close": "closing…", "undo": "undoing…"}

STOP_MESSAGES = {"iterations": "the requested number of iterations is done", "user": "stopped by the user",
                 "error": "the fit raised an error"}


@dataclass(frozen=True)
class SessionStatus:
    """A consistent view of the session at an iteration boundary (losses in loss units, see FitMetrics)."""

    phase: Phase = Phase.READY
    total_iterations: int = 0     # optimizer iterations done by this session, over all runs (monotonic)
    ladder_step: int = 0
    cycle: int = 0
    iteration: int = 0            # iteration within the current cycle (0: its initial state)
    loss: float = math.nan        # train loss of the latest record
    best_loss: float = math.inf   # lowest train loss of any record
    nfuncs: int = 0               # basis functions of the current potential
    target_nfuncs: int = 0        # basis functions of the target (the full ladder)
    ladder: bool = False          # the fit grows its basis by a ladder
    stop_reason: str | None = None
    stop_message: str = ""
    error: str | None = None      # message of the last error
    generation: int = 0           # last saved generation (0: never saved)
    path: str | None = None       # where the session is saved (None: not yet)
    active_set: str = "none"      # the active set: none, current (of this potential) or stale (of an older one)
    n_candidates: int = 0         # candidate structures loaded (for γ and selection)
    n_selected: int = 0           # candidates in the current D-optimal selection
    stage: str = ""               # what the fit thread does before its first record ("" once iterating)
    stage_since: float = 0.0      # time.monotonic() when ``stage`` began (s)
    stage_done: int | None = None   # progress of ``stage`` where known (items done of ``stage_total``)
    stage_total: int | None = None
    undo: str = ""                  # what undo() would take back (the last randomize / extend; "": nothing)
    pending: tuple[str, ...] = ()   # commands queued but not yet taken by the fit thread (pause, stop, ...)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        """IPython's display (``await dash.until(...)`` as a cell's last line): one line, not every field."""
        p.text(f"<SessionStatus: {self.describe()}>")

    def stage_text(self, now: float | None = None) -> str:
        """The current stage with its elapsed time and progress, e.g. ``compiling kernels… 12 s``."""
        if not self.stage:
            return ""
        dt = (time.monotonic() if now is None else now) - self.stage_since
        prog = (f" {self.stage_done}/{self.stage_total}" if self.stage_done is not None and self.stage_total
                else "")
        return f"{self.stage}…{prog} {dt:.0f} s"

    def pending_text(self) -> str:
        """Queued commands as the user reads them: ``pausing…``, ``saving…`` ('' for none)."""
        return ", ".join(PENDING_WORDS.get(p, p + "…") for p in self.pending)

    @property
    def functions_left(self) -> int:
        """Target functions not yet in the basis (what extending the ladder can add)."""
        return max(self.target_nfuncs - self.nfuncs, 0)

    @property
    def running(self) -> bool:
        return self.phase is Phase.RUNNING

    def describe(self) -> str:
        """One line for logs and status bars."""
        where = f"ladder step {self.ladder_step}, cycle {self.cycle}, iteration {self.iteration}"
        why = f" ({self.stop_message})" if self.stop_message and self.phase is not Phase.RUNNING else ""
        if self.stage:
            return f"{self.phase.value}: {self.stage_text()}"
        return (f"{self.phase.value}{why}: {where}, {self.total_iterations} iterations in total, loss {self.loss:.6g}, "
                f"{self.nfuncs}/{self.target_nfuncs} functions")
