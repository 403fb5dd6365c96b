"""Helpers of the command line (``paceui.cli``): reading structure files with one-line errors, one-line
warnings, and a clean exit on SIGTERM."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any


def read_structures(path: str, index: str = ":") -> list[Any]:
    """The frames of an ASE-readable file; a missing, empty, truncated or garbage file is a ValueError
    (or OSError) naming the file."""
    import ase.io

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(2, "No such file or directory", str(p))
    if p.is_dir():
        raise ValueError(f"{p}: is a folder, not a structure file")
    if p.stat().st_size == 0:
        raise ValueError(f"{p}: the file is empty (no structures)")
    try:
        frames = ase.io.read(p, index=index)
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except Exception as exc:  # ASE's readers raise anything on a truncated or foreign file
        msg = str(exc).splitlines()[0] if str(exc) else ""
        raise ValueError(f"{p}: not a readable structure file ({type(exc).__name__}{': ' + msg if msg else ''}); "
                         "give an ASE-readable file (extxyz, POSCAR, cif, ...)") from None
    frames = frames if isinstance(frames, list) else [frames]
    if not frames:
        raise ValueError(f"{p}: no structures selected (index {index!r})")
    return frames


def exit_on_sigterm() -> None:
    """SIGTERM raises SystemExit, so a write in progress removes its temporary file (see paceui._atomic)."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def warning_line(command: str) -> Any:
    """A ``warnings.showwarning`` that prints paceui's warnings as one line on stderr."""
    seen: set[str] = set()

    def show(message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        text = " ".join(str(message).split())
        if text not in seen:
            seen.add(text)
            print(f"paceui {command}: warning: {text}", file=sys.stderr)
    return show


def one_line(exc: BaseException) -> str:
    """The error's message on one line (a multi-line message from a library is joined with " | "); an
    OSError without a message of paceui's names its file and its reason."""
    if isinstance(exc, OSError) and exc.strerror:
        f = f"{exc.filename}: " if exc.filename else ""
        return f"{f}{exc.strerror}" + ("" if isinstance(exc, FileNotFoundError) else f" ({type(exc).__name__})")
    if isinstance(exc, KeyError):
        return f"missing key {exc}"
    text = " | ".join(line.strip() for line in (str(exc) or type(exc).__name__).splitlines() if line.strip())
    return text if len(text) <= 800 else text[:800] + " ..."
