"""Benchmark the session controller: pause latency and fit throughput with and without event subscribers.

Usage:  python benchmarks/bench_session.py [--structures 20] [--iterations 20] [--repeat 5] [--pauses 20]
                                            [--json out.json]

A Zuo Cu fit (assets/zuo, BSD-3; the demo basis at rcut 5 Å, ``--structures`` structures) is saved
once; every throughput run loads that same state and fits ``--iterations`` iterations, so all runs do
identical work. Variants, interleaved and repeated (median reported): the bare Fitter loop (no
session; in the main thread, and in a plain thread like the session's), ``Session.run`` with no
subscriber, with a pull subscriber drained by a slow consumer (50 ms per event: progress is
coalesced), and with a callback subscriber. Pause latency: the time from ``pause()`` to the
``paused`` event at random moments of a running fit, against the iteration time. Last, the cost of
one progress event (microbenchmark), as a fraction of an iteration.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEMO_BASIS = {"deltaSplineBins": 0.001, "elements": ["Cu"],
              "embeddings": {"ALL": {"npot": "FinnisSinclairShiftedScaled", "fs_parameters": [1, 1, 1, 0.5],
                                     "ndensity": 2}},
              "bonds": {"ALL": {"radbase": "ChebExpCos", "radparameters": [5.25], "rcut": 5.0, "dcut": 0.01}},
              "functions": {"ALL": {"nradmax_by_orders": [8, 3, 2, 1], "lmax_by_orders": [0, 2, 2, 1]}}}


def prepare(folder: Path, n: int) -> Path:
    from paceui.session import Session
    from paceui.session.testing import zuo_frame

    s = Session.from_objects(DEMO_BASIS, zuo_frame(n), {"loss": {"kappa": 0.3, "L2_coeffs": 1e-8}, "maxiter": 100000},
                             data_config={"reference_energy": "auto"}, path=folder / "s", autosave_every=0,
                             cache_dir=folder / "cache")
    s.run(iterations=3)  # compile and warm up; the saved state is after 3 iterations
    s.save()
    s.close()
    return folder / "s"


def run_variant(path: Path, variant: str, k: int) -> tuple[float, float]:
    """Wall and CPU seconds (this process, all threads) for ``k`` iterations from the saved state."""
    from paceui.session import Session

    s = Session.load(path)
    s.options["autosave_every"] = 0
    s.path = None  # no saves during the measurement
    stop = threading.Event()
    consumer = None
    if variant == "pull":
        sub = s.subscribe()

        def consume() -> None:
            while not stop.is_set():
                if sub.get(0.05) is not None:
                    time.sleep(0.05)  # a slow front end
        consumer = threading.Thread(target=consume, daemon=True)
        consumer.start()
    elif variant == "callback":
        seen: list[float] = []
        s.subscribe(lambda ev: seen.append(getattr(ev, "loss", 0.0)))
    t, c = time.perf_counter(), time.process_time()
    if variant == "fitter_main":
        s.fitter.run(k)
    elif variant == "fitter_thread":
        worker = threading.Thread(target=s.fitter.run, args=(k,))
        worker.start()
        worker.join()
    else:
        s.run(iterations=k)
    dt, dc = time.perf_counter() - t, time.process_time() - c
    stop.set()
    if consumer is not None:
        consumer.join()
    s.close()
    return dt, dc


def throughput(path: Path, k: int, repeat: int) -> dict[str, Any]:
    variants = ["fitter_main", "fitter_thread", "session", "pull", "callback"]
    times: dict[str, list[tuple[float, float]]] = {v: [] for v in variants}
    for r in range(repeat):
        for v in (variants if r % 2 == 0 else variants[::-1]):
            times[v].append(run_variant(path, v, k))
    med = {v: statistics.median(t for t, _ in ts) for v, ts in times.items()}
    cpu = {v: statistics.median(c for _, c in ts) for v, ts in times.items()}
    out: dict[str, Any] = {v: {"seconds": med[v], "cpu_seconds": cpu[v], "iterations_per_s": k / med[v],
                               "all_seconds": [t for t, _ in times[v]]} for v in variants}
    for v in ("pull", "callback"):
        out[v]["overhead_vs_session_percent"] = 100.0 * (med[v] / med["session"] - 1.0)
        out[v]["cpu_overhead_vs_session_percent"] = 100.0 * (cpu[v] / cpu["session"] - 1.0)
    for ref in ("fitter_main", "fitter_thread"):
        out["session"][f"overhead_vs_{ref}_percent"] = 100.0 * (med["session"] / med[ref] - 1.0)
        out["session"][f"cpu_overhead_vs_{ref}_percent"] = 100.0 * (cpu["session"] / cpu[ref] - 1.0)
    return out


def emit_cost(n: int = 50_000) -> dict[str, float]:
    """Seconds per progress event (built and emitted) with no subscriber, a pull one, a callback one."""
    from paceui.fit.metrics import FitMetrics
    from paceui.session import EventBus, Progress

    m, out = FitMetrics(), {}
    for variant in ("none", "none", "pull", "callback"):  # the first pass warms up
        bus, sink = EventBus(), []
        if variant == "pull":
            bus.subscribe()  # never drained: coalescing keeps it at one pending event
        elif variant == "callback":
            bus.subscribe(lambda ev, sink=sink: sink.append(ev.kind))
        t = time.perf_counter()
        for i in range(n):
            bus.emit(Progress(i, 0, 0, i, 0.1, 10, m, None, False))
        out[variant] = (time.perf_counter() - t) / n
    return out


def pause_latency(path: Path, n: int) -> dict[str, Any]:
    from paceui.session import Progress, Session

    s = Session.load(path)
    s.path = None
    stamps: list[float] = []
    s.subscribe(lambda ev: stamps.append(time.perf_counter()) if isinstance(ev, Progress) else None)
    sub = s.subscribe(kinds=["paused"])
    rng = random.Random(0)
    lat: list[float] = []
    s.start()
    for _ in range(n):
        while len(stamps) < 2 + 2 * len(lat):
            time.sleep(0.001)
        per_it = statistics.median(b - a for a, b in zip(stamps, stamps[1:]))
        time.sleep(rng.uniform(0, 1.5 * per_it))
        t = time.perf_counter()
        s.pause()
        ev = sub.get(60)
        assert ev is not None
        lat.append(time.perf_counter() - t)
        s.resume()
    s.stop().result()
    s.close()
    its = [b - a for a, b in zip(stamps, stamps[1:])]
    return {"n": n, "mean_s": statistics.mean(lat), "median_s": statistics.median(lat), "max_s": max(lat),
            "iteration_median_s": statistics.median(its), "iteration_max_s": max(its)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--structures", type=int, default=20)
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--pauses", type=int, default=20)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    import numba

    with tempfile.TemporaryDirectory() as tmp:
        path = prepare(Path(tmp), a.structures)
        res: dict[str, Any] = {"structures": a.structures, "iterations": a.iterations, "repeat": a.repeat,
                               "numba_threads": numba.get_num_threads()}
        res["throughput"] = throughput(path, a.iterations, a.repeat)
        res["pause_latency"] = pause_latency(path, a.pauses)
        res["emit_seconds"] = emit_cost()
    tp, pl = res["throughput"], res["pause_latency"]
    show: Callable[[str], str] = lambda v: f"{tp[v]['iterations_per_s']:7.3f} it/s"  # noqa: E731
    pc: Callable[[str, str], str] = lambda v, ref: (  # noqa: E731
        f"wall {tp[v][f'overhead_vs_{ref}_percent']:+6.2f} %, CPU {tp[v][f'cpu_overhead_vs_{ref}_percent']:+6.2f} %")
    print(f"Zuo Cu, {a.structures} structures, demo basis; {a.iterations} iterations x {a.repeat} (median)")
    print(f"  bare Fitter loop, main    {show('fitter_main')}")
    print(f"  bare Fitter loop, thread  {show('fitter_thread')}")
    print(f"  Session, no subscriber    {show('session')}  ({pc('session', 'fitter_thread')} vs bare loop in a "
          f"thread; {pc('session', 'fitter_main')} vs main thread)")
    print(f"  + slow pull subscriber    {show('pull')}  ({pc('pull', 'session')} vs no subscriber)")
    print(f"  + callback subscriber     {show('callback')}  ({pc('callback', 'session')} vs no subscriber)")
    print(f"pause latency over {pl['n']} pauses: mean {1e3 * pl['mean_s']:.1f} ms, "
          f"median {1e3 * pl['median_s']:.1f} ms, max {1e3 * pl['max_s']:.1f} ms; "
          f"iteration median {1e3 * pl['iteration_median_s']:.1f} ms, max {1e3 * pl['iteration_max_s']:.1f} ms")
    it = tp["session"]["seconds"] / a.iterations
    print("cost of one progress event (built + emitted): " + ", ".join(
        f"{k} {1e6 * v:.1f} µs ({100 * v / it:.3f} % of an iteration)" for k, v in res["emit_seconds"].items()))
    if a.json:
        a.json.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
