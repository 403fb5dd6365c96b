"""``/``: jump to a setting by name. A fuzzy filter over the settings table's keys, labels and sections and the
basis fields; Enter focuses the chosen field on the Setup tab (instead of Tabbing through the form)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.fuzzy import Matcher
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from paceui.tui.basis_form import BASIS_FIELDS, field_id
from paceui.tui.pane_setup import FIELDS

MAX_SHOWN = 12


def targets() -> list[tuple[str, str, str]]:
    """(widget id, text matched, help shown) of every field of the Setup tab, in its order."""
    out = [(f"set-{f.key}", f"{f.key} — {f.label} ({f.section})", f.help) for f in FIELDS]
    out += [(field_id(sec, key), f"{key} — basis{' ' + sec if sec else ''}", f"default: {hint}")
            for sec, key, hint in BASIS_FIELDS]
    return out


def matches(query: str) -> list[tuple[str, str, str]]:
    """The targets matching ``query`` (fuzzy, best first; all of them for an empty query)."""
    if not query.strip():
        return targets()
    m = Matcher(query.strip())
    scored = [(m.match(text), i, t) for i, t in enumerate(targets()) for text in [t[1]]]
    return [t for score, _, t in sorted((s for s in scored if s[0] > 0), key=lambda s: (-s[0], s[1]))]


class SettingJump(ModalScreen[str | None]):
    """Type part of a setting's name; ↑/↓ choose, Enter jumps (dismisses with the field's id), Esc cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("down", "move(1)", show=False),
                Binding("up", "move(-1)", show=False)]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="jump"):
            yield Static("[b]Jump to a setting[/b]")
            yield Input(placeholder="name, e.g. lmax or kappa", id="jump-query", classes="compact")
            yield OptionList(id="jump-list")
            yield Static("", id="jump-help", classes="hint")
            yield Static("↑/↓ choose   Enter: go   Esc: cancel", classes="hint")

    def on_mount(self) -> None:
        self._show("")
        self.query_one("#jump-query", Input).focus()

    def _show(self, query: str) -> None:
        found = matches(query)
        ol = self.query_one("#jump-list", OptionList)
        ol.clear_options()
        ol.add_options([Option(text, id=ident) for ident, text, _ in found[:MAX_SHOWN]])
        ol.highlighted = 0 if found else None
        self._help(found[0][2] if found else "no setting matches")

    def _help(self, text: str) -> None:
        self.query_one("#jump-help", Static).update(text)

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._show(event.value)

    def action_move(self, step: int) -> None:
        ol = self.query_one("#jump-list", OptionList)
        if ol.option_count:
            ol.highlighted = ((ol.highlighted or 0) + step) % ol.option_count
            helps = {ident: h for ident, _, h in targets()}
            self._help(helps.get(str(ol.get_option_at_index(ol.highlighted).id), ""))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        ol = self.query_one("#jump-list", OptionList)
        if ol.highlighted is None:
            return
        self.dismiss(str(ol.get_option_at_index(ol.highlighted).id))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(str(event.option.id))

    def action_cancel(self) -> None:
        self.dismiss(None)
