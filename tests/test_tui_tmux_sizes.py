"""The real ``paceui SESSION_DIR`` in tmux at 80×24, 120×40 and 60×20, with TERM=xterm-256color and
TERM=linux (16 colours): every tab shows its panel readably, the footer always says how to quit and is
not garbled, the active tab is marked by more than colour and disabled keys do not look highlighted
(issue 15). Needs tmux; skipped with a message otherwise."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from paceui.session.testing import tiny_session

ROOT = Path(__file__).resolve().parents[1]
TABS = {"1": "kappa", "2": "structures (", "3": "functions", "4": "sorted by", "5": "session(s) in",
        "6": "active set"}
"""Key of each tab and text its panel shows."""
RUN = re.compile(r"((?:\x1b\[[0-9;]*m)+)([^\x1b]+)")


def _styled(line: str) -> list[tuple[set[int], str]]:
    """(SGR attributes, text) of each run of text after escapes (colour parameters 38/48;5;n left out)."""
    out = []
    for m in RUN.finditer(line):
        attrs: set[int] = set()
        for seq in re.findall(r"\x1b\[([0-9;]*)m", m.group(1)):
            p = [int(x) for x in seq.split(";") if x]
            i = 0
            while i < len(p):
                if p[i] in (38, 48):
                    i += 3 if i + 1 < len(p) and p[i + 1] == 5 else 5
                    continue
                attrs.add(p[i])
                i += 1
        out.append((attrs, m.group(2)))
    return out


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout


def _screen(name: str, styled: bool = False) -> str:
    return _tmux("capture-pane", "-p", *(["-e"] if styled else []), "-t", name)


def _wait(name: str, needle: str, timeout: float = 120.0) -> str:
    end, screen = time.monotonic() + timeout, ""
    while time.monotonic() < end:
        screen = _screen(name)
        if needle in screen:
            return screen
        time.sleep(0.25)
    raise AssertionError(f"{needle!r} not on screen after {timeout} s; screen:\n{screen}")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (apt-get install tmux); the terminal-size tests need it")
    root = tmp_path_factory.mktemp("tmux-sizes")
    s = tiny_session(path=root / "sess", fit={"maxiter": 100000})
    s.run(3)
    s.save()
    s.close()
    return root


@pytest.mark.parametrize("term", ["xterm-256color", "linux"])
@pytest.mark.parametrize("size", [(80, 24), (120, 40), (60, 20)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_every_panel_is_readable(size, term, saved):
    w, h = size
    name = f"paceui-size-{os.getpid()}-{w}x{h}-{term}"
    cmd = (f"cd {ROOT} && COLUMNS={w} LINES={h} PACEUI_CACHE_DIR={saved / 'cache'} TERM={term} "
           f"{sys.executable} -m paceui.cli "
           f"{saved / 'sess'}; echo PACEUI-EXIT $?; sleep 30")
    _tmux("new-session", "-d", "-x", str(w), "-y", str(h), "-s", name, "sleep 600")
    try:  # the pane at its size first, then the app in it; COLUMNS/LINES: no race with a shell that starts
        # before the window has its size (the app would read 80x24)
        _tmux("set-option", "-t", name, "window-size", "manual")
        _tmux("resize-window", "-t", name, "-x", str(w), "-y", str(h))
        _tmux("respawn-pane", "-k", "-t", name, cmd)
        _wait(name, "STOPPED")
        for key, needle in TABS.items():
            _tmux("send-keys", "-t", name, key)
            screen = _wait(name, needle, 60)
            lines = screen.rstrip("\n").split("\n")
            assert len(lines) <= h and all(len(line) <= w for line in lines)
            assert "STOPPED" in lines[0] and "total 3" in lines[0]  # the status line
            assert all(t in lines[1] for t in ("Setup", "Data", "Fit", "Analysis")), lines[1]
            footer = lines[-1]
            assert footer.startswith("q Quit ? Keys"), footer  # how to quit, at every width
            assert "palettee" not in footer and "Extend ^▏" not in footer  # no palette key over the keys
            assert "Traceback" not in screen
            if w >= 100:  # room for it: the palette key at the right
                footer = _wait(name, "^p palette", 30).rstrip("\n").split("\n")[-1]
                assert footer.endswith("^p palette") and "^s Save" in footer
            else:
                assert "palette" not in footer
            styled = _screen(name, styled=True).split("\n")
            tabs, foot = styled[1], styled[len(lines) - 1]
            # the active tab is reversed (SGR 7): marked without colour
            active = [t.strip() for a, t in _styled(tabs) if 7 in a and t.strip()]
            assert len(active) == 1 and active[0] in ("Setup", "Data", "Fit", "Analysis", "Sessions", "Trust"), \
                repr(tabs)
            # a disabled key (Pause: the fit is stopped) has no bold key highlight, an enabled one (Start) has
            runs = _styled(foot)
            key = {t.strip(): a for a, t in runs}
            assert 1 in key.get("s", set()), repr(foot)
            assert 1 not in key.get("p Pause", key.get("p", {1})), repr(foot)
        _tmux("send-keys", "-t", name, "q")
        assert "PACEUI-EXIT 0" in _wait(name, "PACEUI-EXIT", 120)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)
