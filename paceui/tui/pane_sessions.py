"""Sessions tab: the saved sessions under a folder (read from their ``session.yaml``, nothing loaded),
open one (Enter on its row), and save the current session under a new folder ("save as")."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import Any

import yaml
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import DataTable, Input, Label, Static
from textual.worker import Worker, WorkerState

from paceui.session import Session
from paceui.session.store import SESSION_FILE
from paceui.tui.format import num


def shown_path(p: Path) -> str:
    """``p`` relative to the working folder when it lies below it (short, and the same on every machine)."""
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve())) or "."
    except ValueError:
        return str(p)


def list_sessions(folder: Path) -> list[dict[str, Any]]:
    """Sessions saved in ``folder`` (its sub-folders, and the folder itself), with their status."""
    out: list[dict[str, Any]] = []
    if not folder.is_dir():
        return out
    cands = [folder] + sorted(p for p in folder.iterdir() if p.is_dir())
    for p in cands:
        f = p / SESSION_FILE
        if not f.is_file():
            continue
        try:
            doc = yaml.safe_load(f.read_text()) or {}
        except (OSError, yaml.YAMLError):
            doc = {"name": "(unreadable)"}
        st = doc.get("status") or {}
        out.append({"path": p, "folder": p.name, "name": str(doc.get("name", p.name)),
                    "phase": str(st.get("phase", "?")), "iterations": st.get("total_iterations", 0),
                    "loss": st.get("loss"), "functions": f"{st.get('nfuncs', '?')}/{st.get('target_nfuncs', '?')}",
                    "generation": doc.get("generation", 0)})
    return out


class SessionsPane(Widget):
    """Folder line, sessions table (Enter opens), save-as line (Enter saves)."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.rows: list[dict[str, Any]] = []
        self._scanned: tuple[Path, float] | None = None  # (folder, time.monotonic()) of the last scan

    def compose(self) -> ComposeResult:
        with Horizontal(classes="bar"):
            yield Label("folder ")
            yield Input(id="sessions-folder", classes="compact")
        yield Static("", id="sessions-info")
        yield DataTable(id="sessions-table", cursor_type="row", zebra_stripes=True)
        with Horizontal(classes="bar"):
            yield Label("save as")
            yield Input(placeholder="folder for a copy of this session (Enter saves)", id="sessions-saveas",
                        classes="compact")

    def load_session(self, session: Session) -> None:
        app: Any = self.app
        inp = self.query_one("#sessions-folder", Input)
        with inp.prevent(Input.Changed):
            inp.value = shown_path(Path(app.folder))
        self.rescan()

    def focus_table(self) -> None:
        self.query_one("#sessions-table", DataTable).focus()

    def rescan_in_background(self, max_age: float = 2.0) -> None:
        """Rescan in a thread worker (what a tab switch does): the UI thread only fills the table; a scan
        of the same folder younger than ``max_age`` s is kept (cached)."""
        folder = Path(self.query_one("#sessions-folder", Input).value or ".")
        if self._scanned is not None and self._scanned[0] == folder and time.monotonic() - self._scanned[1] < max_age:
            return
        self._scan(folder)

    @work(thread=True, exclusive=True, group="sessions-scan", exit_on_error=False)
    def _scan(self, folder: Path) -> tuple[Path, list[dict[str, Any]]]:
        return folder, list_sessions(folder)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "sessions-scan" and event.state is WorkerState.SUCCESS and event.worker.result:
            folder, rows = event.worker.result
            self._fill(folder, rows)

    def rescan(self) -> None:
        folder = Path(self.query_one("#sessions-folder", Input).value or ".")
        self._fill(folder, list_sessions(folder))

    def _fill(self, folder: Path, rows: list[dict[str, Any]]) -> None:
        app: Any = self.app
        self.rows, self._scanned = rows, (folder, time.monotonic())
        table = self.query_one("#sessions-table", DataTable)
        table.clear(columns=True)
        table.add_columns("folder", "name", "phase", "iterations", "loss", "functions", "saved gen.")
        current = app.session.path
        for i, r in enumerate(self.rows):
            mark = "● " if current is not None and r["path"].resolve() == current else ""
            table.add_row(mark + r["folder"], r["name"], r["phase"], str(r["iterations"]), num(r["loss"]),
                          r["functions"], str(r["generation"]), key=str(i))
        self.query_one("#sessions-info", Static).update(
            f"{len(self.rows)} session(s) in {folder.name or folder}; Enter opens, ● is open")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        app: Any = self.app
        if event.input.id == "sessions-folder":
            event.stop()
            app.folder = Path(event.value)
            self.rescan()
        elif event.input.id == "sessions-saveas" and event.value.strip():
            event.stop()
            target = Path(event.value.strip())
            if not target.is_absolute() and target.parent == Path("."):
                target = Path(app.folder) / target
            app.save(target, partial(self._saved_as, app))

    def _saved_as(self, app: Any, path: Any) -> None:
        app.report(f"saved as {Path(path).name}")
        self.rescan()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id != "sessions-table" or event.row_key.value is None:
            return
        event.stop()
        row = self.rows[int(event.row_key.value)]
        app: Any = self.app
        if app.session.path is not None and row["path"].resolve() == app.session.path:
            app.report("this session is already open")
            return
        app.open_session(row["path"])
