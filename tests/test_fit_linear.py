"""The linear fast path: one ridge solve reaches the minimum that BFGS approaches."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize as so

from paceui.ace.basis import build_potential
from paceui.fit.linear import is_linear, linear_fit
from paceui.fit.loss import ACELoss, LossConfig
from tests.fitdata import random_problem

POT = {"elements": ["Al", "Ni"],
       "embeddings": {"ALL": {"npot": "FinnisSinclairShiftedScaled", "fs_parameters": [1, 1], "ndensity": 1}},
       "bonds": {"ALL": {"radbase": "ChebExpCos", "radparameters": [5.25], "rcut": 4.5, "dcut": 0.01,
                         "r_in": 1.2, "delta_in": 0.3}},
       "functions": {"ALL": {"nradmax_by_orders": [4, 2, 1], "lmax_by_orders": [0, 1, 1]}}}


def test_linear_solution_is_the_minimum():
    pot = build_potential(POT)
    assert is_linear(pot)
    data = random_problem(pot, n_struct=4, n_atoms=10, seed=2, symbols=["Al", "Ni"])
    cfg = LossConfig(kappa=0.4, L2_coeffs=1e-6)
    res = linear_fit(pot, data, cfg)
    loss = ACELoss(res.potential, cfg)
    th = loss.pmap.get(res.potential)
    r = loss(th, data)
    fm = loss.pmap.func_mask()
    assert np.abs(r.grad[fm]).max() < 1e-8 * max(1.0, np.abs(r.grad).max())  # stationary in c
    start = loss.pmap.get(pot)
    opt = so.minimize(lambda x: (lambda q: (q.loss, q.grad[fm]))(loss(np.where(fm, 0, start) + _put(fm, x), data)),
                      np.zeros(fm.sum()), jac=True, method="BFGS", options={"maxiter": 500, "gtol": 1e-12})
    assert res.loss <= opt.fun * (1 + 1e-9)
    assert res.loss == pytest.approx(r.loss, rel=1e-12)


def _put(mask, x):
    out = np.zeros(mask.size)
    out[mask] = x
    return out


def test_non_linear_embeddings_are_refused():
    cfg = dict(POT, embeddings={"ALL": {"npot": "FinnisSinclairShiftedScaled", "fs_parameters": [1, 1, 1, 0.5],
                                        "ndensity": 2}})
    pot = build_potential(cfg)
    with pytest.raises(ValueError, match="linear embeddings"):
        linear_fit(pot, random_problem(pot, seed=1, symbols=["Al", "Ni"]), LossConfig(kappa=0.3))
