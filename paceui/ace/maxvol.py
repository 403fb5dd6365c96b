"""MaxVol: the n rows of a tall N×n matrix whose square submatrix has locally maximal |det|.

Goreinov et al., "How to find a good submatrix" (2010): start from the pivot rows of an LU
factorisation with partial pivoting, then swap in row i for active row j while the largest
coefficient |C_ij| of C = A A_act⁻¹ exceeds ``tol`` (each swap grows |det A_act| by that factor).
C is updated by a rank-1 correction per swap, so a swap costs O(N n).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numba as nb
import numpy as np
from scipy.linalg import lapack

from paceui.errors import ActiveSetError

ZERO_COLUMN_EPS = 1e-16
"""Diagonal entry given to a column that is zero over the whole data, so A_act stays invertible."""


class MaxVolError(ActiveSetError):
    """The matrix cannot give an active set (too few rows, singular)."""


@dataclass(frozen=True)
class MaxVolResult:
    """Chosen rows (into A), the swaps done, the final max |C| and the active submatrix's inverse
    (``inverse``, computed on first use: callers that only need the rows skip an n×n inversion)."""

    rows: np.ndarray
    n_iters: int
    max_coef: float
    active_scaled: np.ndarray = field(repr=False)
    """The active rows of the non-zero columns, each column divided by its ``col_scale`` (m×m)."""
    col_scale: np.ndarray = field(repr=False)
    """Max |A| of each non-zero column (m)."""
    nonzero: np.ndarray = field(repr=False)
    """Indices of the non-zero columns (m of n)."""

    @cached_property
    def inverse(self) -> np.ndarray:
        """A_act⁻¹ (n×n) of the unscaled active submatrix; zero columns get 1/ε on their ε rows."""
        inv_s = _inv(self.active_scaled) / self.col_scale[:, None]
        n, m = len(self.rows), len(self.nonzero)
        if m == n:
            return inv_s
        # zero columns: their active rows are ε e_j (row index -1: no data row); A_act is block diagonal
        zero = np.setdiff1d(np.arange(n), self.nonzero)
        inverse = np.zeros((n, n))
        inverse[np.ix_(self.nonzero, np.arange(m))] = inv_s
        inverse[zero, m + np.arange(len(zero))] = 1.0 / ZERO_COLUMN_EPS
        return inverse


def lu_pivot_rows(A: np.ndarray) -> np.ndarray:
    """The first n pivot rows of the LU factorisation (partial pivoting) of the N×n matrix A."""
    return _lu_pivot_rows_inplace(np.array(A, dtype=float, order="F"))


def _lu_pivot_rows_inplace(AF: np.ndarray) -> np.ndarray:
    """:func:`lu_pivot_rows` of a Fortran-ordered float64 matrix, which it overwrites (no copy)."""
    N, n = AF.shape
    _, piv, _ = lapack.dgetrf(AF, overwrite_a=1)
    perm = np.arange(N)
    for k, p in enumerate(piv[:n]):
        perm[k], perm[p] = perm[p], perm[k]
    return perm[:n].copy()


@nb.njit(nogil=True, cache=True, parallel=True)
def _scaled_copies(A: np.ndarray, cols: np.ndarray, scale: np.ndarray, As: np.ndarray, AsT: np.ndarray) -> None:
    """As[r, k] = AsT[k, r] = A[r, cols[k]] / scale[k] in one pass (AsT.T is As in Fortran order, for LAPACK)."""
    N = A.shape[0]
    m = len(cols)
    nblk = (N + 63) // 64
    for b in nb.prange(nblk):
        for r in range(b * 64, min(N, b * 64 + 64)):
            for k in range(m):
                x = A[r, cols[k]] / scale[k]
                As[r, k] = x
                AsT[k, r] = x


@nb.njit(nogil=True, cache=True)
def _argmax_abs(C: np.ndarray) -> tuple[int, int, float]:
    bi, bj, bv = 0, 0, -1.0
    N, n = C.shape
    for i in range(N):
        for j in range(n):
            v = abs(C[i, j])
            if v > bv:
                bi, bj, bv = i, j, v
    return bi, bj, bv


@nb.njit(nogil=True, cache=True, fastmath=True)
def _update_rows(C: np.ndarray, col: np.ndarray, v: np.ndarray, r0: int, r1: int) -> tuple[int, int, float]:
    """C[r] −= col[r]·v for rows r0..r1; the position and value of the largest |C| among them."""
    n = C.shape[1]
    bi, bj, bv = r0, 0, -1.0
    for r in range(r0, r1):
        cr = col[r]
        row = C[r]
        m = 0.0
        for q in range(n):
            x = row[q] - cr * v[q]
            row[q] = x
            m = max(m, abs(x))
        if m > bv:
            bv = m
            bi = r
    row = C[bi]
    for q in range(n):
        if abs(row[q]) == bv:
            bj = q
            break
    return bi, bj, bv


@nb.njit(nogil=True, cache=True, parallel=True)
def _swaps(C: np.ndarray, rows: np.ndarray, tol: float, max_iters: int) -> tuple[int, float]:
    """Swap rows in place while max |C| > tol; C ← C − C[:, j] (C[i] − e_j)ᵀ / C_ij per swap."""
    N, n = C.shape
    col = np.empty(N)
    v = np.empty(n)
    nblk = max(1, min(64, N // 256))
    bis = np.empty(nblk, np.int64)
    bjs = np.empty(nblk, np.int64)
    bvs = np.empty(nblk)
    it = 0
    i, j, cmax = _argmax_abs(C)
    while cmax > tol and it < max_iters:
        piv = C[i, j]
        for q in range(n):
            v[q] = C[i, q]
        v[j] -= 1.0
        for r in range(N):
            col[r] = C[r, j] / piv
        for b in nb.prange(nblk):
            bis[b], bjs[b], bvs[b] = _update_rows(C, col, v, b * N // nblk, (b + 1) * N // nblk)
        k = int(np.argmax(bvs))
        rows[j] = i
        it += 1
        i, j, cmax = bis[k], bjs[k], bvs[k]
    return it, cmax


def _inv(M: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.inv(M)
    except np.linalg.LinAlgError:
        return np.linalg.pinv(M)


def maxvol(A: np.ndarray, tol: float = 1.01, max_iters: int = 300, what: str = "matrix") -> MaxVolResult:
    """MaxVol on A (N×n, N ≥ n); columns zero over all rows get ε on the active set's diagonal.

    Columns are scaled to unit max (γ does not change) to keep A_act well conditioned; the swaps use
    the global argmax of |C| (kept by rank-1 updates, parallel over rows). ``max_coef`` is the final
    max |C| of the updated C; recomputed from the final A_act it may be larger by the round-off of an
    ill-conditioned A_act (cond ~1e16 is common: the radial functions of bulk data are nearly dependent).
    """
    A = np.ascontiguousarray(A, dtype=float)
    N, n = A.shape
    if N < n:
        raise MaxVolError(f"{what}: {N} rows for {n} functions: under-determined (needs at least {n} rows)")
    if tol < 1.0:
        raise MaxVolError(f"{what}: MaxVol tolerance {tol} must be >= 1")
    # max |A| per column without an N×n |A| temporary (same values)
    scale = np.maximum(A.max(axis=0), -A.min(axis=0)) if N else np.zeros(n)
    nz = np.flatnonzero(scale > 0.0)
    m = len(nz)
    # A / scale over the non-zero columns, C-ordered for the swaps and a Fortran-ordered copy for the LU
    As = np.empty((N, m))
    AsT = np.empty((m, N))
    _scaled_copies(A, nz.astype(np.int64), np.ascontiguousarray(scale[nz]), As, AsT)
    rows = _lu_pivot_rows_inplace(AsT.T).astype(np.int64) if m else np.zeros(0, np.int64)
    del AsT
    it, cmax = 0, 0.0
    if m:
        inv = _inv(As[rows])
        if not np.all(np.isfinite(inv)):
            raise MaxVolError(f"{what}: the active submatrix is singular (the data spans fewer than {m} "
                              f"independent directions)")
        it, cmax = _swaps(As @ inv, rows, float(tol), int(max_iters))
    full_rows = rows if m == n else np.concatenate([rows, -np.ones(n - m, np.int64)])  # -1: the ε rows
    return MaxVolResult(rows=full_rows, n_iters=int(it), max_coef=float(cmax), active_scaled=As[rows],
                        col_scale=scale[nz], nonzero=nz)


def gamma_of(rows: np.ndarray, inverse: np.ndarray) -> np.ndarray:
    """γ = max_k |(b · A_act⁻¹)_k| of each row b."""
    if rows.shape[0] == 0:
        return np.zeros(0)
    p = rows @ inverse
    return np.abs(p, out=p).max(axis=1)  # in place: no second N×n temporary
