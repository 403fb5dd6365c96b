"""Fixtures shared by the session tests: a private cache directory and a small Zuo Cu frame."""

from __future__ import annotations

import pytest

from paceui.session.testing import zuo_frame


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PACEUI_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def frame():
    return zuo_frame(10)
