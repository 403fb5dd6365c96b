"""Start the TUI: on the bundled demo (``paceui``), a saved session (``paceui DIR``) or a new session
from a pacemaker input file (``paceui new input.yaml [-o DIR]``). Errors are returned as messages
before the screen opens, never as tracebacks."""

from __future__ import annotations

import sys
from pathlib import Path

from paceui.demo import DEMO_INPUT
from paceui.session import Session
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


def run_tui(session: Session, folder: str | Path | None = None, autostart: bool = False) -> int:
    """Run the app on ``session`` until the user quits; the session is closed afterwards."""
    from paceui.tui.app import PaceApp

    try:
        PaceApp(session, folder=folder, autostart=autostart).run()
    finally:
        session.close()
    return 0


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
    return run_tui(Session.load(root))


def main_new(input_file: str, output: str | None) -> int:
    name = Path(input_file).resolve().parent.name
    path = Path(output) if output else Path("sessions") / name
    if (path / SESSION_FILE).exists():
        print(f"paceui new: {path} already holds a session; open it with 'paceui {path}'", file=sys.stderr)
        return 1
    print(f"paceui: building the basis and preparing the data of {input_file} …", file=sys.stderr)
    session = Session.from_input(input_file, path=path)
    session.save()
    return run_tui(session, folder=path.parent)
