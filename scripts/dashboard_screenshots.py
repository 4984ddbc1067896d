"""Make the README's dashboard screenshots (Compare and Ecosystem) in headless Chromium.

Usage::

    python scripts/dashboard_screenshots.py                 # a fresh quickstart run, docs/*.png
    python scripts/dashboard_screenshots.py --runs runs     # the newest run of an existing folder

Without ``--runs`` it runs ``scenarios/quickstart.yaml`` (500 users, 4 seeds, snapshots every 20
steps) into a temporary folder. Then it serves ``simlab dashboard`` on 127.0.0.1, opens
the pages in the system Chromium (``/usr/bin/chromium``, the Debian package, through
Playwright, the same setup as ``tests/dashboard/test_browser.py``) and writes
``docs/dashboard-compare.png`` and ``docs/dashboard-ecosystem.png``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = {"Compare": "dashboard-compare.png", "Ecosystem": "dashboard-ecosystem.png"}


def make_demo_run(parent: Path) -> Path:
    """Run the quickstart scenario (smaller population, with snapshots) under ``parent``."""
    from simlab.runner import run_scenario
    from simlab.scenario import load_scenario

    overrides = [
        ("users.num_users", 500),
        ("seeds", 4),
        ("output.snapshot_every", 20),
        ("output.checkpoint_every", 0),
        ("execution.backend", "local"),
    ]
    scenario = load_scenario(ROOT / "scenarios" / "quickstart.yaml", overrides)
    return run_scenario(scenario, out_dir=parent).path


def capture(runs: Path, out: Path, width: int = 1400, height: int = 1100) -> list[Path]:
    """Serve the dashboard over ``runs`` and screenshot each page of :data:`PAGES` into ``out``."""
    from playwright.sync_api import sync_playwright

    from simlab.dashboard import browser

    out.mkdir(parents=True, exist_ok=True)
    written = []
    with browser.serve(runs) as url, sync_playwright() as p:
        chromium = browser.launch_chromium(p)
        try:
            for name, file in PAGES.items():
                page = browser.open_page(chromium, url, name)
                page.set_viewport_size({"width": width, "height": height})
                browser.wait_for_chart(page)
                page.wait_for_timeout(1500)  # let Plotly finish its layout transitions
                page.screenshot(path=str(out / file))
                written.append(out / file)
                page.close()
        finally:
            chromium.close()
    return written


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, make or find a run, write the screenshots."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, help="existing runs folder (default: a fresh run)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="output folder")
    args = parser.parse_args(argv)
    from simlab.dashboard import browser

    if not Path(browser.CHROMIUM).exists():
        print(f"error: {browser.CHROMIUM} not found; apt-get install chromium", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        runs = args.runs
        if runs is None:
            runs = Path(tmp) / "runs"
            print(f"running the quickstart into {make_demo_run(runs)}")
        for path in capture(runs, args.out):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
