"""paceui activeset against pace_activeset (pyace) on the Zuo Cu training set, side by side.

Usage: python benchmarks/bench_activeset.py [--rounds 3] [--memory-limit 1000] [--refenv /tmp/refenv]
        [--structures N]
Builds the Zuo basis of benchmarks/zuo_basis.py (336 functions; coefficients randomised: the linear active
set does not depend on them), writes it and the training set (pacemaker pickle) to a temporary folder,
then runs `paceui activeset` and `pace_activeset` alternately (one of each per round) for `rounds`
rounds under /usr/bin/time. Prints per run and the medians: wall time (s, whole command incl. start-up
and data reading), peak resident memory (MB), the median of the per-round time ratios, the machine
load (`uptime`) before and after, and the max γ of the data against paceui's set.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ZUO = ROOT / "assets" / "zuo"


def prepare(tmp: Path, n_structures: int | None) -> tuple[Path, Path, int]:
    from zuo_basis import zuo_input

    from paceui.ace.yaml_io import save_potential
    from paceui.data.io import load_dataframe, save_dataframe
    from paceui.fit.config import InputConfig
    from paceui.fit.target import build_target

    pot, _ = build_target(InputConfig.from_dict(zuo_input()))
    rng = np.random.default_rng(0)
    for f in pot.functions():
        f.coeffs = list(rng.normal(0, 1, len(f.coeffs)))
    save_potential(pot, tmp / "zuo_cu.yaml")
    df = load_dataframe(ZUO / "Cu_train.xyz.gz")
    if n_structures:
        df = df.iloc[:n_structures]
    save_dataframe(df, tmp / "Cu_train.pckl.gzip")
    return tmp / "zuo_cu.yaml", tmp / "Cu_train.pckl.gzip", int(sum(len(a) for a in df.ase_atoms))


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, str]:
    r = subprocess.run(["/usr/bin/time", "-f", "TIME %e %M", *cmd], cwd=cwd, env=env, capture_output=True,
                       text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    line = [ln for ln in r.stderr.splitlines() if ln.startswith("TIME ")][-1]
    _, sec, kb = line.split()
    return float(sec), float(kb) / 1024.0, r.stdout


def uptime() -> str:
    """The `uptime` line (load averages), or the reason it could not be read."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as e:
        return f"(uptime unavailable: {e})"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", "--repeat", dest="rounds", type=int, default=3,
                    help="rounds; each runs paceui then pace_activeset once")
    ap.add_argument("--memory-limit", type=float, default=1000.0, help="MB, given to both tools")
    ap.add_argument("--refenv", default=os.environ.get("PACEUI_REFENV", "/tmp/refenv"))
    ap.add_argument("--structures", type=int, default=None, help="first N structures only")
    args = ap.parse_args()
    pace = Path(args.refenv) / "bin" / "pace_activeset"
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        pot, data, n_atoms = prepare(tmp, args.structures)
        print(f"Zuo Cu train: {n_atoms} atoms; potential {pot.name} (Zuo recipe basis); "
              f"memory limit {args.memory_limit:g} MB")
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        mine = [sys.executable, "-m", "paceui.cli", "activeset", str(pot), "-d", str(data), "-o",
                str(tmp / "paceui.asi"), "--memory-limit", str(args.memory_limit)]
        ref = [str(pace), str(pot), "-d", str(data), "-m", f"{int(args.memory_limit)}MB"]
        res: dict[str, list[tuple[float, float]]] = {"paceui": [], "pace_activeset": []}
        print(f"load before: {uptime()}")
        for k in range(args.rounds):
            for name, cmd in (("paceui", mine), ("pace_activeset", ref)):
                if name == "pace_activeset" and not pace.exists():
                    continue
                t, mb, out = timed(cmd, tmp, env)
                res[name].append((t, mb))
                print(f"run {k} {name:15s} {t:8.2f} s {mb:8.0f} MB")
        print(f"load after:  {uptime()}")
        for name, v in res.items():
            if v:
                print(f"median {name:15s} {statistics.median(x[0] for x in v):8.2f} s "
                      f"{statistics.median(x[1] for x in v):8.0f} MB")
        if res["pace_activeset"]:
            ratio = statistics.median(x[0] for x in res["paceui"]) / statistics.median(
                x[0] for x in res["pace_activeset"])
            print(f"time ratio paceui / pace_activeset (of medians): {ratio:.2f}")
            per = [a[0] / b[0] for a, b in zip(res["paceui"], res["pace_activeset"])]
            print("per-round ratios: " + " ".join(f"{x:.2f}" for x in per)
                  + f"; median {statistics.median(per):.2f}")
        from paceui.ace.activeset import ActiveSet, structure_gamma
        from paceui.data.io import load_dataframe

        atoms = list(load_dataframe(data).ase_atoms)
        g = structure_gamma(pot, ActiveSet.load(tmp / "paceui.asi", potential=pot), atoms)
        print(f"max γ of the data against paceui's set: {max(x.max() for x in g):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
