"""Modal dialogs: a yes/no question and a small form for an action's parameters (keyboard only)."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any, Callable

import yaml
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Input, Label, Static


class Confirm(ModalScreen[bool]):
    """A question answered with y / n (Esc: no)."""

    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n", "answer(False)", "No"),
                Binding("escape", "answer(False)", "No")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question, id="question")
            yield Static("[b]y[/b] yes   [b]n[/b] no", classes="hint")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


Check = Callable[[dict[str, Any]], "str | None"]
"""A dialog's validation: the values → an error in the user's words (None: fine)."""


class ParamsDialog(ModalScreen[dict[str, Any] | None]):
    """Values for an action's parameters: one line each (YAML values; empty: the default). Enter runs,
    Esc cancels. ``validate`` checks the values inline (the dialog stays open and says what is wrong);
    ``preview`` (values → a Future of something with ``describe()``) shows what they would do, refreshed
    shortly after each edit."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    PREVIEW_DELAY = 0.4  # s after the last edit

    def __init__(self, title: str, fields: list[tuple[str, str, str]], validate: Check | None = None,
                 preview: Callable[[dict[str, Any]], Future[Any]] | None = None) -> None:
        """``fields``: (name, label, initial text)."""
        super().__init__()
        self.title_text, self.fields, self.validate, self.preview = title, fields, validate, preview
        self._timer: Timer | None = None
        self._future: Future[Any] | None = None
        self.preview_text = ""  # what the preview line shows (tests read it)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(f"[b]{self.title_text}[/b]")
            for name, label, text in self.fields:
                yield Label(label)
                yield Input(text, id=f"p-{name}", classes="compact")
            yield Static("", id="params-error", classes="error")
            if self.preview is not None:
                yield Static("", id="params-preview", classes="hint")
            yield Static("Enter: run   Esc: cancel", classes="hint")

    def on_mount(self) -> None:
        if self.preview is not None:
            self._schedule()

    def values(self) -> tuple[dict[str, Any], str | None]:
        """The values read from the fields and the first error (in the user's words), if any."""
        out: dict[str, Any] = {}
        for name, label, _ in self.fields:
            text = self.query_one(f"#p-{name}", Input).value.strip()
            if not text:
                continue
            try:
                out[name] = yaml.safe_load(text)
            except yaml.YAMLError:
                return out, f"{label.split(' (')[0]}: {text!r} is not a value (a number, true/false or a name)"
        return out, self.validate(out) if self.validate is not None else None

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        _, err = self.values()
        self.query_one("#params-error", Static).update(err or "")
        if self.preview is not None:
            self._schedule()

    def _schedule(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(self.PREVIEW_DELAY, self._run_preview)

    def _run_preview(self) -> None:
        values, err = self.values()
        if err or self.preview is None:
            return
        self._show_preview("previewing…")
        self._future = fut = self.preview(values)
        self._await_preview(fut)

    def _await_preview(self, fut: Future[Any]) -> None:
        if fut is not self._future:  # a newer edit asked again
            return
        if not fut.done():
            self.set_timer(0.1, lambda: self._await_preview(fut))
            return
        exc = fut.exception()
        self._show_preview(f"preview: {exc}" if exc is not None else f"preview: {fut.result().describe()}")

    def _show_preview(self, text: str) -> None:
        self.preview_text = text
        self.query_one("#params-preview", Static).update(text)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        out, err = self.values()
        if err:
            self.query_one("#params-error", Static).update(err)  # stays open: the user fixes the value
            return
        self.dismiss(out)

    def action_cancel(self) -> None:
        self.dismiss(None)


def randomize_problem(values: dict[str, Any]) -> str | None:
    """What is wrong with randomize values, in the user's words (None: fine)."""
    sigma = values.get("sigma", 0.1)
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not sigma >= 0 or sigma == float("inf"):
        return f"σ must be a number ≥ 0, e.g. 0.01 (not {sigma!r})"
    if not isinstance(values.get("relative", True), bool):
        return f"relative must be true or false (not {values['relative']!r})"
    seed = values.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        return f"seed must be a whole number ≥ 0, or empty for a random one (not {seed!r})"
    return None


def extend_problem(values: dict[str, Any], left: int) -> str | None:
    """What is wrong with extend-ladder values (None: fine)."""
    n = values.get("n")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n <= 0):
        return f"functions must be a whole number > 0, or empty for the next ladder step (not {n!r})"
    if left <= 0:
        return "the basis already has all the target's functions"
    return None


class KeysHelp(ModalScreen[None]):
    """Every key of the app, with what it does and whether it works now (``?``; Esc or ``?`` closes)."""

    BINDINGS = [Binding("escape", "close", "Close"), Binding("question_mark", "close", "Close", show=False)]

    def __init__(self, rows: list[tuple[str, str, bool]]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        lines = [f"{key:>9}  {desc}" + ("" if on else "  (not now)") for key, desc, on in self.rows]
        with Vertical(classes="dialog"):
            yield Static("[b]Keys[/b]", id="question")
            yield Static("\n".join(lines), id="keys-list")
            yield Static("Esc in a field leaves it (then keys work again); [b]Esc[/b] or [b]?[/b] closes this",
                         classes="hint")

    def action_close(self) -> None:
        self.dismiss(None)
