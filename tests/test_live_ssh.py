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


def test_the_tui_of_a_running_fit_exits_saved_when_its_terminal_goes_away(tmp_path):
    """The real ``paceui DIR`` in tmux with a fit running; the tmux server is killed (the pty closes: SIGHUP
    with no terminal left). The process must save every iteration and end, not spin on the dead terminal."""
    import shutil

    from paceui.session.testing import tiny_session

    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (apt-get install tmux); this test drives the real TUI in it")
    s = tiny_session(path=tmp_path / "s", fit={"maxiter": 100000})
    s.run(2)
    s.save()
    s.close()
    sock = f"paceui-hup-{os.getpid()}"  # a server of its own: killing it touches no other session
    tmux = ["tmux", "-L", sock]
    cmd = f"cd {ROOT} && {sys.executable} -m paceui.cli {tmp_path / 's'}"
    subprocess.run([*tmux, "new-session", "-d", "-x", "100", "-y", "30", "-s", "hup", cmd], check=True)
    try:
        deadline = time.monotonic() + 120
        while "STOPPED" not in subprocess.run([*tmux, "capture-pane", "-p", "-t", "hup"], capture_output=True,
                                              text=True).stdout:
            assert time.monotonic() < deadline, "the TUI did not come up"
            time.sleep(0.5)
        pid = int(subprocess.run([*tmux, "list-panes", "-t", "hup", "-F", "#{pane_pid}"], capture_output=True,
                                 text=True, check=True).stdout.split()[0])
        subprocess.run([*tmux, "send-keys", "-t", "hup", "s"], check=True)
        while "RUNNING" not in subprocess.run([*tmux, "capture-pane", "-p", "-t", "hup"], capture_output=True,
                                              text=True).stdout:
            assert time.monotonic() < deadline, "the fit did not start"
            time.sleep(0.2)
        time.sleep(6.0)
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
    procs = subprocess.run(["pgrep", "-f", f"paceui.cli {tmp_path / 's'}"], capture_output=True, text=True).stdout
    t0 = time.monotonic()
    while procs.strip() and time.monotonic() - t0 < 60:
        time.sleep(0.5)
        procs = subprocess.run(["pgrep", "-f", f"paceui.cli {tmp_path / 's'}"], capture_output=True,
                               text=True).stdout
    leftover = [int(p) for p in procs.split()]
    for p in leftover:
        os.kill(p, signal.SIGKILL)
    assert not leftover, f"the TUI (pane pid {pid}) was still running 60 s after its terminal went away"
    back = Session.load(tmp_path / "s", read_only=True)
    try:
        assert back.total_iterations > 2 and back.unclean_exit is None
    finally:
        back.close()
