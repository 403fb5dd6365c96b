"""One writer per session folder: ``session.lock`` names the process that holds it.

>>> lock = SessionLock("sessions/cu").acquire()      # doctest: +SKIP  (SessionLockedError if held)
>>> lock.holder()                                    # doctest: +SKIP  LockHolder(pid=..., host=...)
>>> SessionLock("sessions/cu").take_over()           # doctest: +SKIP  (a front end's "take over")

The lock file is created with ``O_CREAT | O_EXCL`` (atomic on local and NFSv3+ file systems) and holds
the holder's pid, host, user and start time as JSON. A lock whose process is gone (same host, pid not
alive, e.g. after a kill) is stale and recovered by the next :meth:`SessionLock.acquire`. Within one
process the lock is shared: several Session objects of one process may use one folder (the process
serialises its own saves). Front ends offer "open read-only" (``Session.load(path, read_only=True)``)
or "take over" (``take_over=True`` / :meth:`SessionLock.take_over`) when a lock is held.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as _dt
import getpass
import json
import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

from paceui._atomic import atomic_write_text, pid_alive
from paceui.errors import SessionError

LOCK_FILE = "session.lock"


class SessionLockedError(SessionError):
    """The session folder is held by another live process; the message names it."""

    def __init__(self, message: str, holder: "LockHolder | None" = None) -> None:
        super().__init__(message)
        self.holder = holder


@dataclass(frozen=True)
class LockHolder:
    """Who holds a session folder."""

    pid: int
    host: str
    user: str = "?"
    since: str = "?"

    @classmethod
    def me(cls) -> "LockHolder":
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "?"
        return cls(os.getpid(), socket.gethostname(), user, _dt.datetime.now().isoformat(timespec="seconds"))

    @property
    def is_me(self) -> bool:
        return self.pid == os.getpid() and self.host == socket.gethostname()

    @property
    def alive(self) -> bool | None:
        """Whether the holder runs (None: on another host, cannot tell)."""
        return pid_alive(self.pid) if self.host == socket.gethostname() else None

    def describe(self) -> str:
        return f"pid {self.pid} on host {self.host} (user {self.user}, since {self.since})"


class SessionLock:
    """The lock of session folder ``folder``."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.file = self.folder / LOCK_FILE
        self.held = False
        self.recovered: LockHolder | None = None  # the stale holder replaced by acquire(), if any

    def holder(self) -> LockHolder | None:
        """The recorded holder, or None when the folder is not locked (an unreadable lock counts as stale)."""
        try:
            d = json.loads(self.file.read_text())
            return LockHolder(int(d["pid"]), str(d["host"]), str(d.get("user", "?")), str(d.get("since", "?")))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            return LockHolder(-1, socket.gethostname(), "?", "unreadable lock file")

    def acquire(self) -> "SessionLock":
        """Take the lock; raises :class:`SessionLockedError` naming a live holder (or one on another host)."""
        me = LockHolder.me()
        self.folder.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            try:
                fd = os.open(self.file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                h = self.holder()
                if h is None:
                    continue  # released meanwhile
                if h.is_me:
                    break
                alive = h.alive
                if alive is False:  # stale: its process is gone
                    self.recovered = h
                    self.file.unlink(missing_ok=True)
                    continue
                where = "its host cannot be checked from here" if alive is None else "it is running"
                raise SessionLockedError(
                    f"session folder {self.folder} is in use by {h.describe()}; {where}. Open it read-only "
                    "(Session.load(path, read_only=True)) or take it over (take_over=True) if that process is "
                    f"gone (lock file {self.file})", h) from None
            else:
                with os.fdopen(fd, "w") as fh:
                    fh.write(json.dumps(asdict(me)))
                break
        else:
            raise SessionLockedError(f"session folder {self.folder}: could not take the lock {self.file}")
        self._hold()
        return self

    def take_over(self) -> "SessionLock":
        """Take the lock whoever holds it (the front end asked the user); the old holder's saves are refused."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.recovered = self.holder()
        atomic_write_text(self.file, json.dumps(asdict(LockHolder.me())))
        self._hold()
        return self

    def check(self) -> None:
        """Raise :class:`SessionLockedError` when another process took the lock over since we acquired it."""
        h = self.holder()
        if h is not None and not h.is_me and h.pid != -1:
            raise SessionLockedError(f"session folder {self.folder} was taken over by {h.describe()}; this "
                                     "session can no longer save there (save it elsewhere with save(path))", h)

    def release(self) -> None:
        """Give the lock back (only if this process still holds it)."""
        if not self.held:
            return
        self.held = False
        key = str(self.folder.resolve())
        _HELD[key] = _HELD.get(key, 1) - 1
        if _HELD[key] > 0:
            return  # another Session of this process still uses the folder
        _HELD.pop(key, None)
        h = self.holder()
        if h is not None and h.is_me:
            self.file.unlink(missing_ok=True)

    def _hold(self) -> None:
        if not self.held:
            self.held = True
            key = str(self.folder.resolve())
            _HELD[key] = _HELD.get(key, 0) + 1


def lock_folder(path: str | os.PathLike[str] | None, take_over: bool = False,
                existing: bool = False) -> SessionLock | None:
    """The acquired (or taken over) lock of session folder ``path`` (which must exist if ``existing``),
    checked for writability first; None without a folder. SessionLockedError: another live process holds it."""
    if path is None:
        return None
    if existing and not Path(path).is_dir():
        from paceui.errors import SessionFormatError

        raise SessionFormatError(f"{path}: no such session folder")
    from paceui._atomic import check_writable

    check_writable(path, "session folder", folder=True)
    lock = SessionLock(Path(path).resolve())
    return lock.take_over() if take_over else lock.acquire()


def relock(current: SessionLock | None, root: Path) -> SessionLock:
    """The lock for saving into ``root``: ``current`` when it is root's (checked not taken over), else
    root's lock acquired and ``current`` given back (a first save, or "save as")."""
    if current is not None and current.folder.resolve() == root:
        current.check()
        return current
    new = SessionLock(root).acquire()
    if current is not None:
        current.release()
    return new


@contextlib.contextmanager
def released_on_error(lock: SessionLock | None) -> Iterator[None]:
    """Give ``lock`` back if the block raises (a session that could not be built holds no folder)."""
    try:
        yield
    except BaseException:
        if lock is not None:
            lock.release()
        raise


_HELD: dict[str, int] = {}
"""Folder → how many SessionLock objects of this process hold it."""


@atexit.register
def _release_all() -> None:
    for key in list(_HELD):
        try:
            h = SessionLock(key).holder()
            if h is not None and h.is_me:
                (Path(key) / LOCK_FILE).unlink(missing_ok=True)
        except OSError:
            pass
