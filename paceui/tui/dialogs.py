"""Modal dialogs: a yes/no question and a small form for an action's parameters (keyboard only)."""

from __future__ import annotations

from typing import Any

import yaml
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
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


class ParamsDialog(ModalScreen[dict[str, Any] | None]):
    """Values for an action's parameters: one line each (YAML values; empty: the default). Enter runs,
    Esc cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, fields: list[tuple[str, str, str]]) -> None:
        """``fields``: (name, label, initial text)."""
        super().__init__()
        self.title_text, self.fields = title, fields

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(f"[b]{self.title_text}[/b]")
            for name, label, text in self.fields:
                yield Label(label)
                yield Input(text, id=f"p-{name}", classes="compact")
            yield Static("", id="params-error", classes="error")
            yield Static("Enter: run   Esc: cancel", classes="hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        out: dict[str, Any] = {}
        for name, _, _ in self.fields:
            text = self.query_one(f"#p-{name}", Input).value.strip()
            if not text:
                continue
            try:
                out[name] = yaml.safe_load(text)
            except yaml.YAMLError:
                self.query_one("#params-error", Static).update(f"{name}: cannot read {text!r}")
                return
        self.dismiss(out)

    def action_cancel(self) -> None:
        self.dismiss(None)


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
