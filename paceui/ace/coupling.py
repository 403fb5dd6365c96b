"""Clebsch-Gordan coefficients and the generalized couplings of ACE B-functions (ace_math.md §6).

A rank-r function couples its r spherical harmonics along a fixed binary tree: the leaves are paired
level by level, a left-over node is carried to the end of the next level, and the root couples to
L = 0. The intermediate angular momenta LS ("lint" in the YAML) label the tree's inner nodes.
"""

from __future__ import annotations

import itertools
from functools import lru_cache
from math import factorial, sqrt

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
