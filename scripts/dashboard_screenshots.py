"""Make the README's dashboard screenshots (Runs, Compare, Ecosystem) in headless Chromium.

Usage::

    python scripts/dashboard_screenshots.py                 # the quickstart, as a newcomer runs it
    python scripts/dashboard_screenshots.py --runs runs     # the runs of an existing folder

Without ``--runs`` it runs ``simlab run scenarios/quickstart.yaml`` exactly as the README's
first command does (no overrides: 1,000 users, 5 seeds, 100 steps) into a temporary folder.
Then it serves ``simlab dashboard`` on 127.0.0.1, opens each page as a newcomer first sees
it (the newest run selected, the default metrics, standard-error bands) in the system
Chromium (``/usr/bin/chromium``, the Debian package, through Playwright, the same setup as
``tests/dashboard/test_browser.py``) and writes ``docs/dashboard-runs.png``,
``docs/dashboard-compare.png`` and ``docs/dashboard-ecosystem.png``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = {
    "Runs": "dashboard-runs.png",
    "Compare": "dashboard-compare.png",
    "Ecosystem": "dashboard-ecosystem.png",
}


def make_quickstart_run(parent: Path) -> Path:
    """``simlab run scenarios/quickstart.yaml --out parent``, as the README's first command."""
    cmd = [sys.executable, "-m", "simlab", "run", str(ROOT / "scenarios" / "quickstart.yaml"),
           "--out", str(parent), "--no-progress"]  # fmt: skip
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    (run,) = [p for p in parent.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return run


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
                if name == "Runs":
                    page.locator('[data-testid="stDataFrame"]').first.wait_for()
                else:
                    browser.wait_for_chart(page)
                page.wait_for_timeout(2500)  # let Plotly and the grid finish their layout
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
            runs.mkdir()
            print(f"ran the quickstart into {make_quickstart_run(runs)}")
        for path in capture(runs, args.out):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
