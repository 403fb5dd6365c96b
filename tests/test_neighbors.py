"""Tests of the numba neighbour list against ase.neighborlist."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, fcc111, molecule
from ase.neighborlist import neighbor_list as ase_neighbor_list

from paceui.ace.neighbors import (
    _PARALLEL_MIN_ATOMS,
    NeighborList,
    _neighbor_list,
    neighbor_list,
    neighbor_list_atoms,
    neighbor_lists,
)

SHARED = Path(__file__).resolve().parents[2] / "shared"
CU_TRAIN = SHARED / "zuo" / "Cu_train.xyz.gz"


def _pairs(nl: NeighborList) -> dict[tuple[int, int, tuple[int, ...]], float]:
    d = nl.distances
    return {(int(i), int(j), tuple(int(x) for x in s)): float(dd)
            for i, j, s, dd in zip(nl.i, nl.j, nl.shift, d)}


def _ase_pairs(atoms: Atoms, cutoff: float) -> dict[tuple[int, int, tuple[int, ...]], float]:
    i, j, S, d = ase_neighbor_list("ijSd", atoms, cutoff)
    return {(int(a), int(b), tuple(int(x) for x in s)): float(dd)
            for a, b, s, dd in zip(i, j, S, d)}


def check_consistent(nl: NeighborList, atoms: Atoms, cutoff: float) -> None:
    """Structural invariants of a NeighborList."""
    n = len(atoms)
    assert nl.offsets.shape == (n + 1,) and nl.offsets.dtype == np.int64
    assert nl.offsets[0] == 0 and nl.offsets[-1] == len(nl)
    assert np.all(np.diff(nl.offsets) >= 0)
    assert nl.j.dtype == np.int64 and nl.shift.dtype == np.int64 and nl.vec.dtype == np.float64
    assert nl.vec.shape == (len(nl), 3) and nl.shift.shape == (len(nl), 3)
    assert np.all((nl.j >= 0) & (nl.j < n))
    assert np.all(np.diff(nl.i) >= 0) and nl.i.shape == (len(nl),)
    for i in range(n):
        assert np.all(nl.i[nl.offsets[i]:nl.offsets[i + 1]] == i)
    if len(nl):
        assert nl.distances.max() < cutoff and nl.distances.min() > 0
    self_zero = (nl.i == nl.j) & np.all(nl.shift == 0, axis=1)
    assert not self_zero.any()
    pos, cell = atoms.positions, atoms.cell.array
    expect = pos[nl.j] + nl.shift @ cell - pos[nl.i]
    np.testing.assert_allclose(nl.vec, expect, rtol=0, atol=1e-12)
    for d in range(3):
        if not atoms.pbc[d]:
            assert np.all(nl.shift[:, d] == 0)


def compare_with_ase(atoms: Atoms, cutoff: float) -> NeighborList:
    nl = neighbor_list_atoms(atoms, cutoff)
    check_consistent(nl, atoms, cutoff)
    ours, ref = _pairs(nl), _ase_pairs(atoms, cutoff)
    assert len(ours) == len(nl), "duplicate pairs"
    assert set(ours) == set(ref), (
        f"missing {sorted(set(ref) - set(ours))[:5]}, extra {sorted(set(ours) - set(ref))[:5]}")
    keys = sorted(ref)
    np.testing.assert_allclose([ours[k] for k in keys], [ref[k] for k in keys], rtol=0, atol=1e-12)
    return nl


def random_cell(rng: np.random.Generator, scale: float = 8.0, skew: float = 0.4) -> np.ndarray:
    cell = np.diag(rng.uniform(0.8, 1.2, 3) * scale)
    cell += rng.uniform(-skew, skew, (3, 3)) * scale * (1 - np.eye(3))
    return cell


@pytest.mark.parametrize("seed", range(5))
def test_random_triclinic_periodic(seed: int) -> None:
    rng = np.random.default_rng(seed)
    cell = random_cell(rng)
    atoms = Atoms("X20", scaled_positions=rng.random((20, 3)), cell=cell, pbc=True)
    nl = compare_with_ase(atoms, 5.0)
    assert len(nl) > 0


@pytest.mark.parametrize("seed", range(3))
def test_tiny_cell_many_images(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    cell = random_cell(rng, scale=2.0, skew=0.3)
    atoms = Atoms("X2", scaled_positions=rng.random((2, 3)), cell=cell, pbc=True)
    cutoff = 3.0 * np.linalg.norm(cell, axis=1).max()
    nl = compare_with_ase(atoms, cutoff)
    assert np.abs(nl.shift).max() >= 3


@pytest.mark.parametrize(
    "cell",
    [
        [[5.0, 0, 0], [4.7, 1.2, 0], [0.3, -0.4, 6.0]],  # strongly skewed: small heights
        [[0, 4.0, 0], [4.5, 0, 0], [0.5, 0.5, 5.0]],  # left-handed (negative determinant)
        [[6.0, 0, 0], [-5.5, 2.0, 0], [-2.0, -0.7, 3.0]],  # obtuse angles
    ],
)
def test_skewed_and_left_handed_cells(cell: list[list[float]]) -> None:
    rng = np.random.default_rng(42)
    atoms = Atoms("X6", scaled_positions=rng.uniform(-0.5, 1.5, (6, 3)), cell=cell, pbc=True)
    nl = compare_with_ase(atoms, 6.0)
    assert len(nl) > 0


def test_primitive_fcc_one_atom() -> None:
    atoms = bulk("Cu", "fcc", a=3.615)  # one-atom primitive cell
    nl = compare_with_ase(atoms, 7.0)
    assert np.all(nl.j == 0)
    # fcc shells a*sqrt(n/2) below 7 Å: 12 + 6 + 24 + 12 + 24 + 8 + 48 (next shell at 7.23 Å)
    counts = np.unique(np.round(nl.distances, 6), return_counts=True)[1]
    assert counts.tolist() == [12, 6, 24, 12, 24, 8, 48] and len(nl) == 134


@pytest.mark.parametrize("pbc", list(itertools.product([False, True], repeat=3)))
def test_all_pbc_combinations_triclinic(pbc: tuple[bool, bool, bool]) -> None:
    rng = np.random.default_rng(7)
    atoms = Atoms("X16", scaled_positions=rng.random((16, 3)), cell=random_cell(rng, 7.0), pbc=pbc)
    compare_with_ase(atoms, 4.5)


def test_slab_mixed_pbc() -> None:
    atoms = fcc111("Cu", size=(3, 3, 4), vacuum=8.0, a=3.615)
    assert list(atoms.pbc) == [True, True, False]
    atoms.positions[:, 2] -= 12.0  # atoms below the cell along the non-periodic axis
    nl = compare_with_ase(atoms, 5.5)
    assert np.all(nl.shift[:, 2] == 0)


def test_slab_zero_cell_vector_in_nonperiodic_direction() -> None:
    slab = fcc111("Cu", size=(2, 2, 3), vacuum=0.0, a=3.615)
    cell = slab.cell.array.copy()
    cell[2] = 0.0
    ours = neighbor_list(slab.positions, cell, [True, True, False], 5.0)
    ref = neighbor_list(slab.positions, slab.cell.array, [True, True, False], 5.0)
    assert _pairs(ours) == pytest.approx(_pairs(ref), abs=1e-12)
    assert set(_pairs(ours)) == set(_ase_pairs(slab, 5.0))


def test_nonperiodic_molecule_zero_cell() -> None:
    mol = molecule("C6H6")
    assert np.all(mol.cell.array == 0) and not mol.pbc.any()
    nl = compare_with_ase(mol, 2.5)
    assert len(nl) > 0 and np.all(nl.shift == 0)
    direct = neighbor_list(mol.positions, None, False, 2.5)
    np.testing.assert_array_equal(direct.j, nl.j)


def test_sparse_nonperiodic_cloud() -> None:
    rng = np.random.default_rng(3)
    pos = rng.uniform(-5e3, 5e3, (300, 3))
    pos[:100] = rng.uniform(0, 6, (100, 3))  # one dense cluster plus far-away atoms
    compare_with_ase(Atoms("X300", positions=pos), 2.0)


@pytest.mark.parametrize("seed", range(3))
def test_unwrapped_positions(seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    frac = rng.uniform(-2.0, 3.0, (12, 3))
    atoms = Atoms("X12", scaled_positions=frac, cell=random_cell(rng, 6.0), pbc=True)
    atoms.set_scaled_positions(frac)  # keep them unwrapped
    assert (atoms.get_scaled_positions(wrap=False) < 0).any()
    nl = compare_with_ase(atoms, 5.0)
    wrapped = atoms.copy()
    wrapped.wrap()
    nlw = neighbor_list_atoms(wrapped, 5.0)
    np.testing.assert_allclose(np.sort(nl.distances), np.sort(nlw.distances), atol=1e-10)


def test_isolated_atom() -> None:
    for atoms in (Atoms("Cu", positions=[[1.0, 2.0, 3.0]]),
                  Atoms("Cu2", positions=[[0, 0, 0], [10, 0, 0]], cell=[5, 5, 50], pbc=[0, 0, 0])):
        nl = compare_with_ase(atoms, 4.0)
        assert len(nl) == 0 and nl.j.shape == (0,) and nl.vec.shape == (0, 3)
        np.testing.assert_array_equal(nl.offsets, np.zeros(len(atoms) + 1))


def test_empty_structure() -> None:
    nl = neighbor_list(np.zeros((0, 3)), np.eye(3) * 3, True, 2.0)
    assert len(nl) == 0 and nl.offsets.tolist() == [0] and nl.i.shape == (0,)


def test_cutoff_smaller_than_all_distances() -> None:
    atoms = bulk("Cu", "fcc", a=3.615, cubic=True) * (2, 2, 2)
    nl = compare_with_ase(atoms, 2.0)  # nearest neighbour distance is 2.556 Å
    assert len(nl) == 0 and nl.offsets.shape == (len(atoms) + 1,)


def test_strict_cutoff() -> None:
    pos = np.array([[0.0, 0.0, 0.0], [1.5, 0.0, 0.0]])
    assert len(neighbor_list(pos, None, False, 1.5)) == 0
    assert len(neighbor_list(pos, None, False, np.nextafter(1.5, 2.0))) == 2


def test_parallel_path_and_determinism() -> None:
    rng = np.random.default_rng(11)
    cell = random_cell(rng, 26.0, 0.2)
    atoms = Atoms("X1500", scaled_positions=rng.random((1500, 3)), cell=cell,
                  pbc=[True, True, False])
    args = (atoms.positions, atoms.cell.array, atoms.pbc, 3.5)
    par, ser = _neighbor_list(*args, parallel=True), _neighbor_list(*args, parallel=False)
    for name in ("offsets", "j", "shift", "vec"):
        np.testing.assert_array_equal(getattr(par, name), getattr(ser, name))
    again = neighbor_list(*args)
    np.testing.assert_array_equal(again.j, par.j)
    compare_with_ase(atoms, 3.5)


def test_batched_matches_single() -> None:
    rng = np.random.default_rng(5)
    structs = [Atoms("X10", scaled_positions=rng.random((10, 3)), cell=random_cell(rng, 6.0),
                     pbc=True) for _ in range(6)] + [molecule("CH4")]
    # one structure large enough for the atom-parallel kernel inside neighbor_lists
    n_big = _PARALLEL_MIN_ATOMS + 8
    structs.insert(3, Atoms(f"X{n_big}", scaled_positions=rng.random((n_big, 3)), pbc=True,
                            cell=np.eye(3) * (n_big / 0.09) ** (1 / 3)))
    batch = neighbor_lists(structs, 4.0, num_threads=2)
    assert len(batch) == len(structs)
    for nl, atoms in zip(batch, structs):
        single = neighbor_list_atoms(atoms, 4.0)
        for name in ("offsets", "j", "shift", "vec"):
            np.testing.assert_array_equal(getattr(nl, name), getattr(single, name))
    assert len(batch[3]) > 10_000 and all(len(x) > 0 for x in batch)
    serial = neighbor_lists(structs, 4.0, num_threads=1)
    assert [len(x) for x in serial] == [len(x) for x in batch]
    assert neighbor_lists([], 4.0) == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(cutoff=0.0), "cutoff"),
        (dict(cutoff=-1.0), "cutoff"),
        (dict(cutoff=float("nan")), "cutoff"),
        (dict(cell=np.diag([3.0, 3.0, 0.0])), "cell vector 2 is zero"),
        (dict(cell=np.array([[3.0, 0, 0], [6.0, 0, 0], [0, 0, 3.0]])), "singular|parallel"),
        (dict(cell=np.array([[3.0, 0, 0], [0, 3.0, 0], [3.0, 3.0, 0]])), "singular"),
        (dict(pbc=[True, True, False], cell=np.array([[3.0, 0, 0], [-3.0, 0, 0], [0, 0, 0]])),
         "parallel"),
        (dict(positions=np.array([[0.0, 0, 0], [np.nan, 0, 0]])), "NaN"),
        (dict(positions=np.zeros((3, 2))), "shape"),
        (dict(cell=np.full((3, 3), np.nan)), "NaN"),
    ],
)
def test_bad_input_raises(kwargs: dict, match: str) -> None:
    args = dict(positions=np.array([[0.0, 0, 0], [1.0, 1, 1]]), cell=np.eye(3) * 3, pbc=True,
                cutoff=2.0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        neighbor_list(args["positions"], args["cell"], args["pbc"], args["cutoff"])


def test_zero_cell_allowed_when_not_periodic() -> None:
    pos = np.array([[0.0, 0, 0], [1.0, 0, 0]])
    with pytest.raises(ValueError, match="pbc"):
        neighbor_list(pos, np.zeros((3, 3)), [True, False, False], 2.0)
    assert len(neighbor_list(pos, np.zeros((3, 3)), False, 2.0)) == 2


@pytest.mark.skipif(not CU_TRAIN.exists(),
                    reason=f"Zuo Cu data not found at {CU_TRAIN} (shared/ beside the checkout)")
def test_zuo_cu_structures() -> None:
    import ase.io

    structs = ase.io.read(CU_TRAIN, index=":3")
    for atoms in structs:
        nl = compare_with_ase(atoms, 7.0)
        assert len(nl) > 100 * len(atoms)


def _numba_and_numpy(atoms: Atoms, cutoff: float) -> tuple[tuple, tuple]:
    from paceui.ace import neighbors as N
    from paceui.ace.neighbors_numpy import build

    pos, c, p = atoms.positions.astype(np.float64), np.ascontiguousarray(atoms.cell.array), atoms.pbc.copy()
    inv = np.linalg.inv(N._basis(c, p))
    args = (pos, c, inv, 1.0 / np.linalg.norm(inv, axis=0), p, cutoff, N._BINS_PER_CUTOFF, max(4096, 8 * len(atoms)))
    return N._build_serial(*args), build(*args)


def test_numpy_builder_is_bit_identical() -> None:
    """The no-compile numpy builder (used on a cold numba cache) returns the same arrays, bit for bit and in the
    same order: Zuo Cu, tiny cells with many images, triclinic and mixed-pbc cells, a molecule, an isolated atom."""
    import ase.io

    cases = list(ase.io.read(CU_TRAIN, index="::25")) if CU_TRAIN.exists() else []
    rng = np.random.default_rng(7)
    for k in range(40):
        n = int(rng.integers(0, 10))
        cases.append(Atoms(f"H{n}" if n else "", positions=rng.uniform(-3, 8, size=(n, 3)), pbc=rng.random(3) < 0.6,
                           cell=rng.normal(size=(3, 3)) * rng.uniform(1, 4) + np.eye(3) * rng.uniform(0.5, 4)))
    cases += [molecule("CH3CH2OH"), Atoms("Cu", positions=[[0, 0, 0]]), fcc111("Cu", (2, 2, 3), vacuum=5.0),
              bulk("Cu")]
    for atoms in cases:
        for cutoff in (2.0, 4.5, 7.0):
            try:
                compiled, plain = _numba_and_numpy(atoms, cutoff)
            except ValueError:  # a singular random cell
                continue
            for a, b in zip(compiled[:4], plain[:4]):
                assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def test_cold_cache_uses_numpy_then_compiled(monkeypatch: pytest.MonkeyPatch) -> None:
    from paceui.ace import neighbors as N

    monkeypatch.setattr(N, "_compiled_ready", [False])
    monkeypatch.setattr(N, "is_cached", lambda spec: False)
    monkeypatch.setattr(N, "_build_serial", type("D", (), {"signatures": []})())
    monkeypatch.setattr(N, "_numpy_spent", [0.0])
    atoms = bulk("Cu", cubic=True).repeat(2)
    nl = neighbor_list_atoms(atoms, 4.5)  # numpy (the stand-in dispatcher above could not run)
    assert N._numpy_spent[0] > 0
    check_consistent(nl, atoms, 4.5)
