"""The fit arrays: one set of structures (train or test) packed for the loss kernels, and packing a
prepared train/test frame and its neighbour lists into them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from paceui.data.nlcache import PackedNeighbors


@dataclass
class FitArrays:
    """One set of structures (train or test), packed: every atom and pair of every structure."""

    struct_off: np.ndarray  # int64[n_struct+1] atom offsets (S is the number of species elsewhere)
    species: np.ndarray     # int64[N]
    nbr_off: np.ndarray     # int64[N+1]
    nbr_j: np.ndarray       # int64[M] global atom index
    vec: np.ndarray         # float64[M,3] Å
    e_ref: np.ndarray       # float64[n_struct] eV (energy_corrected)
    f_ref: np.ndarray       # float64[N,3] eV/Å
    w_e: np.ndarray         # float64[n_struct]
    w_f: np.ndarray         # float64[N]

    @property
    def n_struct(self) -> int:
        return len(self.struct_off) - 1

    @property
    def n_atoms(self) -> np.ndarray:
        return np.diff(self.struct_off)


def slice_structures(data: FitArrays, s0: int, s1: int) -> FitArrays:
    """Structures s0..s1-1 as FitArrays of their own (offsets and atom indices rebased)."""
    a0, a1 = int(data.struct_off[s0]), int(data.struct_off[s1])
    p0, p1 = int(data.nbr_off[a0]), int(data.nbr_off[a1])
    return FitArrays(data.struct_off[s0:s1 + 1] - a0, data.species[a0:a1], data.nbr_off[a0:a1 + 1] - p0,
                     data.nbr_j[p0:p1] - a0, data.vec[p0:p1], data.e_ref[s0:s1], data.f_ref[a0:a1],
                     data.w_e[s0:s1], data.w_f[a0:a1])


def atom_structures(data: FitArrays) -> np.ndarray:
    """The structure index of every atom (int64[N])."""
    return np.repeat(np.arange(data.n_struct), data.n_atoms)


def _owned(a: np.ndarray, dtype: type) -> np.ndarray:
    """C-contiguous and writeable (a cached read-only array is copied): the kernels then see one array
    type whatever the source, so numba compiles each kernel once (read-only arrays are another type)."""
    return np.require(a, dtype=dtype, requirements=["C", "W"])


def fit_arrays(frame: pd.DataFrame, packed: PackedNeighbors) -> FitArrays:
    """Row k of ``frame`` is structure k of ``packed``; weights come from w_energy / w_forces."""
    if len(frame) != packed.n_structures:
        raise ValueError(f"{len(frame)} structures in the frame but {packed.n_structures} neighbour lists")
    f_ref = np.concatenate([np.asarray(f, dtype=float).reshape(-1, 3) for f in frame["forces"]]) \
        if len(frame) else np.zeros((0, 3))
    w_f = np.concatenate([np.broadcast_to(np.asarray(w, dtype=float), (len(np.asarray(f).reshape(-1, 3)),))
                          for w, f in zip(frame["w_forces"], frame["forces"])]) if len(frame) else np.zeros(0)
    return FitArrays(struct_off=_owned(packed.atom_offsets, np.int64), species=_owned(packed.species, np.int64),
                     nbr_off=_owned(packed.nbr_offsets, np.int64), nbr_j=_owned(packed.nbr_j, np.int64),
                     vec=_owned(packed.vec, np.float64),
                     e_ref=frame["energy_corrected"].to_numpy(dtype=float),
                     f_ref=np.ascontiguousarray(f_ref), w_e=frame["w_energy"].to_numpy(dtype=float),
                     w_f=np.ascontiguousarray(w_f))


def shortest_pair_distances(data: FitArrays) -> np.ndarray:
    """The shortest neighbour distance (Å) of each structure; NaN for a structure without pairs."""
    d = np.sqrt(np.einsum("ij,ij->i", data.vec, data.vec))
    out = np.full(data.n_struct, np.nan)
    for s in range(data.n_struct):
        lo, hi = data.nbr_off[data.struct_off[s]], data.nbr_off[data.struct_off[s + 1]]
        if hi > lo:
            out[s] = d[lo:hi].min()
    return out
