"""Table helpers shared by the Data and Analysis tabs: filtering a frame by a typed query and filling a
DataTable (names shortened, numbers rounded)."""

from __future__ import annotations

import operator
import re
from typing import Any, Callable

import pandas as pd
from textual.widgets import DataTable

from paceui.tui.format import num, short_name

_OPS: dict[str, Callable[[Any, Any], Any]] = {"<=": operator.le, ">=": operator.ge, "<": operator.lt,
                                               ">": operator.gt, "==": operator.eq, "=": operator.eq}
_COND = re.compile(r"^\s*(\w+)\s*(<=|>=|==|=|<|>)\s*([-+0-9.eE]+)\s*$")


def filter_frame(frame: pd.DataFrame, query: str) -> tuple[pd.DataFrame, str | None]:
    """Rows matching ``query``: ``column op number`` (e.g. ``n_atoms>50``, ``f_max<=2``) or text found in
    any text column (case-insensitive); returns (rows, problem or None)."""
    q = query.strip()
    if not q:
        return frame, None
    if m := _COND.match(q):
        col, op, val = m.groups()
        if col not in frame:
            return frame, f"no column {col!r}; columns: {', '.join(map(str, frame.columns))}"
        try:
            return frame[_OPS[op](frame[col].astype(float), float(val))], None
        except ValueError as exc:
            return frame, f"{q}: {exc}"
    text = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])
            and not pd.api.types.is_bool_dtype(frame[c])]
    mask = pd.Series(False, index=frame.index)
    for c in text:
        mask |= frame[c].astype(str).map(short_name).str.contains(q, case=False, regex=False)
    return frame[mask], None


def _cell(col: str, v: Any, scale: float) -> str:
    if col == "name":
        return short_name(v)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return num(v * scale if scale != 1 else v, 5)
    return str(v)


def column_widths(frame: pd.DataFrame, columns: list[tuple[str, str, float]], limit: int = 2000) -> list[int]:
    """The width of each column for the cells of ``frame`` (its first ``limit`` rows) and the header."""
    head = frame.head(limit)
    return [max([len(header)] + [len(_cell(col, v, scale)) for v in head[col]] if col in head else [len(header)])
            for col, header, scale in columns]


def fill_table(table: DataTable, frame: pd.DataFrame, columns: list[tuple[str, str, float]],
               limit: int = 2000, widths_from: pd.DataFrame | None = None) -> None:
    """Replace the rows of ``table`` with ``frame`` (columns: (frame column, header, scale)); row keys
    are the frame's index. ``widths_from``: the unfiltered frame, whose widths the columns keep (a
    search that leaves few rows does not shrink them to the header)."""
    table.clear(columns=True)
    widths = column_widths(widths_from if widths_from is not None else frame, columns, limit)
    for (_col, header, _scale), width in zip(columns, widths):
        table.add_column(header, key=header, width=width)
    for idx, row in frame.head(limit).iterrows():
        table.add_row(*[_cell(col, row[col], scale) for col, _h, scale in columns], key=str(idx))
