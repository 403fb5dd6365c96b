"""The radial contraction of the A-basis: radial coefficients crad times radial-basis quantities.

One helper for the kernels that build R_nl, the A-basis or their derivatives from the radial basis g_k:
the spline tables (:func:`paceui.ace.kernels.build_spline_table`) and the linear design
(:func:`paceui.fit.design_kernel.design_structures`). Inlined into the callers (no call
overhead). The fit's two passes sum the same terms in the same order on layouts of their own (k-outer rows
in :func:`paceui.ace.kernels.radial_rows`, k-contiguous accumulator rows in
:func:`paceui.fit.kernels.grad_chunk`).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from paceui.ace.harmonics import lm_index


@nb.njit(nogil=True, cache=True, inline="always")
def crad_dot(crad: np.ndarray, mu_i: int, mu: int, n: int, l: int, nbase: int, x: np.ndarray, x0: int,
             stride: int) -> float:
    """docs/model.md (M11), docs/loss.md (L5): Σ_k crad[μi, μ, n, l, k] x[x0 + k·stride], k = 0 … nbase−1 (≥ 1);
    complex for a complex x (G, Ġ), float for a real one (g_k).

    x = g_k (stride 1) gives R_nl, x = dg_k/dr gives dR_nl/dr, x = G[μ, :, l, m] (stride n_lm) gives
    A[μ, n, l, m]; the terms are added in increasing k.
    """
    s = crad[mu_i, mu, n, l, 0] * x[x0]
    for k in range(1, nbase):
        s += crad[mu_i, mu, n, l, k] * x[x0 + k * stride]
    return s


@nb.njit(nogil=True, cache=True, inline="always")
def crad_dot2(crad: np.ndarray, mu_i: int, mu: int, n: int, l: int, nbase: int, g: np.ndarray,
              dg: np.ndarray) -> tuple[float, float]:
    """(R_nl, dR_nl/dr) = Σ_k crad[μi, μ, n, l, k] (g_k, dg_k/dr) in one pass over the coefficients (the
    terms added in increasing k, as :func:`crad_dot`; each coefficient is read once)."""
    c = crad[mu_i, mu, n, l, 0]
    s, d = c * g[0], c * dg[0]
    for k in range(1, nbase):
        c = crad[mu_i, mu, n, l, k]
        s += c * g[k]
        d += c * dg[k]
    return s, d


@nb.njit(nogil=True, cache=True, inline="always")
def contract_block(crad: np.ndarray, mu_i: int, mu: int, nrad: int, lb: int, nbase: int, G: np.ndarray, gb: int,
                   A: np.ndarray, ab: int, nlm: int) -> None:
    """docs/loss.md (L5) for the neighbour species μ: A[ab + n·nlm + lm] = Σ_k crad[μi, μ, n, l, k] G[gb + k·nlm + lm]
    for n < nrad, l ≤ lb, 0 ≤ m ≤ l (G[μ, k, l, m] and A[μ, n, l, m] blocks of nlm = n_lm(lmax) harmonics).
    The entries for n ≥ nrad or l > lb are left as they are."""
    for n in range(nrad):
        for l in range(lb + 1):
            for m in range(l + 1):
                lm = lm_index(l, m)
                A[ab + n * nlm + lm] = crad_dot(crad, mu_i, mu, n, l, nbase, G, gb + lm, nlm)
