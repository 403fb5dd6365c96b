"""The example notebook (assets/notebooks/paceui_demo.ipynb) runs top to bottom, headless, with nbclient."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "assets" / "notebooks" / "paceui_demo.ipynb"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def kernel_env(tmp: Path, workdir: Path) -> dict[str, str]:
    """Environment for a Jupyter kernel of this interpreter that imports this checkout's paceui.

    A ``python3`` kernelspec whose argv is ``sys.executable`` is written under ``tmp`` and put first on
    JUPYTER_PATH (so no kernelspec of another Python is used); PACEUI_NOTEBOOK_QUICK keeps the demo short.
    """
    from ipykernel.kernelspec import write_kernel_spec

    spec = tmp / "jupyter" / "kernels" / "python3"
    spec.parent.mkdir(parents=True, exist_ok=True)
    write_kernel_spec(spec)
    argv = json.loads((spec / "kernel.json").read_text())["argv"]
    assert argv[0] == sys.executable, argv
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {"JUPYTER_PATH": str(tmp / "jupyter"), "PYTHONPATH": path, "PACEUI_NOTEBOOK_QUICK": "1",
            "PACEUI_NOTEBOOK_WORKDIR": str(workdir)}


def test_notebook_is_stored_without_outputs() -> None:
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    assert nb.metadata.kernelspec.name == "python3"
    assert "parameters" in code[0].metadata.get("tags", [])


def test_demo_notebook_runs_top_to_bottom(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nbformat
    from nbclient import NotebookClient

    work = tmp_path / "work"
    for k, v in kernel_env(tmp_path, work).items():
        monkeypatch.setenv(k, v)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(run_dir)}}).execute()

    code = [c for c in nb.cells if c.cell_type == "code"]
    text = "\n".join(o.get("text", "") for c in code for o in c.outputs if o.output_type == "stream")
    assert "error" not in {o.output_type for c in code for o in c.outputs}
    assert "paused (paused): ladder step 0" in text             # paused after the first iterations
    assert "added 10 functions: 10 → 20 of 55" in text          # one more ladder step
    assert "stopped (stopped by the user): ladder step 1" in text
    assert "test set: energy MAE" in text
    views = [c for c in code if any(WIDGET_VIEW in o.get("data", {}) for o in c.outputs)]
    assert len(views) == 2                                       # the dashboard and the reloaded session
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    assert any(m["model_name"] == "ImageModel" for m in state.values())
    saved = work / "session"
    assert (saved / "session.yaml").exists()
    from paceui.session import Session

    s = Session.load(saved)
    try:
        assert s.status.ladder_step == 1 and s.status.nfuncs == 20 and s.status.total_iterations >= 3
    finally:
        s.close()
