"""Forces and stress are derivatives of the energy; the energy has the symmetries of physics.

Property tests on random structures, for every radial basis, every inner-cutoff type, one and two
densities, with and without core repulsion, and periodic, mixed and open boundaries.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from paceui.ace.evaluator import ACEModel
from paceui.ace.yaml_io import load_potential
from tests.conftest import POTENTIALS, modified_potential, need_reference, random_cluster


def _variant(kind: str):
    """Reference potentials, modified in memory to reach every radial basis and inner cutoff."""
    need_reference()
    if kind in ("ChebExpCos+ChebPow", "ChebLinear", "SBessel", "distance", "zbl"):
        # Al-Ni_opt_all: FS + FSShiftedScaled ndens 2, core repulsion, ChebExpCos + ChebPow
        return modified_potential("Al-Ni_opt_all.yaml", None if kind == "ChebExpCos+ChebPow" else kind), ["Al", "Ni"]
    if kind == "ethanol":
        return load_potential(POTENTIALS / "ethanol.yaml"), ["C", "H", "O"]
    return load_potential(POTENTIALS / kind), None


KINDS = ["ChebExpCos+ChebPow", "ChebLinear", "SBessel", "distance", "zbl", "Cu-III.yaml",
         "Cu.pbe.in.yaml", "ternary_AlCuZn.yaml"]


def _structure(pot, symbols, seed: int, pbc, n: int = 9, dmin: float = 2.1):
    els = symbols or pot.elements
    rng = np.random.default_rng(seed)
    syms = [els[k % len(els)] for k in rng.permutation(n)]
    return random_cluster(syms, seed=seed, density=0.055, dmin=dmin, pbc=pbc)


def _energy(model, at) -> float:
    return model.evaluate(at).energy


@pytest.mark.parametrize("spline", [True, False], ids=["spline", "analytic"])
@pytest.mark.parametrize("kind", KINDS)
def test_forces_are_minus_energy_gradient(kind, spline):
    pot, syms = _variant(kind)
    model = ACEModel(pot, spline=spline)
    pbc = [True, True, False] if spline else True
    at = _structure(pot, syms, seed=11, pbc=pbc, dmin=1.9 if kind in ("distance", "zbl") else 2.1)
    res = model.evaluate(at)
    h = 1e-5
    scale = max(1.0, np.abs(res.forces).max())
    for a in range(len(at)):
        for c in range(3):
            p = at.positions.copy()
            at.positions[a, c] += h
            ep = _energy(model, at)
            at.positions[a, c] -= 2 * h
            em = _energy(model, at)
            at.positions = p
            assert -(ep - em) / (2 * h) == pytest.approx(res.forces[a, c], abs=2e-6 * scale), (a, c)
    assert np.abs(res.forces.sum(axis=0)).max() < 1e-9 * scale  # Newton's third law
    assert res.energy == pytest.approx(res.energies.sum(), rel=1e-13)


@pytest.mark.parametrize("kind", ["ChebExpCos+ChebPow", "SBessel", "zbl", "Cu-III.yaml"])
def test_stress_is_strain_derivative(kind):
    pot, syms = _variant(kind)
    model = ACEModel(pot)
    at = _structure(pot, syms, seed=5, pbc=True, dmin=1.9)
    res = model.evaluate(at)
    vol = at.get_volume()
    h = 1e-6
    cell0, pos0 = at.cell.array.copy(), at.positions.copy()
    voigt = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]
    for k, (a, b) in enumerate(voigt):
        es = []
        for sgn in (1, -1):
            eps = np.zeros((3, 3))
            eps[a, b] += sgn * h / 2
            eps[b, a] += sgn * h / 2
            F = np.eye(3) + eps
            at.set_cell(cell0 @ F.T, scale_atoms=False)
            at.positions = pos0 @ F.T
            es.append(_energy(model, at))
        at.set_cell(cell0)
        at.positions = pos0
        scale = max(1.0, np.abs(res.stress).max())
        assert (es[0] - es[1]) / (2 * h) / vol == pytest.approx(res.stress[k], abs=1e-6 * scale), k


@pytest.mark.parametrize("kind", ["ChebExpCos+ChebPow", "ChebLinear", "distance", "Cu.pbe.in.yaml", "ethanol"])
def test_invariances(kind):
    pot, syms = _variant(kind)
    model = ACEModel(pot)
    at = _structure(pot, syms, seed=7, pbc=kind != "ethanol", n=10)
    base = model.evaluate(at)
    tol = 1e-9 * max(1.0, np.abs(base.energies).max())
    # rotation (cell and positions together)
    R = Rotation.random(random_state=3).as_matrix()
    rot = at.copy()
    rot.set_cell(at.cell.array @ R.T)
    rot.positions = at.positions @ R.T
    r = model.evaluate(rot)
    np.testing.assert_allclose(r.energies, base.energies, rtol=0, atol=tol)
    np.testing.assert_allclose(r.forces, base.forces @ R.T, rtol=0, atol=1e-8 * max(1, np.abs(base.forces).max()))
    # inversion
    inv = at.copy()
    inv.set_cell(-at.cell.array)
    inv.positions = -at.positions
    r = model.evaluate(inv)
    np.testing.assert_allclose(r.energies, base.energies, rtol=0, atol=tol)
    np.testing.assert_allclose(r.forces, -base.forces, rtol=0, atol=1e-8 * max(1, np.abs(base.forces).max()))
    # translation
    tr = at.copy()
    tr.positions += np.array([0.37, -1.3, 2.9])
    np.testing.assert_allclose(model.evaluate(tr).energies, base.energies, rtol=0, atol=tol)
    # permutation of atoms (like atoms exchange labels with their positions)
    perm = np.random.default_rng(1).permutation(len(at))
    pm = at[perm]
    r = model.evaluate(pm)
    np.testing.assert_allclose(r.energies, base.energies[perm], rtol=0, atol=tol)
    np.testing.assert_allclose(r.forces, base.forces[perm], rtol=0, atol=1e-8 * max(1, np.abs(base.forces).max()))


def test_periodic_images_equal_supercell(reference):
    """A cell and its 2x1x1 supercell: same energy per atom (periodic images handled)."""
    pot, syms = _variant("Cu-III.yaml")
    from ase.build import bulk

    model = ACEModel(pot)
    prim = bulk("Cu", "fcc", a=3.6)  # 1 atom: every neighbour is an image of itself
    sup = prim.repeat((2, 1, 1))
    e1 = model.evaluate(prim).energy
    e2 = model.evaluate(sup).energy
    assert e2 == pytest.approx(2 * e1, rel=1e-12)


def test_isolated_atom_and_unknown_element(reference):
    from ase import Atoms

    model = ACEModel(POTENTIALS / "Cu-III.yaml")
    res = model.evaluate(Atoms("Cu", positions=[[0, 0, 0]]))
    assert res.forces.shape == (1, 3) and np.all(res.forces == 0)
    with pytest.raises(ValueError, match=r"\['Zn'\]"):
        model.evaluate(Atoms("CuZn", positions=[[0, 0, 0], [2, 0, 0]]))
