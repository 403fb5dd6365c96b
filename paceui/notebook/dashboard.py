"""``Dashboard(session)``: steer a session's fit from a Jupyter notebook (ipywidgets 8).

The fit runs in the session's own thread and never touches a widget. The dashboard pulls the
session's events from a :class:`~paceui.session.Subscription` and reads its status and history in
:meth:`Dashboard.refresh`, which runs on the kernel's own event loop: an asyncio task started where a
loop runs (every cell of ipykernel 6 and 7 runs inside it) calls it every ``poll_interval`` seconds
while the kernel is idle or awaiting. Without a running loop (scripts, tests) call ``refresh()``
yourself. A cell that blocks (``session.run()``) holds the loop, so widgets update when it returns;
``await dashboard.until(...)`` waits with live updates.

>>> dash = session.dashboard(); dash      # doctest: +SKIP
>>> await dash.until(lambda st: st.total_iterations >= 20)   # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import html
import math
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

import ipywidgets as w
import numpy as np

from paceui.notebook.controls import TRUST_ACTIONS, ActionBar
from paceui.notebook.forms import SettingsForm
from paceui.notebook.plots import (
    curve_data,
    errors_html,
    gamma_html,
    groups_html,
    metrics_html,
    render_gamma_histogram,
    render_parity,
    selection_html,
)
from paceui.notebook.svg_curves import curves_html
from paceui.session import Changed, Event, Failed, Paused, Phase, Saved, Session, SessionStatus, Stopped

_PHASE_COLORS = {Phase.READY: "#555", Phase.RUNNING: "#1565c0", Phase.PAUSED: "#ef6c00", Phase.STOPPED: "#6a1b9a",
                 Phase.FINISHED: "#2e7d32", Phase.ERROR: "#b00020"}


def status_text(st: SessionStatus) -> str:
    """The status line: phase (with commands pending, at once), where the fit stands, the loss with its
    iteration, basis size and (when halted) why it stopped; before the first record the cold-start
    stage with its elapsed time instead of a NaN loss."""
    phase = st.phase.value + (f" ({st.pending_text()})" if st.pending else "")
    if st.stage:
        return f"{phase} — {st.stage_text()}"
    best = f" (best {st.best_loss:.6g})" if math.isfinite(st.best_loss) else ""
    its = f"{st.total_iterations} iteration{'' if st.total_iterations == 1 else 's'} in total"
    loss = f"loss at iteration {st.total_iterations}: {st.loss:.6g}{best}" if math.isfinite(st.loss) else \
        "no loss yet"
    saved = f"; saved gen {st.generation}" if st.generation else ""
    text = (f"{phase} — ladder step {st.ladder_step}, cycle {st.cycle}, iteration {st.iteration}; "
            f"{its}; {loss}; {st.nfuncs}/{st.target_nfuncs} functions{saved}")
    if st.phase is not Phase.RUNNING and (st.stop_reason or st.stop_message):
        text += f"\nstop reason: {st.stop_message or st.stop_reason}"
        if st.stop_reason and st.stop_message and st.stop_reason not in st.stop_message:
            text += f" ({st.stop_reason})"
    if st.error:
        text += f"\nerror: {st.error}"
    return text


def describe_event(ev: Event) -> str | None:
    """One log line for an event (None for progress and ladder/cycle events, which the curves show)."""
    if isinstance(ev, Stopped):
        return f"stopped after {ev.total_iterations} iterations: {ev.message or ev.reason}"
    if isinstance(ev, Paused):
        return f"paused after {ev.total_iterations} iterations"
    if isinstance(ev, Saved):  # autosaves: the status line's "saved gen N", not the event list
        return None if ev.autosave else f"saved generation {ev.generation} to {ev.path}"
    if isinstance(ev, Changed):
        return f"{ev.action}: {ev.message}"
    if isinstance(ev, Failed):
        return f"error: {ev.message}"
    if ev.kind in ("started", "resumed"):
        return f"{ev.kind} at {getattr(ev, 'total_iterations', '?')} iterations"
    return None


def _close_tree(widget: w.Widget) -> None:
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    widget.close()


class Dashboard:
    """Widgets to steer and watch a :class:`~paceui.session.Session`; display it (``dash`` as a cell's last
    line) to see it.

    ``poll_interval`` (s): how often the kernel-loop task refreshes; ``redraw_interval`` (s): the least
    time between two renderings of the learning curves (PNG); ``auto_analysis``: evaluate the parity
    plots and the error table whenever the fit halts.
    """

    def __init__(self, session: Session, *, poll_interval: float = 0.25, redraw_interval: float = 1.0,
                 auto_analysis: bool = True, log_lines: int = 8) -> None:
        self.session = session
        self.poll_interval, self.redraw_interval, self.auto_analysis = poll_interval, redraw_interval, auto_analysis
        self._sub = session.subscribe(maxlen=1000)
        self.log: list[str] = []
        self._log_lines = log_lines
        self.controls = ActionBar(session, on_error=self._note, on_sent=lambda _: self._show_status(session.status))
        self.buttons = self.controls.buttons
        self.form = SettingsForm(session)
        # what the randomize σ would do: asked when a randomize field changes, shown when ready
        self.randomize_preview = w.HTML()
        self.randomize_preview.add_class("paceui-randomize-preview")
        self._preview: Future[Any] | None = None
        for wid in self.controls.params.get("randomize", {}).values():
            wid.observe(lambda _: self.preview_randomize(), names="value")
        self.status_html = w.HTML()
        self.progress = w.IntProgress(0, min=0, max=1, description="cycle", bar_style="info",
                                      layout=w.Layout(width="360px"))
        self.basis = w.IntProgress(0, min=0, max=1, description="basis", bar_style="success",
                                   layout=w.Layout(width="360px"))
        self.progress_text, self.basis_text = w.Label(""), w.Label("")  # the numbers beside the bars
        # live charts: inline SVG that follows the output's width and the Jupyter theme (svg_curves says why)
        self.curves = w.HTML(layout=w.Layout(width="100%"))
        self.curves.add_class("paceui-curves")
        self.curves.layout.display = "none"  # until the first record
        self.y_scale = w.ToggleButtons(options=["log", "linear"], value="log", description="y",
                                       style={"button_width": "64px"}, tooltip="log or linear y axis")
        self.view = w.ToggleButtons(options=["all", "since last change"], value="all", description="show",
                                    style={"button_width": "128px"},
                                    tooltip="every segment, or only those since the last randomize, "
                                            "extend, settings change or ladder step")
        self.zoom = w.IntRangeSlider(value=(0, 1), min=0, max=1, description="iterations",
                                     continuous_update=False, layout=w.Layout(width="420px"))
        self.zoom.add_class("paceui-zoom")
        self._zoom_follow = True  # the range's end follows the fit until the user narrows it
        for ctl in (self.y_scale, self.view, self.zoom):
            ctl.observe(self._on_view, names="value")
        self.curve_controls = w.HBox([self.y_scale, self.view, self.zoom], layout=w.Layout(flex_flow="row wrap"))
        self.metrics = w.HTML()
        self.log_html = w.HTML()
        self.subset = w.ToggleButtons(options=["train", "test"], value="train", description="set",
                                      style={"button_width": "70px"})
        self.best = w.Checkbox(False, description="best potential", indent=False)
        self.evaluate = w.Button(description="Evaluate", icon="refresh",
                                 tooltip="evaluate the potential on this set (runs beside the fit)")
        self.evaluate.on_click(lambda _: self.analyze())
        self._syncing = False  # set while analyze() shows its own arguments in the toggles
        self.subset.observe(lambda _: None if self._syncing else self.analyze(), names="value")
        self.best.observe(lambda _: None if self._syncing else self.analyze(), names="value")
        self.parity = w.Image(format="png", layout=w.Layout(width="100%", max_width="780px", display="none"))
        self.errors = w.HTML(layout=w.Layout(max_height="320px", overflow="auto"))
        self.groups = w.HTML(layout=w.Layout(overflow="auto"))  # errors per group (and stress) of the set
        self.analysis_msg = w.HTML("<i>press Evaluate (or let the fit halt) for parity plots and errors</i>")
        self.trust_controls = ActionBar(session, on_error=self._note, names=TRUST_ACTIONS)
        self.trust_buttons = self.trust_controls.buttons
        self.trust_head = w.HTML()
        self.gamma_plot = w.Image(format="png", layout=w.Layout(width="100%", max_width="560px"))
        self.trust_table = w.HTML(layout=w.Layout(max_height="320px", overflow="auto"))
        self.gamma_tables: dict[str, Any] = {}   # subset -> the latest GammaTable shown
        self._taken: set[int] = set()           # ids of trust futures already shown
        fit_tab = w.VBox([self.curve_controls, self.curves,
                          w.HBox([self.metrics, self.log_html], layout=w.Layout(grid_gap="24px"))])
        ana_tab = w.VBox([w.HBox([self.subset, self.best, self.evaluate]), self.analysis_msg, self.parity,
                          self.groups, self.errors])
        trust_tab = w.VBox([self.trust_controls.widget, self.trust_head, self.gamma_plot, self.trust_table])
        self.tabs = w.Tab(children=[fit_tab, self.form.widget, ana_tab, trust_tab],
                          titles=("Fit", "Settings", "Analysis", "Trust"))
        self.widget = w.VBox([self.status_html, w.HBox([self.progress, self.progress_text, self.basis,
                                                      self.basis_text]), self.controls.widget,
                              self.randomize_preview,
                              self.tabs], layout=w.Layout(width="100%"))
        self.curve_data: dict[str, np.ndarray] = curve_data(session.history.iloc[:0])
        self.predictions: Any = None
        self.redraws = 0
        self._key: tuple[Any, ...] | None = None
        self._drawn_key: tuple[Any, ...] | None = None
        self._last_draw = -math.inf
        self._cost = 0.0  # s the last rebuild of history, metrics and curves took (UI thread, holding the GIL)
        self._syncing_zoom = False
        self._pool: ThreadPoolExecutor | None = None
        self._analysis: Future[tuple[Any, bytes, str]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.refresh(force=True)
        self.start_polling()

    # ------------------------------------------------------------------ the kernel loop
    def start_polling(self) -> bool:
        """Refresh from an asyncio task on the running loop (the kernel's); False where no loop runs."""
        if self._closed:
            return False
        if self._task is not None and not self._task.done():
            return True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        self._task = loop.create_task(self._poll_forever())
        return True

    @property
    def polling(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _poll_forever(self) -> None:
        while not self._closed:
            try:
                self.refresh()
            except Exception as exc:  # noqa: BLE001 - a dashboard bug must not end its updates silently
                self._note(f"dashboard update failed: {exc!r}")
            await asyncio.sleep(self.poll_interval)

    async def until(self, predicate: Callable[[SessionStatus], bool], timeout: float | None = None) -> SessionStatus:
        """Wait (in a cell: ``await dash.until(...)``) until ``predicate(status)`` holds or the fit halts,
        refreshing the widgets meanwhile; TimeoutError after ``timeout`` s."""
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            self.refresh()
            st = self.session.status
            if predicate(st) or (st.phase is not Phase.RUNNING and self.session.wait(0)):
                return st  # wait(0): the fit thread has nothing left to do
            if end is not None and time.monotonic() > end:
                raise TimeoutError(f"waited {timeout} s; the session is {st.describe()}")
            await asyncio.sleep(self.poll_interval)

    # ------------------------------------------------------------------ updates (the kernel's thread)
    COST_SHARE = 0.02
    """Most of the wall time the rebuilds of a running fit's history, metrics and curves may take."""

    def refresh(self, force: bool = False) -> None:
        """Bring every widget up to date with the session (events, status, curves, metrics, analysis);
        ``force``: render the curves now regardless of ``redraw_interval``."""
        if self._closed:
            return
        halted = False
        for ev in self._sub.poll():
            line = describe_event(ev)
            if line:
                self._note(line)
            halted |= isinstance(ev, (Stopped, Paused, Failed))
            if isinstance(ev, Changed) and ev.action == "settings" and self.form.pending is None:
                self.form.load()
        self.form.poll()
        st = self.session.status
        self._show_status(st)
        key = (st.total_iterations, st.ladder_step, st.cycle, st.iteration, st.loss, st.nfuncs, st.generation)
        # while the fit runs, the history copy, metrics and curves (the GIL the fit thread waits for) are
        # rebuilt at most every redraw_interval, and never more than 1/COST_SHARE of the time
        wait = max(self.redraw_interval, self._cost / self.COST_SHARE)
        due = time.monotonic() - self._last_draw >= wait or st.phase is not Phase.RUNNING
        if force or ((key != self._key or st.stage) and due):
            t0 = time.perf_counter()
            self._key = key
            hist = self.session.history
            self.curve_data = curve_data(hist)
            value = "<div><b>current metrics</b></div>" + metrics_html(hist, st)
            if self.metrics.value != value:
                self.metrics.value = value
            if self._key != self._drawn_key or force:
                self._draw(st, hist)
            self._cost = time.perf_counter() - t0
        if halted and self.auto_analysis:
            self.analyze()
        self._take_analysis()
        self._take_trust()
        self._take_preview()

    def preview_randomize(self) -> Future[Any] | None:
        """Ask the session what the randomize fields' σ would do (shown by :meth:`refresh` when ready)."""
        try:
            args = self.controls.arguments("randomize")
        except (ValueError, KeyError) as exc:
            self.randomize_preview.value = f"<span style='color:#b00020'>⚠ {html.escape(str(exc))}</span>"
            return None
        self.randomize_preview.value = "<i>randomize preview: evaluating…</i>"
        self._preview = self.session.preview_randomize(**args)
        return self._preview

    def _take_preview(self) -> None:
        fut = self._preview
        if fut is None or not fut.done():
            return
        self._preview = None
        exc = fut.exception()
        text = f"⚠ {exc}" if exc is not None else f"randomize preview: {fut.result().describe()}"
        self.randomize_preview.value = f"<span style='font-size:12px'>{html.escape(text)}</span>"

    def _show_status(self, st: SessionStatus) -> None:
        color = _PHASE_COLORS.get(st.phase, "#555")
        first, *rest = status_text(st).split("\n")
        phase, where = first.split(" — ", 1)
        extra = "".join(f"<div>{html.escape(r)}</div>" for r in rest)
        word, _, pending = phase.partition(" ")
        value = (f"<div class='paceui-status'><b style='color:{color}'>{html.escape(word.upper())}</b>"
                 f"{' <i>' + html.escape(pending) + '</i>' if pending else ''} "
                 f"{html.escape(where)}{extra}</div>")
        if self.status_html.value != value:
            self.status_html.value = value
        maxiter = int((self.session.settings.get("fit") or {}).get("maxiter") or 100)
        with self.progress.hold_sync():
            self.progress.max = max(maxiter, st.iteration, 1)
            self.progress.value = st.iteration
            self.progress.bar_style = "info" if st.running else ""
        self.progress_text.value = f"iteration {st.iteration}/{self.progress.max}"
        with self.basis.hold_sync():
            self.basis.max = max(st.target_nfuncs, 1)
            self.basis.value = st.nfuncs
        self.basis_text.value = f"{st.nfuncs}/{st.target_nfuncs} functions"
        self.controls.update(st)
        self.trust_controls.update(st)
        a = self.session.active_set
        head = ("<i>no active set: press Compute active set</i>" if a is None else html.escape(a.describe())
                + (" — <b style='color:#b00020'>stale</b> (the fit moved on)" if st.active_set == "stale" else ""))
        head += (f"<br>{st.n_candidates} candidates" if st.n_candidates else "<br>no candidates loaded")
        head += f", {st.n_selected} selected" if st.n_selected else ""
        if self.trust_head.value != head:
            self.trust_head.value = head

    def _on_view(self, change: Any) -> None:
        if self._syncing_zoom:
            return
        if change["owner"] is self.zoom:
            self._zoom_follow = self.zoom.value[1] >= self.zoom.max
        self._draw(self.session.status)

    def _draw(self, st: SessionStatus, hist: Any = None) -> None:
        n = st.total_iterations
        hist = self.session.history if hist is None else hist
        x_max = int(self.curve_data["x"].max()) if len(self.curve_data["x"]) else 0
        self._syncing_zoom = True
        with self.zoom.hold_sync():
            lo = self.zoom.value[0] if self.zoom.value[0] < x_max else 0
            self.zoom.max = max(x_max, 1)
            if self._zoom_follow:
                self.zoom.value = (lo, self.zoom.max)
        self._syncing_zoom = False
        zoomed = self.zoom.value != (0, self.zoom.max)
        x_range = (float(self.zoom.value[0]), float(self.zoom.value[1])) if zoomed else None
        title = (f"<div class='paceui-curves-title' style='font-size:12px;opacity:.8'>{html.escape(self.session.name)}"
                 f": {st.phase.value}, {n} iteration{'' if n == 1 else 's'}</div>")
        self.curves.value = title + curves_html(hist, self.session.changes, self.y_scale.value == "log",
                                                self.view.value != "all",
                                                x_range)
        self.curves.layout.display = None if len(self.curve_data["x"]) else "none"
        self._drawn_key, self._last_draw = self._key, time.monotonic()
        self.redraws += 1

    def _note(self, line: str) -> None:
        self.log = (self.log + [f"{time.strftime('%H:%M:%S')} {line}"])[-50:]
        items = "".join(f"<li>{html.escape(x)}</li>" for x in reversed(self.log[-self._log_lines:]))
        self.log_html.value = f"<b>events</b><ul style='margin:0;padding-left:1.2em;font-size:12px'>{items}</ul>"

    # ------------------------------------------------------------------ analysis (a worker thread)
    def analyze(self, subset: str | None = None, best: bool | None = None, wait: bool = False) -> Future[Any]:
        """Evaluate the current (or best) potential on ``subset`` in a worker thread (parity plots and the
        per-structure error table); ``wait``: block until done and show it now."""
        self._syncing = True
        try:  # the toggles show what is evaluated
            self.subset.value = subset or self.subset.value
            self.best.value = self.best.value if best is None else bool(best)
        finally:
            self._syncing = False
        subset, best = self.subset.value, self.best.value
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="paceui-dashboard")
        session = self.session

        def job() -> tuple[Any, bytes, str]:
            pred = session.predictions(subset, best)
            title = f"{subset} set, {'best' if best else 'current'} potential: {len(pred.table)} structures"
            return pred, render_parity(pred, title), errors_html(pred.table)

        self.analysis_msg.value = f"<i>evaluating the {html.escape(subset)} set…</i>"
        self._analysis = self._pool.submit(job)
        if wait:
            self._analysis.result()
            self._take_analysis()
        return self._analysis

    def _take_trust(self) -> None:
        """Show the results of finished active-learning commands (γ, selection) in the Trust tab."""
        after: dict[str, Callable[[Any], Any]] = {  # what each command's result shows
            "gamma": self.show_gamma, "select_candidates": self.show_selection,
            "compute_active_set": lambda _: self._gamma_of("train")}  # γ of the training set at once
        for name, fut in self.trust_controls.futures:
            if not fut.done() or id(fut) in self._taken:
                continue
            self._taken.add(id(fut))
            if fut.exception() is not None:
                self._note(f"{name}: {fut.exception()}")
                continue
            if name in after:
                after[name](fut.result())

    def _gamma_of(self, subset: str) -> None:
        self.trust_controls.params["gamma"]["subset"].value = subset
        self.trust_controls.run("gamma")

    def show_gamma(self, table: Any) -> None:
        """A :class:`~paceui.session.trust.GammaTable`: its histogram and per-structure table."""
        self.gamma_tables[table.subset] = table
        values = np.concatenate(table.per_atom) if table.per_atom else np.zeros(0)
        self.gamma_plot.value = render_gamma_histogram(values, table.describe().split(";")[0])
        self.trust_table.value = f"<div>{html.escape(table.describe())}</div>" + gamma_html(table.table)

    def show_selection(self, table: Any) -> None:
        """The D-optimal selection table."""
        g = table["gamma"].to_numpy(float)
        if len(g) and np.isfinite(g).any():
            self.gamma_plot.value = render_gamma_histogram(g, f"γ of the {len(table)} selected structures")
        self.trust_table.value = (f"<div><b>D-optimal selection</b>: {len(table)} structures (compute them with DFT, "
                                  "then Add structures)</div>" + selection_html(table))

    def _take_analysis(self) -> None:
        fut = self._analysis
        if fut is None or not fut.done():
            return
        self._analysis = None
        exc = fut.exception()
        if exc is not None:
            self.analysis_msg.value = f"<span style='color:#b00020'>⚠ {html.escape(str(exc))}</span>"
            return
        self.predictions, png, table = fut.result()
        p = self.predictions
        self.parity.value = png
        self.parity.layout.display = None
        self.errors.value = table
        self.groups.value = groups_html(p.groups)
        sig = (f", stress RMSE {p.stress_rmse_gpa:.4g} GPa, MAE {p.stress_mae_gpa:.4g} GPa ({p.n_stress} with σ)"
               if p.n_stress else "")
        self.analysis_msg.value = (f"{p.subset} set: energy MAE {p.energy_mae_mev:.4g} meV/atom, force RMSE "
                                   f"{p.force_rmse_mev:.4g} meV/Å{sig} ({len(p.table)} structures, largest "
                                   f"errors first)")

    # ------------------------------------------------------------------ display and teardown
    def _repr_mimebundle_(self, **kw: Any) -> Any:
        self.start_polling()
        return self.widget._repr_mimebundle_(**kw)

    def close(self) -> None:
        """Stop updating, drop the subscription and close the widgets (the session is left as it is)."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
        self._sub.close()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        _close_tree(self.widget)

    def __repr__(self) -> str:
        return f"<Dashboard of {self.session!r}>"
