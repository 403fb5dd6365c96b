"""Crash safety: a fit process killed with SIGKILL at random moments, also in the middle of a save, always
leaves a session that loads, at most one autosave interval behind, with its dataset file untouched."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import ase.io
import numba
import numpy as np

from paceui.session import Session
from paceui.session.testing import tiny_session, zuo_frame

ROOT = Path(__file__).resolve().parents[1]
EVERY = 3  # autosave interval (iterations)


def digest(p: Path) -> tuple[str, int]:
    return hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns


def run_and_kill(path: Path, rng: random.Random, slow: float) -> tuple[int, int]:
    """Start a worker fitting the session; SIGKILL it at a random moment (every other time right after
    it announced a file write of a save). Returns (last iteration it reported, saves it reported)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "paceui.session.testing", "crash", str(path), str(numba.get_num_threads())]
    proc = subprocess.Popen(cmd + ([str(slow)] if slow else []), cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    seen, saves, writes = [0], [0], [0]
    mid_save = slow > 0

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            kind, *vals = line.split()
            if kind == "I":
                seen[0] = int(vals[0])
            elif kind == "S":
                saves[0] += 1
            elif kind == "W":
                writes[0] += 1
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    # The moment is drawn in the worker's own progress (a number of iterations or of file writes), not in
    # seconds, so a loaded machine (fewer iterations per second) kills at the same points of the fit.
    t_end = time.monotonic() + 120
    want_writes, want_iters = rng.randint(3, 12), rng.randint(1, 4)
    start_iter = None
    while time.monotonic() < t_end and proc.poll() is None:
        if start_iter is None and seen[0]:
            start_iter = seen[0]
        if mid_save and writes[0] >= want_writes:
            time.sleep(rng.uniform(0, slow))  # somewhere inside this file's write
            break
        if not mid_save and start_iter is not None and seen[0] >= start_iter + want_iters:
            time.sleep(rng.uniform(0, 0.05))  # somewhere inside the next iteration
            break
        time.sleep(0.002)
    assert proc.poll() is None, f"worker ended early: {proc.stderr.read()[-2000:]}"  # type: ignore[union-attr]
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    reader.join(5)
    for pipe in (proc.stdout, proc.stderr):
        pipe.close()  # type: ignore[union-attr]
    return seen[0], saves[0]


def test_sigkill_at_random_moments_leaves_a_loadable_session(tmp_path, monkeypatch):
    monkeypatch.setenv("PACEUI_CACHE_DIR", str(tmp_path / "cache"))
    frame = zuo_frame(10)
    src = tmp_path / "cu.extxyz"
    atoms = []
    for at, e, f in zip(frame["ase_atoms"], frame["energy"], frame["forces"]):
        at = at.copy()
        at.info["REF_energy"], at.arrays["REF_forces"] = e, np.asarray(f)
        atoms.append(at)
    ase.io.write(src, atoms)
    before = digest(src)
    path = tmp_path / "s"
    with tiny_session(path, data=str(src), fit={"maxiter": 8, "ladder_step": 3}, autosave_every=EVERY) as s:
        s.run(iterations=1)
    rng = random.Random(1234)
    total = 1
    for k in range(5):
        seen, saves = run_and_kill(path, rng, slow=0.02 if k % 2 else 0.0)
        with Session.load(path) as s:  # always loads
            got = s.status.total_iterations
            assert got >= total, "iteration counts must never go back"
            assert got >= seen - EVERY, f"kill {k}: saved {got} iterations, the worker had done {seen}"
            h = s.history
            assert int((h["iteration"] > 0).sum()) == got  # the history matches the counters
            assert s.status.loss == h["loss"].iloc[-1]
            pot = s.potential
            assert len(pot.functions()) == int(h["nfuncs"].iloc[-1])
            total = got
            if k == 2:
                s.save()  # the next save clears what killed saves left behind
                assert not list(path.rglob("*.tmp")) and len(list((path / "snapshots").iterdir())) == 2
        assert digest(src) == before  # the dataset file is only ever read
    assert total > 3
