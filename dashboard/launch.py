"""The Launch page: start a small run from any scenario under ``scenarios/``.

Pick a scenario (the shipped ones, ``experiments/`` included, and ``./scenarios/``), edit its
YAML, validate it with ``simlab.scenario.load_scenario`` (the messages are exactly
``simlab validate``'s, one ``error: ...`` line per problem) and start ``python -m simlab run``
in the background, in its own session, writing to the runs folder. The edited file is
saved as ``<runs>/.launch/<name>.yaml`` and the output goes to
``<runs>/.launch/<name>-<time>.log``, ``<name>`` being the scenario's ``name``; the run
directory's id is chosen here (``--run-id``), so the page links to the new run at once.
A thread waits on every started process, so none is left a zombie; the page shows each
one's state and the tail of its log while it runs.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pandas as pd
import streamlit as st
import yaml

from simlab.bundled import bundled_root
from simlab.dashboard.runmeta import plural
from simlab.dashboard.views import Context
from simlab.errors import SimlabError
from simlab.scenario import Scenario, load_scenario

__all__ = [
    "LAUNCH_DIR",
    "Launch",
    "scenario_files",
    "scenario_name",
    "validate_text",
    "start_run",
    "log_tail",
    "page_launch",
]

LAUNCH_DIR = ".launch"  # under the runs folder; list_runs skips dot-folders
TAIL_LINES = 15


@dataclass
class Launch:
    """A ``simlab run`` started from the page."""

    name: str
    run_id: str
    log: Path
    proc: subprocess.Popen

    @property
    def state(self) -> str:
        """``running``, ``finished`` (exit 0) or ``failed (exit N)``."""
        code = self.proc.poll()
        if code is None:
            return "running"
        return "finished" if code == 0 else f"failed (exit {code})"


def scenario_files() -> list[tuple[str, Path]]:
    """Every ``*.yaml`` under the shipped ``scenarios/`` and ``./scenarios/``, subfolders too.

    Returns:
        ``(name, path)`` pairs, ``name`` relative to its ``scenarios/`` folder (e.g.
        ``experiments/homogenization.yaml``), sorted by name; a file seen twice once.
    """
    roots = [bundled_root(), Path("scenarios")]  # the shipped ones, checkout or wheel
    found: dict[Path, str] = {}
    for root in roots:
        for p in sorted(root.rglob("*.yaml")) if root.is_dir() else []:
            found.setdefault(p.resolve(), p.relative_to(root).as_posix())
    return sorted(((name, path) for path, name in found.items()), key=lambda np_: np_[0])


def scenario_name(text: str, fallback: str) -> str:
    """The scenario's ``name`` from its YAML text, made safe for a file name.

    Falls back to ``fallback`` when the text does not parse or has no string ``name``.

    >>> scenario_name("name: my run/v2", "x"), scenario_name("[oops", "quickstart")
    ('my_run_v2', 'quickstart')
    """
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError:
        raw = None
    name = raw.get("name") if isinstance(raw, dict) else None
    if not isinstance(name, str) or not name.strip():
        name = fallback
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name.strip()).strip("._") or "scenario"


def validate_text(text: str, path: Path) -> tuple[Scenario | None, list[str]]:
    """Write ``text`` to ``path`` and validate it as ``simlab validate path`` would.

    Returns:
        ``(scenario, [])`` when valid, else ``(None, lines)`` with one ``error: ...`` line
        per problem, exactly as ``simlab validate`` prints them.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    try:
        return load_scenario(path), []
    except SimlabError as e:
        return None, [f"error: {line}" for line in str(e).splitlines() or [type(e).__name__]]


def start_run(path: Path, runs_dir: Path, name: str) -> Launch:
    """Start ``python -m simlab run path --out runs_dir --run-id ID`` in the background.

    Its output goes to ``<runs_dir>/.launch/<name>-<time>.log``; a daemon thread waits on
    the process so that it is reaped as soon as it exits.
    """
    log_dir = runs_dir / LAUNCH_DIR
    log_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    run_id = f"{name}-{stamp}-{secrets.token_hex(2)}"
    log = log_dir / f"{name}-{stamp}.log"
    with open(log, "w", encoding="utf-8") as f:
        proc = subprocess.Popen(
            [sys.executable, "-m", "simlab", "run", str(path), "--out", str(runs_dir),
             "--no-progress", "--run-id", run_id],
            stdout=f,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    threading.Thread(target=proc.wait, name=f"reap-{proc.pid}", daemon=True).start()
    return Launch(name, run_id, log, proc)


def log_tail(path: Path, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file ('' when it cannot be read)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def page_launch(ctx: Context) -> None:
    """Pick or edit a scenario, validate it and start a small run in the background."""
    st.header("Launch")
    files = scenario_files()
    names = [n for n, _ in files]
    ss = st.session_state
    if names and ss.get("launch-scenario") not in names:
        ss["launch-scenario"] = "quickstart.yaml" if "quickstart.yaml" in names else names[0]
    chosen = st.selectbox("Scenario", names, key="launch-scenario") if names else None
    original = files[names.index(chosen)][1].read_text(encoding="utf-8") if chosen else ""
    text = st.text_area("Scenario YAML", original, height=420, key=f"launch-yaml-{chosen}")
    name = scenario_name(text, Path(chosen or "scenario").stem)
    target = ctx.runs_dir / LAUNCH_DIR / f"{name}.yaml"
    st.caption(
        f"Saved to `{target}` (named after the scenario's `name`) when validated or started; "
        f"the run's output goes to `{LAUNCH_DIR}/{name}-<time>.log`."
    )
    col_validate, col_start = st.columns(2)
    validate = col_validate.button("Validate", key="launch-validate")
    start = col_start.button("Start run", key="launch-start", type="primary")
    if validate or start:
        _validate_and_start(text, target, name, ctx, start)
    _launched()
    frame = pd.DataFrame(
        {"run": [r.run_id for r in ctx.runs[:5]], "status": [r.status for r in ctx.runs[:5]]}
    )
    if len(frame):
        st.caption("Newest runs")
        st.dataframe(frame, hide_index=True)


def _validate_and_start(text: str, target: Path, name: str, ctx: Context, start: bool) -> None:
    scenario, errors = validate_text(text, target)
    if errors:
        st.error(f"{target.name} is not a valid scenario ({plural(len(errors), 'problem')}):")
        st.code("\n".join(errors), language=None, wrap_lines=True)
        return
    assert scenario is not None
    from simlab.runner import plan_trials

    n = len(plan_trials(scenario))
    st.success(f"valid: {target} ({plural(n, 'trial')} x {plural(scenario.steps, 'step')})")
    if start:
        launch = start_run(target, ctx.runs_dir, name)
        st.session_state.setdefault("launched", []).append(launch)
        st.success(
            f"Started `simlab run` (pid {launch.proc.pid}) writing run `{launch.run_id}` "
            f"to {ctx.runs_dir}."
        )


def _links(run_id: str) -> str:
    live = urlencode({"page": "Live", "live": run_id, "runs": run_id})
    compare = urlencode({"page": "Compare", "runs": run_id})
    return f"[follow it on Live](?{live}) · [Compare](?{compare})"


def _launched() -> None:
    launches: list[Launch] = st.session_state.get("launched", [])
    if not launches:
        return
    st.subheader(f"Started from this page ({len(launches)})")
    active = any(launch.state == "running" for launch in launches)
    panel = st.fragment(_launch_panel, run_every=2.0 if active else None)
    panel(active)


def _launch_panel(was_active: bool) -> None:
    launches: list[Launch] = st.session_state.get("launched", [])
    for launch in reversed(launches):
        st.markdown(
            f"**{launch.name}** (pid {launch.proc.pid}): {launch.state}. "
            f"Run `{launch.run_id}`: {_links(launch.run_id)}. Log `{launch.log}`:"
        )
        st.code(log_tail(launch.log) or "(no output yet)", language=None, wrap_lines=True)
    if was_active and all(launch.state != "running" for launch in launches):
        st.rerun()  # every process ended: redraw once, without the timer
