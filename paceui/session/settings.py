"""Settings a running session can change, their validation, and what each change invalidates.

A session's settings are pacemaker's input (a plain dict: cutoff, seed, potential, data, fit,
backend) plus session options (``autosave_every``, ``weight_factors``). :func:`plan_change` checks a
change and returns the new settings with a :class:`ChangeReport` that says, in words, what it does:

>>> new, opts, report = plan_change({"cutoff": 5.0, "potential": {}, "data": {"filename": "x"}, "fit": {}},
...                                 {}, {"kappa": 0.5})
>>> report.kind, report.invalidates, new["fit"]["loss"]
('restart', ('optimizer state',), {'kappa': 0.5})
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from paceui.ace.potential import ACEPotential
from paceui.data import DataConfig, weighting_from_dict
from paceui.errors import SettingsError
from paceui.fit.config import InputConfig, InputError
from paceui.fit.loss import LossConfig
from paceui.fit.params import ParamMap

LOSS_KEYS = tuple(f.name for f in dataclasses.fields(LossConfig))  # the weights of the loss (one list: LossConfig)
DATA_KEYS = ("test_size", "reference_energy", "aug_factor", "ignore_weights", "group_weights", "split_by_group",
             "group_key", "group_patterns")
CHANGEABLE_BACKEND_KEYS = ("evaluator", "scheduler", "n_workers", "threads_per_worker", "shard_dir")
"""The ``backend:`` keys a session can change (``fit.config.BACKEND_KEYS`` are all the keys input.yaml accepts)."""
_RESTART = "the optimizer restarts (a new cycle) from the current parameters"
_EFFECTS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    # key: (kind, what it does, what it invalidates); kinds: none, rebuild (same optimizer state, new
    # options), restart (fresh optimizer), data (prepare the dataset again), neighbors (+ new cutoff)
    "loss": ("restart", f"the loss changes: {_RESTART}; loss values before and after the change are not "
             "comparable", ("optimizer state",)),
    "optimizer": ("restart", _RESTART, ("optimizer state",)),
    "options": ("restart", _RESTART, ("optimizer state",)),
    "trainable_parameters": ("restart", f"the set of trained parameters changes: {_RESTART}", ("optimizer state",)),
    "maxiter": ("rebuild", "the current cycle goes on under the new iteration limit (optimizer state kept)", ()),
    "fit_cycles": ("none", "the current and later ladder steps run this many cycles", ()),
    "noise_relative_sigma": ("none", "applies from the next cycle", ()),
    "noise_absolute_sigma": ("none", "applies from the next cycle", ()),
    "randomize_func_coeffs": ("none", "applies from the next cycle", ()),
    "min_relative_train_loss_per_iter": ("none", "early stopping checks use it from the next iteration", ()),
    "min_relative_test_loss_per_iter": ("none", "early stopping checks use it from the next iteration", ()),
    "early_stopping_patience": ("none", "early stopping checks use it from the next iteration", ()),
    "ladder_step": ("none", "applies from the next ladder step", ()),
    "ladder_type": ("none", "applies from the next ladder step", ()),
    "weighting": ("data", f"the dataset is prepared again (weights and selected structures); {_RESTART}; "
                  "metrics before and after are not comparable", ("data weights", "optimizer state")),
    "data": ("data", f"the dataset is prepared again (split, reference energies, weights); {_RESTART}; "
             "metrics before and after are not comparable", ("train/test split", "data weights", "optimizer state")),
    "weight_factors": ("data", f"per-structure weights change (weights normalised again); {_RESTART}",
                       ("data weights", "optimizer state")),
    "cutoff": ("neighbors", f"the radial cutoff rcut of every bond changes and the neighbour lists are rebuilt "
               f"(from the cache when possible); {_RESTART}", ("neighbour lists", "radial basis", "optimizer state")),
    "display_step": ("none", "test metrics every display_step iterations from now on", ()),
    "backend": ("rebuild", "the evaluator is built again (numba in this process, or Dask workers that load the "
                "shards); the fit goes on from the same parameters and optimizer state", ()),
    "autosave_every": ("none", "autosave interval from now on (0: only on pause, stop and finish)", ()),
}
_KINDS = ("none", "rebuild", "restart", "data", "neighbors")
FIXED = {"potential": "the basis is fixed for a session: create a new session for another basis",
         "elements": "the basis is fixed for a session: create a new session for other elements",
         "filename": "the dataset is fixed for a session: create a new session for other data",
         "test_filename": "the dataset is fixed for a session: create a new session for other data",
         "callbacks": "callbacks are fixed when the session is created",
         "seed": "the seed is fixed for a session (split and weights depend on it)"}


@dataclass(frozen=True)
class ChangeReport:
    """What a settings change does (``str()`` gives it in words)."""

    changes: tuple[tuple[str, Any, Any], ...] = ()   # (key, old, new)
    effects: tuple[str, ...] = ()                    # one sentence per changed key
    invalidates: tuple[str, ...] = ()
    kind: str = "none"                               # the strongest: none < rebuild < restart < data < neighbors

    @property
    def empty(self) -> bool:
        return not self.changes

    @property
    def restarts_optimizer(self) -> bool:
        return _KINDS.index(self.kind) >= _KINDS.index("restart")

    @property
    def prepares_data(self) -> bool:
        return _KINDS.index(self.kind) >= _KINDS.index("data")

    @property
    def rebuilds_neighbors(self) -> bool:
        return self.kind == "neighbors"

    def __str__(self) -> str:
        if self.empty:
            return "no change"
        lines = [f"{k}: {old!r} → {new!r}: {e}" for (k, old, new), e in zip(self.changes, self.effects)]
        lines.append("invalidates: " + (", ".join(self.invalidates) or "nothing"))
        return "\n".join(lines)


def _effect_key(key: str) -> str:
    if key in LOSS_KEYS or key in DATA_KEYS:
        return "loss" if key in LOSS_KEYS else "data"
    return "backend" if key in CHANGEABLE_BACKEND_KEYS else key


def plan_change(settings: Mapping[str, Any], options: Mapping[str, Any], changes: Mapping[str, Any],
                target: ACEPotential | None = None) -> tuple[dict[str, Any], dict[str, Any], ChangeReport]:
    """New (settings, options) with ``changes`` applied, and the report; raises :class:`SettingsError`.

    Keys: the loss keys (kappa, L1_coeffs, ...) or ``loss={...}``; fit keys (optimizer, options,
    maxiter, fit_cycles, noise_*, ladder_*, early stopping, trainable_parameters, weighting); data
    keys (test_size, reference_energy, aug_factor, ignore_weights); cutoff (Å); display_step; backend keys
    (evaluator numba|dask, scheduler, n_workers, threads_per_worker, shard_dir);
    autosave_every; weight_factors ({structure name: factor}).
    """
    new, opts = copy.deepcopy(dict(settings)), copy.deepcopy(dict(options))
    fit, data = new.setdefault("fit", {}), new.setdefault("data", {})
    loss = fit.setdefault("loss", {})
    flat = dict(changes)
    if "loss" in flat:
        if not isinstance(flat["loss"], Mapping):
            raise SettingsError(f"loss must be a mapping of {', '.join(LOSS_KEYS)}, got {flat['loss']!r}")
        flat.update(flat.pop("loss"))
    done: list[tuple[str, Any, Any]] = []
    for key, value in flat.items():
        if key in FIXED:
            raise SettingsError(f"{key} cannot be changed: {FIXED[key]}")
        if key in LOSS_KEYS:
            where = loss
        elif key in DATA_KEYS:
            where = data
        elif key == "cutoff":
            where = new
        elif key == "display_step" or key in CHANGEABLE_BACKEND_KEYS:
            where = new.setdefault("backend", {})
        elif key in ("autosave_every", "weight_factors"):
            where = opts
        elif key in _EFFECTS:
            where = fit
        else:
            known = sorted(set(_EFFECTS) - {"loss", "data", "backend"} | set(LOSS_KEYS) | set(DATA_KEYS)
                           | set(CHANGEABLE_BACKEND_KEYS))
            from paceui._keys import closest

            near = closest(key, known)
            hint = f"did you mean '{near}'? " if near else ""
            raise SettingsError(f"unknown setting {key!r}; {hint}changeable: {', '.join(known)}")
        old = where.get(key)
        value = plain_value(value)
        if old == value:
            continue
        where[key] = value
        done.append((key, old, value))
    _validate(new, opts, {k for k, _, _ in done}, target)
    kinds = [_EFFECTS[_effect_key(k)] for k, _, _ in done]
    inval: list[str] = []
    for _, _, inv in kinds:
        inval += [x for x in inv if x not in inval]
    kind = max((k for k, _, _ in kinds), key=_KINDS.index, default="none")
    return new, opts, ChangeReport(tuple(done), tuple(e for _, e, _ in kinds), tuple(inval), kind)


def plain_value(v: Any) -> Any:
    """Tuples as lists, numpy scalars as Python numbers (settings stay YAML-able)."""
    if isinstance(v, Mapping):
        return {str(k): plain_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain_value(x) for x in v]
    return v.item() if isinstance(v, np.generic) else v


def _validate(new: dict[str, Any], opts: dict[str, Any], keys: set[str], target: ACEPotential | None) -> None:
    try:
        cfg = InputConfig.from_dict(new, source="settings")
    except (InputError, TypeError, ValueError) as exc:
        raise SettingsError(str(exc)) from None
    for k, v in cfg.fit.loss.items():
        if k == "kappa" and v == "auto":
            continue
        if not math.isfinite(v) or v < 0 or (k == "kappa" and v > 1):
            raise SettingsError(f"{k} must be {'in [0, 1]' if k == 'kappa' else 'a finite number >= 0'}, got {v!r}")
    if keys & {"optimizer", "options"}:
        _check_optimizer(cfg.fit.optimizer, cfg.fit.options)
    if "weighting" in keys:
        try:
            weighting_from_dict(cfg.fit.weighting)
        except (TypeError, ValueError) as exc:
            raise SettingsError(str(exc)) from None
    if keys & set(DATA_KEYS):
        try:
            DataConfig.from_dict(new["data"])
        except (TypeError, ValueError) as exc:
            raise SettingsError(str(exc)) from None
    if "cutoff" in keys and not (math.isfinite(cfg.cutoff) and cfg.cutoff > 0.5):
        raise SettingsError(f"cutoff must be a length in Å above 0.5, got {cfg.cutoff!r}")
    if "trainable_parameters" in keys and target is not None:
        try:
            ParamMap.from_potential(target).trainable_mask(cfg.fit.trainable_parameters)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
    a = opts.get("autosave_every", 0)
    if isinstance(a, bool) or not isinstance(a, int) or a < 0:
        raise SettingsError(f"autosave_every must be an integer >= 0 (iterations), got {a!r}")
    wf = opts.get("weight_factors") or {}
    if not isinstance(wf, Mapping) or not all(isinstance(x, (int, float)) and math.isfinite(x) and x >= 0
                                              for x in wf.values()):
        raise SettingsError(f"weight_factors must map structure names to finite factors >= 0, got {wf!r}")


def _check_optimizer(name: str, options: Any) -> None:
    from paceui.fit.linear_solve import solver_name
    from paceui.fit.optim import make_stepper

    if solver_name(name) is not None:  # linear | bayesian_ridge | ard: an exact solve, no stepper
        return

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        return float(x @ x), 2 * x

    try:
        st = make_stepper(name, fun, np.ones(2), options, 1, residuals=lambda x: x, jac_t=lambda x, y: y)
        st.close()
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"optimizer {name!r}: {exc}") from None
