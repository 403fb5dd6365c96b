"""Cold-start stages of a fit, named once for ``paceui fit``, ``paceui demo`` and the session's
:class:`~paceui.session.events.StageChanged` events: what runs before the first iteration is recorded.

:func:`shown_stage` shows a stage as a transient rich spinner with its elapsed time on a terminal
(stderr a TTY) and logs its duration afterwards, so a cold start never looks frozen.
"""

from __future__ import annotations

import logging
import sys
import time
from contextlib import contextmanager
from typing import Iterator

FIRST_EVALUATION = "building the basis and compiling kernels (first loss evaluation)"
FIRST_ITERATION = "first iteration (the optimizer's first line search: several loss evaluations)"


@contextmanager
def shown_stage(name: str, log: logging.Logger | None = None) -> Iterator[None]:
    """Show stage ``name`` while the block runs (a spinner with elapsed seconds on a terminal), then log
    ``name: done in N s``."""
    t0 = time.monotonic()
    progress = None
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                            console=Console(stderr=True), transient=True, redirect_stderr=False)
        progress.add_task(f"{name}…", total=None)
        progress.start()
    try:
        yield
    finally:
        if progress is not None:
            progress.stop()
        if log is not None:
            log.info(f"{name}: done in {time.monotonic() - t0:.1f} s")
