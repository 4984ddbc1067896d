"""The Runs, Compare, Ecosystem and Users pages.

Each page takes a :class:`Context` (the runs folder, every run found there and the runs
selected in the sidebar). A run that cannot be read — a corrupt manifest, a half-written
metrics part, a damaged snapshot, anything else — becomes an ``st.error`` naming that run;
the rest of the page still renders.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from simlab import snapshots
from simlab.dashboard import charts, data
from simlab.store import RunSummary

__all__ = ["Context", "load_selected", "show_figure", "page_runs", "page_compare",
           "page_ecosystem", "page_users"]  # fmt: skip

DEFAULT_METRICS = ("engagement/ctr", "exposure/gini", "source/aigc_exposure_share")
SHARE_COLUMNS = {
    "production": "source/aigc_production_share",
    "exposure": "source/aigc_exposure_share",
    "clicks": "source/aigc_click_share",
}
CREATOR_COLUMNS = {"human": "creators/active_human", "AIGC": "creators/active_aigc"}


@dataclass
class Context:
    """What every page gets: the runs folder, the runs in it and the sidebar's selection."""

    runs_dir: Path
    runs: list[RunSummary]
    selected: list[RunSummary]


def load_selected(ctx: Context) -> list[data.LoadedRun]:
    """Read every selected run; show an ``st.error`` for each one that cannot be read."""
    loaded = []
    for summary in ctx.selected:
        if summary.problem:
            st.error(f"Run {summary.run_id} cannot be read: {summary.problem}")
            continue
        try:
            loaded.append(data.load_run(summary.path))
        except Exception as e:  # any failure of one run must not break the page
            st.error(f"Run {summary.run_id} cannot be read: {e}")
    if not ctx.selected:
        st.info("Select one or more runs in the sidebar.")
    return loaded


def show_figure(fig, frame: pd.DataFrame, name: str, key: str) -> None:
    """Plot ``fig`` (modebar PNG download) and offer ``frame`` as a CSV download."""
    st.plotly_chart(fig, key=f"chart-{key}", config=charts.plotly_config(name))
    st.download_button(
        "Download CSV",
        frame.to_csv(index=False).encode("utf-8"),
        file_name=f"{name}.csv",
        mime="text/csv",
        key=f"csv-{key}",
    )


def _safe_name(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text)


# ---------------------------------------------------------------------- Runs
def page_runs(ctx: Context) -> None:
    """Every run directory with status, scenario, agents, seeds, steps done and start time."""
    st.header("Runs")
    st.caption(f"Run directories under `{ctx.runs_dir}`. Select runs in the sidebar.")
    if not ctx.runs:
        st.info(f"No run directories under {ctx.runs_dir}. Start one with `simlab run` or Launch.")
        return
    table = pd.DataFrame(
        {
            "run": [r.run_id for r in ctx.runs],
            "status": [r.status for r in ctx.runs],
            "scenario": [r.scenario for r in ctx.runs],
            "agents": [", ".join(r.agents) for r in ctx.runs],
            "seeds": [", ".join(map(str, r.seeds)) for r in ctx.runs],
            "steps done": [f"{r.steps_done} / {r.steps_total}" for r in ctx.runs],
            "started": [r.started for r in ctx.runs],
            "selected": [r in ctx.selected for r in ctx.runs],
        }
    )
    st.dataframe(table, hide_index=True, key="runs-table")
    for r in ctx.runs:
        if r.problem:
            st.error(f"Run {r.run_id} is corrupt: {r.problem}")


# ---------------------------------------------------------------------- Compare
def _with_series(runs: list[data.LoadedRun]) -> pd.DataFrame:
    frames = []
    for run in runs:
        df = run.metrics.copy()
        prefix = f"{run.run_id}: " if len(runs) > 1 else ""
        df["series"] = data.series_labels(df, run.sweep_columns, prefix)
        frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def page_compare(ctx: Context) -> None:
    """Any metric over time: one line per agent, mean and 95% interval over seeds, phases."""
    st.header("Compare")
    runs = load_selected(ctx)
    if not runs:
        return
    available = list(dict.fromkeys(c for run in runs for c in run.metric_columns))
    default = [m for m in DEFAULT_METRICS if m in available] or available[:1]
    chosen = st.multiselect("Metrics", available, default=default, key="compare-metrics")
    spans = runs[0].phases()
    if len(runs) > 1:
        st.caption(f"Phases shaded from {runs[0].run_id}.")
    frame = _with_series(runs)
    for metric in chosen:
        for run in runs:
            if metric in data.missing_columns(run.metrics, [metric]):
                st.warning(f"Run {run.run_id} has no values for {metric}.")
        agg = data.aggregate_over_seeds(frame, metric, by="series")
        if agg.empty:
            continue
        fig = charts.metric_figure(agg, metric, spans)
        show_figure(fig, agg.rename(columns={"mean": metric}), _safe_name(metric), metric)
    if not chosen:
        st.info("Choose one or more metrics.")


# ---------------------------------------------------------------------- Ecosystem
def _pick_run(runs: list[data.LoadedRun], key: str) -> data.LoadedRun:
    ids = [r.run_id for r in runs]
    chosen = st.selectbox("Run", ids, key=key) if len(runs) > 1 else ids[0]
    return runs[ids.index(chosen)]


def _mean_by_step(df: pd.DataFrame, columns: dict[str, str], by: list[str]) -> pd.DataFrame:
    present = {name: col for name, col in columns.items() if col in df.columns}
    out = df.groupby([*by, "step"], sort=False)[list(present.values())].mean().reset_index()
    return out.rename(columns={col: name for name, col in present.items()})


def page_ecosystem(ctx: Context) -> None:
    """AIGC vs human shares, creator counts by kind and the exposure Lorenz curve."""
    st.header("Ecosystem")
    runs = load_selected(ctx)
    if not runs:
        return
    run = _pick_run(runs, "eco-run")
    df = run.metrics.copy()
    df["series"] = data.series_labels(df, run.sweep_columns)
    spans = run.phases()
    series = list(dict.fromkeys(df["series"]))
    st.subheader("AIGC vs human share")
    missing = data.missing_columns(df, list(SHARE_COLUMNS.values()))
    if missing:
        st.warning(f"Run {run.run_id} lacks {', '.join(missing)}.")
    if series and len(missing) < len(SHARE_COLUMNS):
        agent = st.selectbox("Agent", series, key="eco-agent")
        shares = _mean_by_step(df[df["series"] == agent], SHARE_COLUMNS, [])
        fig = charts.share_figure(shares, spans)
        show_figure(fig, shares, f"{run.run_id}-shares", "shares")
    st.subheader("Creators by kind")
    missing = data.missing_columns(df, list(CREATOR_COLUMNS.values()))
    if len(missing) == len(CREATOR_COLUMNS):
        st.warning(f"Run {run.run_id} lacks creator counts ({', '.join(missing)}).")
    else:
        creators = _mean_by_step(df, CREATOR_COLUMNS, ["series"])
        fig = charts.creators_figure(creators, spans)
        show_figure(fig, creators, f"{run.run_id}-creators", "creators")
    st.subheader("Exposure Lorenz curve")
    _lorenz_section(run)


def _trial_labels(run: data.LoadedRun) -> dict[int, str]:
    return {
        int(t.get("index", i)): f"{t.get('agent', '?')} seed {t.get('seed', '?')}"
        for i, t in enumerate(run.store.manifest["trials"])
    }


def _lorenz_section(run: data.LoadedRun) -> None:
    labels = _trial_labels(run)
    steps_by_trial = {t: snapshots.snapshot_steps(run.store.path, t) for t in labels}
    steps = sorted({s for v in steps_by_trial.values() for s in v})
    if not steps:
        st.info(f"Run {run.run_id} saved no snapshots (`output.snapshot_every: 0`).")
        return
    step = (
        st.select_slider("Step", steps, value=steps[-1], key="lorenz-step")
        if len(steps) > 1
        else steps[0]
    )
    curves, rows = [], []
    for trial, label in labels.items():
        if step not in steps_by_trial[trial]:
            continue
        try:
            snap = snapshots.read_snapshot(run.store.path, trial, step)
        except Exception as e:
            st.error(f"Run {run.run_id}, trial {trial}: {e}")
            continue
        x, y = data.lorenz(snap["exposure"])
        curves.append((label, x, y, data.gini(snap["exposure"])))
        rows.append(pd.DataFrame({"trial": trial, "label": label, "items share": x,
                                  "impressions share": y}))  # fmt: skip
    if curves:
        show_figure(charts.lorenz_figure(curves), pd.concat(rows), f"{run.run_id}-lorenz", "lorenz")


# ---------------------------------------------------------------------- Users
def page_users(ctx: Context) -> None:
    """A 2-D PCA projection of the sampled users' interests at chosen snapshot steps."""
    st.header("Users")
    runs = load_selected(ctx)
    if not runs:
        return
    run = _pick_run(runs, "users-run")
    labels = _trial_labels(run)
    trial = st.selectbox(
        "Trial", list(labels), format_func=lambda t: f"{t}: {labels[t]}", key="users-trial"
    )
    steps = snapshots.snapshot_steps(run.store.path, trial)
    if not steps:
        st.info(
            f"Run {run.run_id}, trial {trial} saved no snapshots; set `output.snapshot_every` "
            "in the scenario to see how user interests cluster."
        )
        return
    default = list(dict.fromkeys([steps[0], steps[len(steps) // 2], steps[-1]]))
    chosen = st.multiselect("Steps", steps, default=default, key="users-steps")
    if not chosen:
        st.info("Choose one or more snapshot steps.")
        return
    try:
        snaps = {s: snapshots.read_snapshot(run.store.path, trial, s) for s in sorted(chosen)}
    except Exception as e:
        st.error(f"Run {run.run_id}, trial {trial}: {e}")
        return
    first = snaps[min(snaps)]["interests"]
    mean, axes = data.fit_pca(first)
    frames = []
    for step, snap in snaps.items():
        xy = data.project(snap["interests"], mean, axes)
        frames.append(pd.DataFrame({"step": step, "user_id": snap["user_ids"],
                                    "pc1": xy[:, 0], "pc2": xy[:, 1]}))  # fmt: skip
    points = pd.concat(frames, ignore_index=True)
    st.caption(
        f"{len(first)} sampled users; PCA fitted at step {min(snaps)}, "
        f"spread (mean distance to centre) per step: "
        + ", ".join(
            f"{s}: {np.hypot(g.pc1 - g.pc1.mean(), g.pc2 - g.pc2.mean()).mean():.3f}"
            for s, g in points.groupby("step")
        )
    )
    fig = charts.projection_figure(points)
    show_figure(fig, points, f"{run.run_id}-trial{trial}-users", "users")
