"""A catalogue of bad inputs across the command line, the calculator and sessions (issue 16).

Each case must end in a clear one-line error (or, for pacemaker keys without effect, a one-line
warning) that names the culprit; never a raw traceback, never a changed input. The command line cases
run in process through :func:`paceui.cli.main` with captured output (a few also as real subprocesses,
in :func:`test_subprocess_cases`); everything uses a 14-function Cu basis and 4 Zuo structures, so no
numba kernel is ever compiled here.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import yaml

from paceui.ace.basis import build_potential
from paceui.ace.yace import save_yace
from paceui.ace.yaml_io import save_potential
from paceui.cli import main
from paceui.session.testing import TINY_BASIS, zuo_frame

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------- workspace
def _input() -> dict[str, Any]:
    return {"cutoff": 4.5, "seed": 1, "potential": json.loads(json.dumps(TINY_BASIS)),
            "data": {"filename": "data.pckl.gzip", "reference_energy": "auto"},
            "fit": {"loss": {"kappa": 0.3}, "maxiter": 2}, "backend": {"evaluator": "tensorpot"}}


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """input.yaml, data.pckl.gzip, pot.yaml/pot.yace (Cu, rcut 4.5), al.yaml (Al), big.yaml (rcut 6),
    cu.xyz (2 frames), and a few damaged files."""
    import ase
    import ase.io

    from paceui.data.io import save_dataframe

    d = tmp_path_factory.mktemp("bad_inputs")
    frame = zuo_frame(4)
    save_dataframe(frame, d / "data.pckl.gzip")
    (d / "input.yaml").write_text(yaml.safe_dump(_input(), sort_keys=False))
    pot = build_potential(TINY_BASIS)
    save_potential(pot, d / "pot.yaml")
    save_yace(pot, d / "pot.yace")
    al = build_potential({**TINY_BASIS, "elements": ["Al"]})
    save_potential(al, d / "al.yaml")
    big = build_potential({**TINY_BASIS, "bonds": {"ALL": {**TINY_BASIS["bonds"]["ALL"], "rcut": 6.0}}})
    save_potential(big, d / "big.yaml")
    (d / "badradial.yace").write_text((d / "pot.yace").read_text().replace("ChebExpCos", "ChebWrong"))
    frames = list(frame["ase_atoms"][:2])
    ase.io.write(d / "cu.xyz", frames, format="extxyz")
    text = (d / "cu.xyz").read_text()
    (d / "trunc.xyz").write_text(text[: len(text) // 3])
    al_frame = frames[1].copy()
    al_frame.symbols[0] = "Al"
    ase.io.write(d / "foreign.xyz", [frames[0], al_frame], format="extxyz")
    close = frames[0].copy()
    close.positions[1] = close.positions[0]
    ase.io.write(d / "coincident.xyz", close, format="extxyz")
    nan = frames[0].copy()
    nan.positions[2, 0] = np.nan
    ase.io.write(d / "nan.xyz", nan, format="extxyz")
    ase.io.write(d / "empty_atoms.xyz", [frames[0], ase.Atoms(cell=[5, 5, 5], pbc=True)], format="extxyz")
    flat = frames[0].copy()
    flat.cell[2] = [0, 0, 0]
    flat.pbc = True
    ase.io.write(d / "flat.xyz", flat, format="extxyz")
    (d / "binary.yaml").write_bytes(bytes(range(256)) * 4)
    (d / "binary.xyz").write_bytes(bytes(range(256)) * 4)
    (d / "binary.xyz.yace").write_bytes(bytes(range(256)) * 4)
    (d / "list.yaml").write_text("- 1\n- 2\n")
    (d / "invalid.yaml").write_text("cutoff: [5\npotential: x\n")
    (d / "empty.xyz").write_text("")
    save_dataframe(frame.drop(columns=["forces"]), d / "noforces.pckl.gzip")
    save_dataframe(frame.iloc[:0], d / "zero.pckl.gzip")
    (d / "a_file").write_text("not a folder\n")
    (d / "a_dir").mkdir()
    return d


def _digests(d: Path) -> dict[str, str]:
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.rglob("*"))
            if p.is_file()}


def run_cli(argv: list[str], cwd: Path) -> tuple[int, str, str]:
    """``paceui ARGV`` in process, in ``cwd``: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    old = Path.cwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = main(argv)
            except SystemExit as exc:  # argparse
                rc = int(exc.code or 0)
            except Exception:  # a raw traceback: what the catalogue forbids
                import traceback

                traceback.print_exc()
                rc = -1
    finally:
        os.chdir(old)
    return rc, out.getvalue(), err.getvalue()


def _edit(fn: Callable[[dict[str, Any]], Any]) -> Callable[[Path], None]:
    """A workspace change: input.yaml edited by ``fn``."""
    def apply(d: Path) -> None:
        cfg = yaml.safe_load((d / "input.yaml").read_text())
        fn(cfg)
        (d / "input.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return apply


def _set(path: str, value: Any) -> Callable[[Path], None]:
    """input.yaml with ``a.b.c`` set to ``value`` (None deletes; ``a.b.c->d`` renames key c to d)."""
    def fn(cfg: dict[str, Any]) -> None:
        keys = path.split(".")
        node = cfg
        for k in keys[:-1]:
            node = node[k]
        last = keys[-1]
        if "->" in last:
            old, new = last.split("->")
            node[new] = node.pop(old)
        else:
            node[last] = value
    return _edit(fn)


def _write(name: str, text: str) -> Callable[[Path], None]:
    def apply(d: Path) -> None:
        (d / name).write_text(text)
    return apply


FIT = ["fit", "input.yaml", "--dry-run"]
# (id, workspace change, argv, exit code, words the message must contain)
CLI_CASES: list[tuple[str, Callable[[Path], None] | None, list[str], int, list[str]]] = [
    ("pot-function-typo", _set("potential.functions->function", None), FIT, 1,
     ["input.yaml", "potential", "'function'", "did you mean 'functions'"]),
    ("pot-embedings", _set("potential.embeddings->embedings", None), FIT, 1, ["'embedings'", "'embeddings'"]),
    ("pot-elemnts", _set("potential.elements->elemnts", None), FIT, 1, ["'elemnts'", "'elements'"]),
    ("pot-deltaSplineBin", _set("potential.deltaSplineBin", 0.001), FIT, 1, ["'deltaSplineBin'", "'deltaSplineBins'"]),
    ("bond-rcutt", _set("potential.bonds.ALL.rcut->rcutt", None), FIT, 1,
     ["potential.bonds.ALL", "'rcutt'", "'rcut'"]),
    ("func-nradmax-typo", _set("potential.functions.ALL.nradmax_by_orders->nradmax_by_order", None), FIT, 1,
     ["potential.functions.ALL", "'nradmax_by_order'", "'nradmax_by_orders'"]),
    ("emb-ndensty", _set("potential.embeddings.ALL.ndensty", 2), FIT, 1, ["'ndensty'", "'ndensity'"]),
    ("func-block-AL", _set("potential.functions.AL", {"nradmax_by_orders": [1], "lmax_by_orders": [0]}), FIT, 1,
     ["potential.functions", "'AL'", "'ALL'"]),
    ("func-block-garbage", _set("potential.functions.al-l", {"nradmax_by_orders": [1]}), FIT, 1,
     ["potential.functions", "'al-l'"]),
    ("emb-foreign-element", _set("potential.embeddings.Ni", {"ndensity": 1}), FIT, 1, ["'Ni'", "Cu"]),
    ("top-cutof", _set("cutoff->cutof", None), FIT, 1, ["'cutof'", "'cutoff'"]),
    ("fit-optimiser", _set("fit.optimiser", "BFGS"), FIT, 1, ["fit", "'optimiser'", "'optimizer'"]),
    ("loss-kapa", _set("fit.loss.kapa", 0.5), FIT, 1, ["fit.loss", "'kapa'", "'kappa'"]),
    ("backend-evaluater", _set("backend.evaluater", "numba"), FIT, 1, ["backend", "'evaluater'", "'evaluator'"]),
    ("data-test-sizes", _set("data.test_sizes", 0.1), FIT, 1, ["data", "'test_sizes'", "'test_size'"]),
    ("data-filenme", _set("data.filename->filenme", None), FIT, 1, ["'filenme'", "'filename'"]),
    ("cutoff-negative", _set("cutoff", -5), FIT, 1, ["input.yaml", "cutoff", "-5"]),
    ("cutoff-text", _set("cutoff", "five"), FIT, 1, ["cutoff", "five"]),
    ("cutoff-nan", _set("cutoff", float("nan")), FIT, 1, ["cutoff", "nan"]),
    ("kappa-2", _set("fit.loss.kappa", 2), FIT, 1, ["input.yaml", "fit.loss.kappa", "[0, 1]"]),
    ("kappa-negative", _set("fit.loss.kappa", -0.1), FIT, 1, ["fit.loss.kappa"]),
    ("L2-negative", _set("fit.loss.L2_coeffs", -1e-8), FIT, 1, ["fit.loss.L2_coeffs"]),
    ("rcut-negative", _set("potential.bonds.ALL.rcut", -1), FIT, 1, ["potential.bonds.ALL.rcut", "> 0"]),
    ("rcut-text", _set("potential.bonds.ALL.rcut", "abc"), FIT, 1, ["potential.bonds.ALL.rcut", "abc"]),
    ("dcut-negative", _set("potential.bonds.ALL.dcut", -0.1), FIT, 1, ["potential.bonds.ALL.dcut"]),
    ("radparameters-text", _set("potential.bonds.ALL.radparameters", ["x"]), FIT, 1, ["radparameters"]),
    ("radbase-unknown", _set("potential.bonds.ALL.radbase", "ChebWrong"), FIT, 1, ["ChebWrong"]),
    ("npot-unknown", _set("potential.embeddings.ALL.npot", "FS"), FIT, 1, ["npot", "'FS'"]),
    ("fs-params-short", _set("potential.embeddings.ALL.fs_parameters", [1, 1]), FIT, 1, ["fs_parameters"]),
    ("ndensity-zero", _set("potential.embeddings.ALL.ndensity", 0), FIT, 1, ["ndensity"]),
    ("nradmax-text", _set("potential.functions.ALL.nradmax_by_orders", ["a"]), FIT, 1, ["nradmax_by_orders"]),
    ("lmax-negative", _set("potential.functions.ALL.lmax_by_orders", [0, -1]), FIT, 1, ["lmax_by_orders"]),
    ("coefs-init", _set("potential.functions.ALL.coefs_init", "ones"), FIT, 1, ["coefs_init", "ones"]),
    ("inner-cutoff-type", _set("potential.bonds.ALL.inner_cutoff_type", "soft"), FIT, 1, ["inner_cutoff_type"]),
    ("deltaSplineBins-zero", _set("potential.deltaSplineBins", 0), FIT, 1, ["deltaSplineBins"]),
    ("nfuncs-text", _set("potential.functions.number_of_functions_per_element", "many"), FIT, 1,
     ["number_of_functions_per_element"]),
    ("elements-unknown", _set("potential.elements", ["Xx"]), FIT, 1, ["potential.elements", "'Xx'"]),
    ("elements-twice", _set("potential.elements", ["Cu", "Cu"]), FIT, 1, ["potential.elements", "twice"]),
    ("elements-empty", _set("potential.elements", []), FIT, 1, ["potential.elements"]),
    ("maxiter-negative", _set("fit.maxiter", -1), FIT, 1, ["fit.maxiter"]),
    ("maxiter-fraction", _set("fit.maxiter", 2.5), FIT, 1, ["fit.maxiter", "whole"]),
    ("fit-cycles-zero", _set("fit.fit_cycles", 0), FIT, 1, ["fit_cycles"]),
    ("optimizer-unknown", _set("fit.optimizer", "BFG"), FIT, 1, ["fit.optimizer", "'BFG'"]),
    ("ladder-type", _set("fit.ladder_type", "random"), FIT, 1, ["ladder_type", "random"]),
    ("ladder-step-negative", _set("fit.ladder_step", -3), FIT, 1, ["ladder_step"]),
    ("noise-negative", _set("fit.noise_relative_sigma", -1), FIT, 1, ["noise_relative_sigma"]),
    ("patience-zero", _set("fit.early_stopping_patience", 0), FIT, 1, ["early_stopping_patience"]),
    ("weighting-type", _set("fit.weighting", {"type": "EnergyBasedWeightingPolice"}), FIT, 1,
     ["fit: weighting", "'EnergyBasedWeightingPolicy'"]),
    ("weighting-key", _set("fit.weighting", {"type": "EnergyBasedWeightingPolicy", "DElo": 1.0}), FIT, 1,
     ["input.yaml", "fit.weighting (EnergyBasedWeightingPolicy)", "'DElo'", "'DElow'"]),
    ("weighting-wlow", _set("fit.weighting", {"type": "EnergyBasedWeightingPolicy", "wlow": 2}), FIT, 1,
     ["input.yaml", "wlow"]),
    ("weighting-string", _set("fit.weighting", "energy"), FIT, 1, ["fit.weighting"]),
    ("options-number", _set("fit.options", 5), FIT, 1, ["fit.options"]),
    ("repulsion-yes", _set("fit.repulsion", "yes"), FIT, 1, ["fit.repulsion"]),
    ("display-step-zero", _set("backend.display_step", 0), FIT, 1, ["backend.display_step"]),
    ("imagetype-unknown", _set("backend.imagetype", "bmpx"), FIT, 1, ["backend.imagetype", "bmpx"]),
    ("evaluator-gpu", _set("backend.evaluator", "gpu"), FIT, 1, ["backend.evaluator", "gpu"]),
    ("seed-text", _set("seed", "abc"), FIT, 1, ["seed", "abc"]),
    ("metadata-list", _set("metadata", [1, 2]), FIT, 1, ["metadata"]),
    ("potential-number", _set("potential", 5), FIT, 1, ["potential"]),
    ("data-number", _set("data", 5), FIT, 1, ["data"]),
    ("test-size-text", _set("data.test_size", "ten"), FIT, 1, ["test_size"]),
    ("data-missing-column", _set("data.filename", "noforces.pckl.gzip"), FIT, 1,
     ["noforces.pckl.gzip", "forces"]),
    ("data-empty", _set("data.filename", "zero.pckl.gzip"), FIT, 1, ["zero.pckl.gzip", "empty"]),
    ("data-test-empty", _set("data.test_filename", "zero.pckl.gzip"), FIT, 1, ["zero.pckl.gzip", "empty"]),
    ("data-file-missing", _set("data.filename", "nothere.pckl.gzip"), FIT, 1, ["nothere.pckl.gzip"]),
    ("data-file-binary", _set("data.filename", "binary.xyz"), FIT, 1, ["binary.xyz"]),
    ("data-d-flag-missing", None, FIT + ["-d", "gone.pckl.gzip"], 1, ["gone.pckl.gzip"]),
    ("input-missing", None, ["fit", "nothere.yaml", "--dry-run"], 1, ["nothere.yaml"]),
    ("input-binary", None, ["fit", "binary.yaml", "--dry-run"], 1, ["binary.yaml", "binary"]),
    ("input-invalid-yaml", None, ["fit", "invalid.yaml", "--dry-run"], 1, ["invalid.yaml", "line"]),
    ("input-list", None, ["fit", "list.yaml", "--dry-run"], 1, ["list.yaml", "mapping"]),
    ("input-folder", None, ["fit", "a_dir", "--dry-run"], 1, ["a_dir"]),
    ("ip-foreign-elements", None, FIT + ["-ip", "al.yaml"], 1, ["al.yaml", "['Al']", "Cu"]),
    ("ip-larger-cutoff", None, FIT + ["-ip", "big.yaml"], 1, ["big.yaml", "cutoff 6", "4.5"]),
    ("ip-binary", None, FIT + ["-ip", "binary.yaml"], 1, ["binary.yaml"]),
    ("ip-missing", None, FIT + ["-ip", "none.yaml"], 1, ["none.yaml"]),
    ("p-binary", None, FIT + ["-p", "binary.yaml"], 1, ["binary.yaml"]),
    ("output-under-file", None, ["fit", "input.yaml", "-o", "a_file/out.yaml"], 1, ["a_file", "-o/--output"]),
    ("output-is-folder", None, ["fit", "input.yaml", "-o", "a_dir"], 1, ["a_dir", "folder"]),
    ("log-is-folder", None, ["fit", "input.yaml", "-l", "a_dir"], 1, ["a_dir", "-l/--log"]),
    ("log-under-file", None, ["fit", "input.yaml", "-l", "a_file/log.txt"], 1, ["a_file", "-l/--log"]),
    ("info-binary", None, ["info", "binary.yaml"], 1, ["binary.yaml"]),
    ("info-list", None, ["info", "list.yaml"], 1, ["list.yaml"]),
    ("info-missing", None, ["info", "nothere.yaml"], 1, ["nothere.yaml"]),
    ("info-structure-file", None, ["info", "input.yaml"], 1, ["input.yaml"]),
    ("info-yace-bad-radial", None, ["info", "badradial.yace"], 1, ["badradial.yace", "ChebWrong"]),
    ("info-yace-binary", None, ["info", "binary.xyz.yace"], 1, ["binary.xyz.yace"]),
    ("yaml2yace-binary", None, ["yaml2yace", "binary.yaml"], 1, ["binary.yaml"]),
    ("yaml2yace-missing", None, ["yaml2yace", "nothere.yaml"], 1, ["nothere.yaml"]),
    ("yaml2yace-out-under-file", None, ["yaml2yace", "pot.yaml", "-o", "a_file/x.yace"], 1, ["a_file", "-o"]),
    ("yaml2yace-out-folder", None, ["yaml2yace", "pot.yaml", "-o", "a_dir"], 1, ["a_dir", "folder"]),
    ("eval-binary-potential", None, ["eval", "binary.yaml", "cu.xyz"], 1, ["binary.yaml"]),
    ("eval-truncated", None, ["eval", "pot.yaml", "trunc.xyz"], 1, ["trunc.xyz"]),
    ("eval-garbage-structures", None, ["eval", "pot.yaml", "binary.xyz"], 1, ["binary.xyz"]),
    ("eval-empty-file", None, ["eval", "pot.yaml", "empty.xyz"], 1, ["empty.xyz", "empty"]),
    ("eval-missing-structures", None, ["eval", "pot.yaml", "nothere.xyz"], 1, ["nothere.xyz"]),
    ("eval-structures-folder", None, ["eval", "pot.yaml", "a_dir"], 1, ["a_dir", "folder"]),
    ("eval-0-atoms", None, ["eval", "pot.yaml", "empty_atoms.xyz"], 1, ["empty_atoms.xyz", "frame 1", "no atoms"]),
    ("eval-foreign-element", None, ["eval", "pot.yaml", "foreign.xyz"], 1, ["foreign.xyz", "frame 1", "Al"]),
    ("eval-coincident-analytic", None, ["eval", "pot.yaml", "coincident.xyz", "--analytic"], 1,
     ["coincident.xyz", "frame 0", "atoms 0 and 1"]),
    ("eval-coincident-spline", None, ["eval", "pot.yace", "coincident.xyz"], 1, ["coincident.xyz", "frame 0"]),
    ("eval-nan-position", None, ["eval", "pot.yaml", "nan.xyz"], 1, ["nan.xyz", "frame 0"]),
    ("eval-flat-cell", None, ["eval", "pot.yaml", "flat.xyz"], 1, ["flat.xyz", "frame 0", "volume"]),
    ("eval-bad-index", None, ["eval", "pot.yaml", "cu.xyz", "--index", "7"], 1, ["cu.xyz"]),
]


@pytest.mark.parametrize("case", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_catalogue(template, tmp_path, case):
    name, change, argv, code, words = case
    d = tmp_path / "w"
    shutil.copytree(template, d)
    if change is not None:
        change(d)
    before = _digests(d)
    rc, out, err = run_cli(argv, d)
    assert "Traceback" not in err, err
    assert rc == code, (rc, out, err)
    lines = [ln for ln in err.splitlines() if "error" in ln]
    assert len(lines) == 1, err  # one line
    for w in words:
        assert w in lines[0], (w, lines[0])
    after = _digests(d)
    assert {k: v for k, v in after.items() if k in before} == before  # inputs byte-identical
    assert not any(k.endswith(("output_potential.yaml", "out.yaml", ".yace")) for k in set(after) - set(before))
    assert not [p for p in d.rglob("*.tmp")]


NO_EFFECT_CASES = [
    ("overwrite_blocks", "potential.overwrite_blocks_from_initial_bbasis", True,
     ["potential.overwrite_blocks_from_initial_bbasis", "no effect"]),
    ("gpu_config", "backend.gpu_config", {"gpu_ind": 0, "mem_limit": 0}, ["backend.gpu_config", "no effect"]),
    ("batch_size", "backend.batch_size", 50, ["backend.batch_size", "no effect"]),
    ("batch_size_reduction", "backend.batch_size_reduction", True, ["backend.batch_size_reduction", "no effect"]),
    ("batch_size_reduction_factor", "backend.batch_size_reduction_factor", 2.0,
     ["batch_size_reduction_factor", "no effect"]),
    ("parallel_mode", "backend.parallel_mode", "process", ["backend.parallel_mode", "no effect"]),
    ("n_workers-numba", "backend.n_workers", 4, ["backend.n_workers", "no effect"]),
]


@pytest.mark.parametrize("case", NO_EFFECT_CASES, ids=[c[0] for c in NO_EFFECT_CASES])
def test_pacemaker_keys_without_effect_warn(template, case):
    from paceui._keys import NoEffectWarning
    from paceui.fit.config import InputConfig

    _, path, value, words = case
    cfg = _input()
    node = cfg
    *head, last = path.split(".")
    for k in head:
        node = node[k]
    node[last] = value
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        InputConfig.from_dict(cfg, source="input.yaml", base_dir=str(template))
    msgs = [str(w.message) for w in got if issubclass(w.category, NoEffectWarning)]
    assert len(msgs) == 1 and all(w in msgs[0] for w in words), msgs
    assert msgs[0].startswith("input.yaml")


# ---------------------------------------------------------------------------------------------- calculator
def _atoms(kind: str) -> Any:
    import ase

    at = zuo_frame(1)["ase_atoms"].iloc[0].copy()
    if kind == "empty":
        return ase.Atoms(cell=[5, 5, 5], pbc=True)
    if kind == "foreign":
        at.symbols[0] = "Al"
    if kind == "coincident":
        at.positions[1] = at.positions[0]
    if kind == "nan":
        at.positions[0, 0] = np.inf
    return at


CALC_CASES = [
    ("binary", "binary.yaml", {}, None, ["binary.yaml"]),
    ("list", "list.yaml", {}, None, ["list.yaml"]),
    ("missing", "nothere.yace", {}, None, ["nothere.yace"]),
    ("bad-radial", "badradial.yace", {}, None, ["ChebWrong"]),
    ("0-atoms", "pot.yaml", {}, "empty", ["no atoms"]),
    ("foreign", "pot.yaml", {}, "foreign", ["Al"]),
    ("coincident-analytic", "pot.yaml", {"spline": False}, "coincident", ["atoms 0 and 1", "coincident"]),
    ("coincident-spline", "pot.yaml", {}, "coincident", ["atoms 0 and 1"]),
    ("inf-position", "pot.yaml", {}, "nan", ["NaN/inf"]),
]


@pytest.mark.parametrize("case", CALC_CASES, ids=[c[0] for c in CALC_CASES])
def test_calculator_catalogue(template, case):
    from paceui import ACECalculator

    _, pot, kw, atoms, words = case
    with pytest.raises((ValueError, OSError)) as exc:
        calc = ACECalculator(str(template / pot), **kw)
        at = _atoms(atoms)
        at.calc = calc
        at.get_potential_energy()
    msg = str(exc.value)
    assert "\n" not in msg and all(w in msg for w in words), msg


# ---------------------------------------------------------------------------------------------- sessions
@pytest.fixture(scope="module")
def saved_session(tmp_path_factory) -> Path:
    """A tiny session saved before any fit (no numba kernel runs)."""
    from paceui.session.testing import tiny_session

    path = tmp_path_factory.mktemp("sess") / "s"
    with tiny_session(path, n=6, fit={"maxiter": 2}) as s:
        s.save()
    return path


def _session_yaml(edit: Callable[[dict[str, Any]], Any], drop_copies: bool = True) -> Callable[[Path], None]:
    def apply(p: Path) -> None:
        doc = yaml.safe_load((p / "session.yaml").read_text())
        edit(doc)
        (p / "session.yaml").write_text(yaml.safe_dump(doc))
        if drop_copies:  # no snapshot copy to fall back to: the error must name the key
            for c in p.glob("snapshots/*/session.yaml"):
                c.unlink()
    return apply


def _lock(pid: int, host: str) -> Callable[[Path], None]:
    def apply(p: Path) -> None:
        (p / "session.lock").write_text(json.dumps({"pid": pid, "host": host, "user": "someone", "since": "t"}))
    return apply


SESSION_CASES: list[tuple[str, Callable[[Path], None] | None, str, list[str]]] = [
    ("no-session-yaml", lambda p: (p / "session.yaml").unlink(), "load", ["session.yaml"]),
    ("not-a-folder", lambda p: None, "load-missing", ["no such session folder"]),
    ("missing-generation", _session_yaml(lambda d: d.pop("generation")), "load", ["session.yaml", "'generation'"]),
    ("generation-text", _session_yaml(lambda d: d.__setitem__("generation", "x")), "load",
     ["session.yaml", "'generation'", "int"]),
    ("missing-snapshot-folder", _session_yaml(lambda d: d["snapshot"].pop("folder")), "load",
     ["'snapshot.folder'"]),
    ("settings-list", _session_yaml(lambda d: d.__setitem__("settings", [1])), "load", ["'settings'", "mapping"]),
    ("format-version-text", _session_yaml(lambda d: d.__setitem__("format_version", "one")), "load",
     ["format_version"]),
    ("not-yaml", lambda p: ((p / "session.yaml").write_text("a: [b\n"),
                            [c.unlink() for c in p.glob("snapshots/*/session.yaml")]), "load", ["session.yaml"]),
    ("locked-live-pid", _lock(1, socket.gethostname()), "load", ["in use by pid 1", socket.gethostname()]),
    ("locked-other-host", _lock(4242, "elsewhere.example"), "load", ["pid 4242", "elsewhere.example"]),
    ("resume-never-started", None, "resume", ["never started", "start()"]),
    ("settings-typo", None, "change-typo", ["'kapa'", "did you mean 'kappa'"]),
    ("settings-kappa-2", None, "change-kappa", ["kappa"]),
]


@pytest.mark.parametrize("case", SESSION_CASES, ids=[c[0] for c in SESSION_CASES])
def test_session_catalogue(saved_session, tmp_path, case):
    from paceui.session import Session, SessionError, SessionFormatError, SessionLockedError
    from paceui.session.settings import SettingsError

    _, change, action, words = case
    p = tmp_path / "s"
    shutil.copytree(saved_session, p)
    (p / "session.lock").unlink(missing_ok=True)
    if change is not None:
        change(p)
    before = _digests(p)
    errors = (SessionFormatError, SessionLockedError, SessionError, SettingsError, ValueError)
    with pytest.raises(errors) as exc:
        if action == "load":
            Session.load(p).close()
        elif action == "load-missing":
            Session.load(tmp_path / "nothere")
        else:
            with Session.load(p) as s:
                if action == "resume":
                    s.resume().result(30)
                elif action == "change-typo":
                    s.change_settings(kapa=0.5).result(30)
                elif action == "change-kappa":
                    s.preview_settings(kappa=2)
    msg = str(exc.value)
    assert all(w in msg for w in words), msg
    after = _digests(p)
    assert {k: v for k, v in after.items() if k in before and k != "session.lock"} == \
        {k: v for k, v in before.items() if k != "session.lock"}


# ---------------------------------------------------------------------------------------------- subprocesses
SUBPROCESS_CASES = [
    (["fit", "input.yaml", "--dry-run"], _set("potential.functions->function", None), ["'function'", "'functions'"]),
    (["eval", "pot.yaml", "trunc.xyz"], None, ["trunc.xyz"]),
    (["info", "binary.yaml"], None, ["binary.yaml"]),
    (["fit", "input.yaml", "-o", "a_file/o.yaml"], None, ["a_file"]),
]


def test_subprocess_cases(template, tmp_path):
    """The same refusals from the real command (exit code 1, one line on stderr, no traceback)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for k, (argv, change, words) in enumerate(SUBPROCESS_CASES):
        d = tmp_path / f"w{k}"
        shutil.copytree(template, d)
        if change is not None:
            change(d)
        before = _digests(d)
        r = subprocess.run([sys.executable, "-m", "paceui.cli", *argv], cwd=d, env=env, capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == 1, r
        assert "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert all(w in r.stderr for w in words), r.stderr
        assert {k2: v for k2, v in _digests(d).items() if k2 in before} == before


def test_catalogue_size():
    n = len(CLI_CASES) + len(NO_EFFECT_CASES) + len(CALC_CASES) + len(SESSION_CASES) + len(SUBPROCESS_CASES)
    assert n >= 60, n


def test_session_folder_that_cannot_be_written(template):
    from paceui._atomic import OutputPathError
    from paceui.session import Session

    with pytest.raises(OutputPathError, match="session folder .*a_file.* is a file"):
        Session.from_objects(TINY_BASIS, str(template / "data.pckl.gzip"), path=template / "a_file" / "s")
    with pytest.raises(OutputPathError, match="session folder .*a_file: exists and is not a folder"):
        Session.from_objects(TINY_BASIS, str(template / "data.pckl.gzip"), path=template / "a_file")
