"""Time per loss+gradient evaluation on Zuo Cu with the in-process engine and on a Dask LocalCluster, and
per-worker memory as the dataset grows with the workers (structures replicated).

Usage: python benchmarks/bench_dask.py [--repeat 3] [--copies 1] [--scales 1,2,4]
Prints: seconds per evaluation (in process with all numba threads; 2 Dask workers × 1 thread) and the
overhead; then one row per scale k (k workers, k·copies replicas of the Zuo training set, the workers
build their neighbour lists): structures, atoms, pairs, shard data per worker (MB), worker RSS
(MB, max over workers, after loading and after an evaluation), client RSS (MB) and seconds per evaluation.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numba
import numpy as np
import pandas as pd
import psutil

ROOT = Path(__file__).resolve().parents[1]
ZUO = ROOT / "assets" / "zuo"


def zuo() -> tuple:
    from zuo_basis import zuo_input

    from paceui.data import prepare_dataset
    from paceui.fit.arrays import fit_arrays
    from paceui.fit.config import InputConfig
    from paceui.fit.target import build_target

    pot, _ = build_target(InputConfig.from_dict(zuo_input()))
    prep = prepare_dataset({"filename": str(ZUO / "Cu_train.xyz.gz"), "reference_energy": "auto"},
                           elements=pot.elements, cutoff=pot.cutoff, use_cache=False)
    return pot, prep, fit_arrays(prep.train, prep.train_neighbors)


def per_eval(fn, repeat: int) -> float:
    fn()  # warm-up (numba compilation / cache load, first transfer of the model)
    t = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t) / repeat


def cluster(n: int):
    from distributed import LocalCluster

    return LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                        scheduler_kwargs={"dashboard": False}, silence_logs=logging.ERROR)


def small_overhead(repeat: int) -> None:
    """The fixed cost of a Dask evaluation: 30 Zuo structures, the 14-function basis of the session tests."""
    import tempfile

    from paceui.ace.basis import build_potential
    from paceui.data import prepare_dataset
    from paceui.data.io import save_dataframe
    from paceui.fit.arrays import fit_arrays
    from paceui.fit.config import BackendConfig
    from paceui.fit.dask.evaluator import DaskEvaluator
    from paceui.fit.loss import ACELoss, LossConfig
    from paceui.session.testing import TINY_BASIS, zuo_frame

    pot = build_potential(TINY_BASIS, seed=1)
    with tempfile.TemporaryDirectory() as tmp:
        save_dataframe(zuo_frame(30), Path(tmp) / "d.pckl.gzip")
        prep = prepare_dataset({"filename": str(Path(tmp) / "d.pckl.gzip"), "reference_energy": "auto"},
                               elements=pot.elements, cutoff=pot.cutoff, use_cache=False)
    train, cfg = fit_arrays(prep.train, prep.train_neighbors), LossConfig(kappa=0.3, L2_coeffs=1e-8)
    local = ACELoss(pot, cfg)
    theta = local.pmap.get(pot)
    t_local = per_eval(lambda: local(theta, train), repeat)
    lc = cluster(2)
    try:
        ev = DaskEvaluator.from_arrays(BackendConfig(evaluator="dask", scheduler=lc.scheduler_address), train, None)
        dl = ev.loss(pot, cfg)
        t_dask = per_eval(lambda: dl(theta, ev.train), repeat)
        ev.close()
    finally:
        lc.close()
    print(f"small (30 structures, {len(train.species)} atoms, 14 functions): in process {1e3 * t_local:.1f} ms, "
          f"Dask 2 workers {1e3 * t_dask:.1f} ms per evaluation: fixed overhead ~{1e3 * (t_dask - t_local):.0f} ms")


def main() -> None:
    from paceui.fit.config import BackendConfig
    from paceui.fit.dask.evaluator import DaskEvaluator
    from paceui.fit.loss import ACELoss, LossConfig

    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--copies", type=int, default=1, help="replicas of the training set per worker")
    ap.add_argument("--scales", default="1,2,4")
    args = ap.parse_args()
    pot, prep, train = zuo()
    cfg = LossConfig(kappa=0.01, L1_coeffs=1e-8, L2_coeffs=1e-8, w0_rad=1e-8, w1_rad=1e-8, w2_rad=1e-8)
    local = ACELoss(pot, cfg)
    theta = local.pmap.get(pot)
    print(f"Zuo Cu train: {train.n_struct} structures, {len(train.species)} atoms, {len(train.nbr_j)} pairs; "
          f"{len(pot.functions())} functions, {local.pmap.size} parameters; {psutil.cpu_count()} cores")
    t_local = per_eval(lambda: local(theta, train), args.repeat)
    print(f"in process ({numba.get_num_threads()} numba threads): {t_local:.3f} s per evaluation")
    lc = cluster(2)
    try:
        ev = DaskEvaluator.from_arrays(BackendConfig(evaluator="dask", scheduler=lc.scheduler_address), train, None)
        dl = ev.loss(pot, cfg)
        t_dask = per_eval(lambda: dl(theta, ev.train), args.repeat)
        got, want = dl(theta, ev.train), local(theta, train)
        shard = max(got.extra["shard_seconds"])
        dg = float(np.max(np.abs(got.grad - want.grad)) / np.max(np.abs(want.grad)))
        print(f"whole Zuo Cu, 2 workers vs in process: loss relative difference "
              f"{abs(got.loss - want.loss) / abs(want.loss):.1e}, gradient (max, relative) {dg:.1e}")
        print(f"Dask, 2 workers x 1 thread: {t_dask:.3f} s per evaluation (slowest shard {shard:.3f} s); "
              f"overhead vs in process {t_dask - t_local:+.3f} s ({t_dask / t_local:.2f}x)")
        ev.close()
    finally:
        lc.close()

    small_overhead(args.repeat * 10)
    rows = []
    for k in (int(s) for s in args.scales.split(",")):
        frame = pd.concat([prep.train] * (k * args.copies), ignore_index=True)
        frame["w_energy"] = frame["w_energy"] / (k * args.copies)
        frame["w_forces"] = [np.asarray(w) / (k * args.copies) for w in frame["w_forces"]]
        lc = cluster(k)
        try:
            be = BackendConfig(evaluator="dask", scheduler=lc.scheduler_address)
            ev = DaskEvaluator.from_frames(be, frame, None, pot.cutoff, prep.elements)
            info = ev.train.info
            rss_load = max(ev.worker_memory().values())
            dl = ev.loss(pot, cfg)
            t = per_eval(lambda: dl(theta, ev.train), max(1, args.repeat // 2))  # noqa: B023 (called here)
            rows.append({"workers": k, "structures": ev.train.n_struct, "atoms": sum(i["n_atoms"] for i in info),
                         "pairs": sum(i["n_pairs"] for i in info),
                         "shard_MB_per_worker": max(i["nbytes"] for i in info) / 2**20,
                         "worker_RSS_MB_loaded": rss_load / 2**20,
                         "worker_RSS_MB_after_eval": max(ev.worker_memory().values()) / 2**20,
                         "client_RSS_MB": psutil.Process().memory_info().rss / 2**20, "s_per_eval": t})
            ev.close()
        finally:
            lc.close()
    print("\nScaling (dataset grows with the workers; the workers build their neighbour lists):")
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.1f}" if v > 1 else f"{v:.3f}"))


if __name__ == "__main__":
    main()
