"""The OpenBLAS thread tuner of the linear solve (paceui/_blas.py), on a fake library and clock."""

from __future__ import annotations

import paceui._blas as blas


def _fake(monkeypatch, seconds_for_threads):
    """A fake OpenBLAS with 2 threads, and a block that advances the tuner's clock (``state["t"]``) by
    seconds_for_threads[n]."""
    state = {"n": 2, "t": 0.0}
    monkeypatch.setattr(blas, "_entry_points", lambda: (lambda n: state.__setitem__("n", n), lambda: state["n"]))

    def call(tuner, flops=1e12):
        with tuner.block("qr", flops):
            used = state["n"]
            state["t"] += seconds_for_threads[used]
        assert state["n"] == 2  # the count is restored after the block
        return used

    return state, call


def test_tuner_tries_both_counts_keeps_the_faster_and_reprobes(monkeypatch):
    speeds = {1: 1.0, 2: 1.2}  # two threads slower, as beside busy processes
    state, call = _fake(monkeypatch, speeds)
    tuner = blas.ThreadTuner(reprobe=4, min_flops=1.0, clock=lambda: state["t"])
    used = [call(tuner) for _ in range(8)]
    assert used == [1, 2, 1, 2, 1, 1, 1, 2]  # probe both, then the faster; the other again every 4th call
    speeds[2] = 0.8  # the machine became idle: two threads now win, found at the next reprobe
    assert [call(tuner) for _ in range(4)] == [1, 1, 1, 2]
    assert [call(tuner) for _ in range(4)] == [2, 2, 2, 1]


def test_tuner_reprobes_a_much_slower_count_three_times_less_often(monkeypatch):
    speeds = {1: 1.0, 2: 0.5}  # two threads twice as fast (margin 1.5): the 1-thread probe is costly
    state, call = _fake(monkeypatch, speeds)
    tuner = blas.ThreadTuner(reprobe=4, min_flops=1.0, clock=lambda: state["t"])
    used = [call(tuner) for _ in range(23)]
    assert used == [1, 2] + [2] * 9 + [1] + [2] * 11   # the other at call 12: every 3 × 4
    speeds[1] = 0.45  # one thread became the faster (another job took a core): found at call 24
    assert [call(tuner) for _ in range(5)] == [1, 1, 1, 1, 2]   # close now: every 4th call again


def test_tuner_gives_small_calls_one_thread(monkeypatch):
    state, call = _fake(monkeypatch, {1: 1.0, 2: 0.1})
    tuner = blas.ThreadTuner(min_flops=1e10, clock=lambda: state["t"])
    assert [call(tuner, flops=1e9) for _ in range(5)] == [1] * 5
    assert blas.qr_flops(3000, 1000) == 2 * 3000 * 1000 ** 2 - 2 * 1000 ** 3 / 3
