"""Pause and stop take effect inside a long iteration (issue 15): the session abandons the iteration at its
next loss evaluation instead of waiting for its line search to end, and resume continues bit-identically
(the own optimizer's state is restored to the iteration's start)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import paceui.fit.fitter as fitter_mod
from paceui.session import Phase
from paceui.session.testing import comparable, tiny_session
from tests.session_fixtures import _cache  # noqa: F401

N = 12          # iterations of the whole comparison
DELAY = 1.0     # s per loss evaluation of the slowed iteration


def _evals_per_iteration(history) -> dict[int, int]:
    """Loss evaluations of each iteration (history ``n_evals`` is cumulative within a cycle)."""
    h = history[history["iteration"] > 0]
    return dict(zip(h["iteration"].astype(int), np.diff(np.r_[1, h["n_evals"].to_numpy(int)])))


class _SlowIteration:
    """Slows every loss evaluation of iteration ``k`` (those made while the fit stands at k-1) by DELAY s
    and says when the first one begins; counts the evaluations that begin after ``mark()``."""

    def __init__(self, session, k: int):
        self.s, self.k, self.orig = session, k, fitter_mod.check_finite
        self.first, self.after, self._marked = threading.Event(), 0, False

    def __call__(self, res, *a, **kw):  # check_finite(res, theta, data, names): one per loss evaluation
        if self.s.fitter.state.iteration == self.k - 1 and self.s.status.phase is Phase.RUNNING:
            self.after += self._marked
            self.first.set()
            time.sleep(DELAY)
        return self.orig(res, *a, **kw)

    def mark(self) -> None:
        self._marked = True


@pytest.mark.parametrize("command", ["pause", "stop"])
def test_pause_and_stop_act_inside_a_long_iteration_and_resume_is_exact(command, monkeypatch):
    ref = tiny_session(fit={"maxiter": 1000})
    try:
        ref.run(N)
        ref_hist, ref_theta = ref.history, ref.fitter.theta.copy()
    finally:
        ref.close()
    per_it = _evals_per_iteration(ref_hist)
    k = next((i for i, n in sorted(per_it.items()) if n >= 2 and i > 1), None)
    assert k is not None, f"no iteration with a line search of 2+ evaluations: {per_it}"

    s = tiny_session(fit={"maxiter": 1000})
    try:
        s.run(k - 1)
        slow = _SlowIteration(s, k)
        monkeypatch.setattr(fitter_mod, "check_finite", slow)
        s.start()
        assert slow.first.wait(120), "the slowed iteration did not begin"
        slow.mark()
        t0 = time.perf_counter()
        fut = s.pause() if command == "pause" else s.stop()
        assert fut.result(60) is True
        latency = time.perf_counter() - t0
        st = s.status
        assert st.phase is (Phase.PAUSED if command == "pause" else Phase.STOPPED)
        # the iteration was abandoned: no loss evaluation began after the command, it was not recorded
        assert slow.after == 0, f"{slow.after} evaluations of iteration {k} after the {command}"
        assert s.total_iterations == k - 1 and s._engine.interrupted >= 1
        # one evaluation (the one under way) instead of the iteration's per_it[k] (plus its record)
        assert latency < DELAY * (per_it[k] - 0.4), (latency, per_it[k])
        print(f"{command} latency {latency:.2f} s inside an iteration of {per_it[k]} x {DELAY} s evaluations")
        monkeypatch.setattr(fitter_mod, "check_finite", slow.orig)
        s.run(N - s.total_iterations)
        assert s.total_iterations == N
        got = comparable(s.history)
        want = comparable(ref_hist)
        assert got.equals(want), "the interrupted fit's history differs from the uninterrupted one"
        assert np.array_equal(s.fitter.theta, ref_theta)
    finally:
        s.close()


def test_an_interrupted_iteration_saves_and_loads_exactly(tmp_path, monkeypatch):
    """A save requested inside an iteration writes the state at the boundary before it; loading that
    session and fitting on gives the uninterrupted fit."""
    ref = tiny_session(fit={"maxiter": 1000})
    try:
        ref.run(N)
        ref_hist = ref.history
    finally:
        ref.close()
    per_it = _evals_per_iteration(ref_hist)
    k = next(i for i, n in sorted(per_it.items()) if n >= 2 and i > 1)
    s = tiny_session(tmp_path / "s", fit={"maxiter": 1000})
    try:
        s.run(k - 1)
        slow = _SlowIteration(s, k)
        monkeypatch.setattr(fitter_mod, "check_finite", slow)
        s.start()
        assert slow.first.wait(120)
        assert s.pause().result(60) is True  # the pause autosaves at the boundary k-1
        monkeypatch.setattr(fitter_mod, "check_finite", slow.orig)
    finally:
        s.close()
    from paceui.session import Session

    t = Session.load(tmp_path / "s")
    try:
        assert t.total_iterations == k - 1
        t.run(N - k + 1)
        assert comparable(t.history).equals(comparable(ref_hist))
    finally:
        t.close()


CHUNK_DELAY = 0.25  # s added to each chunk of structures of the slowed evaluation


class _SlowChunks:
    """Slows pass 1 of every chunk of structures of the loss-and-gradient evaluations made while the fit
    stands at iteration ``k - 1`` by CHUNK_DELAY s; says when the first begins, counts those after ``mark()``."""

    def __init__(self, session, k: int):
        import paceui.fit.loss as loss_mod

        self.s, self.k, self.orig = session, k, loss_mod.ACELoss._pass1
        self.first, self.after, self._marked = threading.Event(), 0, False

    def __call__(self, loss, data, pc=None, w_out=None):
        if pc is not None and self.s.fitter.state.iteration == self.k - 1 and self.s.status.phase is Phase.RUNNING:
            self.after += self._marked
            self.first.set()
            time.sleep(CHUNK_DELAY)
        return self.orig(loss, data, pc, w_out)


@pytest.mark.parametrize("command", ["pause", "stop"])
def test_pause_and_stop_act_inside_one_long_loss_evaluation_and_resume_is_exact(command, monkeypatch):
    """One evaluation of many chunks (CHUNK_BYTES made small), each slowed: the command is honoured at the
    next chunk, so it takes about one chunk, not the evaluation (≥ 8 chunks); resume stays bit-identical."""
    import paceui.fit.loss as loss_mod

    monkeypatch.setattr(loss_mod, "CHUNK_BYTES", 1 << 20)  # both fits: the same chunks, the same sums
    ref = tiny_session(fit={"maxiter": 1000})
    try:
        ref.run(N)
        ref_hist, ref_theta = ref.history, ref.fitter.theta.copy()
        n_chunks = len(ref.fitter.loss._chunks(ref.fitter.train))
    finally:
        ref.close()
    assert n_chunks >= 6, n_chunks
    k = 3
    s = tiny_session(fit={"maxiter": 1000})
    try:
        s.run(k - 1)
        slow = _SlowChunks(s, k)
        monkeypatch.setattr(loss_mod.ACELoss, "_pass1", lambda self, *a, **kw: slow(self, *a, **kw))
        s.start()
        assert slow.first.wait(120), "the slowed evaluation did not begin"
        time.sleep(0.5 * CHUNK_DELAY)  # mid-chunk, mid-evaluation
        slow._marked = True
        t0 = time.perf_counter()
        fut = s.pause() if command == "pause" else s.stop()
        assert fut.result(60) is True
        latency = time.perf_counter() - t0
        assert s.status.phase is (Phase.PAUSED if command == "pause" else Phase.STOPPED)
        assert slow.after == 0, f"{slow.after} chunks began after the {command}"
        assert s.total_iterations == k - 1 and s._engine.interrupted >= 1
        # the chunk under way (≤ CHUNK_DELAY left), not the rest of an evaluation of n_chunks × CHUNK_DELAY
        assert latency < 0.5 * n_chunks * CHUNK_DELAY, (latency, n_chunks)
        print(f"{command} latency {latency:.2f} s inside one evaluation of {n_chunks} x {CHUNK_DELAY} s chunks")
        monkeypatch.setattr(loss_mod.ACELoss, "_pass1", slow.orig)
        s.run(N - s.total_iterations)
        assert comparable(s.history).equals(comparable(ref_hist)), "the interrupted fit's history differs"
        assert np.array_equal(s.fitter.theta, ref_theta)
    finally:
        s.close()
