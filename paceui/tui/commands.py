"""Key bindings and command-palette commands, both built from the one action table (``ACTIONS``), read when
they are built (a row added to the table is a key, a footer entry and a palette command, nothing else)."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from textual.binding import Binding, BindingType
from textual.command import DiscoveryHit, Hit, Hits, Provider

from paceui.session import actions as table
from paceui.session.actions import Action

if TYPE_CHECKING:
    from paceui.tui.app import PaceApp

TABS = (("setup", "Setup"), ("data", "Data"), ("fit", "Fit"), ("analysis", "Analysis"), ("sessions", "Sessions"),
        ("trust", "Trust"))


def short_title(a: Action) -> str:
    """A footer label: the title's first word (``Randomize coefficients…`` → ``Randomize``)."""
    return a.title.rstrip("…").split()[0]


def action_bindings() -> list[BindingType]:
    """Quit and the key list first (even a 60-column footer shows how to quit), one binding per action
    (``act('name')``; in the footer: the table's ``footer`` rows), then tab switching (1–6, F2–F6), help (F1)
    and the jump to a setting (/)."""
    out: list[BindingType] = [Binding("q", "quit", "Quit", show=True),
                              Binding("question_mark", "keys", "Keys", show=True, key_display="?")]
    out += [Binding(a.key, f"act('{a.name}')", short_title(a), show=a.footer, tooltip=a.description)
            for a in table.ACTIONS]
    for i, (tab, title) in enumerate(TABS, 1):
        out.append(Binding(str(i), f"tab('{tab}')", title, show=False))
        if i > 1:
            out.append(Binding(f"f{i}", f"tab('{tab}')", title, show=False, priority=True))
    out.append(Binding("f1", "keys", "Help: every key", show=False, priority=True))
    out.append(Binding("slash", "jump", "Jump to a setting by name", show=False, key_display="/"))
    out.append(Binding("escape", "leave_field", "Leave field", show=False))
    out.append(Binding("ctrl+q", "quit", "Quit", show=False, priority=True))
    return out


class ActionCommands(Provider):
    """The session actions in the command palette; actions not enabled now are left out."""

    def _actions(self) -> list[Action]:
        app: PaceApp = self.app  # type: ignore[assignment]
        status = app.session.status
        return [a for a in table.ACTIONS if a.enabled(status)]

    async def discover(self) -> Hits:
        app: PaceApp = self.app  # type: ignore[assignment]
        for a in self._actions():
            yield DiscoveryHit(a.title, partial(app.run_named_action, a.name), help=a.description)

    async def search(self, query: str) -> Hits:
        app: PaceApp = self.app  # type: ignore[assignment]
        matcher = self.matcher(query)
        for a in self._actions():
            score = matcher.match(a.title)
            if score > 0:
                yield Hit(score, matcher.highlight(a.title), partial(app.run_named_action, a.name), help=a.description)
