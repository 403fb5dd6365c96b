"""Where the TUI's UI thread spends CPU while a demo fit runs: thread_time around Textual's compositor,
layout, per-widget render and paceui's poll/redraw. Usage: python benchmarks/profile_tui_thread.py [sleep|wrap]
(PACEUI_BENCH_SESSION: a saved demo session, e.g. from bench_tui._prepare). Dev tool, not a test."""
import asyncio, os, sys, time, argparse, collections
from pathlib import Path
ROOT = Path(__file__).resolve().parents[1]; sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("PACEUI_CACHE_DIR", "/tmp/tui3/cache")
import bench_tui as b
from textual.screen import Screen
from paceui.tui.app import PaceApp
from paceui.tui.pane_fit import FitPane
acc = collections.defaultdict(float); cnt = collections.Counter()
def wrap(cls, name):
    orig = getattr(cls, name)
    def w(*a, **k):
        c0 = time.thread_time()
        try: return orig(*a, **k)
        finally: acc[name] += time.thread_time() - c0; cnt[name] += 1
    setattr(cls, name, w)
from textual.widget import Widget
_orl = Widget.render_lines
def rl(self, crop):
    c0 = time.thread_time()
    try: return _orl(self, crop)
    finally:
        k = "W:" + type(self).__name__ + "#" + str(self.id); acc[k] += time.thread_time() - c0; cnt[k] += 1
Widget.render_lines = rl
from textual.screen import Screen as _S
_ocr = _S._refresh_layout
def rlay(self, *a, **k):
    c0 = time.thread_time()
    try: return _ocr(self, *a, **k)
    finally: acc["refresh_layout"] += time.thread_time() - c0; cnt["refresh_layout"] += 1
_S._refresh_layout = rlay
for cls, n in ((Screen, "_on_timer_update"), (PaceApp, "_poll"), (FitPane, "redraw"), (PaceApp, "update_status"), (FitPane, "log_progress")):
    wrap(cls, n)
mode = sys.argv[1] if len(sys.argv) > 1 else "sleep"
if mode == "wrap":
    async def ts(s, iterations):
        t0, c0 = time.perf_counter(), time.thread_time()
        await asyncio.wrap_future(s.start(iterations))
        return time.perf_counter() - t0, time.thread_time() - c0
    b._timed_start = ts
path = Path(os.environ.get("PACEUI_BENCH_SESSION", "/tmp/tui3/prep/session"))
async def run():
    dt, cpu = await b._tui_throughput(path, 8)
    return dt, cpu
acc.clear()
dt, cpu = asyncio.run(b._tui_throughput(path, 8))
print(f"{mode}: tui {dt:.3f} s, UI cpu {100*cpu/dt:.1f}% ({cpu:.2f} s)")
for k in acc: print(f"  {k}: {acc[k]:.3f} s in {cnt[k]} calls")
