"""Real-browser tests: `simlab dashboard` on 127.0.0.1 driven by headless system Chromium."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import dash_fixtures
import pytest
from dash_fixtures import make_live_run, write_steps

from simlab.dashboard import browser
from simlab.dashboard.data import load_run
from simlab.store import list_runs

base_run = dash_fixtures.base_run
ramp_run = dash_fixtures.ramp_run

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
def site(
    base_run: Path, ramp_run: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    """One dashboard over two completed runs with different phases and a running run.

    Yields the URL and the running run (newest, so it is the default selection).
    """
    runs = tmp_path_factory.mktemp("browser") / "runs"
    shutil.copytree(base_run, runs / base_run.name)
    shutil.copytree(ramp_run, runs / ramp_run.name)
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


# the charts' Plotly layout, read from the page: phase rectangles per x axis, labels, traces
# and title (without the <b> tags Streamlit's theme adds, once per time it themes the figure)
CHART_STATE = """sel => [...document.querySelectorAll(sel)].map(gd => ({
    rects: (gd.layout.shapes || []).filter(s => s.type === 'rect' && s.name !== 'warm-up')
        .map(s => [s.xref || 'x', s.x0, s.x1]),
    warmups: (gd.layout.shapes || []).filter(s => s.type === 'rect' && s.name === 'warm-up')
        .map(s => [s.xref || 'x', s.x0, s.x1]),
    labels: (gd.layout.annotations || []).map(a => a.text),
    traces: gd.data.map(t => t.name),
    title: (gd.layout.title.text || '').replace(/<[/]?b>/g, ''),
}))"""


def selected_in_url(url: str) -> list[str]:
    """The runs the URL selects."""
    return parse_qs(urlparse(url).query).get("runs", [])


def chart_state(page, title: str = "", count: int = 3) -> list[dict]:
    """What the page's ``count`` charts show (see :data:`CHART_STATE`), once all are drawn.

    Streamlit keeps the previous page's elements until the rerun replaces them, and draws
    charts one by one: wait until ``count`` charts with traces have ``title`` in their
    titles (the default Compare view has three).
    """
    page.wait_for_function(
        """([sel, title, count]) => {
               const gds = [...document.querySelectorAll(sel)];
               return gds.length === count && gds.every(gd => gd.layout && gd.data
                   && gd.querySelectorAll('.trace').length > 0
                   && (gd.layout.title.text || '').includes(title));
           }""",
        arg=[browser.CHART, title, count],
    )
    page.wait_for_timeout(500)
    return page.evaluate(CHART_STATE, browser.CHART)


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


def test_two_runs_selected_in_the_table_show_both_phase_sets(site, chromium, ramp_run, base_run):
    """Clicking two rows of the Runs table selects them; Compare shades each run's phases."""
    url, live = site
    page = browser.open_page(chromium, url, "Runs")
    try:
        grid = page.locator('[data-testid="stDataFrame"]').first
        grid.wait_for()
        page.wait_for_timeout(1000)
        box = grid.bounding_box()
        # rows newest first: the running run (selected by default), then the two others;
        # click the row markers at the left edge: unselect the first, select the others
        ids = [r.run_id for r in list_runs(live.parent)]
        assert ids[0] == live.name and set(ids[1:]) == {ramp_run.name, base_run.name}
        for row, expected in ((0, []), (1, ids[1:2]), (2, ids[1:3])):
            page.mouse.click(box["x"] + 15, box["y"] + 35 * (row + 1) + 17)
            deadline = time.monotonic() + 30
            while selected_in_url(page.url) != expected and time.monotonic() < deadline:
                page.wait_for_timeout(200)
            assert selected_in_url(page.url) == expected, (row, page.url)
            page.wait_for_timeout(1000)  # let the rerun redraw the table before the next click
        page.get_by_role("radio", name="Compare", exact=True).check(force=True)
        page.get_by_role("heading", name="Compare").wait_for()
        first = chart_state(page)[0]
        ramp = [[-0.5, 2.5], [2.5, 3.5], [3.5, 4.5], [4.5, 5.5], [5.5, 6.5], [6.5, 9.5],
                [9.5, 15.5]]  # fmt: skip
        base = [[-0.5, 3.5], [3.5, 7.5], [7.5, 11.5]]
        # one panel per run in the selection's order, each with its own phases
        axis = {ids[1]: "x", ids[2]: "x2"}
        assert [r[1:] for r in first["rects"] if r[0] == axis[ramp_run.name]] == ramp
        assert [r[1:] for r in first["rects"] if r[0] == axis[base_run.name]] == base
        # each panel also shades its run's warm-up (steps before the first retrained model)
        warm = {run.name: load_run(run).warmup for run in (ramp_run, base_run)}
        assert any(warm.values())
        assert sorted(first["warmups"]) == sorted(
            [axis[name], -0.5, w - 0.5] for name, w in warm.items() if w
        )
        for label in ("coexisting 50% (ramp 4)", "coexisting 30%", "AIGC-dominated 100%"):
            assert label in first["labels"]
            expect(page.get_by_text(label).first).to_be_visible()
    finally:
        page.close()


def test_reloading_a_shared_url_gives_the_same_view(site, chromium, ramp_run, base_run):
    """Choices made in the page go into the URL; opening that URL anew shows the same view."""
    url, _ = site
    start = f"{url}/?page=Compare&runs={base_run.name}&runs={ramp_run.name}"
    page = chromium.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(60_000)
    try:
        page.goto(start)
        chart_state(page)
        page.get_by_role("radio", name="±1 standard deviation", exact=True).check(force=True)
        page.wait_for_function("() => location.search.includes('interval=sd')")
        page.get_by_role("radio", name="Users", exact=True).check(force=True)
        page.get_by_role("heading", name="Users").wait_for()
        page.get_by_role("radio", name="Compare", exact=True).check(force=True)
        page.get_by_role("heading", name="Compare").wait_for()
        page.wait_for_function("() => location.search.includes('page=Compare')")
        before = chart_state(page, "standard deviation")
        shared = page.url
        assert "interval=sd" in shared and f"runs={ramp_run.name}" in shared
        again = chromium.new_page(viewport={"width": 1400, "height": 1000})
        again.set_default_timeout(60_000)
        try:
            again.goto(shared)
            after = chart_state(again, "standard deviation")
            assert after == before
            assert "standard deviation" in after[0]["title"]
            assert again.get_by_role("radio", name="±1 standard deviation").is_checked()
            assert again.get_by_role("radio", name="Compare").is_checked()
        finally:
            again.close()
    finally:
        page.close()


def test_live_page_counts_trial_steps_of_a_running_run(site, chromium, tmp_path):
    """Live shows trial-steps done of the total and follows rows written while it is open."""
    url, live = site
    page = browser.open_page(chromium, url, "Live")
    try:
        status = page.get_by_text(re.compile(r"\d+ of 48 trial-steps done"))
        expect(status).to_contain_text("16 of 48 trial-steps done", timeout=30_000)
        expect(page.get_by_text("0 queued, 4 running, 0 done").first).to_be_visible()
        write_steps(live, range(4, 6))
        expect(status).to_contain_text("24 of 48 trial-steps done", timeout=30_000)
        page.screenshot(path=str(tmp_path / "live.png"), full_page=True)
    finally:
        page.close()


def test_live_refreshes_a_running_run_and_not_a_finished_one(site, chromium, base_run):
    """The 'updated' time moves while a run is running and stays put once it has ended."""
    url, live = site
    stamps = {}
    for run in (live.name, base_run.name):
        page = chromium.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        try:
            page.goto(f"{url}/?page=Live&live={run}")
            status = page.locator('[data-testid="stMarkdownContainer"]', has_text="updated")
            status.first.wait_for()
            first = re.search(r"updated (\d\d:\d\d:\d\d)", status.first.inner_text()).group(1)
            page.wait_for_timeout(4_500)  # the sidebar's default refresh period is 3 s
            later = re.search(r"updated (\d\d:\d\d:\d\d)", status.first.inner_text()).group(1)
            stamps[run] = (first, later)
        finally:
            page.close()
    assert stamps[live.name][0] != stamps[live.name][1]
    assert stamps[base_run.name][0] == stamps[base_run.name][1]
