"""The Dask backend: loss, gradient, metrics and fits on 1, 2 and 4 local worker processes equal the
in-process engine (Cu-I example and Zuo Cu); configuration keys."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from paceui.fit.config import BackendConfig, FitConfig, InputConfig, InputError
from paceui.fit.evaluation import fit_metrics, resolve_kappa
from paceui.fit.fitter import Fitter
from paceui.fit.loss import ACELoss, LossConfig
from tests.test_dask_helpers import RTOL, assert_metrics_equal, assert_same, cu_i_data, zuo_data

distributed = pytest.importorskip("distributed")

LOSS = LossConfig(kappa=0.3, L1_coeffs=1e-5, L2_coeffs=1e-6, w0_rad=1e-4, w1_rad=1e-4, w2_rad=1e-4, w_orth=1e-3)


@pytest.fixture(scope="module")
def cluster():
    """Four worker processes (one thread each) shared by the tests of this module."""
    lc = distributed.LocalCluster(n_workers=4, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  scheduler_kwargs={"dashboard": False}, silence_logs=logging.ERROR)
    client = distributed.Client(lc)
    yield lc, sorted(client.scheduler_info()["workers"])
    client.close()
    lc.close()


def _backend(lc) -> BackendConfig:
    return BackendConfig(evaluator="dask", scheduler=lc.scheduler_address)


@pytest.fixture(scope="module", params=["zuo", "cu_i"])
def dataset(request, tmp_path_factory):
    return (zuo_data if request.param == "zuo" else cu_i_data)(tmp_path_factory.mktemp(request.param))


@pytest.mark.parametrize("n_workers", [1, 2, 4])
def test_loss_gradient_and_metrics_equal_the_in_process_engine(cluster, dataset, n_workers, monkeypatch):
    from paceui.fit.dask.evaluator import DaskEvaluator

    lc, workers = cluster
    pot, train, test, _ = dataset
    local = ACELoss(pot, LOSS)
    theta = local.pmap.get(pot) * (1 + np.random.default_rng(3).normal(0, 0.05, local.pmap.size))
    ev = DaskEvaluator.from_arrays(_backend(lc), train, test, workers=workers[:n_workers])
    try:
        assert len(ev.train.futures) == min(n_workers, train.n_struct)
        held = {w for w, keys in ev.client.has_what().items() for k in keys if str(k).startswith("paceui-shard")}
        assert held <= set(workers[:n_workers]) and len(held) == len(ev.train.futures)  # one shard per worker
        dl = ev.loss(pot, LOSS)
        if n_workers == 2:  # θ broadcast once per evaluation instead of sent with each task: the same
            monkeypatch.setattr("paceui.fit.dask.evaluator.SCATTER_BYTES", 0)
        for grad in (True, False):
            for arrays, handle in ((train, ev.train), (test, ev.test)):
                ref, got = local(theta, arrays, grad=grad), dl(theta, handle, grad=grad)
                assert_same(got.loss, ref.loss)
                for k, v in ref.parts.items():
                    assert_same(got.parts[k], v, k)
                np.testing.assert_allclose(got.e_pred, ref.e_pred, rtol=RTOL)
                if grad:
                    assert_same(got.grad, ref.grad, "gradient")
                nf, nc = len(pot.functions()), local.pmap.size
                assert_metrics_equal(fit_metrics(got, handle, LOSS.kappa, nf, nc),
                                     fit_metrics(ref, arrays, LOSS.kappa, nf, nc))
    finally:
        ev.close()
    assert not ev.folder.exists()  # the temporary shard files are removed


def test_workers_building_neighbour_lists_give_the_same_loss(cluster, tmp_path):
    """Shards made of structures (the workers build the neighbour lists) equal packed-array shards."""
    from paceui.fit.dask.evaluator import DaskEvaluator

    lc, workers = cluster
    pot, train, test, prepared = zuo_data(tmp_path)
    local = ACELoss(pot, LOSS)
    theta = local.pmap.get(pot)
    ev = DaskEvaluator.from_frames(_backend(lc), prepared.train, prepared.test, pot.cutoff, prepared.elements,
                                   workers=workers[:2])
    try:
        assert ev.train.source is None and sum(i["n_pairs"] for i in ev.train.info) == len(train.nbr_j)
        got, ref = ev.loss(pot, LOSS)(theta, ev.train), local(theta, train)
        assert_same(got.loss, ref.loss)
        assert_same(got.grad, ref.grad, "gradient")
        assert_same(resolve_kappa("auto", ev.train), resolve_kappa("auto", train), "kappa auto")
    finally:
        ev.close()


def _fit(pot, train, test, backend: BackendConfig | None, **fit):
    cfg = FitConfig(loss={"kappa": 0.3, "L2_coeffs": 1e-8, "w0_rad": 1e-6}, optimizer="BFGS", **fit)
    f = Fitter(pot, train, cfg, test, backend=backend, seed=7)
    try:
        f.run()
        return f.loss.pmap.get(f.potential()), f.state
    finally:
        f.close()


@pytest.fixture(scope="module")
def zuo(tmp_path_factory):
    return zuo_data(tmp_path_factory.mktemp("zuo_fit"))


@pytest.mark.parametrize("fit", [{"maxiter": 20}, {"maxiter": 7, "ladder_step": 5}], ids=["plain", "ladder"])
def test_fit_gives_the_same_parameters(cluster, zuo, fit):
    lc, _ = cluster
    pot, train, test, _ = zuo
    ref_theta, ref = _fit(pot, train, test, None, **fit)
    theta, st = _fit(pot, train, test, _backend(lc), **fit)
    assert st.stop_reason == ref.stop_reason and len(st.history) == len(ref.history) >= 20
    assert st.ladder_step == ref.ladder_step and st.ladder_step >= 2 * ("ladder_step" in fit)
    assert_same(theta, ref_theta, "parameters")
    # the same θ gives the same metrics to 1e-10 (first row); later iterates agree to rounding, which the
    # errors (small differences of large energies) amplify: those to 1e-8
    for i, (a, b) in enumerate(zip(st.history, ref.history)):
        for k in ("loss", "rmse_epa", "rmse_f_comp", "low_mae_f_comp", "max_abs_f", "test_loss", "test_rmse_f"):
            if k in b:
                np.testing.assert_allclose(a[k], b[k], rtol=1e-8 if i else RTOL, err_msg=f"{k} of row {i}")


def test_cu_i_fit_agrees_as_closely_as_the_in_process_engine_with_itself(cluster, tmp_path, monkeypatch):
    """On Cu-I, 20 BFGS iterations amplify rounding: the in-process engine ends ~1e-4 apart from itself when only
    the order of its sums changes (1 vs all numba threads; one chunk vs a chunk per structure, which is the
    change available under NUMBA_NUM_THREADS=1). The Dask fit must be as close to the in-process one as that
    (and equal at start)."""
    import numba

    from paceui.fit import loss as loss_module

    lc, _ = cluster
    pot, train, test, _ = cu_i_data(tmp_path)
    runs, threads = [], numba.get_num_threads()
    try:
        for n in (1, threads):
            numba.set_num_threads(n)
            runs.append(_fit(pot, train, test, None, maxiter=20))
    finally:
        numba.set_num_threads(threads)
    with monkeypatch.context() as m:
        m.setattr(loss_module, "CHUNK_BYTES", 1)  # every structure its own chunk: another summation order
        runs.append(_fit(pot, train, test, None, maxiter=20))
    theta, st = _fit(pot, train, test, _backend(lc), maxiter=20)
    assert_same(st.history[0]["loss"], runs[1][1].history[0]["loss"], "initial loss")
    scale = np.max(np.abs(runs[1][0]))
    spread = max(np.max(np.abs(r[0] - runs[1][0])) for r in runs) / scale
    err = np.max(np.abs(theta - runs[1][0])) / scale
    assert len(st.history) == len(runs[1][1].history) and err <= max(1e3 * spread, 1e-10), (err, spread)


def test_backend_keys_are_validated():
    base = {"cutoff": 5, "potential": {"elements": ["Cu"]}, "data": "x"}
    cfg = InputConfig.from_dict({**base, "backend": {"evaluator": "dask", "n_workers": 3, "threads_per_worker": 2}})
    assert (cfg.backend.scheduler, cfg.backend.n_workers, cfg.backend.threads_per_worker) == ("local", 3, 2)
    assert InputConfig.from_dict({**base, "backend": {"evaluator": "tensorpot"}}).backend.evaluator == "numba"
    addr = InputConfig.from_dict({**base, "backend": {"evaluator": "dask", "scheduler": "tcp://10.0.0.1:8786"}})
    assert addr.backend.scheduler == "tcp://10.0.0.1:8786" and addr.backend.shard_dir is None
    for bad, key in (({"n_workers": 0}, "backend.n_workers"), ({"threads_per_worker": 1.5}, "threads_per_worker"),
                     ({"scheduler": 5}, "backend.scheduler"), ({"evaluator": "spark"}, "backend.evaluator"),
                     ({"shards": 2}, "unknown key .shards.")):
        with pytest.raises(InputError, match=key):
            InputConfig.from_dict({**base, "backend": {"evaluator": "dask", **bad}}, source="in.yaml")


def test_preparing_on_the_workers_gives_the_frames_of_prepare_dataset(cluster, tmp_path):
    """The workers find the structures with isolated atoms the client would (one is planted), and the
    frames, weights and pair counts are those of prepare_dataset."""
    from ase import Atoms

    from paceui.data import prepare_dataset
    from paceui.data.io import save_dataframe
    from paceui.fit.dask.prepare import prepare_on_workers
    from paceui.session.testing import zuo_frame

    lc, _ = cluster
    frame = zuo_frame(16)
    frame.at[frame.index[3], "ase_atoms"] = Atoms("Cu2", positions=[[0, 0, 0], [6, 0, 0]], cell=[20] * 3, pbc=True)
    frame.at[frame.index[3], "forces"] = np.zeros((2, 3))
    save_dataframe(frame, tmp_path / "d.pckl.gzip")
    data = {"filename": str(tmp_path / "d.pckl.gzip"), "test_size": 0.25, "reference_energy": "auto"}
    weighting = {"type": "EnergyBasedWeightingPolicy", "DElow": 0.5, "DEup": 10.0, "seed": 2}
    want = prepare_dataset(data, elements=["Cu"], cutoff=4.5, weighting=weighting, seed=5, use_cache=False)
    with distributed.Client(lc.scheduler_address) as client:
        got, pairs = prepare_on_workers(client, data, ["Cu"], 4.5, weighting, seed=5)
    assert got.train_neighbors is None and any("isolated" in r.reason for r in want.dropped)
    assert [(r.name, r.reason) for r in got.dropped] == [(r.name, r.reason) for r in want.dropped]
    assert got.reference_energy == want.reference_energy
    for g, w, packed, name in ((got.train, want.train, want.train_neighbors, "train"),
                               (got.test, want.test, want.test_neighbors, "test")):
        assert list(g.index) == list(w.index)
        for col in ("energy_corrected", "w_energy"):
            np.testing.assert_array_equal(g[col], w[col])
        np.testing.assert_array_equal(np.concatenate(list(g["w_forces"])), np.concatenate(list(w["w_forces"])))
        np.testing.assert_array_equal(pairs[name], np.diff(packed.nbr_offsets[packed.atom_offsets]))


def test_paceui_fit_on_dask_writes_the_same_results(cluster, tmp_path):
    import shutil

    from paceui.ace.yaml_io import load_potential
    from paceui.data.io import load_dataframe, save_dataframe
    from paceui.fit.runner import run_fit
    from paceui.session.testing import TINY_BASIS, zuo_frame

    lc, _ = cluster
    save_dataframe(zuo_frame(20), tmp_path / "data.pckl.gzip")
    import yaml

    doc = {"cutoff": 4.5, "seed": 1, "potential": TINY_BASIS, "fit": {"loss": {"kappa": 0.3}, "maxiter": 5},
           "data": {"filename": "data.pckl.gzip", "reference_energy": "auto", "test_size": 4}}
    runs = {}
    for name, backend in (("numba", {}), ("dask", {"evaluator": "dask", "scheduler": lc.scheduler_address})):
        wd = tmp_path / name
        wd.mkdir()
        shutil.copy(tmp_path / "data.pckl.gzip", wd)
        (wd / "input.yaml").write_text(yaml.safe_dump({**doc, "backend": backend}))
        runs[name] = run_fit(wd / "input.yaml", workdir=wd)
    a, b = (load_potential(tmp_path / n / "output_potential.yaml") for n in ("numba", "dask"))
    loss = ACELoss(a, LossConfig())
    assert_same(loss.pmap.get(b), loss.pmap.get(a), "output potential")
    assert runs["dask"].prepared.train_neighbors is None  # the client never built neighbour lists
    for split in ("train", "test"):
        pa, pb = (load_dataframe(tmp_path / n / f"{split}_pred.pckl.gzip") for n in ("numba", "dask"))
        assert_same(pb["energy_pred"].to_numpy(), pa["energy_pred"].to_numpy(), f"{split} energies")
        assert_same(np.concatenate(list(pb["forces_pred"])), np.concatenate(list(pa["forces_pred"])), "forces")
        np.testing.assert_array_equal(pb["nn_min"], pa["nn_min"])
