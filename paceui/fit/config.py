"""pacemaker's ``input.yaml`` as frozen dataclasses (pacemaker's keys and defaults), with validation.

Every key pacemaker documents is accepted with its default; unknown keys are refused with a message
naming the file and the key, since a typo would otherwise silently fall back to a default. YAML 1.1
reads ``1e-8`` as a string: numbers given that way are converted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from paceui._keys import NoEffectWarning, check_keys
from paceui.ace.yaml_io import load_yaml_file
from paceui.errors import InputError
from paceui.fit.settings_table import keys_in

TOP_KEYS = keys_in("") | {"data", "fit", "backend"}
FIT_KEYS = keys_in("fit") | {"loss"}
BACKEND_KEYS = keys_in("backend")
"""Implemented ``backend:`` keys; pacemaker's others (batch_size, gpu_config, ...) warn: see paceui._keys."""
DASK_ONLY_KEYS = ("n_workers", "threads_per_worker", "scheduler", "shard_dir")
LOSS_KEYS = keys_in("fit.loss")  # stress: paceui's stress-term weight λ_σ (default 0: pacemaker's loss)
"""The keys of each section, from the one settings table (:mod:`paceui.fit.settings_table`)."""


def _check_keys(d: Any, known: set[str], section: str, src: str, no_effect: str | None = None) -> None:
    """Refuse a non-mapping section or keys it does not know (a typo must not fall back to a default)."""
    check_keys(d, known, section, src, error=InputError, no_effect=no_effect)


def _in_range(v: float, where: str, lo: float | None = None, hi: float | None = None, open_lo: bool = False) -> float:
    """``v`` when finite and inside [lo, hi] (``open_lo``: lo excluded), else an InputError naming ``where``."""
    import math

    ok = math.isfinite(v) and (lo is None or (v > lo if open_lo else v >= lo)) and (hi is None or v <= hi)
    if not ok:
        if lo is not None and hi is not None:
            span = f"in {'(' if open_lo else '['}{lo:g}, {hi:g}]"
        else:
            span = "a finite number " + (f"> {lo:g}" if open_lo else f">= {lo:g}" if lo is not None else f"<= {hi:g}")
        raise InputError(f"{where} must be {span}, got {v!r}")
    return v


def _num(v: Any, where: str) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        raise InputError(f"{where} must be a number, got {v!r}") from None


@dataclass(frozen=True)
class FitConfig:
    """The ``fit:`` section (defaults as pacemaker's code)."""

    loss: dict[str, Any] = field(default_factory=dict)
    weighting: dict[str, Any] | None = None
    optimizer: str = "BFGS"
    maxiter: int = 100
    options: dict[str, Any] | None = None
    repulsion: str | None = None
    trainable_parameters: Any = "ALL"
    fit_cycles: int = 1
    noise_relative_sigma: float = 0.0
    noise_absolute_sigma: float = 0.0
    randomize_func_coeffs: float = 0.0
    ladder_step: Any = None
    ladder_type: str = "body_order"
    min_relative_train_loss_per_iter: float | None = None
    min_relative_test_loss_per_iter: float | None = None
    early_stopping_patience: int = 200
    callbacks: tuple[str, ...] = ()
    warm_start: str | None = None
    """paceui: the linear solve a non-linear fit starts from (bayesian_ridge, linear, ard; None: pacemaker's
    start), see :mod:`paceui.fit.warm_start`."""

    @property
    def ladder(self) -> bool:
        return self.ladder_step is not None


@dataclass(frozen=True)
class BackendConfig:
    """The ``backend:`` section; paceui's evaluator is numba (``numba``), or ``dask`` for clusters:
    ``scheduler`` ``local`` (default: a LocalCluster of ``n_workers`` processes, default one per core) or a
    scheduler address; ``threads_per_worker`` (default 1); ``shard_dir``: a folder every worker can read
    for the shard files (default: a temporary folder, enough for a local cluster)."""

    evaluator: str = "numba"
    batch_size: int = 10
    display_step: int = 20
    imagetype: str = "png"
    scheduler: str | None = None
    n_workers: int | None = None
    threads_per_worker: int | None = None
    shard_dir: str | None = None


@dataclass(frozen=True)
class InputConfig:
    """A whole pacemaker input file."""

    cutoff: float
    potential: Any
    data: Any
    fit: FitConfig = field(default_factory=FitConfig)
    backend: BackendConfig = field(default_factory=BackendConfig)
    seed: int = 42
    metadata: dict[str, str] = field(default_factory=dict)
    source: str = "<dict>"
    base_dir: str = "."

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> "InputConfig":
        p = Path(path)
        if not p.exists():
            raise InputError(f"input file not found: {p}")
        d = load_yaml_file(p)
        return cls.from_dict(d, source=str(p), base_dir=str(p.resolve().parent))

    @classmethod
    def from_dict(cls, d: Any, source: str = "<dict>", base_dir: str = ".") -> "InputConfig":
        _check_keys(d, TOP_KEYS, "top level", source)
        if "cutoff" not in d:
            raise InputError(f"{source}: 'cutoff' is required (neighbour-list cutoff in Å)")
        for k in ("potential", "data"):
            if k not in d:
                raise InputError(f"{source}: section '{k}' is required")
        cutoff = _in_range(_num(d["cutoff"], f"{source}: cutoff"), f"{source}: cutoff", 0.0, 100.0, open_lo=True)
        seed = d.get("seed", 42)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise InputError(f"{source}: seed must be an integer, got {seed!r}")
        fit, backend = _fit(d.get("fit") or {}, source), _backend(d.get("backend") or {}, source)
        if fit.warm_start is not None and backend.evaluator == "dask":
            raise InputError(f"{source}: fit.warm_start runs its linear solve in this process: it needs "
                             "backend.evaluator numba, not dask")
        pot = d["potential"]
        if isinstance(pot, dict):
            from paceui.ace.basis import check_potential_section

            check_potential_section(pot, source)
        elif not isinstance(pot, str):
            raise InputError(f"{source}: potential must be a mapping (the basis) or a potential file name, "
                             f"got {type(pot).__name__}")
        if not isinstance(d["data"], (dict, str, list)):
            raise InputError(f"{source}: data must be a mapping or a file name, got {type(d['data']).__name__}")
        from paceui.data.prepare import DataConfig

        try:
            DataConfig.from_dict(d["data"], source)
        except InputError:
            raise
        except ValueError as exc:
            msg = str(exc)
            raise InputError(msg if msg.startswith(source) else f"{source}: {msg}") from None
        if d.get("metadata") is not None and not isinstance(d["metadata"], dict):
            raise InputError(f"{source}: metadata must be a mapping of strings")
        return cls(cutoff=cutoff, potential=d["potential"], data=d["data"], fit=fit, backend=backend,
                   seed=seed, metadata={str(k): str(v) for k, v in (d.get("metadata") or {}).items()},
                   source=source, base_dir=base_dir)

    def with_overrides(self, potential: str | None = None, initial_potential: str | None = None,
                       data: str | None = None) -> "InputConfig":
        """Apply the ``-p``, ``-ip`` and ``-d`` command line flags as pacemaker does."""
        cfg = self
        if potential is not None:
            cfg = replace(cfg, potential=potential)
        if initial_potential is not None:
            if not isinstance(cfg.potential, dict):
                raise InputError("-ip/--initial-potential needs a 'potential:' section given as a mapping")
            cfg = replace(cfg, potential={**cfg.potential, "initial_potential": initial_potential})
        if data is not None:
            cfg = replace(cfg, data={"filename": data})
        return cfg


def _fit(d: dict[str, Any], src: str) -> FitConfig:
    _check_keys(d, FIT_KEYS, "fit", src)
    loss = dict(d.get("loss") or {})
    _check_keys(loss, LOSS_KEYS, "fit.loss", src)
    for k, v in loss.items():
        if not (k == "kappa" and v == "auto"):
            loss[k] = _in_range(_num(v, f"{src}: fit.loss.{k}"), f"{src}: fit.loss.{k}", 0.0,
                                1.0 if k == "kappa" else None)
    opt = lambda k: None if d.get(k) is None else _num(d[k], f"{src}: fit.{k}")  # noqa: E731
    step = d.get("ladder_step")
    if step is not None:
        step = [_step(s, src) for s in step] if isinstance(step, list) else _step(step, src)
    cbs = d.get("callbacks") or []
    from paceui.fit.warm_start import warm_start_name

    cfg = FitConfig(loss=loss, weighting=d.get("weighting"), optimizer=str(d.get("optimizer", "BFGS")),
                    maxiter=_whole(d.get("maxiter", 100), f"{src}: fit.maxiter"), options=d.get("options"),
                    repulsion=d.get("repulsion"), trainable_parameters=d.get("trainable_parameters", "ALL"),
                    fit_cycles=_whole(d.get("fit_cycles", 1), f"{src}: fit.fit_cycles"),
                    noise_relative_sigma=float(opt("noise_relative_sigma") or 0.0),
                    noise_absolute_sigma=float(opt("noise_absolute_sigma") or 0.0),
                    randomize_func_coeffs=float(opt("randomize_func_coeffs") or 0.0),
                    ladder_step=step, ladder_type=str(d.get("ladder_type", "body_order")),
                    min_relative_train_loss_per_iter=opt("min_relative_train_loss_per_iter"),
                    min_relative_test_loss_per_iter=opt("min_relative_test_loss_per_iter"),
                    early_stopping_patience=_whole(d.get("early_stopping_patience", 200),
                                                   f"{src}: fit.early_stopping_patience"),
                    callbacks=tuple(str(c) for c in (cbs if isinstance(cbs, list) else [cbs])),
                    warm_start=warm_start_name(d.get("warm_start"), f"{src}: fit.warm_start"))
    from paceui.fit.linear_solve import solver_name
    from paceui.fit.optim.factory import check_optimizer

    try:
        if solver_name(cfg.optimizer) is None:  # linear | bayesian_ridge | ard are exact solves, not steppers
            check_optimizer(cfg.optimizer)
    except ValueError as exc:
        raise InputError(f"{src}: fit.optimizer: {exc}") from None
    if cfg.options is not None and not isinstance(cfg.options, dict):
        raise InputError(f"{src}: fit.options must be a mapping, got {cfg.options!r}")
    grid = (cfg.options or {}).get("kappa_grid")
    if grid is not None and not is_kappa_grid(grid):
        raise InputError(f"{src}: fit.options.kappa_grid must be a list of numbers in (0, 1), e.g. [0.01, 0.1, 0.5], "
                         f"got {grid!r}")
    refit = (cfg.options or {}).get("refit_all")
    if refit is not None and not isinstance(refit, bool):
        raise InputError(f"{src}: fit.options.refit_all must be true or false, got {refit!r}")
    if refit and grid is None:
        raise InputError(f"{src}: fit.options.refit_all needs fit.options.kappa_grid (it solves once more at the "
                         "kappa the grid chose, on training + validation)")
    if cfg.weighting is not None and not isinstance(cfg.weighting, dict):
        raise InputError(f"{src}: fit.weighting must be a mapping with 'type:', got {cfg.weighting!r}")
    if cfg.weighting is not None:
        from paceui.data.weights import weighting_from_dict

        try:
            weighting_from_dict(cfg.weighting)
        except OSError:
            pass  # an ExternalWeightingPolicy file is looked for when the data are prepared
        except ValueError as exc:
            raise InputError(f"{src}: {exc}") from None
    for k in ("noise_relative_sigma", "noise_absolute_sigma", "randomize_func_coeffs"):
        _in_range(getattr(cfg, k), f"{src}: fit.{k}", 0.0)
    if cfg.early_stopping_patience < 1:
        raise InputError(f"{src}: fit.early_stopping_patience must be >= 1, got {cfg.early_stopping_patience}")
    if cfg.repulsion not in (None, "auto"):
        raise InputError(f"{src}: fit.repulsion must be 'auto' or absent, got {cfg.repulsion!r}")
    if cfg.ladder_type not in ("body_order", "power_order"):
        raise InputError(f"{src}: fit.ladder_type must be body_order or power_order, got {cfg.ladder_type!r}")
    if cfg.maxiter < 0 or cfg.fit_cycles < 1:
        raise InputError(f"{src}: fit.maxiter must be >= 0 and fit.fit_cycles >= 1")
    return cfg


def _whole(v: Any, where: str) -> int:
    """A whole number (``2000`` or ``2e3``), else an InputError naming ``where``."""
    x = _num(v, where)
    if isinstance(v, bool) or not (abs(x) < 1e12 and x == int(x)):
        raise InputError(f"{where} must be a whole number, got {v!r}")
    return int(x)


def _step(s: Any, src: str) -> int | float:
    v = _num(s, f"{src}: fit.ladder_step")
    if v >= 1:
        return int(v)
    if v <= 0:
        raise InputError(f"{src}: fit.ladder_step must be positive, got {s!r}")
    return v


def _backend(d: dict[str, Any], src: str) -> BackendConfig:
    _check_keys(d, BACKEND_KEYS, "backend", src, no_effect="backend")
    ev = str(d.get("evaluator", "numba"))
    if ev in ("tensorpot", "pyace"):
        ev = "numba"  # pacemaker's two backends are both served by paceui's numba engine
    if ev not in ("numba", "dask"):
        raise InputError(f"{src}: backend.evaluator '{ev}' unknown (numba, dask; tensorpot/pyace map to numba)")
    counts = {k: _count(d.get(k), f"{src}: backend.{k}") for k in ("n_workers", "threads_per_worker")}
    sched, sdir = d.get("scheduler"), d.get("shard_dir")
    if sched is not None and (not isinstance(sched, str) or not sched.strip()):
        raise InputError(f"{src}: backend.scheduler must be 'local' or a Dask scheduler address "
                         f"(tcp://host:8786), got {sched!r}")
    if ev == "dask" and sched is None:
        sched = "local"
    if ev != "dask":
        import warnings

        for k in DASK_ONLY_KEYS:
            if d.get(k) is not None:
                warnings.warn(f"{src}: backend.{k} has no effect with evaluator '{ev}' (it configures "
                              "'evaluator: dask')", NoEffectWarning, stacklevel=3)
    disp = d.get("display_step", 20)
    if isinstance(disp, bool) or not isinstance(disp, int) or disp < 1:
        raise InputError(f"{src}: backend.display_step must be a whole number >= 1, got {disp!r}")
    img = str(d.get("imagetype", "png"))
    if img not in ("png", "pdf", "svg", "jpg", "jpeg", "eps", "ps", "tif", "tiff", "webp"):
        raise InputError(f"{src}: backend.imagetype '{img}' is not an image format matplotlib writes "
                         "(png, pdf, svg, ...)")
    return BackendConfig(evaluator=ev, batch_size=10,
                         display_step=disp, imagetype=img,
                         scheduler=None if sched is None else sched.strip(),
                         shard_dir=None if sdir is None else str(sdir), **counts)


def is_kappa_grid(v: Any) -> bool:
    """A non-empty list of κ values strictly between 0 and 1 (``fit.options.kappa_grid``; the input check
    and :func:`paceui.fit.linear_solve.select_kappa` both ask this)."""
    if not isinstance(v, (list, tuple)) or not v:
        return False
    try:  # YAML reads 1e-3 (no dot) as text, as everywhere in input.yaml
        return all(not isinstance(k, bool) and 0.0 < float(k) < 1.0 for k in v)
    except (TypeError, ValueError):
        return False


def _count(v: Any, where: str) -> int | None:
    """A positive whole number, or None when absent."""
    if v is None:
        return None
    x = _num(v, where) if isinstance(v, (int, float, str)) and not isinstance(v, bool) else float("nan")
    if not (x >= 1 and x < 1e9 and x == int(x)):
        raise InputError(f"{where} must be a positive whole number, got {v!r}")
    return int(x)
