"""The target potential of a fit: from ``potential:`` of input.yaml (a basis to build, or a file, optionally
reset) and the optional initial potential (a file or a list of files, summed)."""

from __future__ import annotations

import datetime as _dt
import getpass
import logging
import warnings
from pathlib import Path
from typing import Any

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
            b.bond.crad = delta_crad(b.bond.crad.shape[0], b.bond.lmax, b.bond.nradbase)
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
            check_initial(target, initial, ", ".join(map(str, files)))
    target.metadata.update(meta)
    return target, initial


class UpfitWarning(UserWarning):
    """An initial potential whose setup differs from the target where the ladder keeps the initial one."""


def check_initial(target: ACEPotential, initial: ACEPotential, name: str) -> None:
    """Refuse an initial potential the target cannot continue (other elements, a larger cutoff than the
    neighbour lists built for the target); warn where the ladder keeps the initial bond's radial setup."""
    from paceui.ace.potential import PotentialError

    extra = sorted(set(initial.elements) - set(target.elements))
    if extra:
        raise PotentialError(f"initial potential {name}: elements {extra} are not in the target's "
                             f"{target.elements}; give a potential of the target's elements")
    if initial.cutoff > target.cutoff + 1e-12:
        raise PotentialError(f"initial potential {name}: cutoff {initial.cutoff:g} Å is larger than the target's "
                             f"{target.cutoff:g} Å (the neighbour lists are built for the target); set the target's "
                             f"bonds rcut to {initial.cutoff:g} or use an initial potential with rcut <= "
                             f"{target.cutoff:g}")
    tb = target.bonds()
    for pair, b in initial.bonds().items():
        t = tb.get(pair)
        if t is None or pair[0] > pair[1]:
            continue
        diff = [f"{k} {getattr(b, k)!r} (target {getattr(t, k)!r})" for k in
                ("rcut", "dcut", "radbase", "radparameters", "r_in", "delta_in", "inner_cutoff_type")
                if getattr(b, k) != getattr(t, k)]
        if diff:
            warnings.warn(f"initial potential {name}: bond {pair[0]}-{pair[1]} keeps the initial potential's "
                          f"{', '.join(diff)} through the ladder", UpfitWarning, stacklevel=2)


def stored_reference_energy(data: Any, *pots: ACEPotential | None) -> Any:
    """The ``data:`` section with ``reference_energy`` from a potential's metadata when it gives none
    (as pacemaker does on upfit), so the energy zero of a continued fit does not move."""
    d = {"filename": data} if isinstance(data, (str, list)) else dict(data)
    if d.get("reference_energy") is not None:
        return d
    for pot in pots:
        ref = None if pot is None else pot.metadata.get("reference_energy")
        if ref:
            logging.getLogger("paceui.fit").info(f"reference_energy from the potential's metadata: {ref}")
            warnings.warn(f"data: no reference_energy given; using the one stored in the potential's metadata "
                          f"({ref})", UpfitWarning, stacklevel=2)
            return {**d, "reference_energy": ref}
    return d
