"""The Live page: follow a run while ``simlab run`` writes it.

The page re-reads the run every few seconds inside an ``st.fragment(run_every=...)``, so
only that part refreshes while rows arrive (``read_metrics`` merges Parquet parts and the
journal, so rows appear as each step finishes). It shows the trial-steps done of the total
(every trial's newest step + 1, summed: the rows are the truth, the manifest's counts lag
behind), the trials queued, running and done, the rate in trial-steps per second and the
time left, and charts of metrics picked from the run's metric list. A run that is not
``running`` is drawn once and not refreshed; when a followed run ends the page redraws
itself without the timer.
"""

from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from simlab import intervals
from simlab.dashboard import data, runmeta
from simlab.dashboard.compare import metric_chart
from simlab.dashboard.views import Context, load

__all__ = ["page_live", "RATE_WINDOW_S"]

RATE_WINDOW_S = 30.0
"""The rate is measured over the observations of the last this many seconds."""


LIVE = ("starting", "running")
"""Statuses of a run still being written: the page re-reads it (``starting``: a ``--from``
fork copying its parent's rows, or a run setting up its trials)."""


def page_live(ctx: Context, refresh_seconds: float) -> None:
    """Pick a run (a running one by default) and re-read it every ``refresh_seconds``."""
    st.header("Live")
    readable = [r for r in ctx.runs if not r.problem]
    if not readable:
        st.info(f"No readable runs under {ctx.runs_dir}.")
        return
    ss = st.session_state
    ids = [r.run_id for r in readable]
    if ss.get("live-run") not in ids:
        running = [r.run_id for r in readable if r.status in LIVE]
        selected = [r.run_id for r in ctx.selected if r.run_id in ids]
        ss["live-run"] = (running or selected or ids)[0]
    names = {r: ctx.labels.get(r, {}).get("name") for r in ids}
    run_id = st.selectbox(
        "Run", ids, key="live-run", format_func=lambda r: f"{names[r]} ({r})" if names[r] else r
    )
    summary = readable[ids.index(run_id)]
    try:
        run = load(summary.path)
    except Exception as e:  # a run being written may be caught half-way
        st.error(f"Run {run_id} cannot be read: {e}")
        return
    available = run.metric_columns
    wanted = ss.get("live-metrics")
    kept = [m for m in wanted or [] if m in available]
    default = [m for m in ("engagement/ctr",) if m in available] or available[:1]
    ss["live-metrics"] = kept if kept or wanted == [] else default
    metrics = st.multiselect("Metrics", available, key="live-metrics")
    running = run.store.status in LIVE
    # while it runs, the seeds it will have (rows of later seeds do not exist yet); after, the
    # seeds each series has rows for
    planned = len(run.store.manifest.get("seeds", []))
    seeds = {run.label: planned} if running and planned else data.seeds_per_series([run])
    note = intervals.few_seeds_note(seeds, ctx.interval)
    if note:
        st.warning(note)
    if running:
        st.caption(f"Refreshing every {refresh_seconds:g} s while the run is running (sidebar).")
    else:
        st.caption(f"The run is {run.store.status}: its final state, not refreshed.")
    panel = st.fragment(_live_panel, run_every=refresh_seconds if running else None)
    panel(summary.path, metrics, ctx, running)


def _live_panel(path: Path, metrics: list[str], ctx: Context, was_running: bool) -> None:
    try:
        run = load(path)
    except Exception as e:  # a run being written may be caught half-way
        st.error(f"Run {path.name} cannot be read: {e}")
        return
    status = run.store.status
    live = status in LIVE
    progress = runmeta.run_progress(run.metrics, run.store.manifest["trials"], run.steps, live)
    now = time.time()
    samples = [
        s
        for s in st.session_state.get(f"_live-samples-{run.run_id}", [])
        if now - s[0] <= RATE_WINDOW_S and s[1] <= progress.done
    ] + [(now, progress.done)]
    st.session_state[f"_live-samples-{run.run_id}"] = samples
    share = progress.done / progress.total if progress.total else 0.0
    line = (
        f"**{run.label}**: status `{status}`, **{progress.done:,} of {progress.total:,} "
        f"trial-steps done** ({share:.0%}); trials: {progress.queued} "
        f"{'queued' if live else 'not started'}, {progress.running} "
        f"{'running' if live else 'stopped'}, {progress.finished} done"
    )
    if status == "running":
        rate, eta = runmeta.rate_and_eta(
            samples, progress.total, run.store.manifest.get("started"), now
        )
        line += (
            f"; {rate:,.1f} trial-steps/s, about {runmeta.format_seconds(eta)} left"
            if rate
            else "; rate: measuring"
        )
    st.markdown(line + f" (updated {time.strftime('%H:%M:%S')})")
    st.progress(min(share, 1.0))
    st.dataframe(progress.per_trial, hide_index=True)
    if metrics:
        frame = data.metric_frame([run], metrics, ctx.smoothing)
        cols = st.columns(min(2, len(metrics)))
        for k, metric in enumerate(metrics):
            with cols[k % len(cols)]:
                metric_chart([run], frame, metric, ctx, key="live-")
    else:
        st.info("Choose one or more metrics.")
    if was_running and status not in LIVE:
        st.rerun()  # the run ended: redraw the page once, without the timer
