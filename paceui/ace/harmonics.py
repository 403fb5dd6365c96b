"""Complex spherical harmonics Ŷ_lm = √(4π) Y_l^m (Condon-Shortley phase) and their gradients.

Only m >= 0 is stored (index l(l+1)/2 + m); Ŷ_{l,-m} = (-1)^m conj(Ŷ_lm). Ŷ_00 = 1, Ŷ_10 = √3 z,
Ŷ_11 = -√(3/2)(x + iy) for a unit vector (x, y, z) (docs/model.md (M13)).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

_JIT = dict(nogil=True, cache=True)
LMAX_TABLE = 40
"""Largest l of the precomputed recursion coefficients (ACE bases use l <= ~10)."""


def _recursion_tables(lmax: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Coefficients of the normalised Legendre recursion, so that no square root is taken per pair."""
    diag, sub = np.zeros(lmax + 2), np.zeros(lmax + 2)
    a, b = np.zeros((lmax + 2, lmax + 2)), np.zeros((lmax + 2, lmax + 2))
    for m in range(lmax + 2):
        diag[m] = -math.sqrt((2.0 * m + 1.0) / (2.0 * m)) if m else 1.0
        sub[m] = math.sqrt(2.0 * m + 3.0)
        for l in range(m + 2, lmax + 2):
            a[l, m] = math.sqrt((4.0 * l * l - 1.0) / (l * l - m * m))
            b[l, m] = math.sqrt(((l - 1.0) ** 2 - m * m) / (4.0 * (l - 1.0) ** 2 - 1.0))
    return diag, sub, a, b


_DIAG, _SUB, _A, _B = _recursion_tables(LMAX_TABLE)


@nb.njit(**_JIT)
def n_lm(lmax: int) -> int:
    """Number of stored harmonics (l, m >= 0) up to lmax: the length of one pair's Ŷ (docs/model.md (M13))."""
    return (lmax + 1) * (lmax + 2) // 2


@nb.njit(**_JIT)
def lm_index(l: int, m: int) -> int:
    return l * (l + 1) // 2 + m


# docs/model.md (M13)
@nb.njit(inline="always", **_JIT)
def legendre_with_grad(uz: float, lmax: int, P: np.ndarray, dP: np.ndarray) -> None:
    """The normalised associated Legendre functions P_lm(u_z) and dP_lm/du_z (m >= 0) into P, dP (n_lm(lmax)),
    by the recursion tables; shared by :func:`ylm_with_grad` and :func:`ylm_real_row`."""
    for m in range(lmax + 1):
        i_mm = (m * (m + 1)) // 2 + m
        if m == 0:
            P[i_mm] = 1.0
        else:
            P[i_mm] = _DIAG[m] * P[((m - 1) * m) // 2 + m - 1]
        dP[i_mm] = 0.0
        if m + 1 <= lmax:
            i1 = ((m + 1) * (m + 2)) // 2 + m
            c = _SUB[m]
            P[i1] = c * uz * P[i_mm]
            dP[i1] = c * P[i_mm]
        for l in range(m + 2, lmax + 1):
            a = _A[l, m]
            b = _B[l, m]
            i = (l * (l + 1)) // 2 + m
            i1 = ((l - 1) * l) // 2 + m
            i2 = ((l - 2) * (l - 1)) // 2 + m
            P[i] = a * (uz * P[i1] - b * P[i2])
            dP[i] = a * (P[i1] + uz * dP[i1] - b * dP[i2])


# docs/model.md (M13)
@nb.njit(**_JIT)
def ylm_with_grad(ux: float, uy: float, uz: float, r: float, lmax: int, P: np.ndarray, dP: np.ndarray,
                  Y: np.ndarray, dY: np.ndarray) -> None:
    """Ŷ_lm(r̂) for m >= 0 into Y, and ∂Ŷ_lm/∂r (vector, 1/Å) into dY[:, 0:3].

    (ux, uy, uz) is the unit vector, r the length; P, dP are real scratch arrays of n_lm(lmax).
    Ŷ_lm = p̄_lm(z) (x + iy)^m with p̄ a polynomial in z, from the stable normalised recursion.
    """
    if lmax > LMAX_TABLE:
        raise ValueError("lmax above paceui.ace.harmonics.LMAX_TABLE")
    # normalised associated Legendre polynomials divided by sin^m θ
    legendre_with_grad(uz, lmax, P, dP)
    # (x + iy)^m and the gradient on the unit sphere, projected: ∇_r = (I - u uᵀ)/r ∇_u
    ir = 1.0 / r
    w = complex(ux, uy)
    wm = complex(1.0, 0.0)
    wm1 = complex(0.0, 0.0)  # (x+iy)^(m-1)
    for m in range(lmax + 1):
        for l in range(m, lmax + 1):
            i = lm_index(l, m)
            p = P[i]
            Y[i] = p * wm
            gx = p * m * wm1
            gy = p * m * wm1 * 1j
            gz = dP[i] * wm
            proj = ux * gx + uy * gy + uz * gz
            dY[i, 0] = (gx - ux * proj) * ir
            dY[i, 1] = (gy - uy * proj) * ir
            dY[i, 2] = (gz - uz * proj) * ir
        wm1 = wm
        wm = wm * w


# docs/model.md (M13)
@nb.njit(nogil=True, cache=True, inline="always")
def ylm_real_row(ux: float, uy: float, uz: float, ir: float, lmax: int, P: np.ndarray, dP: np.ndarray, Yr: np.ndarray,
             Yi: np.ndarray, dYr: np.ndarray, dYi: np.ndarray, q: int) -> None:
    """:func:`ylm_with_grad` in real arithmetic into row q: Ŷ_lm = Yr[q] + i Yi[q] (m >= 0), ∂Ŷ_lm/∂r_a =
    dYr[q, a] + i dYi[q, a] (1/Å), indexed in place (no array views: their reference counts cost more than
    the math in a pair loop; a caller of one pair passes arrays of one row and q = 0).

    ``ir`` is 1/r (1/Å); P, dP are scratch arrays of n_lm(lmax); Yr, Yi have shape (rows, n_lm(lmax)), dYr, dYi
    (rows, 3, n_lm(lmax)). lmax must not exceed :data:`LMAX_TABLE` (the callers check it once).
    """
    legendre_with_grad(uz, lmax, P, dP)
    # (x + iy)^m = cr + i ci and m (x + iy)^(m-1) = er + i ei; gradient projected: ∇_r = (I − u uᵀ)/r ∇_u
    cr, ci = 1.0, 0.0
    er, ei = 0.0, 0.0
    for m in range(lmax + 1):
        for l in range(m, lmax + 1):
            i = (l * (l + 1)) // 2 + m
            p = P[i]
            g = dP[i]
            Yr[q, i] = p * cr
            Yi[q, i] = p * ci
            gxr, gxi = p * er, p * ei
            gyr, gyi = -p * ei, p * er
            gzr, gzi = g * cr, g * ci
            pr = ux * gxr + uy * gyr + uz * gzr
            pi = ux * gxi + uy * gyi + uz * gzi
            dYr[q, 0, i] = (gxr - ux * pr) * ir
            dYi[q, 0, i] = (gxi - ux * pi) * ir
            dYr[q, 1, i] = (gyr - uy * pr) * ir
            dYi[q, 1, i] = (gyi - uy * pi) * ir
            dYr[q, 2, i] = (gzr - uz * pr) * ir
            dYi[q, 2, i] = (gzi - uz * pi) * ir
        er, ei = (m + 1) * cr, (m + 1) * ci
        cr, ci = cr * ux - ci * uy, cr * uy + ci * ux
