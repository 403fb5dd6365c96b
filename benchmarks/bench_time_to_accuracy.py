"""Time to accuracy on Zuo Cu: pacemaker (TensorFlow CPU) and paceui, each given the same wall-clock budget.

Usage: python benchmarks/bench_time_to_accuracy.py [--minutes 10] [--refenv /tmp/refenv] [--data DIR]
                                                    [--skip-pacemaker] [--pacemaker-rung K] [--keep DIR]

Both get ``--minutes`` of wall clock in all (start-up, data and neighbour lists, compilation, fit), one after
the other on the same machine, then are stopped (SIGTERM) if still running, and the latest potential they
wrote is evaluated on the test set (Cu_test, 31 structures) by the same code (paceui's evaluator, equal to
pyace's to ~1e-12), with the same explicit reference energy.

* paceui: its documented recipe (``paceui.fit.recipe``, as ``benchmarks/bench_zuo.py`` runs it: cutoff from
  the number density, 10 % validation split, BFGS for the iterations the budget allows).
* pacemaker 0.4.0rc1 (``/tmp/refenv/bin/pacemaker``, ``evaluator: tensorpot``, ``batch_size`` 20: at its
  template's 100 it took > 24 GB on this basis and was killed on the 24 GB machine): the non-linear form of
  the same basis (FinnisSinclairShiftedScaled ρ₁ + √ρ₂, the embedding of pacemaker's template), the
  recipe's cutoff, functions and κ, BFGS, maxiter 2000, the full training set (pacemaker's template itself,
  700 functions per element at rc 7 Å, takes tens of seconds per evaluation here, too slow for minutes);
  its ``interim_potential_0.yaml`` is taken when the budget ends it. ``--pacemaker-rung K`` gives it rung K of
  ``paceui.fit.recipe.BASIS_LADDER`` instead (e.g. 1: 894 functions, at which one of its evaluations of Zuo Cu
  takes ~27 s on the idle 2-core machine; the recipe's own rung has 3106).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_zuo import TARGET, _find, errors, fit_with_budget, run  # noqa: E402


def reference_energy(train: Path) -> dict[str, float]:
    """paceui's ``auto`` reference energy of a one-element training set as one number per element
    (the shift folded in), a form pacemaker reads as well."""
    from paceui.data import prepare_dataset

    prep = prepare_dataset({"filename": str(train), "reference_energy": "auto"})
    ref = dict(prep.reference_energy or {})
    shift = float(ref.pop("shift", 0.0))
    if len(ref) != 1:
        raise ValueError(f"{train}: one element expected, got {sorted(ref)}")
    return {el: float(e) - shift for el, e in ref.items()}


def run_pacemaker(refenv: Path, train: Path, test: Path, minutes: float, keep: Path | None,
                  batch_size: int = 20, rung: int | None = None) -> dict:
    from dataclasses import replace

    import ase.io

    from paceui.fit.recipe import BASIS_LADDER, input_dict, n_functions, recipe_for, summarize

    t0 = time.perf_counter()
    load0 = os.getloadavg()[0]
    summary = summarize(ase.io.read(train, index=":"))
    recipe = recipe_for(summary, minutes=minutes)
    if rung is not None:  # a smaller basis of the ladder than the recipe's own
        nrad, lmax = BASIS_LADDER[rung].shape
        recipe = replace(recipe, nradmax_by_orders=nrad, lmax_by_orders=lmax)
    print(f"pacemaker basis: nradmax {list(recipe.nradmax_by_orders)}, lmax {list(recipe.lmax_by_orders)}, "
          f"{n_functions(recipe.nradmax_by_orders, recipe.lmax_by_orders)} functions, rho1 + sqrt(rho2)", flush=True)
    ref = reference_energy(train)
    wd = Path(tempfile.mkdtemp(prefix="tta-pacemaker-"))
    from paceui.data.io import load_files, save_dataframe

    df = load_files(str(train))  # pacemaker 0.4 reads pandas pickles
    save_dataframe(df[["ase_atoms", "energy", "forces"]], wd / "Cu_train.pckl.gzip")
    inp = input_dict(recipe, summary.elements, "Cu_train.pckl.gzip", stage="refine", maxiter=2000)
    inp["potential"]["embeddings"] = {"ALL": {"npot": "FinnisSinclairShiftedScaled", "fs_parameters": [1, 1, 1, 0.5],
                                              "ndensity": 2}}
    inp["data"]["reference_energy"] = ref
    inp["backend"] = {"evaluator": "tensorpot", "batch_size": batch_size, "display_step": 50}
    (wd / "input.yaml").write_text(yaml.safe_dump(inp, sort_keys=False))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "-1"}
    stopped, out = fit_with_budget([str(refenv / "bin" / "pacemaker"), "input.yaml", "--no-predict"], wd, env,
                                   minutes * 60.0 - (time.perf_counter() - t0))
    wall = time.perf_counter() - t0
    pot = wd / "output_potential.yaml"
    if stopped or not pot.exists():
        pot = wd / "interim_potential_0.yaml"
    log = (wd / "log.txt").read_text() if (wd / "log.txt").exists() else out
    its = [int(m) for m in re.findall(r"Iteration\s+#(\d+)", log)]
    if not pot.exists():
        if not stopped:  # e.g. killed by the kernel's OOM killer: a row that says so, and paceui still runs
            print(f"pacemaker ended without a potential; its last output:\n{out[-2000:]}", flush=True)
            return {"who": "pacemaker", "minutes": wall / 60, "load": (load0, os.getloadavg()[0]),
                    "failed": f"ended after {wall / 60:.1f} min without a potential (killed? out of memory at "
                              f"batch_size {batch_size}? see dmesg)"}
        first = re.search(r"(\d\d:\d\d:\d\d),\d+ - pyace.metrics_aggregator - INFO - Initial state", log)
        return {"who": "pacemaker", "minutes": wall / 60, "load": (load0, os.getloadavg()[0]),
                "failed": f"no potential within {minutes:g} min" + (f" (initial evaluation logged at "
                                                                    f"{first.group(1)})" if first else "")}
    res = {"who": "pacemaker", "minutes": wall / 60, "iterations": max(its) if its else 0, "stopped": stopped,
           "load": (load0, os.getloadavg()[0]), "test": errors(pot, {"filename": str(test), "reference_energy": ref})
           ["train"]}
    if keep:
        shutil.copytree(wd, keep / "pacemaker", dirs_exist_ok=True)
    shutil.rmtree(wd, ignore_errors=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0, help="wall-clock budget of each tool (default 10)")
    ap.add_argument("--refenv", default=os.environ.get("PACEUI_REFENV", "/tmp/refenv"))
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "zuo"))
    ap.add_argument("--skip-pacemaker", action="store_true")
    ap.add_argument("--pacemaker-batch-size", type=int, default=20,
                    help="structures per TensorFlow batch (default 20: at 100 the 894-function basis took > 24 GB "
                         "on Zuo Cu and was killed)")
    ap.add_argument("--pacemaker-rung", type=int, default=None,
                    help="index into paceui.fit.recipe.BASIS_LADDER of pacemaker's basis (default: the recipe's "
                         "own; 0 = 336, 1 = 894 functions per element)")
    ap.add_argument("--keep", default=None, help="copy each run's folder here")
    args = ap.parse_args()
    keep = Path(args.keep) if args.keep else None
    train, test = _find(Path(args.data), "Cu", "train"), _find(Path(args.data), "Cu", "test")
    if train is None or test is None:
        sys.exit("Cu_train/Cu_test not found")
    rows = []
    if not args.skip_pacemaker and (Path(args.refenv) / "bin" / "pacemaker").exists():
        rows.append(run_pacemaker(Path(args.refenv), train, test, args.minutes, keep, args.pacemaker_batch_size,
                                 args.pacemaker_rung))
    elif not args.skip_pacemaker:
        print(f"pacemaker not found in {args.refenv}: only paceui runs", flush=True)
    r = run("Cu", Path(args.data), args.minutes, None, None, keep)
    rows.append({"who": "paceui", **r})
    te, tf = TARGET["Cu"]
    print(f"Zuo Cu, {args.minutes:g} min of wall clock each; test set MAE (RMSE); target (better of GAP/MTP) "
          f"{te} meV/atom, {tf * 1e3:.0f} meV/Å; load = 1-min load average start→end (2 cores)")
    print(f"{'tool':10s} {'minutes':>7s} {'iter':>5s} {'load':>9s} {'E meV/atom':>14s} {'F meV/Å':>14s}")
    for r in rows:
        if "failed" in r:
            print(f"{r['who']:10s} {r['minutes']:7.1f}     - {r['load'][0]:4.1f}→{r['load'][1]:<4.1f} {r['failed']}")
            continue
        t = r["test"]
        print(f"{r['who']:10s} {r['minutes']:7.1f} {r['iterations']:5d} {r['load'][0]:4.1f}→{r['load'][1]:<4.1f} "
              f"{t['e_mae']:6.3f} ({t['e_rmse']:5.3f}) {t['f_mae']:6.2f} ({t['f_rmse']:5.2f})"
              + ("  stopped at the budget" if r["stopped"] else ""))


if __name__ == "__main__":
    main()
