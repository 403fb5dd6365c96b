"""Build a B-basis potential from pacemaker's ``potential:`` section (docs/model.md §5).

Embeddings, bonds and function shapes are given per ALL / UNARY / BINARY / ... / explicit element
combination, later keys overriding earlier ones; the functions of every block are enumerated over
species and radial indices and coupled with the independent (ls, LS) of :mod:`couplings`.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import numpy as np

from paceui._keys import check_keys
from paceui.ace.coupling import independent_couplings, unify_key
from paceui.ace.ladder import ladder_sorted, power_order_key
from paceui.ace.potential import (
    EMBEDDINGS,
    RADIAL_BASES,
    ACEPotential,
    BFunction,
    Bond,
    Embedding,
    PotentialError,
    SpeciesBlock,
    delta_crad,
)

ORDER_NAMES = ["UNARY", "BINARY", "TERNARY", "QUATERNARY", "QUINARY", "SENARY", "SEPTENARY", "OCTONARY"]
_EMB_KEYS = {"npot", "fs_parameters", "ndensity", "rho_core_cut", "drho_core_cut"}
_BOND_KEYS = {"radbase", "radparameters", "rcut", "dcut", "NameOfCutoffFunction", "r_in", "delta_in",
              "inner_cutoff_type", "core-repulsion", "nradbase", "nradmax", "lmax"}
_FUNC_KEYS = {"nradmax_by_orders", "lmax_by_orders", "coefs_init"}
POTENTIAL_KEYS = {"deltaSplineBins", "elements", "embeddings", "bonds", "functions", "initial_potential", "filename",
                  "reset"}
"""Implemented keys of the ``potential:`` mapping (``overwrite_blocks_from_initial_bbasis`` warns)."""
_SECTIONS = {"embeddings": _EMB_KEYS, "bonds": _BOND_KEYS, "functions": _FUNC_KEYS}


def check_potential_section(cfg: Any, source: str = "") -> None:
    """Keys and plain values of a ``potential:`` mapping (every section, every entry); raises
    :class:`PotentialError` naming the file, the section and the key (with the closest valid one)."""
    check_keys(cfg, POTENTIAL_KEYS, "potential", source, error=PotentialError, no_effect="potential")
    pre = f"{source}: " if source else ""
    if "filename" not in cfg and "elements" not in cfg:
        raise PotentialError(f"{pre}potential.elements is required (list of element symbols), or "
                             "potential.filename (a potential file)")
    els = cfg.get("elements")
    if els is not None:
        if isinstance(els, str):
            els = split_elements(els) if els.strip() else []
        if not isinstance(els, (list, tuple)) or not els:
            raise PotentialError(f"{pre}potential.elements must be a non-empty list of element symbols, got {els!r}")
        from ase.data import atomic_numbers

        for e in els:
            if str(e) not in atomic_numbers or str(e) == "X":
                raise PotentialError(f"{pre}potential.elements: '{e}' is not a chemical element symbol")
        if len(set(map(str, els))) != len(els):
            raise PotentialError(f"{pre}potential.elements lists an element twice: {list(els)}")
    if "deltaSplineBins" in cfg:
        _positive(cfg["deltaSplineBins"], f"{pre}potential.deltaSplineBins", hi=1.0)
    for sec, allowed in _SECTIONS.items():
        spec = cfg.get(sec)
        if spec is None:
            continue
        if not isinstance(spec, dict):
            raise PotentialError(f"{pre}potential.{sec} must be a mapping, got {spec!r}")
        for key, val in spec.items():
            if sec == "functions" and key == "number_of_functions_per_element":
                if isinstance(val, bool) or not isinstance(val, int) or val < 1:
                    raise PotentialError(f"{pre}potential.functions.number_of_functions_per_element must be a "
                                         f"whole number >= 1, got {val!r}")
                continue
            if key not in ("ALL", *ORDER_NAMES):
                try:
                    combo = split_elements(key)
                except PotentialError:
                    near = _closest_block_key(key)
                    raise PotentialError(f"{pre}potential.{sec}: unknown key '{key}' (not ALL, UNARY, BINARY, ... or "
                                         f"an element combination){near}") from None
                if els is not None and not set(combo) <= set(map(str, els)):
                    near = _closest_block_key(key)
                    raise PotentialError(f"{pre}potential.{sec}: key '{key}' names elements "
                                         f"{sorted(set(combo) - set(map(str, els)))} not in potential.elements "
                                         f"{list(els)}{near}")
            check_keys(val, allowed, f"potential.{sec}.{key}", source, error=PotentialError)
            _check_values(val, f"{pre}potential.{sec}.{key}")


def _closest_block_key(key: Any) -> str:
    from paceui._keys import closest

    near = closest(key, ["ALL", *ORDER_NAMES, "number_of_functions_per_element"])
    return f"; did you mean '{near}'?" if near else ""


def _positive(v: Any, where: str, hi: float | None = None, zero: bool = False) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise PotentialError(f"{where} must be a number, got {v!r}") from None
    if isinstance(v, bool) or not np.isfinite(x) or (x < 0 if zero else x <= 0) or (hi is not None and x > hi):
        rng = ">= 0" if zero else "> 0"
        raise PotentialError(f"{where} must be a finite number {rng}{f' and <= {hi:g}' if hi else ''}, got {v!r}")
    return x


def _check_values(d: dict[str, Any], where: str) -> None:
    """Plain value checks of one embeddings/bonds/functions entry (shapes are checked when building)."""
    for k in ("rcut",):
        if k in d:
            _positive(d[k], f"{where}.{k}", hi=100.0)
    for k in ("dcut", "r_in", "delta_in", "rho_core_cut", "drho_core_cut"):
        if k in d:
            _positive(d[k], f"{where}.{k}", zero=True)
    for k in ("ndensity", "nradbase", "nradmax", "lmax"):
        if k in d and (isinstance(d[k], bool) or not isinstance(d[k], int) or d[k] < (1 if k == "ndensity" else 0)):
            raise PotentialError(f"{where}.{k} must be a whole number >= {1 if k == 'ndensity' else 0}, got {d[k]!r}")
    for k in ("nradmax_by_orders", "lmax_by_orders"):
        if k in d:
            v = d[k]
            if not isinstance(v, list) or not v or any(isinstance(x, bool) or not isinstance(x, int) or x < 0
                                                       for x in v):
                raise PotentialError(f"{where}.{k} must be a non-empty list of whole numbers >= 0, got {v!r}")
    if "coefs_init" in d and d["coefs_init"] not in ("zero", "random"):
        raise PotentialError(f"{where}.coefs_init must be 'zero' or 'random', got {d['coefs_init']!r}")
    for k in ("radparameters", "fs_parameters", "core-repulsion"):
        if k in d:
            v = d[k] if isinstance(d[k], list) else [d[k]]
            try:
                ok = all(np.isfinite(float(x)) and not isinstance(x, bool) for x in v)
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise PotentialError(f"{where}.{k} must be a list of finite numbers, got {d[k]!r}")
    if d.get("inner_cutoff_type", "distance") not in ("distance", "density", "zbl"):
        raise PotentialError(f"{where}.inner_cutoff_type must be distance, density or zbl, "
                             f"got {d['inner_cutoff_type']!r}")


def split_elements(key: str) -> tuple[str, ...]:
    """'AlNi', 'Al Ni', '(Al, Ni)' or 'Al-Ni' -> ('Al', 'Ni')."""
    s = str(key).strip()
    parts = re.findall(r"[A-Z][a-z]?", s)
    if not parts or re.sub(r"[A-Z][a-z]?|[\s,()\-\[\]']", "", s):
        raise PotentialError(f"'{key}' is not an element combination (use e.g. AlNi, ALL, UNARY, BINARY)")
    return tuple(parts)


def block_keys(elements: list[str]) -> list[tuple[str, ...]]:
    """Every block (central, *sorted others): unary, then binary, ... in sorted order."""
    out = []
    for order in range(len(elements)):
        for el in elements:
            others = [e for e in elements if e != el]
            for combo in itertools.combinations(others, order):
                out.append((el,) + combo)
    return sorted(out, key=lambda b: (len(b), b))


def _resolve(spec: dict[str, Any] | None, target: tuple[str, ...], section: str, elements: list[str],
             allowed: set[str]) -> dict[str, Any]:
    """Merge the entries of a section that apply to ``target`` with precedence ALL < ORDER < explicit."""
    merged: dict[str, Any] = {}
    spec = spec or {}
    order = ORDER_NAMES[len(set(target)) - 1] if len(set(target)) <= len(ORDER_NAMES) else None
    explicit: list[tuple[str, dict]] = []
    generic: list[tuple[int, dict]] = []
    for key, val in spec.items():
        if section == "functions" and key == "number_of_functions_per_element":
            continue
        if not isinstance(val, dict):
            raise PotentialError(f"potential.{section}.{key} must be a mapping, got {val!r}")
        check_keys(val, allowed, f"potential.{section}.{key}", error=PotentialError)
        if key == "ALL":
            generic.append((0, val))
        elif key in ORDER_NAMES:
            if key == order:
                generic.append((1, val))
        else:
            els = split_elements(key)
            bad = [e for e in els if e not in elements]
            if bad:
                raise PotentialError(f"potential.{section}.{key}: elements {bad} are not in "
                                     f"potential.elements {elements}")
            if _matches(els, target, section):
                explicit.append((key, val))
    for _, val in sorted(generic, key=lambda x: x[0]):
        merged.update(val)
    for _, val in explicit:
        merged.update(val)
    return merged


def _matches(els: tuple[str, ...], target: tuple[str, ...], section: str) -> bool:
    if section == "embeddings":
        return len(els) == 1 and els[0] == target[0]
    if section == "bonds":
        t = target if len(target) == 2 else (target[0], target[0])
        e = els if len(els) == 2 else (els[0], els[0])
        return e == t or e == t[::-1]
    return els[0] == target[0] and sorted(els[1:]) == sorted(target[1:]) and len(els) == len(target)


def _embedding(d: dict[str, Any], el: str) -> Embedding:
    npot = d.get("npot", "FinnisSinclairShiftedScaled")
    if npot not in EMBEDDINGS:
        raise PotentialError(f"potential.embeddings ({el}): npot '{npot}' unknown, expected one of {list(EMBEDDINGS)}")
    nd = int(d.get("ndensity", 1))
    fs = [float(x) for x in d.get("fs_parameters", [1.0, 1.0] * nd)]
    if len(fs) != 2 * nd:
        raise PotentialError(f"potential.embeddings ({el}): fs_parameters needs 2*ndensity = {2 * nd} values")
    return Embedding(ndensity=nd, npoti=npot, fs_parameters=fs, rho_core_cut=float(d.get("rho_core_cut", 100000)),
                     drho_core_cut=float(d.get("drho_core_cut", 250)))


def _bond(d: dict[str, Any], pair: tuple[str, str]) -> Bond:
    where = f"potential.bonds ({pair[0]}-{pair[1]})"
    radbase = str(d.get("radbase", "ChebExpCos"))
    if radbase not in RADIAL_BASES:
        raise PotentialError(f"{where}: radbase '{radbase}' unknown, expected one of {list(RADIAL_BASES)}")
    if "rcut" not in d:
        raise PotentialError(f"{where}: 'rcut' is required")
    rp = d.get("radparameters", [5.25])
    ict = d.get("inner_cutoff_type", "distance")
    core = d.get("core-repulsion", [0.0, 0.0])
    return Bond(radbase=radbase, radparameters=[float(x) for x in (rp if isinstance(rp, list) else [rp])],
                rcut=float(d["rcut"]), dcut=float(d.get("dcut", 0.01)), crad=np.zeros((0, 1, 0)),
                r_in=float(d.get("r_in", 0.0)), delta_in=float(d.get("delta_in", 0.0)), inner_cutoff_type=str(ict),
                core_repulsion=[float(core[0]), float(core[1])],
                cutoff_function_name=str(d.get("NameOfCutoffFunction", "cos")))


def enumerate_block_functions(block: tuple[str, ...], nradmax_by_orders: list[int], lmax_by_orders: list[int],
                              ndensity: int) -> list[BFunction]:
    """All functions of one block in pacemaker's generation order (rank, species, n, couplings)."""
    mu0 = block[0]
    elms = sorted(set(block))
    if len(nradmax_by_orders) != len(lmax_by_orders):
        raise PotentialError(f"functions of block {' '.join(block)}: nradmax_by_orders and lmax_by_orders "
                             f"must have the same length")
    out: list[BFunction] = []
    for r, (nmax, lmax) in enumerate(zip(nradmax_by_orders, lmax_by_orders), start=1):
        seen: set[tuple] = set()
        for mus in itertools.combinations_with_replacement(elms, r):
            if len({mu0, *mus}) != len(elms):
                continue
            for ns in itertools.product(range(1, int(nmax) + 1), repeat=r):
                abs_key = tuple(sorted(zip(mus, ns)))
                if abs_key in seen:
                    continue
                seen.add(abs_key)
                pairs = sorted(zip(mus, ns))
                mus_s, ns_s = tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)
                for ls, LS in independent_couplings(unify_key(mus_s, ns_s), int(lmax) if r > 1 else 0):
                    out.append(BFunction(elements=(mu0,) + mus_s, ns=ns_s, ls=ls, LS=LS, coeffs=[0.0] * ndensity))
    return out


def build_potential(cfg: dict[str, Any], seed: int = 42, metadata: dict[str, str] | None = None) -> ACEPotential:
    """Construct the target B-basis potential from a ``potential:`` mapping of input.yaml."""
    if "elements" not in cfg:
        raise PotentialError("potential.elements is required (list of element symbols)")
    check_potential_section(cfg)
    els = cfg["elements"]
    elements = sorted(split_elements(els) if isinstance(els, str) else (str(e) for e in els))
    emb_spec, bond_spec, func_spec = cfg.get("embeddings"), cfg.get("bonds"), cfg.get("functions") or {}
    embeddings = {el: _embedding(_resolve(emb_spec, (el,), "embeddings", elements, _EMB_KEYS), el) for el in elements}
    rng = np.random.default_rng(seed)
    blocks: list[SpeciesBlock] = []
    for bk in block_keys(elements):
        fs = _resolve(func_spec, bk, "functions", elements, _FUNC_KEYS)
        funcs: list[BFunction] = []
        if fs:
            for k in ("nradmax_by_orders", "lmax_by_orders"):
                if k not in fs:
                    raise PotentialError(f"potential.functions for block {' '.join(bk)}: '{k}' is required")
            funcs = enumerate_block_functions(bk, fs["nradmax_by_orders"], fs["lmax_by_orders"],
                                              embeddings[bk[0]].ndensity)
            if fs.get("coefs_init", "zero") == "random":
                for f in funcs:
                    f.coeffs = list(rng.normal(size=len(f.coeffs)) * 1e-4)
        blocks.append(SpeciesBlock(elements=bk, functions=funcs,
                                   embedding=embeddings[bk[0]] if len(bk) == 1 else None))
    nfe = func_spec.get("number_of_functions_per_element")
    if nfe is not None:
        keep = int(nfe) * len(elements) // len(blocks)
        for b in blocks:
            order = sorted(range(len(b.functions)), key=lambda i: power_order_key(b.functions[i]))
            b.functions = ladder_sorted([b.functions[i] for i in order[:keep]], "body_order")
    _attach_bonds(blocks, elements, bond_spec)
    return ACEPotential(blocks=blocks, delta_spline_bins=float(cfg.get("deltaSplineBins", 0.001)),
                        metadata=dict(metadata or {}), source="input.yaml:potential")


def _attach_bonds(blocks: list[SpeciesBlock], elements: list[str], bond_spec: Any) -> None:
    """Bond sizes = max n, l, k used by the functions (symmetric for A-B / B-A); crad = δ_nk."""
    need: dict[tuple[str, str], list[int]] = {}
    for b in blocks:
        for f in b.functions:
            for el, n, l in zip(f.elements[1:], f.ns, f.ls):
                for key in ((f.elements[0], el), (el, f.elements[0])):
                    s = need.setdefault(key, [0, 0, 0])
                    if f.rank == 1:
                        s[2] = max(s[2], n)
                    else:
                        s[0], s[1] = max(s[0], n), max(s[1], l)
    for b in blocks:
        if len(b.elements) > 2:
            continue
        pair = (b.elements[0], b.elements[-1])  # (A, A) of a unary block, (A, B) of a binary one
        spec = _resolve(bond_spec, pair, "bonds", elements, _BOND_KEYS)
        bond = _bond(spec, pair)
        n, l, k = need.get(pair, [0, 0, 0])
        n = max(n, int(spec.get("nradmax", 0)))
        l = max(l, int(spec.get("lmax", 0)))
        k = max(k, int(spec.get("nradbase", 0)), n)
        bond.crad = delta_crad(n, l, k)
        b.bond = bond
