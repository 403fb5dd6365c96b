"""The ``.yace`` file: a C-tilde potential as read by LAMMPS ``pair_style pace`` (docs/persistence.md §1).

Writing converts a B-basis potential first and is atomic; reading validates every field and raises
:class:`PotentialError` naming the file and the entry.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from paceui._atomic import atomic_write_text
from paceui.ace.ctilde import CTildeFunction, CTildePotential, bbasis_to_ctilde
from paceui.ace.potential import RADIAL_BASES, ACEPotential, Bond, Embedding, PotentialError
from paceui.ace.yaml_io import fmt_flow, fmt_scalar, load_yaml_file


def ctilde_to_yace(ct: CTildePotential) -> str:
    """Serialise to the ``.yace`` text read by LAMMPS ``pair_style pace``."""
    out = [f"elements: {fmt_flow(ct.elements)}", f"E0: {fmt_flow([float(x) for x in ct.E0])}",
           f"deltaSplineBins: {fmt_scalar(float(ct.delta_spline_bins))}", "embeddings:"]
    for mu, e in sorted(ct.embeddings.items()):
        out.append(f"  {mu}: {{ndensity: {e.ndensity}, FS_parameters: {fmt_flow([float(x) for x in e.fs_parameters])}, "
                   f"npoti: {e.npoti}, rho_core_cutoff: {fmt_scalar(float(e.rho_core_cut))}, "
                   f"drho_core_cutoff: {fmt_scalar(float(e.drho_core_cut))}}}")
    out.append("bonds:")
    for (a, b), bd in sorted(ct.bonds.items()):
        out.append(f"  [{a}, {b}]: {{nradmax: {bd.nradmax}, lmax: {bd.lmax}, nradbasemax: {bd.nradbase}, "
                   f"radbasename: {bd.radbase}, radparameters: {fmt_flow([float(x) for x in bd.radparameters])}, "
                   f"radcoefficients: {fmt_flow(bd.crad.tolist())}, prehc: {fmt_scalar(float(bd.core_repulsion[0]))}, "
                   f"lambdahc: {fmt_scalar(float(bd.core_repulsion[1]))}, rcut: {fmt_scalar(float(bd.rcut))}, "
                   f"dcut: {fmt_scalar(float(bd.dcut))}, rcut_in: {fmt_scalar(float(bd.r_in))}, "
                   f"dcut_in: {fmt_scalar(float(bd.delta_in))}, inner_cutoff_type: {bd.inner_cutoff_type}}}")
    out.append("functions:")
    for mu, lst in sorted(ct.functions.items()):
        out.append(f"  {mu}:")
        for f in lst:
            nd = f.ctildes.shape[1]
            out.append(f"    - {{mu0: {f.mu0}, rank: {f.rank}, ndensity: {nd}, num_ms_combs: {len(f.ms_combs)}, "
                       f"mus: {fmt_flow(list(f.mus))}, ns: {fmt_flow(list(f.ns))}, ls: {fmt_flow(list(f.ls))}, "
                       f"ms_combs: {fmt_flow(f.ms_combs.ravel().tolist())}, "
                       f"ctildes: {fmt_flow(f.ctildes.ravel().tolist())}}}")
    return "\n".join(out) + "\n"


def save_yace(ct: CTildePotential | ACEPotential, path: str | os.PathLike[str]) -> Path:
    """Write a ``.yace`` file atomically (converting a B-basis potential first)."""
    if isinstance(ct, ACEPotential):
        ct = bbasis_to_ctilde(ct)
    return atomic_write_text(path, ctilde_to_yace(ct))


def _req(d: dict[str, Any], key: str, where: str) -> Any:
    if key not in d:
        raise PotentialError(f"{where}: required field '{key}' is missing")
    return d[key]


def load_yace(path: str | os.PathLike[str]) -> CTildePotential:
    """Read a ``.yace`` (C-tilde) potential."""
    src = str(path)
    d = load_yaml_file(path)
    if not isinstance(d, dict):
        raise PotentialError(f"{src}: top level must be a mapping")
    elements = [str(e) for e in _req(d, "elements", src)]
    emb: dict[int, Embedding] = {}
    for mu, e in _req(d, "embeddings", src).items():
        w = f"{src}: embeddings[{mu}]"
        emb[int(mu)] = Embedding(ndensity=int(_req(e, "ndensity", w)), npoti=str(_req(e, "npoti", w)),
                                 fs_parameters=[float(x) for x in _req(e, "FS_parameters", w)],
                                 rho_core_cut=float(e.get("rho_core_cutoff", 100000.0)),
                                 drho_core_cut=float(e.get("drho_core_cutoff", 250.0)))
    bonds: dict[tuple[int, int], Bond] = {}
    for key, b in _req(d, "bonds", src).items():
        w = f"{src}: bonds[{key}]"
        if not (isinstance(key, tuple) and len(key) == 2):
            raise PotentialError(f"{w}: bond keys must be [i, j]")
        crad = np.asarray(_req(b, "radcoefficients", w), dtype=float)
        shape = (int(_req(b, "nradmax", w)), int(_req(b, "lmax", w)) + 1, int(_req(b, "nradbasemax", w)))
        if crad.size == 0 and 0 in shape:  # e.g. a pure pair potential: nradmax 0, radcoefficients []
            crad = np.zeros(shape)
        if crad.shape != shape:
            raise PotentialError(f"{w}: radcoefficients has shape {crad.shape}, expected {list(shape)}")
        rb = str(_req(b, "radbasename", w))
        if rb not in RADIAL_BASES:
            raise PotentialError(f"{w}: radbasename '{rb}' unknown, expected one of {list(RADIAL_BASES)}")
        bonds[(int(key[0]), int(key[1]))] = Bond(
            radbase=rb, radparameters=[float(x) for x in _req(b, "radparameters", w)],
            rcut=float(_req(b, "rcut", w)), dcut=float(_req(b, "dcut", w)), crad=crad,
            r_in=float(b.get("rcut_in", 0.0)), delta_in=float(b.get("dcut_in", 0.0)),
            inner_cutoff_type=str(b.get("inner_cutoff_type", "density")),
            core_repulsion=[float(b.get("prehc", 0.0)), float(b.get("lambdahc", 0.0))])
    functions: dict[int, list[CTildeFunction]] = {i: [] for i in range(len(elements))}
    for mu, lst in (d.get("functions") or {}).items():
        for j, f in enumerate(lst):
            w = f"{src}: functions[{mu}][{j}]"
            rank, nd, nc = int(_req(f, "rank", w)), int(_req(f, "ndensity", w)), int(_req(f, "num_ms_combs", w))
            ms = np.asarray(_req(f, "ms_combs", w), dtype=np.int64)
            cts = np.asarray(_req(f, "ctildes", w), dtype=float)
            if ms.size != nc * rank or cts.size != nc * nd:
                raise PotentialError(f"{w}: ms_combs/ctildes sizes do not match num_ms_combs={nc}, rank={rank}")
            functions[int(mu)].append(CTildeFunction(
                mu0=int(_req(f, "mu0", w)), mus=tuple(int(x) for x in _req(f, "mus", w)),
                ns=tuple(int(x) for x in _req(f, "ns", w)), ls=tuple(int(x) for x in _req(f, "ls", w)),
                ms_combs=ms.reshape(nc, rank), ctildes=cts.reshape(nc, nd)))
    types = {b.inner_cutoff_type for b in bonds.values()}
    return CTildePotential(elements=elements, embeddings=emb, bonds=bonds, functions=functions,
                           E0=np.asarray(d.get("E0", [0.0] * len(elements)), dtype=float),
                           delta_spline_bins=float(d.get("deltaSplineBins", 0.001)), source=src,
                           inner_cutoff_type=types.pop() if len(types) == 1 else "density")
