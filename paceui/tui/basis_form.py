"""The basis editor of the Setup tab, without widgets: the ALL (or UNARY) block of pacemaker's ``potential:``
section as one-line fields, each checked with a message naming its key, the live function counts of the
edited basis, and a new session made from the current one with the edited basis.

A session's basis is fixed (``potential`` has no effect in ``paceui.fit.settings_table``), so an edited basis
always becomes a new session: same data, fit, backend and session options, new ``potential:``."""

from __future__ import annotations

import copy
import math
import shutil
from pathlib import Path
from typing import Any

import yaml

from paceui._atomic import atomic_write_text
from paceui.ace.basis import build_potential, split_elements
from paceui.ace.potential import PotentialError
from paceui.errors import InputError
from paceui.session import Session
from paceui.session.store import SESSION_FILE

INPUT_FILE = "input.yaml"
"""The pacemaker input a new session is made from, written into its folder (kept there as a record)."""

# (section of potential:, key, pacemaker's default shown as the placeholder)
BASIS_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("", "elements", "required, e.g. [Cu]"),
    ("embeddings", "npot", "FinnisSinclairShiftedScaled"),
    ("embeddings", "fs_parameters", "[1, 1] per density"),
    ("embeddings", "ndensity", "1"),
    ("bonds", "radbase", "ChebExpCos"),
    ("bonds", "radparameters", "[5.25]"),
    ("bonds", "rcut", "required (Å)"),
    ("bonds", "dcut", "0.01"),
    ("functions", "nradmax_by_orders", "required, e.g. [15, 3, 2]"),
    ("functions", "lmax_by_orders", "required, e.g. [0, 3, 2]"),
)


class BasisError(InputError):
    """An edited basis value that cannot be used; the message names the key."""


def field_id(section: str, key: str) -> str:
    return f"basis-{section}-{key}" if section else f"basis-{key}"


def editable(spec: Any) -> str | None:
    """Why ``potential:`` cannot be edited field by field (a basis from a file), or None."""
    if isinstance(spec, str):
        return f"the basis comes from the file {spec}"
    if not isinstance(spec, dict):
        return "potential: is not a mapping"
    if "filename" in spec:
        return f"the basis comes from the file {spec['filename']}"
    return None


def block_key(spec: dict[str, Any], section: str) -> str:
    """The block the fields edit: UNARY when the section has one (it overrides ALL for one element), else ALL."""
    sec = spec.get(section) or {}
    return "UNARY" if isinstance(sec, dict) and "UNARY" in sec else "ALL"


def field_texts(spec: dict[str, Any]) -> dict[str, str]:
    """The text of every field for a ``potential:`` mapping ('' where the key is not set: the default applies)."""
    from paceui.tui.format import value_text

    out = {}
    for section, key, _ in BASIS_FIELDS:
        if not section:
            out[field_id(section, key)] = value_text(spec.get(key))
            continue
        block = (spec.get(section) or {}).get(block_key(spec, section)) or {}
        out[field_id(section, key)] = value_text(block.get(key) if isinstance(block, dict) else None)
    return out


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_int(v: Any, low: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= low


def _check(where: str, key: str, v: Any) -> Any:
    """``v`` as the basis builder wants it, or :class:`BasisError` naming ``where``."""
    bad = None
    if key == "elements":
        if isinstance(v, str):
            try:
                v = list(split_elements(v))
            except PotentialError as exc:
                raise BasisError(f"{where}: {exc}") from None
        if not isinstance(v, list) or not v or not all(isinstance(e, str) for e in v):
            bad = "a list of element symbols such as [Cu] or [Al, Ni]"
    elif key in ("npot", "radbase"):
        bad = None if isinstance(v, str) else "a name"
    elif key in ("fs_parameters", "radparameters"):
        if key == "radparameters" and _is_num(v):
            v = [v]
        bad = None if isinstance(v, list) and v and all(_is_num(x) for x in v) else "a list of numbers"
    elif key == "ndensity":
        bad = None if _is_int(v, 1) else "an integer >= 1"
    elif key in ("rcut", "dcut"):
        bad = None if _is_num(v) and v > 0 else "a length in Å > 0"
    elif key in ("nradmax_by_orders", "lmax_by_orders"):
        low = 1 if key == "nradmax_by_orders" else 0
        ok = isinstance(v, list) and v and all(_is_int(x, low) for x in v)
        bad = None if ok else f"a list of integers >= {low}, one per rank"
    if bad:
        raise BasisError(f"{where} must be {bad}, got {v!r}")
    return v


def edited_potential(spec: dict[str, Any], texts: dict[str, str]) -> dict[str, Any]:
    """``spec`` with the fields' values (YAML) in its edited blocks; an empty field removes the key (the default
    applies). Keys and blocks without a field are kept. Raises :class:`BasisError` naming the key."""
    out = copy.deepcopy(spec)
    for section, key, _ in BASIS_FIELDS:
        text = texts.get(field_id(section, key), "").strip()
        if section:
            block = block_key(spec, section)
            sec = out.setdefault(section, {})
            if not isinstance(sec, dict):
                raise BasisError(f"potential.{section} must be a mapping of blocks (ALL, UNARY, ...)")
            where, target = f"potential.{section}.{block}.{key}", sec.setdefault(block, {})
        else:
            where, target = f"potential.{key}", out
        if not text:
            target.pop(key, None)
            continue
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise BasisError(f"{where}: not a value ({str(exc).splitlines()[0]})") from None
        target[key] = _check(where, key, value)
    funcs = (out.get("functions") or {}).get(block_key(spec, "functions")) or {}
    n, lm = funcs.get("nradmax_by_orders"), funcs.get("lmax_by_orders")
    if isinstance(n, list) and isinstance(lm, list) and len(n) != len(lm):
        raise BasisError(f"potential.functions.{block_key(spec, 'functions')}: nradmax_by_orders and "
                         f"lmax_by_orders must have the same length (one value per rank), got {len(n)} and {len(lm)}")
    return out


def basis_counts(potential: dict[str, Any]) -> dict[str, Any]:
    """``build_potential(potential).counts()``; builder errors as :class:`BasisError` (may take seconds for
    large bases: call it from a worker)."""
    try:
        return build_potential(copy.deepcopy(potential)).counts()
    except (PotentialError, ValueError, TypeError, KeyError) as exc:
        msg = str(exc)
        raise BasisError(msg if msg.startswith("potential") else f"potential: {msg}") from None


def counts_text(counts: dict[str, Any], title: str) -> str:
    """Functions per element and rank (rank r: (r+1)-body) and coefficients (functions' and radial), for
    the preview."""
    per = counts["functions_per_element_rank"]
    ranks = sorted({r for d in per.values() for r in d})
    lines = [title, f"{counts['functions']} functions, "
             f"{counts['coefficients_func'] + counts['coefficients_crad']} coefficients",
             "rank " + "".join(f"{r:>5}" for r in ranks)]
    for el, d in per.items():
        lines.append(f"{el:<5}" + "".join(f"{d.get(r, 0):>5}" for r in ranks))
    return "\n".join(lines)


def sibling_folder(session: Session, folder: Path) -> Path:
    """A free folder beside the session's own: ``<name>-2``, ``<name>-3``, ... (under ``folder`` when unsaved)."""
    base = session.path if session.path is not None else Path(folder) / session.name
    stem = base.name
    for i in range(2, 1000):
        cand = base.parent / f"{stem}-{i}"
        if not cand.exists():
            return cand
    return base.parent / f"{stem}-new"


def create_with_basis(old: Session, potential: dict[str, Any], path: str | Path) -> Session:
    """A new session in ``path`` with ``old``'s settings (data, fit, backend, seed, session options) and
    ``potential`` as its ``potential:``; ``old`` is saved first. The new folder gets an ``input.yaml``
    (pacemaker input) and a copy of in-session data files. Blocks (data preparation): call from a worker."""
    root = Path(path).resolve()
    if (root / SESSION_FILE).exists():
        raise FileExistsError(f"{root} already holds a session: choose another folder")
    target = build_potential(copy.deepcopy(potential))   # fails before anything is written
    if old.path is not None:
        old.save()
    settings = old.settings
    settings["potential"], settings["cutoff"] = potential, target.cutoff
    root.mkdir(parents=True, exist_ok=True)
    for key in ("filename", "test_filename"):  # in-session copies (relative names) go along
        names = settings["data"].get(key) or []
        for name in [names] if isinstance(names, str) else names:
            src = Path(old.base_dir) / name
            if not Path(name).is_absolute() and src.is_file() and not (root / name).exists():
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, root / name)
    atomic_write_text(root / INPUT_FILE, yaml.safe_dump(settings, sort_keys=False, allow_unicode=True))
    new = Session.from_input(root / INPUT_FILE, name=root.name, path=root,
                             autosave_every=int(old.options.get("autosave_every", 20)), cache_dir=old.cache_dir)
    try:
        factors = old.options.get("weight_factors") or {}
        if factors:
            new.change_settings(weight_factors=factors).result()
        new.save()
    except BaseException:
        new.close()
        raise
    return new
