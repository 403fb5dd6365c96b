"""User callbacks of ``fit: callbacks:``: importable ``module.function`` or ``path/file.py:function``.

Each is called after every iteration with keyword arguments (potential, basis_config, metrics,
test_metrics, current_fit_iteration, current_fit_cycle, current_ladder_step); an exception is
reported and does not stop the fit.
"""

from __future__ import annotations

import importlib
import importlib.util
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
