"""Fast periodic neighbour lists (numba cell list, lengths in Å).

Every pair ``(i, j, shift)`` with ``|r_j + shift @ cell - r_i| < cutoff`` is
returned, including periodic images of ``i`` itself; only ``i == j`` with a
zero shift is excluded (coincident distinct atoms, like in ASE, give a pair at
distance 0).  The result is in CSR form, sorted by the centre atom ``i``.

Atoms are wrapped into the cell in fractional coordinates (``shift`` still refers
to the given, unwrapped positions; ``vec`` equals the formula above up to rounding,
~1e-16 * |r|), binned into cells of perpendicular width >= cutoff / 2, and each
atom's row is counted, then filled (two passes: no atomics, deterministic order).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numba
import numpy as np
from numba import prange
from numpy.typing import ArrayLike

from paceui.ace import neighbors_numpy
from paceui.ace.chunks import run_chunks
from paceui.ace.precompile import KernelSpec, is_cached, start

if TYPE_CHECKING:
    import ase

__all__ = ["NeighborList", "neighbor_list", "neighbor_list_atoms", "neighbor_list_threads", "neighbor_lists"]

Arr = np.ndarray

_BINS_PER_CUTOFF = 2  # bin width >= cutoff / 2 -> search +-2 bins per direction
# Structures with fewer atoms use the serial kernel: an OpenMP region costs only ~10 us on an
# idle machine, but tens of ms when another process holds a core (spinning barrier).
_PARALLEL_MIN_ATOMS = 8192
_ROWS_MIN_ATOMS = 32  # atoms per chunk of the threaded builder at least: a chunk's call costs ~10 µs


@dataclass(frozen=True)
class NeighborList:
    """Pairs in CSR form; the neighbours of atom ``i`` are rows ``offsets[i]:offsets[i+1]``."""

    offsets: np.ndarray  # int64[N+1]
    j: np.ndarray  # int64[M] neighbour index
    vec: np.ndarray  # float64[M, 3] r_j + shift @ cell - r_i (Å)
    shift: np.ndarray  # int64[M, 3] integer cell shift of the neighbour image

    @property
    def i(self) -> np.ndarray:
        """int64[M] centre atom of each pair."""
        n = self.offsets.shape[0] - 1
        return np.repeat(np.arange(n, dtype=np.int64), np.diff(self.offsets))

    @property
    def distances(self) -> np.ndarray:
        """float64[M] pair distances (Å)."""
        return np.sqrt(np.einsum("ij,ij->i", self.vec, self.vec))

    def __len__(self) -> int:
        return int(self.j.shape[0])


# --------------------------------------------------------------------------- kernels


@numba.njit(nogil=True, cache=True)
def _prepare(pos: Arr, inv: Arr, heights: Arr, pbc: Arr, cutoff: float, bins_per_cutoff: int,
             max_bins: int) -> tuple[Arr, Arr, Arr, Arr, Arr, Arr]:
    """Fractional coords, wrap shifts, bin grid and a counting sort of atoms by bin."""
    n = pos.shape[0]
    frac = np.empty((n, 3))
    for a in range(n):
        for d in range(3):
            frac[a, d] = pos[a, 0] * inv[0, d] + pos[a, 1] * inv[1, d] + pos[a, 2] * inv[2, d]
    wrap = np.zeros((n, 3), dtype=np.int64)
    lo = np.zeros(3)
    width = np.ones(3)  # extent of the binned range along each direction
    for d in range(3):
        if pbc[d]:
            for a in range(n):
                w = np.floor(frac[a, d])
                frac[a, d] -= w
                wrap[a, d] = -np.int64(w)
        elif n > 0:  # element loops, not frac[:, d].min(): numba's strided reductions cost seconds to compile
            fmin, fmax = frac[0, d], frac[0, d]
            for a in range(1, n):
                fmin = min(fmin, frac[a, d])
                fmax = max(fmax, frac[a, d])
            lo[d] = fmin
            width[d] = fmax - fmin
    nb = np.ones(3, dtype=np.int64)
    for d in range(3):
        length = heights[d] if pbc[d] else width[d]
        nbf = np.floor(length * bins_per_cutoff / (cutoff * (1.0 + 1e-8)))
        nb[d] = np.int64(max(1.0, min(nbf, float(max_bins))))
    while float(nb[0]) * nb[1] * nb[2] > max_bins:  # cap memory for huge sparse boxes
        widest = 0
        for d in range(1, 3):
            if nb[d] > nb[widest]:
                widest = d
        nb[widest] = max(1, nb[widest] // 2)
    nsearch = np.zeros(3, dtype=np.int64)
    scale = np.zeros(3)  # bins per fractional unit
    for d in range(3):
        if pbc[d]:
            scale[d] = nb[d]
            nsearch[d] = np.int64(np.ceil(cutoff * nb[d] / heights[d] * (1.0 + 1e-9)))
        elif nb[d] > 1:
            scale[d] = nb[d] / width[d]
            nsearch[d] = np.int64(np.ceil(cutoff * scale[d] * (1.0 + 1e-9)))
    binxyz = np.empty((n, 3), dtype=np.int64)
    nbins = nb[0] * nb[1] * nb[2]
    bin_start = np.zeros(nbins + 1, dtype=np.int64)
    bin_of = np.empty(n, dtype=np.int64)
    for a in range(n):
        for d in range(3):
            b = np.int64(np.floor((frac[a, d] - lo[d]) * scale[d]))
            binxyz[a, d] = min(max(b, 0), nb[d] - 1)
        bin_of[a] = (binxyz[a, 0] * nb[1] + binxyz[a, 1]) * nb[2] + binxyz[a, 2]
        bin_start[bin_of[a] + 1] += 1
    for b in range(nbins):
        bin_start[b + 1] += bin_start[b]
    fill = np.empty(nbins, dtype=np.int64)
    for b in range(nbins):
        fill[b] = bin_start[b]
    order = np.empty(n, dtype=np.int64)
    for a in range(n):
        order[fill[bin_of[a]]] = a
        fill[bin_of[a]] += 1
    return wrap, binxyz, nb, nsearch, bin_start, order


@numba.njit(nogil=True, cache=True)
def _visit(i: int, write: bool, start: int, out_j: Arr, out_shift: Arr, out_vec: Arr, cell: Arr,
           pw: Arr, pws: Arr, wrap: Arr, wraps: Arr, binxyz: Arr, nb: Arr, nsearch: Arr,
           bin_start: Arr, order: Arr, rank: Arr, pbc: Arr, cutoff: float) -> int:
    """Count (and if ``write``, store from row ``start`` while rows are left) the neighbours of atom ``i``."""
    loose = cutoff * cutoff * (1.0 + 1e-8)
    xi0, xi1, xi2 = pw[i, 0], pw[i, 1], pw[i, 2]
    ki = rank[i]
    cnt = 0
    for dx in range(-nsearch[0], nsearch[0] + 1):
        cx = binxyz[i, 0] + dx
        ix = cx // nb[0]
        if not pbc[0] and ix != 0:
            continue
        cx -= ix * nb[0]
        for dy in range(-nsearch[1], nsearch[1] + 1):
            cy = binxyz[i, 1] + dy
            iy = cy // nb[1]
            if not pbc[1] and iy != 0:
                continue
            cy -= iy * nb[1]
            for dz in range(-nsearch[2], nsearch[2] + 1):
                cz = binxyz[i, 2] + dz
                iz = cz // nb[2]
                if not pbc[2] and iz != 0:
                    continue
                cz -= iz * nb[2]
                b = (cx * nb[1] + cy) * nb[2] + cz
                home = ix == 0 and iy == 0 and iz == 0
                t0 = (ix * cell[0, 0] + iy * cell[1, 0] + iz * cell[2, 0]) - xi0
                t1 = (ix * cell[0, 1] + iy * cell[1, 1] + iz * cell[2, 1]) - xi1
                t2 = (ix * cell[0, 2] + iy * cell[1, 2] + iz * cell[2, 2]) - xi2
                for k in range(bin_start[b], bin_start[b + 1]):
                    v0 = pws[k, 0] + t0
                    v1 = pws[k, 1] + t1
                    v2 = pws[k, 2] + t2
                    d2 = v0 * v0 + v1 * v1 + v2 * v2
                    if d2 >= loose or (home and k == ki) or not np.sqrt(d2) < cutoff:
                        continue
                    if write and start + cnt < out_j.shape[0]:  # past the end: counted, not stored
                        r = start + cnt
                        out_j[r] = order[k]
                        out_shift[r, 0] = ix + wraps[k, 0] - wrap[i, 0]
                        out_shift[r, 1] = iy + wraps[k, 1] - wrap[i, 1]
                        out_shift[r, 2] = iz + wraps[k, 2] - wrap[i, 2]
                        out_vec[r, 0], out_vec[r, 1], out_vec[r, 2] = v0, v1, v2
                    cnt += 1
    return cnt


@numba.njit(nogil=True, cache=True)
def _setup(pos: Arr, cell: Arr, inv: Arr, heights: Arr, pbc: Arr, cutoff: float, bins_per_cutoff: int,
           max_bins: int) -> tuple[Arr, Arr, Arr, Arr, Arr, Arr, Arr, Arr, Arr, Arr]:
    """The builders' serial set-up: bins, positions wrapped into the cell (Å) and the same with their wrap
    shifts sorted by bin for locality, and each atom's rank in that order."""
    n = pos.shape[0]
    wrap, binxyz, nb, nsearch, bin_start, order = _prepare(
        pos, inv, heights, pbc, cutoff, bins_per_cutoff, max_bins)
    pw = np.empty((n, 3))
    for a in range(n):
        for d in range(3):
            pw[a, d] = pos[a, d] + (wrap[a, 0] * cell[0, d] + wrap[a, 1] * cell[1, d]
                                    + wrap[a, 2] * cell[2, d])
    pws = np.empty((n, 3))
    wraps = np.empty((n, 3), dtype=np.int64)
    rank = np.empty(n, dtype=np.int64)
    for k in range(n):  # element loops: a row assignment would compile numba's shape-error path
        for d in range(3):
            pws[k, d] = pw[order[k], d]
            wraps[k, d] = wrap[order[k], d]
        rank[order[k]] = k
    return wrap, binxyz, nb, nsearch, bin_start, order, pw, pws, wraps, rank


def _make_builder(parallel: bool) -> Callable[..., tuple[Arr, Arr, Arr, Arr, int]]:
    """Compile the count-then-fill driver, serial or parallel over atoms."""

    def build(pos: Arr, cell: Arr, inv: Arr, heights: Arr, pbc: Arr, cutoff: float,
              bins_per_cutoff: int, max_bins: int) -> tuple[Arr, Arr, Arr, Arr, int]:
        n = pos.shape[0]
        wrap, binxyz, nb, nsearch, bin_start, order, pw, pws, wraps, rank = _setup(
            pos, cell, inv, heights, pbc, cutoff, bins_per_cutoff, max_bins)
        counts = np.zeros(n, dtype=np.int64)
        dj = np.empty(0, dtype=np.int64)
        ds = np.empty((0, 3), dtype=np.int64)
        dv = np.empty((0, 3), dtype=np.float64)
        # count = False and zero = 0, but not compile-time constants: numba would compile _visit twice
        # (literal False/0 here, True below), one specialisation costs seconds of compile time
        count, zero = n < 0, n - n
        for i in prange(n):
            counts[i] = _visit(i, count, zero, dj, ds, dv, cell, pw, pws, wrap, wraps, binxyz,
                               nb, nsearch, bin_start, order, rank, pbc, cutoff)
        offsets = np.zeros(n + 1, dtype=np.int64)
        for i in range(n):
            offsets[i + 1] = offsets[i] + counts[i]
        m = offsets[n]
        out_j = np.empty(m, dtype=np.int64)
        out_shift = np.empty((m, 3), dtype=np.int64)
        out_vec = np.empty((m, 3), dtype=np.float64)
        bad = 0
        for i in prange(n):
            c = _visit(i, n >= 0, offsets[i], out_j, out_shift, out_vec, cell, pw, pws, wrap,
                       wraps, binxyz, nb, nsearch, bin_start, order, rank, pbc, cutoff)
            if c != counts[i]:
                bad += 1
        return offsets, out_j, out_shift, out_vec, bad

    build.__qualname__ = build.__name__ = "_build_parallel" if parallel else "_build_serial"
    return numba.njit(nogil=True, cache=True, parallel=parallel)(build)


_build_serial = _make_builder(False)
_build_parallel = _make_builder(True)


@numba.njit(nogil=True, cache=True)
def _rows(a0: int, a1: int, write: bool, offsets: Arr, counts: Arr, out_j: Arr, out_shift: Arr, out_vec: Arr,
          cell: Arr, pw: Arr, pws: Arr, wrap: Arr, wraps: Arr, binxyz: Arr, nb: Arr, nsearch: Arr,
          bin_start: Arr, order: Arr, rank: Arr, pbc: Arr, cutoff: float) -> int:
    """Count (``write`` False: into counts) or fill (from rows offsets[i]) the rows of atoms a0..a1−1;
    returns the number of rows whose fill disagrees with offsets (0)."""
    bad = 0
    for i in range(a0, a1):
        if write:
            c = _visit(i, write, offsets[i], out_j, out_shift, out_vec, cell, pw, pws, wrap, wraps, binxyz,
                       nb, nsearch, bin_start, order, rank, pbc, cutoff)
            if c != offsets[i + 1] - offsets[i]:
                bad += 1
        else:
            counts[i] = _visit(i, write, 0, out_j, out_shift, out_vec, cell, pw, pws, wrap, wraps, binxyz,
                               nb, nsearch, bin_start, order, rank, pbc, cutoff)
    return bad


@numba.njit(nogil=True, cache=True)
def _rows_once(a0: int, a1: int, counts: Arr, out_j: Arr, out_shift: Arr, out_vec: Arr, cell: Arr, pw: Arr,
               pws: Arr, wrap: Arr, wraps: Arr, binxyz: Arr, nb: Arr, nsearch: Arr, bin_start: Arr, order: Arr,
               rank: Arr, pbc: Arr, cutoff: float) -> int:
    """Count and store, in one pass, the rows of atoms a0..a1−1 from row 0 of the out arrays; returns the
    number of pairs (more than the arrays hold: only the rows that fit were stored, the counts are right)."""
    start = 0
    for i in range(a0, a1):
        c = _visit(i, a1 >= 0, start, out_j, out_shift, out_vec, cell, pw, pws, wrap, wraps, binxyz, nb, nsearch,
                   bin_start, order, rank, pbc, cutoff)
        counts[i] = c
        start += c
    return start


# the kernels of the threaded builder (neighbor_list_threads) and their signatures
SETUP = KernelSpec("paceui.ace.neighbors", "_setup", "f2 f2 f2 f1 b1 f i i")
ROWS = KernelSpec("paceui.ace.neighbors", "_rows", "i i b i1 i1 i1 i2 f2 f2 f2 f2 i2 i2 i2 i1 i1 i1 i1 i1 b1 f")
ROWS_ONCE = KernelSpec("paceui.ace.neighbors", "_rows_once", "i i i1 i1 i2 f2 f2 f2 f2 i2 i2 i2 i1 i1 i1 i1 i1 b1 f")

# the serial builder and the signature of its calls; while it is not in the numba cache, the numpy twin
# (paceui.ace.neighbors_numpy: the same bits, no ~8 s compile) builds the lists, until it has spent
# _NUMPY_BUDGET_S in this process (then compiling pays: the compiled builder is ~6-15x faster)
BUILD_SERIAL = KernelSpec("paceui.ace.neighbors", "_build_serial", "f2 f2 f2 f1 b1 f i i")
_NUMPY_BUDGET_S = 4.0
_numpy_spent = [0.0]
_compiled_ready = [False]


def _use_numpy() -> bool:
    """Whether to build with numpy: the compiled builder is neither loaded nor cached, budget left."""
    if _compiled_ready[0] or os.environ.get("NUMBA_DISABLE_JIT", "0") != "0":
        return False
    if getattr(_build_serial, "signatures", None) or is_cached(BUILD_SERIAL):
        _compiled_ready[0] = True
        return False
    return _numpy_spent[0] < _NUMPY_BUDGET_S


# --------------------------------------------------------------------------- python API


def _basis(cell: Arr, pbc: Arr) -> Arr:
    """Cell rows for periodic directions, an orthonormal completion for the others."""
    per = [d for d in range(3) if pbc[d]]
    norms = np.linalg.norm(cell, axis=1)
    for d in per:
        if norms[d] < 1e-12:
            raise ValueError(f"cell vector {d} is zero but pbc[{d}] is True")
    fill: list[Arr] = list(np.eye(3))
    if len(per) == 3 and abs(np.linalg.det(cell)) <= 1e-10 * np.prod(norms):
        raise ValueError("cell is singular in its periodic directions")
    if len(per) == 2:
        nrm = np.cross(cell[per[0]], cell[per[1]])
        if np.linalg.norm(nrm) <= 1e-10 * norms[per[0]] * norms[per[1]]:
            raise ValueError(f"periodic cell vectors {per} are parallel (singular cell)")
        fill = [nrm / np.linalg.norm(nrm)]
    elif len(per) == 1:
        u = cell[per[0]] / norms[per[0]]
        e = np.eye(3)[np.argmin(np.abs(u))]
        b = (e - (e @ u) * u) / np.linalg.norm(e - (e @ u) * u)
        fill = [b, np.cross(u, b)]
    it = iter(fill)
    return np.array([cell[d] if pbc[d] else next(it) for d in range(3)])


def _inputs(positions: ArrayLike, cell: ArrayLike | None, pbc: bool | ArrayLike,
            cutoff: float) -> tuple[Arr, Arr, Arr, Arr, Arr, float, int]:
    """Validated (positions, cell, pbc, inverse basis, heights, cutoff, max_bins) for the builders."""
    pos = np.ascontiguousarray(positions, dtype=np.float64)
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise ValueError(f"positions must have shape (N, 3), got {pos.shape}")
    if not np.isfinite(pos).all():
        raise ValueError("positions contain NaN or inf")
    cutoff = float(cutoff)
    if not (np.isfinite(cutoff) and cutoff > 0.0):
        raise ValueError(f"cutoff must be a positive finite number (Å), got {cutoff}")
    c = np.zeros((3, 3)) if cell is None else np.asarray(cell, dtype=np.float64)
    if c.shape == (3,):
        c = np.diag(c)
    if c.shape != (3, 3):
        raise ValueError(f"cell must have shape (3, 3), got {c.shape}")
    if not np.isfinite(c).all():
        raise ValueError("cell contains NaN or inf")
    c = np.ascontiguousarray(c)
    p = np.broadcast_to(np.asarray(pbc, dtype=np.bool_), (3,)).copy()
    inv = np.linalg.inv(_basis(c, p))
    heights = 1.0 / np.linalg.norm(inv, axis=0)  # perpendicular heights of the cell (Å)
    return pos, c, p, inv, heights, cutoff, max(4096, 8 * pos.shape[0])


def _neighbor_list(positions: ArrayLike, cell: ArrayLike | None, pbc: bool | ArrayLike,
                   cutoff: float, parallel: bool | None) -> NeighborList:
    """Validate the input, then run the serial or atom-parallel kernel (None: by size)."""
    pos, c, p, inv, heights, cutoff, max_bins = _inputs(positions, cell, pbc, cutoff)
    n = pos.shape[0]
    if parallel is None:
        parallel = n >= _PARALLEL_MIN_ATOMS
    if not parallel and _use_numpy():
        t0 = time.perf_counter()
        offsets, j, shift, vec, bad = neighbors_numpy.build(pos, c, inv, heights, p, cutoff, _BINS_PER_CUTOFF,
                                                            max_bins)
        _numpy_spent[0] += time.perf_counter() - t0
    else:
        build = _build_parallel if parallel else _build_serial
        offsets, j, shift, vec, bad = build(pos, c, inv, heights, p, cutoff, _BINS_PER_CUTOFF, max_bins)
    if bad:  # pragma: no cover - would indicate a kernel bug
        raise RuntimeError("neighbour count and fill passes disagree")
    return NeighborList(offsets=offsets, j=j, vec=vec, shift=shift)


def neighbor_list(positions: ArrayLike, cell: ArrayLike | None, pbc: bool | ArrayLike,
                  cutoff: float) -> NeighborList:
    """All pairs closer than ``cutoff`` (Å, strict) for positions (Å) in ``cell`` (rows, Å).

    Cell vectors of non-periodic directions are ignored (they may be zero).
    Positions need not be wrapped; ``shift`` always refers to the given positions.
    """
    return _neighbor_list(positions, cell, pbc, cutoff, None)


def neighbor_list_threads(positions: ArrayLike, cell: ArrayLike | None, pbc: bool | ArrayLike,
                          cutoff: float, nthreads: int, pairs_per_atom: float = 0.0) -> NeighborList:
    """:func:`neighbor_list` on ``nthreads`` threads (the same pairs, order and bits as the serial builder).

    The rows are built over chunks of atoms (:func:`paceui.ace.chunks.run_chunks`, nogil kernels); the set-up
    (bins, sorted positions) is serial. With a guess ``pairs_per_atom`` (e.g. the last structure's), each chunk
    counts and stores its rows in one pass into a buffer of that size (a chunk that overflows it is rebuilt),
    and the chunks are joined; without one, a count pass, then a fill pass. With a structure of
    ``_PARALLEL_MIN_ATOMS`` or more, or while the compiled builders are not cached, this is :func:`neighbor_list`.
    """
    pos, c, p, inv, heights, cutoff, max_bins = _inputs(positions, cell, pbc, cutoff)
    n = pos.shape[0]
    once = pairs_per_atom > 0.0
    if (not once and (nthreads <= 1 or n < 2 * _ROWS_MIN_ATOMS)) or n >= _PARALLEL_MIN_ATOMS or not _threaded_ready():
        return _neighbor_list(pos, c, p, cutoff, None)
    wrap, binxyz, nb, nsearch, bin_start, order, pw, pws, wraps, rank = _setup(
        pos, c, inv, heights, p, cutoff, _BINS_PER_CUTOFF, max_bins)
    nchunk = max(1, min(2 * nthreads if nthreads > 1 else 1, n // _ROWS_MIN_ATOMS))
    bounds = [k * n // nchunk for k in range(nchunk + 1)]
    counts = np.zeros(n, dtype=np.int64)
    offsets = np.zeros(n + 1, dtype=np.int64)
    geo: tuple[Any, ...] = (c, pw, pws, wrap, wraps, binxyz, nb, nsearch, bin_start, order, rank, p, cutoff)
    if once:
        empty = (np.empty(0, np.int64), np.empty((0, 3), np.int64), np.empty((0, 3)))
        parts: list[tuple[Arr, Arr, Arr]] = [empty] * nchunk
        sizes = [0] * nchunk

        def build(k: int) -> None:
            cap = int(pairs_per_atom * 1.15 * (bounds[k + 1] - bounds[k])) + 64
            for _ in range(2):
                bufs = (np.empty(cap, np.int64), np.empty((cap, 3), np.int64), np.empty((cap, 3)))
                got = _rows_once(bounds[k], bounds[k + 1], counts, bufs[0], bufs[1], bufs[2], *geo)
                if got <= cap:
                    break
                cap = got  # overflow: rebuild this chunk with room for all its rows
            parts[k], sizes[k] = bufs, got

        run_chunks(build, nchunk, nthreads)
        np.cumsum(counts, out=offsets[1:])
        if nchunk == 1:  # the buffer itself (a copy where the guess was far too large)
            j, sh, v = (a[:sizes[0]] if a.shape[0] <= 2 * sizes[0] + 64 else a[:sizes[0]].copy() for a in parts[0])
        else:
            j = np.concatenate([parts[k][0][:sizes[k]] for k in range(nchunk)])
            sh = np.concatenate([parts[k][1][:sizes[k]] for k in range(nchunk)])
            v = np.concatenate([parts[k][2][:sizes[k]] for k in range(nchunk)])
        return NeighborList(offsets=offsets, j=j, vec=v, shift=sh)
    dj, ds, dv = np.empty(0, dtype=np.int64), np.empty((0, 3), dtype=np.int64), np.empty((0, 3))
    run_chunks(lambda k: _rows(bounds[k], bounds[k + 1], False, offsets, counts, dj, ds, dv, *geo), nchunk, nthreads)
    np.cumsum(counts, out=offsets[1:])
    m = int(offsets[n])
    out_j = np.empty(m, dtype=np.int64)
    out_shift = np.empty((m, 3), dtype=np.int64)
    out_vec = np.empty((m, 3), dtype=np.float64)
    bad = [0] * nchunk

    def fill(k: int) -> None:
        bad[k] = _rows(bounds[k], bounds[k + 1], True, offsets, counts, out_j, out_shift, out_vec, *geo)

    run_chunks(fill, nchunk, nthreads)
    if any(bad):  # pragma: no cover - would indicate a kernel bug
        raise RuntimeError("neighbour count and fill passes disagree")
    return NeighborList(offsets=offsets, j=out_j, vec=out_vec, shift=out_shift)


_threaded_cached = [False]


def _threaded_ready() -> bool:
    """Whether the threaded builder's kernels are compiled or cached (else the serial builder is used, and a
    child process compiles them into the cache: paceui.ace.precompile)."""
    if _threaded_cached[0]:
        return True
    if os.environ.get("NUMBA_DISABLE_JIT", "0") != "0" or _use_numpy():
        return False
    specs = (SETUP, ROWS, ROWS_ONCE)
    if all(getattr(_dispatcher_of(s), "signatures", None) or is_cached(s) for s in specs):
        _threaded_cached[0] = True
        return True
    start(specs)
    return False


def _dispatcher_of(spec: KernelSpec) -> object:
    return globals()[spec.name]


def neighbor_list_atoms(atoms: "ase.Atoms", cutoff: float) -> NeighborList:
    """:func:`neighbor_list` for an ``ase.Atoms`` object."""
    return _neighbor_list(atoms.positions, atoms.cell.array, atoms.pbc, cutoff, None)


def neighbor_lists(atoms_list: Sequence["ase.Atoms"], cutoff: float,
                   num_threads: int | None = None) -> list[NeighborList]:
    """Neighbour lists of many structures (cutoff in Å).

    Large structures use the atom-parallel kernel; the others are split round-robin over
    ``num_threads`` Python threads running the serial nogil kernel.
    """
    if num_threads is None:
        num_threads = min(numba.get_num_threads(), os.cpu_count() or 1)
    out: list[NeighborList | None] = [None] * len(atoms_list)
    small = []
    for k, a in enumerate(atoms_list):
        if num_threads <= 1 or len(a) >= _PARALLEL_MIN_ATOMS:
            out[k] = neighbor_list_atoms(a, cutoff)
        else:
            small.append(k)

    def work(t: int) -> None:
        for k in small[t::num_threads]:
            a = atoms_list[k]
            out[k] = _neighbor_list(a.positions, a.cell.array, a.pbc, cutoff, False)

    if small:
        with ThreadPoolExecutor(max_workers=num_threads) as ex:
            for f in [ex.submit(work, t) for t in range(num_threads)]:
                f.result()
    return out  # type: ignore[return-value]
