"""Drive the dashboard in headless Chromium: used by the browser tests and the screenshot script.

:func:`serve` starts ``python -m simlab dashboard`` on 127.0.0.1 and a free port and stops
it (its whole process group) afterwards; :func:`launch_chromium` opens the system's
Chromium (the Debian package ``chromium``) through Playwright, never a downloaded browser.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "free_port",
    "serve",
    "launch_chromium",
    "open_page",
    "wait_for_chart",
]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CHART = '[data-testid="stPlotlyChart"] .js-plotly-plot'


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"simlab dashboard exited with {proc.returncode} before serving")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"simlab dashboard did not answer on {url} within {timeout:.0f} s")


@contextmanager
def serve(runs_dir: Path, port: int | None = None, timeout: float = 60.0) -> Iterator[str]:
    """Run ``simlab dashboard --runs runs_dir`` on 127.0.0.1; yield its URL.

    The server runs in its own session and is stopped, with its children, on exit.
    """
    port = port or free_port()
    cmd = [sys.executable, "-m", "simlab", "dashboard", "--runs", str(runs_dir),
           "--port", str(port), "--host", "127.0.0.1"]  # fmt: skip
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{url}/_stcore/health", proc, timeout)
        yield url
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def launch_chromium(playwright: Any) -> Any:
    """Headless system Chromium via Playwright's ``chromium.launch``."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def open_page(browser: Any, url: str, page_name: str, timeout_ms: float = 60_000) -> Any:
    """Open the dashboard at ``url`` and switch to ``page_name`` with the sidebar radio."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(timeout_ms)
    page.goto(url)
    page.get_by_text("Page", exact=True).wait_for()
    # the radio's input is visually hidden behind its styled label: check it by role
    page.get_by_role("radio", name=page_name, exact=True).check(force=True)
    page.get_by_role("heading", name=page_name).wait_for()
    return page


def wait_for_chart(page: Any, timeout_ms: float = 60_000) -> Any:
    """Wait for a Plotly chart whose SVG has drawn traces; return its locator."""
    page.wait_for_function(
        """sel => [...document.querySelectorAll(sel)].some(el =>
               el.querySelector('svg.main-svg') && el.querySelectorAll('.trace').length > 0)""",
        arg=CHART,
        timeout=timeout_ms,
    )
    return page.locator(CHART).first
