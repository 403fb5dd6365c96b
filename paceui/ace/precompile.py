"""Compile numba kernels in child processes, into the on-disk numba cache, while this process works.

A first fit on a fresh machine waits on numba: the neighbour-list builder, the energy/force kernel and the
gradient kernel each take seconds to compile, one after the other, and numba compiles under a global lock
(threads cannot overlap them). :func:`start` launches one child process per kernel that is missing from the
cache; the child compiles it for the given signature (``cache=True`` writes the cache), and the first call
here, after :func:`wait`, loads it from there (the same machine code: results are bit-identical). With a warm
cache nothing is launched (a look at the cache index, ~1 ms per kernel). ``PACEUI_PRECOMPILE=0`` turns it off.

Signatures are written compactly, one token per argument: ``i`` int64, ``f`` float64, ``b`` bool, ``iN`` /
``fN`` / ``cN`` / ``bN`` a C-contiguous int64 / float64 / complex128 / bool array of N dimensions.
"""

from __future__ import annotations

import atexit
import importlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

__all__ = ["KernelSpec", "signature", "is_cached", "start", "wait", "running"]

_SCALARS = {"i": "int64", "f": "float64", "b": "boolean"}
_ARRAYS = {"i": "int64", "f": "float64", "c": "complex128", "b": "boolean"}


@dataclass(frozen=True)
class KernelSpec:
    """A numba dispatcher by module and attribute name, and the one signature to compile it for."""

    module: str
    name: str
    sig: str  # compact signature, see the module docstring

    @property
    def key(self) -> str:
        return f"{self.module}.{self.name}"


def signature(code: str) -> tuple[Any, ...]:
    """The numba argument types of a compact signature (``"i1 f2 i b"``)."""
    from numba.core import types

    out: list[Any] = []
    for tok in code.split():
        if tok in _SCALARS:
            out.append(getattr(types, _SCALARS[tok]))
        elif len(tok) >= 2 and tok[0] in _ARRAYS and tok[1:].isdigit():
            out.append(types.Array(getattr(types, _ARRAYS[tok[0]]), int(tok[1:]), "C"))
        else:
            raise ValueError(f"precompile signature {code!r}: unknown token {tok!r}")
    return tuple(out)


def _dispatcher(spec: KernelSpec) -> Any:
    return getattr(importlib.import_module(spec.module), spec.name)


def is_cached(spec: KernelSpec) -> bool:
    """Whether the numba cache already holds ``spec`` (False also where that cannot be told)."""
    try:
        disp = _dispatcher(spec)
        cache = disp._cache
        key = cache._index_key(signature(spec.sig), disp.targetctx.codegen())
        return key in cache._cache_file._load_index()
    except Exception:  # private numba API: assume not cached (a child then compiles it once more)
        return False


_RUNNING: dict[str, subprocess.Popen[bytes]] = {}


def _enabled() -> bool:
    return os.environ.get("PACEUI_PRECOMPILE", "1") != "0" and os.environ.get("NUMBA_DISABLE_JIT", "0") == "0"


def start(specs: Sequence[KernelSpec]) -> list[str]:
    """Launch a compiling child for each spec not cached (and not already launched); returns their keys."""
    if not _enabled():
        return []
    import paceui

    root = str(Path(paceui.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    launched = []
    for spec in specs:
        if spec.key in _RUNNING or is_cached(spec):
            continue
        _RUNNING[spec.key] = subprocess.Popen(
            [sys.executable, "-c", "import sys; from paceui.ace.precompile import _child; _child(*sys.argv[1:])",
             spec.module, spec.name, spec.sig], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        launched.append(spec.key)
    return launched


def running() -> list[str]:
    """Keys of the children still compiling."""
    return [k for k, p in _RUNNING.items() if p.poll() is None]


def wait(specs: Sequence[KernelSpec] | None = None, timeout: float = 600.0) -> None:
    """Wait for the children of ``specs`` (all if None) to finish, so the next call loads from the cache.

    A child that fails or outlives ``timeout`` (s) is only a lost head start: the kernel then compiles here."""
    if not _RUNNING:
        return
    keys = list(_RUNNING) if specs is None else [s.key for s in specs if s.key in _RUNNING]
    end = time.monotonic() + timeout
    for k in keys:  # any thread may wait (the fit's and an evaluation's): pop only when done
        p = _RUNNING.get(k)
        if p is None:
            continue
        try:
            p.wait(max(0.0, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        _RUNNING.pop(k, None)


def _stop_all() -> None:
    for p in list(_RUNNING.values()):
        if p.poll() is None:
            p.kill()
            p.wait()
    _RUNNING.clear()


atexit.register(_stop_all)


def _child(module: str, name: str, sig: str) -> None:
    """Child process: compile one kernel (numba writes it to the cache)."""
    _dispatcher(KernelSpec(module, name, sig)).compile(signature(sig))
