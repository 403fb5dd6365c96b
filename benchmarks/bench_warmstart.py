"""Linear warm start vs the default start of a non-linear fit on Zuo Cu: loss and validation / test MAE
against wall time and iterations, same budgets, the two sides alternated.

Usage: PYTHONPATH=. python benchmarks/bench_warmstart.py [--data DIR] [--minutes 3] [--maxiter 200]
                                                         [--repeats 2] [--kappa 3e-4] [--out FILE.json]

Basis: benchmarks/zuo_basis.py (the recipe's until 2026-12-03: rc 5.5 Å, ChebExpCos, nradmax
[16, 6, 3, 2, 1], lmax [0, 4, 3, 2, 1], 336 functions) with pacemaker's non-linear two-density embedding
FinnisSinclairShiftedScaled [1, 1, 1, 0.5] (ρ₁ + F(ρ₂), F ≈ √ρ₂). Data: Cu_train with the recipe's 10 %
validation split (seed 42), Cu_test for the test errors only; κ = 3e-4 (the recipe's validation choice),
L2 1e-8. Both sides run BFGS (all parameters) for at most ``--maxiter`` iterations and ``--minutes`` of
wall clock each:

* default: pacemaker's start (function coefficients 0, radial coefficients at their δ_nk start);
* warm: ``fit: warm_start: bayesian_ridge``: the linear Bayesian solve of the first density first (its wall
  time is counted in the warm side's clock), then BFGS from there. Its iteration 0 is the plain linear
  Bayesian solution of the same basis, data and κ.

Order default, warm, default, warm, … (``--repeats`` pairs); at iterations 0, 10, 25, 50, 100, 150, 200 and at
the end of the budget the errors are computed (not counted in the clock). Medians over the repeats are
printed with the 1-minute load average at the start and end of each run (2 cores: above 2 means other work
shared the machine).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = (0, 10, 25, 50, 100, 150, 200, 300, 500)


def _mae(loss: Any, theta: np.ndarray, data: Any) -> tuple[float, float]:
    """Energy MAE (meV/atom) and force-component MAE (meV/Å) of θ on ``data``."""
    e, f = loss.predict(theta, data)
    return (float(np.mean(np.abs((e - data.e_ref) / data.n_atoms))) * 1e3,
            float(np.mean(np.abs(f - data.f_ref))) * 1e3)


def one_run(side: str, pot: Any, train: Any, val: Any, test: Any, loss: dict[str, float], warm: str, maxiter: int,
            seconds: float, options: dict[str, Any] | None = None) -> dict[str, Any]:
    from paceui.fit.config import FitConfig
    from paceui.fit.fitter import Fitter

    cfg = FitConfig(loss=loss, optimizer="BFGS", maxiter=maxiter, options=options,
                    warm_start=warm if side == "warm" else None)
    load0 = os.getloadavg()[0]
    t0, excluded = time.perf_counter(), 0.0
    fitter = Fitter(pot, train, cfg)
    rows: list[dict[str, Any]] = []
    last = None
    while True:
        rec = fitter.step()
        wall = time.perf_counter() - t0 - excluded
        if rec is None:  # finished (maxiter, converged): the last iterate, when not recorded yet
            if last is None or (rows and rows[-1]["iteration"] == last.iteration):
                break
            rec, over = last, True
        else:
            over = wall >= seconds
        last = rec
        if rec.iteration in CHECKPOINTS or over:
            t1 = time.perf_counter()
            assert fitter.loss is not None and fitter.theta is not None
            ve, vf = _mae(fitter.loss, fitter.theta, val)
            te, tf = _mae(fitter.loss, fitter.theta, test)
            rows.append({"iteration": rec.iteration, "wall_s": round(wall, 1), "loss": rec.loss, "val_e": ve,
                         "val_f": vf, "test_e": te, "test_f": tf, "n_evals": rec.n_evals})
            print(f"  {side:>7} it {rec.iteration:4d}  {wall:7.1f} s  loss {rec.loss:.4e}  val {ve:.3f}/{vf:.2f}  "
                  f"test {te:.3f}/{tf:.2f}  (load {os.getloadavg()[0]:.1f})", flush=True)
            excluded += time.perf_counter() - t1
        if over:
            break
    ws = fitter.warm_start
    return {"side": side, "rows": rows, "load": [round(load0, 1), round(os.getloadavg()[0], 1)],
            "warm_start_s": round(ws.seconds, 1) if ws is not None else None,
            "stop": fitter.state.stop_message}


def medians(runs: list[dict[str, Any]], side: str) -> list[dict[str, Any]]:
    """Per checkpoint iteration reached by every run of ``side``: the medians of each column; then the
    medians of the runs' last rows (the end of the budget)."""
    mine = [r["rows"] for r in runs if r["side"] == side]
    common = sorted(set.intersection(*[{x["iteration"] for x in rows if x["iteration"] in CHECKPOINTS}
                                       for rows in mine]))
    out = []
    for it in common:
        pick = [next(x for x in rows if x["iteration"] == it) for rows in mine]
        out.append({"at": f"it {it}", **{k: statistics.median(p[k] for p in pick)
                                         for k in ("iteration", "wall_s", "loss", "val_e", "val_f", "test_e",
                                                   "test_f")}})
    last = [rows[-1] for rows in mine]
    out.append({"at": "end", **{k: statistics.median(p[k] for p in last)
                                for k in ("iteration", "wall_s", "loss", "val_e", "val_f", "test_e", "test_f")}})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "zuo"))
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--maxiter", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--kappa", type=float, default=3e-4)
    ap.add_argument("--l2", type=float, default=1e-8, help="fit.loss.L2_coeffs (the recipe's 1e-8)")
    ap.add_argument("--warm", default="linear", help="fit.warm_start of the warm side (linear: ridge λ = L2, "
                    "the minimum of the fit's own loss over the first density; or bayesian_ridge, ard)")
    ap.add_argument("--options", default="", help="fit.options of both sides as JSON, e.g. '{\"scale_init\": true}'")
    ap.add_argument("--train-every", type=int, default=1,
                    help="fit every k-th structure of the training split (validation and test sets complete)")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    from zuo_basis import zuo_input

    from paceui.ace.basis import build_potential
    from paceui.data import prepare_dataset
    from paceui.fit.arrays import fit_arrays

    recipe = zuo_input()
    basis = recipe["potential"]
    basis["embeddings"] = {"ALL": {"npot": "FinnisSinclairShiftedScaled", "fs_parameters": [1, 1, 1, 0.5],
                                   "ndensity": 2}}
    pot = build_potential(basis, seed=recipe.get("seed", 42))
    d = Path(args.data)
    if not (d / "Cu_train.xyz.gz").exists():
        d = ROOT / "assets" / "zuo"
    t0 = time.perf_counter()
    prep = prepare_dataset({"filename": str(d / "Cu_train.xyz.gz"), "test_size": 0.1, "reference_energy": "auto"},
                           elements=pot.elements, cutoff=pot.cutoff, seed=42)
    ref = prep.reference_energy
    tp = prepare_dataset({"filename": str(d / "Cu_test.xyz.gz"), "reference_energy": ref}, elements=pot.elements,
                         cutoff=pot.cutoff)
    if args.train_every > 1:  # every k-th structure, weights normalised again, neighbour lists rebuilt
        from paceui.data.nlcache import build_packed_neighbors
        from paceui.data.weights import normalize_weights

        frame = normalize_weights(prep.train.iloc[::args.train_every].reset_index(drop=True))
        train = fit_arrays(frame, build_packed_neighbors(list(frame["ase_atoms"]), pot.cutoff, pot.elements,
                                                                 progress=False))
    else:
        train = fit_arrays(prep.train, prep.train_neighbors)
    val = fit_arrays(prep.test, prep.test_neighbors)
    test = fit_arrays(tp.train, tp.train_neighbors)
    print(f"{len(pot.functions())} functions, 2 densities; train {train.n_struct} structures "
          f"({len(train.species)} atoms), validation {val.n_struct}, test {test.n_struct}; "
          f"data {time.perf_counter() - t0:.0f} s; κ {args.kappa:g}, L2 {args.l2:g}, warm start {args.warm}; "
          f"budget {args.minutes:g} min or {args.maxiter} iterations per run", flush=True)
    # warm the numba cache (or compile) for both paths on one structure, outside every clock
    from paceui.fit.arrays import slice_structures
    from paceui.fit.config import FitConfig
    from paceui.fit.fitter import Fitter

    Fitter(pot, slice_structures(train, 0, 1), FitConfig(loss={"kappa": args.kappa}, maxiter=1,
                                                         warm_start="bayesian_ridge")).run()
    runs = []
    for rep in range(args.repeats):
        for side in ("default", "warm"):
            print(f"run {rep} {side}:", flush=True)
            runs.append(one_run(side, pot, train, val, test, {"kappa": args.kappa, "L2_coeffs": args.l2}, args.warm,
                                args.maxiter, args.minutes * 60, json.loads(args.options) if args.options else None))
            print(f"  load {runs[-1]['load'][0]}→{runs[-1]['load'][1]}; warm-start solve {runs[-1]['warm_start_s']} s; "
                  f"{runs[-1]['stop']}", flush=True)
    print("\nmedians over the repeats (MAE: energy meV/atom / forces meV/Å):")
    print(f"{'side':>8} {'at':>7} {'iter':>5} {'wall s':>7} {'loss':>11} {'validation':>13} {'test':>13}")
    table = {}
    for side in ("default", "warm"):
        table[side] = medians(runs, side)
        for r in table[side]:
            print(f"{side:>8} {r['at']:>7} {r['iteration']:5.0f} {r['wall_s']:7.1f} {r['loss']:11.4e} "
                  f"{r['val_e']:6.3f}/{r['val_f']:5.2f}  {r['test_e']:6.3f}/{r['test_f']:5.2f}")
    print("loads (1-min average, start→end):", [f"{r['side']} {r['load'][0]}→{r['load'][1]}" for r in runs])
    # the plain linear solutions of the one-density basis on the same training structures (README: recipe,
    # full training split, Bayesian ridge at κ 3e-4: test 0.28 / 6.8)
    from paceui.fit.design import assemble
    from paceui.fit.linear_solve import bayesian_ridge, ridge
    from paceui.fit.loss import ACELoss, LossConfig
    from paceui.fit.warm_start import first_density

    lin = first_density(pot)
    lcfg = LossConfig(kappa=args.kappa, L2_coeffs=args.l2)
    system = assemble(lin, train, lcfg)
    lloss = ACELoss(lin, lcfg)
    linear = {}
    for name, sol in (("bayesian_ridge", bayesian_ridge(system)), (f"ridge λ={args.l2:g}", ridge(system, args.l2))):
        th = system.theta0.copy()
        th[system.cols] = sol.coef
        linear[name] = (*_mae(lloss, th, val), *_mae(lloss, th, test), sol.rss + args.l2 * float(sol.coef @ sol.coef))
        print(f"linear {name}: validation {linear[name][0]:.3f}/{linear[name][1]:.2f}, test {linear[name][2]:.3f}/"
              f"{linear[name][3]:.2f}, fit loss {linear[name][4]:.4e}")
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "runs": runs, "medians": table, "linear": linear},
                                             indent=1))


if __name__ == "__main__":
    main()
