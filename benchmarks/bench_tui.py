"""TUI cost: key-press-to-redraw latency while a fit runs, and fit throughput with the TUI open vs a
headless ``Session.run`` of the same iterations.

Usage: python benchmarks/bench_tui.py [--structures 60] [--iterations 40] [--presses 30] [--demo] [--commands 5]
A tiny-basis Zuo Cu session on ``--structures`` structures (``--demo``: the bundled demo input, 55
functions on the full Zuo set) is saved once; the headless run and the TUI run both load that save, so
they do the same iterations from the same state. Latency: time from a key press (``m``, which replots the
Fit tab) to the end of the plot's next render, while a fit runs; goal median < 100 ms. Throughput: best of
``--repeats`` interleaved runs each; goal throughput with the TUI ≥ 0.97 of headless. Feedback: time from
the ``p`` key to the status line saying "pausing…" (goal ≤ 100 ms). Command to effect: ``--commands``
pauses and stops pressed (``p`` / ``x``) mid-fit, time until the session is PAUSED / STOPPED (goal ≤ 1 s on
the demo: a long iteration is abandoned at its next loss evaluation).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _prepare(args: argparse.Namespace, folder: Path) -> Path:
    from paceui.session import Session
    from paceui.session.testing import tiny_session

    path = folder / "session"
    if args.demo:
        s = Session.from_input(ROOT / "assets" / "demo" / "input.yaml", path=path)
    else:
        s = tiny_session(path=path, n=args.structures, fit={"maxiter": 100_000})
    s.run(iterations=2)  # compile numba kernels and leave a started optimizer behind
    s.save()
    s.close()
    return path


def _fresh(path: Path) -> Path:
    """A copy of the prepared session folder: every timed run starts from the same saved state (a run's
    autosave on halting would otherwise move the next run's start on, to other line searches)."""
    dst = Path(tempfile.mkdtemp(prefix="run-", dir=path.parent))
    shutil.copytree(path, dst / path.name)
    return dst / path.name


def _headless(path: Path, iterations: int) -> float:
    from paceui.session import Session

    s = Session.load(_fresh(path))
    t0 = time.perf_counter()
    s.run(iterations=iterations)
    dt = time.perf_counter() - t0
    s.close()
    return dt


LAYOUT_PASSES = [0]  # whole-screen layout passes of the last TUI run's fit (_tui_throughput sets it)


async def _tui_throughput(path: Path, iterations: int) -> tuple[float, float]:
    """Seconds for ``iterations`` started from the TUI (events polled, curves redrawn as in use), and the
    CPU seconds the UI thread used meanwhile (the UI's whole cost, immune to other load on the machine);
    the fit's whole-screen layout passes go to LAYOUT_PASSES."""
    from textual.screen import Screen

    from paceui.session import Session
    from paceui.tui import PaceApp

    s = Session.load(_fresh(path))
    app = PaceApp(s)
    orig = Screen._refresh_layout
    count = [0]

    def counted(self: Screen, *a: Any, **k: Any) -> Any:
        count[0] += 1
        return orig(self, *a, **k)

    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.3)
        Screen._refresh_layout = counted  # type: ignore[method-assign]
        try:
            dt, cpu = await _timed_start(s, iterations)
        finally:
            Screen._refresh_layout = orig  # type: ignore[method-assign]
    s.close()
    LAYOUT_PASSES[0] = count[0]
    return dt, cpu


async def _timed_start(s: Any, iterations: int) -> tuple[float, float]:
    """Wall seconds of ``s.start(iterations)`` while this thread's event loop runs, and this thread's CPU
    seconds meanwhile (the front end's whole cost, whatever the machine's other load)."""
    t0, c0 = time.perf_counter(), time.thread_time()
    # awaited by wake-up, not polled: a 10 ms polling loop here cost the UI thread ~1 % of a core (and woke it,
    # taking the GIL from the fit, 100 times a second), a cost the real app does not have
    await asyncio.wrap_future(s.start(iterations))
    return time.perf_counter() - t0, time.thread_time() - c0


async def _tui_latency(path: Path, presses: int) -> tuple[list[float], int]:
    """Key-to-render times (s) of ``m`` (replot) while a fit runs, and the number of redraws."""
    from textual_plotext import PlotextPlot

    from paceui.session import Session
    from paceui.tui import PaceApp

    renders: list[float] = []
    orig = PlotextPlot.render

    def timed(self):  # type: ignore[no-untyped-def]
        out = orig(self)
        if self.id == "fit-plot":
            renders.append(time.perf_counter())
        return out
    PlotextPlot.render = timed  # type: ignore[method-assign]
    s = Session.load(path)
    app = PaceApp(s)
    latencies: list[float] = []
    async with app.run_test(size=(120, 40)) as pilot:
        s.start()
        await pilot.pause(0.5)
        for _ in range(presses):
            t_key = time.perf_counter()
            app.simulate_key("m")  # as a terminal key arrives; pilot.press would also wait for idle
            while not renders or renders[-1] < t_key:
                await asyncio.sleep(0.001)
            latencies.append(renders[-1] - t_key)
            await asyncio.sleep(0.1)
        redraws = app.redraws
        s.stop().result()
    PlotextPlot.render = orig  # type: ignore[method-assign]
    s.close()
    return latencies, redraws


async def _tui_commands(path: Path, n: int) -> dict[str, list[float]]:
    """Per key (``p`` pause, ``x`` stop) pressed while the fit runs: seconds to the status line's
    acknowledgement ("pausing…"/"stopping…") and to the session's PAUSED / STOPPED."""
    from paceui.session import Phase, Session
    from paceui.tui import PaceApp

    s = Session.load(path)
    app = PaceApp(s)
    out: dict[str, list[float]] = {"ack": [], "pause": [], "stop": [], "sent_pause": [], "sent_stop": []}
    sent: dict[str, float] = {}
    def timed(name: str, orig):  # type: ignore[no-untyped-def]
        def call():  # type: ignore[no-untyped-def]
            sent[name] = time.perf_counter()  # when the UI thread hands the command to the session
            return orig()
        return call
    for name in ("pause", "stop"):
        setattr(s, name, timed(name, getattr(s, name)))
    async with app.run_test(size=(120, 40)):
        status = app.query_one("#status")
        for i in range(n):
            for key, name, phase in (("p", "pause", Phase.PAUSED), ("x", "stop", Phase.STOPPED)):
                s.start() if s.status.phase is not Phase.PAUSED else s.resume()
                while s.status.phase is not Phase.RUNNING or s.status.stage:
                    await asyncio.sleep(0.005)
                await asyncio.sleep(0.3 + 0.137 * i)  # land at different points of an iteration
                t0 = time.perf_counter()
                app.simulate_key(key)  # as the terminal driver posts it (pilot.press waits for the app to go idle)
                if name == "pause":
                    word = "pausing"
                    while word not in str(status.render()) and s.status.phase is Phase.RUNNING:
                        await asyncio.sleep(0.001)
                    out["ack"].append(time.perf_counter() - t0)
                while s.status.phase is not phase:
                    await asyncio.sleep(0.002)
                out[name].append(time.perf_counter() - t0)
                out["sent_" + name].append(time.perf_counter() - sent.get(name, t0))
    s.close()
    return out


def _stats(xs: list[float]) -> str:
    ms = sorted(1e3 * x for x in xs)
    return f"median {statistics.median(ms):.0f} ms, max {ms[-1]:.0f} ms ({len(ms)} presses)" if ms else "-"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--structures", type=int, default=60)
    ap.add_argument("--iterations", type=int, default=40)
    ap.add_argument("--presses", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=3, help="interleaved headless/TUI runs (best of each)")
    ap.add_argument("--demo", action="store_true", help="the bundled demo session instead of a tiny basis")
    ap.add_argument("--commands", type=int, default=3, help="pause/stop presses for command-to-effect latency")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="paceui-bench-tui-") as tmp:
        import os

        os.environ.setdefault("PACEUI_CACHE_DIR", str(Path(tmp) / "cache"))
        path = _prepare(args, Path(tmp))
        headless, tui, ui_cpu, layouts = [], [], [], []
        for _ in range(args.repeats):  # interleaved: other load on the machine hits both alike
            headless.append(_headless(path, args.iterations))
            dt, cpu = asyncio.run(_tui_throughput(path, args.iterations))
            tui.append(dt)
            ui_cpu.append(cpu / dt)
            layouts.append(LAYOUT_PASSES[0])
        lat, redraws = asyncio.run(_tui_latency(path, args.presses))
        cmds = asyncio.run(_tui_commands(path, args.commands)) if args.commands else {}
    h, tui_s = min(headless), min(tui)
    lat_ms = sorted(1e3 * x for x in lat)
    p95 = lat_ms[min(len(lat_ms) - 1, int(round(0.95 * (len(lat_ms) - 1))))]
    what = ("demo (55 functions, full Zuo Cu)" if args.demo
            else f"tiny basis (14 functions), {args.structures} structures")
    print(f"session: {what}; {args.iterations} iterations")
    runs_h, runs_t = ", ".join(f"{x:.3f}" for x in headless), ", ".join(f"{x:.3f}" for x in tui)
    print(f"headless Session.run: {h:.3f} s ({args.iterations / h:.2f} it/s; runs {runs_h})")
    print(f"with the TUI open:    {tui_s:.3f} s ({args.iterations / tui_s:.2f} it/s; runs {runs_t})")
    ratio_median = statistics.median(headless) / statistics.median(tui)
    print(f"throughput with the TUI / headless: {h / tui_s:.3f} best of runs, {ratio_median:.3f} of medians "
          f"(goal >= 0.97)")
    print(f"UI thread CPU while fitting: {100 * statistics.median(ui_cpu):.1f}% of one core (median of runs); "
          f"whole-screen layout passes per fit: {', '.join(map(str, layouts))}")
    print(f"key-to-redraw latency while fitting ({len(lat_ms)} presses): median {statistics.median(lat_ms):.1f} ms, "
          f"p95 {p95:.1f} ms, max {lat_ms[-1]:.1f} ms (goal median < 100 ms); plot redraws {redraws}")
    if cmds:
        print(f"key p to 'pausing…' on the status line: {_stats(cmds['ack'])} (goal <= 100 ms)")
        print(f"key p to PAUSED:  {_stats(cmds['pause'])} (goal <= 1 s)")
        print(f"key x to STOPPED: {_stats(cmds['stop'])} (goal <= 1 s)")
        print(f"session.pause() to PAUSED: {_stats(cmds['sent_pause'])}; session.stop() to STOPPED: "
              f"{_stats(cmds['sent_stop'])} (the fit's side, without the UI thread's delay in taking the key)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
