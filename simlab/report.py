"""Reports of a finished (or stopped) run: a summary table and plots of key metrics over time.

``build_report(run)`` reads a run directory's metric rows and writes, under ``<run>/report/``
(or another folder):

- ``summary.csv``: one row per agent (and sweep point) with each key metric's step summary
  (mean over steps, or the last step for cumulative metrics, as :func:`simlab.store.summarize`
  does) as mean and sd over seeds;
- one PNG per key metric (``engagement_ctr.png`` for ``engagement/ctr``): one line per agent
  (and sweep point), the mean over seeds at each step, and a shaded interval over the seeds
  chosen by ``interval`` (``se``: ±1 standard error, the default; ``sd``; ``t``: the 95%
  Student-t interval; ``seeds``: every seed's line instead of a band), clipped to the
  metric's declared range, after an optional ``smooth``-ing of each trial's curve (EMA or
  rolling mean; see :mod:`simlab.intervals`). Fewer than 3 seeds are flagged;
- ``report.md``: the table and the figures.

When the run has an agent whose model is ``oracle`` (the ideal recommender), derived columns
compare every agent with it, paired by seed, sweep point and step (:mod:`simlab.paired`),
and are summarised like their source: ``echo/homogenization_vs_oracle`` and
``echo/homogenization_nn_vs_oracle`` (homogenization over random and nearest-neighbour pairs
minus the oracle's) and ``engagement/mean_rel_oracle`` (``(x - oracle) / oracle`` of the mean
engagement: with Chaney's users, the relative utility of the consumed items). These are the
measures of Chaney et al. (RecSys 2018), relative to the ideal recommender.

Plots are drawn with matplotlib's Agg canvas directly (no ``pyplot``), so building a report
changes no global state and needs no display.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simlab.errors import RegistryError, RunStoreError, SimlabError
from simlab.intervals import (
    DEFAULT_INTERVAL,
    INTERVALS,
    Smoothing,
    aggregate,
    check_interval,
    difference_range,
    few_seeds_note,
    metric_ranges,
    smooth_frame,
    t_quantile,
)
from simlab.paired import Paired, add_paired
from simlab.store import RunStore, open_run, summarize
from simlab.windows import window_tables

__all__ = [
    "ReportResult",
    "build_report",
    "KEY_METRICS",
    "DERIVED",
    "DERIVED_HOMOGENIZATION",
    "t_quantile",
]

KEY_METRICS: tuple[str, ...] = (
    "engagement/ctr",
    "engagement/mean",
    "echo/homogenization",
    "echo/homogenization_nn",
    "diversity/intra_list",
    "exposure/coverage",
    "source/aigc_exposure_share",
    "source/aigc_production_share",
    "source/bias_ratio",
    "source/bias_log_odds",
    "source/llm_ratio",
    "source/user_polarization",
)
"""Metrics reported by default (those the run has)."""

DERIVED: tuple[Paired, ...] = (
    Paired("echo/homogenization", "echo/homogenization_vs_oracle"),
    Paired("echo/homogenization_nn", "echo/homogenization_nn_vs_oracle"),
    Paired("engagement/mean", "engagement/mean_rel_oracle", "relative"),
)
"""Columns derived against the oracle (same seed, sweep point and step) when a run has one."""

DERIVED_HOMOGENIZATION = DERIVED[0].name
"""Derived column: an agent's homogenization minus the oracle's (same seed, step)."""


@dataclass
class ReportResult:
    """What :func:`build_report` computed and wrote.

    Attributes:
        run_path: the run directory.
        out_dir: the folder holding the report's files.
        metrics: the reported metric columns, in order (the derived column included).
        summary: one row per agent (and sweep point): ``agent``, the sweep columns, ``seeds``,
            ``steps``, and per metric ``<metric>`` (mean over seeds of the step summary) and
            ``<metric> sd`` (sd over seeds, ddof 0 as in ``simlab show``).
        kinds: per metric, ``"mean"`` (mean over steps) or ``"last"`` (last step).
        sweep_columns: the run's sweep columns.
        privileged: labels of privileged agents (the oracle).
        oracle: label of the agent whose model is ``oracle``, or None.
        figures: the PNG files, one per metric.
        markdown: ``report.md``.
        csv: ``summary.csv``.
        interval: the interval kind of the figures (a key of ``simlab.intervals.INTERVALS``).
        smoothing: how each trial's curve was smoothed before the figures' means.
        note: the warning about series with fewer than 3 seeds, or None.
        bands: per metric, what its figure plots: one row per agent (and sweep point) and
            step with ``mean``, ``lo``, ``hi``, ``sd`` and ``n`` (``simlab.intervals.aggregate``).
        tables: measures pooled over windows of the run (:func:`simlab.windows.window_tables`:
            source bias per phase, tipping point), each also written as a CSV.
        baseline: the agent the pooled tables' paired differences are taken against.
    """

    run_path: Path
    out_dir: Path
    metrics: list[str]
    summary: Any
    kinds: dict[str, str]
    sweep_columns: list[str] = field(default_factory=list)
    privileged: list[str] = field(default_factory=list)
    oracle: str | None = None
    figures: list[Path] = field(default_factory=list)
    markdown: Path | None = None
    csv: Path | None = None
    interval: str = DEFAULT_INTERVAL
    smoothing: Smoothing = field(default_factory=Smoothing)
    note: str | None = None
    bands: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, Any] = field(default_factory=dict)
    baseline: str | None = None

    def row_labels(self) -> list[str]:
        """A label per summary row: the agent, privileged marked, and its sweep values."""
        labels = []
        for _, row in self.summary.iterrows():
            label = str(row["agent"])
            if label in self.privileged:
                label += " (privileged)"
            if self.sweep_columns:
                label += " [" + ", ".join(f"{c}={row[c]}" for c in self.sweep_columns) + "]"
            labels.append(label)
        return labels

    def groups(self) -> list[tuple[str, list[int]]]:
        """The summary rows grouped by sweep point: ``[(point label, row indices)]``.

        One group (label ``""``) without sweep columns; tables print one per group, the
        agents as columns, so a run with many variants stays readable.
        """
        if not self.sweep_columns:
            return [("", list(range(len(self.summary))))]
        out: dict[str, list[int]] = {}
        for i, (_, row) in enumerate(self.summary.iterrows()):
            label = ", ".join(f"{c}={row[c]}" for c in self.sweep_columns)
            out.setdefault(label, []).append(i)
        return list(out.items())

    def agent_label(self, row_index: int) -> str:
        """The agent of a summary row, ``(privileged)`` marked (no sweep values)."""
        label = str(self.summary.iloc[row_index]["agent"])
        return label + (" (privileged)" if label in self.privileged else "")

    def cell(self, row_index: int, metric: str) -> str:
        """``mean ±sd`` of one metric in one summary row, as printed."""
        row = self.summary.iloc[row_index]
        return format_mean_sd(row[metric], row[f"{metric} sd"])


def format_mean_sd(mean: float, sd: float) -> str:
    """``"0.1234 ±0.005"``; ``"-"`` for NaN; the ``±`` part only for a positive sd."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    text = f"{mean:.4g}" if abs(mean) < 1000 else f"{mean:,.0f}"
    if sd and not math.isnan(sd) and sd > 0:
        text += f" ±{sd:.2g}"
    return text


def build_report(
    run_path: str | Path,
    out_dir: str | Path | None = None,
    metrics: Sequence[str] | None = None,
    runs_dir: str | Path | None = None,
    interval: str = DEFAULT_INTERVAL,
    smooth: str | Smoothing | None = None,
    baseline: str | None = None,
) -> ReportResult:
    """Summarise a run and write its table, CSV, markdown and one PNG per key metric.

    Args:
        run_path: the run directory, or a run id under ``runs_dir``.
        out_dir: where to write (default ``<run>/report/``).
        metrics: metric columns to report (default: :data:`KEY_METRICS` that the run has).
            Each derived column (:data:`DERIVED`) is added whenever its source is
            reported and the run has an oracle agent.
        runs_dir: folder to look ``run_path`` up in when it is not a path.
        interval: the figures' interval over seeds: ``se`` (default), ``sd``, ``t`` or
            ``seeds`` (see :mod:`simlab.intervals`).
        smooth: ``off`` (default), ``ema[:WEIGHT]`` or ``rolling[:WINDOW]``: smoothing of each
            trial's curve in the figures (the summary table is never smoothed).
        baseline: the agent the pooled tables' paired differences are taken against
            (default: the first agent).

    Returns:
        The :class:`ReportResult`.

    Raises:
        RunStoreError: the run directory is missing or corrupt, or has no metric rows.
        RegistryError: a requested metric is not a column of the run.
        SimlabError: an unknown interval or a malformed smoothing.
    """
    try:
        check_interval(interval)
        smoothing = smooth if isinstance(smooth, Smoothing) else Smoothing.parse(smooth, "smooth")
    except ValueError as e:
        raise SimlabError(str(e)) from None
    store = open_run(run_path, runs_dir=runs_dir)
    df = store.read_metrics()
    if df.empty:
        raise RunStoreError(f"{store.path}: no metric rows to report yet")
    columns = [c for c in store.manifest["metric_columns"] if c in df.columns]
    chosen = (
        _check_metrics(metrics, columns) if metrics else [c for c in KEY_METRICS if c in columns]
    )
    kinds = {c: str(store.manifest.get("metric_summary", {}).get(c, "mean")) for c in columns}
    sweep = [c for c in store.manifest.get("sweep_columns", []) if c in df.columns]
    oracle = _oracle_label(store)
    derived = [d for d in DERIVED if d.metric in chosen]
    if oracle is not None and derived and oracle in set(df["agent"]):
        df = add_paired(df, oracle, derived, ["seed", *sweep, "step"])
        for d in derived:
            chosen.insert(chosen.index(d.metric) + 1, d.name)
            kinds[d.name] = kinds.get(d.metric, "mean")
    manifest = {
        "metric_columns": chosen,
        "metric_summary": {c: kinds.get(c, "mean") for c in chosen},
        "sweep_columns": sweep,
    }
    out = Path(out_dir) if out_dir is not None else store.path / "report"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunStoreError(f"{out}: cannot create the report folder ({e})") from e
    result = ReportResult(
        run_path=store.path,
        out_dir=out,
        metrics=chosen,
        summary=summarize(df, manifest),
        kinds=manifest["metric_summary"],
        sweep_columns=sweep,
        privileged=list(store.manifest.get("privileged_agents", [])),
        oracle=oracle,
        interval=interval,
        smoothing=smoothing,
    )
    warmup = {int(r["index"]): int(r.get("warmup", 0)) for r in store.manifest["trials"]}
    df["_warmup"] = df["trial"].map(warmup).fillna(0)
    ranges = metric_ranges(store.manifest)
    for d in DERIVED:  # a difference of two values in [lo, hi]; a ratio is not clipped
        if d.kind == "difference" and difference_range(ranges.get(d.metric)):
            ranges[d.name] = difference_range(ranges.get(d.metric))
    labels = result.row_labels()
    seeds = {k: int(n) for k, n in zip(labels, result.summary["seeds"], strict=True)}
    result.note = few_seeds_note(seeds, interval)
    plotted = smooth_frame(df, chosen, smoothing, by=["trial"])
    result.figures = [_plot_metric(plotted, c, result, out, ranges.get(c)) for c in chosen]
    agents = list(dict.fromkeys(df["agent"]))
    if baseline is not None and baseline not in agents:
        close = difflib.get_close_matches(baseline, agents, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise RegistryError(
            f"--baseline: '{baseline}' is not an agent of this run.{hint} Allowed: "
            + ", ".join(agents)
        )
    result.baseline = baseline or agents[0]
    result.tables = window_tables(df, store.path, store.manifest, sweep, result.baseline)
    for name, table in result.tables.items():
        table.to_csv(out / (name.replace(" ", "_") + ".csv"), index=False)
    result.csv = out / "summary.csv"
    result.summary.to_csv(result.csv, index=False)
    result.markdown = out / "report.md"
    result.markdown.write_text(_markdown(result, store), encoding="utf-8")
    return result


# ---------------------------------------------------------------------- helpers
def _check_metrics(metrics: Sequence[str], columns: list[str]) -> list[str]:
    """The requested metrics, in order, deduplicated; unknown names raise RegistryError."""
    sources = {d.name: d.metric for d in DERIVED if d.metric in columns}
    allowed = [*columns, *sources]
    out: list[str] = []
    for m in metrics:
        if m not in allowed:
            close = difflib.get_close_matches(m, allowed, n=1)
            hint = f"Did you mean '{close[0]}'? " if close else ""
            raise RegistryError(
                f"--metrics: '{m}' is not a metric column of this run. {hint}"
                f"Allowed: {', '.join(allowed)}"
            )
        m = sources.get(m, m)  # a derived column comes with its source
        if m not in out:
            out.append(m)
    return out


def _oracle_label(store: RunStore) -> str | None:
    """Label of the first agent whose model is ``oracle`` (from the run's scenario.yaml)."""
    import yaml

    try:
        data = yaml.safe_load((store.path / "scenario.yaml").read_text(encoding="utf-8"))
        agents = data["agents"]
        for a in agents:
            if a.get("model") == "oracle":
                return str(a.get("name") or a["model"])
        return None
    except Exception:  # no readable scenario: fall back on the manifest's labels
        labels = list(store.manifest.get("agents", []))
        return "oracle" if "oracle" in labels else None


def _plot_metric(df, metric: str, result: ReportResult, out: Path, value_range=None) -> Path:
    """One PNG: mean over seeds per step per agent, with the chosen interval (or seed lines).

    With sweep points (or variants) each has its own panel, side by side; the warm-up
    steps (before the first retrained model serves, left out of the summaries) are shaded
    grey in each panel. Bands are clipped to ``value_range``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    sweep = result.sweep_columns
    facets = (
        [(k if isinstance(k, tuple) else (k,), g) for k, g in df.groupby(sweep, sort=False)]
        if sweep
        else [((), df)]
    )
    fig = Figure(figsize=(7 * min(len(facets), 3) ** 0.8, 4), dpi=100)
    FigureCanvasAgg(fig)
    order = list(dict.fromkeys(df["agent"]))
    colours = {a: f"C{i % 10}" for i, a in enumerate(order)}
    kind = "cumulative" if result.kinds.get(metric) == "last" else "per step"
    result.bands[metric] = aggregate(df, metric, ["agent", *sweep], result.interval, value_range)
    for n, (key, part) in enumerate(facets):
        ax = fig.add_subplot(1, len(facets), n + 1)
        stats = aggregate(part, metric, ["agent"], result.interval, value_range)
        for agent, g in sorted(
            stats.groupby("agent", sort=False), key=lambda kv: order.index(kv[0])
        ):
            steps = g["step"].to_numpy()
            label = str(agent) + (" (privileged)" if agent in result.privileged else "")
            ax.plot(steps, g["mean"], label=label, linewidth=1.5, color=colours[agent])
            if result.interval == "seeds":
                for _, trial in part[part["agent"] == agent].groupby("trial", sort=True):
                    ax.plot(trial["step"], trial[metric], color=colours[agent], lw=0.6, alpha=0.45)
            elif (g["hi"] > g["lo"]).any():
                ax.fill_between(
                    steps, g["lo"].to_numpy(dtype=float), g["hi"].to_numpy(dtype=float),
                    color=colours[agent], alpha=0.2, linewidth=0,
                )  # fmt: skip
        warm = int(part["_warmup"].max()) if "_warmup" in part else 0
        if warm > 0:
            ax.axvspan(-0.5, warm - 0.5, color="0.85", zorder=0, linewidth=0)
        where = ", ".join(f"{c}={v}" for c, v in zip(sweep, key, strict=True))
        ax.set_title(f"{where}" if where else metric, fontsize=9)
        ax.set_xlabel("step (grey: warm-up)" if warm > 0 else "step")
        ax.set_ylabel(metric)
        ax.grid(True, alpha=0.3)
        if n == 0 and len(stats):
            ax.legend(fontsize=7)
        if n == 0 and result.note:
            ax.text(0.01, 0.01, "fewer than 3 seeds: read the interval with care",
                    transform=ax.transAxes, fontsize=7, color="darkred")  # fmt: skip
    how = INTERVALS[result.interval]
    if result.smoothing.active:
        how += f"; {result.smoothing.label()}"
    fig.suptitle(f"{metric} ({kind}; mean over seeds, {how})", fontsize=10)
    fig.tight_layout()
    path = out / (metric.replace("/", "_") + ".png")
    fig.savefig(path, format="png")
    return path


def _markdown(result: ReportResult, store: RunStore) -> str:
    """``report.md``: the run, a table per sweep point (metrics as rows) and the figures."""
    lines = [
        f"# Report of run `{store.run_id}`",
        "",
        f"Scenario `{store.manifest.get('scenario')}`, status {store.status}. Each cell: the "
        "metric's mean over steps (or its last step, marked *), then mean ± sd over seeds. "
        f"Figures: mean over seeds with {INTERVALS[result.interval]}"
        + (f", {result.smoothing.label()}" if result.smoothing.active else "")
        + ", bands clipped to each metric's range.",
        "",
        *([f"**Note.** {result.note}", ""] if result.note else []),
    ]
    for point, rows in result.groups():
        if point:
            lines += [f"### {point}", ""]
        lines += [
            "| metric | " + " | ".join(result.agent_label(i) for i in rows) + " |",
            "|---|" + "---:|" * len(rows),
            "| seeds | "
            + " | ".join(str(int(result.summary["seeds"].iloc[i])) for i in rows)
            + " |",
            "| steps | "
            + " | ".join(str(int(result.summary["steps"].iloc[i])) for i in rows)
            + " |",
        ]
        for m in result.metrics:
            name = m + ("*" if result.kinds.get(m) == "last" else "")
            lines.append(f"| {name} | " + " | ".join(result.cell(i, m) for i in rows) + " |")
        lines.append("")
    for d in DERIVED:
        if result.oracle and d.name in result.metrics:
            o = f"`{result.oracle}`'s"
            what = (
                f"`{d.metric}` minus {o}"
                if d.kind == "difference"
                else f"(`{d.metric}` minus {o}) / {o}"
            )
            lines += ["", f"`{d.name}`: {what}, at the same seed, sweep point and step."]
    lines += _table_lines(result)
    lines += ["", "## Figures", ""]
    lines += [f"![{m}]({p.name})" for m, p in zip(result.metrics, result.figures, strict=True)]
    return "\n".join(lines) + "\n"


def _table_lines(result: ReportResult) -> list[str]:
    """Markdown of the pooled tables: value and difference to the baseline, ± 95% t."""
    lines: list[str] = []
    for name, table in result.tables.items():
        keys = [c for c in ("agent", *result.sweep_columns, "window") if c in table.columns]
        extra = ["tipped"] if "tipped" in table.columns else []
        how = (
            "Per trial pooled over the window (summed counts, then the log odds)"
            if "window" in table.columns
            else "Per trial, the first step after the warm-up at which the AIGC share of "
            "active creators exceeds 1/2; a trial that never tips counts as the run's "
            "length (so the mean is a lower bound when not all tipped; `tipped` counts those "
            "that did)"
        )
        lines += [
            "",
            f"## {name[0].upper() + name[1:]}",
            "",
            f"{how}, then mean ± 95% Student-t half-width over seeds; `vs {result.baseline}`: "
            "the paired difference (same seed).",
            "",
            "| " + " | ".join([*keys, "value", f"vs {result.baseline}", "seeds", *extra]) + " |",
            "|" + "---|" * len(keys) + "---:|---:|---:|" + "---:|" * len(extra),
        ]
        for _, r in table.iterrows():
            diff = format_mean_sd(r.get("diff", float("nan")), r.get("diff ±", float("nan")))
            cells = [str(r[k]) for k in keys]
            cells += [format_mean_sd(r["value"], r["value ±"]), diff, str(int(r["value n"]))]
            cells += [str(int(r[e])) for e in extra]
            lines.append("| " + " | ".join(cells) + " |")
    return lines
