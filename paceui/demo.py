"""``paceui demo``: fit the bundled demo (Zuo Cu, BSD-3) in ./paceui-demo and summarise the result."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from paceui._atomic import atomic_write_text

ASSETS = Path(__file__).resolve().parents[1] / "assets"  # the checkout's assets/ (editable install)
DEMO_INPUT = ASSETS / "demo" / "input.yaml"


def run_demo(workdir: str = "paceui-demo", quick: bool = False) -> int:
    """Copy assets/demo/input.yaml (data paths made absolute) to ``workdir`` and run ``paceui fit``."""
    from paceui.fit.runner import run_fit

    src = DEMO_INPUT
    if not src.exists():
        raise FileNotFoundError(f"demo input not found at {src} (install paceui from its checkout: pip install -e .)")
    wd = Path(workdir).resolve()
    wd.mkdir(parents=True, exist_ok=True)
    text = src.read_text().replace("../zuo/", str(ASSETS / "zuo") + "/")
    if quick:
        text = text.replace("maxiter: 60", "maxiter: 10")
    atomic_write_text(wd / "input.yaml", text)
    con = Console()
    con.print(f"[bold]paceui demo[/]: fitting an ACE potential for Cu (Zuo et al. 2020 DFT data) in {wd}")
    run = run_fit(wd / "input.yaml", workdir=wd)
    hist = run.fitter.state.history if run.fitter else []
    t = Table("set", "E RMSE meV/atom", "E MAE meV/atom", "F RMSE meV/Å", "F MAE meV/Å", title="Result")
    last = hist[-1] if hist else {}
    for name, pre in (("train", ""), ("test", "test_")):
        row = next((h for h in reversed(hist) if f"{pre}rmse_epa" in h), None)
        if row:
            t.add_row(name, f"{1e3 * row[pre + 'rmse_epa']:.2f}", f"{1e3 * row[pre + 'mae_epa']:.2f}",
                      f"{1e3 * row[pre + 'rmse_f_comp']:.1f}", f"{1e3 * row[pre + 'mae_f_comp']:.1f}")
    con.print(t)
    con.print(f"stop reason: {run.fitter.state.stop_message if run.fitter else '-'}; "
              f"{len(hist) and last.get('iteration', 0)} iterations")
    con.print(f"potential: {wd / 'output_potential.yaml'} (+ .yace for LAMMPS); report: {wd / 'report'}")
    return 0
