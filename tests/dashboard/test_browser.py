"""Real-browser tests: `simlab dashboard` on 127.0.0.1 driven by headless system Chromium."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import dash_fixtures
import pytest
from dash_fixtures import make_live_run, write_steps

from simlab.dashboard import browser

base_run = dash_fixtures.base_run

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover - CI installs playwright
    sync_playwright = None

pytestmark = [
    pytest.mark.skipif(
        not Path(browser.CHROMIUM).exists(),
        reason=f"{browser.CHROMIUM} is missing (Debian package `chromium`)",
    ),
    pytest.mark.skipif(sync_playwright is None, reason="playwright (python) is not installed"),
]


@pytest.fixture(scope="module")
def site(base_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """One dashboard server over a completed run and a running one; yields (url, live run)."""
    runs = tmp_path_factory.mktemp("browser") / "runs"
    shutil.copytree(base_run, runs / base_run.name)
    live = make_live_run(base_run, runs / "live-run", keep_steps=4)
    with browser.serve(runs) as url:
        yield url, live


@pytest.fixture(scope="module")
def chromium(site) -> Iterator:
    """Headless Chromium (started after the server, closed before it stops)."""
    with sync_playwright() as p:
        b = browser.launch_chromium(p)
        try:
            yield b
        finally:
            b.close()


def test_compare_draws_a_chart_in_chromium(site, chromium, tmp_path):
    """Compare renders a Plotly chart with drawn traces; a screenshot is saved."""
    url, _ = site
    page = browser.open_page(chromium, url, "Compare")
    try:
        chart = browser.wait_for_chart(page)
        assert chart.locator("svg.main-svg").count() > 0
        assert chart.locator(".scatterlayer .trace").count() >= 2  # lines of two agents
        assert chart.locator("path.js-line").count() > 0
        assert "engagement/ctr" in chart.inner_text()
        assert page.get_by_text("Download CSV").count() >= 1
        shot = tmp_path / "compare.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
    finally:
        page.close()


def test_live_page_follows_rows_written_while_open(site, chromium, tmp_path):
    """Rows written while Live is open appear by themselves (the fragment re-reads the run)."""
    url, live = site
    page = browser.open_page(chromium, url, "Live")
    try:
        status = page.get_by_text(re.compile(r"steps done: \d+ of 12"))
        expect(status).to_contain_text("steps done: 4 of 12", timeout=30_000)
        write_steps(live, range(4, 6))
        expect(status).to_contain_text("steps done: 6 of 12", timeout=30_000)
        page.screenshot(path=str(tmp_path / "live.png"), full_page=True)
    finally:
        page.close()
