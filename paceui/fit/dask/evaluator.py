"""Data-parallel loss and gradient on a Dask (dask.distributed) cluster: ``backend: {evaluator: dask}``.

The training (and test) structures are split into shards of about equal work (atoms and neighbour pairs);
each shard is the result of a Dask task held by the client, so it lives in one worker's memory and Dask
recomputes it from its recipe (a file every worker can read, see :mod:`paceui.fit.dask.shards`)
when that worker dies. An evaluation sends θ with one small task per shard and gets back the shard's
loss sums, gradient, per-structure energies (eV) and force-error sums; the client adds the sums (in shard
order, so results do not depend on which worker ran what), adds the regularisation once and builds the
metrics. The optimizer, ladder, cycles, callbacks and the session stay on the client.

What the client keeps per data set: per-structure reference energies, weights and sizes, the structure
→ shard map and the low-energy flags (small); the per-atom arrays and neighbour lists live on the workers.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from paceui.ace.potential import ACEPotential
from paceui.errors import DistributedError
from paceui.fit.arrays import FitArrays
from paceui.fit.config import BackendConfig
from paceui.fit.dask.shards import (
    STAT_KEYS,
    ModelSpec,
    ShardRecipe,
    eval_shard,
    load_shard,
    partition,
    shard_info,
    write_arrays_recipe,
    write_rows_recipe,
)
from paceui.fit.loss import ACELoss, LossConfig, LossResult
from paceui.fit.metrics import low_energy_mask

LOG = logging.getLogger("paceui.fit")
RETRIES = 3  # re-runs of a shard task that raised (a dead worker is handled by the scheduler)
SCATTER_BYTES = 1 << 18  # a θ larger than this is broadcast to the workers once, not sent with every task


class DaskBackend:
    """A Dask client, and the ``LocalCluster`` it started for ``scheduler: local``; shared (with a use
    count) by the fitters of one process that name the same scheduler, workers and threads."""

    _open: dict[tuple[Any, ...], "DaskBackend"] = {}
    _lock = threading.Lock()

    def __init__(self, cfg: BackendConfig) -> None:
        from distributed import Client, LocalCluster

        self.key, self.users, self.cluster = _backend_key(cfg), 0, None
        self.threads = int(cfg.threads_per_worker or 1)
        if cfg.scheduler in (None, "local"):
            self.cluster = LocalCluster(n_workers=cfg.n_workers, threads_per_worker=self.threads, processes=True,
                                        dashboard_address=":0", scheduler_kwargs={"dashboard": False},
                                        silence_logs=logging.ERROR)
            self.client = Client(self.cluster)
        else:
            try:
                self.client = Client(str(cfg.scheduler), timeout="30s")
            except OSError as exc:
                raise DistributedError(f"backend.scheduler: cannot connect to the Dask scheduler at "
                                       f"{cfg.scheduler!r}: {exc}") from exc

    @classmethod
    def acquire(cls, cfg: BackendConfig) -> "DaskBackend":
        """The open backend for these settings, or a new one."""
        key = _backend_key(cfg)
        with cls._lock:
            be = cls._open.get(key)
            if be is None:
                be = cls._open[key] = cls(cfg)
            be.users += 1
            return be

    def release(self) -> None:
        """One user less; the last one closes the client and the local cluster."""
        with self._lock:
            self.users -= 1
            if self.users > 0:
                return
            self._open.pop(self.key, None)
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def workers(self) -> list[str]:
        """Addresses of the workers now connected (sorted)."""
        return sorted(self.client.scheduler_info()["workers"])


def _backend_key(cfg: BackendConfig) -> tuple[Any, ...]:
    return (cfg.scheduler or "local", cfg.n_workers, cfg.threads_per_worker)


@dataclass(eq=False)
class ShardedSet:
    """Client handle of one sharded data set: what the fitter and the metrics need on the client
    (per-structure energies in eV, weights, sizes), the shards' recipes and the futures of their data."""

    evaluator: "DaskEvaluator"
    name: str
    index: list[np.ndarray]        # structure positions of each shard
    recipes: list[ShardRecipe]
    futures: list[Any]             # distributed.Future of each loaded shard
    e_ref: np.ndarray              # [S] eV
    w_e: np.ndarray                # [S]
    n_atoms: np.ndarray            # [S]
    info: list[dict[str, Any]]     # per shard: sizes, bytes, force-norm moments
    source: FitArrays | None = None  # the client's arrays it was made from (None when built on the workers)

    @property
    def n_struct(self) -> int:
        return len(self.e_ref)

    @property
    def struct_off(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.n_atoms)]).astype(np.int64)

    def force_norm_var(self) -> float:
        """Population variance of the reference force norms (eV/Å)², combined from the shards' moments."""
        n, mean, m2 = 0, 0.0, 0.0
        for k, mk, m2k in (i["moments"] for i in self.info):
            if k == 0:
                continue
            d, tot = mk - mean, n + k
            mean, m2, n = mean + d * k / tot, m2 + m2k + d * d * n * k / tot, tot
        return m2 / n if n else 0.0


class DaskEvaluator:
    """Shards a train (and test) set over a Dask cluster and evaluates losses on it.

    ``train``/``test``: the client's :class:`FitArrays` (written to shard files) — or use
    :meth:`from_frames` so that the workers build the neighbour lists. ``workers``: the workers to place
    shards on (default: all; one shard per worker).
    """

    def __init__(self, cfg: BackendConfig, workers: list[str] | None = None) -> None:
        self.cfg, self.backend = cfg, DaskBackend.acquire(cfg)
        self.client, self._closed, self.uid = self.backend.client, False, uuid.uuid4().hex[:10]
        self._own_dir = cfg.shard_dir is None
        self.folder = Path(tempfile.mkdtemp(prefix="paceui-shards-") if self._own_dir else cfg.shard_dir)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.workers = list(workers) if workers else self.backend.workers()
        if not self.workers:
            self.close()
            raise DistributedError(f"no Dask workers connected to {cfg.scheduler or 'the local cluster'}")
        self.train: ShardedSet | None = None
        self.test: ShardedSet | None = None

    @classmethod
    def from_arrays(cls, cfg: BackendConfig, train: FitArrays, test: FitArrays | None,
                    workers: list[str] | None = None) -> "DaskEvaluator":
        """Shards of the client's packed arrays (one file per shard)."""
        ev = cls(cfg, workers)
        try:
            for name, a in (("train", train), ("test", test)):
                if a is None or a.n_struct == 0:
                    continue
                pairs = a.nbr_off[a.struct_off[1:]] - a.nbr_off[a.struct_off[:-1]]
                low = low_energy_mask(a.e_ref / a.n_atoms)
                sels = partition(a.n_atoms, pairs, len(ev.workers))
                recipes = [write_arrays_recipe(a, s, low, ev.folder, f"{ev.uid}-{name}-{k}")
                           for k, s in enumerate(sels)]
                setattr(ev, name, ev._load(name, sels, recipes, a.e_ref, a.w_e, a.n_atoms, a))
        except BaseException:
            ev.close()
            raise
        return ev

    @classmethod
    def from_frames(cls, cfg: BackendConfig, train: Any, test: Any, cutoff: float, elements: tuple[str, ...],
                    workers: list[str] | None = None, pairs: dict[str, np.ndarray] | None = None) -> "DaskEvaluator":
        """Shards of prepared frames (``paceui.data.prepare_dataset`` rows with weights); the workers read
        their rows and build the neighbour lists (cutoff in Å), the client never holds them. ``pairs``:
        neighbour pairs per structure of ``train``/``test`` for the balance (else atoms only)."""
        ev = cls(cfg, workers)
        try:
            for name, fr in (("train", train), ("test", test)):
                if fr is None or len(fr) == 0:
                    continue
                nat = fr["ase_atoms"].map(len).to_numpy(np.int64)
                e_ref = fr["energy_corrected"].to_numpy(float)
                sels = partition(nat, (pairs or {}).get(name), len(ev.workers))
                low = low_energy_mask(e_ref / nat)
                recipes = [write_rows_recipe(fr, s, low, ev.folder, f"{ev.uid}-{name}-{k}", cutoff, elements)
                           for k, s in enumerate(sels)]
                setattr(ev, name, ev._load(name, sels, recipes, e_ref, fr["w_energy"].to_numpy(float), nat, None))
        except BaseException:
            ev.close()
            raise
        return ev

    def _load(self, name: str, sels: list[np.ndarray], recipes: list[ShardRecipe], e_ref: np.ndarray,
              w_e: np.ndarray, nat: np.ndarray, source: FitArrays | None) -> ShardedSet:
        futs = [self._submit_shard(r, k) for k, r in enumerate(recipes)]
        info = self.gather([self.client.submit(shard_info, f, pure=False) for f in futs],
                           f"loading the {name} shards")
        return ShardedSet(self, name, sels, recipes, futs, np.asarray(e_ref, float), np.asarray(w_e, float),
                          np.asarray(nat, np.int64), info, source)

    def _submit_shard(self, recipe: ShardRecipe, k: int) -> Any:
        """Load shard ``k`` on its worker (others if that one is gone); Dask reruns it if its worker dies."""
        return self.client.submit(load_shard, recipe, key=f"paceui-shard-{recipe.key}-{uuid.uuid4().hex[:8]}",
                                  workers=[self.workers[k % len(self.workers)]], allow_other_workers=True,
                                  retries=RETRIES, pure=False)

    def _heal(self, data: ShardedSet) -> None:
        """Submit again, from their recipes, the shards whose loading failed (e.g. a file that was missing)."""
        for k, fut in enumerate(data.futures):
            if fut.status in ("error", "cancelled"):
                data.futures[k] = self._submit_shard(data.recipes[k], k)

    def gather(self, futures: list[Any], what: str) -> list[Any]:
        """Results of ``futures``; a failure becomes a :class:`DistributedError` saying what failed."""
        if self._closed:
            raise DistributedError("the Dask evaluator is closed")
        try:
            return self.client.gather(futures)
        except Exception as exc:
            raise DistributedError(f"dask backend: {what} failed ({type(exc).__name__}: {exc}); the fit state "
                                   "is unchanged and the fit can be resumed once the cluster is healthy") from exc

    def submit(self, spec: Any, theta: np.ndarray, data: ShardedSet, grad: bool) -> list[Any]:
        """Futures of the shard results at θ, in shard order (``spec``: the future of a :class:`ModelSpec`);
        a small θ travels inside each shard's task, a large one is broadcast once per evaluation."""
        th: Any = np.ascontiguousarray(theta, dtype=float)
        self._heal(data)
        if th.nbytes > SCATTER_BYTES:
            th = self.client.scatter(th, broadcast=True, hash=False)
        return [self.client.submit(eval_shard, f, spec, th, grad, pure=False, retries=RETRIES,
                                   key=f"paceui-eval-{data.name}-{k}-{uuid.uuid4().hex}")
                for k, f in enumerate(data.futures)]

    def evaluate(self, spec: Any, theta: np.ndarray, data: ShardedSet, grad: bool) -> list[Any]:
        """Shard results at θ, in shard order."""
        return self.gather(self.submit(spec, theta, data, grad), f"evaluating the {data.name} shards")

    def predict(self, potential: ACEPotential, data: ShardedSet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Energies (eV) per structure, forces [N, 3] (eV/Å) in structure order and the shortest pair
        distance (Å) per structure, gathered once (for the prediction files at the end of a run)."""
        from paceui.fit.dask.shards import predict_shard

        self._heal(data)
        spec = self.model(potential, 0.0)
        theta = ACELoss(potential, LossConfig()).pmap.get(potential)
        got = self.gather([self.client.submit(predict_shard, f, spec, theta, pure=False, retries=RETRIES)
                            for f in data.futures], f"predicting the {data.name} shards")
        e, nn = np.zeros(data.n_struct), np.full(data.n_struct, np.nan)
        f = np.zeros((int(data.n_atoms.sum()), 3))
        off = data.struct_off
        for sel, (es, fs, ns) in zip(data.index, got):
            e[sel], nn[sel] = es, ns
            rows = np.concatenate([np.arange(off[s], off[s + 1]) for s in sel])
            f[rows] = fs
        return e, f, nn

    def model(self, potential: ACEPotential, kappa: float) -> Any:
        """Future of the workers' model (basis and κ); fetched once per worker."""
        token = uuid.uuid4().hex
        return self.client.submit(ModelSpec, token, potential.copy(), float(kappa), self.backend.threads,
                                  key=f"paceui-model-{token}", pure=False)

    def loss(self, potential: ACEPotential, cfg: LossConfig) -> "DistributedLoss":
        return DistributedLoss(self, potential, cfg)

    def matches(self, cfg: BackendConfig, train: Any, test: Any) -> bool:
        """Whether this evaluator already serves these settings and data sets."""
        same = lambda h, d: (h is None and d is None) or (h is not None and (d is h or d is h.source))  # noqa: E731
        return not self._closed and _backend_key(cfg) == self.backend.key and cfg.shard_dir == self.cfg.shard_dir \
            and same(self.train, train) and same(self.test, test if test is None or test.n_struct else None)

    def worker_memory(self) -> dict[str, int]:
        """Resident memory (bytes) of each worker process."""
        import psutil

        return self.client.run(lambda: psutil.Process().memory_info().rss)

    def close(self) -> None:
        """Drop the shards, their files (when in a temporary folder) and this user of the backend."""
        if self._closed:
            return
        self._closed = True
        for h in (self.train, self.test):
            if h is not None:
                h.futures.clear()
        if self._own_dir:
            shutil.rmtree(self.folder, ignore_errors=True)
        self.backend.release()


def _empty() -> FitArrays:
    z, zi = np.zeros(0), np.zeros(0, dtype=np.int64)
    return FitArrays(np.zeros(1, dtype=np.int64), zi, np.zeros(1, dtype=np.int64), zi, np.zeros((0, 3)), z,
                     np.zeros((0, 3)), z, z)


class DistributedLoss:
    """:class:`ACELoss`'s interface for the fitter, evaluated on the shards of a :class:`ShardedSet`."""

    def __init__(self, evaluator: DaskEvaluator, potential: ACEPotential, cfg: LossConfig) -> None:
        self.evaluator, self.potential = evaluator, potential.copy()
        self.local = ACELoss(potential, cfg)  # regularisation only (on no structures)
        self.pmap = self.local.pmap
        self._spec: Any = None
        self._kappa: float | None = None

    @property
    def cfg(self) -> LossConfig:
        return self.local.cfg

    @cfg.setter
    def cfg(self, value: LossConfig) -> None:
        self.local.cfg = value

    def _model(self) -> Any:
        if self._spec is None or self._kappa != self.cfg.kappa:
            self._kappa, self._spec = self.cfg.kappa, self.evaluator.model(self.potential, self.cfg.kappa)
        return self._spec

    def __call__(self, theta: np.ndarray, data: ShardedSet, grad: bool = True) -> LossResult:
        """Loss, gradient and parts as :meth:`ACELoss.__call__`; ``f_pred`` is empty and ``extra`` holds
        ``force_stats`` (sums over the shards) for the metrics."""
        t0 = time.perf_counter()
        if not isinstance(data, ShardedSet):
            raise TypeError("the dask evaluator works on sharded data sets (ShardedSet), got "
                            f"{type(data).__name__}")
        futures = self.evaluator.submit(self._model(), theta, data, grad)
        reg = self.local(np.asarray(theta, dtype=float), _empty(), grad=grad)  # while the workers compute
        results = self.evaluator.gather(futures, f"evaluating the {data.name} shards")
        e_pred = np.zeros(data.n_struct)
        for sel, r in zip(data.index, results):
            e_pred[sel] = r.e_pred
        e_loss, f_loss = sum(r.e_loss for r in results), sum(r.f_loss for r in results)
        k = self.cfg.kappa
        parts = {**reg.parts, "e_loss": e_loss, "f_loss": f_loss, "e_loss_contrib": (1 - k) * e_loss,
                 "f_loss_contrib": k * f_loss}
        g = None
        if grad:
            g = np.zeros(self.pmap.size)
            for r in results:
                g += r.grad
            g = g + reg.grad
        stats = {key: np.zeros(2) for key in STAT_KEYS}
        for r in results:
            for key in STAT_KEYS:
                agg = np.maximum if key.startswith("max") else np.add
                stats[key] = agg(stats[key], r.force_stats[key])
        loss = parts["e_loss_contrib"] + parts["f_loss_contrib"] + parts["reg_loss"]
        return LossResult(loss, g, parts, e_pred, np.zeros((0, 3)), time.perf_counter() - t0,
                          {"force_stats": stats, "shard_seconds": [r.seconds for r in results]})

    def residuals(self, theta: np.ndarray, data: Any) -> np.ndarray:
        raise DistributedError("least-squares optimizers need all residuals on the client; the dask evaluator "
                               "supports the gradient optimizers (BFGS, L-BFGS-B, ...)")

    residuals_vjp = residuals
