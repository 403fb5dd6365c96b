"""Building the parts of a new session: settings dict, target basis, prepared data and a fresh fitter."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from paceui._atomic import atomic_write_bytes
from paceui.ace import precompile
from paceui.ace.basis import build_potential
from paceui.ace.potential import ACEPotential
from paceui.ace.yaml_io import load_potential, load_yaml_file
from paceui.data.io import save_dataframe
from paceui.fit.callbacks import load_callbacks
from paceui.fit.config import BackendConfig, FitConfig, InputConfig
from paceui.fit.fitter import Fitter
from paceui.fit.kernels import FIT_KERNELS
from paceui.fit.target import build_target, stored_reference_energy
from paceui.session.session_data import SessionData, extend_session_data, prepare_session_data, source_files
from paceui.session.settings import plain_value

SOURCE_DIR = "source"  # in-session copy of a dataset given as a DataFrame


@dataclass
class Parts:
    """What a new session is made of (``base_dir``: where relative file names are resolved)."""

    settings: dict[str, Any]
    base_dir: str
    target: ACEPotential
    data: SessionData
    fitter: Fitter
    callbacks: list[Callable[..., Any]]


def with_cutoff(pot: ACEPotential, rcut: float) -> ACEPotential:
    """A copy of ``pot`` whose every bond has radial cutoff ``rcut`` (Å)."""
    out = pot.copy()
    for b in out.blocks:
        if b.bond is not None:
            b.bond.rcut = float(rcut)
    return out


def absolute_data(data: Any, base_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """pacemaker's ``data:`` section as a dict with the train/test file names made absolute."""
    d = {"filename": data} if isinstance(data, (str, os.PathLike, list, tuple)) else dict(data)
    for key in ("filename", "test_filename"):
        if d.get(key):
            d[key] = [str(p.resolve()) for _, p in source_files({"filename": d[key],
                                                                "datapath": d.get("datapath")}, base_dir)]
    return d


def parts_from_input(input_file: str | os.PathLike[str], cache_dir: str | os.PathLike[str] | None) -> Parts:
    """The parts of a session for a pacemaker ``input.yaml`` (used unchanged)."""
    precompile.start(FIT_KERNELS)  # on a cold numba cache, compile the fit kernels alongside (2+ cores)
    cfg = InputConfig.from_file(input_file)
    settings = plain_value(load_yaml_file(input_file))
    settings["data"] = absolute_data(cfg.data, cfg.base_dir)
    target, initial = build_target(cfg)
    settings["data"] = stored_reference_energy(settings["data"], target, initial)
    return _assemble(settings, cfg.base_dir, target, initial, cache_dir, [])


def parts_from_objects(potential: ACEPotential | Mapping[str, Any] | str | os.PathLike[str],
                       data: pd.DataFrame | str | os.PathLike[str] | Sequence[str] | Mapping[str, Any],
                       fit: FitConfig | Mapping[str, Any] | None, backend: BackendConfig | Mapping[str, Any] | None,
                       initial: ACEPotential | None, data_config: Mapping[str, Any] | None, seed: int,
                       folder: Path, cache_dir: str | os.PathLike[str] | None,
                       callbacks: Sequence[Callable[..., Any]]) -> Parts:
    """The parts of a session from Python objects; a DataFrame is copied to ``folder/source/``."""
    precompile.start(FIT_KERNELS)  # on a cold numba cache, compile the fit kernels alongside (2+ cores)
    if isinstance(potential, ACEPotential):
        target, spec = potential.copy(), {"filename": "target_potential.yaml"}
    elif isinstance(potential, Mapping):
        target, spec = build_potential(dict(potential), seed=seed), plain_value(dict(potential))
    else:
        target, spec = load_potential(potential), {"filename": str(Path(potential).resolve())}
    extra = dict(data_config or {})
    if isinstance(data, pd.DataFrame):
        save_dataframe(data, folder / SOURCE_DIR / "data.pckl.gzip")
        data_sec, base = {**extra, "filename": f"{SOURCE_DIR}/data.pckl.gzip"}, str(folder)
    else:
        data_sec, base = {**absolute_data(data, "."), **extra}, str(Path(".").resolve())
    fit_d = plain_value(dataclasses.asdict(fit) if isinstance(fit, FitConfig) else dict(fit or {}))
    if isinstance(fit_d.get("ladder_step"), float) and fit_d["ladder_step"].is_integer():
        fit_d["ladder_step"] = int(fit_d["ladder_step"])
    back = plain_value(dataclasses.asdict(backend) if isinstance(backend, BackendConfig) else dict(backend or {}))
    settings = {"cutoff": target.cutoff, "seed": seed, "potential": spec, "data": data_sec, "fit": fit_d,
                "backend": back}
    return _assemble(settings, base, target, initial, cache_dir, list(callbacks))


def _assemble(settings: dict[str, Any], base_dir: str, target: ACEPotential, initial: ACEPotential | None,
              cache_dir: str | os.PathLike[str] | None, extra_callbacks: list[Callable[..., Any]]) -> Parts:
    cfg = InputConfig.from_dict(settings, source="session settings", base_dir=base_dir)
    data = prepare_session_data(settings["data"], base_dir, target.elements, target.cutoff, cfg.fit.weighting,
                                cfg.seed, cache_dir=cache_dir)
    if data.prepared.reference_energy_json:
        target.metadata["reference_energy"] = data.prepared.reference_energy_json
    callbacks = load_callbacks(cfg.fit.callbacks, base_dir) + extra_callbacks
    fitter = Fitter(target, data.train, cfg.fit, data.test, cfg.backend, initial, seed=cfg.seed, callbacks=callbacks)
    return Parts(settings, base_dir, target, data, fitter, callbacks)


def rebuild_data(settings: Mapping[str, Any], options: Mapping[str, Any], base_dir: str, target: ACEPotential,
                 old: SessionData, cache_dir: str | os.PathLike[str] | None, only_factors: bool) -> SessionData:
    """The session's data after a settings change (weights only, or prepared again from the sources)."""
    factors = dict(options.get("weight_factors") or {})
    if only_factors:
        return old.with_weight_factors(factors)
    cfg = InputConfig.from_dict(dict(settings), source="session settings", base_dir=base_dir)
    added = old.added is not None and len(old.added) > 0  # structures the session added stay in the training set
    data = prepare_session_data(settings["data"], base_dir, target.elements, target.cutoff, cfg.fit.weighting,
                                cfg.seed, {} if added else factors, cache_dir=cache_dir, recorded=old.sources)
    if added:  # their weight factors apply once they are back
        data = extend_session_data(data, old.added, cfg.fit.weighting, cfg.seed, cache_dir)[0]
        data = data.with_weight_factors(factors) if factors else data
    return data


def effective_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Every fit and backend setting with its default filled in (for people reading session.yaml)."""
    cfg = InputConfig.from_dict(dict(settings), source="session settings")
    return {"cutoff": cfg.cutoff, "seed": cfg.seed, "fit": dataclasses.asdict(cfg.fit),
            "backend": dataclasses.asdict(cfg.backend)}


def data_files(data: Mapping[str, Any]) -> list[str]:
    """The train and test file names of a ``data:`` section."""
    out: list[str] = []
    for key in ("filename", "test_filename"):
        v = data.get(key) or []
        out += [v] if isinstance(v, str) else list(v)
    return out


def move_sources(data: Mapping[str, Any], base_dir: str, root: Path) -> str:
    """Copy in-session dataset files (relative names, ``source/``) from ``base_dir`` to the session folder
    ``root``; returns the new base folder (``root`` when something lives in the session)."""
    if base_dir == str(root):
        return base_dir
    local = [n for n in data_files(data) if not Path(n).is_absolute()]
    for name in local:
        atomic_write_bytes(root / name, (Path(base_dir) / name).read_bytes())
    return str(root) if local else base_dir


def saved_parts(root: Path) -> tuple[Parts, dict[str, Any], Any]:
    """The parts of the session saved in ``root`` and the keyword arguments of ``Session(...)`` that restore
    its name, options, status, best potential and ``recovered_from`` (the snapshot fallen back to, or None),
    and the :class:`~paceui.session.store.Loaded` snapshot (for ``Session.restored``)."""
    import math

    from paceui.session.status import Phase, SessionStatus
    from paceui.session.store import load_snapshot

    precompile.start(FIT_KERNELS)
    got = load_snapshot(root, fallback=True)
    doc = got.doc
    settings, base = doc["settings"], str(root if doc.get("base_dir", ".") == "." else doc["base_dir"])
    cfg = InputConfig.from_dict(settings, source=str(root / "session.yaml"), base_dir=base)
    callbacks = load_callbacks(cfg.fit.callbacks, base)
    target = got.potentials["target_potential"]
    fitter = Fitter.from_state_dict(got.fit_state, target, got.data.train, cfg.fit, got.data.test, cfg.backend,
                                    callbacks=callbacks)
    st = dict(doc.get("status") or {})
    phase = Phase(st.get("phase", "ready"))
    status = SessionStatus(phase=Phase.PAUSED if phase is Phase.RUNNING else phase,
                           loss=float(st.get("loss", math.nan)), stop_reason=st.get("stop_reason"),
                           stop_message=str(st.get("stop_message", "")), error=st.get("error"),
                           generation=int(doc["generation"]))
    best = got.potentials.get("best_potential")
    kw = {"name": str(doc.get("name", root.name)), "options": doc.get("options"), "status": status,
          "total_iterations": int(st.get("total_iterations", 0)),
          "best": None if best is None else (float(st.get("best_loss", math.inf)), best, None),
          "recovered_from": got.recovered_from, "changes": doc.get("changes") or ()}
    return Parts(settings, base, target, got.data, fitter, callbacks), kw, got
