"""Effective energies for energy-based weighting (eV/atom): distance to the lower convex hull
of (concentrations[:-1], formation energy per atom), or energy above the minimum. SciPy (linprog, Qhull) is
imported on first use: reading data does not pay for scipy.optimize."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["concentrations", "lower_hull_energy", "effective_energies"]

_TOL = 1e-10


def concentrations(df: pd.DataFrame, elements: Sequence[str]) -> np.ndarray:
    """float64[S, n_el] atomic fractions of ``elements`` in every structure."""
    idx = {el: k for k, el in enumerate(elements)}
    out = np.zeros((len(df), len(elements)))
    for s, at in enumerate(df["ase_atoms"]):
        for sym in at.get_chemical_symbols():
            out[s, idx[sym]] += 1.0
        out[s] /= max(len(at), 1)
    return out


def _lp_lower_hull(x_ref: np.ndarray, e_ref: np.ndarray, x: np.ndarray) -> float:
    """min Σλ e over convex combinations of reference compositions equal to ``x`` (nan if none)."""
    from scipy.optimize import linprog

    n = len(e_ref)
    a_eq = np.vstack([x_ref.T, np.ones((1, n))])
    b_eq = np.concatenate([x, [1.0]])
    res = linprog(e_ref, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
    return float(res.fun) if res.status == 0 else float("nan")


def _qhull_lower(x_ref: np.ndarray, e_ref: np.ndarray, x: np.ndarray) -> np.ndarray | None:
    """Lower-hull energies at ``x`` from scipy's ConvexHull; None if Qhull cannot build the hull."""
    from scipy.spatial import ConvexHull, QhullError

    try:
        hull = ConvexHull(np.column_stack([x_ref, e_ref]))
    except (QhullError, ValueError):
        return None
    eq = hull.equations  # n·p + d <= 0 inside; last normal component = energy direction
    lower = eq[eq[:, -2] < -1e-12]
    if lower.size == 0:
        return None
    planes = -(x @ lower[:, :-2].T + lower[:, -1]) / lower[:, -2]
    return planes.max(axis=1)


def lower_hull_energy(x_ref: np.ndarray, e_ref: np.ndarray, x: np.ndarray,
                         inside_only: bool = False) -> np.ndarray:
    """Energy (eV/atom) of the lower convex hull of reference points (x_ref, e_ref) at compositions ``x``.

    Only the lowest energy per distinct composition matters.  Falls back to a linear program per
    composition when Qhull fails (degenerate compositions); nan where ``x`` lies outside the
    reference compositions (checked when ``inside_only``).
    """
    comps, inv = np.unique(np.round(x_ref, 12), axis=0, return_inverse=True)
    e_min = np.full(len(comps), np.inf)
    np.minimum.at(e_min, inv.reshape(-1), e_ref)
    qcomps, qinv = np.unique(np.round(x, 12), axis=0, return_inverse=True)
    if len(comps) == 1:
        same = np.all(np.abs(qcomps - comps[0]) < 1e-9, axis=1)
        vals = np.where(same, e_min[0], np.nan)
    else:
        qh = _qhull_lower(comps, e_min, qcomps) if len(comps) > comps.shape[1] else None
        if qh is None or inside_only:
            lp = np.array([_lp_lower_hull(comps, e_min, q) for q in qcomps])
            vals = lp if qh is None else np.where(np.isnan(lp), np.nan, qh)
        else:
            vals = qh
    return vals[qinv.reshape(-1)]


def effective_energies(df: pd.DataFrame, mode: str, ref: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """E_eff (eV/atom, >= 0) of every row and extra columns; ``ref`` marks the reference rows.

    ``cohesive``: E/atom − min over reference rows.  ``convex_hull``: formation energy per atom
    (relative to the lowest pure-element structures) minus the lower hull of the reference rows;
    rows outside the reference compositions use E_form − min E_form(reference).
    """
    epa = df["energy_corrected_per_atom"].to_numpy(dtype=np.float64)
    if mode == "cohesive":
        return np.maximum(epa - epa[ref].min(), 0.0), {}
    elements = sorted({s for at in df["ase_atoms"] for s in at.get_chemical_symbols()})
    c = concentrations(df, elements)
    mu = np.zeros(len(elements))
    for k in range(len(elements)):
        pure = c[:, k] > 1.0 - _TOL
        if pure.any():
            mu[k] = epa[pure].min()
    e_form = epa - c @ mu
    x = c[:, :-1]
    hull = lower_hull_energy(x[ref], e_form[ref], x, inside_only=not bool(ref.all()))
    dist = e_form - hull
    outside = np.isnan(dist)
    if outside.any():
        dist[outside] = e_form[outside] - e_form[ref].min()
    dist = np.maximum(dist, 0.0)
    dist[np.abs(dist) < _TOL] = 0.0
    return dist, {"e_formation_per_atom": e_form, "e_chull_dist_per_atom": dist.copy()}
