"""Run by the reference venv's Python (pyace), never imported by paceui: writes pyace's values to an npz.

Usage: python pyace_oracle.py JOBS.json, a list of jobs, each one of
  ["proj", POT.yaml, STRUCTS.xyz, "linear"|"full", OUT.npz]   per-element projections
  ["gamma", POT.yaml, POT.asi, STRUCTS.xyz, OUT.npz]          per-atom γ of each structure (s0, s1, ...)
A job that fails writes OUT.npz.err with the message.
"""

import json
import sys

import ase.io
import numpy as np


def run(job: list) -> None:
    mode = job[0]
    if mode == "proj":
        from pyace import ACEBBasisSet
        from pyace.activelearning import compute_B_projections

        pot, xyz, kind, out = job[1:5]
        basis = ACEBBasisSet(pot)
        res = compute_B_projections(basis, ase.io.read(xyz, ":"), is_full=(kind == "full"))
        res = res[0] if isinstance(res, tuple) else res
        np.savez(out, **{basis.elements_name[k]: v for k, v in res.items()})
    elif mode == "gamma":
        from pyace import PyACECalculator

        pot, asi, xyz, out = job[1:5]
        calc = PyACECalculator(pot)
        calc.set_active_set(asi)
        gam = {}
        for k, a in enumerate(ase.io.read(xyz, ":")):
            a.calc = calc
            a.get_potential_energy()
            gam[f"s{k}"] = np.asarray(calc.results["gamma"], float)
        np.savez(out, **gam)
    else:
        raise SystemExit(f"unknown mode {mode}")


def main() -> None:
    for job in json.load(open(sys.argv[1])):
        try:
            run(job)
        except Exception as e:  # noqa: BLE001 - reported to the test
            with open(job[-1] + ".err", "w") as fh:
                fh.write(f"{type(e).__name__}: {e}")


if __name__ == "__main__":
    main()
