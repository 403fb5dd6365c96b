"""The recipe's linear stage with one choice changed, on the validation split only: the rows of
``assets/zuo/README.md`` ("How the settings were chosen").

Usage: python benchmarks/bench_recipe_variant.py --element Ni [--rc 5.3] [--nradmax 16,8,4,2,1]
                                                 [--lmax 0,6,4,2,1] [--kappa-grid 1e-5,3e-5,1e-4]
                                                 [--data DIR] [--keep DIR]
       python benchmarks/bench_recipe_variant.py --train ../shared/reference/datasets/ethanol.pckl.gzip [--rc 4]
                                                 [--per-element 1500]

The recipe of ``paceui.fit.recipe`` for the element's training file (or any training file that ``paceui fit``
reads, ``--train``; ``test_size: 0.1``, seed 42: the same validation split as ``bench_zuo.py``), with the
cutoff, the basis (nradmax / lmax by order, any number of orders) and the size per element (several
elements) replaced where given; ``paceui fit`` runs it (``bench_zuo._stage``, without a time limit) and the
validation energy MAE (meV/atom) and force MAE (meV/Å) of every κ of the grid are printed, with the wall time
and the load. The test file is never read.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_zuo import _find, _stage  # noqa: E402


def _ints(text: str | None) -> tuple[int, ...] | None:
    return tuple(int(x) for x in text.split(",")) if text else None


def main() -> None:
    from paceui.data.io import load_dataframe
    from paceui.fit.recipe import input_dict, n_functions, recipe_for, summarize

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--element", default=None, help="a Zuo element (its X_train.xyz.gz in --data)")
    ap.add_argument("--train", default=None, help="any training file instead of --element")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "zuo"))
    ap.add_argument("--rc", type=float, default=None, help="cutoff, Å (default: the recipe's)")
    ap.add_argument("--nradmax", default=None, help="nradmax_by_orders, e.g. 16,8,4,2,1 (default: the recipe's)")
    ap.add_argument("--lmax", default=None, help="lmax_by_orders, e.g. 0,6,4,2,1 (default: the recipe's)")
    ap.add_argument("--kappa-grid", dest="kappa_grid", default=None,
                    help="the κ grid, e.g. 1e-5,3e-5,1e-4 (default: the recipe's)")
    ap.add_argument("--per-element", dest="per_element", type=int, default=None,
                    help="number_of_functions_per_element (several elements; default: the recipe's)")
    ap.add_argument("--keep", default=None, help="copy the run's folder here")
    args = ap.parse_args()
    if not (args.element or args.train):
        sys.exit("give --element or --train")
    train = Path(args.train) if args.train else _find(Path(args.data), args.element, "train")
    if train is None or not train.exists():
        sys.exit(f"{args.train or args.element + '_train.xyz.gz'} not found (--data {args.data}, assets/zuo)")
    label = args.element or train.name.split(".")[0]
    summary = summarize(list(load_dataframe(train)["ase_atoms"]))
    recipe = recipe_for(summary)
    nrad, lmax = _ints(args.nradmax) or recipe.nradmax_by_orders, _ints(args.lmax) or recipe.lmax_by_orders
    if len(nrad) != len(lmax):
        sys.exit(f"--nradmax has {len(nrad)} orders, --lmax {len(lmax)}: give both with the same count")
    recipe = replace(recipe, cutoff=args.rc or recipe.cutoff, nradmax_by_orders=nrad, lmax_by_orders=lmax)
    if args.per_element:
        recipe = replace(recipe, functions_per_element=args.per_element)
    if args.kappa_grid:
        recipe = replace(recipe, kappa_grid=tuple(float(k) for k in args.kappa_grid.split(",")))
    wd = Path(tempfile.mkdtemp(prefix=f"variant-{label}-"))
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    load0, t0 = os.getloadavg()[0], time.perf_counter()
    res = _stage("linear", input_dict(recipe, summary.elements, train.name, test_size=0.1), wd, train, env, math.inf)
    wall, load1 = time.perf_counter() - t0, os.getloadavg()[0]
    grid = re.findall(r"chosen on the validation set from \{(.*?)\}", res["stop"])
    print(f"{label} rc {recipe.cutoff:g} Å, nradmax {list(nrad)}, lmax {list(lmax)}, "
          f"{recipe.functions_per_element or n_functions(nrad, lmax)} functions per element; wall {wall:.0f} s, "
          f"load {load0:.1f}→{load1:.1f}")
    if not grid:
        print(res["out"][-3000:])
        sys.exit(1)
    print("validation MAE by κ (energy meV/atom, forces meV/Å):")
    for k, e, f in re.findall(r"([0-9.e+-]+): \(([0-9.]+), ([0-9.]+)\)", grid[0]):
        print(f"  κ {float(k):<8g} {float(e):7.3f} {float(f):8.2f}")
    if args.keep:
        shutil.copytree(wd / "linear", Path(args.keep), dirs_exist_ok=True)
    shutil.rmtree(wd, ignore_errors=True)


if __name__ == "__main__":
    main()
