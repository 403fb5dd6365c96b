"""The command line around the TUI: argument routing, clear errors before any screen opens, the demo
session (created once, resumed afterwards), and the other subcommands left as they were."""

from __future__ import annotations

from pathlib import Path

import pytest

from paceui import cli
from paceui.session.testing import tiny_session
from paceui.tui import launch
from tests.session_fixtures import _cache  # noqa: F401


def test_session_dir_that_is_not_a_session(tmp_path, capsys):
    assert cli.main([str(tmp_path / "nothing")]) == 1
    err = capsys.readouterr().err
    assert "not a saved session" in err and "paceui new" in err


def test_new_refuses_an_existing_session(tmp_path, capsys):
    s = tiny_session(path=tmp_path / "s")
    s.save()
    s.close()
    assert cli.main(["new", str(launch.DEMO_INPUT), "-o", str(tmp_path / "s")]) == 1
    assert "already holds a session" in capsys.readouterr().err


def test_routing(monkeypatch, tmp_path):
    calls: list[tuple] = []
    monkeypatch.setattr(launch, "main_demo", lambda: calls.append(("demo",)) or 0)
    monkeypatch.setattr(launch, "main_open", lambda p: calls.append(("open", p)) or 0)
    monkeypatch.setattr(launch, "main_new", lambda i, o: calls.append(("new", i, o)) or 0)
    assert cli.main([]) == 0 and cli.main([str(tmp_path)]) == 0
    assert cli.main(["new", "in.yaml", "-o", "out"]) == 0
    assert calls == [("demo",), ("open", str(tmp_path)), ("new", "in.yaml", "out")]
    with pytest.raises(SystemExit):
        cli.main(["info"])  # a subcommand keeps its own arguments (here: missing)


def test_demo_session_is_created_then_resumed(tmp_path, monkeypatch):
    monkeypatch.setattr(launch, "DEMO_INPUT", Path(tmp_path / "in.yaml"))
    s = tiny_session(path=tmp_path / "demo" / "session")
    s.save()
    s.close()
    again, new = launch.demo_session(tmp_path / "demo")
    assert not new and again.path == (tmp_path / "demo" / "session").resolve()
    again.close()
    with pytest.raises(FileNotFoundError, match="demo input not found"):
        launch.demo_session(tmp_path / "elsewhere")
