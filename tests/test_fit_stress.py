"""The stress term of the loss: analytic gradient against finite differences, fitted stresses against the
calculator's get_stress(), and the pacemaker loss unchanged when the term is off."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk

from paceui.ace.neighbors import neighbor_list
from paceui.fit.arrays import FitArrays
from paceui.fit.loss import ACELoss, LossConfig
from tests.conftest import modified_potential, need_reference


def periodic_problem(pot, n_struct: int = 3, seed: int = 0, with_stress=None) -> tuple[FitArrays, list]:
    """Rattled, sheared periodic cells of the potential's elements with random reference data (energy,
    forces, W = Ω·σ); ``with_stress``: which structures carry a stress label (default all)."""
    rng = np.random.default_rng(seed)
    els = pot.elements
    structs = []
    for s in range(n_struct):
        at = bulk("Al", "fcc", a=4.05, cubic=True).repeat((2, 1, 1))
        at.set_chemical_symbols([els[(k + s) % len(els)] for k in range(len(at))])
        cell = at.cell.array @ (np.eye(3) + 0.03 * rng.normal(size=(3, 3)))
        at.set_cell(cell, scale_atoms=True)
        at.positions += 0.1 * rng.normal(size=at.positions.shape)
        structs.append(at)
    so, sp, no, nj, vv = [0], [], [0], [], []
    for at in structs:
        nl = neighbor_list(at.positions, at.cell.array, at.pbc, pot.cutoff)
        base = so[-1]
        sp += [els.index(x) for x in at.get_chemical_symbols()]
        no += list(nl.offsets[1:] + no[-1])
        nj += list(nl.j + base)
        vv.append(nl.vec)
        so.append(base + len(at))
    S = len(structs)
    s_ref = rng.normal(size=(S, 6)) * 0.5
    mask = np.ones(S, bool) if with_stress is None else np.asarray(with_stress, bool)
    s_ref[~mask] = np.nan
    w_s = rng.uniform(0.5, 1.5, S) * mask
    we, wf = rng.uniform(0.5, 1.5, S), rng.uniform(0.5, 1.5, so[-1])
    data = FitArrays(np.array(so), np.array(sp), np.array(no), np.array(nj), np.vstack(vv),
                     np.array([rng.normal() * len(a) for a in structs]), rng.normal(size=(so[-1], 3)),
                     we / we.sum(), wf / wf.sum(), s_ref, w_s / w_s.sum(),
                     np.array([a.get_volume() for a in structs]))
    return data, structs


def _fd(loss, th, data, i):
    h = 1e-5 * max(1.0, abs(th[i]))

    def L(x):
        t = th.copy()
        t[i] += x
        return loss(t, data, grad=False).loss
    return (8 * (L(h) - L(-h)) - (L(2 * h) - L(-2 * h))) / (12 * h)


CASES = [("Cu-III.yaml", None, 0.0), ("Cu-III.yaml", None, 0.3),  # one species, ndensity 2
         ("Al-Ni_opt_all.yaml", None, 0.4),  # two species, core repulsion (inner cutoff, density)
         ("Al-Ni_opt_all.yaml", "zbl", 0.0)]  # two species, ZBL core repulsion


@pytest.mark.parametrize("name,kind,kappa", CASES, ids=[f"{n}-{k}-{q}" for n, k, q in CASES])
def test_stress_gradient_equals_finite_differences(name, kind, kappa):
    need_reference()
    pot = modified_potential(name, kind)
    loss = ACELoss(pot, LossConfig(kappa=kappa, stress=0.7))
    data, _ = periodic_problem(pot, with_stress=[True, False, True])
    rng = np.random.default_rng(2)
    th = loss.pmap.get(pot) * (1 + 0.1 * rng.normal(size=loss.pmap.size)) + 0.01 * rng.normal(size=loss.pmap.size)
    res = loss(th, data)
    assert res.parts["s_loss_contrib"] > 0
    scale = np.abs(res.grad).max()
    idx = np.concatenate([rng.choice(loss.pmap.n_crad, size=min(8, loss.pmap.n_crad), replace=False),
                          loss.pmap.n_crad + rng.choice(loss.pmap.size - loss.pmap.n_crad, size=10, replace=False)])
    for i in idx:
        fd = _fd(loss, th, data, i)
        assert abs(fd - res.grad[i]) <= 1e-6 * max(abs(fd), 1e-3 * scale), (i, fd, res.grad[i])


def test_stress_least_squares_form_is_consistent(reference):
    """With the stress block: Σ r² = loss and Jᵀr = ½ ∇L."""
    pot = modified_potential("Al-Ni_opt_all.yaml", None)
    loss = ACELoss(pot, LossConfig(kappa=0.2, stress=1.3, L2_coeffs=1e-3))
    data, _ = periodic_problem(pot, seed=4)
    th = loss.pmap.get(pot)
    res = loss(th, data)
    r = loss.residuals(th, data)
    assert np.sum(r * r) == pytest.approx(res.loss, rel=1e-12)
    np.testing.assert_allclose(loss.residuals_vjp(th, data, r), 0.5 * res.grad, rtol=1e-9,
                               atol=1e-12 * np.abs(res.grad).max())


def test_fitted_stress_equals_calculator_get_stress(reference):
    """The fit's virials and energies are the ASE calculator's (both on the tabulated radial functions)."""
    from paceui.ace.calculator import ACECalculator

    pot = modified_potential("Al-Ni_opt_all.yaml", None)
    loss = ACELoss(pot, LossConfig(stress=1.0))
    data, structs = periodic_problem(pot, seed=7)
    e, f, w = loss.predict_virials(loss.pmap.get(pot), data)
    for s, at in enumerate(structs):
        at = at.copy()
        at.calc = ACECalculator(pot)
        np.testing.assert_allclose(w[s] / at.get_volume(), at.get_stress(), rtol=1e-10, atol=1e-12)
        assert e[s] == pytest.approx(at.get_potential_energy(), rel=1e-12)


def test_stress_is_the_strain_derivative(reference):
    """σ = (1/Ω) ∂E/∂ε (ASE's sign): W from the loss equals a central difference of E under strain."""
    pot = modified_potential("Al-Ni_opt_all.yaml", None)
    from paceui.ace.calculator import ACECalculator

    data, structs = periodic_problem(pot, n_struct=1, seed=9)
    _, _, w = ACELoss(pot, LossConfig()).predict_virials(ACELoss(pot, LossConfig()).pmap.get(pot), data)
    at = structs[0]
    h = 1e-5

    def E(eps):
        b = at.copy()
        b.set_cell(at.cell.array @ (np.eye(3) + eps), scale_atoms=True)
        b.calc = ACECalculator(pot)
        return b.get_potential_energy()
    for c, (a, b) in enumerate(((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))):
        eps = np.zeros((3, 3))
        eps[a, b] = eps[b, a] = h / (1 if a == b else 2)
        assert (E(eps) - E(-eps)) / (2 * h) == pytest.approx(w[0, c], rel=1e-6, abs=1e-8)


def test_stress_weight_zero_keeps_the_loss_and_gradient_bit_identical(reference):
    """λ_σ = 0 with stress labels present gives exactly the loss and gradient without labels."""
    pot = modified_potential("Al-Ni_opt_all.yaml", None)
    data, _ = periodic_problem(pot, seed=1)
    bare = FitArrays(data.struct_off, data.species, data.nbr_off, data.nbr_j, data.vec, data.e_ref, data.f_ref,
                     data.w_e, data.w_f)
    loss = ACELoss(pot, LossConfig(kappa=0.3))
    th = loss.pmap.get(pot)
    a, b = loss(th, data), loss(th, bare)
    assert a.loss == b.loss and np.array_equal(a.grad, b.grad)
    assert a.parts["s_loss"] > 0 and b.parts["s_loss"] == 0.0
