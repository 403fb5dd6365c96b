"""Run jobs in the reference venv (pyace) through tests/pyace_oracle.py; skip where it is absent."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

REFENV = Path(os.environ.get("PACEUI_REFENV", "/tmp/refenv"))
ORACLE = Path(__file__).with_name("pyace_oracle.py")


def need_refenv() -> Path:
    """The reference venv's python, or skip with the reason."""
    py = REFENV / "bin" / "python"
    if not py.exists():
        pytest.skip(f"reference venv not found at {REFENV} (set PACEUI_REFENV; see "
                    "shared/reference/REFERENCE_TOOLS.md): these tests compare with pyace")
    return py


def run_jobs(jobs: list[list[str]], workdir: Path) -> list[dict[str, np.ndarray] | str]:
    """Run oracle jobs (their last item is the output .npz); per job its arrays or the error message."""
    py = need_refenv()
    spec = workdir / "jobs.json"
    spec.write_text(json.dumps([[str(x) for x in j] for j in jobs]))
    subprocess.run([str(py), str(ORACLE), str(spec)], check=True, capture_output=True, timeout=600)
    out: list[dict[str, np.ndarray] | str] = []
    for j in jobs:
        err = Path(str(j[-1]) + ".err")
        if err.exists():
            out.append(err.read_text())
        else:
            with np.load(j[-1]) as z:
                out.append({k: z[k] for k in z.files})
    return out
