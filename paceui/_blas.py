"""Limit the threads of numpy's bundled OpenBLAS for a block of code, and pick the count per kind of call.

On a loaded machine (more runnable threads than cores) OpenBLAS's worker threads spin: a 4000×337 QR took
3 s with 2 threads and 0.3 s with 1 on the 2-core development machine beside other jobs, while on the idle
machine two threads halve a large QR. :class:`ThreadTuner` times both counts for each kind of large call
and keeps the faster. A no-op where the library or its entry point is not found.
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Callable, Iterator
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


class ThreadTuner:
    """One or all OpenBLAS threads for a repeated kind of large LAPACK call, whichever runs faster here now.

    Two threads halve a 12 400 × 3107 QR on the idle 2-core machine (4.1 against 7.8 s) but slow it beside two
    busy processes (11–13 against 9–11 s; a 5600 × 895 QR went from 0.3 to 8.6 s): OpenBLAS's threads spin
    when a core is taken. So each kind of call is timed with both counts (flops per second), the faster is
    used, and the other is tried again every ``reprobe`` calls to follow the load, or every ``3 × reprobe``
    calls when it was more than ``margin`` times slower (a re-probe of a 16 s SVD at one thread costs 9 s
    on the idle machine). Calls under ``min_flops`` (fractions of a second, where the spin costs most) always
    get one thread.
    """

    def __init__(self, reprobe: int = 6, min_flops: float = 2e10,
                 clock: Callable[[], float] = time.perf_counter, margin: float = 1.5) -> None:
        self.reprobe, self.min_flops, self.clock, self.margin = reprobe, min_flops, clock, margin
        self._rate: dict[tuple[str, int], float] = {}
        self._calls: dict[str, int] = {}

    def choose(self, kind: str, flops: float) -> int:
        """The thread count for the next call of ``kind`` (``flops`` floating-point operations)."""
        ep = _entry_points()
        most = ep[1]() if ep is not None else 1  # type: ignore[operator]
        if flops < self.min_flops or most <= 1:
            return 1
        options = (1, int(most))
        for n in options:
            if (kind, n) not in self._rate:
                return n
        best = max(options, key=lambda n: self._rate[(kind, n)])
        other = options[1] if best == options[0] else options[0]
        clear = self._rate[(kind, best)] > self.margin * self._rate[(kind, other)]
        every = self.reprobe * (3 if clear else 1)
        if self._calls.get(kind, 0) % every == every - 1:
            return other
        return best

    @contextmanager
    def block(self, kind: str, flops: float) -> Iterator[None]:
        """Run the block with :meth:`choose`'s thread count and record its rate."""
        n = self.choose(kind, flops)
        t0 = self.clock()
        with blas_threads(n):
            yield
        dt = max(self.clock() - t0, 1e-9)
        self._calls[kind] = self._calls.get(kind, 0) + 1
        if flops >= self.min_flops:
            self._rate[(kind, n)] = flops / dt


def qr_flops(m: int, n: int) -> float:
    """Householder QR of an m × n matrix (m ≥ n), R only: 2mn² − 2n³/3."""
    return 2.0 * m * n * n - 2.0 * n ** 3 / 3.0 if m >= n else 2.0 * n * m * m - 2.0 * m ** 3 / 3.0


LAPACK = ThreadTuner()
"""The process's tuner for the linear solve's QR folds, stacked-part QRs and SVDs."""
