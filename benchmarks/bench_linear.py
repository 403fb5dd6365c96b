"""Linear and Bayesian solves on the Zuo Cu training set with the basis of benchmarks/zuo_basis.py made linear
(one density, F(ρ) = ρ; 336 functions): design assembly + QR + solve time, peak memory and test errors.

Run: PYTHONPATH=. python benchmarks/bench_linear.py [--data DIR] [--kappa K] [--chunk-mb MB]
The non-linear recipe (BFGS, 300 iterations, 15.3 min) reaches test MAE 0.43 meV/atom, 7.5 meV/Å (README).
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "zuo"))
    ap.add_argument("--kappa", type=float, default=0.01)
    ap.add_argument("--chunk-mb", type=float, default=64)
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    from zuo_basis import zuo_input

    from paceui.ace.basis import build_potential
    from paceui.data import prepare_dataset
    from paceui.fit.arrays import fit_arrays
    from paceui.fit.design import assemble
    from paceui.fit.linear_solve import bayesian_ridge, ridge
    from paceui.fit.loss import ACELoss, LossConfig

    recipe = zuo_input()
    basis = recipe["potential"]
    basis["embeddings"] = {"ALL": {"npot": "FinnisSinclairShiftedScaled", "fs_parameters": [1, 1], "ndensity": 1}}
    pot = build_potential(basis, seed=recipe.get("seed", 42))
    d = Path(args.data)
    t0 = time.perf_counter()
    prep = prepare_dataset({"filename": str(d / "Cu_train.xyz.gz"), "test_filename": str(d / "Cu_test.xyz.gz"),
                            "reference_energy": "auto"}, elements=pot.elements, cutoff=pot.cutoff)
    train, test = fit_arrays(prep.train, prep.train_neighbors), fit_arrays(prep.test, prep.test_neighbors)
    t_data = time.perf_counter() - t0
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cfg = LossConfig(kappa=args.kappa, L2_coeffs=1e-8)
    print(f"{len(pot.functions())} functions; train {train.n_struct} structures, {len(train.species)} atoms, "
          f"{len(train.nbr_j)} pairs; data {t_data:.1f} s; RSS before assembly {rss0:.0f} MB")
    for rep in range(args.repeats):  # the first includes numba's cache load (or compilation)
        t0, c0 = time.perf_counter(), time.process_time()
        system = assemble(pot, train, cfg, chunk_bytes=int(args.chunk_mb * 2**20))
        t_asm, c_asm = time.perf_counter() - t0, time.process_time() - c0
        t0 = time.perf_counter()
        sol_r = ridge(system, cfg.L2_coeffs)
        t_r = time.perf_counter() - t0
        t0 = time.perf_counter()
        sol_b = bayesian_ridge(system)
        t_b = time.perf_counter() - t0
        print(f"run {rep}: assembly+QR {t_asm:.2f} s wall, {c_asm:.2f} s CPU (all threads) ({system.n_rows} rows x "
              f"{len(system.cols)} columns, largest chunk {system.chunk_bytes / 2**20:.0f} MB), "
              f"ridge {t_r * 1e3:.0f} ms, "
              f"bayesian ridge {t_b * 1e3:.0f} ms "
              f"({sol_b.iterations} iterations, alpha/beta {sol_b.lam:.3g})")
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {rss1:.0f} MB")
    loss = ACELoss(pot, cfg)
    for name, sol in (("ridge L2=1e-8", sol_r), ("bayesian ridge", sol_b)):
        th = system.theta0.copy()
        th[system.cols] = sol.coef
        for label, data in (("train", train), ("test", test)):
            e, f = loss.predict(th, data)
            de = (e - data.e_ref) / data.n_atoms
            df = f - data.f_ref
            print(f"{name:>15} {label}: energy MAE {np.mean(np.abs(de)) * 1e3:.2f} meV/atom (RMSE "
                  f"{np.sqrt(np.mean(de * de)) * 1e3:.2f}), force MAE {np.mean(np.abs(df)) * 1e3:.1f} meV/Å (RMSE "
                  f"{np.sqrt(np.mean(df * df)) * 1e3:.1f})")


if __name__ == "__main__":
    main()
