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

When the run has an agent whose model is ``oracle``, the derived column
``echo/homogenization_vs_oracle`` is an agent's ``echo/homogenization`` minus the oracle's,
paired by seed, step (and sweep point), then summarised like homogenization (last step). This
is the homogenization measure of Chaney et al. (RecSys 2018): homogenization relative to the
ideal recommender.

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
from simlab.store import RunStore, open_run, summarize

__all__ = ["ReportResult", "build_report", "KEY_METRICS", "DERIVED_HOMOGENIZATION", "t_quantile"]

KEY_METRICS: tuple[str, ...] = (
    "engagement/ctr",
    "engagement/mean",
    "echo/homogenization",
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

DERIVED_HOMOGENIZATION = "echo/homogenization_vs_oracle"
"""Derived column: an agent's homogenization minus the oracle's (same seed, step)."""

_HOMOGENIZATION = "echo/homogenization"


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
) -> ReportResult:
    """Summarise a run and write its table, CSV, markdown and one PNG per key metric.

    Args:
        run_path: the run directory, or a run id under ``runs_dir``.
        out_dir: where to write (default ``<run>/report/``).
        metrics: metric columns to report (default: :data:`KEY_METRICS` that the run has).
            The derived column ``echo/homogenization_vs_oracle`` is added whenever
            homogenization is reported and the run has an oracle agent.
        runs_dir: folder to look ``run_path`` up in when it is not a path.
        interval: the figures' interval over seeds: ``se`` (default), ``sd``, ``t`` or
            ``seeds`` (see :mod:`simlab.intervals`).
        smooth: ``off`` (default), ``ema[:WEIGHT]`` or ``rolling[:WINDOW]``: smoothing of each
            trial's curve in the figures (the summary table is never smoothed).

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
    if oracle is not None and _HOMOGENIZATION in chosen and oracle in set(df["agent"]):
        df = _add_vs_oracle(df, oracle, sweep)
        chosen.insert(chosen.index(_HOMOGENIZATION) + 1, DERIVED_HOMOGENIZATION)
        kinds[DERIVED_HOMOGENIZATION] = kinds.get(_HOMOGENIZATION, "last")
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
    ranges = metric_ranges(store.manifest)
    ranges[DERIVED_HOMOGENIZATION] = difference_range(ranges.get(_HOMOGENIZATION))
    labels = result.row_labels()
    seeds = {k: int(n) for k, n in zip(labels, result.summary["seeds"], strict=True)}
    result.note = few_seeds_note(seeds, interval)
    plotted = smooth_frame(df, chosen, smoothing, by=["trial"])
    result.figures = [_plot_metric(plotted, c, result, out, ranges.get(c)) for c in chosen]
    result.csv = out / "summary.csv"
    result.summary.to_csv(result.csv, index=False)
    result.markdown = out / "report.md"
    result.markdown.write_text(_markdown(result, store), encoding="utf-8")
    return result


# ---------------------------------------------------------------------- helpers
def _check_metrics(metrics: Sequence[str], columns: list[str]) -> list[str]:
    """The requested metrics, in order, deduplicated; unknown names raise RegistryError."""
    allowed = [*columns, DERIVED_HOMOGENIZATION]
    out: list[str] = []
    for m in metrics:
        if m not in allowed:
            close = difflib.get_close_matches(m, allowed, n=1)
            hint = f"Did you mean '{close[0]}'? " if close else ""
            raise RegistryError(
                f"--metrics: '{m}' is not a metric column of this run. {hint}"
                f"Allowed: {', '.join(columns)}"
            )
        if m == DERIVED_HOMOGENIZATION:
            m = _HOMOGENIZATION  # the derived column comes with homogenization
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


def _add_vs_oracle(df, oracle: str, sweep: list[str]):
    """Add the derived column: homogenization minus the oracle's at the same seed and step."""
    keys = ["seed", *sweep, "step"]
    ref = df.loc[df["agent"] == oracle, [*keys, _HOMOGENIZATION]].rename(
        columns={_HOMOGENIZATION: "_oracle"}
    )
    merged = df.merge(ref, on=keys, how="left", sort=False)
    merged[DERIVED_HOMOGENIZATION] = merged[_HOMOGENIZATION] - merged["_oracle"]
    return merged.drop(columns="_oracle")


def _plot_metric(df, metric: str, result: ReportResult, out: Path, value_range=None) -> Path:
    """One PNG: mean over seeds per step per agent, with the chosen interval (or seed lines)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    keys = ["agent", *result.sweep_columns]
    stats = aggregate(df, metric, keys, result.interval, value_range)
    result.bands[metric] = stats
    fig = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    order = list(dict.fromkeys(df["agent"]))
    groups = sorted(
        stats.groupby(keys, sort=False, dropna=False), key=lambda kv: order.index(_first(kv[0]))
    )
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        label = str(key[0]) + (
            " [" + ", ".join(f"{c}={v}" for c, v in zip(keys[1:], key[1:], strict=True)) + "]"
            if len(key) > 1
            else ""
        )
        steps = g["step"].to_numpy()
        (line,) = ax.plot(steps, g["mean"].to_numpy(dtype=float), label=label, linewidth=1.5)
        if result.interval == "seeds":
            mine = (df[keys[0]] == key[0]).to_numpy()
            for c, v in zip(keys[1:], key[1:], strict=True):
                mine &= (df[c] == v).to_numpy()
            for _, trial in df[mine].groupby("trial", sort=True):
                ax.plot(trial["step"], trial[metric], color=line.get_color(), lw=0.6, alpha=0.45)
        elif (g["hi"] > g["lo"]).any():
            ax.fill_between(
                steps, g["lo"].to_numpy(dtype=float), g["hi"].to_numpy(dtype=float),
                color=line.get_color(), alpha=0.2, linewidth=0,
            )  # fmt: skip
    kind = "cumulative" if result.kinds.get(metric) == "last" else "per step"
    how = INTERVALS[result.interval]
    if result.smoothing.active:
        how += f"; {result.smoothing.label()}"
    ax.set_title(f"{metric} ({kind})\nmean over seeds, {how}", fontsize=9)
    if result.note:
        ax.text(0.01, 0.01, "fewer than 3 seeds: read the interval with care",
                transform=ax.transAxes, fontsize=8, color="darkred")  # fmt: skip
    ax.set_xlabel("step")
    ax.set_ylabel(metric)
    ax.grid(True, alpha=0.3)
    if groups:
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / (metric.replace("/", "_") + ".png")
    fig.savefig(path, format="png")
    return path


def _first(key: Any) -> Any:
    return key[0] if isinstance(key, tuple) else key


def _markdown(result: ReportResult, store: RunStore) -> str:
    """``report.md``: the run, the table (metrics as rows) and the figures."""
    labels = result.row_labels()
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
        "| metric | " + " | ".join(labels) + " |",
        "|---|" + "---:|" * len(labels),
        "| seeds | " + " | ".join(str(int(v)) for v in result.summary["seeds"]) + " |",
        "| steps | " + " | ".join(str(int(v)) for v in result.summary["steps"]) + " |",
    ]
    for m in result.metrics:
        name = m + ("*" if result.kinds.get(m) == "last" else "")
        cells = [result.cell(i, m) for i in range(len(labels))]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if result.oracle and DERIVED_HOMOGENIZATION in result.metrics:
        lines += [
            "",
            f"`{DERIVED_HOMOGENIZATION}`: homogenization minus that of `{result.oracle}` "
            "(same seed and step).",
        ]
    lines += ["", "## Figures", ""]
    lines += [f"![{m}]({p.name})" for m, p in zip(result.metrics, result.figures, strict=True)]
    return "\n".join(lines) + "\n"
