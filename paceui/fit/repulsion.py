"""``fit: repulsion: auto``: ZBL inner core repulsion added to the final potential.

r_in of every bond = the shortest distance of that element pair in the training set (sum of the
covalent radii where the pair never occurs), delta_in 0.1 Å, inner_cutoff_type zbl, core-repulsion
[1, 1], rho_core_cut = drho_core_cut = 1 (pacemaker's ``repulsion: auto``; docs/model.md (M25)).
"""

from __future__ import annotations

import numpy as np

from paceui.ace.potential import ACEPotential


def min_pair_distances(packed) -> dict[tuple[str, str], float]:
    """Shortest distance (Å) of each element pair over all structures of a packed neighbour list."""
    els = list(packed.elements)
    d = np.sqrt(np.einsum("ij,ij->i", packed.vec, packed.vec))
    si = np.repeat(packed.species, np.diff(packed.nbr_offsets))
    sj = packed.species[packed.nbr_j]
    out: dict[tuple[str, str], float] = {}
    for a in range(len(els)):
        for b in range(len(els)):
            m = (si == a) & (sj == b)
            if m.any():
                out[(els[a], els[b])] = float(d[m].min())
    return out


def add_zbl_repulsion(pot: ACEPotential, packed) -> ACEPotential:
    from ase.data import atomic_numbers, covalent_radii

    out = pot.copy()
    dmin = min_pair_distances(packed)
    for b in out.blocks:
        if b.embedding is not None:
            b.embedding.rho_core_cut = 1.0
            b.embedding.drho_core_cut = 1.0
        if b.bond is None or b.bond_key is None:
            continue
        a, c = b.bond_key
        r_in = dmin.get((a, c), dmin.get((c, a)))
        if r_in is None:
            r_in = float(covalent_radii[atomic_numbers[a]] + covalent_radii[atomic_numbers[c]])
        b.bond.r_in, b.bond.delta_in = r_in, 0.1
        b.bond.inner_cutoff_type = "zbl"
        b.bond.core_repulsion = [1.0, 1.0]
    return out
