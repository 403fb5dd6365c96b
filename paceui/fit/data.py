"""Pack a prepared train/test frame and its neighbour lists into :class:`FitArrays` for the loss."""

from __future__ import annotations

import numpy as np
import pandas as pd

from paceui.data.nlcache import PackedNeighbors
from paceui.data.stress import stress_arrays
from paceui.fit.loss import FitArrays


def _owned(a: np.ndarray, dtype: type) -> np.ndarray:
    """C-contiguous and writeable (a cached read-only array is copied): the kernels then see one array
    type whatever the source, so numba compiles each kernel once (read-only arrays are another type)."""
    return np.require(a, dtype=dtype, requirements=["C", "W"])


def fit_arrays(frame: pd.DataFrame, packed: PackedNeighbors, normalize_stress: bool = True) -> FitArrays:
    """Row k of ``frame`` is structure k of ``packed``; weights come from w_energy / w_forces (and the
    optional stress column with w_stress factors, :func:`paceui.data.stress.stress_arrays`; with
    ``normalize_stress`` False the w_stress column is taken as it is: a shard of a set normalised before)."""
    if len(frame) != packed.n_structures:
        raise ValueError(f"{len(frame)} structures in the frame but {packed.n_structures} neighbour lists")
    f_ref = np.concatenate([np.asarray(f, dtype=float).reshape(-1, 3) for f in frame["forces"]]) \
        if len(frame) else np.zeros((0, 3))
    w_f = np.concatenate([np.broadcast_to(np.asarray(w, dtype=float), (len(np.asarray(f).reshape(-1, 3)),))
                          for w, f in zip(frame["w_forces"], frame["forces"])]) if len(frame) else np.zeros(0)
    s_ref, w_s, vol = stress_arrays(frame)
    if not normalize_stress:
        w_s = np.where(np.all(np.isfinite(s_ref), axis=1), frame["w_stress"].to_numpy(float), 0.0)
    return FitArrays(struct_off=_owned(packed.atom_offsets, np.int64), species=_owned(packed.species, np.int64),
                     nbr_off=_owned(packed.nbr_offsets, np.int64), nbr_j=_owned(packed.nbr_j, np.int64),
                     vec=_owned(packed.vec, np.float64),
                     e_ref=frame["energy_corrected"].to_numpy(dtype=float),
                     f_ref=np.ascontiguousarray(f_ref), w_e=frame["w_energy"].to_numpy(dtype=float),
                     w_f=np.ascontiguousarray(w_f), s_ref=s_ref, w_s=w_s, vol=vol)


def shortest_pair_distances(data: FitArrays) -> np.ndarray:
    """The shortest neighbour distance (Å) of each structure; NaN for a structure without pairs."""
    d = np.sqrt(np.einsum("ij,ij->i", data.vec, data.vec))
    out = np.full(data.n_struct, np.nan)
    for s in range(data.n_struct):
        lo, hi = data.nbr_off[data.struct_off[s]], data.nbr_off[data.struct_off[s + 1]]
        if hi > lo:
            out[s] = d[lo:hi].min()
    return out
