"""What a report computes: the reported metrics, the derived columns and :class:`ReportResult`.

The data half of :mod:`simlab.report`, shared by its build, figures and markdown (and by
``simlab report``'s tables in :mod:`simlab.cli_runs`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from simlab.intervals import DEFAULT_INTERVAL, Smoothing, check_kind, half_width
from simlab.paired import Paired

__all__ = [
    "ReportResult",
    "KEY_METRICS",
    "DERIVED",
    "DERIVED_HOMOGENIZATION",
    "format_mean_sd",
    "TABLE_INTERVALS",
    "check_table_interval",
    "summary_cell",
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

TABLE_INTERVALS: dict[str, str] = {
    "sd": "sd over seeds",
    "se": "standard error over seeds",
    "t": "95% Student-t half-width over seeds",
}
"""What the ``±`` of the summary table shows (``simlab report --table-interval``)."""


def check_table_interval(kind: str, where: str = "table_interval") -> str:
    """``kind`` if it is one of :data:`TABLE_INTERVALS`, else ValueError naming ``where``."""
    return check_kind(
        kind, TABLE_INTERVALS, where, "table interval",
        "standard deviation, standard error, Student t; the figures' `seeds` draws lines and "
        "has no ± to print",
    )  # fmt: skip


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
            ``<metric> sd`` (the sample sd over seeds, ddof 1, as in ``simlab show``).
        kinds: per metric, ``"mean"`` (mean over steps) or ``"last"`` (last step).
        sweep_columns: the run's sweep columns.
        privileged: labels of privileged agents (the oracle).
        oracle: label of the agent whose model is ``oracle``, or None.
        figures: the PNG files, one per metric.
        markdown: ``report.md``.
        csv: ``summary.csv``.
        interval: the interval kind of the figures (a key of ``simlab.intervals.INTERVALS``).
        table_interval: what the table's ``±`` shows (a key of :data:`TABLE_INTERVALS`):
            the sd over seeds (default), the standard error, or the 95% Student-t half-width,
            each from the seeds with a value (``<metric> n`` where fewer than the row's).
        smoothing: how each trial's curve was smoothed before the figures' means.
        note: the warning about series with fewer than 3 seeds, or None.
        warmup_note: the note naming agents whose every step is warm-up, or None.
        stopped_note: the note on trials that stopped before the others, or None.
        bands: per metric, what its figure plots: one row per agent (and sweep point) and
            step with ``mean``, ``lo``, ``hi``, ``sd`` and ``n`` (``simlab.intervals.aggregate``).
        tables: measures pooled over windows of the run (:func:`simlab.windows.window_tables`:
            source bias per phase, its escalation, tipping point), each also written as a CSV.
        baseline: what the pooled tables' paired differences are taken against: an agent,
            or a sweep point (:class:`simlab.windows.PointBaseline`, the same agent there).
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
    table_interval: str = "sd"
    smoothing: Smoothing = field(default_factory=Smoothing)
    note: str | None = None
    warmup_note: str | None = None
    stopped_note: str | None = None
    bands: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, Any] = field(default_factory=dict)
    baseline: Any = None

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

    def table_label(self) -> str:
        """What a table cell holds, for the tables' titles: ``mean ± <spread>``."""
        return f"mean ± {TABLE_INTERVALS[self.table_interval]}"

    def cell(self, row_index: int, metric: str) -> str:
        """``mean ±spread`` of one metric in one summary row, as printed.

        :func:`summary_cell` with :attr:`table_interval`.
        """
        return summary_cell(self.summary.iloc[row_index], metric, self.table_interval)

    def fewest_seeds(self, row_index: int) -> int:
        """The row's seeds, or fewer where a reported paired column has fewer."""
        row = self.summary.iloc[row_index]
        counts = [row.get(f"{m} n") for m in self.metrics]
        return int(min([row["seeds"], *(n for n in counts if n is not None and n > 0)]))


def summary_cell(row: Any, metric: str, table_interval: str = "sd") -> str:
    """``mean ±spread`` of one metric in one row of a run's summary, as the tables print it.

    The spread is ``table_interval``'s (a key of :data:`TABLE_INTERVALS`) over the seeds with
    a value: ``<metric> n`` where the summary counts them (fewer than the row's seeds, then
    named in the cell), else the row's ``seeds``.
    """
    n = row.get(f"{metric} n")  # the seeds with a value, when fewer than the row's
    seeds = row["seeds"] if n is None or np.isnan(n) else n
    spread = float(half_width(row[f"{metric} sd"], seeds, table_interval))
    text = format_mean_sd(row[metric], spread)
    if seeds < row["seeds"] and text != "-":
        text += f" ({int(seeds)} seeds)"
    return text


def paired_seeds(row: Any) -> str:
    """``", 4 seeds"`` where a pooled row's paired difference has fewer seeds than its value.

    Its baseline lacks some seeds; the seeds column counts the value's. ``""`` otherwise.
    """
    n, m = row.get("diff n", 0), row.get("value n", 0)
    return f", {int(n)} seeds" if 0 < n < m else ""


def format_mean_sd(mean: float, sd: float) -> str:
    """``"0.1234 ±0.005"``; ``"-"`` for NaN; the ``±`` part only for a positive sd."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    text = f"{mean:.4g}" if abs(mean) < 1000 else f"{mean:,.0f}"
    if sd and not math.isnan(sd) and sd > 0:
        text += f" ±{sd:.2g}"
    return text
