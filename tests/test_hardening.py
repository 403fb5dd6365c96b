"""One test per class of issue 16, driven as a user would: through ``paceui`` (in process or as a
subprocess) and the Session API; each asserts the message names the culprit, the exit code, and that
inputs and earlier results are byte-identical afterwards."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from paceui.ace.basis import build_potential
from paceui.ace.yaml_io import potential_to_yaml, save_potential
from paceui.session.testing import TINY_BASIS, tiny_session, zuo_frame
from tests import test_bad_inputs as catalogue
from tests.session_fixtures import _cache  # noqa: F401 (private cache directory)
from tests.test_bad_inputs import _digests, _input, run_cli

template = catalogue.template  # the catalogue's workspace fixture

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


# ------------------------------------------------------------------------ wrong results with exit 0
def test_unknown_potential_key_is_refused_by_cli_and_session(template, tmp_path):
    import shutil

    from paceui.ace.potential import PotentialError
    from paceui.session import Session

    d = tmp_path / "w"
    shutil.copytree(template, d)
    cfg = _input()
    cfg["potential"]["function"] = cfg["potential"].pop("functions")  # the typo that fitted 0 functions
    (d / "input.yaml").write_text(yaml.safe_dump(cfg))
    before = _digests(d)
    r = subprocess.run([sys.executable, "-m", "paceui.cli", "fit", "input.yaml"], cwd=d, env=ENV,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "input.yaml: potential: unknown key 'function'; did you mean 'functions'?" in r.stderr
    assert _digests(d) == before  # nothing written, nothing changed
    with pytest.raises(PotentialError, match="unknown key 'embedings'; did you mean 'embeddings'"):
        Session.from_objects({**TINY_BASIS, "embedings": TINY_BASIS["embeddings"]}, zuo_frame(3))


def test_keys_without_effect_warn_on_the_command_line(template, tmp_path):
    import shutil

    d = tmp_path / "w"
    shutil.copytree(template, d)
    cfg = _input()
    cfg["backend"].update(gpu_config={"gpu_ind": 0}, batch_size=100)
    cfg["potential"]["overwrite_blocks_from_initial_bbasis"] = True
    (d / "input.yaml").write_text(yaml.safe_dump(cfg))
    rc, out, err = run_cli(["fit", "input.yaml", "--dry-run"], d)
    assert rc == 0 and "Traceback" not in err, err
    for key in ("backend.gpu_config", "backend.batch_size", "potential.overwrite_blocks_from_initial_bbasis"):
        assert f"paceui fit: warning: input.yaml: {key} has no effect in paceui" in err, err


def test_impossible_values_fail_in_dry_run(template, tmp_path):
    import shutil

    for key, value, words in (("cutoff", -5, "cutoff must be in (0, 100]"),
                              ("kappa", 2, "fit.loss.kappa must be in [0, 1]")):
        d = tmp_path / key
        shutil.copytree(template, d)
        cfg = _input()
        if key == "kappa":
            cfg["fit"]["loss"]["kappa"] = value
        else:
            cfg[key] = value
        (d / "input.yaml").write_text(yaml.safe_dump(cfg))
        rc, _, err = run_cli(["fit", "input.yaml", "--dry-run"], d)
        assert rc == 1 and f"input.yaml: {words}" in err, err
        assert not (d / "target_potential.yaml").exists()


def test_initial_potential_mismatch_refused_or_reported(template, tmp_path):
    from paceui.fit.config import InputConfig
    from paceui.fit.runner import UpfitWarning, build_target

    # other elements and a larger cutoff: refused (see the catalogue); another dcut: kept and said
    other = build_potential({**TINY_BASIS, "bonds": {"ALL": {**TINY_BASIS["bonds"]["ALL"], "dcut": 0.05,
                                                             "rcut": 4.0}}})
    save_potential(other, tmp_path / "init.yaml")
    cfg = _input()
    cfg["potential"]["initial_potential"] = str(tmp_path / "init.yaml")
    with pytest.warns(UpfitWarning) as got:
        target, initial = build_target(InputConfig.from_dict(cfg, "input.yaml", str(template)))
    msg = str(got[0].message)
    assert "init.yaml" in msg and "Cu-Cu" in msg and "rcut 4.0 (target 4.5)" in msg and "dcut 0.05" in msg
    assert initial is not None and target.cutoff == 4.5


def test_upfit_takes_reference_energy_from_the_potential(template, tmp_path):
    from paceui.session import Session

    pot = build_potential(TINY_BASIS)
    ref = {"Cu": -3.5, "shift": 0.25}
    pot.metadata["reference_energy"] = json.dumps(ref)
    save_potential(pot, tmp_path / "fitted.yaml")
    cfg = _input()
    cfg["potential"] = {"filename": str(tmp_path / "fitted.yaml")}
    cfg["data"] = {"filename": str(template / "data.pckl.gzip")}  # no reference_energy
    (tmp_path / "input.yaml").write_text(yaml.safe_dump(cfg))
    before = _sha(tmp_path / "fitted.yaml")
    with pytest.warns(UserWarning, match="using the one stored in the potential's metadata"):
        s = Session.from_input(tmp_path / "input.yaml")
    with s:
        assert json.loads(s.settings["data"]["reference_energy"]) == ref
        assert s.data.prepared.reference_energy == pytest.approx(ref)
    assert _sha(tmp_path / "fitted.yaml") == before


def test_coincident_atoms_drop_their_structure_named(tmp_path):
    frame = zuo_frame(8)
    at = frame["ase_atoms"].iloc[5].copy()
    at.positions[3] = at.positions[2] + 0.01
    frame.at[frame.index[5], "ase_atoms"] = at
    with tiny_session(None, data=frame, fit={"maxiter": 2}) as s:
        dropped = [str(r) for r in s.data.prepared.dropped]
        assert len(dropped) == 1 and "Cu_train.xyz.gz:5" in dropped[0] and "atoms 2 and 3" in dropped[0]
        s.run(iterations=2)
        assert np.isfinite(s.history["loss"]).all()


def test_nan_in_the_loss_stops_naming_the_structure():
    from paceui.fit.fitter import NonFiniteLossError, check_finite
    from paceui.fit.loss import LossResult

    class Data:
        struct_off = np.array([0, 2, 5, 7])

    f = np.zeros((7, 3))
    f[3] = np.nan  # an atom of structure 1
    res = LossResult(loss=float("nan"), grad=np.zeros(4), parts={}, e_pred=np.zeros(3), f_pred=f)
    with pytest.raises(NonFiniteLossError, match="training structure #1 'b'") as exc:
        check_finite(res, np.zeros(4), Data(), names=["a", "b", "c"])
    assert exc.value.structure == 1
    res = LossResult(loss=1.0, grad=np.full(4, np.nan), parts={}, e_pred=np.zeros(3), f_pred=np.zeros((7, 3)))
    with pytest.raises(NonFiniteLossError, match="gradient is not finite"):
        check_finite(res, np.zeros(4), Data())
    with pytest.raises(NonFiniteLossError, match="parameters became non-finite"):
        check_finite(res, np.array([0, np.inf, 0, 0]), Data())


def test_pacemaker_callbacks_run_and_failures_are_reported_when_they_happen():
    seen: list[tuple[int, int, int]] = []

    def pacemaker_style(basis_config, current_fit_iteration, current_fit_cycle, current_ladder_step):
        assert basis_config.functions()
        seen.append((current_fit_iteration, current_fit_cycle, current_ladder_step))

    def failing(current_fit_iteration):
        raise RuntimeError(f"disk full at {current_fit_iteration}")

    with tiny_session(None, n=6, fit={"maxiter": 3}, callbacks=[pacemaker_style, failing]) as s:
        sub = s.subscribe()
        s.run(iterations=2)
        kinds = [(e.kind, getattr(e, "message", "")) for e in sub.poll()]
    assert seen == [(1, 0, 0), (2, 0, 0)]
    errs = [k for k in kinds if k[0] == "callback_error"]
    assert [m for _, m in errs] == ["iteration 1: failing: RuntimeError: disk full at 1",
                                    "iteration 2: failing: RuntimeError: disk full at 2"]
    assert [k for k, _ in kinds].index("callback_error") < [k for k, _ in kinds].index("stopped")


# ------------------------------------------------------------------------ lost work
def test_a_failing_final_write_keeps_the_potential(tmp_path, monkeypatch):
    from paceui._atomic import OutputPathError
    from paceui.fit import runner

    pot = build_potential(TINY_BASIS)
    monkeypatch.chdir(tmp_path)

    def full(*a, **k):
        raise OSError(28, "No space left on device", str(tmp_path / "out.yaml"))

    monkeypatch.setattr(runner, "save_potential", full)
    with pytest.raises(OutputPathError, match="No space left on device") as exc:
        runner.save_final(pot, tmp_path / "out" / "out.yaml")
    kept = Path(str(exc.value).split("kept in ")[1])
    assert kept.exists() and kept.read_text() == potential_to_yaml(pot)


def test_no_stray_temporary_files(tmp_path):
    from paceui._atomic import atomic_write_text

    dead = tmp_path / ".x.yaml.999999.abcd.tmp"
    dead.write_text("half")
    live = tmp_path / f".x.yaml.{os.getppid()}.efgh.tmp"
    live.write_text("being written by a live process")
    atomic_write_text(tmp_path / "x.yaml", "whole")
    assert not dead.exists() and live.exists() and (tmp_path / "x.yaml").read_text() == "whole"
    # SIGTERM in the middle of a write: the command exits and leaves no temporary file
    code = ("import os, sys, time\nfrom paceui import cli, _atomic\ncli._exit_on_sigterm()\n"
            "os.fsync = lambda fd: (print('W', flush=True), time.sleep(30))\n"
            f"_atomic.atomic_write_text({str(tmp_path / 'y.yaml')!r}, 'data' * 1000)\n")
    p = subprocess.Popen([sys.executable, "-c", code], env=ENV, stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "W"
    p.send_signal(signal.SIGTERM)
    assert p.wait(60) == 128 + signal.SIGTERM
    p.stdout.close()
    assert list(tmp_path.glob("*.tmp")) == [live] and not (tmp_path / "y.yaml").exists()


@pytest.fixture
def saved(tmp_path):
    """A session folder with two saved generations (2 and 3 iterations)."""
    path = tmp_path / "s"
    with tiny_session(path, n=6, fit={"maxiter": 10}) as s:
        s.run(iterations=2)
        s.save()
        s.run(iterations=1)
        s.save()
    return path


def test_two_processes_on_one_session_folder(saved):
    from paceui.session import Session

    with Session.load(saved) as s:
        held = saved / "session.lock"
        before = _sha(saved / "session.yaml")
        r = subprocess.run([sys.executable, "-m", "paceui.cli", str(saved)], env=ENV, capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == 1 and "Traceback" not in r.stderr
        assert f"in use by pid {os.getpid()} on host {socket.gethostname()}" in r.stderr, r.stderr
        assert held.exists() and _sha(saved / "session.yaml") == before
        s.run(iterations=1)
        s.save()  # the holder still saves
    assert not held.exists()


def test_stale_lock_after_a_kill_is_recovered(saved):
    from paceui.session import Session

    code = f"from paceui.session import Session\ns = Session.load({str(saved)!r})\nprint('L', flush=True)\n" \
           "import time; time.sleep(60)\n"
    p = subprocess.Popen([sys.executable, "-c", code], env=ENV, stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "L"
    p.kill()
    p.wait(30)
    p.stdout.close()
    assert json.loads((saved / "session.lock").read_text())["pid"] == p.pid
    with Session.load(saved) as s:
        assert s.lock.recovered is not None and s.lock.recovered.pid == p.pid
        assert json.loads((saved / "session.lock").read_text())["pid"] == os.getpid()


def test_take_over_and_read_only(saved):
    from paceui.session import Session, SessionError, SessionLock, SessionLockedError

    (saved / "session.lock").write_text(json.dumps({"pid": 1, "host": socket.gethostname()}))  # pid 1 is alive
    with pytest.raises(SessionLockedError, match="in use by pid 1") as exc:
        Session.load(saved)
    assert exc.value.holder.pid == 1
    with Session.load(saved, read_only=True) as ro:
        with pytest.raises(SessionError, match="read-only"):
            ro.save()
    assert SessionLock(saved).holder().pid == 1
    with Session.load(saved, take_over=True) as s:
        assert s.lock.recovered.pid == 1 and SessionLock(saved).holder().is_me


def test_save_into_a_damaged_folder_keeps_every_snapshot(saved):
    from paceui.session import RecoveredSessionWarning, Session

    snaps = {p.name: _digests(p) for p in (saved / "snapshots").iterdir()}
    assert len(snaps) == 2
    newest = max(snaps)
    (saved / "session.yaml").write_text("format: paceui-session\ngeneration: [")  # a torn write
    with pytest.warns(RecoveredSessionWarning, match=f"snapshots/{newest}") as got:
        s = Session.load(saved)
    assert "not readable as YAML" in str([w for w in got if w.category is RecoveredSessionWarning][0].message)
    with s:
        assert s.recovered_from == f"snapshots/{newest}" and s.status.total_iterations == 3
        (saved / "session.yaml").write_text("garbage: [")
        s.save()
    for name, files in snaps.items():  # older snapshots untouched
        assert _digests(saved / "snapshots" / name) == files
    assert len(list(saved.glob("session.yaml.damaged-*"))) == 1
    with Session.load(saved) as t:
        assert t.recovered_from is None and t.status.total_iterations == 3


def test_resume_of_a_never_started_session_is_refused(tmp_path):
    from paceui.session import SessionError

    with tiny_session(tmp_path / "s", n=6) as s:
        with pytest.raises(SessionError, match="never started"):
            s.resume().result(60)
        assert s.status.total_iterations == 0


# ------------------------------------------------------------------------ outputs and flags
def test_version_clean_and_demo_help(tmp_path):
    for sub in ("fit", "info", "eval", "yaml2yace", "demo", "new"):
        rc, out, err = run_cli([sub, "-v"], tmp_path)
        assert rc == 0 and out.startswith("paceui "), (sub, out, err)
    rc, out, _ = run_cli(["demo", "--help"], tmp_path)
    assert "Fit an ACE potential for Cu" in out and "paceui-demo" in out
    for name in ("log.txt", "metrics.txt", "test_ef-distributions.png", "current_extended_potential.yaml",
                 "interim_potential_0.yaml"):
        (tmp_path / name).write_text("x")
    (tmp_path / "report").mkdir()
    (tmp_path / "input.yaml").write_text("keep")
    rc, out, _ = run_cli(["fit", "-c"], tmp_path)
    assert rc == 0 and sorted(p.name for p in tmp_path.iterdir()) == ["input.yaml"]
