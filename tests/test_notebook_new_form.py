"""The notebook's "start from data" form (issue 15): clicks propose elements, cutoff and a basis from real
training data, write the input.yaml used, and create the session from it; the proposal is the CLI's
(``paceui new DATA``: :func:`paceui.session.from_data.input_for_new`)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import SHARED

NI = SHARED / "zuo" / "Ni_train.xyz.gz"


@pytest.fixture
def ni_data(tmp_path: Path) -> tuple[Path, list]:
    """The first 12 structures of the shared Zuo Ni training set as an extxyz file."""
    if not NI.exists():
        pytest.skip(f"{NI} not found (the shared/ folder beside the checkout)")
    import ase.io

    frames = ase.io.read(NI, index=":12")
    out = tmp_path / "ni12.xyz"
    ase.io.write(out, frames, format="extxyz")
    return out, frames


def test_form_proposes_from_the_data_writes_the_input_it_uses_and_creates_the_session(tmp_path, ni_data):
    pytest.importorskip("ipywidgets")
    from paceui.fit.recipe import cutoff_for, summarize
    from paceui.notebook import NewSessionForm
    from paceui.session.from_data import input_for_new

    data, frames = ni_data
    folder = tmp_path / "sessions" / "ni"
    created = []
    form = NewSessionForm(on_created=created.append)
    assert form.create_button.disabled
    form.propose_button.click()  # nothing given: said inline, nothing written
    assert "⚠" in form.message.value and "training data" in form.message.value
    form.data.value = str(tmp_path / "missing.xyz")
    form.folder.value = str(folder)
    form.propose_button.click()
    assert "⚠" in form.message.value and "not found" in form.message.value and form.create_button.disabled
    assert not (folder / "input.yaml").exists()

    form.data.value = str(data)
    form.propose_button.click()
    written = folder / "input.yaml"
    assert form.input_file == written and written.exists() and not form.create_button.disabled
    proposed = yaml.safe_load(written.read_text())
    assert proposed["potential"]["elements"] == ["Ni"]
    assert proposed["cutoff"] == cutoff_for(summarize(frames)) == proposed["potential"]["bonds"]["ALL"]["rcut"]
    assert (folder / proposed["data"]["filename"]).resolve() == data.resolve()
    assert "12 structures" in form.message.value and "Ni" in form.proposal.value
    # the CLI's proposal for the same data (paceui new DATA), written elsewhere at the same depth: the same file
    cli_out, _ = input_for_new(str(data), tmp_path / "sessions" / "cli")
    assert yaml.safe_load(cli_out.read_text()) == proposed

    form.minutes.value = 2.0  # an edit makes the proposal stale
    assert form.create_button.disabled and "Propose again" in form.message.value
    form.minutes.value = 10.0
    form.propose_button.click()
    form.create_button.click()
    s = form.session
    assert s is not None and created == [s]
    try:
        assert (folder / "session.yaml").exists() and s.path == folder
        assert s.settings["cutoff"] == proposed["cutoff"] and s.target.elements == ["Ni"]
        assert s.data.train.n_struct + (s.data.test.n_struct if s.data.test is not None else 0) == 12
        assert form.dashboard is not None and form.widget.children[-1] is form.dashboard.widget
        again = NewSessionForm(data=data, folder=folder)  # the folder now holds a session: refused, in words
        again.propose_button.click()
        assert "already holds a session" in again.message.value and again.create_button.disabled
    finally:
        form.dashboard.close()
        s.close()
