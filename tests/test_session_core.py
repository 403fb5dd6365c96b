"""Session basics on a tiny Zuo Cu fit (assets/zuo, BSD-3): script API, background commands, events,
settings and what they invalidate, errors in the fit thread, the action table, the saved format."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from paceui.ace.yaml_io import load_potential
from paceui.fit.loss import ACELoss
from paceui.session import (
    ACTIONS,
    DatasetChangedError,
    Phase,
    RecoveredSessionWarning,
    Session,
    SessionError,
    SessionFormatError,
    SessionStatus,
    SettingsError,
    enabled_actions,
)
from paceui.session.testing import TINY_BASIS, comparable, tiny_session
from tests.session_fixtures import _cache, frame  # noqa: E402,F401  (shared fixtures)


def loss_of(session: Session, pot) -> float:
    f = session.fitter
    return ACELoss(pot, f.loss_cfg)(ACELoss(pot, f.loss_cfg).pmap.get(pot), session.data.train, grad=False).loss


def test_run_gives_history_potential_and_ordered_events(tmp_path, frame):
    with tiny_session(tmp_path / "s", data=frame) as s:
        sub = s.subscribe(kinds=["started", "progress", "stopped", "saved"])
        st = s.run(iterations=4)
        assert st.phase is Phase.STOPPED and st.stop_reason == "iterations" and st.total_iterations == 4
        h = s.history
        assert list(h["iteration"]) == [0, 1, 2, 3, 4] and h["loss"].iloc[-1] < h["loss"].iloc[0]
        assert loss_of(s, s.potential) == pytest.approx(h["loss"].iloc[-1], rel=1e-12)
        assert s.best_potential is not None and st.best_loss == pytest.approx(h["loss"].min(), rel=1e-15)
        kinds = [e.kind for e in sub.poll()]
        assert kinds[0] == "started" and kinds[-2:] == ["stopped", "saved"] and "progress" in kinds
        assert (tmp_path / "s" / "session.yaml").exists()  # autosave on stop
        pot = load_potential(s.save_potential(tmp_path / "out.yaml"))
        assert pot.functions()[3].coeffs == s.potential.functions()[3].coeffs
        assert s.save_potential(tmp_path / "out.yace").exists()
        assert load_potential(tmp_path / "s" / "potential.yaml").functions()[3].coeffs == pot.functions()[3].coeffs


def test_blocking_calls_from_an_event_callback_are_refused(frame):
    with tiny_session(None, data=frame) as s:
        errors: list[str] = []

        def callback(ev):
            if ev.kind == "started":
                for call in (s.save, s.wait, lambda: s.run(1)):
                    try:
                        call()
                    except SessionError as exc:
                        errors.append(str(exc))
        s.subscribe(callback)
        s.run(iterations=1)
        assert len(errors) == 3 and all("event callback" in e for e in errors)


def test_background_pause_resume_stop(tmp_path, frame):
    with tiny_session(tmp_path / "s", data=frame) as s:
        sub = s.subscribe()
        halted = s.start()
        assert sub.wait_for("progress", 30) is not None
        t0 = time.monotonic()
        assert s.pause().result(30) is True
        paused = sub.wait_for("paused", 30)
        assert paused is not None and time.monotonic() - t0 < 5
        assert halted.result(5).phase is Phase.PAUSED and s.status.phase is Phase.PAUSED
        n = s.status.total_iterations
        time.sleep(0.2)
        assert s.status.total_iterations == n and s.status.generation >= 1  # autosaved on pause
        assert s.resume().result(30) is True and sub.wait_for("resumed", 5) is not None
        assert s.stop().result(30) is True
        stopped = sub.wait_for("stopped", 30)
        assert stopped.reason == "user" and s.status.total_iterations >= n
        assert s.pause().result(5) is False and s.wait(10)
        assert [a.name for a in s.actions][:1] == ["start"]


def test_finished_fit_reports_reason_and_can_go_on(tmp_path, frame):
    with tiny_session(None, data=frame, fit={"maxiter": 3}) as s:
        st = s.run()
        assert st.phase is Phase.FINISHED and st.stop_reason == "maxiter" and "maximum" in st.stop_message
        st = s.run(iterations=2)  # a fresh optimizer from the current parameters, as a new cycle
        assert st.total_iterations == 5 and s.status.cycle == 1
        with pytest.raises(SessionError, match="no folder"):
            s.save()


def test_randomize_is_seeded_and_restarts_as_a_new_cycle(frame):
    a, b = tiny_session(None, data=frame), tiny_session(None, data=frame)
    with a, b:
        for s in (a, b):
            s.run(iterations=3)
            s.randomize(0.1, seed=7).result(30)
        assert np.array_equal(a.fitter.theta, b.fitter.theta)
        assert a.status.cycle == 1 and a.history["iteration"].iloc[-1] == 0
        before = a.fitter.theta.copy()
        msg = a.randomize(0.01, relative=False, seed=1, what="func").result(30)
        fm = a.fitter.loss.pmap.func_mask()
        d = a.fitter.theta - before
        assert "absolute" in msg and np.all(d[~fm] == 0) and 0 < np.abs(d[fm]).max() < 0.1
        with pytest.raises(SessionError, match="sigma"):
            a.randomize(-1).result(30)
        assert a.status.phase is Phase.STOPPED  # a failed command leaves the session as it was


def test_extend_ladder_by_n_or_to_the_next_step(frame):
    with tiny_session(None, data=frame, fit={"ladder_step": 4, "maxiter": 5}) as s:
        sub = s.subscribe(kinds=["ladder_step"])
        s.run(iterations=2)
        assert s.status.nfuncs == 4 and s.status.functions_left == 10
        assert s.extend_ladder(3).result(30) == 3 and s.status.ladder_step == 1 and s.status.nfuncs == 7
        assert s.extend_ladder().result(30) == 4 and s.status.nfuncs == 11
        assert [e.ladder_step for e in sub.poll()] == [1, 2]
        assert s.extend_ladder(100).result(30) == 3
        with pytest.raises(SessionError, match="already has all 14"):
            s.extend_ladder(1).result(30)
        assert "extend_ladder" not in [a.name for a in s.actions]
        s.run(iterations=2)
        assert len(s.potential.functions()) == 14


def test_settings_are_validated_and_say_what_they_invalidate(frame):
    with tiny_session(None, data=frame) as s:
        r = s.preview_settings(kappa=0.5)
        assert r.restarts_optimizer and not r.prepares_data and r.invalidates == ("optimizer state",)
        r = s.preview_settings(maxiter=7)
        assert not r.restarts_optimizer and "optimizer state kept" in str(r)
        r = s.preview_settings(cutoff=4.0)
        assert r.rebuilds_neighbors and "neighbour lists" in r.invalidates
        assert s.preview_settings(weighting={"type": "UniformWeightingPolicy"}).prepares_data
        assert s.preview_settings(maxiter=100).empty
        for bad, match in (({"kappa": 2}, "kappa"), ({"L2_coeffs": -1}, "L2_coeffs"), ({"maxiter": "x"}, "maxiter"),
                           ({"optimizer": "nonsense"}, "unknown optimizer"), ({"potential": {}}, "basis is fixed"),
                           ({"speed": 1}, "unknown setting"), ({"autosave_every": -1}, "autosave_every"),
                           ({"weighting": {"type": "Nope"}}, "unknown type")):
            with pytest.raises(SettingsError, match=match):
                s.preview_settings(**bad)
        with pytest.raises(SettingsError):
            s.change_settings(kappa=-0.1).result(30)


def test_maxiter_change_keeps_the_optimizer_exactly(frame):
    a = tiny_session(None, data=frame, fit={"maxiter": 4})
    b = tiny_session(None, data=frame, fit={"maxiter": 9})
    with a, b:
        a.run(iterations=3)
        assert a.change_settings(maxiter=9).result(30).kind == "rebuild"
        a.run(iterations=6)
        b.run(iterations=9)
        assert np.array_equal(a.fitter.theta, b.fitter.theta)
        pd.testing.assert_frame_equal(comparable(a.history), comparable(b.history))


def test_kappa_cutoff_and_weight_changes_take_effect(frame):
    with tiny_session(None, data=frame) as s:
        s.run(iterations=3)
        pairs = s.data.train.nbr_j.size
        r = s.change_settings({"kappa": 0.6}, L2_coeffs=1e-6).result(30)
        assert s.fitter.loss_cfg.kappa == 0.6 and s.status.cycle == 1 and len(r.changes) == 2
        s.change_settings(cutoff=4.0).result(30)
        assert s.data.train.nbr_j.size < pairs and s.target.cutoff == 4.0 and s.potential.cutoff == 4.0
        assert s.status.cycle == 2 and math.isfinite(s.status.loss)
        name = str(s.data.prepared.train["name"].iloc[0])
        s.change_settings(weight_factors={name: 0.0}).result(30)
        assert s.data.train.w_e[0] == 0.0 and s.data.train.w_e.sum() == pytest.approx(1.0)
        st = s.run(iterations=3)
        assert st.total_iterations == 6 and s.settings["cutoff"] == 4.0
        assert s.settings["fit"]["loss"] == {"kappa": 0.6, "L2_coeffs": 1e-6}


def test_error_in_the_fit_thread_becomes_an_event(frame):
    with tiny_session(None, data=frame) as s:
        s.run(iterations=2)
        sub = s.subscribe(kinds=["error", "stopped"])
        orig, calls = s.fitter.step, []

        def boom():
            calls.append(1)
            if len(calls) == 2:
                raise FloatingPointError("simulated failure")
            return orig()
        s.fitter.step = boom
        st = s.start().result(30)
        assert st.phase is Phase.ERROR and st.stop_reason == "error" and "simulated failure" in st.error
        err, stopped = sub.get(5), sub.get(5)
        assert err.kind == "error" and "simulated failure" in err.message and stopped.reason == "error"
        st = s.run(iterations=2)  # goes on (with a fresh optimizer in the same cycle)
        assert st.phase is Phase.STOPPED and st.total_iterations == 5


def test_from_input_and_changed_dataset(tmp_path, frame):
    import ase.io

    data = tmp_path / "cu.extxyz"
    ase.io.write(data, list(frame["ase_atoms"]))  # structures only: energies/forces from info / arrays
    atoms = []
    for at, e, f in zip(frame["ase_atoms"], frame["energy"], frame["forces"]):
        at = at.copy()
        at.info["REF_energy"], at.arrays["REF_forces"] = e, np.asarray(f)
        atoms.append(at)
    ase.io.write(data, atoms)
    (tmp_path / "input.yaml").write_text(yaml.safe_dump({
        "cutoff": 4.5, "seed": 1, "potential": TINY_BASIS,
        "data": {"filename": "cu.extxyz", "reference_energy": "auto", "test_size": 2},
        "fit": {"loss": {"kappa": 0.3}, "optimizer": "BFGS", "maxiter": 3}}))
    with Session.from_input(tmp_path / "input.yaml", path=tmp_path / "sessions" / "cu") as s:
        assert s.name == tmp_path.name and Path(s.settings["data"]["filename"][0]).is_absolute()
        assert s.data.n_train == 8 and s.data.n_test == 2
        s.run()
        assert (tmp_path / "sessions" / "cu" / "potential.yaml").exists()
        data.write_text(data.read_text().replace("Cu", "Cu ", 1))
        with pytest.raises(DatasetChangedError, match="changed since the session was created"):
            s.change_settings(test_size=3).result(30)
    t = Session.load(tmp_path / "sessions" / "cu")  # the saved prepared copy does not need the source
    assert t.status.phase is Phase.FINISHED and t.data.n_train == 8


def test_saved_format_is_versioned_and_checked(tmp_path, frame):
    with tiny_session(tmp_path / "s", data=frame) as s:
        s.run(iterations=2)
    doc_file = tmp_path / "s" / "session.yaml"
    doc = yaml.safe_load(doc_file.read_text())
    assert doc["format_version"] == 1 and doc["settings"]["fit"]["maxiter"] == 100
    assert doc["status"]["total_iterations"] == 2 and doc["dataset"]["n_train"] == 7
    assert doc["effective"]["fit"]["optimizer"] == "BFGS" and doc["effective"]["fit"]["loss"]["kappa"] == 0.3
    for version, match in ((99, "upgrade paceui"), (0, "can no longer be read")):
        doc_file.write_text(yaml.safe_dump({**doc, "format_version": version}))
        with pytest.raises(SessionFormatError, match=match):
            Session.load(tmp_path / "s")
    # a damaged commit falls back to the newest intact snapshot (each keeps its session.yaml), and says so
    doc_file.write_text(yaml.safe_dump(doc))
    with Session.load(tmp_path / "s") as s:
        s.save()  # generation 2; generation 1 stays as the previous one
    doc = yaml.safe_load(doc_file.read_text())
    doc_file.write_text(yaml.safe_dump({k: v for k, v in doc.items() if k != "format"}))
    with pytest.warns(RecoveredSessionWarning, match="not a paceui session"):
        Session.load(tmp_path / "s").close()
    doc_file.write_text(yaml.safe_dump(doc))
    hist = tmp_path / "s" / doc["snapshot"]["folder"] / "history.csv"
    hist.write_text(hist.read_text() + "\n")
    with pytest.warns(RecoveredSessionWarning, match="checksum") as got:
        with Session.load(tmp_path / "s") as s:
            assert s.recovered_from is not None and s.recovered_from != doc["snapshot"]["folder"]
    assert doc["snapshot"]["folder"] not in str(got[0].message).split("loaded")[1]
    for copy in (tmp_path / "s" / "snapshots").glob("*/session.yaml"):  # nothing to fall back to: the error
        copy.unlink()
    with pytest.raises(SessionFormatError, match="checksum"):
        Session.load(tmp_path / "s")
    with pytest.raises(SessionFormatError, match="no session.yaml"):
        Session.load(tmp_path)


def test_action_table_drives_front_ends():
    names = [a.name for a in ACTIONS]
    assert len(set(names)) == len(names) and len({a.key for a in ACTIONS}) == len(ACTIONS)
    assert all(callable(getattr(Session, n, None)) for n in names if n != "load") and callable(Session.load)
    on = lambda **kw: {a.name for a in enabled_actions(SessionStatus(**kw))}  # noqa: E731
    assert "pause" in on(phase=Phase.RUNNING) and "start" not in on(phase=Phase.RUNNING)
    assert "resume" in on(phase=Phase.PAUSED) and "pause" not in on(phase=Phase.PAUSED)
    assert "extend_ladder" in on(nfuncs=4, target_nfuncs=14) and "extend_ladder" not in on(nfuncs=14, target_nfuncs=14)
    assert "load" not in on(phase=Phase.RUNNING)


def test_fit_cycles_change_applies_to_the_current_ladder_step(frame):
    with tiny_session(None, data=frame, fit={"maxiter": 3}) as s:
        s.run(iterations=1)
        r = s.change_settings(fit_cycles=2, noise_relative_sigma=0.1).result(30)
        assert r.kind == "none" and not r.restarts_optimizer
        st = s.run()
        assert st.phase is Phase.FINISHED and set(s.history["cycle"]) == {0, 1} and st.total_iterations == 6


def test_pacemaker_cu_i_example_input_unchanged(tmp_path):
    import shutil

    from tests.conftest import REFERENCE, need_reference

    need_reference()
    shutil.copy(REFERENCE / "inputs" / "examples_Cu-I_input.yaml", tmp_path / "input.yaml")
    shutil.copy(REFERENCE / "datasets" / "Cu_df1_A1_A2_A3_EV_elast_phon.pckl.gzip", tmp_path)
    with Session.from_input(tmp_path / "input.yaml", path=tmp_path / "sessions" / "cu-i") as s:
        assert s.status.ladder and s.status.target_nfuncs == 82 and s.data.n_train == 105
        st = s.run(iterations=2)
        assert st.nfuncs == 15 and st.total_iterations == 2  # ladder_step: 15
        assert s.extend_ladder().result(60) == 15 and s.status.ladder_step == 1
    with Session.load(tmp_path / "sessions" / "cu-i") as t:
        assert t.status.nfuncs == 30 and t.settings["fit"]["ladder_step"] == 15


def test_a_cycle_interrupted_by_randomize_still_competes_for_the_best(frame):
    with tiny_session(None, data=frame, fit={"maxiter": 3}) as s:
        s.run(iterations=3)
        before = s.history["loss"].iloc[-1]
        s.randomize(3.0, seed=5).result(30)
        st = s.run()
        h = s.history
        assert st.phase is Phase.FINISHED and h[h["cycle"] == 1]["loss"].min() > before
        assert loss_of(s, s.potential) == pytest.approx(before, rel=1e-12)  # the fit ends on its best cycle
        assert s.best_potential.functions()[2].coeffs == s.potential.functions()[2].coeffs


def test_saved_potential_gets_zbl_repulsion_when_asked(tmp_path, frame):
    """fit: repulsion: auto adds ZBL core repulsion to a potential saved from a session, as paceui fit does."""
    from paceui.fit.repulsion import min_pair_distances

    with tiny_session(tmp_path / "s", data=frame, fit={"repulsion": "auto"}) as s:
        s.run(iterations=1)
        bond = load_potential(s.save_potential(tmp_path / "zbl.yaml")).blocks[0].bond
        assert bond.inner_cutoff_type == "zbl" and bond.core_repulsion == [1.0, 1.0]
        assert bond.r_in == pytest.approx(min_pair_distances(s.data.prepared.train_neighbors)[("Cu", "Cu")])
        raw = load_potential(s.save_potential(tmp_path / "raw.yaml", repulsion=False)).blocks[0].bond
        assert raw.inner_cutoff_type != "zbl"
