"""Per-atom B-projections against pyace (linear, every reference potential) and finite differences (full)."""

from __future__ import annotations

import ase.io
import numpy as np
import pytest
from ase.build import bulk

from paceui.ace.evaluator import ACEModel
from paceui.ace.potential import PotentialError
from paceui.ace.projections import compute_projections, iter_projections
from paceui.ace.yaml_io import load_potential
from tests.conftest import POTENTIALS, need_reference
from tests.refpyace import run_jobs


def rattled(elements: list[str], seed: int, n: int = 3) -> list:
    """Random multi-species rattled fcc/bcc cells (6–16 atoms) with every element present."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        a = (bulk("Cu", "fcc", a=3.7, cubic=True).repeat((2, 1, 1)) if k % 2 == 0
             else bulk("Cu", "bcc", a=2.95, cubic=True).repeat((2, 2, 1)))
        sym = [elements[i % len(elements)] for i in range(len(a))]
        rng.shuffle(sym)
        a.set_chemical_symbols(sym)
        a.positions += rng.normal(0.0, 0.1, a.positions.shape)
        out.append(a)
    return out


def loadable() -> list[str]:
    names = []
    for p in sorted(POTENTIALS.glob("*.yaml")):
        try:
            ACEModel(p)
        except (PotentialError, ValueError, KeyError):
            continue
        names.append(p.name)
    return names


@pytest.fixture(scope="module")
def linear_cases(tmp_path_factory):
    need_reference()
    tmp = tmp_path_factory.mktemp("proj")
    names = loadable()
    jobs, structs = [], {}
    for k, name in enumerate(names):
        els = load_potential(POTENTIALS / name).elements
        st = rattled(els, seed=k)
        xyz = tmp / f"{name}.xyz"
        ase.io.write(xyz, st)
        structs[name] = ase.io.read(xyz, ":")  # the rounded positions pyace reads
        jobs.append(["proj", POTENTIALS / name, xyz, "linear", tmp / f"{name}.npz"])
    return names, structs, run_jobs(jobs, tmp)


def test_linear_projections_equal_pyace_on_all_reference_potentials(linear_cases):
    names, structs, refs = linear_cases
    assert len(names) >= 20
    compared = 0
    for name, ref in zip(names, refs):
        if isinstance(ref, str):  # pyace cannot load this one
            continue
        p = compute_projections(POTENTIALS / name, structs[name], "linear")
        assert sorted(ref) == sorted(p.rows), name
        for el, b in ref.items():
            a = p.rows[el]
            assert a.shape == b.shape, (name, el)
            scale = np.abs(b).max(axis=0)
            assert np.all(np.abs(a - b) <= 1e-10 * np.maximum(scale, 1e-300)), (name, el)
        compared += 1
    assert compared >= 20
    multi = [n for n, r in zip(names, refs) if not isinstance(r, str) and len(r) > 1]
    assert len(multi) >= 4, multi


def test_full_projections_are_dE_i_dc_by_finite_differences():
    """pyace 0.4.0rc1 returns zeros for full projections, so they are checked against ∂E_i/∂c directly."""
    need_reference()
    for name in ["Cu-I_active_learning.yaml", "multispecies_AlNi.yaml"]:
        pot = load_potential(POTENTIALS / name)
        st = rattled(pot.elements, seed=3, n=1)[0]
        model = ACEModel(pot, spline=False)
        p = compute_projections(model, [st], "full")
        lin = compute_projections(model, [st], "linear")
        rng = np.random.default_rng(0)
        for el in pot.elements:
            funcs = [f for f in pot.functions() if f.elements[0] == el]
            funcs.sort(key=lambda f: (f.rank, [pot.elements.index(e) for e in f.elements[1:]]))
            P = len(funcs[0].coeffs)
            assert p.rows[el].shape == (len(funcs) and lin.rows[el].shape[0], len(funcs) * P)
            for k in rng.choice(len(funcs), 2, replace=False):
                for q in range(P):
                    h = 1e-5 * max(1.0, abs(funcs[k].coeffs[q]))
                    e = []
                    for s in (1, -1):
                        funcs[k].coeffs[q] += s * h
                        e.append(ACEModel(pot, spline=False).evaluate(st).energies)
                        funcs[k].coeffs[q] -= s * h
                    fd = (e[0] - e[1]) / (2 * h)
                    rows = p.atom[el]
                    np.testing.assert_allclose(p.rows[el][:, k * P + q], fd[rows], rtol=1e-6,
                                               atol=1e-9, err_msg=f"{name} {el} {k} {q}")


def test_batches_and_row_bookkeeping():
    need_reference()
    pot = POTENTIALS / "multispecies_AlNi.yaml"
    st = rattled(["Al", "Ni"], seed=5, n=5)
    whole = compute_projections(pot, st, "linear")
    parts = list(iter_projections(ACEModel(pot), st, "linear", batch_atoms=10))
    assert len(parts) >= 3
    for el in ("Al", "Ni"):
        np.testing.assert_array_equal(np.concatenate([q.rows[el] for q in parts]), whole.rows[el])
        np.testing.assert_array_equal(np.concatenate([q.structure[el] for q in parts]), whole.structure[el])
        for r, (s, a) in enumerate(zip(whole.structure[el], whole.atom[el])):
            assert st[s][a].symbol == el
    capped = compute_projections(pot, st, "linear", max_rows=7)
    assert all(len(v) == 7 for v in capped.rows.values())


def test_yace_is_refused():
    need_reference()
    with pytest.raises(PotentialError, match="B-basis"):
        compute_projections(POTENTIALS / "Al-Ni_opt_all.yace", [bulk("Al")], "linear")
