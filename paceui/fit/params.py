"""The parameter vector θ of a fit and its map to and from a B-basis potential.

θ = [crad of every unordered bond (a <= b, element order), flattened [n][l][k]] +
    [coefficients of every non-skipped function in potential order, flattened [function][density]].
A-B and B-A share one crad (pacemaker's rule), so a binary pair has one block of θ.
Trainable masks follow pacemaker's ``trainable_parameters`` (ALL, UNARY, BINARY, …, func, radial).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from paceui.ace.basis import ORDER_NAMES, split_elements
from paceui.ace.potential import ACEPotential, PotentialError


@dataclass
class ParamMap:
    """Where each bond's crad and each function's coefficients live in θ."""

    bond_keys: list[tuple[str, str]]
    bond_shapes: list[tuple[int, int, int]]
    bond_slices: list[slice]
    func_nd: list[int]
    func_slices: list[slice]
    func_blocks: list[tuple[str, ...]]
    size: int

    @classmethod
    def from_potential(cls, pot: ACEPotential) -> "ParamMap":
        bonds = pot.bonds()
        keys = sorted(k for k in bonds if k[0] <= k[1])
        off = 0
        shapes, slices = [], []
        for k in keys:
            shp = bonds[k].crad.shape
            shapes.append(shp)
            slices.append(slice(off, off + int(np.prod(shp))))
            off += int(np.prod(shp))
        nd = {el: e.ndensity for el, e in pot.embeddings().items()}
        fnd, fsl, fbl = [], [], []
        for b in pot.blocks:
            for f in b.functions:
                if f.skip:
                    continue
                fnd.append(nd[f.elements[0]])
                fsl.append(slice(off, off + fnd[-1]))
                fbl.append(b.elements)
                off += fnd[-1]
        return cls(keys, shapes, slices, fnd, fsl, fbl, off)

    @property
    def n_crad(self) -> int:
        return self.bond_slices[-1].stop if self.bond_slices else 0

    def get(self, pot: ACEPotential) -> np.ndarray:
        theta = np.zeros(self.size)
        bonds = pot.bonds()
        for k, sl in zip(self.bond_keys, self.bond_slices):
            theta[sl] = bonds[k].crad.ravel()
        for f, sl in zip(pot.functions(), self.func_slices):
            theta[sl] = f.coeffs
        return theta

    def apply(self, pot: ACEPotential, theta: np.ndarray) -> ACEPotential:
        """A copy of ``pot`` carrying the parameters θ."""
        out = copy.deepcopy(pot)
        crad = {k: theta[sl].reshape(shp) for k, sl, shp in zip(self.bond_keys, self.bond_slices, self.bond_shapes)}
        for b in out.blocks:
            if b.bond is not None and b.bond_key is not None:
                a, c = b.bond_key
                b.bond.crad = crad[(min(a, c), max(a, c))].copy()
        for f, sl in zip(out.functions(), self.func_slices):
            f.coeffs = [float(x) for x in theta[sl]]
        return out

    def coeff_matrix(self, theta: np.ndarray, ndmax: int) -> np.ndarray:
        out = np.zeros((len(self.func_slices), ndmax))
        for i, (sl, nd) in enumerate(zip(self.func_slices, self.func_nd)):
            out[i, :nd] = theta[sl]
        return out

    def func_mask(self) -> np.ndarray:
        m = np.zeros(self.size, dtype=bool)
        if self.func_slices:
            m[self.func_slices[0].start:] = True
        return m

    def trainable_mask(self, spec: object = "ALL") -> np.ndarray:
        """Boolean mask of trainable θ entries for pacemaker's ``trainable_parameters``."""
        if spec is None or spec == "ALL":
            return np.ones(self.size, dtype=bool)
        rules: list[tuple[str, list[str]]] = []
        if isinstance(spec, str):
            rules = [(spec, ["func", "radial"])] if spec not in ("func", "radial") else [("ALL", [spec])]
        elif isinstance(spec, list):
            for s in spec:
                rules += [(s, ["func", "radial"])] if s not in ("func", "radial") else [("ALL", [s])]
        elif isinstance(spec, dict):
            for key, what in spec.items():
                rules.append((key, [what] if isinstance(what, str) else list(what)))
        else:
            raise PotentialError(f"fit.trainable_parameters: cannot interpret {spec!r}")
        mask = np.zeros(self.size, dtype=bool)
        for key, kinds in rules:
            bad = [k for k in kinds if k not in ("func", "radial")]
            if bad:
                raise PotentialError(f"fit.trainable_parameters.{key}: unknown kinds {bad} (use func, radial)")
            if "radial" in kinds:
                for bk, sl in zip(self.bond_keys, self.bond_slices):
                    block = (bk[0],) if bk[0] == bk[1] else bk
                    if _key_matches(key, block):
                        mask[sl] = True
            if "func" in kinds:
                for blk, sl in zip(self.func_blocks, self.func_slices):
                    if _key_matches(key, blk):
                        mask[sl] = True
        return mask


def _key_matches(key: str, block: tuple[str, ...]) -> bool:
    if key == "ALL":
        return True
    if key in ORDER_NAMES:
        return ORDER_NAMES.index(key) + 1 == len(set(block))
    els = split_elements(key)
    return els[0] == block[0] and sorted(els[1:]) == sorted(block[1:]) and len(els) == len(block)
