"""Start the TUI: on the bundled demo (``paceui``), a saved session (``paceui DIR``) or a new session
from a pacemaker input file or a training set (``paceui new input.yaml|DATA [-o DIR]``). Errors are returned as messages
before the screen opens, never as tracebacks."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Callable

from paceui.demo import DEMO_INPUT
from paceui.session import Session
from paceui.session.from_data import YAML_SUFFIXES
from paceui.session.from_data import input_for_new as new_session_input
from paceui.session.lock import SessionLockedError
from paceui.session.store import SESSION_FILE


def demo_session(workdir: str | Path = "paceui-demo") -> tuple[Session, bool]:
    """The demo session in ``workdir/session`` (resumed if saved there), and whether it is new.

    The full demo (Zuo Cu, 55 functions, 262 structures) shows its first progress line about 5 s after
    the fit starts on 2 cores (numba cache warm), so no reduced dataset is needed."""
    path = Path(workdir) / "session"
    if (path / SESSION_FILE).is_file():
        return Session.load(path), False
    if not DEMO_INPUT.exists():
        raise FileNotFoundError(f"demo input not found at {DEMO_INPUT} (install paceui from its checkout)")
    return Session.from_input(DEMO_INPUT, name="demo", path=path), True


EXIT_GRACE_S = 5.0
"""Seconds the app's own shutdown gets after a signal's final save before the process ends regardless."""


def final_save_on_signals(session: Session) -> Callable[[], None]:
    """SIGHUP (the terminal went away: a closed SSH window) and SIGTERM stop the fit at its next iteration
    boundary, save it (a final save: no iteration lost) and exit with 128+signal; returns the undo."""
    def handler(signum: int, _frame: Any) -> None:
        signal.signal(signum, signal.SIG_DFL)  # a second signal ends the process at once
        try:
            session.close(timeout=120)
        finally:
            # The app's shutdown restores a live terminal; with the terminal gone (SIGHUP from a closed pty)
            # it can spin writing to it, so the process ends anyway once the session is saved.
            exit_later = threading.Timer(EXIT_GRACE_S, os._exit, args=(128 + signum,))
            exit_later.daemon = True
            exit_later.start()
            raise SystemExit(128 + signum)
    sigs = [sig for sig in (getattr(signal, "SIGHUP", None), signal.SIGTERM) if sig is not None]
    old = {sig: signal.signal(sig, handler) for sig in sigs}

    def undo() -> None:
        for sig, h in old.items():
            signal.signal(sig, h)
    return undo


def run_tui(session: Session, folder: str | Path | None = None, autostart: bool = False) -> int:
    """Run the app on ``session`` until the user quits; the session is closed afterwards (also on
    SIGHUP/SIGTERM, with a final save: see :func:`final_save_on_signals`)."""
    from paceui.tui.app import PaceApp

    undo = final_save_on_signals(session)
    try:
        app = PaceApp(session, folder=folder, autostart=autostart)
        if session.unclean_exit:
            app.startup_messages.append((session.unclean_exit, "warning"))
        app.run()
    finally:
        session.close()
        undo()
    return 0


def open_saved(root: Path, ask: Callable[[str], str] = input) -> Session | None:
    """Load the session in ``root``; when another process holds its lock (:class:`SessionLockedError`), say who
    and offer "open read-only" or "take over" (None: quit)."""
    try:
        return Session.load(root)
    except SessionLockedError as exc:
        print(f"paceui: {exc}", file=sys.stderr)
        if ask is input and not sys.stdin.isatty():
            return None  # nobody to ask (a script, a pipe): the one-line error stands
        while True:
            try:
                answer = ask("open [r]ead-only (nothing is saved), [t]ake over (the other one stops saving here), "
                             "or [q]uit? ").strip().lower()[:1]
            except EOFError:
                return None
            if answer == "r":
                return Session.load(root, read_only=True)
            if answer == "t":
                return Session.load(root, take_over=True)
            if answer in ("q", ""):
                return None


def main_demo() -> int:
    print("paceui: preparing the demo session (Zuo Cu, BSD-3) in ./paceui-demo/session …", file=sys.stderr)
    session, new = demo_session()
    return run_tui(session, autostart=new)


def main_open(path: str) -> int:
    root = Path(path)
    if not (root / SESSION_FILE).is_file():
        print(f"paceui: {path} is not a saved session (no {SESSION_FILE}); start one with "
              f"'paceui new input.yaml -o {path}'", file=sys.stderr)
        return 1
    session = open_saved(root)
    return 1 if session is None else run_tui(session)


def input_for_new(source: str, path: Path) -> Path:
    """The input.yaml a new session in ``path`` starts from: ``source`` itself when it is a pacemaker input
    file, else the recipe's proposal for the training data ``source`` written to ``path/input.yaml``
    (:func:`paceui.session.from_data.input_for_new`, which the notebook's form uses too)."""
    out, summary = new_session_input(source, path)
    if summary:
        print(f"paceui new: {summary}", file=sys.stderr)
    return out


def main_new(input_file: str, output: str | None) -> int:
    """``paceui new INPUT|DATA [-o DIR]``: a new session from a pacemaker input file, or from a training set
    (the recipe's proposal, see :func:`input_for_new`), opened in the TUI."""
    src = Path(input_file)
    default = src.resolve().parent.name if src.suffix.lower() in YAML_SUFFIXES else src.name.split(".")[0]
    path = Path(output) if output else Path("sessions") / default
    if (path / SESSION_FILE).exists():
        print(f"paceui new: {path} already holds a session; open it with 'paceui {path}'", file=sys.stderr)
        return 1
    input_file = str(input_for_new(input_file, path))
    print(f"paceui: building the basis and preparing the data of {input_file} …", file=sys.stderr)
    session = Session.from_input(input_file, path=path)
    session.save()
    return run_tui(session, folder=path.parent)
