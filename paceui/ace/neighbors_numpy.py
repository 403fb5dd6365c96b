"""The neighbour list of :mod:`paceui.ace.neighbors` in numpy: no numba compilation (for a cold cache).

It is the numba builder's algorithm written in whole-array operations, float operation for float operation
(the same bins, the same image offsets visited in the same order, the same sums in the same order), so it
returns the same pairs in the same order with the same bits (``tests/test_neighbors.py`` compares both on
the Zuo and reference datasets). Slower per atom than the compiled kernel (~5x), but it needs no compile, which
costs the compiled one ~8 s once per machine: :func:`paceui.ace.neighbors.neighbor_lists` uses it while the
compiled builder is not in the numba cache.
"""

from __future__ import annotations

import numpy as np

__all__ = ["build"]

Arr = np.ndarray


def _prepare(pos: Arr, inv: Arr, heights: Arr, pbc: Arr, cutoff: float, bins_per_cutoff: int,
             max_bins: int) -> tuple[Arr, Arr, Arr, Arr, Arr, Arr]:
    """Fractional coords, wrap shifts, bin grid and a stable sort of atoms by bin (as numba's ``_prepare``)."""
    n = pos.shape[0]
    frac = pos[:, 0:1] * inv[0] + pos[:, 1:2] * inv[1] + pos[:, 2:3] * inv[2]
    wrap = np.zeros((n, 3), dtype=np.int64)
    lo = np.zeros(3)
    width = np.ones(3)
    for d in range(3):
        if pbc[d]:
            w = np.floor(frac[:, d])
            frac[:, d] -= w
            wrap[:, d] = -w.astype(np.int64)
        elif n > 0:
            lo[d] = frac[:, d].min()
            width[d] = frac[:, d].max() - lo[d]
    nb = np.ones(3, dtype=np.int64)
    for d in range(3):
        length = heights[d] if pbc[d] else width[d]
        nbf = np.floor(length * bins_per_cutoff / (cutoff * (1.0 + 1e-8)))
        nb[d] = np.int64(max(1.0, min(nbf, float(max_bins))))
    while float(nb[0]) * nb[1] * nb[2] > max_bins:
        widest = 0
        for d in range(1, 3):
            if nb[d] > nb[widest]:
                widest = d
        nb[widest] = max(1, nb[widest] // 2)
    nsearch = np.zeros(3, dtype=np.int64)
    scale = np.zeros(3)
    for d in range(3):
        if pbc[d]:
            scale[d] = nb[d]
            nsearch[d] = np.int64(np.ceil(cutoff * nb[d] / heights[d] * (1.0 + 1e-9)))
        elif nb[d] > 1:
            scale[d] = nb[d] / width[d]
            nsearch[d] = np.int64(np.ceil(cutoff * scale[d] * (1.0 + 1e-9)))
    binxyz = np.floor((frac - lo) * scale).astype(np.int64)
    np.clip(binxyz, 0, nb - 1, out=binxyz)
    bin_of = (binxyz[:, 0] * nb[1] + binxyz[:, 1]) * nb[2] + binxyz[:, 2]
    nbins = int(nb[0] * nb[1] * nb[2])
    bin_start = np.zeros(nbins + 1, dtype=np.int64)
    np.cumsum(np.bincount(bin_of, minlength=nbins), out=bin_start[1:])
    order = np.argsort(bin_of, kind="stable")  # the counting sort's order: by bin, then by atom
    return wrap, binxyz, nb, nsearch, bin_start, order


def _offsets(nsearch: Arr) -> Arr:
    """int64[K, 3] bin offsets (dx, dy, dz) in the order of the numba kernel's loops (dz fastest)."""
    axes = [np.arange(-nsearch[d], nsearch[d] + 1, dtype=np.int64) for d in range(3)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)


def build(pos: Arr, cell: Arr, inv: Arr, heights: Arr, pbc: Arr, cutoff: float,
          bins_per_cutoff: int, max_bins: int) -> tuple[Arr, Arr, Arr, Arr, int]:
    """``(offsets, j, shift, vec, 0)`` exactly as numba's ``_build_serial`` returns them."""
    n = pos.shape[0]
    wrap, binxyz, nb, nsearch, bin_start, order = _prepare(pos, inv, heights, pbc, cutoff, bins_per_cutoff,
                                                           max_bins)
    pw = pos + ((wrap[:, 0:1] * cell[0] + wrap[:, 1:2] * cell[1]) + wrap[:, 2:3] * cell[2])
    pws, wraps = pw[order], wrap[order]
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n, dtype=np.int64)
    # every (atom i, bin offset) in loop order: the image (ix, iy, iz) and the bin it lands in
    c = binxyz[:, None, :] + _offsets(nsearch)[None, :, :]  # [n, K, 3]
    img = c // nb
    c -= img * nb
    keep = np.all(pbc | (img == 0), axis=2)  # a non-periodic direction has no images
    ci, ck = np.nonzero(keep)  # row-major: i, then offset
    img = img[ci, ck]
    b = (c[ci, ck, 0] * nb[1] + c[ci, ck, 1]) * nb[2] + c[ci, ck, 2]
    home = np.all(img == 0, axis=1)
    t = ((img[:, 0:1] * cell[0] + img[:, 1:2] * cell[1]) + img[:, 2:3] * cell[2]) - pw[ci]
    # each visit runs over the atoms of its bin, k = bin_start[b] .. bin_start[b+1]-1
    cnt = bin_start[b + 1] - bin_start[b]
    visit = np.repeat(np.arange(ci.shape[0], dtype=np.int64), cnt)
    first = np.cumsum(cnt) - cnt
    k = bin_start[b][visit] + (np.arange(visit.shape[0], dtype=np.int64) - first[visit])
    ii = ci[visit]
    v = pws[k] + t[visit]
    d2 = (v[:, 0] * v[:, 0] + v[:, 1] * v[:, 1]) + v[:, 2] * v[:, 2]
    loose = cutoff * cutoff * (1.0 + 1e-8)
    ok = (d2 < loose) & ~(home[visit] & (k == rank[ii]))
    ok[ok] = np.sqrt(d2[ok]) < cutoff
    ii, k, vis = ii[ok], k[ok], visit[ok]
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(ii, minlength=n), out=offsets[1:])
    shift = img[vis] + wraps[k] - wrap[ii]
    return offsets, order[k], np.ascontiguousarray(shift), np.ascontiguousarray(v[ok]), 0
