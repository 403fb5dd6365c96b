"""Pilot tests of the basis editor in the Setup tab: live counts from ``build_potential``, errors naming
the key, and a new session made with the edited basis (the app switches to it)."""

from __future__ import annotations

import copy

import pytest

pytest.importorskip("textual")

from textual.widgets import Input  # noqa: E402

from paceui.ace.basis import build_potential  # noqa: E402
from paceui.session import Session  # noqa: E402
from paceui.session.testing import TINY_BASIS, tiny_session  # noqa: E402
from paceui.tui import PaceApp  # noqa: E402
from paceui.tui.basis_form import BasisError, create_with_basis, edited_potential, field_texts  # noqa: E402
from paceui.tui.dialogs import ParamsDialog  # noqa: E402
from paceui.tui.pane_setup import SetupPane  # noqa: E402
from paceui.tui.testing import text, until  # noqa: E402
from tests.session_fixtures import _cache  # noqa: E402,F401

NRAD = "#basis-functions-nradmax_by_orders"


def test_edited_potential_keeps_other_keys_and_names_bad_keys():
    spec = copy.deepcopy(TINY_BASIS)
    spec["bonds"]["ALL"]["NameOfCutoffFunction"] = "cos"
    texts = field_texts(spec)
    assert texts["basis-functions-nradmax_by_orders"] == "[6, 2, 1]" and texts["basis-elements"] == "[Cu]"
    out = edited_potential(spec, {**texts, "basis-functions-nradmax_by_orders": "[8, 2, 1]", "basis-bonds-dcut": ""})
    assert out["functions"]["ALL"]["nradmax_by_orders"] == [8, 2, 1]
    assert "dcut" not in out["bonds"]["ALL"] and out["bonds"]["ALL"]["NameOfCutoffFunction"] == "cos"
    assert spec["functions"]["ALL"]["nradmax_by_orders"] == [6, 2, 1]   # the session's spec is not changed
    with pytest.raises(BasisError, match=r"potential\.bonds\.ALL\.rcut must be a length"):
        edited_potential(spec, {**texts, "basis-bonds-rcut": "-1"})
    with pytest.raises(BasisError, match="nradmax_by_orders and lmax_by_orders must have the same length"):
        edited_potential(spec, {**texts, "basis-functions-lmax_by_orders": "[0, 1]"})


@pytest.mark.asyncio
async def test_live_counts_errors_and_new_session(tmp_path):
    s = tiny_session(path=tmp_path / "sessions" / "s", name="s")
    app = PaceApp(s, initial_tab="setup")
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(SetupPane)
        preview = app.query_one("#basis-preview")
        nrad = app.query_one(NRAD, Input)
        assert nrad.value == "[6, 2, 1]" and "14 functions" in text(preview)
        nrad.focus()
        await pilot.pause(0.1)
        assert pane.has_class("-basis") and preview.display and not app.query_one("#setup-msg").display

        edited = copy.deepcopy(TINY_BASIS)
        edited["functions"]["ALL"]["nradmax_by_orders"] = [8, 3, 1]
        want = build_potential(edited).counts()
        assert want["functions"] != 14
        nrad.value = "[8, 3, 1]"
        await until(pilot, lambda: pane.basis_counts is not None and pane.basis_counts["functions"] == want["functions"])
        shown = text(preview)
        assert f"{want['functions']} functions" in shown and "edited basis" in shown
        per_rank = want["functions_per_element_rank"]["Cu"]
        assert "Cu   " + "".join(f"{per_rank[r]:>5}" for r in sorted(per_rank)) in shown

        nrad.value = "[8, x]"
        await until(pilot, lambda: pane.basis_error is not None)
        assert "nradmax_by_orders" in text(preview) and "invalid basis" in text(preview)
        assert nrad.has_class("-invalid") and pane.basis_counts is None
        await pilot.press("enter")   # invalid: no dialog, an error notification
        await pilot.pause(0.1)
        assert not isinstance(app.screen, ParamsDialog)
        assert any(m.startswith("no new session") and "nradmax_by_orders" in m for m in app.messages)

        nrad.value = "[8, 3, 1]"
        await until(pilot, lambda: pane.basis_error is None and pane.basis_counts is not None)
        app.query_one("#basis-new").focus()
        await pilot.press("N")   # the key (outside the fields); Esc cancels
        await until(pilot, lambda: isinstance(app.screen, ParamsDialog))
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, ParamsDialog))
        assert app.session is s
        nrad.focus()
        await pilot.press("enter")   # Enter in a basis field
        await until(pilot, lambda: isinstance(app.screen, ParamsDialog))
        folder = app.screen.query_one("#p-folder", Input)
        assert folder.value.endswith("s-2")
        await pilot.press("enter")
        new_path = (tmp_path / "sessions" / "s-2").resolve()
        await until(pilot, lambda: app.session.path == new_path)
        new = app.session
        assert new is not s and new.name == "s-2"
        assert len(new.target.functions()) == want["functions"] and new.status.target_nfuncs == want["functions"]
        assert new.settings["fit"] == s.settings["fit"] and new.data.n_train == s.data.n_train
        await until(pilot, lambda: "s-2" in text(app.query_one("#status")))
        assert f"/{want['functions']} fn" in text(app.query_one("#status"))
        assert app.query_one(NRAD, Input).value == "[8, 3, 1]"
        assert "this session's basis" in text(app.query_one("#basis-preview"))
        await pilot.press("ctrl+q")   # a basis field has the focus: plain q would be typed into it
        await until(pilot, lambda: not app.is_running)
    app.session.close()
    s.close()
    back = Session.load(tmp_path / "sessions" / "s-2")   # saved, self-contained (its own copy of the data)
    assert len(back.target.functions()) == want["functions"]
    assert (tmp_path / "sessions" / "s-2" / "source" / "data.pckl.gzip").is_file()
    back.close()


def test_create_refuses_an_existing_session(tmp_path):
    s = tiny_session(path=tmp_path / "a")
    try:
        s.save()
        with pytest.raises(FileExistsError, match="already holds a session"):
            create_with_basis(s, copy.deepcopy(TINY_BASIS), tmp_path / "a")
    finally:
        s.close()
