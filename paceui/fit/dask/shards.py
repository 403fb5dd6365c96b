"""Shards of a distributed fit: how structures are split, written as re-creatable recipes, and what a
Dask worker runs on its shard (see :mod:`paceui.fit.dask.evaluator`).

A shard is a set of structures. Its *recipe* (:class:`ShardRecipe`) names a file the workers can read
(packed arrays, or the structures themselves, from which the worker builds the neighbour lists), so a
shard lost with its worker is rebuilt on another worker from the recipe alone. The worker keeps the
loaded shard in memory (it is the result of a Dask task the client holds) and, per evaluation, gets θ
and returns the data part of the loss: sums, the gradient and per-structure energies (eV), plus force
error sums for the metrics, never the per-atom forces.
"""

from __future__ import annotations

import heapq
import io
import time
from collections import OrderedDict
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from paceui._atomic import atomic_write_bytes
from paceui.fit.arrays import FitArrays, shortest_pair_distances
from paceui.fit.loss import ACELoss, LossConfig

ARRAY_FIELDS = tuple(f.name for f in fields(FitArrays))
STAT_KEYS = ("n", "sq", "norm", "comp", "max_norm", "max_comp")
"""Force error sums of a shard: atoms, Σ|ΔF|², Σ|ΔF|, Σ|ΔF_x|+|ΔF_y|+|ΔF_z|, max |ΔF|, max |ΔF_x| (eV/Å)."""


@dataclass(frozen=True)
class ShardRecipe:
    """Everything a worker needs to build one shard: ``kind`` ``arrays`` (an ``.npz`` of packed
    :class:`FitArrays`) or ``rows`` (a frame of structures; the worker builds neighbour lists within
    ``cutoff`` Å for ``elements``); ``low``: the metrics' low-energy flag of each structure."""

    key: str
    kind: str
    path: str
    cutoff: float = 0.0
    elements: tuple[str, ...] = ()
    low: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))


@dataclass
class Shard:
    """A loaded shard, living in a worker's memory."""

    key: str
    arrays: FitArrays
    low_atoms: np.ndarray  # bool[N_shard]

    @property
    def nbytes(self) -> int:
        return int(sum(getattr(self.arrays, f).nbytes for f in ARRAY_FIELDS))


@dataclass
class ShardResult:
    """The data part of the loss on one shard (no regularisation): weighted sums, ∂/∂θ, E per structure."""

    e_loss: float
    f_loss: float
    grad: np.ndarray | None
    e_pred: np.ndarray
    force_stats: dict[str, np.ndarray]  # each key of STAT_KEYS: [all, low]
    seconds: float


def partition(atoms: np.ndarray, pairs: np.ndarray | None, n_shards: int) -> list[np.ndarray]:
    """Structure indices of ``n_shards`` shards of about equal cost (atoms + neighbour pairs / 16, the
    kernels' work), by the longest-processing-time rule; each shard's indices sorted, none empty."""
    atoms = np.asarray(atoms, dtype=np.int64)
    n_shards = max(1, min(int(n_shards), len(atoms)))
    cost = atoms.astype(float) + (0.0 if pairs is None else np.asarray(pairs, dtype=float) / 16.0)
    heap = [(0.0, k) for k in range(n_shards)]
    out: list[list[int]] = [[] for _ in range(n_shards)]
    for s in np.argsort(-cost, kind="stable"):
        load, k = heapq.heappop(heap)
        out[k].append(int(s))
        heapq.heappush(heap, (load + cost[s], k))
    return [np.sort(np.asarray(o, dtype=np.int64)) for o in out]


def slice_arrays(a: FitArrays, sel: np.ndarray) -> FitArrays:
    """The structures ``sel`` (positions) of ``a``, packed again (neighbour indices renumbered)."""
    from paceui.data.nlcache import PackedNeighbors

    pack = PackedNeighbors(a.n_struct, a.struct_off, a.species, a.nbr_off, a.nbr_j, a.vec, 0.0, ()).select(sel)
    nat = a.n_atoms
    atoms = np.concatenate([np.arange(a.struct_off[s], a.struct_off[s] + nat[s]) for s in sel]) if len(sel) \
        else np.zeros(0, dtype=np.int64)
    return FitArrays(struct_off=np.array(pack.atom_offsets), species=np.array(pack.species),
                     nbr_off=np.array(pack.nbr_offsets), nbr_j=np.array(pack.nbr_j), vec=np.array(pack.vec),
                     e_ref=a.e_ref[sel].copy(), f_ref=a.f_ref[atoms].copy(), w_e=a.w_e[sel].copy(),
                     w_f=a.w_f[atoms].copy())


def write_arrays_recipe(a: FitArrays, sel: np.ndarray, low: np.ndarray, folder: Path, key: str) -> ShardRecipe:
    """Write structures ``sel`` of ``a`` to ``folder/key.npz`` (atomically); their recipe."""
    buf = io.BytesIO()
    np.savez(buf, **{f: getattr(slice_arrays(a, sel), f) for f in ARRAY_FIELDS})
    path = folder / f"{key}.npz"
    atomic_write_bytes(path, buf.getvalue())
    return ShardRecipe(key, "arrays", str(path), low=np.asarray(low, dtype=bool)[sel])


def write_rows_recipe(frame: Any, sel: np.ndarray, low: np.ndarray, folder: Path, key: str, cutoff: float,
                      elements: tuple[str, ...]) -> ShardRecipe:
    """Write rows ``sel`` of a prepared frame (structures, reference energies, forces, weights) to
    ``folder/key.pckl.gzip``; their recipe (the worker builds the neighbour lists)."""
    from paceui.data.io import save_dataframe

    cols = ["ase_atoms", "energy_corrected", "forces", "w_energy", "w_forces"]
    path = folder / f"{key}.pckl.gzip"
    save_dataframe(frame.iloc[sel][cols].reset_index(drop=True), path)
    return ShardRecipe(key, "rows", str(path), float(cutoff), tuple(elements), np.asarray(low, dtype=bool)[sel])


# ---------------------------------------------------------------------------------- on the worker
def load_shard(recipe: ShardRecipe) -> Shard:
    """Build a shard from its recipe (a Dask task: its result stays in the worker's memory)."""
    p = Path(recipe.path)
    if not p.exists():
        raise FileNotFoundError(f"shard file {p} not found on this worker: backend.shard_dir must be a folder "
                                "that every Dask worker can read (a shared filesystem for remote workers)")
    if recipe.kind == "arrays":
        with np.load(p) as z:
            arrays = FitArrays(**{f: np.ascontiguousarray(z[f]) for f in ARRAY_FIELDS})
    elif recipe.kind == "rows":
        from paceui.data.io import load_dataframe
        from paceui.data.nlcache import build_packed_neighbors
        from paceui.fit.arrays import fit_arrays

        frame = load_dataframe(p)
        pack = build_packed_neighbors(list(frame["ase_atoms"]), recipe.cutoff, recipe.elements, use_cache=False,
                                      progress=False)
        arrays = fit_arrays(frame, pack)
    else:
        raise ValueError(f"unknown shard kind {recipe.kind!r}")
    return Shard(recipe.key, arrays, np.repeat(recipe.low, arrays.n_atoms))


def shard_info(shard: Shard) -> dict[str, Any]:
    """Sizes of a loaded shard and the moments (n, mean, M2) of its reference force norms (eV/Å)."""
    a = shard.arrays
    norms = np.linalg.norm(a.f_ref, axis=1)
    mean = float(norms.mean()) if len(norms) else 0.0
    return {"n_struct": a.n_struct, "n_atoms": int(len(a.species)), "n_pairs": int(len(a.nbr_j)),
            "nbytes": shard.nbytes, "moments": (len(norms), mean, float(np.sum((norms - mean) ** 2)))}


@dataclass(frozen=True)
class ModelSpec:
    """The basis and loss weights of the data part (regularisation weights are zero on the workers)."""

    token: str
    potential: Any
    kappa: float
    threads: int = 1


_MODELS: "OrderedDict[str, ACELoss]" = OrderedDict()  # per worker process: the last few bases


def _model(spec: ModelSpec) -> ACELoss:
    loss = _MODELS.get(spec.token)
    if loss is None:
        loss = ACELoss(spec.potential, LossConfig(kappa=spec.kappa))
        _MODELS[spec.token] = loss
        while len(_MODELS) > 4:
            _MODELS.popitem(last=False)
    return loss


def force_stats(df: np.ndarray, low_atoms: np.ndarray) -> dict[str, np.ndarray]:
    """Sums of force errors ``df`` [n, 3] (eV/Å) over all atoms and over the low-energy ones."""
    out = {k: np.zeros(2) for k in STAT_KEYS}
    for col, d in enumerate((df, df[low_atoms])):
        if len(d) == 0:
            continue
        sq = np.sum(d * d, axis=1)
        norm, comp = np.sqrt(sq), np.abs(d)
        for k, v in zip(STAT_KEYS, (len(d), sq.sum(), norm.sum(), comp.sum(), norm.max(), comp.max())):
            out[k][col] = v
    return out


def eval_shard(shard: Shard, spec: ModelSpec, theta: np.ndarray, grad: bool) -> ShardResult:
    """The data part of the loss of one shard at θ (a Dask task, run where the shard lives)."""
    import numba

    t0 = time.perf_counter()
    numba.set_num_threads(max(1, min(spec.threads, numba.config.NUMBA_NUM_THREADS)))
    loss = _model(spec)
    res = loss(np.asarray(theta, dtype=float), shard.arrays, grad=grad)
    stats = force_stats(res.f_pred - shard.arrays.f_ref, shard.low_atoms)
    return ShardResult(res.parts["e_loss"], res.parts["f_loss"], res.grad, res.e_pred, stats,
                       time.perf_counter() - t0)


def predict_shard(shard: Shard, spec: ModelSpec, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Energies (eV), forces (eV/Å) and the shortest pair distance (Å) of each structure of a shard."""
    e, f = _model(spec).predict(np.asarray(theta, dtype=float), shard.arrays)
    return e, f, shortest_pair_distances(shard.arrays)
