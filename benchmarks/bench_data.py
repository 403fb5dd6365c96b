"""Benchmark the data layer on the Zuo Cu training set (262 structures, 27,416 atoms, rc 7 Å).

Usage:  python benchmarks/bench_data.py [--data FILE] [--cutoff 7] [--repeat 3] [--with-ase]

Measures: loading the extxyz file into a dataframe, packed neighbour lists cold (first build
after numba warm-up, without and with writing the cache), cache hits, and — with --with-ase,
for comparison only (about 40 s) — ASE's ``neighbor_list`` over the same structures.
Goals: cold build <= 0.5 s, cache hit <= 0.1 s.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, TypeVar

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEFAULT_DATA = REPO.parent / "shared" / "zuo" / "Cu_train.xyz.gz"
GOAL_COLD = 0.5  # s
GOAL_HIT = 0.1  # s

T = TypeVar("T")

_HIT_PROBE = """
import sys, time
from paceui.data import build_packed_neighbors, load_dataframe
atoms = list(load_dataframe(sys.argv[1])["ase_atoms"])
els = sorted({s for a in atoms for s in a.get_chemical_symbols()})
t = time.perf_counter()
p = build_packed_neighbors(atoms, float(sys.argv[2]), els, cache_dir=sys.argv[3], progress=False)
t1 = time.perf_counter()
p.vec.sum() + p.nbr_j.sum() + p.nbr_offsets.sum()  # first pass over the (memory-mapped) arrays
print(t1 - t, time.perf_counter() - t1)
"""


def hit_in_fresh_process(data: Path, cutoff: float, cache: str) -> tuple[float, float]:
    """Cache-hit time (s) of the call alone, in a new Python process (as in a second fit run),
    and of a first pass over the arrays (pages of the memory-mapped file come in then)."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    res = subprocess.run([sys.executable, "-c", _HIT_PROBE, str(data), str(cutoff), cache], env=env,
                         capture_output=True, text=True, check=True)
    hit, touch = res.stdout.strip().splitlines()[-1].split()
    return float(hit), float(touch)


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    """Wall time (s) of one call and its result."""
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--cutoff", type=float, default=7.0, help="neighbour cutoff (Å)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--with-ase", action="store_true", help="also time ASE's neighbor_list (~40 s)")
    args = ap.parse_args()
    if not args.data.exists():
        sys.exit(f"data set not found: {args.data}")

    import numba

    from paceui.data import build_packed_neighbors, load_dataframe

    t_load, df = timed(lambda: load_dataframe(args.data))
    t_load2 = min(timed(lambda: load_dataframe(args.data))[0] for _ in range(max(1, args.repeat - 1)))
    atoms = list(df["ase_atoms"])
    elements = sorted({s for a in atoms for s in a.get_chemical_symbols()})
    n_atoms = sum(len(a) for a in atoms)
    print(f"{args.data.name}: {len(atoms)} structures, {n_atoms} atoms, elements {elements}; cutoff "
          f"{args.cutoff} Å; numba {numba.__version__}, {numba.get_num_threads()} threads, {os.cpu_count()} cores")

    t_warm, _ = timed(lambda: build_packed_neighbors(atoms[:2], args.cutoff, elements, use_cache=False,
                                                     progress=False))
    rows: list[tuple[str, float, float | None]] = [("load dataframe (first)", t_load, None),
                                                    ("load dataframe (best)", t_load2, None),
                                                    ("numba warm-up (2 structures)", t_warm, None)]

    def cold() -> object:
        return build_packed_neighbors(atoms, args.cutoff, elements, use_cache=False, progress=False)

    t_cold, pack = timed(cold)
    n_pairs = pack.n_pairs  # type: ignore[attr-defined]
    del pack
    t_cold_best = min(timed(cold)[0] for _ in range(args.repeat))
    rows.append(("packed lists cold, first (no cache)", t_cold, GOAL_COLD))
    rows.append((f"packed lists cold, best of {args.repeat}", t_cold_best, GOAL_COLD))
    with tempfile.TemporaryDirectory() as cache:
        t_write, _ = timed(lambda: build_packed_neighbors(atoms, args.cutoff, elements, cache_dir=cache,
                                                          progress=False))
        rows.append(("cold build + cache write", t_write, None))
        size = sum(f.stat().st_size for f in Path(cache).glob("*.npz"))

        def hit() -> object:
            return build_packed_neighbors(atoms, args.cutoff, elements, cache_dir=cache, progress=False)

        t_hit, _ = timed(hit)
        t_hit_best = min(timed(hit)[0] for _ in range(args.repeat))
        rows.append(("cache hit, first", t_hit, GOAL_HIT))
        rows.append((f"cache hit, best of {args.repeat}", t_hit_best, GOAL_HIT))
        t_fresh, t_touch = hit_in_fresh_process(args.data, args.cutoff, cache)
        rows.append(("cache hit in a fresh process", t_fresh, GOAL_HIT))
        rows.append(("  + first pass over its arrays", t_touch, None))

    t_ase = None
    if args.with_ase:
        from ase.neighborlist import neighbor_list as ase_nl

        t_ase, n_ase = timed(lambda: sum(len(ase_nl("ijD", a, args.cutoff)[0]) for a in atoms))
        rows.append(("ASE neighbor_list ijD (comparison)", t_ase, None))
        if n_ase != n_pairs:
            print(f"WARNING: ASE found {n_ase} pairs, paceui {n_pairs}")

    print(f"\n{'step':40s} {'time [s]':>9s} {'goal [s]':>9s}  status")
    for name, t, goal in rows:
        status = "" if goal is None else ("met" if t <= goal else "MISSED")
        print(f"{name:40s} {t:9.3f} {'' if goal is None else f'{goal:9.2f}':>9s}  {status}")
    print(f"\npairs: {n_pairs} ({n_pairs / n_atoms:.1f} per atom); cache file {size / 2**20:.1f} MiB")
    print(f"ratios: cache hit / cold build = {t_hit_best / t_cold_best:.3f}; "
          f"cold build + write / cold build = {t_write / t_cold_best:.2f}; "
          f"load / cold build = {t_load2 / t_cold_best:.2f}")
    if t_ase is not None:
        print(f"        ASE / paceui cold = {t_ase / t_cold_best:.0f}x; ASE / cache hit = {t_ase / t_hit_best:.0f}x")


if __name__ == "__main__":
    main()
