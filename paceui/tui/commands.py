"""Key bindings and command-palette commands, both built from the one action table (``ACTIONS``)."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider

from paceui.session.actions import ACTIONS, Action

if TYPE_CHECKING:
    from paceui.tui.app import PaceApp

SHOWN = ("start", "pause", "resume", "stop", "randomize", "extend_ladder", "save")
"""Actions shown in the footer (the others have keys and palette entries only)."""
TABS = (("setup", "Setup"), ("data", "Data"), ("fit", "Fit"), ("analysis", "Analysis"), ("sessions", "Sessions"),
        ("trust", "Trust"))


def short_title(a: Action) -> str:
    """A footer label: the title's first word (``Randomize coefficients…`` → ``Randomize``)."""
    return a.title.rstrip("…").split()[0]


def action_bindings() -> list[Binding]:
    """Quit and the key list first (even a 60-column footer shows how to quit), one binding per action
    (``act('name')``), then tab switching (1–6, F1–F6)."""
    out = [Binding("q", "quit", "Quit", show=True),
           Binding("question_mark", "keys", "Keys", show=True, key_display="?")]
    out += [Binding(a.key, f"act('{a.name}')", short_title(a), show=a.name in SHOWN, tooltip=a.description)
            for a in ACTIONS]
    for i, (tab, title) in enumerate(TABS, 1):
        out.append(Binding(str(i), f"tab('{tab}')", title, show=False))
        out.append(Binding(f"f{i}", f"tab('{tab}')", title, show=False, priority=True))
    out.append(Binding("escape", "leave_field", "Leave field", show=False))
    out.append(Binding("ctrl+q", "quit", "Quit", show=False, priority=True))
    return out


class ActionCommands(Provider):
    """The session actions in the command palette; actions not enabled now are left out."""

    def _actions(self) -> list[Action]:
        app: PaceApp = self.app  # type: ignore[assignment]
        status = app.session.status
        return [a for a in ACTIONS if a.enabled(status)]

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
