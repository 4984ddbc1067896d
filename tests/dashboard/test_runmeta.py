"""Unit tests of the dashboard's run metadata, styles and URL state (no Streamlit)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

from simlab.dashboard import runmeta, state, style
from simlab.intervals import Smoothing


# ---------------------------------------------------------------------- labels
def test_labels_round_trip_in_the_run_directory(tmp_path):
    """Name and tags are written to labels.json and read back cleaned."""
    assert runmeta.read_labels(tmp_path) == {}
    runmeta.write_labels(tmp_path, "  baseline v2 ", ["a", " b", "a", ""])
    assert json.loads((tmp_path / "labels.json").read_text()) == {
        "name": "baseline v2",
        "tags": ["a", "b"],
    }
    assert runmeta.read_labels(tmp_path) == {"name": "baseline v2", "tags": ["a", "b"]}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{not json", {}),
        ("[1, 2]", {}),
        ('{"name": 3, "tags": "x"}', {"name": "", "tags": []}),
        ('{"tags": [1, "b"]}', {"name": "", "tags": ["1", "b"]}),
    ],
)
def test_damaged_labels_read_as_empty(tmp_path, text, expected):
    """A damaged or odd labels.json never breaks a page."""
    (tmp_path / "labels.json").write_text(text)
    assert runmeta.read_labels(tmp_path) == expected


def test_parse_tags_and_plurals():
    """Tags split on commas; counts get the right plural."""
    assert runmeta.parse_tags("x, y ,, x") == ["x", "y"]
    assert runmeta.parse_tags("  ") == []
    assert [runmeta.plural(n, "problem") for n in (0, 1, 2)] == [
        "0 problems",
        "1 problem",
        "2 problems",
    ]


# ---------------------------------------------------------------------- table cells
def test_duration_of_finished_running_and_unknown_runs():
    """End minus start; start to now while running; '-' without times."""
    m = {"started": "2026-01-01T10:00:00+00:00", "ended": "2026-01-01T10:03:05+00:00"}
    assert runmeta.duration(m, "completed") == "3 min 05 s"
    now = datetime(2026, 1, 1, 12, 7, tzinfo=timezone.utc)
    assert runmeta.duration({"started": m["started"]}, "running", now) == "2 h 07 min so far"
    assert runmeta.duration({"started": m["started"]}, "crashed") == "-"
    assert runmeta.duration({"started": "garbage"}, "completed") == "-"
    assert runmeta.duration({}, "completed") == "-"


def test_differing_settings_name_only_what_differs():
    """Nested fields, list items and whole lists are compared; name/description are skipped."""
    a = {"name": "a", "description": "x", "steps": 10, "users": {"num_users": 500},
         "agents": [{"model": "mf", "factors": 16}], "seeds": [0, 1]}  # fmt: skip
    b = {"name": "b", "description": "y", "steps": 10, "users": {"num_users": 900},
         "agents": [{"model": "mf", "factors": 32}], "seeds": [0, 1, 2],
         "sweep": {"users.drift_rate": [0.0, 0.05]}}  # fmt: skip
    diff = runmeta.differing_settings({"ra": a, "rb": b})
    assert diff == {
        "users.num_users": {"ra": "500", "rb": "900"},
        "agents[0].factors": {"ra": "16", "rb": "32"},
        "seeds": {"ra": "[0, 1]", "rb": "[0, 1, 2]"},
        "sweep.users.drift_rate": {"ra": "-", "rb": "[0, 0.05]"},
    }
    assert runmeta.differing_settings({"ra": a}) == {}
    assert runmeta.differing_settings({"ra": a, "rb": dict(a)}) == {}


def test_key_metric_cells():
    """One cell per metric: agents and their value, '-' for a missing metric."""
    summary = pd.DataFrame({"agent": ["mf", "pop"], "m": [0.3, 0.123456]})
    assert runmeta.key_metric_cells(summary, ["m", "nope"]) == {
        "m": "mf 0.3 · pop 0.123",
        "nope": "-",
    }


@pytest.mark.parametrize("sweep", [["variant"], ["platform.slate_size"], ["variant", "seeds_x"]])
def test_key_metric_cells_keep_sweep_points_apart(sweep):
    """Each sweep point (variant) is its own entry, named by its values: never averaged."""
    rng = np.random.default_rng(len(sweep))
    rows = [{"agent": a, **{c: f"{c[-1]}{k}" for c in sweep}, "m": float(rng.uniform())}
            for a in ("mf", "pop") for k in range(2)]  # fmt: skip
    rows[1]["m"] = float("nan")  # a point that never measured it is left out
    summary = pd.DataFrame(rows)
    cell = runmeta.key_metric_cells(summary, ["m"], sweep)["m"]
    entries = cell.split(" · ")
    assert len(entries) == 3
    for r in (rows[0], *rows[2:]):
        point = "".join(f" {c.rsplit('.', 1)[-1]}={r[c]}" for c in sweep)
        assert f"{r['agent']}{point} {r['m']:.3g}" in entries


# ---------------------------------------------------------------------- progress
def test_run_progress_counts_trial_steps_and_states():
    """Trial-steps are summed over trials (newest step + 1), not the max over trials."""
    df = pd.DataFrame({"trial": [0, 0, 0, 1], "step": [0, 1, 2, 0]})
    trials = [{"index": i, "agent": "a", "seed": i} for i in range(4)]
    p = runmeta.run_progress(df, trials, steps=3)
    assert (p.done, p.total) == (4, 12)
    assert (p.queued, p.running, p.finished) == (2, 1, 1)
    assert p.per_trial["state"].tolist() == ["done", "running", "queued", "queued"]
    empty = runmeta.run_progress(pd.DataFrame({"trial": [], "step": []}), trials, 3)
    assert (empty.done, empty.queued) == (0, 4)
    # a run no longer written (interrupted): its trials stopped or never started, none queued
    ended = runmeta.run_progress(df, trials, steps=3, live=False)
    assert (ended.done, ended.queued, ended.running, ended.finished) == (4, 2, 1, 1)
    assert ended.per_trial["state"].tolist() == ["done", "stopped", "not started", "not started"]


def test_rate_and_eta_from_samples_or_start_time():
    """The rate over the samples; without two distinct samples, since the start time."""
    assert runmeta.rate_and_eta([(10.0, 100), (14.0, 140)], 240) == (10.0, 10.0)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    rate, eta = runmeta.rate_and_eta([(0.0, 50)], 150, start.isoformat(), start.timestamp() + 25)
    assert (rate, eta) == (2.0, 50.0)
    assert runmeta.rate_and_eta([(0.0, 0)], 10, start.isoformat(), start.timestamp()) == (
        None,
        None,
    )
    assert runmeta.rate_and_eta([(0.0, 5), (0.5, 6)], 10) == (None, None)  # too short


# ---------------------------------------------------------------------- style
def test_agent_colours_are_stable_as_runs_are_added():
    """Colours follow first appearance over runs oldest first; new runs only add colours."""
    before = style.agent_colors([["random", "mf"], ["mf", "pop"]])
    after = style.agent_colors([["random", "mf"], ["mf", "pop"], ["oracle", "random"]])
    assert after["random"] == before["random"] and after["pop"] == before["pop"]
    assert len(set(after.values())) == 4
    many = style.agent_colors([[f"a{i}" for i in range(20)]])
    assert len(set(many.values())) == 20


def test_phase_colours_differ_by_share_and_shades_by_variant():
    """Different AIGC shares give different fills; sweep points lighter shades."""
    fills = {style.phase_color(s) for s in (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0)}
    assert len(fills) == 7
    assert style.shade("#000000", 0) == "#000000"
    assert style.shade("#000000", 1) != style.shade("#000000", 2) != "#000000"
    assert [style.run_dash(i) for i in (0, 1, 6)] == ["solid", "dash", "solid"]


# ---------------------------------------------------------------------- URL state
def test_query_round_trip_keeps_non_defaults_only():
    """The URL holds non-default values; parsing it gives the same state back."""
    view = {
        "page": "Compare",
        "runs-selected": ["r1", "r2"],
        "compare-metrics": ["engagement/ctr"],
        "interval": "sd",
        "smooth": "ema:0.8",
        "baseline": "",
        "phase-layout": "facet",
        "grid-cols": "3",
    }
    query = state.to_query(view)
    assert query == {
        "page": "Compare",
        "runs": ["r1", "r2"],
        "metrics": ["engagement/ctr"],
        "interval": "sd",
        "smooth": "ema:0.8",
        "cols": "3",
    }
    back = state.parse_query(query)
    assert {k: back[k] for k in back} == {k: view[k] for k in back}


@pytest.mark.parametrize(
    "query",
    [
        {"page": "Nope"},
        {"interval": "ci"},
        {"smooth": "ema:7"},
        {"cols": "9"},
    ],
)
def test_invalid_url_values_are_dropped(query):
    """A hand-edited URL with a bad value falls back to the default, not an error."""
    assert state.parse_query(query) == {}


def test_smoothing_state_round_trip():
    """The smoothing widgets and the URL's spec describe the same smoothing."""
    for smoothing in (Smoothing(), Smoothing("ema", 0.3), Smoothing("rolling", 7.0)):
        ss: dict = {}
        state.set_smoothing_state(ss, smoothing)
        assert state.smoothing_from_state(ss) == smoothing
