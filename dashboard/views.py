"""Page plumbing (context, cached loading, figures with CSV) and the Ecosystem and Users pages.

Each page takes a :class:`Context` (the runs folder, every run found there, the runs
selected in the sidebar, their labels, the agent colours and the interval and smoothing
choices). A run that cannot be read — a corrupt manifest, a half-written metrics part, a
damaged snapshot, anything else — becomes an ``st.error`` naming that run; the rest of the
page still renders. Runs are read through :func:`load`, cached until a file of the run
directory changes, so a finished run is not re-read on every interaction.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from simlab import snapshots
from simlab.dashboard import charts, data, runmeta
from simlab.dashboard.style import PALETTE
from simlab.intervals import DEFAULT_INTERVAL, Smoothing
from simlab.store import RunSummary

__all__ = ["Context", "load", "load_selected", "show_figure", "safe_name", "page_ecosystem",
           "page_users"]  # fmt: skip

SHARE_COLUMNS = {
    "production": "source/aigc_production_share",
    "exposure": "source/aigc_exposure_share",
    "clicks": "source/aigc_click_share",
}
CREATOR_COLUMNS = {"human": "creators/active_human", "AIGC": "creators/active_aigc"}


@dataclass
class Context:
    """What every page gets: the runs folder, its runs, the selection and the view choices.

    Attributes:
        runs_dir: the runs folder.
        runs: every run directory in it, newest first.
        selected: the runs selected in the sidebar (or on the Runs page), in that order.
        labels: display name and tags per run id (``labels.json``).
        colors: colour per agent label, the same on every page.
        interval: the interval over seeds (``simlab.intervals.INTERVALS``).
        smoothing: how each trial's curve is smoothed.
    """

    runs_dir: Path
    runs: list[RunSummary]
    selected: list[RunSummary]
    labels: dict[str, dict] = field(default_factory=dict)
    colors: dict[str, str] = field(default_factory=dict)
    interval: str = DEFAULT_INTERVAL
    smoothing: Smoothing = field(default_factory=Smoothing)

    def color(self, agent: str) -> str:
        """The agent's colour (a palette colour for an agent of no listed run)."""
        return self.colors.get(agent, PALETTE[len(self.colors) % len(PALETTE)])


def signature(path: Path) -> tuple:
    """What changes when a run directory changes: its files' names, sizes and times."""
    sig: list = []
    for name in ("manifest.json", "labels.json", "scenario.yaml"):
        try:
            st_ = (path / name).stat()
            sig.append((name, st_.st_mtime_ns, st_.st_size))
        except OSError:
            sig.append((name, None))
    for folder in ("metrics.parquet", "metrics.journal"):
        try:
            entries = sorted(
                (e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in os.scandir(path / folder)
            )
        except OSError:
            entries = []
        sig.append((folder, tuple(entries)))
    return tuple(sig)


@st.cache_data(max_entries=64, show_spinner=False)
def _load_cached(path: str, sig: tuple) -> data.LoadedRun:
    return data.load_run(path)


def load(path: Path) -> data.LoadedRun:
    """``data.load_run(path)``, cached until one of the run's files changes."""
    return _load_cached(str(path), signature(Path(path)))


def load_selected(ctx: Context) -> list[data.LoadedRun]:
    """Read every selected run; show an ``st.error`` for each one that cannot be read."""
    loaded = []
    for summary in ctx.selected:
        if summary.problem:
            st.error(f"Run {summary.run_id} cannot be read: {summary.problem}")
            continue
        try:
            loaded.append(load(summary.path))
        except Exception as e:  # any failure of one run must not break the page
            st.error(f"Run {summary.run_id} cannot be read: {e}")
    if not ctx.selected:
        st.info("Select one or more runs in the sidebar or on the Runs page.")
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


def safe_name(text: str) -> str:
    """``text`` with every character but letters, digits, ``-`` and ``_`` replaced by ``_``."""
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text)


# ---------------------------------------------------------------------- Ecosystem
def _pick_run(runs: list[data.LoadedRun], key: str) -> data.LoadedRun:
    ids = [r.run_id for r in runs]
    if len(runs) == 1:
        return runs[0]
    if st.session_state.get(key) not in ids:
        st.session_state[key] = ids[0]
    labels = {r.run_id: r.label for r in runs}
    chosen = st.selectbox("Run", ids, key=key, format_func=lambda r: labels[r])
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
        mine = df[df["series"] == agent]
        shares = _mean_by_step(mine, SHARE_COLUMNS, [])
        point = {c: mine[c].iloc[0] for c in run.sweep_columns} if len(mine) else None
        fig = charts.share_figure(shares, run.phases(point=point) if point else spans)
        show_figure(fig, shares, f"{run.run_id}-shares", "shares")
    st.subheader("Creators by kind")
    missing = data.missing_columns(df, list(CREATOR_COLUMNS.values()))
    if len(missing) == len(CREATOR_COLUMNS):
        st.warning(f"Run {run.run_id} lacks creator counts ({', '.join(missing)}).")
    else:
        creators = _mean_by_step(df, CREATOR_COLUMNS, ["series"])
        agent_of = dict(zip(df["series"], df["agent"], strict=False))
        colors = {s: ctx.color(agent_of[s]) for s in creators["series"].unique()}
        fig = charts.creators_figure(creators, spans, colors)
        show_figure(fig, creators, f"{run.run_id}-creators", "creators")
    st.subheader("Exposure Lorenz curve")
    _lorenz_section(run, ctx)


def _trial_agents(run: data.LoadedRun) -> dict[int, str]:
    return {
        int(t.get("index", i)): str(t.get("agent", "?"))
        for i, t in enumerate(run.store.manifest["trials"])
    }


def _trial_labels(run: data.LoadedRun) -> dict[int, str]:
    """``agent seed s`` per trial, with its sweep values (variant=...) when the run has any."""
    out = {}
    for i, t in enumerate(run.store.manifest["trials"]):
        point = runmeta.point_text(t.get("params") or {})
        out[int(t.get("index", i))] = f"{t.get('agent', '?')}{point} seed {t.get('seed', '?')}"
    return out


def _after(steps: int) -> str:
    """A snapshot's label: snapshots are numbered by steps done, after metric step N - 1."""
    return f"after {steps} step{'s' if steps != 1 else ''}" if steps else "before step 0"


def _when(steps: int) -> str:
    """:func:`_after` with the chart step it follows (charts number steps from 0)."""
    return _after(steps) + (f" (the end of step {steps - 1} of the charts)" if steps else "")


def _lorenz_section(run: data.LoadedRun, ctx: Context) -> None:
    labels = _trial_labels(run)
    agents = _trial_agents(run)
    steps_by_trial = {t: snapshots.snapshot_steps(run.store.path, t) for t in labels}
    steps = sorted({s for v in steps_by_trial.values() for s in v})
    if not steps:
        every = (run.scenario.get("output") or {}).get("snapshot_every")
        why = "none saved yet" if every else "`output.snapshot_every: 0`"
        st.info(f"Run {run.run_id} has no snapshots ({why}).")
        return
    step = (
        st.select_slider(
            "Snapshot",
            steps,
            value=steps[-1],
            key="lorenz-step",
            format_func=_after,
            help="Snapshots are taken after a number of steps: after N steps is the state "
            "at the end of step N - 1 of the charts.",
        )
        if len(steps) > 1
        else steps[0]
    )
    st.caption(f"Exposure {_when(step)}.")
    curves, rows, colors = [], [], []
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
        colors.append(ctx.color(agents[trial]))
        rows.append(pd.DataFrame({"trial": trial, "label": label, "items share": x,
                                  "impressions share": y}))  # fmt: skip
    if curves:
        fig = charts.lorenz_figure(curves, colors)
        show_figure(fig, pd.concat(rows), f"{run.run_id}-lorenz", "lorenz")


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
    chosen = st.multiselect(
        "Snapshots", steps, default=default, key="users-steps", format_func=_after
    )
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
        f"{len(first)} sampled users; PCA fitted {_when(min(snaps))}; spread (mean distance "
        "to centre): "
        + ", ".join(
            f"{_after(s)}: {np.hypot(g.pc1 - g.pc1.mean(), g.pc2 - g.pc2.mean()).mean():.3f}"
            for s, g in points.groupby("step")
        )
    )
    fig = charts.projection_figure(points)
    show_figure(fig, points, f"{run.run_id}-trial{trial}-users", "users")
