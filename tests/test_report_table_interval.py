"""``simlab report`` / ``simlab show --table-interval``: what the summary table's ``±`` shows.

Classes: each kind (sd, se, 95% t) against a hand computation over many (sd, seeds) pairs;
seeds without a value (``<metric> n``) shrink the count the spread is taken over, and are
named in the cell; the count is recorded only where it says something; unknown kinds are
refused naming the flag and what is allowed; the table's title and ``report.md`` say which
spread they print; the default stays the sd; ``simlab show`` prints the same cells as
``simlab report`` for every kind and refuses the same kinds before reading the run.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from test_report_result import report_of

from simlab.cli import main
from simlab.errors import SimlabError
from simlab.report import build_report
from simlab.report_result import (
    TABLE_INTERVALS,
    ReportResult,
    check_table_interval,
    format_mean_sd,
)
from simlab.store_summary import summarize


def _result(rows: list[dict], kind: str) -> ReportResult:
    """A report result over a hand-made summary (metric ``m``)."""
    return report_of(rows, table_interval=kind)


def _by_hand(sd: float, n: int, kind: str) -> float:
    """The half-width of ``kind`` from the sd over ``n`` seeds (0 below two seeds)."""
    if n < 2 or not math.isfinite(sd):
        return 0.0
    return {"sd": sd, "se": sd / math.sqrt(n), "t": stats.t.ppf(0.975, n - 1) * sd / n**0.5}[kind]


CASES = [(0.5, 2), (0.02, 3), (1.7, 5), (0.004, 10), (3.0, 40), (0.25, 400), (0.9, 1)]


@pytest.mark.parametrize("kind", list(TABLE_INTERVALS))
@pytest.mark.parametrize(("sd", "seeds"), CASES)
def test_each_kind_prints_its_half_width(kind, sd, seeds):
    """The cell is the mean and the kind's half-width over the row's seeds, formatted."""
    rep = _result([{"agent": "a", "seeds": seeds, "steps": 5, "m": 0.25, "m sd": sd}], kind)
    assert rep.cell(0, "m") == format_mean_sd(0.25, _by_hand(sd, seeds, kind))


@pytest.mark.parametrize("kind", list(TABLE_INTERVALS))
@pytest.mark.parametrize(("seeds", "with_value"), [(5, 3), (10, 2), (4, 1), (30, 29)])
def test_seeds_without_a_value_shrink_the_count(kind, seeds, with_value):
    """With ``m n`` below the row's seeds, the spread is over ``m n`` and the cell says so."""
    row = {"agent": "a", "seeds": seeds, "steps": 5, "m": 1.5, "m sd": 0.3, "m n": with_value}
    text = _result([row], kind).cell(0, "m")
    expected = format_mean_sd(1.5, _by_hand(0.3, with_value, kind))
    assert text == f"{expected} ({with_value} seeds)"


def test_a_count_column_absent_from_some_rows_falls_back_to_their_seeds():
    """``m n`` is NaN in rows the summary did not count (the column exists for another)."""
    rows = [
        {"agent": "a", "seeds": 4, "steps": 5, "m": 1.0, "m sd": 0.2, "m n": 2},
        {"agent": "b", "seeds": 4, "steps": 5, "m": 2.0, "m sd": 0.2, "m n": np.nan},
    ]
    rep = _result(rows, "se")
    assert rep.cell(1, "m") == format_mean_sd(2.0, 0.2 / 2.0)
    assert rep.cell(0, "m") == f"{format_mean_sd(1.0, 0.2 / math.sqrt(2))} (2 seeds)"
    assert rep.fewest_seeds(0) == 2 and rep.fewest_seeds(1) == 4


def test_the_default_is_the_sd_over_seeds():
    """Without a kind the table prints the sd, as before the option existed."""
    rep = report_of([{"agent": "a", "seeds": 3, "steps": 2, "m": 1.0, "m sd": 0.5}])
    assert rep.table_interval == "sd" and rep.cell(0, "m") == "1 ±0.5"
    assert rep.table_label() == "mean ± sd over seeds"


@pytest.mark.parametrize("kind", ["seeds", "ci", "T", "", "95", "sd "])
def test_unknown_kinds_are_refused_naming_what_is_allowed(kind):
    """Anything but sd, se and t is refused, with the place it came from."""
    with pytest.raises(ValueError) as e:
        check_table_interval(kind, "--table-interval")
    assert str(e.value).startswith(f"--table-interval: unknown table interval {kind!r}")
    assert "Allowed: sd, se, t" in str(e.value)


def test_summaries_count_seeds_only_where_some_lack_a_value():
    """``<metric> n`` for a metric with a NaN seed in some row; none for one with all."""
    rows = []
    for trial, (agent, full, gappy) in enumerate(
        [("a", 1.0, 2.0), ("a", 3.0, np.nan), ("a", 5.0, 4.0), ("b", 2.0, 1.0), ("b", 4.0, 3.0)]
    ):
        rows.append({"trial": trial, "agent": agent, "seed": trial, "step": 0,
                     "full": full, "gappy": gappy})  # fmt: skip
    manifest = {"metric_columns": ["full", "gappy"], "trials": []}
    out = summarize(pd.DataFrame(rows), manifest).set_index("agent")
    assert "full n" not in out.columns
    assert out.loc["a", "gappy n"] == 2 and out.loc["b", "gappy n"] == 2
    assert out.loc["a", "gappy"] == 3.0 and out.loc["a", "gappy sd"] == pytest.approx(2**0.5)
    assert out.loc["a", "seeds"] == 3


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A small real run: random and popularity, 3 seeds."""
    from conftest import make_small

    from simlab.runner import run_scenario

    scenario = make_small("users.num_users=100", "output.checkpoint_every=0", steps=6, seeds=3)
    return run_scenario(scenario, out_dir=tmp_path_factory.mktemp("runs")).path


@pytest.mark.parametrize("kind", list(TABLE_INTERVALS))
def test_the_report_prints_and_writes_the_kind_it_was_asked_for(run_dir, tmp_path, capsys, kind):
    """`simlab report --table-interval K`: the title, each cell and report.md follow K."""
    out = tmp_path / kind
    args = ["report", str(run_dir), "--out", str(out), "--metrics", "engagement/ctr"]
    assert main([*args, "--table-interval", kind]) == 0
    text = " ".join(capsys.readouterr().out.split())  # rich wraps long titles
    assert f"then mean ± {TABLE_INTERVALS[kind]}" in text
    summary = pd.read_csv(out / "summary.csv").set_index("agent")
    for agent in ("popularity", "random"):
        row = summary.loc[agent]
        half = _by_hand(row["engagement/ctr sd"], int(row["seeds"]), kind)
        assert format_mean_sd(row["engagement/ctr"], half) in text
    assert f"then mean ± {TABLE_INTERVALS[kind]}." in (out / "report.md").read_text()


def test_a_bad_table_interval_is_a_usage_error_and_writes_nothing(run_dir, tmp_path, capsys):
    """Exit 2, one `error:` line naming the flag and the allowed kinds, no report folder."""
    out = tmp_path / "r"
    assert main(["report", str(run_dir), "--out", str(out), "--table-interval", "seeds"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(err) == 1 and err[0].startswith("error: --table-interval: unknown table interval")
    assert not out.exists()
    with pytest.raises(SimlabError, match="table_interval: unknown table interval 'ci'"):
        build_report(run_dir, out_dir=tmp_path / "b", table_interval="ci")
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("kind", list(TABLE_INTERVALS))
def test_show_prints_the_cells_report_prints(run_dir, tmp_path, capsys, kind):
    """`simlab show --table-interval K`: the title and every engagement/ctr cell of report's."""
    assert main(["show", str(run_dir), "--table-interval", kind]) == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert f"then mean ± {TABLE_INTERVALS[kind]}" in shown
    rep = build_report(run_dir, out_dir=tmp_path / "r", table_interval=kind)
    cells = {rep.cell(i, m) for i in range(len(rep.summary)) for m in ("engagement/ctr",)}
    assert cells and all(f"│ {c} " in shown or f" {c} │" in shown for c in cells)


def test_show_defaults_to_the_sd(run_dir, capsys):
    """Without the flag `simlab show` prints the sd over seeds, as it always did."""
    assert main(["show", str(run_dir)]) == 0
    assert "then mean ± sd over seeds" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("kind", ["seeds", "ci", "SD", ""])
def test_show_refuses_an_unknown_kind_before_reading_the_run(tmp_path, capsys, kind):
    """Exit 2 and one `error:` line naming the flag, even for a path that is no run."""
    assert main(["show", str(tmp_path / "missing"), "--table-interval", kind]) == 2
    out = capsys.readouterr()
    err = [line for line in out.err.splitlines() if line]
    assert len(err) == 1 and err[0].startswith(
        f"error: --table-interval: unknown table interval {kind!r}. Allowed: sd, se, t"
    )
    assert not out.out.strip()


@pytest.mark.parametrize(
    ("allowed", "kind", "ok"),
    [(("a", "b"), "a", True), (("a", "b"), "b", True), (("a", "b"), "c", False),
     ({"x": 1}, "x", True), ({"x": 1}, "X", False), ((), "a", False), (["sd"], "sd ", False)],
)  # fmt: skip
def test_check_kind_accepts_exactly_the_allowed_kinds(allowed, kind, ok):
    """The kind back when allowed; else the place, the noun, the value, the list, the gloss."""
    from simlab.intervals import check_kind

    if ok:
        assert check_kind(kind, allowed, "f", "thing", "g") == kind
        return
    with pytest.raises(ValueError) as e:
        check_kind(kind, allowed, "f", "thing", "g")
    assert str(e.value) == f"f: unknown thing {kind!r}. Allowed: {', '.join(allowed)} (g)"
