"""Helpers for tests and benchmarks of sessions: tiny Zuo Cu sessions and a worker for fresh processes.

``python -m paceui.session.testing continue PATH N THREADS`` loads the session at PATH, fits N more
iterations with THREADS numba threads and saves it; ``... crash PATH THREADS [SLOW_S]`` loads it and
fits until killed (a finished fit goes on), printing ``I <total_iterations>`` after every iteration, ``S <generation>
<total_iterations>`` after every save and ``W`` before every file a save writes (each write slowed
by SLOW_S seconds, so that a kill lands inside a save).
"""

from __future__ import annotations

import gzip
import io
import os
import sys
from pathlib import Path
from typing import Any

import pandas as pd

ASSETS = Path(__file__).resolve().parents[2] / "assets"
ZUO_TRAIN = ASSETS / "zuo" / "Cu_train.xyz.gz"
TINY_BASIS: dict[str, Any] = {
    "elements": ["Cu"],
    "embeddings": {"ALL": {"npot": "FinnisSinclairShiftedScaled", "fs_parameters": [1, 1, 1, 0.5], "ndensity": 2}},
    "bonds": {"ALL": {"radbase": "ChebExpCos", "radparameters": [5.25], "rcut": 4.5, "dcut": 0.01}},
    "functions": {"ALL": {"nradmax_by_orders": [6, 2, 1], "lmax_by_orders": [0, 1, 1]}}}
"""A 14-function Cu basis (rcut 4.5 Å) that fits in milliseconds per iteration."""


def zuo_frame(n: int = 10, start: int = 0) -> pd.DataFrame:
    """Structures ``start:start+n`` of the bundled Zuo Cu training set (BSD-3) as a dataset frame."""
    import ase.io

    from paceui.data.io import frame_from_atoms

    if not ZUO_TRAIN.exists():
        raise FileNotFoundError(f"{ZUO_TRAIN} not found: the Zuo Cu data ship in assets/ of the paceui checkout")
    text = io.StringIO(gzip.decompress(ZUO_TRAIN.read_bytes()).decode())
    images = ase.io.read(text, index=f"{start}:{start + n}", format="extxyz")
    return frame_from_atoms(images if isinstance(images, list) else [images], str(ZUO_TRAIN))


def tiny_session(path: str | os.PathLike[str] | None = None, n: int = 10, fit: dict[str, Any] | None = None,
                 data: Any = None, **kw: Any) -> Any:
    """A session on ``n`` Zuo structures (3 of them test) with :data:`TINY_BASIS`; ``fit`` adds to
    ``{loss: {kappa: 0.3}, maxiter: 100}``."""
    from paceui.session import Session

    fit_cfg = {"loss": {"kappa": 0.3, "L2_coeffs": 1e-8}, "maxiter": 100, **(fit or {})}
    return Session.from_objects(TINY_BASIS, zuo_frame(n) if data is None else data, fit_cfg, path=path,
                                data_config={"reference_energy": "auto", "test_size": 3}, **kw)


def comparable(history: pd.DataFrame) -> pd.DataFrame:
    """The history without its timing column (the only value that differs between identical fits)."""
    return history.drop(columns=[c for c in history.columns if c.endswith("time_per_atom_us")])


def _slow_writes(delay: float) -> None:
    """Make every atomic write of a save announce itself (``W``) and take ``delay`` seconds longer."""
    import time

    from paceui.session import session_data, store

    def slowed(orig: Any) -> Any:
        def write(path: Any, data: Any, *a: Any) -> Any:
            print("W", flush=True)
            time.sleep(delay)
            return orig(path, data, *a)
        return write

    for mod in (store, session_data):
        mod.atomic_write_bytes = slowed(mod.atomic_write_bytes)  # type: ignore[attr-defined]
        mod.atomic_write_text = slowed(mod.atomic_write_text)  # type: ignore[attr-defined]


def main(argv: list[str]) -> int:
    import numba

    from paceui.session import Phase, Progress, Saved, Session

    cmd, path, rest = argv[0], argv[1], argv[2:]
    if cmd == "continue":
        numba.set_num_threads(int(rest[1]))
        s = Session.load(path)
        s.run(iterations=int(rest[0]))
        s.save()
        s.close()
        return 0
    if cmd == "crash":
        numba.set_num_threads(int(rest[0]))
        if len(rest) > 1:
            _slow_writes(float(rest[1]))
        s = Session.load(path)

        def show(ev: Any) -> None:
            if isinstance(ev, Progress) and not ev.initial:
                print("I", ev.total_iterations, flush=True)
            elif isinstance(ev, Saved):
                print("S", ev.generation, ev.total_iterations, flush=True)
        s.subscribe(show)
        while s.run().phase is Phase.FINISHED:  # a finished fit goes on with a fresh optimizer
            pass
        return 0
    raise SystemExit(f"unknown command {cmd!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
