"""Textual terminal UI for paceui sessions (``paceui``, ``paceui SESSION_DIR``, ``paceui new input.yaml``).

A thin front end over :class:`paceui.session.Session`: keys, footer and command palette are built from
:data:`paceui.session.ACTIONS`; session events are polled from a timer on the UI loop (the fit thread
never touches a widget); predictions run in Textual thread workers. Imported lazily by ``paceui.cli``.
"""

from paceui.tui.app import PaceApp

__all__ = ["PaceApp"]
