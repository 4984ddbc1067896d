"""The Compare page: any metrics of the selected runs over time, in a grid grouped by prefix.

Each chart draws, per series (run x agent x sweep point), the mean over seeds and the
interval chosen in the sidebar (standard error by default, clipped to the metric's
declared range) or every seed's line, after the sidebar's smoothing. An agent has the same
colour on every chart and page; each run has its own line style. With several runs the
default layout is one panel per run, each shaded with its own content phases; the other
choice overlays the runs in one panel shaded with the phases of a run you pick. "Difference
to" turns every agent's values into differences to a baseline agent, paired by seed and
step within each run (as the report's ``homogenization_vs_oracle``), before the mean and
interval are taken.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from simlab import intervals
from simlab.dashboard import charts, data
from simlab.dashboard.style import run_dash, shade
from simlab.dashboard.views import Context, load_selected, safe_name, show_figure

__all__ = ["DEFAULT_METRICS", "GROUP_ORDER", "metric_groups", "metric_chart", "page_compare"]

DEFAULT_METRICS = ("engagement/ctr", "exposure/gini", "source/aigc_exposure_share")
GROUP_ORDER = ("engagement", "echo", "exposure", "fairness", "source", "creators")
"""Groups of metrics (the prefix before ``/``) in page order; other groups follow."""


def metric_groups(metrics: list[str]) -> list[tuple[str, list[str]]]:
    """Metrics grouped by prefix, groups in :data:`GROUP_ORDER` then first appearance.

    >>> metric_groups(["source/x", "users/active", "engagement/ctr", "source/y"])
    [('engagement', ['engagement/ctr']), ('source', ['source/x', 'source/y']), ('users', \
['users/active'])]
    """
    groups: dict[str, list[str]] = {}
    for m in metrics:
        groups.setdefault(m.split("/", 1)[0] if "/" in m else "other", []).append(m)
    known = [g for g in GROUP_ORDER if g in groups]
    return [(g, groups[g]) for g in known + [g for g in groups if g not in GROUP_ORDER]]


def _styles(runs: list[data.LoadedRun], frame: pd.DataFrame, ctx: Context) -> dict:
    """``(colour, dash)`` per series: the agent's colour (shaded per sweep point), run's dash."""
    order = {run.run_id: i for i, run in enumerate(runs)}
    rows = frame.drop_duplicates("series")[["series", "agent", "run_id", "variant"]]
    return {
        str(r.series): (shade(ctx.color(str(r.agent)), int(r.variant)), run_dash(order[r.run_id]))
        for r in rows.itertuples(index=False)
    }


def metric_chart(
    runs: list[data.LoadedRun],
    frame: pd.DataFrame,
    metric: str,
    ctx: Context,
    layout: str = "facet",
    baseline: str | None = None,
    key: str = "",
) -> None:
    """One metric's chart (with its CSV) from :func:`data.metric_frame` rows.

    Args:
        runs: the runs shown, in order.
        frame: their rows (smoothed, maybe differences to ``baseline``).
        metric: the column.
        ctx: the page context (colours, interval).
        layout: ``facet`` (one panel per run, each with its phases) or the run id whose
            phases shade a single panel.
        baseline: the baseline agent when ``frame`` holds differences.
        key: a prefix making the chart's widget keys unique on the page.
    """
    for run in runs:
        if metric in data.missing_columns(run.metrics, [metric]):
            st.warning(f"Run {run.label} has no values for {metric}.")
    value_range = next((r.ranges[metric] for r in runs if metric in r.ranges), None)
    if baseline:
        value_range = intervals.difference_range(value_range)
    panels = []
    facet = layout == "facet" and len(runs) > 1
    groups = [(run, frame[frame["run_id"] == run.run_id]) for run in runs] if facet else [
        (next((r for r in runs if r.run_id == layout), runs[0]), frame)
    ]  # fmt: skip
    steps = max(run.steps for run in runs)
    names = data.display_names(runs)
    for run, rows in groups:
        if rows.empty or metric not in rows.columns:
            continue
        agg = intervals.aggregate(rows, metric, ["run_id", "series"], ctx.interval, value_range)
        if agg.empty:
            continue
        seeds = None
        if ctx.interval == "seeds":
            seeds = rows[["series", "trial", "seed", "step", metric]].dropna(subset=[metric])
            seeds = seeds.rename(columns={metric: "value"})
        title = names[run.run_id] if facet else ""
        spans = run.phases() if facet else run.phases(steps)
        panels.append(charts.Panel(title, agg, spans, seeds, run.warmup))
    if not panels:
        return
    how = intervals.INTERVALS[ctx.interval]
    if ctx.smoothing.active:
        how += f"; {ctx.smoothing.label()}"
    y_title = f"{metric} − {baseline}" if baseline else metric
    fig = charts.metric_figure(panels, metric, _styles(runs, frame, ctx), how, y_title)
    csv = pd.concat([p.agg for p in panels], ignore_index=True)
    name = safe_name(metric + (f"-minus-{baseline}" if baseline else ""))
    show_figure(fig, csv.rename(columns={"mean": metric}), name, f"{key}{metric}")


def _paired_seeds(frame, metrics: list[str]) -> dict[str, int]:
    """Seeds per series of a frame of differences that have one (its baseline's seeds)."""
    has = frame[[c for c in metrics if c in frame.columns]].notna().any(axis=1)
    return frame[has].groupby("series")["seed"].nunique().astype(int).to_dict()


def _set_metrics(values: list[str]) -> None:
    st.session_state["compare-metrics"] = values


def _controls(runs: list[data.LoadedRun]) -> tuple[str, str | None, int]:
    """Baseline agent, phase layout and charts per row, from the widgets above the grid."""
    ss = st.session_state
    common = [a for a in runs[0].store.manifest.get("agents", [])
              if all(a in r.store.manifest.get("agents", []) for r in runs)]  # fmt: skip
    if ss.get("baseline") not in ["", *common]:
        ss["baseline"] = ""
    ids = [r.run_id for r in runs]
    if ss.get("phase-layout") not in ["facet", *ids]:
        ss["phase-layout"] = "facet"
    ss.setdefault("grid-cols", "2")
    labels = data.display_names(runs)
    left, middle, right = st.columns([2, 3, 1])
    baseline = left.selectbox(
        "Difference to",
        ["", *common],
        format_func=lambda a: a or "(none: plain values)",
        key="baseline",
        help="Show every agent minus this agent, paired by seed and step within each run.",
    )
    layout = "facet"
    if len(runs) > 1:
        layout = middle.selectbox(
            "Runs and phases",
            ["facet", *ids],
            format_func=lambda v: (
                "one panel per run, each with its own phases"
                if v == "facet"
                else f"one panel, phases of {labels[v]}"
            ),
            key="phase-layout",
        )
    cols = right.selectbox("Charts per row", ["1", "2", "3"], key="grid-cols")
    return layout, baseline or None, int(cols)


def page_compare(ctx: Context) -> None:
    """Chosen metrics over time for the selected runs, grouped by prefix in a grid."""
    st.header("Compare")
    runs = load_selected(ctx)
    if not runs:
        return
    ss = st.session_state
    available = list(dict.fromkeys(c for run in runs for c in run.metric_columns))
    default = [m for m in DEFAULT_METRICS if m in available] or available[:1]
    wanted = ss.get("compare-metrics")
    kept = [m for m in wanted or [] if m in available]
    # none of the wanted metrics exists (a stale link, other runs): back to the default set
    ss["compare-metrics"] = kept if kept or wanted == [] else default
    pick, all_button, key_button = st.columns([6, 1, 1], vertical_alignment="bottom")
    chosen = pick.multiselect("Metrics", available, key="compare-metrics")
    all_button.button("All metrics", key="metrics-all", on_click=_set_metrics, args=(available,))
    key_set = [m for m in DEFAULT_METRICS if m in available]
    key_button.button("Key metrics", key="metrics-key", on_click=_set_metrics, args=(key_set,))
    layout, baseline, ncols = _controls(runs)
    # the plotted rows (differences to the baseline), built once for the note and the charts
    frame = data.metric_frame(runs, chosen, ctx.smoothing, baseline) if chosen else None
    paired = baseline and frame is not None and not frame.empty
    seeds = _paired_seeds(frame, chosen) if paired else data.seeds_per_series(runs)
    note = intervals.few_seeds_note(seeds, ctx.interval)
    if note:
        st.warning(note)
    names = data.display_names(runs)
    for run in runs:  # what one shading per panel cannot show
        notes = []
        if run.phases_differ:
            notes.append(
                "its variants or sweep points have different content phases, so none are "
                "shaded (the Ecosystem page shades each series' own)"
            )
        if len(run.warmups) > 1:
            low, high = run.warmups[0], run.warmups[-1]
            notes.append(
                f"its trials' warm-ups differ ({low} to {high} steps): the longest is shaded; "
                "summaries leave out each trial's own"
            )
        if notes:
            st.caption(f"Run {names[run.run_id]}: " + "; ".join(notes) + ".")
    if baseline:
        lacking = [names[r.run_id] for r in runs if baseline not in set(r.metrics["agent"])]
        st.caption(
            f"Every agent minus {baseline}, paired by seed and step within each run; "
            f"{baseline} itself (0) is not drawn."
            + (f" Runs without {baseline}: {', '.join(lacking)}." if lacking else "")
        )
    if frame is None:
        st.info("Choose one or more metrics.")
        return
    if frame.empty:
        st.info("Nothing to plot for this choice.")
        return
    for group, metrics in metric_groups(chosen):
        label = f"{group} ({len(metrics)} metric{'s' if len(metrics) != 1 else ''})"
        with st.expander(label, expanded=True):
            cols = st.columns(min(ncols, len(metrics)))  # a lone chart takes the full width
            for k, metric in enumerate(metrics):
                with cols[k % len(cols)]:
                    metric_chart(runs, frame, metric, ctx, layout, baseline)
