"""User callbacks of ``fit: callbacks:``: importable ``module.function`` or ``path/file.py:function``.

Each is called after every iteration with the keyword arguments its signature accepts among
(potential, basis_config, metrics, test_metrics, current_fit_iteration, current_fit_cycle,
current_ladder_step); all of them when it takes ``**kwargs``. pacemaker-style callbacks
``cb(basis_config, current_fit_iteration, current_fit_cycle, current_ladder_step)`` therefore run
unchanged. An exception is reported at once (log line, session event) and does not stop the fit.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from pathlib import Path
from typing import Any, Callable, Sequence

from paceui.errors import CallbackError


def load_callback(spec: str | Callable[..., Any], base_dir: str = ".") -> Callable[..., Any]:
    if callable(spec):
        return spec
    if ":" in spec:
        file, func = spec.rsplit(":", 1)
        path = Path(file) if Path(file).is_absolute() else Path(base_dir) / file
        if not path.exists():
            raise CallbackError(f"fit.callbacks: file {path} of '{spec}' not found")
        mod_spec = importlib.util.spec_from_file_location(f"paceui_user_callback_{path.stem}", path)
        if mod_spec is None or mod_spec.loader is None:
            raise CallbackError(f"fit.callbacks: cannot import {path}")
        module = importlib.util.module_from_spec(mod_spec)
        mod_spec.loader.exec_module(module)
    else:
        if "." not in spec:
            raise CallbackError(f"fit.callbacks: '{spec}' must be 'module.function' or 'file.py:function'")
        mod_name, func = spec.rsplit(".", 1)
        try:
            module = importlib.import_module(mod_name)
        except ImportError as exc:
            raise CallbackError(f"fit.callbacks: cannot import module '{mod_name}' of '{spec}': {exc}") from None
    fn = getattr(module, func, None)
    if not callable(fn):
        raise CallbackError(f"fit.callbacks: '{spec}' does not name a function")
    return fn


def load_callbacks(specs: Sequence[str | Callable[..., Any]], base_dir: str = ".") -> list[Callable[..., Any]]:
    return [load_callback(s, base_dir) for s in specs]


def accepted_kwargs(fn: Callable[..., Any], offered: dict[str, Any]) -> dict[str, Any]:
    """The arguments of ``offered`` that ``fn``'s signature takes (all of them with ``**kwargs``); raises
    :class:`CallbackError` when ``fn`` requires an argument that is not offered."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin without a signature: give it everything
        return offered
    params = sig.parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return offered
    named = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    missing = [p.name for p in params if p.default is p.empty and p.kind is not p.VAR_POSITIONAL
               and p.name not in offered]
    if missing:
        raise CallbackError(f"callback {getattr(fn, '__name__', fn)} requires argument(s) {missing}; it can take "
                            f"{sorted(offered)}")
    return {k: v for k, v in offered.items() if k in named}


def call_callback(fn: Callable[..., Any], **offered: Any) -> Any:
    """Call ``fn`` with the keyword arguments its signature accepts (see :func:`accepted_kwargs`)."""
    return fn(**accepted_kwargs(fn, offered))


def run_callbacks(callbacks: Sequence[Callable[..., Any]], **offered: Any) -> list[str]:
    """Call each callback (see :func:`call_callback`); a failure is logged at once (logger ``paceui.fit``)
    and returned as a message, and does not stop the others or the fit."""
    import logging

    errors = []
    for cb in callbacks:
        try:
            call_callback(cb, **offered)
        except Exception as exc:  # a user callback must not kill the fit
            msg = (f"iteration {offered.get('current_fit_iteration')}: {getattr(cb, '__name__', cb)}: "
                   f"{type(exc).__name__}: {exc}")
            errors.append(msg)
            logging.getLogger("paceui.fit").warning(f"callback failed: {msg}")
    return errors
