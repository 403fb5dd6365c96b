"""Loss+gradient speed and peak memory of paceui vs pacemaker's own ``Time/eval``, measured side by side.

Usage: python benchmarks/bench_fit.py [--refenv /tmp/refenv] [--cases cu-i,zuo] [--skip-pacemaker]
Cases use the potential section of pacemaker's Cu-I example (82 functions, rc 7 Å): on its own dataset
(105 structures, 368 atoms) and on Zuo Cu train (262 structures, 27,416 atoms). paceui: best of 5
loss+gradient evaluations in a subprocess (peak RSS from getrusage), on the tabulated radial functions (the
fit's default, the model pyace and LAMMPS run) and, in the column "analytic", on the analytic ones
(``ACELoss(spline=False)``, pacemaker's model). pacemaker (TensorFlow backend,
shared/reference/REFERENCE_TOOLS.md): a 5-iteration fit, median of its per-iteration Time/eval, peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
REF = ROOT.parent / "shared" / "reference"

PACEUI_SCRIPT = r"""
import json, resource, sys, time, numpy as np
from paceui.fit.config import InputConfig
from paceui.fit.target import build_target
from paceui.data import prepare_dataset
from paceui.fit.arrays import fit_arrays
from paceui.fit.loss import ACELoss, LossConfig
cfg = InputConfig.from_file(sys.argv[1])
target, _ = build_target(cfg)
prep = prepare_dataset({**cfg.data, "datapath": cfg.base_dir}, elements=target.elements, cutoff=target.cutoff)
data = fit_arrays(prep.train, prep.train_neighbors)
loss = ACELoss(target, LossConfig(kappa=0.3, L1_coeffs=1e-8, L2_coeffs=1e-8), spline=sys.argv[2] == "spline")
th = loss.pmap.get(target)
th[loss.pmap.func_mask()] = np.random.default_rng(0).normal(size=int(loss.pmap.func_mask().sum())) * 1e-3
loss(th, data)
best = min(loss(th, data).seconds for _ in range(5))
n = len(data.species)
print(json.dumps({"us_per_atom": best / n * 1e6, "atoms": n, "pairs": int(len(data.nbr_j)),
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def write_input(d: Path, data_file: str, pot: dict, maxiter: int = 5) -> Path:
    inp = {"cutoff": 7.0, "seed": 42, "potential": pot, "data": {"filename": data_file},
           "fit": {"loss": {"kappa": 0.3, "L1_coeffs": 1e-8, "L2_coeffs": 1e-8}, "optimizer": "BFGS",
                   "maxiter": maxiter},
           "backend": {"evaluator": "tensorpot", "batch_size": 100, "display_step": 50}}
    if "zuo" in data_file.lower() or "Cu_train" in data_file:
        inp["data"]["reference_energy"] = "auto"
    f = d / "input.yaml"
    f.write_text(yaml.safe_dump(inp, sort_keys=False))
    return f


def run_paceui(inp: Path, radial: str = "spline") -> dict:
    # the child runs in the temporary folder: put this checkout first on its path (a relative PYTHONPATH=. of the
    # caller would name that folder, and the venv's editable paceui would be measured instead of this tree)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", PACEUI_SCRIPT, str(inp), radial], capture_output=True, text=True,
                         cwd=inp.parent, env=env)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_pacemaker(refenv: Path, inp: Path) -> dict | None:
    exe = refenv / "bin" / "pacemaker"
    if not exe.exists():
        return None
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out = subprocess.run([str(exe), inp.name, "--no-predict"], capture_output=True, text=True, cwd=inp.parent,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "-1"})
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    times = [float(x) for x in re.findall(r"Iteration\s+#\d+.*Time/eval:\s*([\d.]+) mcs/at", out.stdout + out.stderr)]
    if not times:
        print(f"pacemaker gave no Time/eval: {(out.stdout + out.stderr)[-1500:]}", file=sys.stderr)
        return None
    times.sort()
    return {"us_per_atom": times[len(times) // 2], "rss_mb": max(rss, before) / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--refenv", default=os.environ.get("PACEUI_REFENV", "/tmp/refenv"))
    ap.add_argument("--cases", default="cu-i,zuo")
    ap.add_argument("--skip-pacemaker", action="store_true")
    args = ap.parse_args()
    pot = yaml.safe_load((REF / "inputs" / "examples_Cu-I_input.yaml").read_text())["potential"]
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC, load {os.getloadavg()[0]:.1f} (1-min average, "
          f"{os.cpu_count()} cores)", flush=True)
    print(f"{'case':22s} {'atoms':>7s} {'pairs':>9s} {'paceui µs/at':>13s} {'analytic':>9s} {'pacemaker':>10s} "
          f"{'ratio':>6s} {'analytic':>8s} {'paceui MB':>10s} {'pacemaker MB':>13s} {'mem ratio':>9s}")
    for case in args.cases.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            if case == "cu-i":
                src = REF / "datasets" / "Cu_df1_A1_A2_A3_EV_elast_phon.pckl.gzip"
                (d / src.name).write_bytes(src.read_bytes())
                name = src.name
            else:
                from paceui.data.io import load_files, save_dataframe

                df = load_files(str(ROOT / "assets" / "zuo" / "Cu_train.xyz.gz"))
                save_dataframe(df[["ase_atoms", "energy", "forces"]], d / "zuo_cu.pckl.gzip")
                name = "zuo_cu.pckl.gzip"
            inp = write_input(d, name, pot)
            ours = run_paceui(inp)
            ana = run_paceui(inp, "analytic")
            ref = None if args.skip_pacemaker else run_pacemaker(Path(args.refenv), inp)
            r = f"{ours['us_per_atom'] / ref['us_per_atom']:6.2f}" if ref else "   n/a"
            ra = f"{ana['us_per_atom'] / ref['us_per_atom']:8.2f}" if ref else "     n/a"
            m = f"{ours['rss_mb'] / ref['rss_mb']:9.2f}" if ref else "      n/a"
            print(f"{case:22s} {ours['atoms']:7d} {ours['pairs']:9d} {ours['us_per_atom']:13.1f} "
                  f"{ana['us_per_atom']:9.1f} {(ref or {}).get('us_per_atom', float('nan')):10.1f} {r} {ra} "
                  f"{ours['rss_mb']:10.0f} {(ref or {}).get('rss_mb', float('nan')):13.0f} {m}", flush=True)
    print(f"done {time.strftime('%H:%M:%S', time.gmtime())} UTC, load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
