"""The dashboard in a real browser: JupyterLab on loopback, headless Chromium driven by Playwright.

The test starts JupyterLab (random free port, a token, no browser) on a temporary root with a copy of
the example notebook, runs all its cells, sets the reloaded session's *iterations* field, presses its
*Start* button and watches the learning curve grow. Then it checks that the live charts follow the output's
width and stay readable at 1024 and 1600 px, in the light and the dark theme, and keeps a screenshot of each
(``test-artifacts/notebook_dashboard_{light,dark}_{1024,1600}.png``; CI keeps the folder as artifacts).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.test_notebook_exec import NOTEBOOK, ROOT, kernel_env

if TYPE_CHECKING:  # pragma: no cover
    from playwright.sync_api import Page

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_server(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 180) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"JupyterLab did not answer {url} within {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def lab(tmp_path: Path):
    """A JupyterLab server on 127.0.0.1 serving a temporary root with the example notebook: (base url, token)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium) for the browser test")
    pytest.importorskip("playwright.sync_api", reason="the python package playwright is not installed")
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, **kernel_env(tmp_path, tmp_path / "work")}
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTERLAB_SETTINGS_DIR", "JUPYTERLAB_WORKSPACES_DIR"):
        (tmp_path / name.lower()).mkdir()
        env[name] = str(tmp_path / name.lower())
    news = Path(env["JUPYTERLAB_SETTINGS_DIR"]) / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True)
    (news / "notification.jupyterlab-settings").write_text(  # no news pop-up over the dashboard
        '{"fetchNews": "false", "checkForUpdates": false, "doNotDisturbMode": true}')
    log = tmp_path / "jupyterlab.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
             f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--ServerApp.port_retries=0",
             "--ServerApp.terminals_enabled=False", "--LabApp.news_url=", "--LabApp.extension_manager=readonly",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.expose_app_in_browser=True",
             *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else [])],
            cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for_server(f"{base}/api/status?token={token}", proc, log)
        yield base, token
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _iterations(status_text: str) -> int:
    m = re.search(r"(\d+) iterations? in total", status_text)
    assert m, status_text
    return int(m.group(1))


def test_start_button_grows_the_curve_in_jupyterlab(lab: tuple[str, str]) -> None:
    from playwright.sync_api import sync_playwright

    base, token = lab
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(120_000)
            page.goto(f"{base}/lab/tree/{NOTEBOOK.name}?token={token}")
            try:
                _run_notebook_and_start(page)
            except Exception:
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "notebook_browser_failure.png"), full_page=True)
                print(f"screenshot of the failure: {ARTIFACTS / 'notebook_browser_failure.png'}")
                raise
        finally:
            browser.close()


def _run_all(page: "Page") -> None:
    """Run → Run All Cells, once the kernel is idle and the notebook has the focus; retried once."""
    from playwright.sync_api import expect

    page.locator(".jp-Notebook").wait_for()
    expect(page.locator(".jp-StatusBar-TextItem", has_text=re.compile(r"\| Idle"))).not_to_have_count(0, timeout=180_000)
    for attempt in range(2):
        page.locator(".jp-Cell").first.click()
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        started = page.locator(".jp-InputPrompt", has_text=re.compile(r"\[(\*|\d+)\]"))
        try:
            expect(started).not_to_have_count(0, timeout=60_000)
            return
        except AssertionError:
            if attempt:
                raise


def _run_notebook_and_start(page: "Page") -> None:
    from playwright.sync_api import expect

    _run_all(page)
    n_code = NOTEBOOK.read_text().count('"cell_type": "code"')
    prompt = page.locator(".jp-InputPrompt", has_text=f"[{n_code}]:")   # the last cell has run
    expect(prompt).to_have_count(1, timeout=600_000)
    last = page.locator(".jp-Cell", has=prompt)       # the reloaded session's dashboard
    status = last.locator(".paceui-status")
    status.scroll_into_view_if_needed()
    expect(page.locator(".jp-OutputArea-output:has-text('Traceback')")).to_have_count(0)
    # two dashboards: the first keeps its last view (Analysis included) after its session closed, the last
    # cell shows the reloaded session's
    expect(page.locator(".paceui-status")).to_have_count(2)
    before = _iterations(status.inner_text())
    curve = last.locator(".paceui-curves")
    expect(curve.locator("svg").first).to_be_visible()
    src_before = curve.inner_html()

    field = last.locator(".paceui-param-start-iterations input")
    field.fill("3")
    field.press("Enter")
    last.locator("button.paceui-action-start").click()
    expect(status).to_contain_text(f"{before + 3} iterations in total", timeout=600_000)
    expect(status).to_contain_text("STOPPED")
    expect(status).to_contain_text("the requested number of iterations is done")
    assert curve.inner_html() != src_before   # the curve was drawn again
    assert _iterations(status.inner_text()) == before + 3
    _screenshots(page, last)


def _chart_geometry(last: "Any") -> dict[str, float]:
    return last.evaluate("""cell => {
        const out = cell.querySelector('.paceui-curves').closest('.jp-OutputArea-output');
        const row = cell.querySelector('.paceui-charts'), svg = row.querySelector('svg');
        const label = svg.querySelector('text');
        const ink = getComputedStyle(label).fill;
        return {output: out.getBoundingClientRect().width, row: row.getBoundingClientRect().width,
                chart: svg.getBoundingClientRect().width, text: label.getBoundingClientRect().height,
                ink: ink, bg: getComputedStyle(document.body).backgroundColor};
    }""")


def _screenshots(page: "Page", last: "Any") -> None:
    """Light and dark theme at 1024 and 1600 px: the chart row fills the output, the charts grow with it,
    text stays readable (≥ 10 px) and its ink differs from the page background."""
    ARTIFACTS.mkdir(exist_ok=True)
    widths: dict[tuple[str, int], dict[str, float]] = {}
    for theme in ("light", "dark"):
        if theme == "dark":
            page.evaluate("window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
            page.wait_for_function("document.body.dataset.jpThemeLight === 'false'", timeout=60_000)
        for width in (1024, 1600):
            page.set_viewport_size({"width": width, "height": 1000})
            page.wait_for_timeout(800)  # the layout settles
            g = _chart_geometry(last)
            widths[theme, width] = g
            assert g["row"] >= 0.9 * g["output"], g           # the charts follow the container's width
            assert g["text"] >= 10, g                          # readable, not 5 px
            assert g["ink"] != g["bg"], g                      # theme ink on the theme background
            last.locator(".paceui-curves").scroll_into_view_if_needed()
            shot = ARTIFACTS / f"notebook_dashboard_{theme}_{width}.png"
            last.locator(".jp-OutputArea-output").last.screenshot(path=str(shot))
            print(f"screenshot: {shot}")
    for theme in ("light", "dark"):
        assert widths[theme, 1600]["row"] > widths[theme, 1024]["row"] + 300  # wider container, wider charts
    assert widths["light", 1024]["ink"] != widths["dark", 1024]["ink"]  # the text colour follows the theme
