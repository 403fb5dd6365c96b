"""The notebook's "start from data" form: what ``paceui new DATA`` does, with buttons.

Propose reads the training file and writes the recipe's ``input.yaml`` (elements, cutoff from the
nearest-neighbour distances and density, a basis and iterations sized for the fit time asked for) into the
session folder, and shows it; Create session builds the session from that very file and shows its
dashboard. The proposal is :func:`paceui.session.from_data.input_for_new`, the CLI's; nothing is decided
here.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Callable

import ipywidgets as w

from paceui.session import Session
from paceui.session.from_data import input_for_new
from paceui.session.store import SESSION_FILE


def _note(text: str, error: bool = False) -> str:
    """One message line (errors in the dashboard's style)."""
    t = html.escape(text)
    return f"<span style='color:#b00020'>⚠ {t}</span>" if error else f"<span>{t}</span>"


class NewSessionForm:
    """Fields (training data, session folder, fit minutes, validation fraction), Propose and Create
    buttons; ``input_file`` is the proposal written, ``session`` the session created (else None),
    ``dashboard`` its :class:`~paceui.notebook.Dashboard` (shown below the form)."""

    def __init__(self, data: str | Path = "", folder: str | Path = "", minutes: float = 10.0,
                 test_size: float = 0.1, on_created: Callable[[Session], None] | None = None) -> None:
        style = {"description_width": "9em"}
        wide = w.Layout(width="min(100%, 44em)")
        self.data = w.Text(str(data), description="training data", placeholder="extxyz or pacemaker .pckl.gzip",
                           style=style, layout=wide)
        self.folder = w.Text(str(folder), description="session folder",
                             placeholder="default: sessions/<data file name>", style=style, layout=wide)
        self.minutes = w.BoundedFloatText(minutes, min=0.5, max=1e5, description="fit minutes", style=style)
        self.test_size = w.BoundedFloatText(test_size, min=0.0, max=0.5, step=0.05, description="validation",
                                            style=style)
        self.propose_button = w.Button(description="Propose input.yaml", button_style="primary")
        self.create_button = w.Button(description="Create session", disabled=True)
        self.message = w.HTML(_note("Give a training file and press Propose."))
        self.proposal = w.HTML("")
        self.input_file: Path | None = None
        self.session: Session | None = None
        self.dashboard: Any = None
        self.on_created = on_created
        self.propose_button.on_click(lambda _b: self.propose())
        self.create_button.on_click(lambda _b: self.create())
        for f in (self.data, self.folder, self.minutes, self.test_size):
            f.observe(self._edited, names="value")
        self.widget = w.VBox([w.HTML("<b>Start from data</b>"), self.data, self.folder,
                              w.HBox([self.minutes, self.test_size]),
                              w.HBox([self.propose_button, self.create_button]), self.message, self.proposal])

    def _repr_mimebundle_(self, **kw: Any) -> Any:
        return self.widget._repr_mimebundle_(**kw)

    def _edited(self, _change: Any) -> None:
        """An edit after a proposal makes it stale: Create waits for a new Propose."""
        if self.input_file is not None and self.session is None:
            self.input_file, self.create_button.disabled = None, True
            self.message.value = _note("The fields changed: Propose again.")

    def target(self) -> Path:
        """The session folder (``sessions/<data file name>`` when left empty)."""
        given = self.folder.value.strip()
        return Path(given) if given else Path("sessions") / Path(self.data.value.strip()).name.split(".")[0]

    def propose(self) -> Path | None:
        """Write the proposal's input.yaml into the session folder and show it (None, with the reason shown,
        when the data cannot be read or the folder already holds a session)."""
        src = self.data.value.strip()
        self.input_file, self.create_button.disabled = None, True
        self.proposal.value = ""
        if not src:
            self.message.value = _note("training data: give the path of a training file", error=True)
            return None
        folder = self.target()
        if (folder / SESSION_FILE).exists():
            self.message.value = _note(f"{folder} already holds a session: open it with Session.load('{folder}') "
                                       "or give another session folder", error=True)
            return None
        self.message.value = _note(f"reading {src} …")
        try:
            out, summary = input_for_new(src, folder, minutes=self.minutes.value, test_size=self.test_size.value)
        except Exception as exc:  # noqa: BLE001 - any reading error is the user's to see, in one line
            self.message.value = _note(f"{src}: {exc}", error=True)
            return None
        self.input_file = out
        self.message.value = _note(summary or f"{src} is an input file: Create session uses it as it is")
        self.proposal.value = f"<pre style='white-space:pre-wrap'>{html.escape(out.read_text())}</pre>"
        self.create_button.disabled = False
        return out

    def create(self) -> Session | None:
        """Build and save the session of the proposed input.yaml in the session folder, show its dashboard."""
        if self.input_file is None:
            self.message.value = _note("Propose an input.yaml first", error=True)
            return None
        folder = self.target()
        self.create_button.disabled = self.propose_button.disabled = True
        self.message.value = _note(f"building the basis and preparing the data of {self.input_file} …")
        try:
            session = Session.from_input(self.input_file, path=folder)
            session.save()
        except Exception as exc:  # noqa: BLE001
            self.message.value = _note(f"{self.input_file}: {exc}", error=True)
            self.create_button.disabled = self.propose_button.disabled = False
            return None
        self.session = session
        self.message.value = _note(f"session saved in {folder}; it fits from {self.input_file} (Start below)")
        from paceui.notebook.dashboard import Dashboard

        self.dashboard = Dashboard(session)
        self.widget.children = (*self.widget.children, self.dashboard.widget)
        self.dashboard.start_polling()  # in a kernel (its loop runs): the dashboard follows the fit
        if self.on_created is not None:
            self.on_created(session)
        return session
