"""Notebook dashboard cost (the counterpart of bench_tui.py): click-to-feedback latency, pause/stop
command-to-effect latency, and fit throughput with a polling dashboard vs a headless ``Session.run``.

Usage: python benchmarks/bench_notebook.py [--structures 60] [--iterations 40] [--demo] [--commands 3]
The session is prepared as in bench_tui.py (``--demo``: the bundled Zuo demo input). The dashboard runs
as in a kernel: its refresh task on an asyncio loop every ``poll_interval`` (0.25 s), curves redrawn at
most once a second. Goals: click → "pausing…" in the status ≤ 100 ms; click → PAUSED / STOPPED ≤ 1 s on
the demo; throughput with the dashboard ≥ 0.97 of headless.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_tui import _fresh, _headless, _prepare, _stats, _timed_start  # noqa: E402


async def _dash_throughput(path: Path, iterations: int) -> tuple[float, float]:
    """Seconds for ``iterations`` with the dashboard polling, and the CPU seconds its (the loop's) thread used
    meanwhile: the dashboard's whole cost, held against the fit thread's GIL, immune to other load."""
    from paceui.notebook import Dashboard
    from paceui.session import Session

    s = Session.load(_fresh(path))
    dash = Dashboard(s, auto_analysis=False)  # polls on this loop, as in a kernel
    await asyncio.sleep(0.3)
    dt, cpu = await _timed_start(s, iterations)
    dash.close()
    s.close()
    return dt, cpu


async def _dash_commands(path: Path, n: int) -> dict[str, list[float]]:
    from paceui.notebook import Dashboard
    from paceui.session import Phase, Session

    s = Session.load(path)
    dash = Dashboard(s, auto_analysis=False)
    out: dict[str, list[float]] = {"ack": [], "pause": [], "stop": []}
    for i in range(n):
        for name, phase in (("pause", Phase.PAUSED), ("stop", Phase.STOPPED)):
            (s.start() if s.status.phase is not Phase.PAUSED else s.resume())
            while s.status.phase is not Phase.RUNNING or s.status.stage:
                await asyncio.sleep(0.005)
            await asyncio.sleep(0.3 + 0.137 * i)
            t0 = time.perf_counter()
            dash.buttons[name].click()
            if name == "pause":
                if "pausing" in dash.status_html.value or s.status.phase is not Phase.RUNNING:
                    out["ack"].append(time.perf_counter() - t0)
            while s.status.phase is not phase:
                await asyncio.sleep(0.002)
            out[name].append(time.perf_counter() - t0)
    dash.close()
    s.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--structures", type=int, default=60)
    ap.add_argument("--iterations", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--demo", action="store_true")
    ap.add_argument("--commands", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="paceui-bench-nb-") as tmp:
        import os

        os.environ.setdefault("PACEUI_CACHE_DIR", str(Path(tmp) / "cache"))
        path = _prepare(args, Path(tmp))
        headless, dash, ui_cpu = [], [], []
        for _ in range(args.repeats):  # interleaved
            headless.append(_headless(path, args.iterations))
            dt, cpu = asyncio.run(_dash_throughput(path, args.iterations))
            dash.append(dt)
            ui_cpu.append(cpu / dt)
        cmds = asyncio.run(_dash_commands(path, args.commands)) if args.commands else {}
    h, d = min(headless), min(dash)
    print(f"headless: {h:.3f} s, with the dashboard polling: {d:.3f} s for {args.iterations} iterations; "
          f"throughput ratio {h / d:.3f} (best of each; goal >= 0.97)")
    hm, dm = statistics.median(headless), statistics.median(dash)
    print(f"medians of {args.repeats} alternated runs: headless {hm:.3f} s, dashboard {dm:.3f} s, ratio {hm / dm:.3f}; "
          f"runs headless {', '.join(f'{x:.2f}' for x in headless)} / dashboard {', '.join(f'{x:.2f}' for x in dash)}")
    print(f"dashboard thread CPU while fitting: {100 * statistics.median(ui_cpu):.1f}% of one core (median; the "
          "GIL time it takes from the fit, whatever the machine's other load)")
    if cmds:
        print(f"click Pause to 'pausing…' in the status: {_stats(cmds['ack'])} (goal <= 100 ms)")
        print(f"click Pause to PAUSED:  {_stats(cmds['pause'])} (goal <= 1 s)")
        print(f"click Stop to STOPPED:  {_stats(cmds['stop'])} (goal <= 1 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
