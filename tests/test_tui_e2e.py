"""End to end: the real ``paceui SESSION_DIR`` command in tmux (120×40): start, pause, save, quit; the
session on disk afterwards loads. Needs tmux (CI installs it); skipped with a message otherwise."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

from paceui.session import Session
from paceui.session.testing import tiny_session

ROOT = Path(__file__).resolve().parents[1]


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout


def _wait_screen(name: str, needle: str | Callable[[str], bool], timeout: float = 120.0) -> str:
    """Capture the pane until ``needle`` shows (a hang guard, not a speed assertion)."""
    end = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < end:
        screen = _tmux("capture-pane", "-p", "-t", name)
        if needle(screen) if callable(needle) else needle in screen:
            return screen
        time.sleep(0.2)
    raise AssertionError(f"{needle!r} not on screen after {timeout} s; screen:\n{screen}")


def _total(screen: str) -> int:
    m = re.search(r"total (\d+) │", screen)
    return int(m.group(1)) if m else -1


def test_paceui_in_tmux(tmp_path, monkeypatch):
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (apt-get install tmux); the end-to-end TUI test needs it")
    env_cache = tmp_path / "cache"
    monkeypatch.setenv("PACEUI_CACHE_DIR", str(env_cache))
    path = tmp_path / "sess"
    s = tiny_session(path=path, fit={"maxiter": 100000})
    s.save()
    s.close()
    name = f"paceui-e2e-{os.getpid()}"
    cmd = (f"cd {ROOT} && PACEUI_CACHE_DIR={env_cache} TERM=xterm-256color "
           f"{sys.executable} -m paceui.cli {path}; echo PACEUI-EXIT $?; sleep 30")
    _tmux("new-session", "-d", "-x", "120", "-y", "40", "-s", name, cmd)
    try:
        _wait_screen(name, "READY")
        _tmux("send-keys", "-t", name, "s")
        _wait_screen(name, "RUNNING")
        _wait_screen(name, lambda sc: _total(sc) >= 3)
        _tmux("send-keys", "-t", name, "p")
        screen = _wait_screen(name, "PAUSED")
        assert "loss" in screen and "Start" in screen
        paused_at = _total(screen)
        _tmux("send-keys", "-t", name, "C-s")
        _wait_screen(name, "saved session (")
        _tmux("send-keys", "-t", name, "q")
        screen = _wait_screen(name, "PACEUI-EXIT")
        assert "PACEUI-EXIT 0" in screen and "Traceback" not in screen
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)
    back = Session.load(path)
    # closing the app closes the session, which turns a paused fit into a stopped one (start continues it)
    assert back.status.phase.value in ("paused", "stopped") and back.status.total_iterations == paused_at >= 3
    back.close()
