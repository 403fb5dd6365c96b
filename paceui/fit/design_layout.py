"""The column layout of the linear design: which C-tilde entries and A-basis entries each trained function
coefficient (θ column) owns, as the flat arrays that :func:`paceui.fit.design_kernel.design_structures` reads.

Column c's basis value is X_c(i) = Σ_e M_ec B_e(i) over the C-tilde entries e (rank-1 radial sums, then
m-combinations), M the sparse map from entries to function coefficients with the density weights w_d
(c̃ = Mᵀ C, docs/loss.md (L4)). The A-basis entries that the combinations of column c multiply are its
"slots": the kernel accumulates one complex weight per slot and atom, and a pair derivative of the column
is a dot product over its slots in the neighbour's species block.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from paceui.fit.loss import ACELoss


class DesignLayout(NamedTuple):
    """Flat arrays of the column layout (P columns, S species, n_ct = n_r1 + n_comb C-tilde entries)."""

    sp_col: np.ndarray    # int64[S+1]: col_ids[sp_col[μ]:sp_col[μ+1]]: product columns of central species μ
    col_ids: np.ndarray   # int64[n_prod]
    sp_r1c: np.ndarray    # int64[S+1]: r1_cols[sp_r1c[μ]:sp_r1c[μ+1]]: rank-1 columns of central species μ
    r1_cols: np.ndarray   # int64[n_rank1]
    cm_ptr: np.ndarray    # int64[n_ct+1]: CSR rows of M (entry → columns)
    cm_col: np.ndarray    # int64[nnz] column of each nonzero
    cm_val: np.ndarray    # float64[nnz] M_ec (density weight included)
    cm_slot: np.ndarray   # int64[nnz, rmax] slot of factor t of a combination's nonzero (−1 for rank-1 rows)
    sl_ptr: np.ndarray    # int64[S, S+1]: slots of the product columns of μi in neighbour block μ
    sl_col: np.ndarray    # int64[n_slot] the slot's column, as its index in col_ids[sp_col[μi]:]
    ent_loc: np.ndarray   # int64[n_slot] A index of the slot within its species block (n·n_lm + lm)
    r1_ptr: np.ndarray    # int64[P+1]: rank-1 terms of column c (P = number of θ columns)
    r1_a: np.ndarray      # int64[n_r1 terms] rank-1 index μ·kmax + k
    r1_v: np.ndarray      # float64[n_r1 terms] its M_ec


def column_map(loss: ACELoss) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """M as a sparse [n_ct, P] matrix (density weights included), the θ index of each column and the central
    species of each C-tilde entry."""
    m = loss.model.compiled
    n_species = len(loss.model.elements)
    pm = loss.pmap
    n_r1, n_comb = m.r1_ct.shape[0], m.c_ct.shape[0]
    tidx = np.concatenate([loss.r1_tidx, loss.comb_tidx])
    species = np.empty(n_r1 + n_comb, dtype=np.int64)
    for mu in range(n_species):
        species[m.sp_r1[mu]:m.sp_r1[mu + 1]] = mu
        lo, hi = m.fn_c0[m.sp_fn[mu]], m.fn_c0[m.sp_fn[mu + 1]]
        species[n_r1 + lo:n_r1 + hi] = mu
    cols = np.flatnonzero(pm.func_mask())
    pos = {int(c): k for k, c in enumerate(cols)}
    rows, cc, vals = [], [], []
    Mt = sp.csr_matrix(sp.csc_matrix(loss.tpl.matrix).T)  # [n_tpl, n_functions]
    for e, t in enumerate(tidx):
        lo, hi = Mt.indptr[t], Mt.indptr[t + 1]
        for fi, v in zip(Mt.indices[lo:hi], Mt.data[lo:hi]):
            sl, nd = pm.func_slices[fi], pm.func_nd[fi]
            for d in range(nd):
                rows.append(e)
                cc.append(pos[sl.start + d])
                vals.append(v * m.e_par[species[e], 2 * d])
    cmap = sp.csr_matrix((vals, (rows, cc)), shape=(n_r1 + n_comb, len(cols)))
    cmap.sum_duplicates()
    cmap.sort_indices()
    return cmap, cols, species


def design_layout(loss: ACELoss) -> tuple[DesignLayout, np.ndarray]:
    """The layout of ``loss``'s potential and the θ index of each column."""
    cmap, cols, species = column_map(loss)
    m = loss.model.compiled
    S = len(loss.model.elements)
    P = len(cols)
    n_r1 = m.r1_ct.shape[0]
    blk = m.nmax * ((m.lmax + 1) * (m.lmax + 2) // 2)
    col_sp = np.full(P, -1, dtype=np.int64)
    touched: list[set[int]] = [set() for _ in range(P)]
    r1_terms: list[list[tuple[int, float]]] = [[] for _ in range(P)]
    for e in range(cmap.shape[0]):
        for q in range(cmap.indptr[e], cmap.indptr[e + 1]):
            c = int(cmap.indices[q])
            col_sp[c] = species[e]
            if e < n_r1:
                r1_terms[c].append((int(m.r1_aidx[e]), float(cmap.data[q])))
            else:
                cc = e - n_r1
                touched[c].update(int(a) for a in m.c_aidx[cc, :m.c_rank[cc]])
    is_r1 = np.array([bool(t) for t in r1_terms], dtype=bool)
    if any(is_r1[c] and touched[c] for c in range(P)):
        raise ValueError("a design column mixes rank-1 and product entries")

    def by_species(sel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ids = np.flatnonzero(sel & (col_sp >= 0))
        ids = ids[np.argsort(col_sp[ids], kind="stable")]
        return np.searchsorted(col_sp[ids], np.arange(S + 1)).astype(np.int64), ids.astype(np.int64)

    sp_col, col_ids = by_species(~is_r1)
    sp_r1c, r1_cols = by_species(is_r1)
    # slots: per central species μi, per neighbour block μ, per product column (local index u), its A entries
    sl_ptr = np.zeros((S, S + 1), dtype=np.int64)
    sl_col: list[int] = []
    ent_loc: list[int] = []
    slot_of: dict[tuple[int, int], int] = {}
    for mu_i in range(S):
        ids = col_ids[sp_col[mu_i]:sp_col[mu_i + 1]]
        for mu in range(S + 1):
            sl_ptr[mu_i, mu] = len(ent_loc)
            if mu == S:
                break
            for u, c in enumerate(ids):
                for a in sorted(a for a in touched[c] if a // blk == mu):
                    slot_of[(int(c), a)] = len(ent_loc)
                    sl_col.append(u)
                    ent_loc.append(a % blk)
    rmax = max(int(m.rmax), 1)
    cm_slot = np.full((cmap.nnz, rmax), -1, dtype=np.int64)
    for e in range(n_r1, cmap.shape[0]):
        cc = e - n_r1
        for q in range(cmap.indptr[e], cmap.indptr[e + 1]):
            c = int(cmap.indices[q])
            for t in range(int(m.c_rank[cc])):
                cm_slot[q, t] = slot_of[(c, int(m.c_aidx[cc, t]))]
    r1_ptr = np.zeros(P + 1, dtype=np.int64)
    r1_ptr[1:] = np.cumsum([len(t) for t in r1_terms])
    r1_a = np.array([a for t in r1_terms for a, _ in t], dtype=np.int64)
    r1_v = np.array([v for t in r1_terms for _, v in t], dtype=np.float64)
    lay = DesignLayout(sp_col, col_ids, sp_r1c, r1_cols, cmap.indptr.astype(np.int64), cmap.indices.astype(np.int64),
                       cmap.data.astype(np.float64), cm_slot, sl_ptr, np.array(sl_col, dtype=np.int64),
                       np.array(ent_loc, dtype=np.int64), r1_ptr, r1_a, r1_v)
    return lay, cols
