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


def test_new_from_data_writes_the_proposed_input_and_opens_it(monkeypatch, tmp_path, capsys):
    """``paceui new DATA``: the recipe's input.yaml (elements, cutoff, basis from the data) is written into the
    session folder, the session is built from it and opened; a pacemaker input is used as it is."""
    import ase.io
    import numpy as np
    from ase.build import bulk
    from ase.calculators.singlepoint import SinglePointCalculator

    from paceui.fit.config import InputConfig
    from paceui.fit.recipe import cutoff_for, summarize

    rng = np.random.default_rng(0)
    frames = []
    for k in range(4):
        at = bulk("Cu", "fcc", a=3.6 + 0.02 * k, cubic=True).repeat(2)
        at.rattle(0.05, seed=k)
        at.calc = SinglePointCalculator(at, energy=-3.5 * len(at) + rng.normal(), forces=rng.normal(size=(32, 3)))
        frames.append(at)
    data = tmp_path / "cu.extxyz"
    ase.io.write(data, frames)
    assert launch.input_for_new(str(launch.DEMO_INPUT), tmp_path / "x") == launch.DEMO_INPUT
    assert not (tmp_path / "x").exists()
    opened: list = []
    monkeypatch.setattr(launch, "run_tui", lambda session, folder=None: opened.append(session) or 0)
    assert cli.main(["new", str(data), "-o", str(tmp_path / "s")]) == 0
    assert "cutoff" in capsys.readouterr().err
    cfg = InputConfig.from_file(tmp_path / "s" / "input.yaml")
    assert cfg.cutoff == cutoff_for(summarize(frames)) and cfg.data["filename"] == "../cu.extxyz"
    (session,) = opened
    try:
        assert session.path == tmp_path / "s" and (tmp_path / "s" / "session.yaml").is_file()
        assert session.status.nfuncs > 0
    finally:
        session.close()
