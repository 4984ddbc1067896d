"""``simlab.dashboard.runmeta`` per class of input: durations, settings, progress, rates.

Classes: durations at the edges of each unit (0 s, a minute, an hour, just under two
hours) and unreadable times of every type; settings that differ after the skipped ``name``
and ``description``; progress of trials with more rows than steps, trials without an index,
agent or seed, and runs with every trial done; rates over several samples, samples without
progress and runs past their total.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import pytest

from simlab.dashboard import runmeta


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (0.0, "0 s"),
        (0.4, "0 s"),
        (59.4, "59 s"),
        (59.6, "1 min 00 s"),  # rounded first: no "60 s"
        (60, "1 min 00 s"),
        (61, "1 min 01 s"),
        (3599, "59 min 59 s"),
        (3600, "1 h 00 min"),
        (7198, "1 h 59 min"),
        (7200, "2 h 00 min"),
        (86399, "23 h 59 min"),
        (360000, "100 h 00 min"),
        (-1, "-"),
        (float("nan"), "-"),
        (None, "-"),
    ],
)
def test_format_seconds(seconds, text):
    """Seconds under a minute, minutes and seconds under an hour, then hours and minutes."""
    assert runmeta.format_seconds(seconds) == text


@pytest.mark.parametrize("started", [12345, 1.5, ["2026-01-01"], {"t": 1}, "", "yesterday"])
def test_an_unreadable_start_time_gives_no_duration(started):
    """A start that is not an ISO time string (of any type) reads as unknown: ``-``."""
    manifest = {"started": started, "ended": "2026-01-01T10:00:00+00:00"}
    assert runmeta.duration(manifest, "completed") == "-"


@pytest.mark.parametrize(
    ("started", "ended", "text"),
    [
        ("2026-01-01T10:00:00", "2026-01-01T10:00:00", "0 s"),  # naive times read as UTC
        ("2026-01-01T10:00:00", "2026-01-01T11:00:00+00:00", "1 h 00 min"),
        ("2026-01-01T10:00:00+02:00", "2026-01-01T08:00:30+00:00", "30 s"),
    ],
)
def test_durations_across_time_zones(started, ended, text):
    """End minus start with their offsets; a time without one is UTC."""
    assert runmeta.duration({"started": started, "ended": ended}, "completed") == text


@pytest.mark.parametrize("first", ["name", "description"])
def test_settings_after_a_skipped_field_are_still_compared(first):
    """``name`` and ``description`` are skipped wherever they come, not the fields after."""
    a = {first: "a", "steps": 10, "users": {"num_users": 5}}
    b = {first: "b", "steps": 20, "users": {"num_users": 5}}
    assert runmeta.differing_settings({"ra": a, "rb": b}) == {"steps": {"ra": "10", "rb": "20"}}


def test_settings_of_three_runs_differ_where_any_one_does():
    """A field differing in one run of three is shown for all three."""
    base = {"steps": 10, "platform": {"slate_size": 5}}
    other = {"steps": 10, "platform": {"slate_size": 8}}
    diff = runmeta.differing_settings({"a": base, "b": dict(base), "c": other})
    assert diff == {"platform.slate_size": {"a": "5", "b": "5", "c": "8"}}


def test_trials_with_more_rows_than_steps_are_done_and_capped():
    """A trial whose newest step is past the scenario's steps is done; its count is capped."""
    df = pd.DataFrame({"trial": [0] * 5 + [1] * 3, "step": [0, 1, 2, 3, 4, 0, 1, 2]})
    trials = [{"index": 0, "agent": "a", "seed": 0}, {"index": 1, "agent": "a", "seed": 1}]
    p = runmeta.run_progress(df, trials, steps=3)
    assert p.per_trial["state"].tolist() == ["done", "done"]
    assert p.per_trial["steps done"].tolist() == [5, 3]
    assert (p.done, p.total, p.finished, p.running, p.queued) == (6, 6, 2, 0, 0)


@pytest.mark.parametrize("live", [True, False])
def test_a_finished_run_has_nothing_running_or_waiting(live):
    """Every trial at its last step: all done, none running, queued, stopped or not started."""
    df = pd.DataFrame({"trial": [0, 0, 1, 1], "step": [0, 1, 0, 1]})
    trials = [{"index": 0, "agent": "a", "seed": 0}, {"index": 1, "agent": "b", "seed": 0}]
    p = runmeta.run_progress(df, trials, steps=2, live=live)
    assert (p.queued, p.running, p.finished) == (0, 0, 2)


def test_trial_records_without_index_agent_or_seed():
    """A record's position is its index; a missing agent reads ``?``, a missing seed -1."""
    df = pd.DataFrame({"trial": [1, 1], "step": [0, 1]})
    p = runmeta.run_progress(df, [{}, {"agent": "mf"}], steps=4)
    assert p.per_trial.to_dict("records") == [
        {"trial": 0, "agent": "?", "seed": -1, "steps done": 0, "state": "queued"},
        {"trial": 1, "agent": "mf", "seed": -1, "steps done": 2, "state": "running"},
    ]


@pytest.mark.parametrize(
    ("samples", "total", "expected"),
    [
        ([(0.0, 0), (2.0, 10), (4.0, 40)], 100, (10.0, 6.0)),  # first to last, not to the 2nd
        ([(0.0, 0), (1.0, 1), (2.0, 2), (10.0, 50)], 150, (5.0, 20.0)),
        ([(0.0, 10), (5.0, 10), (9.0, 10)], 100, (None, None)),  # no progress, no start
        ([(0.0, 10), (2.0, 30)], 20, (10.0, 0.0)),  # past its total: nothing left, not < 0
    ],
)
def test_rates_over_several_samples(samples, total, expected):
    """The rate from the oldest to the newest sample; the time left never negative."""
    assert runmeta.rate_and_eta(samples, total) == expected


def test_samples_without_progress_fall_back_to_the_start_time():
    """Samples that show no progress: the rate since the run's start instead."""
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    samples = [(0.0, 40), (5.0, 40), (9.0, 40)]
    rate, eta = runmeta.rate_and_eta(samples, 80, start.isoformat(), start.timestamp() + 20)
    assert (rate, eta) == (2.0, 20.0)
    naive = start.replace(tzinfo=None).isoformat()  # read as UTC
    assert runmeta.rate_and_eta(samples, 80, naive, start.timestamp() + 20) == (2.0, 20.0)
    assert runmeta.rate_and_eta(samples, 80, "not a time", start.timestamp() + 20) == (
        None,
        None,
    )


@pytest.mark.parametrize(
    "metrics", [["nope", "m"], ["m", "nope"], ["a", "m", "b"], ["m"], ["nope"], []]
)
def test_key_metric_cells_give_every_metric_asked_for(metrics):
    """A metric the run lacks is ``-`` wherever it comes; the ones after it are still read."""
    summary = pd.DataFrame({"agent": ["mf", "pop"], "m": [0.3, float("nan")]})
    cells = runmeta.key_metric_cells(summary, metrics)
    assert cells == {c: "mf 0.3" if c == "m" else "-" for c in metrics}
    empty = runmeta.key_metric_cells(summary.iloc[:0], metrics)
    assert empty == dict.fromkeys(metrics, "-")
