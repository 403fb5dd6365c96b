"""Packed neighbour lists, their on-disk cache, and the train/test split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule

from paceui.ace.neighbors import neighbor_list
from paceui.data import PackedNeighbors, build_packed_neighbors, dataset_hash, load_dataframe, nlcache, split_indices
from paceui.data.split import n_test_structures, train_test_split
from tests.test_data_common import ZUO, cu_frame, need, same, snapshot


def _structures() -> list[Atoms]:
    out = list(cu_frame(3)["ase_atoms"])
    alloy = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 2, 2))
    alloy.symbols[[0, 5, 9]] = "Al"
    alloy.positions += np.random.default_rng(1).normal(0, 0.05, alloy.positions.shape)
    out.append(alloy)
    mol = molecule("CH3CH2OH")
    mol.symbols[:] = ["Al" if s == "C" else "Cu" for s in mol.get_chemical_symbols()]
    out.append(mol)
    return out


def _check_against_neighbor_list(pack: PackedNeighbors, structures: list[Atoms], cutoff: float) -> None:
    assert pack.n_structures == len(structures)
    assert pack.atom_offsets[-1] == sum(len(a) for a in structures) == pack.n_atoms
    for s, at in enumerate(structures):
        nl = neighbor_list(at.positions, at.cell.array, at.pbc, cutoff)
        off, j, vec, sp = pack.structure(s)
        np.testing.assert_array_equal(off, nl.offsets)
        np.testing.assert_array_equal(j, nl.j)
        np.testing.assert_array_equal(vec, nl.vec)
        np.testing.assert_array_equal(sp, [pack.elements.index(x) for x in at.get_chemical_symbols()])
        a = pack.structure_slice(s)
        p = pack.pair_slice(s)
        assert np.all((pack.nbr_j[p] >= a.start) & (pack.nbr_j[p] < a.stop))  # global indices


def test_packed_equals_per_structure_lists() -> None:
    st = _structures()
    pack = build_packed_neighbors(st, 4.5, ["Cu", "Al"], use_cache=False, progress=False)
    assert pack.elements == ("Al", "Cu") and pack.cutoff == 4.5
    _check_against_neighbor_list(pack, st, 4.5)
    sub = pack.select([4, 1])
    _check_against_neighbor_list(sub, [st[4], st[1]], 4.5)
    with pytest.raises(ValueError, match="structure 0 contains element Cu"):
        build_packed_neighbors(st, 4.5, ["Al"], use_cache=False, progress=False)


def test_cache_hit_and_miss(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    st = _structures()
    snap = [a.copy() for a in st]
    calls: list[int] = []
    real_build = nlcache._build

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real_build(*args, **kwargs)

    monkeypatch.setattr(nlcache, "_build", counting)
    p1 = build_packed_neighbors(st, 4.0, ["Al", "Cu"], cache_dir=tmp_path, progress=True)
    files = list(tmp_path.glob("nl-*.npz"))
    assert len(calls) == 1 and len(files) == 1 and not list(tmp_path.glob(".*tmp"))
    p2 = build_packed_neighbors(st, 4.0, ["Cu", "Al"], cache_dir=tmp_path, progress=False)
    assert len(calls) == 1  # hit
    for f in ("atom_offsets", "species", "nbr_offsets", "nbr_j", "vec"):
        np.testing.assert_array_equal(getattr(p1, f), getattr(p2, f))
    assert p2.cutoff == 4.0 and p2.elements == ("Al", "Cu")
    build_packed_neighbors(st, 4.01, ["Al", "Cu"], cache_dir=tmp_path, progress=False)
    assert len(calls) == 2  # cutoff changed
    moved = [a.copy() for a in st]
    moved[2].positions[0, 0] += 1e-9
    build_packed_neighbors(moved, 4.0, ["Al", "Cu"], cache_dir=tmp_path, progress=False)
    assert len(calls) == 3  # data changed
    build_packed_neighbors(st, 4.0, ["Al", "Cu", "Ni"], cache_dir=tmp_path, progress=False)
    assert len(calls) == 4  # element list changed (species indices differ)
    assert len(list(tmp_path.glob("nl-*.npz"))) == 4
    files[0].write_bytes(b"garbage")
    p3 = build_packed_neighbors(st, 4.0, ["Al", "Cu"], cache_dir=tmp_path, progress=False)
    assert len(calls) == 5  # corrupt cache rebuilt
    np.testing.assert_array_equal(p3.vec, p1.vec)
    assert all(a == b for a, b in zip(st, snap))  # structures untouched
    assert dataset_hash(st, 4.0, ["Al", "Cu"]) != dataset_hash(moved, 4.0, ["Al", "Cu"])


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PACEUI_CACHE_DIR", str(tmp_path))
    assert nlcache.default_cache_dir() == tmp_path / "neighbors"
    st = _structures()[:2]
    build_packed_neighbors(st, 3.0, ["Cu"], progress=False)
    assert len(list((tmp_path / "neighbors").glob("nl-*.npz"))) == 1


def test_zuo_cu_pairs() -> None:
    df = load_dataframe(need(ZUO / "Cu_test.xyz.gz"))
    st = list(df["ase_atoms"])
    pack = build_packed_neighbors(st, 7.0, ["Cu"], use_cache=False, progress=False)
    assert pack.n_pairs == sum(len(neighbor_list(a.positions, a.cell.array, a.pbc, 7.0)) for a in st)
    assert 100 < pack.n_pairs / pack.n_atoms < 160  # ~128 neighbours at 7 Å (README)


def test_split() -> None:
    tr, te = split_indices(100, 0.1, seed=42)
    assert len(te) == 10 and len(tr) == 90
    assert np.all(np.diff(te) > 0) and np.all(np.diff(tr) > 0)
    assert sorted(np.concatenate([tr, te]).tolist()) == list(range(100))
    tr2, te2 = split_indices(100, 0.1, seed=42)
    assert np.array_equal(te, te2)
    assert not np.array_equal(te, split_indices(100, 0.1, seed=7)[1])
    assert n_test_structures(10, 0.15) == 1 and n_test_structures(10, 3) == 3 and n_test_structures(10, 3.0) == 3
    assert n_test_structures(5, 0.1) == 0
    for bad in (0, -1, 10, 12, float("nan"), "0.1", True):
        with pytest.raises(ValueError):
            n_test_structures(10, bad)  # type: ignore[arg-type]
    df = cu_frame(6)
    before = snapshot(df)
    a, b = train_test_split(df, 2, seed=0)
    assert same(snapshot(df), before)
    assert len(a) == 4 and len(b) == 2 and set(a.index) | set(b.index) == set(range(6))


def test_cache_file_readers_agree(tmp_path: Path) -> None:
    st = _structures()
    built = build_packed_neighbors(st, 4.0, ["Al", "Cu"], cache_dir=tmp_path, progress=False)
    (path,) = tmp_path.glob("nl-*.npz")
    mapped, key = PackedNeighbors.from_npz(path)
    copied, key2 = PackedNeighbors.from_npz(path, use_mmap=False)
    assert key == key2 == dataset_hash(st, 4.0, ["Al", "Cu"])
    for f in ("atom_offsets", "species", "nbr_offsets", "nbr_j", "vec"):
        for pack in (mapped, copied):
            np.testing.assert_array_equal(getattr(pack, f), getattr(built, f))
        assert not getattr(built, f).flags.writeable and not getattr(mapped, f).flags.writeable
    with pytest.raises(ValueError):
        mapped.vec[0, 0] = 1.0
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="not a paceui-packed-neighbors"):
        PackedNeighbors.from_npz(tmp_path / "other.npz")
