"""The notebook dashboard on a tiny session: buttons, settings form, curves, analysis, kernel-loop updates."""

from __future__ import annotations

import asyncio
import html
import threading
from pathlib import Path

import numpy as np
import pytest

from paceui.notebook import FIELDS, NOTEBOOK_ACTIONS, Dashboard
from paceui.notebook.forms import parse_value
from paceui.notebook.plots import curve_data, errors_html, render_curves
from paceui.session import ACTIONS, Phase, Progress, Session
from paceui.session.testing import tiny_session

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def session(tmp_path: Path):
    s = tiny_session(path=tmp_path / "s")
    yield s
    s.close()


@pytest.fixture
def dash(session: Session):
    d = Dashboard(session, redraw_interval=0, auto_analysis=False)
    yield d
    d.close()


class Gate:
    """Holds the fit thread inside the progress event of iteration ``at`` (a boundary) until released."""

    def __init__(self, session: Session, at: int = 1) -> None:
        self.at, self.reached, self.release = at, threading.Event(), threading.Event()
        self.sub = session.subscribe(self._hold, kinds=["progress"])

    def _hold(self, ev: object) -> None:
        if isinstance(ev, Progress) and ev.total_iterations >= self.at and not self.reached.is_set():
            self.reached.set()
            assert self.release.wait(60)

    def wait(self) -> None:
        assert self.reached.wait(60), "the fit did not reach its first iteration"

    def open(self) -> None:
        self.release.set()
        self.sub.close()


def _text(html: str) -> str:
    import re

    return re.sub(r"<[^>]+>", " ", html)


def test_buttons_come_from_the_action_table(dash: Dashboard) -> None:
    by_name = {a.name: a for a in ACTIONS}
    assert list(dash.buttons) == list(NOTEBOOK_ACTIONS)
    st = dash.session.status
    for name, b in dash.buttons.items():
        assert b.description == by_name[name].title.rstrip("…")
        assert b.disabled is (not by_name[name].enabled(st)), name
    assert not dash.buttons["start"].disabled and dash.buttons["pause"].disabled and dash.buttons["stop"].disabled
    assert "READY" in dash.status_html.value


def test_start_running_progress_pause_resume_stop(dash: Dashboard, session: Session,
                                                 request: pytest.FixtureRequest) -> None:
    request_finalizer = request.addfinalizer
    gate, later = Gate(session, at=1), Gate(session, at=3)
    request_finalizer(gate.open)
    request_finalizer(later.open)
    dash.buttons["start"].click()
    gate.wait()                                   # the fit thread sits at its first iteration boundary
    dash.refresh()
    assert session.status.phase is Phase.RUNNING and "RUNNING" in dash.status_html.value
    assert dash.buttons["start"].disabled and not dash.buttons["pause"].disabled and not dash.buttons["stop"].disabled
    assert dash.progress.value == session.status.iteration >= 1
    n_running, png_running = len(dash.curve_data["x"]), dash.curves.value
    assert n_running >= 2 and "<svg" in png_running
    gate.open()
    later.wait()                                  # two iterations later
    dash.buttons["pause"].click()                 # queued; taken at the next boundary
    later.open()
    assert session.wait(60)
    dash.refresh()
    assert session.status.phase is Phase.PAUSED and "PAUSED" in dash.status_html.value
    assert not dash.buttons["resume"].disabled and dash.buttons["pause"].disabled and dash.buttons["start"].disabled
    assert len(dash.curve_data["x"]) > n_running and dash.curves.value != png_running  # the curve grew
    assert any("paused after" in line for line in dash.log)

    dash.buttons["resume"].click()
    dash.buttons["stop"].click()
    assert session.wait(60)
    dash.refresh()
    st = session.status
    assert st.phase is Phase.STOPPED and st.stop_reason == "user"
    assert "stop reason: stopped by the user" in _text(dash.status_html.value)
    assert dash.buttons["stop"].disabled and not dash.buttons["start"].disabled


def test_iterations_field_and_curve_growth(dash: Dashboard, session: Session) -> None:
    dash.controls.params["start"]["iterations"].value = 4
    dash.buttons["start"].click()
    assert session.wait(60)
    dash.refresh()
    assert session.status.total_iterations == 4
    assert "the requested number of iterations is done" in _text(dash.status_html.value)
    x1, png1, draws = dash.curve_data["x"].copy(), dash.curves.value, dash.redraws
    assert x1[-1] == 4 and np.isfinite(dash.curve_data["train_loss"]).all()
    dash.buttons["start"].click()
    assert session.wait(60)
    dash.refresh()
    assert dash.curve_data["x"][-1] == 8 and len(dash.curve_data["x"]) > len(x1)
    assert dash.redraws == draws + 1 and dash.curves.value != png1
    assert "train" in dash.metrics.value and "RMSE F" in dash.metrics.value


def test_invalid_setting_shows_message_and_changes_nothing(dash: Dashboard, session: Session) -> None:
    before = session.settings
    form = dash.form
    form.fields["kappa"].value = "2"
    assert "kappa" in form.message_text and "[0, 1]" in form.message_text
    assert form.apply_button.disabled
    form.apply_button.click()
    form.fields["maxiter"].value = "ten"
    assert "maxiter: 'ten' is not an integer" in form.message_text
    assert form.apply() is None
    assert session.wait(10)
    dash.refresh()
    assert session.settings == before
    assert form.fields["maxiter"].value == "ten"       # the user's text stays until fixed or reverted
    form.revert_button.click()
    assert form.fields["kappa"].value == "0.3" and form.fields["maxiter"].value == "100"
    assert form.message_text == "no changes"


def test_valid_setting_previews_then_applies(dash: Dashboard, session: Session) -> None:
    form = dash.form
    form.fields["kappa"].value = "0.5"
    assert "kappa: 0.3 → 0.5" in form.message_text and "optimizer state" in form.message_text
    assert not form.apply_button.disabled
    assert session.settings["fit"]["loss"]["kappa"] == 0.3   # a preview changes nothing
    form.apply_button.click()
    fut = form.pending
    assert fut is not None and fut.result(60).changes == (("kappa", 0.3, 0.5),)
    dash.refresh()
    assert session.settings["fit"]["loss"]["kappa"] == 0.5
    assert form.fields["kappa"].value == "0.5" and form.message_text.startswith("applied:")
    assert any(line.split(" ", 1)[1].startswith("settings: kappa") for line in dash.log)


def test_backend_section_is_in_the_form(dash: Dashboard) -> None:
    keys = {f.key for f in FIELDS}
    assert {"evaluator", "scheduler", "n_workers", "threads_per_worker"} <= keys
    form = dash.form
    assert list(form.fields["evaluator"].options) == ["numba", "dask"] and form.fields["evaluator"].value == "numba"
    form.fields["evaluator"].value = "dask"
    form.fields["n_workers"].value = "2"
    form.fields["scheduler"].value = "tcp://127.0.0.1:8786"
    assert form.changes() == {"evaluator": "dask", "scheduler": "tcp://127.0.0.1:8786", "n_workers": 2}
    assert "→ 'dask'" in form.message_text and not form.apply_button.disabled  # the session accepts it
    form.fields["n_workers"].value = "0"
    assert "n_workers" in form.message_text and form.apply_button.disabled  # the session's validation
    form.fields["n_workers"].value = "2"
    form.fields["threads_per_worker"].value = "two"
    assert "threads_per_worker: 'two' is not an integer" in form.message_text and form.apply_button.disabled


def test_parse_value_reads_numbers_lists_and_none() -> None:
    f = {x.key: x for x in FIELDS}
    assert parse_value(f["L1_coeffs"], "1e-8") == 1e-8
    assert parse_value(f["ladder_step"], "[10, 0.2]") == [10, 0.2]
    assert parse_value(f["ladder_step"], "") is None
    assert parse_value(f["kappa"], "auto") == "auto"
    assert parse_value(f["options"], "{gtol: 1.0e-8}") == {"gtol": 1e-8}
    with pytest.raises(ValueError, match="L1_coeffs: a value is required"):
        parse_value(f["L1_coeffs"], " ")


def test_extend_ladder_randomize_and_save(tmp_path: Path) -> None:
    s = tiny_session(path=tmp_path / "lad", fit={"ladder_step": 5})
    d = Dashboard(s, redraw_interval=0, auto_analysis=False)
    try:
        assert not d.buttons["extend_ladder"].disabled
        d.controls.params["start"]["iterations"].value = 2
        d.buttons["start"].click()
        assert s.wait(60)
        d.refresh()
        assert d.basis.value == 5 and d.basis.max == 14
        d.buttons["extend_ladder"].click()
        assert s.wait(60)
        d.refresh()
        assert d.basis.value == 10 and s.status.ladder_step == 1
        assert any("extend_ladder: added 5 functions" in line for line in d.log)
        assert d.curve_data["ladder_step"][-1] == 1

        d.controls.params["randomize"]["seed"].value = "x"
        d.buttons["randomize"].click()
        assert "seed: 'x' is not an integer" in html.unescape(d.controls.message.value)
        d.controls.params["randomize"]["seed"].value = "3"
        d.buttons["randomize"].click()
        assert s.wait(60)
        d.refresh()
        assert any("randomize: relative noise σ=0.05" in line and "(seed 3)" in line for line in d.log)

        d.controls.params["save"]["path"].value = str(tmp_path / "copy")
        d.buttons["save"].click()
        assert s.wait(60)
        d.refresh()
        assert any(line.split(" ", 1)[1].startswith(f"saved generation") and "copy" in line for line in d.log)
        back = Session.load(tmp_path / "copy")
        assert back.status.total_iterations == s.status.total_iterations and back.status.nfuncs == 10
        back.close()
    finally:
        d.close()
        s.close()


def test_analysis_parity_and_error_table(dash: Dashboard, session: Session) -> None:
    session.run(iterations=3)
    dash.analyze(subset="train", wait=True)
    assert dash.parity.value.tobytes().startswith(PNG) and dash.subset.value == "train"
    train = dash.predictions.table
    assert len(train) == 7 and "energy MAE" in dash.analysis_msg.value
    assert dash.errors.value.count("<tr>") == 1 + 7
    worst = train.reindex(train["de_per_atom_mev"].abs().sort_values(ascending=False).index)
    first_row = dash.errors.value.split("<tr>")[2]
    assert worst["name"].iloc[0].rsplit("/", 1)[-1] in first_row   # largest error first
    dash.subset.value = "test"                      # choosing the set evaluates it
    assert dash._analysis is not None
    dash._analysis.result(60)
    dash.refresh()
    assert dash.predictions.subset == "test" and len(dash.predictions.table) == 3
    dash.evaluate.click()
    dash._analysis.result(60)
    dash.refresh()
    assert dash.predictions.subset == "test" and "test set" in dash.analysis_msg.value
    dash.analyze("train", wait=True)                # the toggle shows what was evaluated
    assert dash.subset.value == "train" and dash.predictions.subset == "train"


def test_a_closed_session_refuses_with_a_message(session: Session) -> None:
    d = Dashboard(session, auto_analysis=False)
    try:
        session.close()
        d.buttons["start"].click()
        assert "the session is closed" in d.controls.message.value
    finally:
        d.close()


def test_auto_analysis_when_the_fit_halts(session: Session) -> None:
    d = Dashboard(session, redraw_interval=0)
    try:
        session.run(iterations=2)
        d.refresh()                                # sees the Stopped event: evaluates in its worker
        assert d._analysis is not None
        d._analysis.result(60)
        d.refresh()
        assert d.predictions is not None and d.parity.value.tobytes().startswith(PNG)
    finally:
        d.close()


@pytest.mark.asyncio
async def test_kernel_loop_task_updates_widgets_in_the_loop_thread(session: Session) -> None:
    d = Dashboard(session, poll_interval=0.02, redraw_interval=0, auto_analysis=False)
    try:
        assert d.polling                             # a loop runs: the dashboard updates itself
        loop_thread = threading.get_ident()
        writers: set[int] = set()
        d.curves.observe(lambda _: writers.add(threading.get_ident()), names="value")
        d.status_html.observe(lambda _: writers.add(threading.get_ident()), names="value")
        d.controls.params["start"]["iterations"].value = 6
        d.buttons["start"].click()
        for _ in range(3000):                       # no refresh() here: only the task updates
            if len(d.curve_data["x"]) >= 7 and "STOPPED" in d.status_html.value:
                break
            await asyncio.sleep(0.02)
        assert d.curve_data["x"][-1] == 6 and "STOPPED" in d.status_html.value
        assert writers == {loop_thread}               # never from the fit thread
        st = await d.until(lambda st: st.total_iterations >= 6, timeout=60)
        assert st.total_iterations == 6
    finally:
        d.close()
    await asyncio.sleep(0)
    assert not d.polling


def test_session_dashboard_and_display(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    d = session.dashboard(auto_analysis=False)
    assert isinstance(d, Dashboard) and d.session is session and not d.polling   # no loop runs here
    d.close()
    assert session._repr_mimebundle_() == {"text/plain": repr(session)}   # not in a kernel: no widgets
    monkeypatch.setattr("paceui.notebook._in_kernel", lambda: True)
    bundle = session._repr_mimebundle_()
    assert bundle["text/plain"] == repr(session)
    view = bundle["application/vnd.jupyter.widget-view+json"]
    assert view["version_major"] == 2 and view["model_id"]


def test_curve_data_counts_iterations_across_cycles(session: Session) -> None:
    session.run(iterations=3)
    session.randomize(0.01, seed=1).result(60)     # a new cycle starts with an initial record
    session.run(iterations=2)
    data = curve_data(session.history)
    assert data["x"].tolist() == [0, 1, 2, 3, 3, 4, 5]
    assert data["cycle"].tolist() == [0, 0, 0, 0, 1, 1, 1]
    assert np.allclose(data["train_rmse_epa"], session.history["rmse_epa"] * 1e3)
    assert render_curves(data, "t").startswith(PNG)
    assert "no structures" in errors_html(session.predictions("test").table.iloc[:0])
