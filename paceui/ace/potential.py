"""In-memory B-basis ACE potential: the content of a pacemaker ``.yaml`` file.

The classes mirror the file (species blocks holding an embedding, a bond and B-functions) so that
load -> save -> load is lossless; :meth:`ACEPotential.bonds` and :meth:`ACEPotential.embeddings`
resolve the symmetric views (A-B and B-A share one radial basis) that the evaluator needs.
Units: Å for distances, eV for energies.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from paceui.errors import PotentialError

# The one list of each kind of name; the kernels' integer codes (paceui/ace/radial.py) are positions in them.
RADIAL_BASES = ("ChebExpCos", "ChebPow", "ChebLinear", "SBessel")
EMBEDDINGS = ("FinnisSinclairShiftedScaled", "FinnisSinclair")
INNER_CUTOFF_TYPES = ("density", "distance", "zbl")


def delta_crad(nradmax: int, lmax: int, nradbase: int) -> np.ndarray:
    """crad[n, l, k] = δ_nk: the pacemaker initialisation of radial coefficients."""
    crad = np.zeros((nradmax, lmax + 1, nradbase))
    for n in range(min(nradmax, nradbase)):
        crad[n, :, n] = 1.0
    return crad


@dataclass
class Embedding:
    """Finnis-Sinclair-type embedding of one element: E = Σ_p w_p F(ρ_p; m_p)."""

    ndensity: int
    npoti: str = "FinnisSinclairShiftedScaled"
    fs_parameters: list[float] = field(default_factory=lambda: [1.0, 1.0])
    rho_core_cut: float = 100000.0
    drho_core_cut: float = 250.0


@dataclass
class Bond:
    """Radial basis of an (ordered) element pair; ``crad`` has shape [nradmax, lmax+1, nradbase]."""

    radbase: str
    radparameters: list[float]
    rcut: float
    dcut: float
    crad: np.ndarray
    r_in: float = 0.0
    delta_in: float = 0.0
    inner_cutoff_type: str = "density"
    core_repulsion: list[float] = field(default_factory=lambda: [0.0, 0.0])
    cutoff_function_name: str = "cos"

    @property
    def nradmax(self) -> int:
        return int(self.crad.shape[0])

    @property
    def lmax(self) -> int:
        return int(self.crad.shape[1]) - 1

    @property
    def nradbase(self) -> int:
        return int(self.crad.shape[2])

    def resized(self, nradmax: int, lmax: int, nradbase: int) -> "Bond":
        """A copy whose crad is enlarged (zero padded) to at least the given sizes."""
        n, l1, k = self.crad.shape
        shape = (max(n, nradmax), max(l1, lmax + 1), max(k, nradbase))
        if shape == self.crad.shape:
            return self
        crad = np.zeros(shape)
        crad[:n, :l1, :k] = self.crad
        out = copy.copy(self)
        out.crad = crad
        return out

    def same_as(self, other: "Bond") -> bool:
        return (
            self.radbase == other.radbase
            and list(self.radparameters) == list(other.radparameters)
            and self.rcut == other.rcut
            and self.dcut == other.dcut
            and self.r_in == other.r_in
            and self.delta_in == other.delta_in
            and self.inner_cutoff_type == other.inner_cutoff_type
            and list(self.core_repulsion) == list(other.core_repulsion)
            and self.crad.shape == other.crad.shape
            and bool(np.array_equal(self.crad, other.crad))
        )


@dataclass
class BFunction:
    """One B-basis function: central element elements[0], neighbours elements[1:] (rank = len(ns))."""

    elements: tuple[str, ...]
    ns: tuple[int, ...]
    ls: tuple[int, ...]
    LS: tuple[int, ...] = ()
    coeffs: list[float] = field(default_factory=list)
    skip: bool = False

    @property
    def rank(self) -> int:
        return len(self.ns)


@dataclass
class SpeciesBlock:
    """A ``speciesblock``: elements[0] is the central element; a unary block has one element."""

    elements: tuple[str, ...]
    embedding: Embedding | None = None
    bond: Bond | None = None
    functions: list[BFunction] = field(default_factory=list)

    @property
    def name(self) -> str:
        return " ".join(self.elements)

    @property
    def bond_key(self) -> tuple[str, str] | None:
        """(central, neighbour) for unary/binary blocks, None for ternary and higher."""
        if len(self.elements) == 1:
            return (self.elements[0], self.elements[0])
        if len(self.elements) == 2:
            return (self.elements[0], self.elements[1])
        return None


@dataclass
class ACEPotential:
    """A complete B-basis potential (pacemaker ``.yaml``)."""

    blocks: list[SpeciesBlock]
    delta_spline_bins: float = 0.001
    metadata: dict[str, str] = field(default_factory=dict)
    auxdata: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str = "<memory>"

    # ----------------------------------------------------------------- views
    @property
    def elements(self) -> list[str]:
        """Alphabetically sorted element list; the index is the species id μ."""
        return sorted({e for b in self.blocks for e in b.elements})

    def block(self, name: str | tuple[str, ...]) -> SpeciesBlock:
        key = tuple(name.split()) if isinstance(name, str) else tuple(name)
        for b in self.blocks:
            if b.elements == key or (len(key) == 2 and key[0] == key[1] and b.elements == key[:1]):
                return b
        raise KeyError(f"no species block {' '.join(key)!r} in {self.source}")

    def embeddings(self) -> dict[str, Embedding]:
        out = {b.elements[0]: b.embedding for b in self.blocks if b.embedding is not None}
        for el in self.elements:
            if el not in out:
                raise PotentialError(f"{self.source}: element {el} has no embedding (ndensityi) "
                                     f"in its single-species block")
        return out

    def bonds(self) -> dict[tuple[str, str], Bond]:
        """Every ordered pair that has a radial basis; B-A is taken from A-B when only one is given.

        Bond sizes are raised to what the block's functions use (as pacemaker's reader does).
        """
        out: dict[tuple[str, str], Bond] = {}
        for b in self.blocks:
            if b.bond is not None and b.bond_key is not None:
                out[b.bond_key] = b.bond
        for (a, c), bond in list(out.items()):
            if (c, a) not in out:
                out[(c, a)] = bond
            elif not out[(c, a)].same_as(bond):
                raise PotentialError(f"{self.source}: blocks '{a} {c}' and '{c} {a}' define different "
                                     f"radial bases (they must be identical)")
        need = self._bond_sizes_needed()
        for key, (n, l, k) in need.items():
            if key not in out:
                raise PotentialError(f"{self.source}: functions use the pair {key[0]}-{key[1]} but no "
                                     f"block defines its radial basis (nradmaxi, lmaxi, radbase, ...)")
            out[key] = out[key].resized(n, l, k)
        return out

    def _bond_sizes_needed(self) -> dict[tuple[str, str], tuple[int, int, int]]:
        need: dict[tuple[str, str], tuple[int, int, int]] = {}
        for f in self.functions():
            for el, n, l in zip(f.elements[1:], f.ns, f.ls):
                for key in ((f.elements[0], el), (el, f.elements[0])):
                    nn, ll, kk = need.get(key, (0, 0, 0))
                    if f.rank == 1:
                        need[key] = (nn, ll, max(kk, n))
                    else:
                        need[key] = (max(nn, n), max(ll, l), kk)
        return need

    def functions(self, include_skipped: bool = False) -> list[BFunction]:
        return [f for b in self.blocks for f in b.functions if include_skipped or not f.skip]

    @property
    def cutoff(self) -> float:
        """Largest bond cutoff (Å): the neighbour-list cutoff."""
        return max((bd.rcut for bd in self.bonds().values()), default=0.0)

    @property
    def inner_cutoff_type(self) -> str:
        types = {b.bond.inner_cutoff_type for b in self.blocks if b.bond is not None}
        if len(types) > 1:
            raise PotentialError(f"{self.source}: inner_cutoff_type differs between blocks: {sorted(types)}"
                                 f" (must be the same for all single- and two-species blocks)")
        return types.pop() if types else "density"

    def copy(self) -> "ACEPotential":
        return copy.deepcopy(self)

    # ----------------------------------------------------------------- summaries
    def counts(self) -> dict[str, Any]:
        """Numbers of functions per element and rank, and of coefficients (func + crad)."""
        per_el: dict[str, dict[int, int]] = {el: {} for el in self.elements}
        for f in self.functions():
            d = per_el[f.elements[0]]
            d[f.rank] = d.get(f.rank, 0) + 1
        n_func_coeffs = sum(len(f.coeffs) for f in self.functions())
        # A-B and B-A share one radial basis: count each unordered pair once
        n_crad = sum(int(bd.crad.size) for (a, c), bd in self.bonds().items() if a <= c)
        return {
            "elements": self.elements,
            "functions": sum(sum(d.values()) for d in per_el.values()),
            "functions_per_element": {el: sum(d.values()) for el, d in per_el.items()},
            "functions_per_element_rank": {el: dict(sorted(d.items())) for el, d in per_el.items()},
            "coefficients_func": n_func_coeffs,
            "coefficients_crad": n_crad,
            "cutoff": self.cutoff,
        }
