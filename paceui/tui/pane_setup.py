"""Setup tab: the session's settings as one-line fields with pacemaker's defaults beside them; every edit
is validated at once through ``Session.preview_settings`` and applied with Enter (or ``c``) through
``Session.change_settings``. The basis is fixed for a session: shown with its functions per element and
rank (current / target of the ladder)."""

from __future__ import annotations

from dataclasses import fields as dc_fields
from typing import Any, Callable

import yaml
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widget import Widget
from textual.widgets import Input, Label, Static

from paceui.fit.config import BackendConfig, FitConfig
from paceui.fit.loss import LossConfig
from paceui.session import Session, SessionStatus, SettingsError
from paceui.tui.format import value_text

_FIT_DEFAULTS = {f.name: f.default for f in dc_fields(FitConfig) if not callable(f.default_factory)}  # type: ignore[misc]
_BACKEND_DEFAULTS = {f.name: f.default for f in dc_fields(BackendConfig)}
_LOSS_DEFAULTS = {f.name: f.default for f in dc_fields(LossConfig)}

# (section, key as change_settings names it, label, where it lives in the settings, pacemaker default)
Getter = Callable[[dict[str, Any], dict[str, Any]], Any]
FIELDS: list[tuple[str, str, str, Getter, Any]] = []


def _add(section: str, key: str, label: str, get: Getter, default: Any) -> None:
    FIELDS.append((section, key, label, get, default))


for _k in ("kappa", "L1_coeffs", "L2_coeffs", "w0_rad", "w1_rad", "w2_rad", "w_orth"):
    _add("Loss", _k, _k, lambda s, o, k=_k: ((s.get("fit") or {}).get("loss") or {}).get(k), _LOSS_DEFAULTS[_k])
_add("Weighting", "weighting", "weighting", lambda s, o: (s.get("fit") or {}).get("weighting"), "uniform")
for _k in ("optimizer", "maxiter", "options", "fit_cycles", "trainable_parameters", "noise_relative_sigma",
           "min_relative_train_loss_per_iter", "early_stopping_patience"):
    _add("Optimizer", _k, _k, lambda s, o, k=_k: (s.get("fit") or {}).get(k), _FIT_DEFAULTS.get(_k))
for _k in ("ladder_step", "ladder_type"):
    _add("Ladder", _k, _k, lambda s, o, k=_k: (s.get("fit") or {}).get(k), _FIT_DEFAULTS.get(_k))
_add("Data", "cutoff", "cutoff (Å)", lambda s, o: s.get("cutoff"), "required")
for _k in ("test_size", "reference_energy"):
    _add("Data", _k, _k, lambda s, o, k=_k: (s.get("data") or {}).get(k), {"test_size": 0}.get(_k, "required"))
for _k in ("evaluator", "scheduler", "n_workers", "threads_per_worker", "display_step"):
    _add("Backend", _k, _k, lambda s, o, k=_k: (s.get("backend") or {}).get(k), _BACKEND_DEFAULTS[_k])
_add("Session", "autosave_every", "autosave_every", lambda s, o: o.get("autosave_every"), 20)


def function_counts_text(target: dict[str, Any], current: dict[str, Any]) -> str:
    """Functions per element and rank, ``current/target`` (the ladder grows current up to target)."""
    ranks = sorted({r for d in target["functions_per_element_rank"].values() for r in d})
    lines = ["[b]functions[/b] (current/target)", "el  " + " ".join(f"{'r' + str(r):>7}" for r in ranks)]
    for el, per in target["functions_per_element_rank"].items():
        cur = current["functions_per_element_rank"].get(el, {})
        lines.append(f"{el:<4}" + " ".join(f"{str(cur.get(r, 0)) + '/' + str(per.get(r, 0)):>7}" for r in ranks))
    lines.append(f"all {current['functions']}/{target['functions']}")
    return "\n".join(lines)


class SetupPane(Widget):
    """Settings form; ``pending`` holds the edited values (already parsed), ``error`` the last validation."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.session: Session | None = None
        self.original: dict[str, str] = {}
        self.pending: dict[str, Any] = {}
        self.error: str | None = None
        self._nfuncs = -1

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="setup-scroll"):
            section = ""
            for sec, key, label, _get, default in FIELDS:
                if sec != section:
                    section = sec
                    yield Static(sec, classes="section")
                with Horizontal(classes="setting"):
                    yield Label(label)
                    yield Input("", id=f"set-{key}", classes="compact", select_on_focus=False)
                    yield Static(f"default {value_text(default) or 'none'}", classes="default")
            yield Static("Basis (fixed for a session; `paceui new` for another)", classes="section")
            yield Static("", id="setup-basis")
        with Horizontal(id="setup-bottom"):
            yield Static("", id="setup-counts")
            yield Static("Edit a value, Enter (or c) applies.", id="setup-msg")

    def load_session(self, session: Session) -> None:
        self.session = session
        settings, options = session.settings, session.options
        self.original = {key: value_text(get(settings, options)) for _s, key, _l, get, _d in FIELDS}
        for key, text in self.original.items():
            inp = self.query_one(f"#set-{key}", Input)
            with inp.prevent(Input.Changed):
                inp.value = text
            inp.remove_class("-invalid")
        self.pending, self.error = {}, None
        basis = {k: v for k, v in (settings.get("potential") or {}).items() if k in ("elements", "embeddings",
                                                                                     "bonds", "functions")}
        self.query_one("#setup-basis", Static).update(yaml.safe_dump(basis, default_flow_style=None, width=70,
                                                                     sort_keys=False).strip())
        self._nfuncs = -1
        self.show_counts(session.status)

    def show_counts(self, status: SessionStatus) -> None:
        if self.session is None or status.nfuncs == self._nfuncs:
            return
        self._nfuncs = status.nfuncs
        self.query_one("#setup-counts", Static).update(
            function_counts_text(self.session.target.counts(), self.session.potential.counts()))

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id and event.input.id.startswith("set-"):
            event.stop()
            self.validate()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id and event.input.id.startswith("set-"):
            event.stop()
            self.apply()

    def _edited(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, text in self.original.items():
            inp = self.query_one(f"#set-{key}", Input)
            inp.remove_class("-invalid")
            if inp.value.strip() == text:
                continue
            try:
                out[key] = yaml.safe_load(inp.value) if inp.value.strip() else None
            except yaml.YAMLError as exc:
                inp.add_class("-invalid")
                raise SettingsError(f"{key}: not a value ({str(exc).splitlines()[0]})") from None
        return out

    def validate(self) -> bool:
        """Check the edited values with ``preview_settings``; show what they would do, or why not."""
        msg = self.query_one("#setup-msg", Static)
        if self.session is None:
            return False
        try:
            self.pending = self._edited()
            report = self.session.preview_settings(**self.pending)
        except (SettingsError, ValueError, TypeError) as exc:
            self.error = str(exc)
            for key in self.pending:
                if key in self.error:
                    self.query_one(f"#set-{key}", Input).add_class("-invalid")
            msg.update(f"[b]✗ invalid[/b]: {self.error}")
            msg.set_class(True, "error")
            return False
        self.error = None
        msg.set_class(False, "error")
        msg.update("Edit a value, Enter (or c) applies." if report.empty else
                   f"[b]Enter applies[/b]:\n{report}")
        return True

    def apply(self) -> None:
        """Apply the edited values (nothing when they are invalid or unchanged)."""
        if self.session is None or not self.validate() or not self.pending:
            if self.error:
                self.app.notify(f"settings not applied: {self.error}", severity="error")
            return
        app: Any = self.app
        session = self.session

        def done(report: Any) -> None:
            app.report(f"settings changed: {str(report).splitlines()[-1]}")
            self.load_session(session)
        app.track(session.change_settings(self.pending), "change settings", done)
