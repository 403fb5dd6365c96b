"""Where the TUI's UI thread spends CPU while a demo fit runs, and who asks for whole-screen layout passes.

Usage: python benchmarks/profile_tui_thread.py [--session DIR] [--iterations N]
(``--session``: a saved demo session, as bench_tui.py prepares; default: prepare one in a temporary folder).
Prints the UI thread's CPU seconds (``time.thread_time``) in Textual's compositor, layout passes, per-widget
renders and paceui's poll/redraw during the fit, then the widgets (and call sites) that asked for a layout
pass. A development tool (issue 15, throughput with the TUI open), not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_tui  # noqa: E402
from textual.screen import Screen  # noqa: E402
from textual.widget import Widget  # noqa: E402

from paceui.tui.app import PaceApp  # noqa: E402
from paceui.tui.pane_fit import FitPane  # noqa: E402

SPENT: collections.defaultdict[str, float] = collections.defaultdict(float)
CALLS: collections.Counter[str] = collections.Counter()
LAYOUT_ASKS: collections.Counter[str] = collections.Counter()


def _timed(name: Callable[[Any], str], orig: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(self: Any, *a: Any, **k: Any) -> Any:
        c0 = time.thread_time()
        try:
            return orig(self, *a, **k)
        finally:
            key = name(self)
            SPENT[key] += time.thread_time() - c0
            CALLS[key] += 1
    return wrapper


def _instrument() -> None:
    Widget.render_lines = _timed(lambda w: f"render {type(w).__name__}#{w.id}", Widget.render_lines)
    Screen._refresh_layout = _timed(lambda w: "screen layout pass", Screen._refresh_layout)
    for cls, meth in ((Screen, "_on_timer_update"), (PaceApp, "_poll"), (FitPane, "redraw")):
        setattr(cls, meth, _timed(lambda w, m=meth: m, getattr(cls, meth)))
    refresh = Widget.refresh

    def asking(self: Widget, *a: Any, **k: Any) -> Any:
        if k.get("layout"):
            frames = traceback.extract_stack(limit=6)[:-1]
            where = " <- ".join(f"{Path(f.filename).name}:{f.lineno}" for f in reversed(frames))
            LAYOUT_ASKS[f"{type(self).__name__}#{self.id}: {where}"] += 1
        return refresh(self, *a, **k)
    Widget.refresh = asking  # type: ignore[method-assign]
    started = bench_tui._timed_start

    async def reset_then_start(s: Any, iterations: int) -> tuple[float, float]:
        SPENT.clear(), CALLS.clear(), LAYOUT_ASKS.clear()  # count the fit only, not the app's start
        return await started(s, iterations)
    bench_tui._timed_start = reset_then_start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--session", type=Path, help="a saved demo session (default: prepare one)")
    ap.add_argument("--iterations", type=int, default=8)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="paceui-profile-tui-") as tmp:
        path = args.session or bench_tui._prepare(argparse.Namespace(demo=True, structures=60), Path(tmp))
        _instrument()
        dt, cpu = asyncio.run(bench_tui._tui_throughput(path, args.iterations))
    print(f"fit {dt:.2f} s with the TUI open; UI thread CPU {cpu:.2f} s ({100 * cpu / dt:.1f}% of one core)")
    for key, s in sorted(SPENT.items(), key=lambda kv: -kv[1])[:20]:
        print(f"  {s:7.3f} s in {CALLS[key]:4d} calls  {key}")
    print("layout requests during the fit:" if LAYOUT_ASKS else "no layout requests during the fit")
    for key, n in LAYOUT_ASKS.most_common(10):
        print(f"  {n:4d}  {key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
