"""Run a nogil numba kernel over chunks of atoms on several Python threads (instead of a ``prange`` loop).

A ``parallel=True`` wrapper around a large serial kernel makes numba link and optimise the kernel's code
again inside the parallel region (and once more in the wrapper): on a cold cache that doubled the compile
time of the energy/force and gradient kernels. Calling the serial ``nogil`` kernel per chunk from threads
compiles it once; chunks are handed out one at a time (dynamic, like ``numba.parallel_chunksize(1)``), and
each chunk writes only its own outputs, so results do not depend on which thread ran which chunk.
"""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

__all__ = ["run_chunks"]

_POOL: ThreadPoolExecutor | None = None
_POOL_SIZE = 0
_LOCK = threading.Lock()


def _pool(n: int) -> ThreadPoolExecutor:
    """A shared pool of at least ``n`` threads (grown when asked for more; never shrunk)."""
    global _POOL, _POOL_SIZE
    with _LOCK:
        if _POOL is None or _POOL_SIZE < n:
            _POOL = ThreadPoolExecutor(max_workers=n, thread_name_prefix="paceui-chunks")
            _POOL_SIZE = n
        return _POOL


def run_chunks(fn: Callable[[int], object], nchunk: int, nthreads: int) -> None:
    """Call ``fn(c)`` for c = 0..nchunk−1 on ``nthreads`` threads (this one and pool threads).

    ``fn`` must release the GIL for the work (a ``nogil`` numba kernel) and write disjoint outputs per chunk.
    An exception in any chunk is raised here after the others have finished."""
    nthreads = max(1, min(nthreads, nchunk))
    if nthreads == 1:
        for c in range(nchunk):
            fn(c)
        return
    counter = itertools.count()  # next() is atomic under the GIL

    def worker() -> None:
        while (c := next(counter)) < nchunk:
            fn(c)

    futures = [_pool(nthreads - 1).submit(worker) for _ in range(nthreads - 1)]
    err: BaseException | None = None
    try:
        worker()
    except BaseException as e:  # let the pool threads finish before raising
        err = e
    for f in futures:
        try:
            f.result()
        except BaseException as e:
            err = err or e
    if err is not None:
        raise err
