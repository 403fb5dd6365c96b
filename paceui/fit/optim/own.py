"""paceui's own steppers: BFGS, L-BFGS, CG after Nocedal & Wright, with scipy's strong-Wolfe
``line_search`` and a backtracking / approximate-Wolfe fallback; Adam, SGD. They save their full state
(np.savez-able) and continue bit-identically via ``from_state``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, fields
from typing import Any, Mapping

import numpy as np

from paceui.fit.optim.linesearch import search_step
from paceui.fit.optim.stepper import IGNORED_OPTIONS, LossFn, Memo, StepInfo, Stepper


@dataclass(frozen=True)
class OptimizerConfig:
    """Options of the own steppers (scipy.minimize / tf.keras names; ``scale_init``: N&W eq. 6.20)."""

    gtol: float = 1e-8
    norm: float = math.inf
    maxiter: int | None = None
    ftol: float = 0.0
    c1: float = 1e-4
    c2: float = 0.9
    maxls: int = 20
    maxcor: int = 10
    scale_init: bool = False
    learning_rate: float = 1e-3
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-7
    momentum: float = 0.0

    @classmethod
    def from_options(cls, options: Mapping[str, Any], name: str) -> "OptimizerConfig":
        known = {f.name: f.default for f in fields(cls)}
        if unknown := sorted(set(options) - set(known) - IGNORED_OPTIONS - {"bounds"}):
            warnings.warn(f"optimizer {name}: ignoring unsupported option(s) {unknown}", stacklevel=4)
        return cls(**{k: (int if d is None else type(d))(options[k]) for k, d in known.items()
                      if options.get(k) is not None})


class _OwnStepper(Stepper):
    """In-process steppers: ``_iterate`` (the method) ends in :meth:`_accept` or a failure."""

    _defaults: dict[str, Any] = {}

    def __init__(self, fun: LossFn | None, x0: np.ndarray, options: Mapping[str, Any] | None = None):
        self._setup(fun, options)
        self._x = np.array(x0, dtype=float).ravel()
        self.set_x(self._x)

    def _setup(self, fun: LossFn | None, options: Mapping[str, Any] | None) -> None:
        if fun is None:
            raise ValueError(f"optimizer {self.name} needs a loss function fun(theta) -> (loss, grad)")
        if options is not None and options.get("bounds") is not None:
            raise ValueError(f"optimizer {self.name}: bounds are not supported by paceui's own optimizers; "
                             f"remove 'bounds' or use optimizer 'scipy:{self.name}'")
        self.cfg = OptimizerConfig.from_options({**self._defaults, **dict(options or {})}, self.name)
        self._init_run(Memo(fun, fg=True), self.cfg.maxiter)

    @classmethod
    def from_state(cls, fun: LossFn | None, state: Mapping[str, Any], options: Mapping[str, Any] | None = None
                   ) -> "_OwnStepper":
        self = cls.__new__(cls)
        self._setup(fun, options)
        self._load_state(state)
        return self

    def set_x(self, x: np.ndarray) -> None:
        self._f = math.nan
        self._accept(np.array(x, dtype=float).reshape(self._x.shape), *self._evals(x))
        self.iteration = 0
        self._reset_memory()

    def step(self) -> StepInfo:
        if not self.converged:
            self._iterate()
        return self.info()

    def _accept(self, x: np.ndarray, f: float, g: np.ndarray) -> None:
        f_old, self._x, self._f, self._g, c = self._f, x, f, g, self.cfg
        self._gn = float(np.linalg.norm(g, ord=c.norm)) if x.size else 0.0
        self.iteration += 1
        self._status, self._message = "running", ""
        if not np.isfinite(f):
            self._status, self._message = "failed", "loss is not finite"
        # docs/optimizers.md (O1)
        elif self._gn <= c.gtol:
            self._status, self._message = "success", "gradient norm below gtol"
        elif c.ftol > 0 and f_old - f <= c.ftol * max(abs(f_old), abs(f), 1.0):
            self._status, self._message = "success", "relative loss change below ftol"

    def _reset_memory(self) -> None:
        """Forget curvature / moments."""

    def _iterate(self) -> None:  # line-search iteration of BFGS, L-BFGS, CG
        g, f, p = self._g, self._f, self._direction()
        if not float(g @ p) < 0:
            self._reset_memory()
            p = -g
        if (found := self._search(p)) is None:
            self._status, self._message = "failed", "line search failed: no further progress"
            return
        x_new, f_new, g_new = found
        self._update(x_new - self._x, g_new - g, g_new, f)
        self._accept(x_new, f_new, g_new)

    def _search(self, p: np.ndarray) -> tuple[np.ndarray, float, np.ndarray] | None:  # None: no step
        return search_step(self._evals, self._x, self._f, self._g, p, self._hint(), self.cfg)

    def _first_hint(self) -> float:  # fake previous loss: unit-length first trial step
        return self._f + float(np.linalg.norm(self._g)) / 2.0

    def _direction(self) -> np.ndarray: raise NotImplementedError  # noqa: E704

    def _hint(self) -> float | None:  # previous loss for the first trial step (N&W eq. 3.60)
        return self._f_prev

    def _update(self, s: np.ndarray, y: np.ndarray, g_new: np.ndarray, f_old: float) -> None:
        raise NotImplementedError  # memory update from step s and gradient change y


class BFGSStepper(_OwnStepper):
    """Dense inverse-Hessian BFGS (N&W Alg. 6.1); H0 = I and trial steps as in scipy's BFGS, whose
    iterates ours track (``scale_init``: H0 = sᵀy/yᵀy·I, eq. 6.20, was 2-3x slower for us)."""

    name = "BFGS"
    _memory = ("g", "H", "f_prev")

    def _reset_memory(self) -> None:
        self._H, self._f_prev = np.zeros((0, 0)), self._first_hint()  # empty H: identity

    def _direction(self) -> np.ndarray:
        return -(self._H @ self._g) if self._H.size else -self._g

    def _update(self, s: np.ndarray, y: np.ndarray, g_new: np.ndarray, f_old: float) -> None:
        sy, yy = float(s @ y), float(y @ y)
        if sy > np.finfo(float).eps * yy:  # else skip the update (curvature condition fails)
            if not self._H.size:
                self._H = np.eye(s.size) * (sy / yy if self.cfg.scale_init else 1.0)
            # docs/optimizers.md (O2)
            rho, Hy = 1.0 / sy, self._H @ y
            self._H += (rho * rho * float(y @ Hy) + rho) * np.outer(s, s)
            self._H -= rho * (np.outer(Hy, s) + np.outer(s, Hy))
        self._f_prev = f_old


class LBFGSStepper(_OwnStepper):
    """L-BFGS, two-loop recursion (N&W Alg. 7.4) with ``maxcor`` pairs; stops like scipy's
    L-BFGS-B on gtol or on the relative loss change ftol (default 2.2e-9)."""

    name = "L-BFGS-B"
    _memory = ("g", "S", "Y", "rho")
    _defaults = {"ftol": 2.220446049250313e-09}

    def _reset_memory(self) -> None:
        self._S, self._Y, self._rho = np.zeros((0, self._x.size)), np.zeros((0, self._x.size)), np.zeros(0)

    def _hint(self) -> float | None:
        return None if len(self._rho) else self._first_hint()

    # docs/optimizers.md (O3)
    def _direction(self) -> np.ndarray:
        S, Y, rho = self._S, self._Y, self._rho
        q, alphas = self._g.copy(), []
        for i in range(len(rho) - 1, -1, -1):
            alphas.append(rho[i] * float(S[i] @ q))
            q -= alphas[-1] * Y[i]
        if len(rho):
            q *= float(S[-1] @ Y[-1]) / float(Y[-1] @ Y[-1])
        for i, a in zip(range(len(rho)), reversed(alphas)):
            q += (a - rho[i] * float(Y[i] @ q)) * S[i]
        return -q

    def _update(self, s: np.ndarray, y: np.ndarray, g_new: np.ndarray, f_old: float) -> None:
        if (sy := float(s @ y)) > np.finfo(float).eps * float(y @ y):
            m = self.cfg.maxcor
            self._S, self._Y = np.vstack([self._S, s])[-m:], np.vstack([self._Y, y])[-m:]
            self._rho = np.append(self._rho, 1.0 / sy)[-m:]


class CGStepper(_OwnStepper):
    """Polak-Ribière+ nonlinear conjugate gradients (N&W eq. 5.44-5.45), c2 = 0.4 like scipy."""

    name = "CG"
    _memory = ("g", "p", "f_prev")
    _defaults = {"c2": 0.4}

    def _reset_memory(self) -> None:
        self._p, self._f_prev = -self._g, self._first_hint()

    def _direction(self) -> np.ndarray:
        return self._p

    def _update(self, s: np.ndarray, y: np.ndarray, g_new: np.ndarray, f_old: float) -> None:
        # docs/optimizers.md (O4)
        p = -g_new + max(0.0, float(g_new @ y) / float(self._g @ self._g)) * self._p
        self._p, self._f_prev = (p if float(g_new @ p) < 0 else -g_new), f_old


class AdamStepper(_OwnStepper):
    """Adam (Kingma & Ba; tf.keras defaults lr 1e-3, beta 0.9/0.999, eps 1e-7), one full-batch
    step per iteration (pacemaker's tf.keras runs shuffled mini-batch epochs); gtol 0."""

    name = "Adam"
    _memory = ("g", "m", "v", "t")
    _defaults = {"gtol": 0.0}

    def _reset_memory(self) -> None:
        self._m, self._v, self._t = np.zeros_like(self._x), np.zeros_like(self._x), 0

    def _iterate(self) -> None:
        c, g = self.cfg, self._g
        self._t += 1
        # docs/optimizers.md (O6)
        self._m = c.beta_1 * self._m + (1.0 - c.beta_1) * g
        self._v = c.beta_2 * self._v + (1.0 - c.beta_2) * (g * g)
        lr_t = c.learning_rate * math.sqrt(1.0 - c.beta_2 ** self._t) / (1.0 - c.beta_1 ** self._t)
        x_new = self._x - lr_t * self._m / (np.sqrt(self._v) + c.epsilon)
        self._accept(x_new, *self._evals(x_new))


class SGDStepper(AdamStepper):
    """Full-batch gradient descent (Adam without moments), lr 1e-3; keras-style ``momentum``."""

    name = "SGD"

    def _iterate(self) -> None:
        # docs/optimizers.md (O7)
        self._m = self.cfg.momentum * self._m - self.cfg.learning_rate * self._g
        x_new = self._x + self._m
        self._accept(x_new, *self._evals(x_new))


OWN_STEPPERS: dict[str, type[_OwnStepper]] = {"bfgs": BFGSStepper, "l-bfgs-b": LBFGSStepper, "cg": CGStepper,
                                               "adam": AdamStepper, "sgd": SGDStepper}
