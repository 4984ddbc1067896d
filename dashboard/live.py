"""The Live and Launch pages: follow a running run, and start a small one from a scenario.

Live re-reads a run every few seconds inside an ``st.fragment(run_every=...)``, so only
that part of the page refreshes while ``simlab run`` writes rows (``read_metrics`` merges
Parquet parts and the journal, so rows appear as each step finishes).

Launch edits a scenario's YAML, validates it with ``simlab.scenario.load_scenario`` (the
messages are exactly ``simlab validate``'s, ``error: ...`` per line) and starts
``python -m simlab run`` in the background, in its own session, writing to the runs folder.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import streamlit as st

import simlab
from simlab.dashboard import charts, data
from simlab.dashboard.views import Context, show_figure
from simlab.errors import SimlabError
from simlab.scenario import Scenario, load_scenario

__all__ = ["page_live", "page_launch", "validate_text", "scenario_files", "start_run"]

LAUNCH_DIR = ".launch"  # under the runs folder; list_runs skips dot-folders


# ---------------------------------------------------------------------- Live
def page_live(ctx: Context, refresh_seconds: float) -> None:
    """Pick a run (a running one by default) and re-read it every ``refresh_seconds``."""
    st.header("Live")
    readable = [r for r in ctx.runs if not r.problem]
    if not readable:
        st.info(f"No readable runs under {ctx.runs_dir}.")
        return
    ids = [r.run_id for r in readable]
    running = [r.run_id for r in readable if r.status == "running"]
    selected = [r.run_id for r in ctx.selected if r.run_id in ids]
    default = (running or selected or ids)[0]
    run_id = st.selectbox("Run", ids, index=ids.index(default), key="live-run")
    path = readable[ids.index(run_id)].path
    metric = st.text_input("Metric", "engagement/ctr", key="live-metric")
    st.caption(f"Refreshing every {refresh_seconds:g} s (change it in the sidebar).")
    panel = st.fragment(_live_panel, run_every=refresh_seconds)
    panel(path, metric)


def _live_panel(path: Path, metric: str) -> None:
    try:
        run = data.load_run(path)
    except Exception as e:  # a run being written may be caught half-way
        st.error(f"Run {path.name} cannot be read: {e}")
        return
    df = run.metrics
    per_trial = data.steps_done_per_trial(df)
    newest = int(per_trial["steps done"].max()) if len(per_trial) else 0
    st.markdown(
        f"**{run.run_id}**: status `{run.store.status}`, steps done: {newest} of {run.steps} "
        f"(updated {time.strftime('%H:%M:%S')})"
    )
    st.table(per_trial.set_index("trial"))
    if metric not in df.columns:
        st.warning(f"Run {run.run_id} has no metric {metric}.")
        return
    frame = df.assign(series=data.series_labels(df, run.sweep_columns))
    agg = data.aggregate_over_seeds(frame, metric, by="series")
    if not agg.empty:
        fig = charts.metric_figure(agg, metric, run.phases())
        show_figure(fig, agg, f"{run.run_id}-live", "live")


# ---------------------------------------------------------------------- Launch
def scenario_files() -> list[Path]:
    """Shipped scenarios (the source checkout's ``scenarios/``) and ``./scenarios/*.yaml``."""
    roots = [Path(simlab.__file__).resolve().parent.parent / "scenarios", Path("scenarios")]
    found: dict[Path, Path] = {}
    for root in roots:
        for p in sorted(root.glob("*.yaml")) if root.is_dir() else []:
            found.setdefault(p.resolve(), p.resolve())
    return sorted(found.values(), key=lambda p: p.name)


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


def start_run(path: Path, runs_dir: Path) -> subprocess.Popen:
    """Start ``python -m simlab run path --out runs_dir --no-progress`` in the background.

    Its output goes to ``<runs_dir>/.launch/<scenario>-<time>.log``.
    """
    log_dir = runs_dir / LAUNCH_DIR
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{path.stem}-{time.strftime('%Y%m%d-%H%M%S')}.log"
    with open(log, "w", encoding="utf-8") as f:
        return subprocess.Popen(
            [sys.executable, "-m", "simlab", "run", str(path), "--out", str(runs_dir),
             "--no-progress"],
            stdout=f,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


def page_launch(ctx: Context) -> None:
    """Pick or edit a scenario, validate it and start a small run in the background."""
    st.header("Launch")
    files = scenario_files()
    names = [p.name for p in files]
    name = st.selectbox("Scenario", names, key="launch-scenario") if names else None
    original = files[names.index(name)].read_text(encoding="utf-8") if name else ""
    text = st.text_area("Scenario YAML", original, height=420, key=f"launch-yaml-{name}")
    target = ctx.runs_dir / LAUNCH_DIR / (name or "scenario.yaml")
    st.caption(f"Saved to `{target}` when validated or started.")
    col_validate, col_start = st.columns(2)
    validate = col_validate.button("Validate", key="launch-validate")
    start = col_start.button("Start run", key="launch-start", type="primary")
    if validate or start:
        scenario, errors = validate_text(text, target)
        if errors:
            st.error(f"{target.name} is not a valid scenario ({len(errors)} problems):")
            st.code("\n".join(errors), language=None)
            return
        assert scenario is not None
        from simlab.runner import plan_trials

        n = len(plan_trials(scenario))
        st.success(f"valid: {target} ({n} trials x {scenario.steps} steps)")
        if start:
            proc = start_run(target, ctx.runs_dir)
            st.session_state.setdefault("launched", []).append(proc.pid)
            st.success(
                f"Started `simlab run` (pid {proc.pid}) writing to {ctx.runs_dir}; "
                "the run appears on the Runs page."
            )
    launched = st.session_state.get("launched", [])
    if launched:
        st.caption("Started from this page: pid " + ", ".join(map(str, launched)))
    frame = pd.DataFrame(
        {"run": [r.run_id for r in ctx.runs[:5]], "status": [r.status for r in ctx.runs[:5]]}
    )
    if len(frame):
        st.caption("Newest runs")
        st.table(frame.set_index("run"))
