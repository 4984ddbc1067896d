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
from collections.abc import Sequence
from pathlib import Path

from simlab.atomic import output_folder, replacing, write_text
from simlab.errors import RegistryError, RunStoreError, SimlabError
from simlab.intervals import (
    DEFAULT_INTERVAL,
    Smoothing,
    check_interval,
    difference_range,
    few_seeds_note,
    metric_ranges,
    smooth_frame,
    t_quantile,
)
from simlab.paired import add_paired
from simlab.report_markdown import _markdown
from simlab.report_plot import _plot_metric
from simlab.report_result import (
    DERIVED,
    DERIVED_HOMOGENIZATION,
    KEY_METRICS,
    ReportResult,
    check_table_interval,
    format_mean_sd,
)
from simlab.store import RunStore, open_run, stopped_note, summarize, trial_warmups, warmup_note
from simlab.windows import PointBaseline, window_tables

__all__ = [
    "ReportResult",
    "build_report",
    "KEY_METRICS",
    "DERIVED",
    "DERIVED_HOMOGENIZATION",
    "t_quantile",
    "format_mean_sd",
]


def build_report(
    run_path: str | Path,
    out_dir: str | Path | None = None,
    metrics: Sequence[str] | None = None,
    runs_dir: str | Path | None = None,
    interval: str = DEFAULT_INTERVAL,
    smooth: str | Smoothing | None = None,
    baseline: str | None = None,
    table_interval: str = "sd",
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
        baseline: what the pooled tables' paired differences are taken against: an agent
            (default: the first agent), or ``COLUMN=VALUE`` of a sweep column (e.g.
            ``variant=phases``): the same agent at that sweep point.
        table_interval: the ``±`` of the summary table: ``sd`` over seeds (default), ``se``
            or ``t`` (the 95% Student-t half-width, as docs/experiments.md's tables).

    Returns:
        The :class:`ReportResult`.

    Raises:
        RunStoreError: the run directory is missing or corrupt, or has no metric rows.
        RegistryError: a requested metric is not a column of the run.
        SimlabError: an unknown interval or table interval, or a malformed smoothing.
    """
    try:
        check_interval(interval)
        check_table_interval(table_interval)
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
    base = _baseline(baseline, list(dict.fromkeys(df["agent"])), sweep, store)  # before writing
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
        "trials": store.manifest["trials"],  # their warm-ups: the step means start after
        "metric_sources": {d.name: d.metric for d in derived if d.name in chosen},
    }
    out = output_folder(Path(out_dir) if out_dir is not None else store.path / "report", "report")
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
        table_interval=table_interval,
        smoothing=smoothing,
    )
    df["_warmup"] = df["trial"].map(trial_warmups(store.manifest)).fillna(0)
    ranges = metric_ranges(store.manifest)
    for d in DERIVED:  # a difference of two values in [lo, hi]; a ratio is not clipped
        if d.kind == "difference" and difference_range(ranges.get(d.metric)):
            ranges[d.name] = difference_range(ranges.get(d.metric))
    labels = result.row_labels()
    seeds = {k: result.fewest_seeds(i) for i, k in enumerate(labels)}  # paired columns too
    result.note = few_seeds_note(seeds, interval)
    result.warmup_note = warmup_note(df, store.manifest)
    result.stopped_note = stopped_note(df, store.manifest)
    plotted = smooth_frame(df, chosen, smoothing, by=["trial"])
    result.figures = [_plot_metric(plotted, c, result, out, ranges.get(c)) for c in chosen]
    result.baseline = base
    result.tables = window_tables(df, store.path, store.manifest, sweep, result.baseline)
    for name, table in result.tables.items():  # each file whole or not at all
        with replacing(out / (name.replace(" ", "_") + ".csv")) as tmp:
            table.to_csv(tmp, index=False)
    result.csv = out / "summary.csv"
    with replacing(result.csv) as tmp:
        result.summary.to_csv(tmp, index=False)
    result.markdown = out / "report.md"
    write_text(result.markdown, _markdown(result, store))
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


def _baseline(
    text: str | None, agents: list[str], sweep: list[str], store: RunStore
) -> str | PointBaseline:
    """``--baseline`` as an agent or a sweep point; RegistryError naming what is allowed."""
    if text is None:
        return agents[0]
    if text in agents:
        return text
    column, sep, value = text.partition("=")
    if sep and column in sweep:
        values = list(
            dict.fromkeys(t.get("params", {}).get(column) for t in store.manifest["trials"])
        )
        read = _yaml_value(value)
        for v in values:
            if str(v) == value or read == v:
                return PointBaseline(column, v)
        raise RegistryError(
            f"--baseline: '{value}' is not a value of the sweep column '{column}' in this run. "
            "Allowed: " + ", ".join(str(v) for v in values)
        )
    close = difflib.get_close_matches(text, agents, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    points = f", or COLUMN=VALUE of a sweep column ({', '.join(sweep)})" if sweep else ""
    raise RegistryError(
        f"--baseline: '{text}' is not an agent of this run{points}.{hint} Allowed agents: "
        + ", ".join(agents)
    )


def _yaml_value(text: str):
    """``text`` read as a YAML scalar (``3`` -> 3, ``0.5`` -> 0.5); itself if unreadable."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


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
