"""Clebsch-Gordan coefficients and the generalized couplings of ACE B-functions (docs/model.md (M16), (M17)).

A rank-r function couples its r spherical harmonics along a fixed binary tree: the leaves are paired
level by level, a left-over node is carried to the end of the next level, and the root couples to
L = 0. The intermediate angular momenta LS ("lint" in the YAML) label the tree's inner nodes.

The linearly independent (ls, LS) couplings of a (species, n) pattern (:func:`independent_couplings`)
are computed from the CG coefficients. For a pattern of r factors labelled by their distinct (species, n)
pairs (e.g. (0, 0, 1)), every candidate (ls, LS) is expanded over m-space; each term is keyed by the sorted
multiset of its (label, l, m) factors, which symmetrises over permutations of identical factors. Candidates are
walked in a fixed order (ls lexicographic, then LS) and kept when they raise the rank of the matrix
of their (label, l)-multiset block (SVD, relative tolerance 1e-10); docs/model.md §5.
"""

from __future__ import annotations

import itertools
import json
import os
from functools import lru_cache
from math import factorial, sqrt
from pathlib import Path

import numpy as np

Node = tuple[int, int]  # (kind, index): kind 0 = leaf l_index, kind 1 = intermediate LS[index]


@lru_cache(maxsize=None)
def coupling_tree(rank: int) -> tuple[tuple[Node, Node, Node], ...]:
    """Pairings (a, b) -> c of the coupling tree; the last one couples to the root (c = (2, 0))."""
    if rank < 2:
        return ()
    level: list[Node] = [(0, i) for i in range(rank)]
    steps: list[tuple[Node, Node, Node]] = []
    n_inner = 0
    while len(level) > 2:
        nxt: list[Node] = []
        for a in range(0, len(level) - 1, 2):
            c = (1, n_inner)
            n_inner += 1
            steps.append((level[a], level[a + 1], c))
            nxt.append(c)
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    steps.append((level[0], level[1], (2, 0)))
    return tuple(steps)


def n_intermediate(rank: int) -> int:
    """Number of LS values of a rank (rank - 2 for rank >= 2)."""
    return max(rank - 2, 0)


def _root_partner(rank: int) -> tuple[Node, Node]:
    a, b, _ = coupling_tree(rank)[-1]
    return a, b


def expand_LS(ls: tuple[int, ...], LS: tuple[int, ...]) -> tuple[int, ...]:
    """Complete LS when its redundant last value(s) were omitted (the root needs equal partners)."""
    rank = len(ls)
    need = n_intermediate(rank)
    LS = tuple(LS)
    if len(LS) == need:
        return LS
    if len(LS) == need - 1 and rank > 2:
        a, b = _root_partner(rank)
        # the missing LS is the last intermediate: it equals its root partner
        other = a if b == (1, need - 1) else b
        if other[0] == 0:
            return LS + (ls[other[1]],)
        if other[1] < len(LS):
            return LS + (LS[other[1]],)
    raise ValueError(f"lint has {len(LS)} values, rank {rank} needs {need}")


def validate_LS(ls: tuple[int, ...], LS: tuple[int, ...]) -> None:
    """Raise ValueError unless (ls, LS) is a valid coupling: Σl even, triangles along the tree."""
    if sum(ls) % 2:
        raise ValueError(f"sum of nl {list(ls)} must be even (inversion symmetry)")
    rank = len(ls)
    if rank < 2:
        return
    if len(LS) != n_intermediate(rank):
        raise ValueError(f"lint has {len(LS)} values, rank {rank} needs {n_intermediate(rank)}")

    def val(node: Node) -> int:
        return ls[node[1]] if node[0] == 0 else (LS[node[1]] if node[0] == 1 else 0)

    for a, b, c in coupling_tree(rank):
        la, lb, lc = val(a), val(b), val(c)
        if not abs(la - lb) <= lc <= la + lb:
            raise ValueError(f"coupling nl={list(ls)} lint={list(LS)} violates the triangle rule "
                             f"|{la}-{lb}| <= {lc} <= {la}+{lb}")


@lru_cache(maxsize=None)
def _fact(n: int) -> int:
    return factorial(n)


# docs/model.md (M17)
@lru_cache(maxsize=200000)
def clebsch_gordan(j1: int, m1: int, j2: int, m2: int, J: int, M: int) -> float:
    """<j1 m1 j2 m2 | J M> by the Racah formula (Condon-Shortley phase), integer momenta."""
    if m1 + m2 != M or not abs(j1 - j2) <= J <= j1 + j2:
        return 0.0
    if abs(m1) > j1 or abs(m2) > j2 or abs(M) > J:
        return 0.0
    f = _fact
    pre = (2 * J + 1) * f(J + j1 - j2) * f(J - j1 + j2) * f(j1 + j2 - J) / f(j1 + j2 + J + 1)
    pre *= f(J + M) * f(J - M) * f(j1 - m1) * f(j1 + m1) * f(j2 - m2) * f(j2 + m2)
    kmin = max(0, j2 - J - m1, j1 - J + m2)
    kmax = min(j1 + j2 - J, j1 - m1, j2 + m2)
    s = 0
    for k in range(kmin, kmax + 1):
        den = f(k) * f(j1 + j2 - J - k) * f(j1 - m1 - k) * f(j2 + m2 - k) * f(J - j2 + m1 + k) * f(J - j1 - m2 + k)
        s += (-1) ** k / den
    return sqrt(pre) * s


# docs/model.md (M16)
def generalized_cg(ls: tuple[int, ...], LS: tuple[int, ...], ms: tuple[int, ...]) -> float:
    """Product of CG coefficients along the coupling tree (rank 1: 1)."""
    rank = len(ls)
    if rank == 1:
        return 1.0 if ms[0] == 0 else 0.0
    Ms: list[int] = [0] * n_intermediate(rank)
    val = 1.0
    for a, b, c in coupling_tree(rank):
        la, ma = (ls[a[1]], ms[a[1]]) if a[0] == 0 else (LS[a[1]], Ms[a[1]])
        lb, mb = (ls[b[1]], ms[b[1]]) if b[0] == 0 else (LS[b[1]], Ms[b[1]])
        if c[0] == 1:
            lc, mc = LS[c[1]], ma + mb
            if abs(mc) > lc:
                return 0.0
            Ms[c[1]] = mc
        else:
            lc, mc = 0, 0
        val *= clebsch_gordan(la, ma, lb, mb, lc, mc)
        if val == 0.0:
            return 0.0
    return val


def ms_combinations(ls: tuple[int, ...]) -> list[tuple[int, ...]]:
    """All (m_1..m_r) with |m_t| <= l_t and Σm = 0."""
    rank = len(ls)
    if rank == 1:
        return [(0,)]
    out = []
    for head in itertools.product(*[range(-l, l + 1) for l in ls[:-1]]):
        last = -sum(head)
        if abs(last) <= ls[-1]:
            out.append(head + (last,))
    return out


# ------------------------------------------------------------------ linearly independent couplings
RANK_TOL = 1e-10


def unify_key(mus: tuple, ns: tuple[int, ...]) -> tuple[int, ...]:
    """Pattern of the sorted (species, n) pairs: equal labels = identical (species, n)."""
    rank_mu = {m: i for i, m in enumerate(sorted(set(mus)))}
    rank_n = {n: i for i, n in enumerate(sorted(set(ns)))}
    pairs = sorted((rank_mu[m], rank_n[n]) for m, n in zip(mus, ns))
    labels = {p: i for i, p in enumerate(sorted(set(pairs)))}
    return tuple(labels[p] for p in pairs)


def _LS_candidates(ls: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Every LS allowed by the triangle rules along the coupling tree, in sorted order."""
    rank = len(ls)
    k = n_intermediate(rank)
    if k == 0:
        return [()] if rank == 1 or ls[0] == ls[1] else []
    out = []
    bound = sum(ls)
    for LS in itertools.product(range(bound + 1), repeat=k):
        if _tree_ok(ls, LS):
            out.append(LS)
    return out


def _tree_ok(ls: tuple[int, ...], LS: tuple[int, ...]) -> bool:
    def val(node: tuple[int, int]) -> int:
        return ls[node[1]] if node[0] == 0 else (LS[node[1]] if node[0] == 1 else 0)

    return all(abs(val(a) - val(b)) <= val(c) <= val(a) + val(b) for a, b, c in coupling_tree(len(ls)))


@lru_cache(maxsize=4096)
def _cg_table(l1: int, l2: int, L: int) -> np.ndarray:
    """CG <l1 m1 l2 m2|L m1+m2> as a dense [2l1+1, 2l2+1] array (zero where |M| > L)."""
    t = np.zeros((2 * l1 + 1, 2 * l2 + 1))
    for m1 in range(-l1, l1 + 1):
        for m2 in range(-l2, l2 + 1):
            if abs(m1 + m2) <= L:
                t[m1 + l1, m2 + l2] = clebsch_gordan(l1, m1, l2, m2, L, m1 + m2)
    return t


def _ms_array(ls: tuple[int, ...]) -> np.ndarray:
    grids = np.meshgrid(*[np.arange(-l, l + 1) for l in ls], indexing="ij")
    ms = np.stack([g.ravel() for g in grids], axis=1)
    return ms[ms.sum(axis=1) == 0]


def gen_cg_vector(ls: tuple[int, ...], LS: tuple[int, ...], ms: np.ndarray) -> np.ndarray:
    """Generalized CG for every row of ms (vectorised version of coupling.generalized_cg)."""
    rank = len(ls)
    val = np.ones(len(ms))
    Ms: dict[int, np.ndarray] = {}
    for a, b, c in coupling_tree(rank):
        la, ma = (ls[a[1]], ms[:, a[1]]) if a[0] == 0 else (LS[a[1]], Ms[a[1]])
        lb, mb = (ls[b[1]], ms[:, b[1]]) if b[0] == 0 else (LS[b[1]], Ms[b[1]])
        L = LS[c[1]] if c[0] == 1 else 0
        ok = (np.abs(ma) <= la) & (np.abs(mb) <= lb)
        t = _cg_table(la, lb, L)
        v = np.where(ok, t[np.clip(ma + la, 0, 2 * la), np.clip(mb + lb, 0, 2 * lb)], 0.0)
        val = val * v
        if c[0] == 1:
            Ms[c[1]] = ma + mb
    return val


def _candidate_terms(labels: tuple[int, ...], ls: tuple[int, ...], LS: tuple[int, ...],
                     lmax: int) -> dict[tuple[int, ...], float]:
    ms = _ms_array(ls)
    cg = gen_cg_vector(ls, LS, ms)
    nz = cg != 0.0
    ms, cg = ms[nz], cg[nz]
    lab = np.asarray(labels)[None, :]
    l_arr = np.asarray(ls)[None, :]
    codes = (lab * (lmax + 1) + l_arr) * (2 * lmax + 1) + (ms + lmax)
    codes = np.sort(codes, axis=1)
    uniq, inv = np.unique(codes, axis=0, return_inverse=True)
    coef = np.bincount(inv.ravel(), weights=cg, minlength=len(uniq))
    return {tuple(int(x) for x in row): float(c) for row, c in zip(uniq, coef) if abs(c) > 1e-14}


def _compute(labels: tuple[int, ...], lmax: int) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    rank = len(labels)
    if rank == 1:
        return [((0,), ())]
    kept: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
    blocks: dict[tuple, tuple[dict, list[np.ndarray]]] = {}
    for ls in itertools.product(range(lmax + 1), repeat=rank):
        if sum(ls) % 2:
            continue
        bkey = tuple(sorted(zip(labels, ls)))
        for LS in _LS_candidates(ls):
            terms = _candidate_terms(labels, ls, LS, lmax)
            if not terms:
                continue
            cols, rows = blocks.setdefault(bkey, ({}, []))
            for k in terms:
                cols.setdefault(k, len(cols))
            vec = np.zeros(len(cols))
            for k, c in terms.items():
                vec[cols[k]] = c
            mat = np.zeros((len(rows) + 1, len(cols)))
            for i, r in enumerate(rows):
                mat[i, :len(r)] = r
            mat[-1] = vec
            s = np.linalg.svd(mat, compute_uv=False)
            if int(np.sum(s > RANK_TOL * s[0])) > len(rows):
                rows.append(vec)
                kept.append((tuple(ls), tuple(LS)))
    return kept


def _cache_file() -> Path:
    base = os.environ.get("PACEUI_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "paceui")
    return Path(base) / "couplings-v1.json"


_DISK: dict[str, list] | None = None


def _disk() -> dict[str, list]:
    global _DISK
    if _DISK is None:
        try:
            _DISK = json.loads(_cache_file().read_text())
        except (OSError, ValueError):
            _DISK = {}
    return _DISK


@lru_cache(maxsize=None)
def independent_couplings(labels: tuple[int, ...], lmax: int) -> tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]:
    """(ls, LS) pairs of the linearly independent couplings of a pattern with every l <= lmax.

    Cached in memory and on disk (``$PACEUI_CACHE_DIR`` or ~/.cache/paceui), since ranks 5-6 take seconds.
    """
    key = f"{','.join(map(str, labels))}|{lmax}"
    disk = _disk()
    if key in disk:
        return tuple((tuple(a), tuple(b)) for a, b in disk[key])
    res = _compute(tuple(labels), lmax)
    disk[key] = [[list(a), list(b)] for a, b in res]
    try:
        from paceui._atomic import atomic_write_text

        atomic_write_text(_cache_file(), json.dumps(disk))
    except OSError:
        pass  # a read-only home only costs recomputation
    return tuple(res)
