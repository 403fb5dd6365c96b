"""Resume contract: fit N iterations, save, load in a fresh process, fit M more == fit N+M in one go
(same parameters bit for bit with the own deterministic optimizers, same metric history)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pandas as pd
import pytest

from paceui.session import Session
from paceui.session.testing import comparable, tiny_session

ROOT = Path(__file__).resolve().parents[1]


from tests.session_fixtures import _cache, frame  # noqa: E402,F401  (shared fixtures)


def continue_in_fresh_process(path: Path, iterations: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "paceui.session.testing", "continue", str(path), str(iterations),
                          str(numba.get_num_threads())], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]


def assert_same_fit(a: Session, b: Session) -> None:
    np.testing.assert_allclose(a.fitter.theta, b.fitter.theta, rtol=1e-12, atol=0)
    assert np.array_equal(a.fitter.theta, b.fitter.theta)  # in fact bit-identical
    pd.testing.assert_frame_equal(comparable(a.history), comparable(b.history))
    assert a.status.total_iterations == b.status.total_iterations


@pytest.mark.parametrize("fit, n, m", [
    ({"optimizer": "BFGS"}, 4, 5),
    ({"optimizer": "Adam", "options": {"learning_rate": 0.01}, "fit_cycles": 2, "noise_relative_sigma": 0.2,
      "maxiter": 5, "ladder_step": 5}, 7, 9),
], ids=["BFGS", "Adam-ladder-cycles"])
def test_resume_in_a_fresh_process_equals_one_go(tmp_path, frame, fit, n, m):
    path = tmp_path / "s"
    with tiny_session(path, data=frame, fit=fit) as first:
        first.run(iterations=n)
    continue_in_fresh_process(path, m)
    with Session.load(path) as resumed, tiny_session(None, data=frame, fit=fit) as one_go:
        one_go.run(iterations=n + m)
        assert_same_fit(resumed, one_go)
        resumed.run(iterations=2)  # and both go on identically
        one_go.run(iterations=2)
        assert_same_fit(resumed, one_go)


@pytest.mark.parametrize("optimizer", ["L-BFGS-B", "CG", "SGD"])
def test_resume_after_save_and_load_other_own_optimizers(tmp_path, frame, optimizer):
    fit = {"optimizer": optimizer, "options": {"learning_rate": 1e-4} if optimizer == "SGD" else None}
    with tiny_session(tmp_path / "s", data=frame, fit=fit) as first:
        first.run(iterations=3)
    with Session.load(tmp_path / "s") as resumed, tiny_session(None, data=frame, fit=fit) as one_go:
        resumed.run(iterations=4)
        one_go.run(iterations=7)
        assert_same_fit(resumed, one_go)


def test_autosave_and_commands_between_iterations_do_not_change_the_fit(tmp_path, frame):
    with tiny_session(tmp_path / "s", data=frame, autosave_every=1) as saved, \
            tiny_session(None, data=frame) as plain:
        for k in range(3):
            saved.run(iterations=2)
            saved.pause().result(30)
            saved.save()
            saved.call(lambda: saved.fitter.state_dict()).result(30)
        plain.run(iterations=6)
        assert saved.status.generation >= 9
        assert_same_fit(saved, plain)


def test_resume_after_randomize_and_ladder_extension(tmp_path, frame):
    fit = {"ladder_step": 4, "maxiter": 6}

    def steer(s: Session) -> None:
        s.run(iterations=3)
        s.randomize(0.05, seed=11).result(30)
        s.extend_ladder(2).result(30)
        s.run(iterations=2)

    with tiny_session(tmp_path / "s", data=frame, fit=fit) as first:
        steer(first)
    with Session.load(tmp_path / "s") as resumed, tiny_session(None, data=frame, fit=fit) as one_go:
        steer(one_go)
        assert resumed.status.ladder_step == 1 and resumed.status.nfuncs == 6
        resumed.run(iterations=4)
        one_go.run(iterations=4)
        assert_same_fit(resumed, one_go)
        assert resumed.potential.functions()[0].coeffs == one_go.potential.functions()[0].coeffs
