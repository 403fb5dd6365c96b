"""Ladder (hierarchical) basis growth: orderings and one extension step (docs/model.md §5).

Each step adds, per block, the first ``step`` functions of the target block (in body or power
order) that the current potential does not have yet; existing coefficients are kept and the radial
coefficients are enlarged with δ_nk padding.
"""

from __future__ import annotations

import copy

import numpy as np

from paceui.ace.potential import ACEPotential, BFunction, PotentialError, SpeciesBlock, delta_crad

LADDER_TYPES = ("body_order", "power_order")


def power_order_key(f: BFunction) -> int:
    return len(f.ns) + sum(f.ns) + sum(f.ls)


def body_order_key(f: BFunction) -> tuple:
    return (len(f.ns), tuple(f.ns), tuple(f.ls), tuple(f.LS), tuple(f.elements))


def function_id(f: BFunction) -> tuple:
    return (tuple(f.elements), tuple(f.ns), tuple(f.ls), tuple(f.LS))


def ladder_sorted(funcs: list[BFunction], ladder_type: str) -> list[BFunction]:
    if ladder_type == "power_order":
        return sorted(funcs, key=power_order_key)  # stable: ties keep generation order
    if ladder_type == "body_order":
        return sorted(funcs, key=body_order_key)
    raise PotentialError(f"ladder_type '{ladder_type}' unknown, expected one of {list(LADDER_TYPES)}")


def actual_ladder_step(step: int | float | list | tuple | None, current_total: int, target_total: int) -> int:
    """Functions to add: max(int part, round(fraction · current), 1), clipped to what remains."""
    remaining = target_total - current_total
    if step is None:
        return remaining
    ints = [s for s in (step if isinstance(step, (list, tuple)) else [step]) if isinstance(s, int) or
            (isinstance(s, float) and s >= 1)]
    fracs = [s for s in (step if isinstance(step, (list, tuple)) else [step]) if isinstance(s, float) and 0 < s < 1]
    n = max([int(s) for s in ints] + [int(round(f * current_total)) for f in fracs] + [1])
    return max(0, min(n, remaining))


def empty_like(target: ACEPotential) -> ACEPotential:
    """The target with every function and radial function removed: the start of a ladder fit."""
    pot = copy.deepcopy(target)
    for b in pot.blocks:
        b.functions = []
        if b.bond is not None:
            b.bond.crad = np.zeros((0, 1, 0))
    return pot


def extend_basis(current: ACEPotential, target: ACEPotential, ladder_type: str, step: int) -> ACEPotential:
    """One ladder step: add up to ``step`` new target functions to every block of ``current``."""
    out = copy.deepcopy(current)
    by_name = {b.elements: b for b in out.blocks}
    for tb in target.blocks:
        cb = by_name.get(tb.elements)
        if cb is None:
            cb = SpeciesBlock(elements=tb.elements, embedding=copy.deepcopy(tb.embedding),
                              bond=copy.deepcopy(tb.bond), functions=[])
            if cb.bond is not None:
                cb.bond.crad = np.zeros((0, 1, 0))
            out.blocks.append(cb)
            by_name[tb.elements] = cb
        have = {function_id(f) for f in cb.functions}
        new = [copy.deepcopy(f) for f in ladder_sorted(tb.functions, ladder_type) if function_id(f) not in have]
        cb.functions = ladder_sorted(cb.functions + new[:step], "body_order")
        if tb.embedding is not None and cb.embedding is not None:
            cb.embedding.rho_core_cut = tb.embedding.rho_core_cut
            cb.embedding.drho_core_cut = tb.embedding.drho_core_cut
    out.blocks.sort(key=lambda b: (len(b.elements), b.elements))
    _resize_bonds(out, target)
    return out


def _resize_bonds(pot: ACEPotential, target: ACEPotential) -> None:
    """Bonds grow to what the functions need; new entries δ_nk, old values kept top-left."""
    need = pot._bond_sizes_needed()
    tb = {b.elements: b.bond for b in target.blocks if b.bond is not None}
    for b in pot.blocks:
        if b.bond is None or b.bond_key is None:
            continue
        n, l, k = need.get(b.bond_key, (0, 0, 0))
        old = b.bond.crad
        n, l1, k = max(n, old.shape[0]), max(l + 1, old.shape[1]), max(k, old.shape[2], n)
        crad = delta_crad(n, l1 - 1, k)
        crad[:old.shape[0], :old.shape[1], :old.shape[2]] = old
        b.bond.crad = crad
        if b.elements in tb:
            b.bond.core_repulsion = list(tb[b.elements].core_repulsion)
