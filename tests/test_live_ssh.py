"""SSH reality (issue 15): SIGHUP/SIGTERM leave a saved session with every iteration done; after a
kill the relaunch says what was lost; a second instance on a locked folder is offered read-only or
take over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from paceui.session import Session

ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import sys, time
from paceui.session.testing import tiny_session
from paceui.tui.launch import final_save_on_signals
s = tiny_session(path=sys.argv[1], fit={"maxiter": 100000}, autosave_every=int(sys.argv[2]))
s.save()
if sys.argv[3] == "handle":
    final_save_on_signals(s)
s.subscribe(lambda ev: ev.kind == "progress" and print("I", ev.total_iterations, flush=True))
s.start()
while True:
    time.sleep(0.05)
"""


def _child(tmp_path: Path, autosave: int, mode: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NUMBA_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / "s"), str(autosave), mode], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, text=True)


def _iterations(p: subprocess.Popen[str], at_least: int) -> int:
    last = 0
    assert p.stdout is not None
    for line in p.stdout:
        if line.startswith("I "):
            last = int(line.split()[1])
            if last >= at_least:
                return last
    raise AssertionError(f"the child exited with {p.wait()} before {at_least} iterations")


@pytest.mark.parametrize("sig", [getattr(signal, "SIGHUP", signal.SIGTERM), signal.SIGTERM])
def test_a_signal_leaves_a_saved_session_with_every_iteration(tmp_path, sig):
    p = _child(tmp_path, 100000, "handle")  # no autosave: only the final save can keep the iterations
    try:
        seen = _iterations(p, 4)
        p.send_signal(sig)
        rc = p.wait(120)
    finally:
        p.kill()
    assert rc == 128 + sig
    s = Session.load(tmp_path / "s")
    try:
        assert s.total_iterations >= seen and s.unclean_exit is None
        assert not (tmp_path / "s" / "session.live").exists()
    finally:
        s.close()


def test_after_a_kill_the_relaunch_says_what_was_lost(tmp_path):
    p = _child(tmp_path, 100000, "plain")  # saved once, at 0 iterations; no autosave after that
    try:
        _iterations(p, 3)
        time.sleep(1.2)  # at least one heartbeat (written at most once a second)
        _iterations(p, 5)
        p.send_signal(signal.SIGKILL)
        p.wait(60)
    finally:
        p.kill()
    s = Session.load(tmp_path / "s")
    try:
        msg = s.unclean_exit
        assert s.total_iterations == 0
        assert msg is not None and "ended uncleanly" in msg and "the last save has 0:" in msg
        assert "or more iterations lost" in msg
    finally:
        s.close()
    assert not (tmp_path / "s" / "session.live").exists()  # closing cleanly ends the warning
    s = Session.load(tmp_path / "s")
    assert s.unclean_exit is None
    s.close()


def test_a_second_instance_on_a_locked_folder_is_offered_read_only_or_take_over(tmp_path, monkeypatch, capsys):
    from paceui.session.lock import SessionLockedError
    from paceui.tui import launch

    calls = []

    def load(root, **kw):
        calls.append(kw)
        if not kw:
            raise SessionLockedError(f"{root} is in use by pid 123 on host h (user u)")
        return ("session", kw)
    monkeypatch.setattr(launch.Session, "load", staticmethod(load))
    answers = iter(["?", "r"])
    assert launch.open_saved(tmp_path, ask=lambda _: next(answers)) == ("session", {"read_only": True})
    assert "in use by pid 123" in capsys.readouterr().err
    assert launch.open_saved(tmp_path, ask=lambda _: "t") == ("session", {"take_over": True})
    assert launch.open_saved(tmp_path, ask=lambda _: "q") is None
