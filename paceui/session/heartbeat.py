"""A running fit's heartbeat file, so a relaunch after an unclean exit (a kill, a lost SSH terminal,
a crash) can say what was lost.

While a session with a folder fits, ``session.live`` holds the pid, host and the total iterations done
(rewritten at most once a second). A clean end (close, a signal handled by the front end) removes it.
When :meth:`Session.load` finds one whose process is gone, the iterations beyond the last save were lost:
:func:`unclean_exit_message` says how many.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from paceui._atomic import pid_alive

LIVE_FILE = "session.live"


class Heartbeat:
    """Writes ``folder/session.live`` (rate-limited to one write per ``every`` s)."""

    def __init__(self, folder: Path, every: float = 1.0) -> None:
        self.file, self.every, self._last = folder / LIVE_FILE, every, -1e9

    def beat(self, total_iterations: int, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.every:
            return
        self._last = now
        doc = {"pid": os.getpid(), "host": socket.gethostname(), "total_iterations": int(total_iterations),
               "time": time.time()}
        try:
            tmp = self.file.with_name(f".{self.file.name}.{os.getpid()}.new")  # not *.tmp: saves own those
            tmp.write_text(json.dumps(doc))
            os.replace(tmp, self.file)
        except OSError:  # a heartbeat never stops a fit
            pass

    def clear(self) -> None:
        try:
            self.file.unlink()
        except OSError:
            pass


def unclean_exit_message(folder: Path, saved_iterations: int) -> str | None:
    """What a relaunch should say when the last run in ``folder`` ended without its final save (None: it
    ended cleanly, or it still runs, or it ran on another host)."""
    f = Path(folder) / LIVE_FILE
    try:
        doc = json.loads(f.read_text())
        pid, host, done = int(doc["pid"]), str(doc["host"]), int(doc["total_iterations"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if host != socket.gethostname() or pid == os.getpid() or pid_alive(pid):
        return None
    lost = max(done - saved_iterations, 0)
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(float(doc.get("time", 0))))
    if lost == 0:
        return f"the last run (pid {pid}) ended without closing at {when}, but nothing was lost: " \
               f"the saved session has all {saved_iterations} iterations"
    return (f"the last run (pid {pid}) ended uncleanly at {when} after at least {done} iterations; the last save "
            f"has {saved_iterations}: {lost} or more iterations lost (continuing from the save)")
