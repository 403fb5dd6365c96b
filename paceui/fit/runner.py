"""``paceui fit input.yaml``: pacemaker's workflow and output files.

target_potential.yaml → data (+ fitting_data_info.pckl.gzip, train_ef-distributions.png) → fit with
log lines and metrics files, interim potentials, callbacks → output_potential.yaml (+ .yace) →
train/test predictions and report/ plots. Every file is written atomically.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from paceui import __version__
from paceui._atomic import OutputPathError, atomic_write_text, check_writable, rescue_write
from paceui.ace import precompile
from paceui.ace.potential import ACEPotential
from paceui.ace.yace import save_yace
from paceui.ace.yaml_io import save_potential
from paceui.fit.arrays import fit_arrays, shortest_pair_distances
from paceui.fit.callbacks import load_callbacks
from paceui.fit.config import InputConfig
from paceui.fit.fitter import Fitter, IterationRecord
from paceui.fit.kernels import FIT_KERNELS
from paceui.fit.logfmt import extended_block, iteration_line
from paceui.fit.metrics import MetricsFileWriter
from paceui.fit.repulsion import add_zbl_repulsion
from paceui.fit.stages import FIRST_EVALUATION, FIRST_ITERATION, shown_stage
from paceui.fit.target import UpfitWarning, build_target, check_initial, stored_reference_energy  # noqa: F401

LOG = logging.getLogger("paceui.fit")


@dataclass
class FitRun:
    """Everything a finished ``paceui fit`` produced (paths relative to ``workdir``)."""

    workdir: Path
    target: ACEPotential
    output: ACEPotential | None
    fitter: Fitter | None
    prepared: Any


def _setup_logging(workdir: Path, log: str) -> None:
    LOG.setLevel(logging.INFO)
    for h in list(LOG.handlers):
        LOG.removeHandler(h)
    fh = logging.FileHandler(workdir / log, mode="a", encoding="utf-8")
    fh.setFormatter(logging.Formatter("%(asctime)s %(levelname).1s - %(message)s", "%Y/%m/%d %H:%M:%S"))
    LOG.addHandler(fh)
    sh = logging.StreamHandler()
    sh.setFormatter(logging.Formatter("%(message)s"))
    LOG.addHandler(sh)
    LOG.propagate = False


GENERATED = ("fitting_data_info.csv", "fitting_data_info.pckl.gzip", "test_data_info.pckl.gzip", "log.txt",
             "nohup.out", "target_potential.yaml", "current_extended_potential.yaml", "output_potential.yaml",
             "output_potential.yace",
             "ladder_metrics.txt", "cycle_metrics.txt", "metrics.txt", "test_ladder_metrics.txt",
             "test_cycle_metrics.txt", "test_metrics.txt", "train_pred.pckl.gzip", "test_pred.pckl.gzip",
             "test_ef-distributions.png", "train_ef-distributions.png")
"""Files ``paceui fit -c/--clean`` removes (pacemaker's list), besides ``report/`` and the interim and
ensemble potentials."""


def clean_outputs(wd: str | os.PathLike[str] = ".") -> list[Path]:
    """Remove what ``paceui fit`` generated in ``wd`` (pacemaker's ``-c/--clean``); returns what went."""
    import shutil

    wd = Path(wd)
    gone = [wd / n for n in GENERATED if (wd / n).is_file()]
    gone += sorted(wd.glob("interim_potential*.yaml")) + sorted(wd.glob("ensemble_potential*.yaml"))
    for f in gone:
        f.unlink()
    if (wd / "report").is_dir():
        shutil.rmtree(wd / "report")
        gone.append(wd / "report")
    return gone


def run_fit(input_file: str | os.PathLike[str], output: str = "output_potential.yaml", potential: str | None = None,
            initial_potential: str | None = None, data: str | None = None, dry_run: bool = False,
            no_fit: bool = False, no_predict: bool = False, log: str = "log.txt",
            workdir: str | os.PathLike[str] | None = None) -> FitRun:
    """Run pacemaker's workflow on ``input_file`` in ``workdir`` (default: the current directory)."""
    from paceui.data import prepare_dataset
    from paceui.data.io import save_dataframe
    from paceui.fit.report import ef_distributions, write_report

    cfg = InputConfig.from_file(input_file).with_overrides(potential, initial_potential, data)  # fail before any file
    wd = Path(workdir or ".").resolve()
    check_outputs(wd, output, log, cfg.backend.imagetype, no_predict or dry_run)
    if not (dry_run or no_fit):  # a cold numba cache: compile the fit kernels in child processes meanwhile
        precompile.start(FIT_KERNELS)
    wd.mkdir(parents=True, exist_ok=True)
    _setup_logging(wd, log)
    LOG.info(f"paceui {__version__}: {cfg.source}")
    target, initial = build_target(cfg)
    counts = target.counts()
    LOG.info(f"Target potential: {counts['functions']} functions {counts['functions_per_element']}, "
             f"{counts['coefficients_func'] + counts['coefficients_crad']} coefficients, cutoff {target.cutoff:g} Å")
    save_potential(target, wd / "target_potential.yaml")
    data_cfg = stored_reference_energy(cfg.data, target, initial)
    data_cfg.setdefault("datapath", cfg.base_dir)
    ev = None
    if cfg.backend.evaluator == "dask" and cfg.fit.repulsion != "auto":  # the workers build the neighbour lists
        from paceui.fit.dask.prepare import prepare_for_dask

        prepared, ev = prepare_for_dask(cfg, data_cfg, target)
    else:
        prepared = prepare_dataset(data_cfg, elements=target.elements, cutoff=target.cutoff,
                                   weighting=cfg.fit.weighting, seed=cfg.seed, progress=True)
    for line in prepared.summary().splitlines():
        LOG.info(line)
    if prepared.reference_energy_json:
        target.metadata["reference_energy"] = prepared.reference_energy_json
    drop = ["ase_atoms"]
    save_dataframe(prepared.train.drop(columns=drop, errors="ignore"), wd / "fitting_data_info.pckl.gzip")
    if prepared.test is not None:
        save_dataframe(prepared.test.drop(columns=drop, errors="ignore"), wd / "test_data_info.pckl.gzip")
    for name, frame in (("train", prepared.train), ("test", prepared.test)):
        if frame is not None and len(frame):
            ef_distributions(wd / f"{name}_ef-distributions.{cfg.backend.imagetype}",
                             frame["energy_corrected_per_atom"].to_numpy(),
                             np.concatenate([np.linalg.norm(np.asarray(f).reshape(-1, 3), axis=1)
                                             for f in frame["forces"]]),
                             image_format=cfg.backend.imagetype)
    if dry_run:
        LOG.info("Dry run: basis, data and neighbour lists prepared; no fit.")
        if ev is not None:
            ev.close()
        return FitRun(wd, target, None, None, prepared)
    if ev is not None:
        train, test = ev.train, ev.test
    else:
        train = fit_arrays(prepared.train, prepared.train_neighbors)
        test = fit_arrays(prepared.test, prepared.test_neighbors) if prepared.test is not None and len(prepared.test) \
            else None
    fit_cfg = replace(cfg.fit, maxiter=0) if no_fit else cfg.fit
    fitter = Fitter(target, train, fit_cfg, test=test, backend=cfg.backend, initial=initial, seed=cfg.seed,
                    callbacks=load_callbacks(cfg.fit.callbacks, cfg.base_dir))
    fitter.structure_names = list(prepared.train["name"]) if "name" in prepared.train.columns else None
    try:
        _drive(fitter, wd, cfg)
        out = fitter.state.best_potential or fitter.potential()
        out.metadata.update(target.metadata)
        out.metadata.pop("_fit_cycles", None)
        if cfg.fit.repulsion == "auto":
            out = add_zbl_repulsion(out, prepared.train_neighbors)
        save_final(out, wd / output)
        _write_committee(fitter, cfg, out, wd)
        LOG.info(f"Fit stopped: {fitter.state.stop_message}. Potential saved to {output}")
        if fitter.callback_errors:
            LOG.warning(f"{len(fitter.callback_errors)} callback call(s) failed (first: {fitter.callback_errors[0]})")
        if not no_predict:
            _predict(out, prepared, wd, cfg, fitter, write_report, save_dataframe)
    finally:
        fitter.close()  # the Dask evaluator's shards and cluster, if any
    return FitRun(wd, target, out, fitter, prepared)


def _write_committee(fitter: Fitter, cfg: InputConfig, out: ACEPotential, wd: Path) -> None:
    """``fit: options: {committee: N}`` with a Bayesian linear solve: N posterior draws as
    ``committee_potential_{k}.yaml``."""
    n = int((cfg.fit.options or {}).get("committee", 0) or 0)
    sol = getattr(fitter, "linear_solution", None)
    if n <= 0 or sol is None or sol.cov_factor is None:
        if n > 0:
            LOG.warning("fit.options.committee needs fit.optimizer bayesian_ridge or ard; no committee written")
        return
    from paceui.fit.linear_solve import committee

    for k, pot in enumerate(committee(out, fitter.linear_system, sol, n, seed=cfg.seed)):
        save_potential(pot, wd / f"committee_potential_{k}.yaml")
    LOG.info(f"committee of {n} potentials drawn from the {sol.method} posterior: committee_potential_*.yaml")
def yace_name(output: str | os.PathLike[str]) -> Path:
    """The .yace written beside a .yaml output (pacemaker's rule)."""
    o = str(output)
    return Path(str(Path(o).with_suffix(".yace")) if o.endswith((".yaml", ".yml")) else o + ".yace")


def check_outputs(wd: Path, output: str, log: str, imagetype: str, no_predict: bool) -> None:
    """Every path ``paceui fit`` will write, checked before anything is computed (OutputPathError)."""
    check_writable(wd, "working folder", folder=True)
    check_writable(wd / output, "-o/--output")
    check_writable(wd / yace_name(output), "-o/--output (.yace)")
    check_writable(wd / log, "-l/--log")
    for name in ("target_potential.yaml", "fitting_data_info.pckl.gzip", f"train_ef-distributions.{imagetype}"):
        check_writable(wd / name)
    if not no_predict:
        check_writable(wd / "report", "report folder", folder=True)
        check_writable(wd / "train_pred.pckl.gzip", "predictions")


def save_final(pot: ACEPotential, path: Path) -> None:
    """Save the fitted potential (+ .yace); when that fails, keep it in a writable place and say where."""
    try:
        save_potential(pot, path)
        save_yace(pot, yace_name(path))
    except OSError as exc:
        from paceui.ace.yaml_io import potential_to_yaml

        kept = rescue_write(potential_to_yaml(pot).encode(), path.name, path)
        LOG.error(f"could not write {path}: {exc.strerror or exc}; the fitted potential was kept in {kept}")
        raise OutputPathError(f"{path}: could not be written ({exc.strerror or exc}); the fitted potential was "
                              f"kept in {kept}") from None


def _drive(fitter: Fitter, wd: Path, cfg: InputConfig) -> None:
    """Step the fit to its end, writing logs, metrics files and interim potentials."""
    stress = bool(np.any(getattr(fitter.train, "s_ref", None) is not None
                         and np.isfinite(fitter.train.s_ref).all(axis=1).any()))
    writers = {k: MetricsFileWriter.for_run(wd, lvl, test=t, stress=stress) for k, (lvl, t) in
               {"it": ("iteration", False), "it_test": ("iteration", True), "cyc": ("cycle", False),
                "cyc_test": ("cycle", True), "lad": ("ladder", False), "lad_test": ("ladder", True)}.items()}
    last: IterationRecord | None = None
    disp = cfg.backend.display_step
    stages = iter((FIRST_EVALUATION, FIRST_ITERATION))

    def step() -> IterationRecord | None:
        name = next(stages, None)  # the two cold-start steps are shown as stages (spinner, elapsed time)
        if name is None:
            return fitter.step()
        with shown_stage(name, LOG):
            return fitter.step()
    try:
        while (rec := step()) is not None:
            if last is not None and (rec.cycle != last.cycle or rec.ladder_step != last.ladder_step):
                _end_of(last, writers, wd, fitter, ladder=rec.ladder_step != last.ladder_step)
            title = "Initial state:" if rec.event == "initial" else "Iteration"
            LOG.info(iteration_line(title, rec.iteration, rec.n_evals, rec.train, rec.us_per_eval_atom or None))
            writers["it"].append(rec.train, ladder_step=rec.ladder_step, cycle_step=rec.cycle, iter_num=rec.iteration)
            if rec.test is not None:
                writers["it_test"].append(rec.test, ladder_step=rec.ladder_step, cycle_step=rec.cycle,
                                          iter_num=rec.iteration)
            if rec.iteration % disp == 0:
                LOG.info(extended_block("INIT STATS" if rec.iteration == 0 else "FIT STATS", rec.iteration, rec.train,
                                        rec.us_per_eval_atom))
                if rec.test is not None:
                    LOG.info(extended_block("TEST STATS", rec.iteration, rec.test, rec.us_per_eval_atom))
            if rec.event == "initial" and rec.cycle == 0 and fitter.cfg.ladder:
                save_potential(fitter.current, wd / "current_extended_potential.yaml")  # the basis just extended
            if rec.event == "iteration":
                pot = fitter.potential()
                pot.metadata["intermediate_time"] = str(_dt.datetime.now())
                save_potential(pot, wd / f"interim_potential_{rec.cycle}.yaml")
            last = rec
        if last is not None:
            _end_of(last, writers, wd, fitter, ladder=cfg.fit.ladder)
    finally:
        for w in writers.values():
            w.close()


def _end_of(rec: IterationRecord, writers: dict, wd: Path, fitter: Fitter, ladder: bool) -> None:
    writers["cyc"].append(rec.train, ladder_step=rec.ladder_step, cycle_step=rec.cycle)
    if rec.test is not None:
        writers["cyc_test"].append(rec.test, ladder_step=rec.ladder_step, cycle_step=rec.cycle)
    LOG.info(extended_block("Cycle last iteration:", rec.iteration, rec.train, rec.us_per_eval_atom))
    if fitter.cfg.randomize_func_coeffs:
        save_potential(fitter.potential(), wd / f"ensemble_potential_{rec.cycle}.yaml")
    if fitter.cfg.fit_cycles > 1 and fitter.state.best_potential is not None:
        save_potential(fitter.state.best_potential, wd / "interim_potential_best_cycle.yaml")
    if ladder and fitter.cfg.ladder:
        writers["lad"].append(rec.train, ladder_step=rec.ladder_step)
        if rec.test is not None:
            writers["lad_test"].append(rec.test, ladder_step=rec.ladder_step)
        save_potential(fitter.potential(), wd / f"interim_potential_ladder_step_{rec.ladder_step}.yaml")
        LOG.info(extended_block("LADDER STEP", rec.ladder_step, rec.train, rec.us_per_eval_atom))


def _predict(pot: ACEPotential, prepared: Any, wd: Path, cfg: InputConfig, fitter: Fitter, write_report: Any,
             save_dataframe: Any) -> None:
    from paceui.fit.loss import ACELoss, LossConfig

    loss = ACELoss(pot, LossConfig())
    theta = loss.pmap.get(pot)
    sets = {"train": (prepared.train, prepared.train_neighbors)}
    if prepared.test is not None and len(prepared.test):
        sets["test"] = (prepared.test, prepared.test_neighbors)
    report: dict[str, dict] = {}
    for name, (frame, packed) in sets.items():
        if packed is None:  # a Dask run: predictions from the workers' shards
            from paceui.fit.dask.prepare import predictions

            e, f, nn, arr = predictions(pot, frame, fitter.train if name == "train" else fitter.test)
        else:
            arr = fit_arrays(frame, packed)
            (e, f, w), nn = loss.predict_virials(theta, arr), shortest_pair_distances(arr)
        nat = arr.n_atoms
        stress = {}
        if packed is not None and arr.has_stress.any():
            has = arr.has_stress
            vol = np.where(arr.vol > 0, arr.vol, np.nan)[:, None]
            stress = {"s_ref": arr.s_ref[has] / vol[has], "s_pred": w[has] / vol[has]}
        forces = np.split(f, np.cumsum(nat)[:-1])
        df = frame.drop(columns=["ase_atoms"], errors="ignore").copy()
        df["energy_pred"] = e
        df["forces_pred"] = forces
        df["nn_min"] = nn
        if stress:
            df["stress_pred"] = [x / v if v > 0 else None for x, v in zip(w, arr.vol)]
        save_dataframe(df, wd / f"{name}_pred.pckl.gzip")
        if packed is not None and "group" in frame.columns:
            from paceui.fit.error_tables import group_errors, group_table_text

            gt = group_errors(frame["group"].tolist(), e, arr.e_ref, nat, f, arr.f_ref, w, arr.s_ref, arr.vol)
            (wd / "report").mkdir(parents=True, exist_ok=True)
            gt.to_csv(wd / "report" / f"{name}_group_errors.csv", index=False)
            refit = name == "test" and getattr(fitter, "linear_refit", False)  # fit.options.refit_all
            LOG.info(group_table_text(gt, "Test (fitted in the final refit)" if refit else name.capitalize()))
        report[name] = {"e_ref_per_atom": arr.e_ref / nat, "e_pred_per_atom": e / nat, "f_ref": arr.f_ref,
                        "f_pred": f, "nn_min": df["nn_min"].to_numpy(), **stress}
    import pandas as pd

    write_report(wd / "report", report["train"], report.get("test"), pd.DataFrame(fitter.state.history),
                 image_format=cfg.backend.imagetype)
    atomic_write_text(wd / "report" / "history.json", json.dumps({"stop_reason": fitter.state.stop_message}))

