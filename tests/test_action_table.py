"""The action table drives the front ends as data: a new row (and its engine handler, nothing else) is a TUI
key binding, a command-palette command and a notebook button, and each of them runs the handler. Also the
TUI's ``/`` jump to a setting and the F1 help listing every key."""

from __future__ import annotations

import pytest

pytest.importorskip("textual")
pytest.importorskip("ipywidgets")

from pathlib import Path  # noqa: E402

from textual.widgets import Input, TabbedContent  # noqa: E402

import paceui.tui.app as app_module  # noqa: E402
from paceui.session import Changed  # noqa: E402
from paceui.session import actions as table  # noqa: E402
from paceui.session.actions import Action, Param  # noqa: E402
from paceui.session.engine import Engine  # noqa: E402
from paceui.session.testing import tiny_session  # noqa: E402
from paceui.tui import PaceApp  # noqa: E402
from paceui.tui.commands import ActionCommands, action_bindings  # noqa: E402
from paceui.tui.dialogs import KeysHelp, ParamsDialog  # noqa: E402
from paceui.tui.jump import SettingJump, matches  # noqa: E402
from paceui.tui.testing import text, until  # noqa: E402
from tests.session_fixtures import _cache  # noqa: E402,F401

pytestmark = pytest.mark.asyncio


@pytest.fixture
def session(tmp_path):
    s = tiny_session(path=tmp_path / "s")
    yield s
    s.close()


async def test_a_new_row_is_a_binding_a_palette_command_and_a_button(session, monkeypatch):
    calls: list[int] = []

    def _cmd_ping(engine: Engine, times: int | None = None) -> int:  # the handler: the only other edit
        calls.append(times or 1)
        engine.s.emit(Changed("ping", f"pinged {times or 1}"))
        return times or 1

    row = Action("ping", "Ping the engine…", "Answer with the number of pings", "j", lambda s: True,
                 (Param("times", "how many pings", "int?", None, "times"),), method="", icon="bell")
    monkeypatch.setattr(table, "ACTIONS", table.ACTIONS + (row,))
    monkeypatch.setitem(Engine.HANDLERS, "ping", _cmd_ping)

    bindings = action_bindings()
    assert [b.action for b in bindings if b.key == "j"] == ["act('ping')"]

    class App(PaceApp):
        BINDINGS = bindings
        CSS_PATH = str(Path(app_module.__file__).parent / "paceui.tcss")

    app = App(session, initial_tab="fit")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("j")                                       # the key: a dialog for its parameter
        assert isinstance(app.screen, ParamsDialog)
        app.screen.query_one("#p-times", Input).value = "3"
        await pilot.press("enter")
        await until(pilot, lambda: calls == [3] and any(m == "ping: pinged 3" for m in app.messages))

        provider = ActionCommands(app.screen)                        # the command palette
        hits = [h async for h in provider.search("ping")]
        assert [str(h.text) for h in hits] == ["Ping the engine…"]
        found = [h async for h in provider.discover()]
        assert "Ping the engine…" in [str(h.text) for h in found]

    from paceui.notebook.controls import ActionBar, notebook_actions

    assert "ping" in notebook_actions()
    bar = ActionBar(session)                                         # the notebook button, with its field
    assert bar.buttons["ping"].icon == "bell" and "times" in bar.params["ping"]
    bar.params["ping"]["times"].value = "2"
    bar.buttons["ping"].click()
    assert session.wait(60) and calls == [3, 2]
    assert bar.futures[-1][1].result() == 2


async def test_slash_jumps_to_a_setting_by_name(session):
    assert matches("lmax")[0][0] == "basis-functions-lmax_by_orders"
    assert matches("patience")[0][0] == "set-early_stopping_patience"
    app = PaceApp(session, initial_tab="fit")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("slash")
        assert isinstance(app.screen, SettingJump)
        await pilot.press(*"lmax", "enter")                          # 36+ Tabs on the Setup tab before
        await until(pilot, lambda: getattr(app.focused, "id", None) == "basis-functions-lmax_by_orders")
        assert app.query_one(TabbedContent).active == "setup"

        await pilot.press("escape", "slash", *"kappa", "enter")      # from the Setup tab itself
        await until(pilot, lambda: getattr(app.focused, "id", None) == "set-kappa")

        await pilot.press("escape", "slash", *"zzzz")                # nothing matches: Enter does nothing
        assert "no setting matches" in text(app.screen.query_one("#jump-help"))
        await pilot.press("enter", "escape")
        await until(pilot, lambda: not isinstance(app.screen, SettingJump))
        assert getattr(app.focused, "id", None) != "basis-functions-lmax_by_orders"


async def test_f1_lists_every_key_of_the_action_table(session):
    app = PaceApp(session, initial_tab="setup")
    async with app.run_test(size=(120, 50)) as pilot:
        app.query_one("#set-maxiter", Input).focus()
        await pilot.press("f1")
        assert isinstance(app.screen, KeysHelp)
        listing = text(app.screen.query_one("#keys-list"))
        for a in table.ACTIONS:
            assert a.title in listing, f"{a.name} missing from the help"
        assert "maxiter (fit.maxiter): max iterations per cycle" in listing   # the focused setting first
        assert "Jump to a setting by name" in listing and "/" in listing
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, KeysHelp))
