"""A fitting recipe picked from the data: cutoff from the number density, κ on a validation split.

The rule (the Zuo et al. 2020 benchmark recipe, ``assets/zuo/README.md``):

* **cutoff** r_c: the radius of the sphere that holds ``NEIGHBOURS`` atoms at the data's median number
  density ρ (atoms/Å³ of the periodic cells), r_c = (3 n_nb / (4π ρ))^(1/3), kept within
  [2, 3] × the median nearest-neighbour distance and rounded to 0.1 Å. With n_nb = 58 this gives 5.5 Å for
  the Zuo Cu data; it keeps the neighbour count, hence the cost per atom, the same for dense and open
  structures. Without periodic structures (molecules, clusters: no density) r_c is the median over atoms of
  the distance to the farthest of their min(``NEIGHBOURS``, n − 1) nearest atoms, plus ``REACH_MARGIN`` (1 Å)
  in molecules of at most ``NEIGHBOURS`` atoms: every atom of a small molecule sees the whole molecule
  (ethanol: 3.18 + 1 → 4.2 Å), an atom of a large cluster its 58 nearest, as the density rule; at most
  ``SHELL_CAP`` (2.2) × the median distance to an atom's 4th nearest (clusters of tens of metal atoms).
* **basis**: one linear density (FinnisSinclairShiftedScaled, fs_parameters [1, 1]), SBessel radial basis
  (pacemaker's default; on Zuo Si and Ni it lowered the validation force error by 7–13 % against ChebExpCos at
  the same size), ranks 1–5; the largest basis of ``BASIS_LADDER`` (336, 894, 3106 or 3970 functions for one
  element) whose one-pass cost (:func:`pass_seconds`: the rung's measured assembly time per neighbour pair ×
  n_atoms × neighbours per atom (58; fewer in small molecules), plus one solve per κ and the refit's) fits in
  ``PASS_FRACTION`` of the budget and that leaves at least ``ROWS_PER_COLUMN`` (2.5) training rows (energies
  and force components) per column (functions × elements); with several elements
  ``number_of_functions_per_element`` sets each element's size: the rung's, or the next rung's shape cut to
  the largest size between the two that still fits (every species combination of a rung's shape would be
  4502–69492 functions for two elements: ACEData's Ti-Al tutorial with its 894-function shape had 11662
  columns for 4683 rows, and one solve ran for minutes; ethanol gets 1480 per element instead of 894:
  validation −25 % in energy and forces); reference energies ``auto``.
* **linear stage**: ``optimizer: bayesian_ridge`` (evidence-maximised ridge, one pass over the data) for
  every κ of ``KAPPA_GRID`` at once (``fit: options: kappa_grid``); the κ with the smallest validation
  energy MAE × force MAE is kept. The validation set is ``test_size: 0.1`` of the training file. Then
  (``fit: options: refit_all``) one more solve at that κ on training + validation together: the potential
  written has seen the whole training file (test MAE on Zuo, the same κ: Si energy −10 %, Li, Cu −3 %,
  forces −0–1 %); the validation errors reported are those of the training-only solve.
* **refine stage** (optional): BFGS on every coefficient, the radial ones included, from the linear
  result, for the iterations the rest of the budget allows at ``US_PER_ATOM_ITERATION``.

Every choice was made on a validation split (10 %) of the training files, never on the test sets.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

NEIGHBOURS = 58.0
"""Atoms inside the cutoff sphere at the median density that the rule aims at (Zuo Cu: 5.5 Å)."""

KAPPA_GRID = (0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3)
"""The force weights κ the linear stage solves for, from one pass over the data; the one with the smallest
validation energy MAE × force MAE is kept."""


@dataclass(frozen=True)
class DataSummary:
    """What the rule reads from a training set."""

    elements: tuple[str, ...]
    n_structures: int
    n_atoms: int
    density: float       # median number density of the periodic structures, atoms/Å³ (nan: none periodic)
    nn_distance: float   # median over structures of the shortest interatomic distance, Å
    reach: float = math.nan  # no periodic structure: median over atoms of the distance to the farthest of its
    #                          min(NEIGHBOURS, n - 1) nearest atoms (+ REACH_MARGIN in molecules of at most
    #                          NEIGHBOURS atoms: they see all of it), at most SHELL_CAP × the 4th-nearest's, Å
    neighbours: float = NEIGHBOURS  # mean neighbours per atom inside the cutoff (the cost model's pairs per atom)


@dataclass(frozen=True)
class Recipe:
    """The settings the rule picks (see module doc)."""

    cutoff: float                         # Å
    nradmax_by_orders: tuple[int, ...]
    lmax_by_orders: tuple[int, ...]
    kappa: float
    maxiter: int
    radbase: str = "SBessel"
    radparameters: tuple[float, ...] = (5.25,)   # not read by SBessel; pacemaker's template writes it
    kappa_grid: tuple[float, ...] = KAPPA_GRID
    refit_all: bool = True                # the final solve on training + validation at the chosen κ
    functions_per_element: int | None = None  # several elements: number_of_functions_per_element (the rung's size)


def shortest_distance(atoms: Any) -> float:
    """The shortest interatomic distance of one ASE structure (periodic images included), Å."""
    from ase.neighborlist import neighbor_list

    n = len(atoms)
    vol = abs(atoms.get_volume()) if all(atoms.pbc) else 0.0
    r = 1.5 * (vol / n) ** (1 / 3) if vol > 0 else 4.0
    for _ in range(4):
        d = neighbor_list("d", atoms, r)
        if len(d):
            return float(d.min())
        r *= 2
    return math.inf


REACH_MARGIN = 1.0
"""Non-periodic data: an atom of a molecule of at most ``NEIGHBOURS`` atoms proposes its :func:`cluster_reach`
plus this margin, Å, so that most atoms see all of a small molecule well inside the cutoff's taper (chosen on
the ethanol validation split, ``assets/zuo/README.md``); an atom of a larger cluster its distance to the
``NEIGHBOURS``-th nearest, the density rule's sphere."""


SHELL_CAP = 2.2
"""Non-periodic data: the cutoff is at most this × the median distance to an atom's 4th nearest neighbour
(first-shell distance of close-packed and tetrahedral solids; fcc Cu: 2.2 × 2.55 = 5.6 Å against the density
rule's 5.5). It binds for clusters of tens of atoms (pyace's FHI-aims Al clusters of 19–54 atoms: 12.9 →
6.7 Å), not for small molecules (ethanol: 4.2 Å, the cap 4.7)."""


def cluster_reach(atoms: Any, neighbours: float = NEIGHBOURS, max_atoms: int = 256) -> np.ndarray:
    """Per atom of one non-periodic structure (at most ``max_atoms`` of them, evenly spaced, so that a large
    cluster costs max_atoms × n distances, not n²): the distance to the farthest of its
    min(``neighbours``, n − 1) nearest atoms, Å (all of a small molecule; the ``neighbours``-th nearest in a
    large cluster)."""
    return _nearest(atoms, (int(neighbours),), max_atoms)[:, 0]


def _nearest(atoms: Any, ranks: Sequence[int], max_atoms: int = 256) -> np.ndarray:
    """[picked atoms, len(ranks)]: each picked atom's distance to its min(rank, n − 1)-th nearest atom, Å,
    from one pass over the distances (see :func:`cluster_reach`)."""
    pos = np.asarray(atoms.get_positions(), dtype=np.float64)
    n = len(pos)
    if n < 2:
        return np.empty((0, len(ranks)))
    picked = np.arange(0, n, max(1, -(-n // max_atoms)))
    ks = [min(r, n - 1) for r in ranks]
    out = np.empty((len(picked), len(ks)))
    for a in range(0, len(picked), 16):   # 16 atoms at a time: 16 × n × 3 floats in memory
        if any(atoms.pbc):   # a molecule in a box: the nearest image of each atom (it may straddle a face)
            d = np.array([atoms.get_distances(int(i), np.arange(n), mic=True) for i in picked[a:a + 16]])
        else:
            d = np.sqrt(((pos[picked[a:a + 16], None, :] - pos[None, :, :]) ** 2).sum(axis=2))
        out[a:a + 16] = np.partition(d, sorted(set(ks)), axis=1)[:, ks]   # column of the atom itself: 0
    return out


def in_a_box(atoms: Any, shortest: float | None = None) -> bool:
    """Whether a periodic structure of two or more atoms is a molecule or cluster in a box (DFT codes that need
    a cell write molecules so): bonded within twice its shortest interatomic distance, no chain of bonds
    reaches an image of an atom it started from. Condensed cells (ρ d³ ≥ 0.2 for number density ρ and shortest
    distance d: crystals, liquids, slabs ≥ 0.3; ethanol in a 10 Å box 0.008) are not searched.
    ``shortest``: :func:`shortest_distance` of the structure when the caller has it."""
    from ase.neighborlist import neighbor_list

    n = len(atoms)
    if n < 2 or not all(atoms.pbc) or abs(atoms.get_volume()) <= 0:
        return False
    d = shortest_distance(atoms) if shortest is None else shortest
    if n / abs(atoms.get_volume()) * d ** 3 >= 0.2:
        return False
    first, second, shift = neighbor_list("ijS", atoms, 2.0 * d)
    order = np.argsort(first, kind="stable")
    first, second, shift = first[order], second[order], shift[order]
    start = np.searchsorted(first, np.arange(n + 1))
    image = np.zeros((n, 3), dtype=np.int64)   # the cell offset each atom was reached at
    seen = np.zeros(n, dtype=bool)
    for root in range(n):
        if seen[root]:
            continue
        seen[root] = True
        todo = [root]
        while todo:
            a = todo.pop()
            for e in range(start[a], start[a + 1]):
                b, at = int(second[e]), image[a] + shift[e]
                if not seen[b]:
                    seen[b], image[b] = True, at
                    todo.append(b)
                elif not np.array_equal(image[b], at):
                    return False   # a bond chain wraps around the cell: periodic
    return True


def summarize(frames: Sequence[Any], max_structures: int = 60) -> DataSummary:
    """:class:`DataSummary` of ASE structures (distances from at most ``max_structures``, evenly spaced).
    With periodic structures the density is theirs; with none, or when most of the sampled periodic ones are
    molecules in boxes (:func:`in_a_box`), :func:`cluster_reach` sizes the cutoff instead. Partly periodic
    cells raise ValueError, as ``paceui fit``'s validation does."""
    if not len(frames):
        raise ValueError("the training set is empty")
    partly = next((i for i, a in enumerate(frames) if len(set(map(bool, a.pbc))) > 1), None)
    if partly is not None:
        raise ValueError(f"structure {partly} has pbc {list(map(bool, frames[partly].pbc))}: paceui fits fully "
                         "periodic or fully non-periodic structures")
    n_atoms = np.array([len(a) for a in frames])
    periodic = [a for a in frames if all(a.pbc) and abs(a.get_volume()) > 0]
    step = max(1, len(frames) // max_structures)
    sample = frames[::step]
    near = [(a, shortest_distance(a)) for a in sample if len(a) > 1 or all(a.pbc)]
    boxed = [in_a_box(a, d) for a, d in near if all(a.pbc) and len(a) > 1]
    if boxed and sum(boxed) > len(boxed) / 2:   # mostly molecules in boxes: sized as molecules
        periodic = []
    nn = [d for _, d in near if math.isfinite(d)]
    if not nn:
        raise ValueError("no structure has two atoms: the cutoff rule needs interatomic distances")
    elements = tuple(sorted({s for a in frames for s in a.get_chemical_symbols()}))
    if periodic:
        density = float(np.median([len(a) / abs(a.get_volume()) for a in periodic]))
        return DataSummary(elements, len(frames), int(n_atoms.sum()), density, float(np.median(nn)))
    # a small molecule's atoms see all of it, plus the margin; a large cluster's their NEIGHBOURS nearest;
    # never beyond SHELL_CAP × the distance to an atom's 4th nearest (a metal cluster of 54 atoms would see
    # across itself: 12.9 Å)
    near4 = [(a, _nearest(a, (int(NEIGHBOURS), 4))) for a in sample]
    reach = float(np.median(np.concatenate([d[:, 0] + (REACH_MARGIN if len(a) <= NEIGHBOURS else 0.0)
                                            for a, d in near4])))
    shell = float(np.median(np.concatenate([d[:, 1] for _, d in near4])))
    reach = min(reach, SHELL_CAP * shell)
    others = np.minimum(n_atoms - 1, NEIGHBOURS)
    return DataSummary(elements, len(frames), int(n_atoms.sum()), math.nan, float(np.median(nn)), reach=reach,
                       neighbours=float((n_atoms * others).sum() / max(n_atoms.sum(), 1)))


def cutoff_for(summary: DataSummary, neighbours: float = NEIGHBOURS) -> float:
    """r_c = (3 n_nb / (4π ρ))^(1/3) within [2, 3] × nearest-neighbour distance, rounded to 0.1 Å; without
    periodic structures (no density) the summary's ``reach`` instead (:func:`summarize`)."""
    if not math.isfinite(summary.density):
        return round(summary.reach, 1)
    rc = (3.0 * neighbours / (4.0 * math.pi * summary.density)) ** (1.0 / 3.0)
    rc = min(max(rc, 2.0 * summary.nn_distance), 3.0 * summary.nn_distance)
    return round(rc, 1)


@dataclass(frozen=True)
class BasisRung:
    """One basis of the ladder and what its one pass costs on the idle 2-core machine."""

    nradmax_by_orders: tuple[int, ...]
    lmax_by_orders: tuple[int, ...]
    seconds_per_pair: float   # design assembly, s per neighbour pair (measured, Zuo Si and Ni)

    @property
    def shape(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return self.nradmax_by_orders, self.lmax_by_orders


BASIS_LADDER: tuple[BasisRung, ...] = (
    BasisRung((16, 6, 3, 2, 1), (0, 4, 3, 2, 1), 5.0e-6),     # 336 functions per element
    BasisRung((16, 8, 4, 2, 1), (0, 6, 4, 2, 1), 1.5e-5),     # 894: more radial and angular resolution, ranks 2-3
    BasisRung((16, 8, 6, 2, 1), (0, 6, 5, 2, 1), 8.0e-5),     # 3106: rank 3 up to n 6, l 5
    BasisRung((16, 8, 6, 3, 1), (0, 6, 5, 3, 1), 1.0e-4),     # 3970: rank 4 up to n 3, l 3
)
"""The bases from the smallest to the largest; the rule takes the largest that the budget allows (each was
chosen on validation splits, ``assets/zuo/README.md``). The assembly cost per pair grows faster than the
function count: a rank-3 or rank-4 function of higher l has more m-combinations. Measured on the idle
machine (2026-12-03 19:40 UTC, Zuo Ni, 1.36 M pairs, ``assemble_parts``): 6.8, 21.1 and 113–117 s (before
the design kernel took a neighbour block's pairs together and the QR both threads: 293 s for the 3106 pass,
solves included); 3970 (rank 4 up to n 3, l 3: on Zuo Si validation 1.22 / 37.7 → 0.85 / 34.7 meV/atom /
meV/Å): Zuo Si 0.69 M pairs in 68.8 s (2026-12-04 01:23, load 0.8–1.6). At 10 min Zuo Si and Li get 3970,
Ni and Cu (twice the atoms) 3106."""

SOLVE_SECONDS_PER_P3 = 3.2e-10
"""One κ's solve (the QR of the stacked parts and the SVD of R), s per P³ (P = 3106: 9.4 s, idle machine;
P = 3970: 16 s measured, 20 s by this constant). The estimate counts every κ of the grid, though the walk
(``linear_solve.KAPPA_PATIENCE``) usually stops after three to five."""

QR_SECONDS_PER_ROW_P2 = 8.0e-11
"""The QR of the design's rows, s per row × P², beyond what ``BasisRung.seconds_per_pair`` holds (those were
measured at 58 neighbours, 3 force rows per 58 pairs): molecules have fewer pairs per row. Measured on
pyace's ethanol (25 200 rows × 4644 columns, 72 000 pairs: assembled in 43.7 s against 5.8 s by the per-pair
constant, idle machine, 2026-12-04 18:21)."""

PASS_FRACTION = 0.5
"""The share of the budget the one pass may take (the rest: start-up, data, evaluations, predictions)."""


def n_functions(nradmax_by_orders: Sequence[int], lmax_by_orders: Sequence[int]) -> int:
    """Number of basis functions of a single-element block of these settings."""
    from paceui.ace.basis import enumerate_block_functions

    return len(enumerate_block_functions(("X",), list(nradmax_by_orders), list(lmax_by_orders), 1))


def pass_seconds(rung: BasisRung, summary: DataSummary, test_size: float = 0.1,
                 n_kappa: int = len(KAPPA_GRID), per_element: int | None = None) -> float:
    """Estimated wall time of the linear stage's one pass: the assembly over the neighbour pairs (n_atoms ×
    the summary's neighbours: the training part, then the validation part for the refit; every atom's block
    has the rung's functions, or ``per_element`` of them with several elements, where
    ``number_of_functions_per_element`` keeps them to that; costed at the rung's full size), one solve of
    P = :func:`columns` per κ of the grid and one for the refit (idle 2-core machine). With fewer rows
    (energies and force components) than columns, R has only that many rows and its SVD costs rows² × P
    instead of P³."""
    pairs = summary.n_atoms * summary.neighbours
    P = columns(rung, summary, per_element)
    rows = training_rows(summary, test_size)
    solve_s = SOLVE_SECONDS_PER_P3 * P * min(P, rows) ** 2 + 0.5
    extra_rows = max(0.0, rows - 3.0 * pairs / NEIGHBOURS)   # rows the per-pair constants do not cover
    return rung.seconds_per_pair * pairs + QR_SECONDS_PER_ROW_P2 * extra_rows * P ** 2 + (n_kappa + 1) * solve_s


def columns(rung: BasisRung, summary: DataSummary, per_element: int | None = None) -> int:
    """Columns of the linear design for the data's elements: the rung's size (or ``per_element``) × elements."""
    return (per_element or n_functions(*rung.shape)) * len(summary.elements)


def training_rows(summary: DataSummary, test_size: float = 0.1) -> float:
    """Rows of the training part's design: one energy and three force components per atom."""
    return (summary.n_structures + 3 * summary.n_atoms) * (1.0 - test_size)


ROWS_PER_COLUMN = 2.5
"""The fewest training rows (energies + force components) per design column the rule allows. On ACEData's
Ti-Al tutorial (5037 training rows by :func:`training_rows`) the validation product E MAE × F MAE was flat near
2.5 rows per column and worse on either side: 336 functions per element (7.5 rows per column) 2075, 894 (2.8)
1949–1968, 1050 (2.4) 1982, 1500 (1.7) 2064 meV/atom × meV/Å (``assets/zuo/README.md``)."""


def fits(rung: BasisRung, summary: DataSummary, minutes: float = 10.0, test_size: float = 0.1,
         per_element: int | None = None) -> bool:
    """Whether the rung (cut to ``per_element`` functions per element) fits the rule: its
    :func:`pass_seconds` within ``PASS_FRACTION`` of the budget, at least ``ROWS_PER_COLUMN`` training rows per
    column."""
    return (pass_seconds(rung, summary, test_size, per_element=per_element) <= PASS_FRACTION * minutes * 60.0
            and ROWS_PER_COLUMN * columns(rung, summary, per_element) <= training_rows(summary, test_size))


def choose_basis(summary: DataSummary, minutes: float = 10.0, test_size: float = 0.1
                 ) -> tuple[BasisRung, int | None]:
    """The largest rung of ``BASIS_LADDER`` that :func:`fits` (the smallest if none does) and, with several
    elements, ``number_of_functions_per_element``: the rung's size, or more where the next rung's shape cut to
    a size between the two still fits (in steps of 10: a budget or a data set between two rungs is not
    rounded down to the smaller; ethanol, 3 elements: 1480 per element instead of 894)."""
    best = BASIS_LADDER[0]
    for rung in BASIS_LADDER:
        if fits(rung, summary, minutes, test_size):
            best = rung
    if len(summary.elements) == 1:
        return best, None
    size = n_functions(*best.shape)
    k = BASIS_LADDER.index(best)
    if k + 1 == len(BASIS_LADDER) or not fits(best, summary, minutes, test_size):
        return best, size
    nxt = BASIS_LADDER[k + 1]
    lo, hi = size // 10, -(-n_functions(*nxt.shape) // 10)   # tens: lo fits, hi (≥ nxt's size) does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(nxt, summary, minutes, test_size, per_element=10 * mid) else (lo, mid)
    return (nxt, 10 * lo) if 10 * lo > size else (best, size)


def basis_for(summary: DataSummary, minutes: float = 10.0, test_size: float = 0.1
              ) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(nradmax_by_orders, lmax_by_orders) of :func:`choose_basis`'s rung."""
    return choose_basis(summary, minutes, test_size)[0].shape


US_PER_ATOM_ITERATION = 110.0
"""One BFGS iteration of the recipe's basis (336 functions, 58 neighbours), µs per atom, idle 2-core machine."""


def recipe_for(summary: DataSummary, minutes: float = 10.0, us_per_atom_iteration: float = US_PER_ATOM_ITERATION,
               setup_seconds: float = 90.0, max_iterations: int = 2000, test_size: float = 0.1) -> Recipe:
    """The recipe for a training set (see module doc); ``minutes``: the wall-clock budget of the fit;
    ``test_size``: the validation fraction (the training rows the basis is sized against)."""
    rc = cutoff_for(summary)
    per_it = us_per_atom_iteration * 1e-6 * summary.n_atoms * len(summary.elements)
    n_it = int(max(minutes * 60.0 - setup_seconds, 0.0) / max(per_it, 1e-9))
    rung, per_element = choose_basis(summary, minutes=minutes, test_size=test_size)
    nrad, lmax = rung.shape
    return Recipe(cutoff=rc, nradmax_by_orders=nrad, lmax_by_orders=lmax, kappa=0.01,
                  maxiter=max(10, min(n_it, max_iterations)), functions_per_element=per_element)


def input_dict(recipe: Recipe, elements: Sequence[str], filename: str, test_filename: str | None = None,
               test_size: float | None = None, seed: int = 42, stage: str = "linear",
               initial_potential: str | None = None, maxiter: int | None = None) -> dict[str, Any]:
    """pacemaker's ``input.yaml`` (as a dict) for one stage of ``recipe`` on the given data files:
    ``linear`` (the Bayesian ridge solve, one linear density) or ``refine`` (BFGS on every coefficient,
    radial ones included, from ``initial_potential``, the linear stage's result)."""
    if stage not in ("linear", "refine"):
        raise ValueError(f"recipe stage must be 'linear' or 'refine', got {stage!r}")
    rc = recipe.cutoff
    data: dict[str, Any] = {"filename": filename}
    if test_filename:
        data["test_filename"] = test_filename
    elif test_size:
        data["test_size"] = test_size
    data["reference_energy"] = "auto"
    potential: dict[str, Any] = {
        "deltaSplineBins": 0.001, "elements": list(elements),
        "embeddings": {"ALL": {"npot": "FinnisSinclairShiftedScaled", "fs_parameters": [1, 1], "ndensity": 1}},
        "bonds": {"ALL": {"radbase": recipe.radbase, "radparameters": list(recipe.radparameters), "rcut": rc,
                          "dcut": 0.01}},
        "functions": {"ALL": {"nradmax_by_orders": list(recipe.nradmax_by_orders),
                              "lmax_by_orders": list(recipe.lmax_by_orders)}}}
    if recipe.functions_per_element:  # several elements: the rung's size per element, not every species combination
        potential["functions"]["number_of_functions_per_element"] = recipe.functions_per_element
    if stage == "linear":
        fit: dict[str, Any] = {"loss": {"kappa": recipe.kappa, "L2_coeffs": 1e-8}, "optimizer": "bayesian_ridge",
                               "maxiter": 1}
        if recipe.kappa_grid and test_size and not test_filename:  # chosen on the validation split only
            fit["options"] = {"kappa_grid": list(recipe.kappa_grid), "refit_all": recipe.refit_all}
    else:
        if initial_potential:
            potential["initial_potential"] = initial_potential
        fit = {"loss": {"kappa": recipe.kappa, "L1_coeffs": 1e-8, "L2_coeffs": 1e-8, "w0_rad": 1e-8,
                        "w1_rad": 1e-8, "w2_rad": 1e-8},
               "optimizer": "BFGS", "maxiter": int(maxiter if maxiter is not None else recipe.maxiter)}
    return {"cutoff": rc, "seed": seed,
            "metadata": {"comment": f"paceui recipe (paceui.fit.recipe), {stage} stage: rc {rc:g} Å from the "
                                    "number density"},
            "potential": potential, "data": data, "fit": fit,
            "backend": {"evaluator": "numba", "display_step": 50}}


def _cutoff_reason(summary: DataSummary) -> str:
    """What the cutoff was computed from, for the summary line."""
    if math.isfinite(summary.density):
        return f"density {summary.density:.4f} /Å³, nearest neighbours {summary.nn_distance:.2f} Å"
    return (f"no periodic structure: the median atom's reach is {summary.reach:.2f} Å (the distance to the "
            f"farthest of its ≈{summary.neighbours:.0f} nearest atoms, + {REACH_MARGIN:g} Å in molecules of at most "
            f"{NEIGHBOURS:.0f} atoms; at most {SHELL_CAP:g} × the distance to the 4th nearest)")


def write_recipe(data: str, output: str = "input.yaml", minutes: float = 10.0, test_size: float = 0.1,
                 energy_key: str | None = None, forces_key: str | None = None) -> str:
    """Write the recipe's ``input.yaml`` (linear stage) for the training file ``data``; returns a summary.
    ``energy_key`` / ``forces_key``: the info and arrays keys of the labels when they are not the usual ones
    (written as ``data: energy_key / forces_key``); InputError when the first structure has no energy or
    forces under the keys given (or the usual ones), naming the keys it has."""
    from pathlib import Path

    import yaml

    from paceui._atomic import atomic_write_text
    from paceui.data.io import load_dataframe
    from paceui.data.validate import DataValidationError, check_columns
    from paceui.errors import InputError

    if not Path(data).exists():
        raise InputError(f"data file not found: {data}")
    try:
        df = load_dataframe(data, energy_key=energy_key, forces_key=forces_key)
    except ValueError as exc:  # unreadable file, unsafe pickle: the message names the file
        raise InputError(str(exc)) from None
    try:
        check_columns(df)
    except DataValidationError as exc:
        raise InputError(f"{data}: {exc} (paceui recipe --energy-key / --forces-key)") from None
    try:
        summary = summarize(list(df["ase_atoms"]))
    except ValueError as exc:  # no interatomic distances, partly periodic cells
        raise InputError(f"{data}: {exc}") from None
    recipe = recipe_for(summary, minutes=minutes, test_size=test_size)
    out = Path(output)
    rel = os.path.relpath(Path(data).resolve(), out.resolve().parent)
    d = input_dict(recipe, summary.elements, rel, test_size=test_size)
    d["data"].update({k: v for k, v in (("energy_key", energy_key), ("forces_key", forces_key)) if v})
    atomic_write_text(out, "# paceui recipe (paceui.fit.recipe); run: paceui fit " + out.name + "\n"
                      + yaml.safe_dump(d, sort_keys=False, allow_unicode=True, default_flow_style=None))
    shape = (recipe.nradmax_by_orders, recipe.lmax_by_orders)
    rung = next(r for r in BASIS_LADDER if r.shape == shape)
    per = recipe.functions_per_element
    size = f"{per} functions per element (the {n_functions(*shape)}-function shape cut)" \
        if per and per != n_functions(*shape) else f"{n_functions(*shape)} functions per element"
    return (f"{data}: {summary.n_structures} structures, {summary.n_atoms} atoms, elements "
            f"{' '.join(summary.elements)}; {_cutoff_reason(summary)} -> cutoff {recipe.cutoff:g} Å; basis {size} "
            f"(one pass ≈ {pass_seconds(rung, summary, test_size, per_element=per) / 60:.1f} min on an idle 2-core "
            f"machine if every kappa is solved, for a {minutes:g} min budget); kappa chosen from "
            f"{list(recipe.kappa_grid)} on {test_size:g} of the data; written {out}")
