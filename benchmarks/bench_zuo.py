"""The Zuo et al. (2020) benchmark with paceui's recipe (assets/zuo/input.yaml): wall time and test errors.

Usage: python benchmarks/bench_zuo.py [--elements Cu,Ni,Li,Si] [--data DIR] [--threads N] [--maxiter N]
For each element the recipe is copied with "Cu" replaced by the element in `elements` and in the data
file names (as its header says), `paceui fit` runs it in a temporary folder, and the test-set errors of
the final potential are read from test_pred.pckl.gzip. Data: assets/zuo has Cu; the other elements come
from --data (default ../shared/zuo beside the checkout). Published test MAE (Zuo et al. 2020, Table):
GAP 0.46 / MTP 0.41 meV/atom and 0.01 eV/Å for Cu.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def run(element: str, data_dir: Path, threads: int | None, maxiter: int | None, keep: Path | None) -> dict:
    recipe = (ROOT / "assets" / "zuo" / "input.yaml").read_text()
    text = recipe.replace("elements: [Cu]", f"elements: [{element}]").replace("Cu_train", f"{element}_train")
    text = text.replace("Cu_test", f"{element}_test")
    if maxiter:
        text = re.sub(r"maxiter: \d+", f"maxiter: {maxiter}", text)
    wd = Path(tempfile.mkdtemp(prefix=f"zuo-{element}-"))
    for part in ("train", "test"):
        src = data_dir / f"{element}_{part}.xyz.gz"
        if not src.exists():
            src = ROOT / "assets" / "zuo" / f"{element}_{part}.xyz.gz"
        shutil.copy(src, wd / src.name)
    (wd / "input.yaml").write_text(text)
    env = dict(os.environ)
    if threads:
        env["NUMBA_NUM_THREADS"] = str(threads)
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "paceui.cli", "fit", "input.yaml"], cwd=wd, env=env,
                         capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if out.returncode:
        raise RuntimeError(f"{element}: paceui fit failed:\n{out.stderr[-3000:]}")
    from paceui.data.io import load_dataframe

    df = load_dataframe(wd / "test_pred.pckl.gzip")
    nat = df["NUMBER_OF_ATOMS"].to_numpy(float)
    de = (df["energy_pred"].to_numpy(float) - df["energy_corrected"].to_numpy(float)) / nat * 1e3
    df_ = np.concatenate([np.asarray(p) - np.asarray(r) for p, r in zip(df["forces_pred"], df["forces"])]) * 1e3
    res = {"element": element, "minutes": wall / 60, "e_mae": float(np.mean(np.abs(de))),
           "e_rmse": float(np.sqrt(np.mean(de ** 2))), "f_mae": float(np.mean(np.abs(df_))),
           "f_rmse": float(np.sqrt(np.mean(df_ ** 2))), "n_test": len(df)}
    if keep:
        shutil.copytree(wd, keep / element, dirs_exist_ok=True)
    shutil.rmtree(wd, ignore_errors=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--elements", default="Cu,Ni,Li,Si")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "zuo"))
    ap.add_argument("--threads", type=int, default=None, help="numba threads (default: all cores)")
    ap.add_argument("--maxiter", type=int, default=None, help="override the recipe's maxiter")
    ap.add_argument("--keep", default=None, help="copy each run's folder here")
    args = ap.parse_args()
    keep = Path(args.keep) if args.keep else None
    print(f"{'element':8s} {'minutes':>8s} {'E MAE':>8s} {'E RMSE':>8s} {'F MAE':>8s} {'F RMSE':>8s}  (test set; "
          "meV/atom, meV/Å)", flush=True)
    for el in args.elements.split(","):
        r = run(el.strip(), Path(args.data), args.threads, args.maxiter, keep)
        print(f"{r['element']:8s} {r['minutes']:8.1f} {r['e_mae']:8.3f} {r['e_rmse']:8.3f} {r['f_mae']:8.2f} "
              f"{r['f_rmse']:8.2f}", flush=True)


if __name__ == "__main__":
    main()
