"""The target potential of a fit: from ``potential:`` of input.yaml (a basis to build, or a file, optionally
reset) and the optional initial potential (a file or a list of files, summed)."""

from __future__ import annotations

import datetime as _dt
import getpass
from pathlib import Path

from paceui import __version__
from paceui.ace.basis import build_potential
from paceui.ace.potential import ACEPotential, delta_crad
from paceui.ace.yaml_io import load_potential
from paceui.fit.config import InputConfig


def reset_potential(pot: ACEPotential) -> ACEPotential:
    """crad = δ_nk and every function coefficient 0 (``potential: reset: true``)."""
    out = pot.copy()
    for b in out.blocks:
        if b.bond is not None:
            b.bond.crad = delta_crad(*b.bond.crad.shape[:1], b.bond.lmax, b.bond.nradbase)
        for f in b.functions:
            f.coeffs = [0.0] * len(f.coeffs)
    return out


def merge_potentials(pots: list[ACEPotential]) -> ACEPotential:
    """Sum of potentials (an ``initial_potential`` list): blocks merged, functions appended."""
    out = pots[0].copy()
    by = {b.elements: b for b in out.blocks}
    for p in pots[1:]:
        for b in p.blocks:
            if b.elements in by:
                have = {(f.elements, f.ns, f.ls, f.LS) for f in by[b.elements].functions}
                by[b.elements].functions += [f for f in b.functions if (f.elements, f.ns, f.ls, f.LS) not in have]
            else:
                out.blocks.append(b)
                by[b.elements] = b
    out.blocks.sort(key=lambda b: (len(b.elements), b.elements))
    return out


def build_target(cfg: InputConfig) -> tuple[ACEPotential, ACEPotential | None]:
    """Target potential from ``potential:`` (dict or file) and the optional initial potential."""
    base = Path(cfg.base_dir)
    resolve = lambda f: str(f if Path(f).is_absolute() or Path(f).exists() else base / f)  # noqa: E731
    meta = {"starttime": str(_dt.datetime.now()), "user": getpass.getuser(), "paceui_version": __version__,
            **cfg.metadata}
    pot_cfg = cfg.potential
    initial = None
    if isinstance(pot_cfg, str):
        target = load_potential(resolve(pot_cfg))
    else:
        if "filename" in pot_cfg:
            target = load_potential(resolve(pot_cfg["filename"]))
            if pot_cfg.get("reset"):
                target = reset_potential(target)
        else:
            target = build_potential(pot_cfg, seed=cfg.seed)
        ip = pot_cfg.get("initial_potential")
        if ip:
            files = ip if isinstance(ip, list) else [ip]
            initial = merge_potentials([load_potential(resolve(f)) for f in files])
    target.metadata.update(meta)
    return target, initial
