"""Concurrency: random commands from two threads while a fit runs finish with no deadlock and no lost
command, with invariants that hold; pause takes effect within one iteration; slow consumers coalesce."""

from __future__ import annotations

import random
import threading
import time

import numpy as np
import pandas as pd

from paceui.fit.loss import ACELoss
from paceui.session import EventBus, Progress, Session, SessionError, Stopped
from paceui.session.events import Paused
from paceui.session.testing import comparable, tiny_session
from tests.session_fixtures import _cache, frame  # noqa: E402,F401  (shared fixtures)


def random_command(s: Session, rng: random.Random) -> tuple[str, object]:
    name = rng.choice(["pause", "resume", "start", "stop", "randomize", "extend", "maxiter", "optimizer",
                       "display", "save", "start", "resume"])
    if name == "randomize":
        return name, s.randomize(0.05, seed=rng.randrange(100))
    if name == "extend":
        return name, s.extend_ladder(1)
    if name == "maxiter":
        return name, s.change_settings(maxiter=rng.randint(3, 9))
    if name == "optimizer":
        return name, s.change_settings(optimizer=rng.choice(["BFGS", "L-BFGS-B"]))
    if name == "display":
        return name, s.change_settings(display_step=rng.randint(1, 4))
    if name == "save":
        return name, s.save_async()
    return name, getattr(s, name)()


def test_random_commands_from_two_threads_keep_the_session_consistent(tmp_path, frame):
    s = tiny_session(tmp_path / "s", data=frame, fit={"ladder_step": 3, "maxiter": 6}, autosave_every=4)
    seen: list[int] = []
    s.subscribe(lambda ev: seen.append(ev.total_iterations) if isinstance(ev, Progress) else None)
    slow = s.subscribe()  # never read until the end: must not grow with progress events
    issued: list[tuple[str, object]] = []
    lock = threading.Lock()

    def hammer(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(45):
            cmd = random_command(s, rng)
            with lock:
                issued.append(cmd)
            time.sleep(rng.uniform(0, 0.04))

    s.start()
    threads = [threading.Thread(target=hammer, args=(k,)) for k in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
        assert not t.is_alive(), "a command call blocked"
    for name, fut in issued:
        try:
            fut.result(timeout=120)  # every command is carried out (no deadlock, none lost)
        except SessionError as exc:
            assert name == "extend" and "already has all" in str(exc)
    s.run(iterations=10)
    assert s.wait(60) and s._engine.commands_done == len(issued) + 2
    assert seen == sorted(seen) and seen[-1] == s.status.total_iterations  # counts never go back
    kinds = [e.kind for e in slow.poll()]  # at most one progress between two other events
    assert kinds.count("progress") <= len(kinds) - kinds.count("progress") + 1
    assert s.status.total_iterations > 10

    h = s.history
    assert int((h["iteration"] > 0).sum()) == s.status.total_iterations
    key = list(zip(h["ladder_step"], h["cycle"]))
    assert key == sorted(key)  # ladder steps and cycles only go forward
    for _, g in h.groupby(["ladder_step", "cycle"]):
        assert list(g["iteration"]) == list(range(len(g)))  # each cycle: its initial state, then 1, 2, ...
    path = s.save()
    with Session.load(path) as t:  # the saved potential and history are those of the session
        assert np.array_equal(t.fitter.theta, s.fitter.theta)
        pd.testing.assert_frame_equal(comparable(t.history), comparable(s.history))
        pot = t.potential
        loss = ACELoss(pot, s.fitter.loss_cfg)
        value = loss(loss.pmap.get(pot), t.data.train, grad=False).loss
        rows = h[h["nfuncs"] == len(pot.functions())]["loss"].to_numpy()
        assert np.min(np.abs(rows - value) / value) < 1e-10  # the potential is one the history recorded
    s.close()


def test_pause_takes_effect_within_one_iteration(frame):
    with tiny_session(None, data=frame, fit={"maxiter": 1000}) as s:
        log: list[tuple[float, str]] = []
        s.subscribe(lambda ev: log.append((time.monotonic(), ev.kind)))
        for k in range(4):
            (s.start if k == 0 else s.resume)()
            while sum(1 for _, kind in log if kind == "progress") < 3 * (k + 1):
                time.sleep(0.001)
            time.sleep(random.Random(k).uniform(0, 0.03))
            t0 = time.monotonic()
            s.pause()
            assert s.wait(30)
            after = [kind for t, kind in log if t >= t0]
            assert after.count("progress") <= 1 and "paused" in after


def test_event_bus_coalesces_progress_and_keeps_order():
    bus = EventBus()
    sub = bus.subscribe(maxlen=5)
    calls: list[str] = []
    bus.subscribe(lambda ev: calls.append(ev.kind) or (_ for _ in ()).throw(RuntimeError("ui bug")))
    p = lambda i: Progress(i, 0, 0, i, 1.0 / (i + 1), 3, None, None, False)  # noqa: E731
    for i in range(1000):
        bus.emit(p(i))
    bus.emit(Paused(1000))
    for i in range(1000, 1010):
        bus.emit(p(i))
    got = sub.poll()
    assert [type(e).__name__ for e in got] == ["Progress", "Paused", "Progress"]
    assert got[0].total_iterations == 999 and got[2].total_iterations == 1009 and sub.coalesced == 1008
    assert len(calls) == 1011 and bus._subs[1].callback_errors == 1011  # a failing callback breaks nothing
    for i in range(8):
        bus.emit(Stopped("user", "", i, False))
    assert len(sub.poll()) == 5 and sub.dropped == 3
    waiter = threading.Thread(target=lambda: time.sleep(0.05) or bus.emit(Paused(1)))
    waiter.start()
    assert sub.wait_for("paused", 5).kind == "paused"
    sub.close()
    assert sub.get(0.01) is None and bus.n_subscribers == 1
