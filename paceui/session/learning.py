"""The active-learning half of :class:`~paceui.session.Session` (a mixin): the active set of the current
potential, γ tables, candidates, the D-optimal selection and adding labelled structures to the training set.

Public methods return Futures and run on the session's engine thread (``_cmd_*`` in
:mod:`paceui.session.engine` call the ``_``-methods here); the state (active set, candidates, selection) is
saved and loaded with the session (:meth:`_trust_doc`, :func:`trust_from_files`). Model layer:
:mod:`paceui.ace.activeset`, :mod:`paceui.ace.selection`; views: :mod:`paceui.session.trust`.
"""

from __future__ import annotations

import io
import math
import os
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
import pandas as pd

from paceui.ace.potential import ACEPotential
from paceui.errors import SessionError
from paceui.fit.config import InputConfig
from paceui.fit.fitter import Fitter
from paceui.session.trust import (
    ActiveSetState,
    GammaTable,
    asi_bytes,
    frame_bytes,
    frame_from_bytes,
    gamma_table,
    potential_digest,
    read_structures,
    selection_table,
    write_selection,
)

if TYPE_CHECKING:
    from paceui.session.engine import Engine
    from paceui.session.session_data import SessionData
    from paceui.session.status import SessionStatus


def trust_from_files(doc: Mapping[str, Any], files: Mapping[str, bytes]) -> dict[str, Any]:
    """The saved active set, candidates and selection of a session (``doc``: session.yaml's ``trust``)."""
    out: dict[str, Any] = {}
    if doc.get("active_set") and "active_set.asi" in files:
        out["active_set"] = ActiveSetState.from_doc(doc["active_set"], files["active_set.asi"])
    if "candidates.pckl.gzip" in files:
        out["candidates"] = frame_from_bytes(files["candidates.pckl.gzip"])
    if "selection.csv" in files:
        out["selection"] = pd.read_csv(io.BytesIO(files["selection.csv"]), dtype={"name": str, "labelled": bool})
    return out


class ActiveLearning:
    """Mixed into :class:`~paceui.session.Session`; expects its engine, data, fitter, status and view."""

    _active: ActiveSetState | None = None
    _candidates: pd.DataFrame | None = None
    _selection: pd.DataFrame | None = None
    if TYPE_CHECKING:  # what the mixin uses of Session
        data: SessionData
        fitter: Fitter
        target: ACEPotential
        options: dict[str, Any]
        total_iterations: int
        cache_dir: str | os.PathLike[str] | None
        base_dir: str
        _engine: Engine
        _status: SessionStatus
        _view: Any
        _settings: dict[str, Any]
        _callbacks: list[Any]
        _best: tuple[float, ACEPotential, np.ndarray | None] | None
        _dirty: bool

        def _publish(self) -> None: ...

    def restored(self, loaded: Any) -> Any:
        """This (just loaded) session with the active set, candidates and selection saved in ``loaded``
        (a :class:`paceui.session.store.Loaded`); returns the session."""
        trust = trust_from_files(loaded.doc.get("trust") or {}, loaded.files)
        self._active = trust.get("active_set")
        self._candidates = trust.get("candidates")
        self._selection = trust.get("selection")
        self._trust_status()
        return self

    @property
    def active_set(self) -> ActiveSetState | None:
        """The active set of :meth:`compute_active_set` and the potential it belongs to (None: none yet);
        ``status.active_set`` says whether it is still that of the current potential."""
        return self._active

    @property
    def candidates(self) -> pd.DataFrame | None:
        """The candidate structures of :meth:`load_candidates` (``ase_atoms``, ``name``, labels if any)."""
        return self._candidates

    @property
    def selection(self) -> pd.DataFrame | None:
        """The last D-optimal selection (see :func:`paceui.session.trust.selection_table`)."""
        return self._selection

    def compute_active_set(self, kind: str = "linear", tol: float = 1.01, max_iters: int = 300,
                           memory_limit_mb: float = 1000.0) -> Future[ActiveSetState]:
        """The active set (MaxVol per element, ``kind`` linear or full) of the current potential over the
        training set, kept in the session (saved with it, stale once the coefficients change)."""
        return self._engine.submit("compute_active_set", kind, tol, max_iters, memory_limit_mb)

    def gamma(self, subset: str = "train") -> Future[GammaTable]:
        """Per-structure γ of the current potential against the session's active set on ``subset``
        (train, test or candidates)."""
        return self._engine.submit("gamma", subset)

    def load_candidates(self, source: Any) -> Future[int]:
        """Candidate structures for γ and selection (file: extxyz, ASE trajectory, LAMMPS dump, dataframe;
        or a DataFrame / ASE Atoms); labels are optional. Replaces earlier candidates; returns their number."""
        return self._engine.submit("load_candidates", source)

    def select_candidates(self, max_structures: int | None = None) -> Future[pd.DataFrame]:
        """D-optimal selection among the candidates (against the session's active set when it is current):
        at most ``max_structures``, largest γ first; the table also becomes :attr:`selection`."""
        return self._engine.submit("select_candidates", max_structures)

    def save_selection(self, path: str | os.PathLike[str]) -> Path:
        """Write the selected candidates for DFT (extxyz with ``gamma`` in each frame's info, or a
        ``.pckl.gzip`` dataframe)."""
        sel, cand = self._selection, self._candidates
        if sel is None or cand is None or not len(sel):
            raise SessionError("no selection yet: load candidates and select first")
        return write_selection(cand, sel, path)

    def save_active_set(self, path: str | os.PathLike[str]) -> Path:
        """Write the active set as a pyace/LAMMPS ``.asi`` file (it belongs to the potential of
        ``active_set.iteration``: save that potential beside it)."""
        from paceui._atomic import atomic_write_bytes

        if self._active is None:
            raise SessionError("no active set yet: compute_active_set() first")
        return atomic_write_bytes(Path(path), asi_bytes(self._active.active_set))

    def add_structures(self, structures: Any = "selection", weight: float | None = None) -> Future[int]:
        """Add labelled structures (DFT energies and forces) to the training set and continue the fit from
        the current potential (a new cycle): a file (extxyz, ASE trajectory, dataframe), a DataFrame, ASE
        Atoms, or ``"selection"`` (the selected candidates, which must carry labels). Their neighbour
        lists and weights are computed for them only; ``weight`` multiplies their weights (a weight factor).
        Returns the number of structures added."""
        return self._engine.submit("add_structures", structures, weight)

    # ------------------------------------------------------------------ engine thread only
    def _trust_status(self) -> None:
        """Status fields of the active set (current / stale), candidates and selection."""
        a = self._active
        state = "none" if a is None else "current" if a.digest == potential_digest(self._view_potential()) else "stale"
        self._status = replace(self._status, active_set=state,
                               n_candidates=0 if self._candidates is None else len(self._candidates),
                               n_selected=0 if self._selection is None else len(self._selection))

    def _view_potential(self) -> ACEPotential:
        v = self._view
        return v.current if v.pmap is None or v.theta is None else v.pmap.apply(v.current, v.theta)

    def _compute_active_set(self, kind: str, tol: float, max_iters: int,
                            memory_limit_mb: float) -> ActiveSetState:
        import time

        from paceui.ace.activeset import build_active_set
        from paceui.ace.evaluator import ACEModel

        if kind not in ("linear", "full"):
            raise SessionError(f"kind must be 'linear' or 'full', got {kind!r}")
        pot = self._view_potential()
        t0 = time.perf_counter()
        aset, _reports = build_active_set(ACEModel(pot), list(self.data.prepared.train["ase_atoms"]), kind=kind,
                                          tol=tol, max_iters=max_iters, memory_limit_mb=memory_limit_mb)
        st = self._status
        self._active = ActiveSetState(aset, kind, self.total_iterations, st.ladder_step, st.cycle,
                                      potential_digest(pot), self.data.n_train,
                                      {str(e): int(np.shape(m)[0]) for e, m in aset.inverse.items()},
                                      time.perf_counter() - t0)
        self._dirty = True
        self._trust_status()
        return self._active

    def _gamma(self, subset: str) -> GammaTable:
        from paceui.ace.activeset import structure_gamma
        from paceui.ace.evaluator import ACEModel

        if self._active is None:
            raise SessionError("no active set yet: compute_active_set() first")
        if subset == "candidates":
            if self._candidates is None:
                raise SessionError("no candidates loaded: load_candidates(path) first")
            frame = self._candidates
        elif subset in ("train", "test"):
            frame = self.data.prepared.train if subset == "train" else self.data.prepared.test
            if frame is None or not len(frame):
                raise SessionError(f"the session has no {subset} set")
        else:
            raise SessionError(f"subset must be 'train', 'test' or 'candidates', got {subset!r}")
        pot = self._view_potential()
        per_atom = structure_gamma(ACEModel(pot), self._active.active_set, list(frame["ase_atoms"]))
        self._trust_status()
        return gamma_table(subset, frame["name"].astype(str).tolist(), per_atom, self._active.iteration,
                           self.total_iterations, self._status.active_set == "stale")

    def _load_candidates(self, source: Any) -> int:
        df = read_structures(source, "candidates")
        bad = sorted({s for a in df["ase_atoms"] for s in a.get_chemical_symbols()} - set(self.target.elements))
        if bad:
            raise SessionError(f"candidates contain element(s) {', '.join(bad)} that the potential "
                               f"({', '.join(self.target.elements)}) does not describe")
        self._candidates, self._selection, self._dirty = df, None, True
        self._trust_status()
        return len(df)

    def _select_candidates(self, max_structures: int | None) -> pd.DataFrame:
        from paceui.ace.evaluator import ACEModel
        from paceui.ace.selection import select_d_optimal

        if self._candidates is None:
            raise SessionError("no candidates loaded: load_candidates(path) first")
        if max_structures is not None and (isinstance(max_structures, bool) or int(max_structures) <= 0):
            raise SessionError(f"max_structures must be a positive count, got {max_structures!r}")
        self._trust_status()
        current = self._active if self._status.active_set == "current" else None
        kind = current.kind if current is not None else "linear"
        sel = select_d_optimal(ACEModel(self._view_potential()), list(self._candidates["ase_atoms"]),
                               None if current is None else current.active_set,
                               None if max_structures is None else int(max_structures), kind=kind)
        self._selection, self._dirty = selection_table(self._candidates, sel.indices, sel.gamma), True
        self._trust_status()
        return self._selection.copy()

    def _add_structures(self, structures: Any, weight: float | None) -> tuple[int, str]:
        from paceui.session.session_data import extend_session_data, labelled_frame

        if isinstance(structures, str) and structures == "selection":
            if self._selection is None or self._candidates is None or not len(self._selection):
                raise SessionError("no selection to add: select_candidates() first, or give a labelled file")
            sel = self._selection
            if not sel["labelled"].all():
                missing = sel.loc[~sel["labelled"], "name"].astype(str).tolist()
                raise SessionError(f"{len(missing)} selected structure(s) have no DFT labels (energy and forces), "
                                   f"e.g. {missing[0]}: write them with save_selection(), compute them, and add "
                                   "the labelled file")
            new = labelled_frame(self._candidates.iloc[sel["index"].to_numpy(int)], "selection")
        else:
            new = labelled_frame(structures, str(structures) if isinstance(structures, (str, os.PathLike))
                                 else "added")
        if weight is not None and not (isinstance(weight, (int, float)) and math.isfinite(weight) and weight > 0):
            raise SessionError(f"weight must be a finite number > 0, got {weight!r}")
        cfg = InputConfig.from_dict(self._settings, source="session settings", base_dir=self.base_dir)
        n_before = self.data.n_train
        data, dropped = extend_session_data(self.data, new, cfg.fit.weighting, cfg.seed, self.cache_dir)
        added = data.n_train - n_before
        if weight is not None and weight != 1.0:
            names = data.prepared.train["name"].astype(str).iloc[n_before:]
            factors = {**self.options.get("weight_factors", {}), **{n: float(weight) for n in names}}
            self.options = {**self.options, "weight_factors": factors}
            data = data.with_weight_factors(factors)
        sd = self.fitter.state_dict()  # the fit continues from the current parameters on the larger set
        old = self.fitter
        old.update()
        if (cs := sd["cycle_state"]) is not None:  # losses over different data are not comparable
            cs["best_loss"] = cs["best_theta"] = None
            sd["best_loss"] = math.inf
        self.fitter = Fitter.from_state_dict(sd, self.target, data.train, cfg.fit, data.test, cfg.backend,
                                             callbacks=self._callbacks)
        old.close()
        if sd["phase"] != "start":
            self.fitter.restart()
        if self._best is not None:
            self._best = (math.inf, *self._best[1:])
        self.data = data
        if isinstance(structures, str) and structures == "selection":
            self._selection = None
        self._publish()
        self._trust_status()
        msg = (f"added {added} structure(s) to the training set (now {data.n_train})"
               + (f"; dropped {len(dropped)}: " + "; ".join(map(str, dropped[:3])) if dropped else "")
               + "; the fit continues from the current potential as a new cycle")
        return added, msg

    def _with_gamma(self, pred: Any, subset: str, gamma: bool) -> Any:
        """``pred`` (Predictions of the current potential) with a ``gamma`` column when an active set exists."""
        if not gamma or self._active is None:
            return pred
        self._engine.check_not_engine_thread("predictions(gamma=True)")
        g = self.gamma(subset).result()
        if len(g.table) != len(pred.table):
            return pred
        return replace(pred, table=pred.table.assign(gamma=g.table["gamma"].to_numpy()))

    def _recheck(self, old: Any) -> str:
        """The active-set state after a record (the coefficients may have moved: a current set may be stale)."""
        if old.active_set != "current" or self._active is None:
            return str(old.active_set)
        return "current" if self._active.digest == potential_digest(self._view_potential()) else "stale"

    def _trust_doc(self, session_doc: dict[str, Any]) -> dict[str, bytes]:
        """Add the ``trust`` entry to the session document; returns the snapshot files it needs."""
        doc: dict[str, Any] = {}
        files: dict[str, bytes] = {}
        if self._active is not None:
            doc["active_set"] = self._active.to_doc()
            files["active_set.asi"] = asi_bytes(self._active.active_set)
        if self._candidates is not None:
            doc["n_candidates"] = len(self._candidates)
            files["candidates.pckl.gzip"] = frame_bytes(self._candidates)
        if self._selection is not None:
            doc["n_selected"] = len(self._selection)
            files["selection.csv"] = self._selection.to_csv(index=False).encode()
        if doc:
            session_doc["trust"] = doc
        return files
