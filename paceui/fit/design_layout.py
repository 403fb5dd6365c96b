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

    sp_col: np.ndarray    # int64[S+1]: col_ids[sp_col[μ]:sp_col[μ+1]] are the columns of central species μ
    col_ids: np.ndarray   # int64[P]
    cm_ptr: np.ndarray    # int64[n_ct+1]: CSR rows of M (entry → columns)
    cm_col: np.ndarray    # int64[nnz] column of each nonzero
    cm_val: np.ndarray    # float64[nnz] M_ec (density weight included)
    cm_slot: np.ndarray   # int64[nnz, rmax] slot of factor t of a combination's nonzero (−1 for rank-1 rows)
    ent_ptr: np.ndarray   # int64[P, S+1]: slots of column c in neighbour block μ: ent_ptr[c, μ]:ent_ptr[c, μ+1]
    ent_loc: np.ndarray   # int64[n_slot] A index of the slot within its species block (n·n_lm + lm)
    r1_ptr: np.ndarray    # int64[P+1]: rank-1 terms of column c
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
    ent_ptr = np.zeros((P, S + 1), dtype=np.int64)
    ent_loc: list[int] = []
    slot_of: dict[tuple[int, int], int] = {}
    for c in range(P):
        ents = sorted(touched[c])
        blocks = np.array([a // blk for a in ents], dtype=np.int64)
        base = len(ent_loc)
        ent_ptr[c] = base + np.searchsorted(blocks, np.arange(S + 1))
        for a in ents:
            slot_of[(c, a)] = len(ent_loc)
            ent_loc.append(a % blk)
    rmax = max(int(m.rmax), 1)
    cm_slot = np.full((cmap.nnz, rmax), -1, dtype=np.int64)
    for e in range(n_r1, cmap.shape[0]):
        cc = e - n_r1
        for q in range(cmap.indptr[e], cmap.indptr[e + 1]):
            c = int(cmap.indices[q])
            for t in range(int(m.c_rank[cc])):
                cm_slot[q, t] = slot_of[(c, int(m.c_aidx[cc, t]))]
    order = np.argsort(col_sp, kind="stable")
    sp_col = np.searchsorted(col_sp[order], np.arange(S + 1)).astype(np.int64)
    r1_ptr = np.zeros(P + 1, dtype=np.int64)
    r1_ptr[1:] = np.cumsum([len(t) for t in r1_terms])
    r1_a = np.array([a for t in r1_terms for a, _ in t], dtype=np.int64)
    r1_v = np.array([v for t in r1_terms for _, v in t], dtype=np.float64)
    lay = DesignLayout(sp_col, order.astype(np.int64), cmap.indptr.astype(np.int64), cmap.indices.astype(np.int64),
                       cmap.data.astype(np.float64), cm_slot, ent_ptr, np.array(ent_loc, dtype=np.int64), r1_ptr,
                       r1_a, r1_v)
    return lay, cols
