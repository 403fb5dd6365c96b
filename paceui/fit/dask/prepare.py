"""Preparing a dataset for a Dask fit without the whole dataset's neighbour lists on the client.

:func:`prepare_on_workers` runs the steps of :func:`paceui.data.prepare_dataset` in the same order with the
same functions (load → validate → reference energy → isolated atoms → split → weights), except that the
neighbour lists needed by the isolated-atom check are built by the Dask workers, chunk by chunk, and
dropped again: the workers return only the isolated-atom reasons and the pair count of each structure
(used to balance the shards). The client holds the structures, energies, forces and weights (the
frames), never the neighbour lists; the workers build those again for their shards.
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

CHUNK_ATOMS = 20000  # atoms per neighbour-list task of the isolated-atom check


def _check_chunk(atoms: list[Any], cutoff: float, elements: tuple[str, ...]) -> tuple[dict[int, str], np.ndarray]:
    """Isolated-atom reasons (chunk positions) and pairs per structure (a Dask task; the lists are dropped)."""
    from paceui.data.nlcache import build_packed_neighbors
    from paceui.data.validate import isolated_atom_reasons

    pack = build_packed_neighbors(atoms, cutoff, elements, use_cache=False, progress=False)
    pairs = pack.nbr_offsets[pack.atom_offsets[1:]] - pack.nbr_offsets[pack.atom_offsets[:-1]]
    return isolated_atom_reasons(pack), np.asarray(pairs, dtype=np.int64)


def _neighbour_check(client: Any, atoms: list[Any], cutoff: float,
                     elements: tuple[str, ...]) -> tuple[dict[int, str], np.ndarray]:
    sizes = np.fromiter((len(a) for a in atoms), dtype=np.int64, count=len(atoms))
    bounds = [0]
    acc = 0
    for s, n in enumerate(sizes):
        acc += int(n)
        if acc >= CHUNK_ATOMS:
            bounds.append(s + 1)
            acc = 0
    if bounds[-1] != len(atoms):
        bounds.append(len(atoms))
    futs = [client.submit(_check_chunk, atoms[a:b], cutoff, elements, pure=False, retries=3)
            for a, b in zip(bounds[:-1], bounds[1:])]
    lonely: dict[int, str] = {}
    pairs = []
    for a, (reasons, p) in zip(bounds[:-1], client.gather(futs)):
        lonely.update({a + k: v for k, v in reasons.items()})
        pairs.append(p)
    return lonely, (np.concatenate(pairs) if pairs else np.zeros(0, dtype=np.int64))


def prepare_on_workers(client: Any, data_config: Mapping[str, Any], elements: Sequence[str], cutoff: float,
                       weighting: Mapping[str, Any] | None, seed: int = 42) -> tuple[Any, dict[str, np.ndarray]]:
    """(PreparedData without neighbour lists, pairs per structure of ``train``/``test``): the frames equal
    those of :func:`paceui.data.prepare_dataset` with the same arguments (``cutoff`` in Å)."""
    from paceui.data import DataConfig, PreparedData
    from paceui.data.prepare import load_joint, split_and_weight
    from paceui.data.reference import DataWarning, apply_reference_energy
    from paceui.data.validate import DropRecord, filter_rows
    from paceui.data.weights import weighting_from_dict

    cfg = DataConfig.from_dict(data_config)
    policy = weighting_from_dict(weighting)
    seed = cfg.seed if cfg.seed is not None else seed
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        joint = load_joint(cfg)
        els = tuple(sorted(set(elements)))
        ecols = [c for c in ("energy_corrected", "energy") if c in joint.columns]
        joint, dropped = filter_rows(joint, els, energy_columns=ecols)
        joint, ref_used = apply_reference_energy(joint, cfg.reference_energy)
        joint, more = filter_rows(joint, els, energy_columns=["energy_corrected"])
        dropped += more
        lonely, pairs = _neighbour_check(client, list(joint["ase_atoms"]), float(cutoff), els)
        if lonely:
            dropped += [DropRecord(joint.index[p], str(joint["name"].iloc[p]), r) for p, r in sorted(lonely.items())]
            keep = np.setdiff1d(np.arange(len(joint)), np.fromiter(lonely, dtype=np.int64))
            joint, pairs = joint.iloc[keep].copy(), pairs[keep]
        train, test, _, more = split_and_weight(joint, cfg, policy, seed)
        dropped += more
    msgs = tuple(str(w.message) for w in caught if issubclass(w.category, DataWarning))
    for w in caught:  # as prepare_dataset: recorded, then shown
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    pos = pd.Series(np.arange(len(joint)), index=joint.index)
    counts = {"train": pairs[pos[train.index].to_numpy()]}
    if test is not None:
        counts["test"] = pairs[pos[test.index].to_numpy()]
    prepared = PreparedData(train, test, els, ref_used, tuple(dropped), cfg, float(cutoff), None, None, msgs)
    return prepared, counts


def prepare_for_dask(cfg: Any, data_cfg: Mapping[str, Any], target: Any) -> tuple[Any, Any]:
    """``paceui fit`` with ``backend: {evaluator: dask}``: the prepared frames (no neighbour lists) and a
    :class:`~paceui.fit.dask.evaluator.DaskEvaluator` whose workers built their shards' neighbour lists."""
    from paceui.fit.dask.evaluator import DaskBackend, DaskEvaluator

    be = DaskBackend.acquire(cfg.backend)
    try:
        prepared, pairs = prepare_on_workers(be.client, data_cfg, target.elements, target.cutoff, cfg.fit.weighting,
                                             cfg.seed)
        ev = DaskEvaluator.from_frames(cfg.backend, prepared.train, prepared.test, target.cutoff, prepared.elements,
                                       pairs=pairs)
    finally:
        be.release()  # the evaluator holds its own use of the backend
    return prepared, ev


def predictions(pot: Any, frame: pd.DataFrame, handle: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any]:
    """(E per structure in eV, forces [N, 3] in eV/Å, shortest pair distance in Å, reference arrays) of a
    sharded set, computed on the workers and gathered once, for the prediction files of a run."""
    from types import SimpleNamespace

    e, f, nn = handle.evaluator.predict(pot, handle)
    nat = frame["ase_atoms"].map(len).to_numpy(np.int64)
    ref = SimpleNamespace(e_ref=frame["energy_corrected"].to_numpy(float), n_atoms=nat,
                          f_ref=np.concatenate([np.asarray(x, float).reshape(-1, 3) for x in frame["forces"]]))
    return e, f, nn, ref
