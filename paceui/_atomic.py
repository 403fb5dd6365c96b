"""The one write path of paceui: crash-safe file writes, checks that outputs can be written, and a
rescue place for results whose own destination failed.

A write goes to a temporary file ``.<name>.<pid>.<random>.tmp`` beside the target, is fsynced and
renamed over it, so a reader sees the old or the new file, never half. A write that raises removes its
temporary file; one killed outright leaves it behind, and the next write into that folder removes the
temporary files of processes that are no longer alive.
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
from pathlib import Path

from paceui.errors import PaceuiError

_TMP = re.compile(r"^\..+\.(\d+)\.[^.]+\.tmp$")


class OutputPathError(PaceuiError, OSError):
    """An output path that cannot be written; the message names the path and why."""


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files of writes in ``folder`` whose process is gone (killed mid-write)."""
    out: list[Path] = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return out
    for f in entries:
        m = _TMP.match(f.name)
        if m and int(m.group(1)) != os.getpid() and not pid_alive(int(m.group(1))):
            try:
                f.unlink()
                out.append(f)
            except OSError:
                pass
    return out


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` so that a reader sees either the old or the new file, never half."""
    return atomic_write_bytes(path, text.encode(encoding))


# docs/persistence.md §1: write beside, fsync, rename
def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see the module docstring)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return target


def check_writable(path: str | os.PathLike[str], what: str = "output", folder: bool = False) -> Path:
    """Raise :class:`OutputPathError` unless ``path`` (a file, or a ``folder``) can be written: its nearest
    existing ancestor must be a writable folder and the path itself not the wrong kind of thing."""
    p = Path(path).absolute()
    if p.exists():
        if folder and not p.is_dir():
            raise OutputPathError(f"{what} {p}: exists and is not a folder")
        if not folder and p.is_dir():
            raise OutputPathError(f"{what} {p}: is a folder, expected a file name")
        if not os.access(p if folder else p.parent, os.W_OK) or (not folder and not os.access(p, os.W_OK)):
            raise OutputPathError(f"{what} {p}: not writable (permission denied)")
        return p
    anc = p.parent
    while not anc.exists():
        anc = anc.parent
    if not anc.is_dir():
        raise OutputPathError(f"{what} {p}: {anc} is a file, so no folder can be made there")
    if not os.access(anc, os.W_OK | os.X_OK):
        raise OutputPathError(f"{what} {p}: folder {anc} is not writable (permission denied)")
    return p


def rescue_write(data: bytes, name: str, tried: str | os.PathLike[str]) -> Path:
    """Keep ``data`` (a result whose write to ``tried`` failed) in the first writable place among the
    current folder, the home folder and the temporary folder; returns where it went."""
    stem = f"paceui-rescued-{socket.gethostname()}-{os.getpid()}-{Path(name).name}"
    for d in (Path.cwd(), Path.home(), Path(tempfile.gettempdir())):
        cand = d / stem
        if cand.absolute() == Path(tried).absolute():
            continue
        try:
            return atomic_write_bytes(cand, data)
        except OSError:
            continue
    raise OutputPathError(f"{tried}: could not be written, and no rescue place (current, home, temporary "
                          "folder) could be written either")
