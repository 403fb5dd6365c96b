"""The Dask backend under faults: a worker killed during a fit, shards that cannot be rebuilt, and a session
on the cluster that is saved, closed and resumed."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import threading
import time

import numpy as np
import pytest

from paceui.fit.config import BackendConfig, FitConfig
from paceui.fit.fitter import Fitter
from tests.test_dask_helpers import assert_same, zuo_data

distributed = pytest.importorskip("distributed")
FIT = FitConfig(loss={"kappa": 0.3, "L2_coeffs": 1e-8}, optimizer="BFGS", maxiter=20)


@pytest.fixture(scope="module")
def cluster():
    lc = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  scheduler_kwargs={"dashboard": False}, silence_logs=logging.CRITICAL)
    yield lc, BackendConfig(evaluator="dask", scheduler=lc.scheduler_address)
    lc.close()


@pytest.fixture(scope="module")
def zuo(tmp_path_factory):
    pot, train, test, _ = zuo_data(tmp_path_factory.mktemp("zuo"))
    ref = Fitter(pot, train, FIT, test, seed=1)
    ref.run()
    return pot, train, test, ref.loss.pmap.get(ref.potential()), ref.state


def _pid_holding(fitter: Fitter, shard: int = 0) -> tuple[str, int]:
    """Address and process id of the worker that holds a training shard."""
    ev = fitter.train.evaluator
    addr = next(iter(ev.client.who_has([fitter.train.futures[shard]]).values()))[0]
    return addr, ev.client.run(os.getpid, workers=[addr])[addr]


def test_a_worker_killed_during_the_fit_does_not_change_the_result(cluster, zuo):
    _, backend = cluster
    pot, train, test, ref_theta, ref = zuo
    f = Fitter(pot, train, FIT, test, backend=backend, seed=1)
    try:
        addr, pid = _pid_holding(f)
        killed: list[int] = []

        def kill_soon() -> None:  # while the optimizer is evaluating, after a few iterations
            while f.state.iteration < 4:
                time.sleep(0.005)
            os.kill(pid, signal.SIGKILL)
            killed.append(f.state.iteration)

        t = threading.Thread(target=kill_soon)
        t.start()
        f.run()
        t.join()
        assert killed and killed[0] < FIT.maxiter  # the kill landed inside the fit
        new_addr, new_pid = _pid_holding(f)
        assert new_pid != pid  # the shard was rebuilt from its recipe on a live (or restarted) worker
        assert f.state.stop_reason == ref.stop_reason and len(f.state.history) == len(ref.history)
        assert_same(f.loss.pmap.get(f.potential()), ref_theta, "parameters")
    finally:
        f.close()


def test_a_shard_that_cannot_be_rebuilt_stops_the_fit_with_a_reason_and_it_resumes(cluster, zuo, tmp_path):
    from paceui.fit.dask.evaluator import DistributedError

    _, backend = cluster
    pot, train, test, ref_theta, ref = zuo
    f = Fitter(pot, train, FIT, test, backend=backend, seed=1)
    try:
        f.run(max_iterations=3)
        folder = f.train.evaluator.folder
        shutil.copytree(folder, tmp_path / "saved")
        shutil.rmtree(folder)
        os.kill(_pid_holding(f)[1], signal.SIGKILL)
        with pytest.raises(DistributedError, match="shard file .* not found.*shard_dir"):
            f.run()
        assert f.state.stop_reason is None and len(f.state.history) == 4  # nothing recorded, nothing lost
        shutil.copytree(tmp_path / "saved", folder)  # the recipes are back: the fit goes on
        f.run()
        assert f.state.stop_reason == ref.stop_reason
        assert f.state.iteration == ref.iteration
    finally:
        f.close()


def test_a_session_on_the_cluster_saves_closes_and_resumes(cluster, tmp_path):
    """Also: a cluster failure halts the session with the reason (phase ERROR), and it resumes."""
    from paceui.session import Phase, Session
    from paceui.session.engine import SessionError
    from paceui.session.testing import comparable, tiny_session

    _, backend = cluster
    with tiny_session(n=12) as plain:
        plain.run(iterations=5)
        want = comparable(plain.history)
    s = tiny_session(tmp_path / "s", n=12, backend={"evaluator": "dask", "scheduler": backend.scheduler})
    assert s.fitter.train.evaluator is not None
    s.run(iterations=3)
    folder = s.fitter.train.evaluator.folder
    shutil.copytree(folder, tmp_path / "saved")
    shutil.rmtree(folder)
    os.kill(_pid_holding(s.fitter)[1], signal.SIGKILL)
    with pytest.raises(SessionError, match="DistributedError.*shard file .* not found.*shard_dir"):
        s.run(iterations=1)
    assert s.status.phase is Phase.ERROR
    shutil.copytree(tmp_path / "saved", folder)
    assert s.run(iterations=1).phase is Phase.STOPPED and s.status.total_iterations == 4
    s.save()
    ev = s.fitter.train.evaluator
    s.close()
    assert ev._closed and not ev.folder.exists()
    s2 = Session.load(tmp_path / "s")
    try:
        assert s2.fitter.backend.evaluator == "dask"
        s2.run(iterations=1)
        got = comparable(s2.history)
    finally:
        s2.close()
    assert list(got.columns) == list(want.columns) and len(got) == len(want)
    np.testing.assert_allclose(got["loss"].to_numpy()[:4], want["loss"].to_numpy()[:4], rtol=1e-8)
    assert got["loss"].iloc[-1] < got["loss"].iloc[0]  # after the failure: a fresh optimizer from the same θ


def test_switching_the_evaluator_in_a_running_session_keeps_the_fit(cluster):
    """change_settings(evaluator=...) moves a session onto the cluster and back; the fit goes on exactly."""
    from paceui.session.settings import SettingsError
    from paceui.session.testing import comparable, tiny_session

    _, backend = cluster
    with tiny_session(n=12) as plain:
        plain.run(iterations=4)
        want = comparable(plain.history)
    with tiny_session(n=12) as s:
        s.run(iterations=2)
        report = s.change_settings(evaluator="dask", scheduler=backend.scheduler).result()
        assert report.kind == "rebuild" and "evaluator" in str(report)
        assert s.fitter.train.evaluator is not None
        s.run(iterations=1)
        s.change_settings(evaluator="numba").result()
        assert getattr(s.fitter.train, "evaluator", None) is None
        s.run(iterations=1)
        got = comparable(s.history)
        with pytest.raises(SettingsError, match="n_workers"):
            s.preview_settings(n_workers=0)
    np.testing.assert_allclose(got["loss"], want["loss"], rtol=1e-10)
