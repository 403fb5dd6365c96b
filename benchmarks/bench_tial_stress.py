"""Ti–Al (../shared/acedata/TiAl_tutorial.xyz.gz, energies, forces, virials, 2 groups): short fits with the
stress term off and on, per-group weights and a per-group split; prints the test errors of both.

Run: PYTHONPATH=. python benchmarks/bench_tial_stress.py [maxiter] [stress_weight] [off|on|both]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "acedata" / "TiAl_tutorial.xyz.gz"

INPUT = """cutoff: 5.5
seed: 42
data:
  filename: {data}
  test_size: 0.2
  split_by_group: true
  reference_energy: auto
  group_weights:
    TiAl_T5000: {{energy: 1.0, forces: 0.5, stress: 1.0}}
potential:
  deltaSplineBins: 0.001
  elements: [Al, Ti]
  embeddings:
    ALL: {{npot: FinnisSinclairShiftedScaled, fs_parameters: [1, 1, 1, 0.5], ndensity: 2}}
  bonds:
    ALL: {{radbase: ChebExpCos, radparameters: [5.25], rcut: 5.5, dcut: 0.01}}
  functions:
    ALL: {{nradmax_by_orders: [10, 4, 2], lmax_by_orders: [0, 3, 2]}}
fit:
  loss: {{kappa: 0.05, stress: {stress}, L2_coeffs: 1.0e-8}}
  optimizer: BFGS
  maxiter: {maxiter}
backend:
  display_step: 1000
"""


def run(stress: float, maxiter: int) -> pd.DataFrame:
    from paceui.fit.runner import run_fit

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "input.yaml").write_text(INPUT.format(data=DATA, stress=stress, maxiter=maxiter))
        t0 = time.perf_counter()
        run_fit(Path(tmp) / "input.yaml", workdir=tmp)
        dt = time.perf_counter() - t0
        g = pd.read_csv(Path(tmp) / "report" / "test_group_errors.csv")
        g["seconds"] = dt
        g["stress_weight"] = stress
        return g


def main() -> None:
    maxiter = int(sys.argv[1]) if len(sys.argv) > 1 else 150
    lam = float(sys.argv[2]) if len(sys.argv) > 2 else 0.05
    which = sys.argv[3] if len(sys.argv) > 3 else "both"
    weights = {"off": [0.0], "on": [lam], "both": [0.0, lam]}[which]
    out = pd.concat([run(w, maxiter) for w in weights], ignore_index=True)
    pd.set_option("display.width", 200)
    print(out.to_string(index=False, float_format=lambda x: f"{x:.4g}"))


if __name__ == "__main__":
    main()
