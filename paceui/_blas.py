"""Limit the threads of numpy's bundled OpenBLAS for a block of code.

On a loaded machine (more runnable threads than cores) OpenBLAS's worker threads spin: a 4000×337 QR took
3 s with 2 threads and 0.3 s with 1 on the 2-core development machine beside other jobs. The linear solve's
TSQR runs its LAPACK calls with one thread. A no-op where the library or its entry point is not found.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

_PREFIXES = ("scipy_openblas", "openblas")
_SUFFIXES = ("64_", "_64_", "")


@cache
def _entry_points() -> tuple[object, object] | None:
    """(set_num_threads, get_num_threads) of the OpenBLAS that numpy loaded, or None."""
    import numpy  # noqa: F401  (loads the library)

    try:
        with open("/proc/self/maps") as fh:
            paths = {ln.split()[-1] for ln in fh if "openblas" in ln and ln.rstrip().endswith(".so")}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for pre in _PREFIXES:
            for suf in _SUFFIXES:
                set_ = getattr(lib, f"{pre}_set_num_threads{suf}", None)
                get_ = getattr(lib, f"{pre}_get_num_threads{suf}", None)
                if set_ is not None and get_ is not None:
                    set_.argtypes, get_.restype = [ctypes.c_int], ctypes.c_int
                    return set_, get_
    return None


@contextmanager
def blas_threads(n: int) -> Iterator[None]:
    """Run the block with at most ``n`` OpenBLAS threads (restored afterwards)."""
    ep = _entry_points()
    if ep is None:
        yield
        return
    set_, get_ = ep
    old = get_()  # type: ignore[operator]
    set_(min(n, old))  # type: ignore[operator]
    try:
        yield
    finally:
        set_(old)  # type: ignore[operator]
