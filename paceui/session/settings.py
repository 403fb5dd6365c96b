"""Settings a running session can change, their validation, and what each change invalidates.

A session's settings are pacemaker's input (a plain dict: cutoff, seed, potential, data, fit,
backend) plus session options (``autosave_every``, ``weight_factors``). :func:`plan_change` checks a
change and returns the new settings with a :class:`ChangeReport` that says, in words, what it does:

>>> new, opts, report = plan_change({"cutoff": 5.0, "potential": "p.yaml", "data": {"filename": "x"}, "fit": {}},
...                                 {}, {"kappa": 0.5})
>>> report.kind, report.invalidates, new["fit"]["loss"]
('restart', ('optimizer state',), {'kappa': 0.5})
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from paceui.ace.potential import ACEPotential
from paceui.data import DataConfig, weighting_from_dict
from paceui.errors import SettingsError
from paceui.fit.config import InputConfig, InputError
from paceui.fit.params import ParamMap
from paceui.fit.settings_table import KINDS, SETTINGS, Setting, changeable

_CHANGEABLE = changeable()
LOSS_KEYS = tuple(x.key for x in _CHANGEABLE if x.section_path == "fit.loss")  # the weights of the loss
DATA_KEYS = tuple(x.key for x in _CHANGEABLE if x.section_path == "data")
CHANGEABLE_BACKEND_KEYS = tuple(x.key for x in _CHANGEABLE if x.section_path == "backend")
"""The ``backend:`` keys a session can change (``fit.config.BACKEND_KEYS`` are all the keys input.yaml accepts)."""


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
        return KINDS.index(self.kind) >= KINDS.index("restart")

    @property
    def prepares_data(self) -> bool:
        return KINDS.index(self.kind) >= KINDS.index("data")

    @property
    def rebuilds_neighbors(self) -> bool:
        return self.kind == "neighbors"

    def __str__(self) -> str:
        if self.empty:
            return "no change"
        lines = [f"{k}: {old!r} → {new!r}: {e}" for (k, old, new), e in zip(self.changes, self.effects)]
        lines.append("invalidates: " + (", ".join(self.invalidates) or "nothing"))
        return "\n".join(lines)


_BY_KEY = {x.key: x for x in SETTINGS}


def _place(key: str, new: dict[str, Any], opts: dict[str, Any]) -> dict[str, Any]:
    """The mapping of ``new`` (or of the session options) that holds setting ``key`` (created when absent);
    SettingsError for a fixed or unknown key."""
    row: Setting | None = _BY_KEY.get(key)
    if row is None:
        known = sorted(x.key for x in _CHANGEABLE)
        from paceui._keys import closest

        near = closest(key, known)
        hint = f"did you mean '{near}'? " if near else ""
        raise SettingsError(f"unknown setting {key!r}; {hint}changeable: {', '.join(known)}")
    if row.effect is None:
        raise SettingsError(f"{key} cannot be changed: {row.fixed}")
    parts = row.section_path.split(".") if row.section_path else []
    where = opts if parts[:1] == ["options"] else new
    for part in parts[1:] if parts[:1] == ["options"] else parts:
        cur = where.get(part)
        if cur is None:  # absent, or 'fit: options:' with nothing under it
            where[part] = cur = {}
        elif not isinstance(cur, dict):
            raise SettingsError(f"{key}: {'.'.join(parts)} is {cur!r}, not a mapping")
        where = cur
    return where


def plan_change(settings: Mapping[str, Any], options: Mapping[str, Any], changes: Mapping[str, Any],
                target: ACEPotential | None = None) -> tuple[dict[str, Any], dict[str, Any], ChangeReport]:
    """New (settings, options) with ``changes`` applied, and the report; raises :class:`SettingsError`.

    Keys: those of the settings table with an effect (:func:`paceui.fit.settings_table.changeable`: the loss
    keys (kappa, L1_coeffs, ...) or ``loss={...}``, fit keys, data keys, cutoff (Å), backend keys,
    autosave_every, weight_factors ({structure name: factor})); where each lives and what its change does
    come from the table.
    """
    new, opts = copy.deepcopy(dict(settings)), copy.deepcopy(dict(options))
    new.setdefault("fit", {}).setdefault("loss", {})
    new.setdefault("data", {})
    flat = dict(changes)
    if "loss" in flat:
        if not isinstance(flat["loss"], Mapping):
            raise SettingsError(f"loss must be a mapping of {', '.join(LOSS_KEYS)}, got {flat['loss']!r}")
        flat.update(flat.pop("loss"))
    done: list[tuple[str, Any, Any]] = []
    for key, value in flat.items():
        where = _place(key, new, opts)
        old = where.get(key)
        value = plain_value(value)
        if old == value:
            continue
        where[key] = value
        done.append((key, old, value))
    _validate(new, opts, {k for k, _, _ in done}, target)
    effects = [_BY_KEY[k].effect for k, _, _ in done]
    inval: list[str] = []
    for e in effects:
        assert e is not None
        inval += [x for x in e.invalidates if x not in inval]
    kind = max((e.kind for e in effects if e is not None), key=KINDS.index, default="none")
    return new, opts, ChangeReport(tuple(done), tuple(e.text for e in effects if e is not None), tuple(inval), kind)


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
