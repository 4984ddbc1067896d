"""``simlab.report_result``: how a report labels, groups and prints its summary rows.

Classes: the ``mean ±spread`` text over values of every size and sign (NaN and None print
``-``; no ``±`` for a zero, NaN or missing spread; thousands with separators); row labels
with privileged agents and sweep values; rows grouped by sweep point in the run's order; the
fewest seeds of a row over its paired columns; the paired-seeds note of a pooled row.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from simlab.report_result import ReportResult, format_mean_sd, paired_seeds


@pytest.mark.parametrize(
    ("mean", "sd", "text"),
    [
        (0.12345678, 0.0051, "0.1235 ±0.0051"),
        (0.5, 0.0, "0.5"),  # no spread: no ±
        (0.5, float("nan"), "0.5"),
        (0.5, None, "0.5"),
        (-2.25, 0.125, "-2.25 ±0.12"),
        (999.94, 3.0, "999.9 ±3"),
        (1000.0, 12.5, "1,000 ±12"),
        (-1234567.8, 89.0, "-1,234,568 ±89"),
        (0.0, 0.004, "0 ±0.004"),
        (1.5e-7, 2e-8, "1.5e-07 ±2e-08"),
        (float("nan"), 0.3, "-"),
        (None, 0.3, "-"),
        (np.float64(0.25), np.float64(0.05), "0.25 ±0.05"),
        (np.float64("nan"), np.float64(0.05), "-"),
    ],
)
def test_format_mean_sd(mean, sd, text):
    """Four significant digits (thousands grouped from 1,000), two for the spread."""
    assert format_mean_sd(mean, sd) == text


def test_a_negative_spread_prints_no_plus_minus():
    """A spread below zero is not a spread: the mean alone (no ``±-0.1``)."""
    assert format_mean_sd(0.5, -0.1) == "0.5"


def _summary(rows: list[tuple], sweep: list[str]) -> pd.DataFrame:
    """Rows of ``(agent, *sweep values, seeds)`` with a metric ``m``."""
    out = []
    for agent, *values, seeds in rows:
        row = {"agent": agent, **dict(zip(sweep, values, strict=True)), "seeds": seeds}
        out.append({**row, "steps": 4, "m": 0.5, "m sd": 0.1})
    return pd.DataFrame(out)


def report_of(rows: list[dict], metrics=("m",), **fields) -> ReportResult:
    """A report result over hand-made summary ``rows`` (no run directory behind it)."""
    return ReportResult(
        run_path=None, out_dir=None, metrics=list(metrics), kinds={},
        summary=pd.DataFrame(rows), **fields,
    )  # fmt: skip


def _result(rows, sweep=(), privileged=()) -> ReportResult:
    return report_of(
        _summary(rows, list(sweep)).to_dict("records"),
        sweep_columns=list(sweep), privileged=list(privileged),
    )  # fmt: skip


def test_row_labels_mark_privileged_agents_and_sweep_values():
    """``agent (privileged) [c=v, ...]``; an agent named like a privileged one's prefix is not."""
    rep = _result(
        [("oracle", "a", 1, 3), ("pop", "a", 1, 3), ("oracle2", "b", 2, 3)],
        sweep=["variant", "k"],
        privileged=["oracle"],
    )
    assert rep.row_labels() == [
        "oracle (privileged) [variant=a, k=1]",
        "pop [variant=a, k=1]",
        "oracle2 [variant=b, k=2]",
    ]
    assert [rep.agent_label(i) for i in range(3)] == ["oracle (privileged)", "pop", "oracle2"]


def test_row_labels_without_sweep_columns_are_the_agents():
    """No sweep: no brackets."""
    rep = _result([("a", 2), ("b", 2)], privileged=["b"])
    assert rep.row_labels() == ["a", "b (privileged)"]


@pytest.mark.parametrize(
    ("points", "groups"),
    [
        (["x", "y", "x", "y"], [("variant=x", [0, 2]), ("variant=y", [1, 3])]),
        (["y", "x", "x"], [("variant=y", [0]), ("variant=x", [1, 2])]),
        (["z"], [("variant=z", [0])]),
    ],
)
def test_groups_follow_the_order_of_first_appearance(points, groups):
    """One group per sweep point, labelled ``c=v``, in the order rows first show it."""
    rep = _result([(f"a{i}", p, 3) for i, p in enumerate(points)], sweep=["variant"])
    assert rep.groups() == groups


def test_without_sweep_columns_every_row_is_one_unlabelled_group():
    """One group, label ``""``, every row index in order."""
    assert _result([("a", 1), ("b", 1), ("c", 1)]).groups() == [("", [0, 1, 2])]


@pytest.mark.parametrize(
    ("counts", "fewest"),
    [
        ({}, 5),  # no count columns: the row's seeds
        ({"m n": 3}, 3),
        ({"m n": 5}, 5),
        ({"m n": 0}, 5),  # a column no seed has a value for does not make the row empty
        ({"m n": np.nan}, 5),
        ({"m n": 4, "d n": 2}, 2),
    ],
)
def test_fewest_seeds_reads_every_reported_count(counts, fewest):
    """The row's seeds, or the fewest positive count of a reported column."""
    row = {"agent": "a", "seeds": 5, "steps": 4, "m": 1.0, "m sd": 0.1, "d": 0.0, "d sd": 0.1}
    rep = report_of([{**row, **counts}], metrics=["m", "d"])
    assert rep.fewest_seeds(0) == fewest


def test_fewest_seeds_ignores_counts_of_unreported_columns():
    """A count of a column the report does not show does not lower the row's seeds."""
    row = {"agent": "a", "seeds": 5, "steps": 4, "m": 1.0, "m sd": 0.1, "other n": 1}
    rep = report_of([row])
    assert rep.fewest_seeds(0) == 5


@pytest.mark.parametrize(
    ("row", "note"),
    [
        ({"diff n": 4, "value n": 6}, ", 4 seeds"),
        ({"diff n": 6, "value n": 6}, ""),
        ({"diff n": 0, "value n": 6}, ""),  # no paired difference at all: no count
        ({"value n": 6}, ""),
        ({"diff n": 1, "value n": 2}, ", 1 seeds"),
        ({"diff n": 3.0, "value n": 5.0}, ", 3 seeds"),
    ],
)
def test_paired_seeds_names_a_count_below_the_values(row, note):
    """``", n seeds"`` only where the paired difference has fewer seeds than the value."""
    assert paired_seeds(pd.Series(row)) == note


def test_a_cell_with_no_value_names_no_seeds():
    """A NaN mean prints ``-`` alone, even where its count is below the row's seeds."""
    row = {"agent": "a", "seeds": 5, "steps": 4, "m": math.nan, "m sd": math.nan, "m n": 0}
    rep = report_of([row])
    assert rep.cell(0, "m") == "-"


def test_derived_columns_and_their_sources():
    """Each derived column's name, source metric and kind (the report and docs name them)."""
    from simlab.report_result import DERIVED, DERIVED_HOMOGENIZATION

    assert [(d.metric, d.name, d.kind) for d in DERIVED] == [
        ("echo/homogenization", "echo/homogenization_vs_oracle", "difference"),
        ("echo/homogenization_nn", "echo/homogenization_nn_vs_oracle", "difference"),
        ("engagement/mean", "engagement/mean_rel_oracle", "relative"),
    ]
    assert DERIVED_HOMOGENIZATION == "echo/homogenization_vs_oracle"
