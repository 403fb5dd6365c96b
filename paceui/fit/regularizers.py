"""Radial smoothness (w0_rad, w1_rad, w2_rad) and orthogonality (w_orth) terms of the loss.

S_k = mean over ordered bonds of Σ_grid d² Σ_nl |∂ᵏR_nl/∂rᵏ(d)| Δd / rc_bond², on a fixed grid of 100
points up to the largest cutoff (pacemaker/TensorPotential's definition, docs/loss.md (L2)).
D_orth = Σ_bonds [mean((W_l W_lᵀ − I)²) + mean((W_lᵀ W_l − I)²)], W_l = crad[:, l, :].
Both depend on crad only and are cheap numpy with analytic gradients.
"""

from __future__ import annotations

import numpy as np

from paceui.ace.potential import ACEPotential
from paceui.ace.radial import INNER_CODES, RADBASE_CODES, radial_basis


def _basis_on_grid(bond, inner: int, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """g_k, g_k' and g_k'' (central difference of the analytic g_k') on the grid, [grid, k]."""
    k = bond.nradbase
    g0, g1, g2 = np.zeros((len(d), k)), np.zeros((len(d), k)), np.zeros((len(d), k))
    g, dg, gp, dgp, gm, dgm = (np.zeros(k + 2) for _ in range(6))
    T, dT = np.zeros(k + 2), np.zeros(k + 2)
    lam = bond.radparameters[0] if bond.radparameters else 0.0
    args = (RADBASE_CODES[bond.radbase], lam, bond.rcut, bond.dcut, bond.r_in, bond.delta_in, inner, k)
    h = 1e-5
    for i, r in enumerate(d):
        radial_basis(*args, r, g, dg, T, dT)
        radial_basis(*args, r + h, gp, dgp, T, dT)
        radial_basis(*args, max(r - h, 1e-12), gm, dgm, T, dT)
        g0[i], g1[i] = g[:k], dg[:k]
        g2[i] = (dgp[:k] - dgm[:k]) / (2 * h)
    return g0, g1, g2


class RadialRegularizer:
    """Precomputed grid bases for every ordered bond; evaluates the terms and adds their gradients."""

    def __init__(self, pot: ACEPotential, pmap) -> None:
        bonds = pot.bonds()
        inner = INNER_CODES[pot.inner_cutoff_type]
        rc_max = max((b.rcut for b in bonds.values()), default=1.0)
        d = np.linspace(1e-10, rc_max - 1e-5, 100)
        w = d * d * (d[1] - d[0])
        self.terms = []
        where = {k: (sl, shp) for k, sl, shp in zip(pmap.bond_keys, pmap.bond_slices, pmap.bond_shapes)}
        for (a, b), bond in sorted(bonds.items()):
            sl, shp = where[(min(a, b), max(a, b))]
            if bond.nradbase == 0 or shp[0] == 0:
                continue
            bases = _basis_on_grid(bond, inner, d)
            self.terms.append((sl, shp, [w[:, None] * x / bond.rcut ** 2 for x in bases]))
        self.n_ordered = max(len(self.terms), 1)
        self.orth = [(sl, shp) for sl, shp in zip(pmap.bond_slices, pmap.bond_shapes) if shp[0] > 0]
        self.rank_max = max((f.rank for f in pot.functions()), default=1)

    def __call__(self, theta: np.ndarray, cfg, grad: np.ndarray | None) -> dict[str, float]:
        ws = (cfg.w0_rad, cfg.w1_rad, cfg.w2_rad)
        out = {"smooth_w1": 0.0, "smooth_w2": 0.0, "smooth_w3": 0.0, "smooth_orth": 0.0}
        names = ("smooth_w1", "smooth_w2", "smooth_w3")
        # docs/loss.md (L2)
        for o, wk in enumerate(ws):
            if wk == 0.0:
                continue
            total = 0.0
            for sl, shp, bases in self.terms:
                crad = theta[sl].reshape(shp)  # [n, l, k]
                R = np.einsum("gk,nlk->gnl", bases[o], crad)
                total += float(np.abs(R).sum())
                if grad is not None:
                    gr = np.einsum("gk,gnl->nlk", bases[o], np.sign(R))
                    grad[sl] += wk / self.n_ordered * gr.ravel()
            out[names[o]] = wk * total / self.n_ordered
        # docs/loss.md (L3)
        if cfg.w_orth and self.rank_max > 1:
            total = 0.0
            for sl, shp in self.orth:
                W = theta[sl].reshape(shp)  # [n, l, k]
                n, l1, k = shp
                gW = np.zeros(shp)
                for l in range(l1):
                    Wl = W[:, l, :]
                    e1 = Wl @ Wl.T - np.eye(n)
                    e2 = Wl.T @ Wl - np.eye(k)
                    total += float((e1 ** 2).sum()) / (l1 * n * n) + float((e2 ** 2).sum()) / (l1 * k * k)
                    gW[:, l, :] = 4.0 * e1 @ Wl / (l1 * n * n) + 4.0 * Wl @ e2 / (l1 * k * k)
                if grad is not None:
                    grad[sl] += cfg.w_orth * gW.ravel()
            out["smooth_orth"] = cfg.w_orth * total
        return out
