"""run_chunks: every chunk once, on several threads at a time, errors raised to the caller."""

from __future__ import annotations

import threading
import time

import pytest

from paceui.ace.chunks import run_chunks


@pytest.mark.parametrize("nchunk,nthreads", [(0, 2), (1, 4), (7, 1), (16, 2), (5, 8)])
def test_every_chunk_runs_once(nchunk: int, nthreads: int) -> None:
    seen: list[int] = []
    run_chunks(seen.append, nchunk, nthreads)
    assert sorted(seen) == list(range(nchunk))


def test_chunks_overlap_on_two_threads() -> None:
    """Two sleeping chunks (sleep releases the GIL, as a nogil kernel does) take one sleep, not two."""
    names: set[str] = set()

    def work(c: int) -> None:
        names.add(threading.current_thread().name)
        time.sleep(0.5)

    t = time.perf_counter()
    run_chunks(work, 2, 2)
    assert time.perf_counter() - t < 0.9 and len(names) == 2


def test_error_in_a_chunk_is_raised_after_all_finish() -> None:
    done: list[int] = []

    def work(c: int) -> None:
        if c == 3:
            raise ValueError("chunk 3")
        time.sleep(0.01)
        done.append(c)

    with pytest.raises(ValueError, match="chunk 3"):
        run_chunks(work, 8, 2)
    assert 3 not in done
