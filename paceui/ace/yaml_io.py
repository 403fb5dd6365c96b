"""Read and write pacemaker's B-basis potential ``.yaml`` (docs/persistence.md (P1)).

Reading validates every field and raises :class:`PotentialError` naming the file, the block and the
field; writing follows pacemaker's key order and is atomic (temp file + rename).

Beneath it, the YAML helpers shared with the ``.yace`` format (:mod:`paceui.ace.yace`) and the input
and session files: reading uses libyaml when available, keeps timestamps as strings (pacemaker metadata
values are strings) and accepts flow sequences as mapping keys (``.yace`` bonds are keyed by ``[i, j]``);
writing is a small emitter with exact key order and shortest round-trip floats (``repr``).
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from paceui._atomic import atomic_write_text
from paceui.ace.coupling import expand_LS, validate_LS
from paceui.ace.potential import (
    EMBEDDINGS,
    INNER_CUTOFF_TYPES,
    RADIAL_BASES,
    ACEPotential,
    BFunction,
    Bond,
    Embedding,
    PotentialError,
    SpeciesBlock,
)

# ------------------------------------------------------------------ YAML reading and writing
_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[misc, valid-type]
    """Safe loader: no timestamps, list keys become tuples."""

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:  # noqa: D102
        if not isinstance(node, yaml.MappingNode):
            return super().construct_mapping(node, deep=deep)
        self.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, list):
                key = tuple(key)
            out[key] = self.construct_object(value_node, deep=deep)
        return out


_Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in res if tag != "tag:yaml.org,2002:timestamp"]
    for ch, res in _Base.yaml_implicit_resolvers.items()
}
_Loader.add_constructor("tag:yaml.org,2002:map", _Loader.construct_mapping)


def load_yaml_file(path: str | os.PathLike[str]) -> Any:
    """Parse a YAML file; syntax errors name the file and line."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"file not found: {p}") from None
    except IsADirectoryError:
        raise ValueError(f"{p}: is a folder, not a YAML file") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{p}: not a text (YAML) file: byte {exc.start} is not UTF-8 (a binary file?)") from None
    if "\0" in text:
        raise ValueError(f"{p}: not a text (YAML) file: it contains NUL bytes (a binary file?)")
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where is not None else ""
        why = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ValueError(f"{p}: not valid YAML{at}: {why}") from None


_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_ .:/+\-]*$")


def fmt_scalar(v: Any) -> str:
    """One scalar in YAML flow syntax that reloads to the identical Python value."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return str(int(v))
    if isinstance(v, float) or type(v).__name__.startswith("float"):
        f = float(v)
        if math.isnan(f):
            return ".nan"
        if math.isinf(f):
            return ".inf" if f > 0 else "-.inf"
        s = repr(f)
        if "e" in s and "." not in s.split("e")[0]:  # 1e-05 is a string in YAML 1.1: make it 1.0e-05
            mant, exp = s.split("e")
            s = f"{mant}.0e{exp}"
        return s
    s = str(v)
    if _PLAIN.match(s) and not s.endswith(":") and ": " not in s and yaml.load(s, Loader=_Loader) == s:
        return s
    return json.dumps(s, ensure_ascii=False)


def fmt_flow(v: Any) -> str:
    """Flow-style YAML for nested lists / dicts of scalars."""
    if isinstance(v, dict):
        return "{" + ", ".join(f"{fmt_scalar(k)}: {fmt_flow(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)) or type(v).__name__ == "ndarray":
        return "[" + ", ".join(fmt_flow(x) for x in v) + "]"
    return fmt_scalar(v)


# ------------------------------------------------------------------ the B-basis potential file
_BOND_KEYS = ("nradmaxi", "lmaxi", "nradbaseij", "radbase", "radparameters", "radcoefficients", "rcutij",
              "dcutij")


def load_potential(path: str | os.PathLike[str]) -> ACEPotential:
    """Load a pacemaker B-basis ``.yaml`` potential."""
    data = load_yaml_file(path)
    return potential_from_dict(data, source=str(path))


def potential_from_dict(data: Any, source: str = "<dict>") -> ACEPotential:
    """Build an :class:`ACEPotential` from the parsed YAML mapping."""
    if not isinstance(data, dict):
        raise PotentialError(f"{source}: top level must be a mapping with 'global' and 'species'")
    glob = data.get("global") or {}
    if "DeltaSplineBins" not in glob:
        raise PotentialError(f"{source}: global.DeltaSplineBins is missing")
    species = data.get("species")
    if not isinstance(species, list) or not species:
        raise PotentialError(f"{source}: 'species' must be a non-empty list of species blocks")
    metadata = {str(k): str(v) for k, v in (data.get("metadata") or {}).items()}
    auxdata = data.get("auxdata") or {}
    if not isinstance(auxdata, dict):
        raise PotentialError(f"{source}: 'auxdata' must be a mapping")
    blocks = [_read_block(b, source, i) for i, b in enumerate(species)]
    pot = ACEPotential(blocks=blocks, delta_spline_bins=float(glob["DeltaSplineBins"]),
                       metadata=metadata, auxdata=dict(auxdata), source=source)
    _check_potential(pot)
    return pot


def _num(d: dict[str, Any], key: str, where: str, default: Any = None, kind: type = float) -> Any:
    if key not in d:
        if default is None:
            raise PotentialError(f"{where}: required field '{key}' is missing")
        return default
    v = d[key]
    try:
        if kind is int:
            if float(v) != int(v):
                raise ValueError
            return int(v)
        return float(v)
    except (TypeError, ValueError):
        raise PotentialError(f"{where}: field '{key}' must be a number, got {v!r}") from None


def _read_block(d: Any, source: str, idx: int) -> SpeciesBlock:
    if not isinstance(d, dict) or "speciesblock" not in d:
        raise PotentialError(f"{source}: species[{idx}] has no 'speciesblock' key")
    elements = tuple(str(d["speciesblock"]).split())
    where = f"{source}: species block '{' '.join(elements)}'"
    if not elements:
        raise PotentialError(f"{where}: empty speciesblock")
    embedding = _read_embedding(d, where) if len(elements) == 1 else None
    bond = _read_bond(d, where) if len(elements) <= 2 and "radbase" in d else None
    if len(elements) <= 2 and bond is None and any(k in d for k in _BOND_KEYS):
        missing = [k for k in _BOND_KEYS if k not in d]
        raise PotentialError(f"{where}: incomplete radial basis, missing {missing}")
    nd = embedding.ndensity if embedding is not None else None
    funcs = [_read_function(f, where, j, elements, nd) for j, f in enumerate(d.get("nbody") or [])]
    return SpeciesBlock(elements=elements, embedding=embedding, bond=bond, functions=funcs)


def _read_embedding(d: dict[str, Any], where: str) -> Embedding | None:
    if "ndensityi" not in d:
        return None
    nd = _num(d, "ndensityi", where, kind=int)
    npoti = str(d.get("npoti", "FinnisSinclairShiftedScaled"))
    if npoti not in EMBEDDINGS:
        raise PotentialError(f"{where}: npoti '{npoti}' is unknown (expected one of {list(EMBEDDINGS)})")
    params = [float(x) for x in (d.get("parameters") or [])]
    if len(params) != 2 * nd:
        raise PotentialError(f"{where}: 'parameters' must have 2*ndensityi = {2 * nd} values "
                             f"[w1, m1, w2, m2, ...], got {len(params)}")
    return Embedding(ndensity=nd, npoti=npoti, fs_parameters=params,
                     rho_core_cut=_num(d, "rho_core_cut", where, 100000.0),
                     drho_core_cut=_num(d, "drho_core_cut", where, 250.0))


def _read_bond(d: dict[str, Any], where: str) -> Bond:
    missing = [k for k in _BOND_KEYS if k not in d]
    if missing:
        raise PotentialError(f"{where}: incomplete radial basis, missing {missing}")
    radbase = str(d["radbase"])
    if radbase not in RADIAL_BASES:
        hint = " (TEST_* radial functions of the C++ test-suite are not supported)" \
            if radbase.startswith("TEST_") else ""
        raise PotentialError(f"{where}: radbase '{radbase}' is unknown, expected one of "
                             f"{list(RADIAL_BASES)}{hint}")
    nmax = _num(d, "nradmaxi", where, kind=int)
    lmax = _num(d, "lmaxi", where, kind=int)
    kmax = _num(d, "nradbaseij", where, kind=int)
    crad = _read_crad(d["radcoefficients"], nmax, lmax, kmax, where)
    ict = str(d.get("inner_cutoff_type", "density"))
    if ict not in INNER_CUTOFF_TYPES:
        raise PotentialError(f"{where}: inner_cutoff_type '{ict}' is unknown, expected one of "
                             f"{list(INNER_CUTOFF_TYPES)}")
    core = d.get("core-repulsion", [0.0, 0.0])
    if not isinstance(core, list) or len(core) != 2:
        raise PotentialError(f"{where}: 'core-repulsion' must be [prefactor, lambda], got {core!r}")
    radpar = d["radparameters"]
    radpar = [float(x) for x in (radpar if isinstance(radpar, list) else [radpar])]
    bond = Bond(radbase=radbase, radparameters=radpar, rcut=_num(d, "rcutij", where),
                dcut=_num(d, "dcutij", where), crad=crad, r_in=_num(d, "r_in", where, 0.0),
                delta_in=_num(d, "delta_in", where, 0.0), inner_cutoff_type=ict,
                core_repulsion=[float(core[0]), float(core[1])],
                cutoff_function_name=str(d.get("NameOfCutoffFunctionij", "cos")))
    if bond.rcut <= 0:
        raise PotentialError(f"{where}: rcutij must be positive, got {bond.rcut}")
    return bond


def _read_crad(raw: Any, nmax: int, lmax: int, kmax: int, where: str) -> np.ndarray:
    try:
        arr = np.asarray(raw, dtype=float)
    except (TypeError, ValueError):
        raise PotentialError(f"{where}: radcoefficients is not a regular numeric array") from None
    shape = (nmax, lmax + 1, kmax)
    if arr.ndim == 1:  # legacy flat list: k slowest, then n, then l
        if arr.size != nmax * (lmax + 1) * kmax:
            raise PotentialError(f"{where}: flat radcoefficients has {arr.size} values, expected "
                                 f"nradmaxi*(lmaxi+1)*nradbaseij = {nmax * (lmax + 1) * kmax}")
        return arr.reshape(kmax, nmax, lmax + 1).transpose(1, 2, 0).copy()
    if arr.shape != shape:
        raise PotentialError(f"{where}: radcoefficients has shape {arr.shape}, expected "
                             f"[nradmaxi][lmaxi+1][nradbaseij] = {list(shape)}")
    return arr


def _read_function(f: Any, where: str, j: int, block: tuple[str, ...], nd: int | None) -> BFunction:
    here = f"{where}, nbody[{j}]"
    if not isinstance(f, dict) or "type" not in f:
        raise PotentialError(f"{here}: each function needs 'type', 'nr', 'nl', 'c'")
    elements = tuple(str(f["type"]).split())
    here = f"{where}, nbody[{j}] ({' '.join(elements)})"
    if len(elements) < 2:
        raise PotentialError(f"{here}: 'type' needs the central element and at least one neighbour")
    if elements[0] != block[0]:
        raise PotentialError(f"{here}: central element {elements[0]} differs from the block's {block[0]}")
    if not set(elements) <= set(block):
        raise PotentialError(f"{here}: elements {sorted(set(elements) - set(block))} not in the block")
    try:
        ns = tuple(int(x) for x in f.get("nr", []))
        ls = tuple(int(x) for x in f.get("nl", []))
        LS = tuple(int(x) for x in f.get("lint", []) or [])
    except (TypeError, ValueError):
        raise PotentialError(f"{here}: nr, nl and lint must be lists of integers") from None
    rank = len(elements) - 1
    if len(ns) != rank or len(ls) != rank:
        raise PotentialError(f"{here}: rank {rank} needs {rank} values in nr and nl, got {len(ns)}, {len(ls)}")
    if min(ns) < 1 or min(ls) < 0:
        raise PotentialError(f"{here}: nr must be >= 1 and nl >= 0")
    if rank == 1 and ls != (0,):
        raise PotentialError(f"{here}: rank-1 functions need nl: [0]")
    try:
        LS = expand_LS(ls, LS)
        validate_LS(ls, LS)
    except ValueError as exc:
        raise PotentialError(f"{here}: {exc}") from None
    c = f.get("c", [])
    coeffs = [float(x) for x in (c if isinstance(c, list) else [c])]
    if nd is not None and len(coeffs) != nd:
        raise PotentialError(f"{here}: 'c' has {len(coeffs)} values, ndensityi of {block[0]} is {nd}")
    return BFunction(elements=elements, ns=ns, ls=ls, LS=LS, coeffs=coeffs, skip=bool(f.get("skip", False)))


def _check_potential(pot: ACEPotential) -> None:
    emb = pot.embeddings()
    for b in pot.blocks:
        for f in b.functions:
            nd = emb[f.elements[0]].ndensity
            if len(f.coeffs) != nd:
                raise PotentialError(f"{pot.source}: species block '{b.name}', function {' '.join(f.elements)} "
                                     f"nr={list(f.ns)} nl={list(f.ls)}: 'c' has {len(f.coeffs)} values, "
                                     f"ndensityi of {f.elements[0]} is {nd}")
    _ = pot.inner_cutoff_type
    _ = pot.bonds()


# ---------------------------------------------------------------------------------------- writing
def potential_to_yaml(pot: ACEPotential) -> str:
    """Serialise in pacemaker's key order; floats are written as shortest round-trip reprs."""
    out: list[str] = []
    if pot.metadata:
        out.append("metadata:")
        out += [f"  {fmt_scalar(str(k))}: {fmt_scalar(str(v))}" for k, v in pot.metadata.items()]
    if pot.auxdata:
        out.append("auxdata:")
        out += [f"  {fmt_scalar(k)}: {fmt_flow(v)}" for k, v in pot.auxdata.items()]
    out += ["global:", f"  DeltaSplineBins: {fmt_scalar(float(pot.delta_spline_bins))}", "species:"]
    for b in pot.blocks:
        out.append(f"  - speciesblock: {b.name}")
        ind = "    "
        if b.embedding is not None:
            e = b.embedding
            out += [f"{ind}ndensityi: {e.ndensity}", f"{ind}npoti: {e.npoti}",
                    f"{ind}parameters: {fmt_flow([float(x) for x in e.fs_parameters])}",
                    f"{ind}rho_core_cut: {fmt_scalar(float(e.rho_core_cut))}",
                    f"{ind}drho_core_cut: {fmt_scalar(float(e.drho_core_cut))}"]
        if b.bond is not None:
            bd = b.bond
            out += [f"{ind}nradmaxi: {bd.nradmax}", f"{ind}lmaxi: {bd.lmax}",
                    f"{ind}rcutij: {fmt_scalar(float(bd.rcut))}", f"{ind}dcutij: {fmt_scalar(float(bd.dcut))}",
                    f"{ind}NameOfCutoffFunctionij: {fmt_scalar(bd.cutoff_function_name)}",
                    f"{ind}r_in: {fmt_scalar(float(bd.r_in))}", f"{ind}delta_in: {fmt_scalar(float(bd.delta_in))}",
                    f"{ind}inner_cutoff_type: {bd.inner_cutoff_type}", f"{ind}nradbaseij: {bd.nradbase}",
                    f"{ind}radbase: {bd.radbase}",
                    f"{ind}radparameters: {fmt_flow([float(x) for x in bd.radparameters])}",
                    f"{ind}radcoefficients: {fmt_flow(bd.crad.tolist())}",
                    f"{ind}core-repulsion: {fmt_flow([float(x) for x in bd.core_repulsion])}"]
        if b.functions:
            out.append(f"{ind}nbody:")
            for f in b.functions:
                parts = [f"type: {' '.join(f.elements)}", f"nr: {fmt_flow(list(f.ns))}",
                         f"nl: {fmt_flow(list(f.ls))}"]
                if f.rank > 2:
                    parts.append(f"lint: {fmt_flow(list(f.LS))}")
                parts.append(f"c: {fmt_flow([float(x) for x in f.coeffs])}")
                if f.skip:
                    parts.append("skip: true")
                out.append(f"{ind}  - {{{', '.join(parts)}}}")
    return "\n".join(out) + "\n"


def save_potential(pot: ACEPotential, path: str | os.PathLike[str]) -> Path:
    """Write ``pot`` to ``path`` atomically (a crash never leaves a truncated potential)."""
    return atomic_write_text(path, potential_to_yaml(pot))
