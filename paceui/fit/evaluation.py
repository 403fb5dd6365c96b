"""Where the fitter's losses are evaluated: in this process (:class:`ACELoss` on :class:`FitArrays`) or on
a Dask cluster (``backend: {evaluator: dask}``, :mod:`paceui.fit.dask.evaluator`), and the metrics of either.

:func:`attach` gives the fitter its data sets for the backend (the client's arrays, or handles of their
shards), :func:`make_loss` the loss object, :func:`fit_metrics` the metrics of one evaluation; all three
are the same for both engines from the fitter's side.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from paceui.ace.potential import ACEPotential
from paceui.fit.arrays import FitArrays
from paceui.fit.config import BackendConfig
from paceui.fit.loss import ACELoss, LossConfig, LossResult
from paceui.fit.metrics import (
    REG_KEYS,
    FitMetrics,
    compute_metrics,
    energy_stats,
    force_stats_from_sums,
    low_energy_mask,
)


def resolve_kappa(kappa: Any, data: Any) -> float:
    """κ as given, or ``auto``: σ_E²/(σ_E²+σ_F²) from the training energies per atom and force norms."""
    if kappa != "auto":
        return float(kappa if kappa is not None else 0.0)
    epa = data.e_ref / data.n_atoms
    se2 = float(np.var(epa, ddof=1)) if len(epa) > 1 else 0.0
    if hasattr(data, "force_norm_var"):  # sharded: combined from the shards' moments
        sf2 = float(data.force_norm_var())
    else:
        sf2 = float(np.var(np.linalg.norm(data.f_ref, axis=1))) if len(data.f_ref) else 0.0
    return se2 / (se2 + sf2) if se2 + sf2 > 0 else 0.0


def attach(backend: BackendConfig, train: Any, test: Any, current: Any = None) -> tuple[Any, Any, Any]:
    """(train, test, evaluator) for ``backend``: the arrays as they are and no evaluator in process;
    handles of shards for ``dask`` (``current`` is kept when it already serves these data, else closed)."""
    if backend.evaluator != "dask":
        if current is not None:
            current.close()
        src = [getattr(d, "source", d) if d is not None and not isinstance(d, FitArrays) else d for d in (train, test)]
        if src[0] is None:
            raise ValueError("these data were sharded on Dask workers (no client copy): backend.evaluator must "
                             "stay 'dask'")
        return src[0], src[1], None
    from paceui.fit.dask.evaluator import DaskEvaluator, ShardedSet

    if isinstance(train, ShardedSet) and current is None:
        current = train.evaluator
    if current is not None and current.matches(backend, train, test):
        return current.train, current.test, current
    if current is not None:
        current.close()
    src = [getattr(d, "source", d) for d in (train, test)]
    if src[0] is None:
        raise ValueError("sharded data without a client copy cannot move to another cluster")
    ev = DaskEvaluator.from_arrays(backend, src[0], src[1] if src[1] is not None and src[1].n_struct else None)
    return ev.train, ev.test, ev


def make_loss(potential: ACEPotential, cfg: LossConfig, evaluator: Any) -> Any:
    """The fitter's loss for ``potential``: in process, or on the evaluator's cluster."""
    return ACELoss(potential, cfg) if evaluator is None else evaluator.loss(potential, cfg)


def fit_metrics(res: LossResult, data: Any, kappa: float, nfuncs: int, ncoefs: int) -> FitMetrics:
    """Metrics of one evaluation ``res`` on ``data`` (eV/atom, eV/Å); a sharded evaluation's force errors
    come as sums (``res.extra['force_stats']``), everything else as in :func:`compute_metrics`."""
    from paceui.fit.dask.shards import STAT_KEYS  # the order of force_stats_from_sums' arguments

    reg = {k: res.parts[k] for k in REG_KEYS.values()}
    if "force_stats" not in res.extra:
        return compute_metrics(res.e_pred, data.e_ref, data.n_atoms, res.f_pred, data.f_ref, data.w_e, data.w_f,
                               kappa, reg=reg, nfuncs=nfuncs, ncoefs=ncoefs)
    nat = np.asarray(data.n_atoms, dtype=np.int64)
    de = (np.asarray(res.e_pred, float) - data.e_ref) / nat
    low = low_energy_mask(data.e_ref / nat)
    e_loss, f_loss = float(np.sum(data.w_e * de * de)), float(res.parts["f_loss"])
    reg_vals = {k: float(v) for k, v in reg.items()}
    reg_loss = float(sum(reg_vals.values()))
    out: dict[str, Any] = {}
    st = res.extra["force_stats"]
    for col, prefix, d in ((0, "", de), (1, "low_", de[low])):
        out.update(zip((f"{prefix}rmse_epa", f"{prefix}mae_epa", f"{prefix}max_abs_epa"), energy_stats(d)))
        fs = force_stats_from_sums(*(float(st[k][col]) for k in STAT_KEYS))
        out.update({prefix + k: v for k, v in fs.items()})
    e_c, f_c = (1.0 - kappa) * e_loss, kappa * f_loss
    return FitMetrics(loss=e_c + f_c + reg_loss, e_loss=e_loss, f_loss=f_loss, e_loss_contrib=e_c, f_loss_contrib=f_c,
                      reg_loss=reg_loss, kappa=float(kappa), nfuncs=int(nfuncs), ncoefs=int(ncoefs),
                      n_structures=len(nat), n_atoms=int(st["n"][0]), n_low_structures=int(low.sum()),
                      n_low_atoms=int(st["n"][1]), **reg_vals, **out)
