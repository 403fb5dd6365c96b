"""Helpers for tests of the TUI (as paceui.session.testing for sessions): wait on a condition while the
app runs, the plain text of a widget."""

from __future__ import annotations

import time
from typing import Callable

from textual.pilot import Pilot


async def until(pilot: Pilot, cond: Callable[[], bool], timeout: float = 60.0) -> None:
    """Let the app run until ``cond()`` holds; fail with a message after ``timeout`` s (a hang guard, not a
    speed assertion)."""
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"condition not reached within {timeout} s")
        await pilot.pause(0.05)


def text(widget: object) -> str:
    """What a Static shows, as plain text."""
    return str(widget.render())  # type: ignore[attr-defined]
