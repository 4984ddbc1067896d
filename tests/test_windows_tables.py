"""``simlab.windows``' tables of a run: tipping by sweep point, cells, baselines, warm-ups.

Continues ``test_windows.py`` (windows, pooling, tipping and intervals by construction): the
tables of a real run with adoption points, and the edge cases of a summary cell, a baseline
and the pooled rows, each by hand.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import make_small
from scipy import stats

from simlab import windows as W


def test_the_tipping_table_covers_the_adoption_points_of_a_run(tmp_path):
    """Only sweep points with creators' adoption get tipping points, each trial's by hand."""
    from simlab.runner import run_scenario
    from simlab.store import open_run

    variants = {"schedule": {}, "adopt": {"content.production": "adoption", "content.phases": None}}
    sc = make_small(("variants", variants), ("content.phases", [{"aigc_share": 0.3}]),
                    ("content.adoption", {"baseline_share": 0.45, "sensitivity": 4.0,
                                          "revise_rate": 0.5, "window": 2}),
                    "users.num_users=40", "steps=14", seeds=2,
                    metrics=["engagement", "creators"])  # fmt: skip
    store = run_scenario(sc, out_dir=tmp_path, run_id="tips")
    run = open_run(store.path)
    df = run.read_metrics()
    (table,) = W.window_tables(df, run.path, run.manifest, ["variant"], None).values()
    assert set(table["variant"]) == {"adopt"}
    trials = {t["index"]: t for t in run.manifest["trials"]}
    warm = sc.platform.warmup_steps()
    for agent, row in table.set_index("agent").iterrows():
        mine = [i for i, t in trials.items() if t["agent"] == agent
                and t["params"]["variant"] == "adopt"]  # fmt: skip
        values = []
        for i in mine:
            g = df[(df["trial"] == i) & (df["step"] >= warm)].sort_values("step")
            over = g.loc[g[W.SHARE] > 0.5, "step"]
            values.append(int(over.iloc[0]) if len(over) else sc.steps)
        assert row["value"] == pytest.approx(np.mean(values))
        assert row["tipped"] == sum(v < sc.steps for v in values)
        assert row["value n"] == len(mine) == 2


def test_a_cell_without_a_finite_value_is_nan_without_a_warning():
    """Seeds whose values are all NaN or infinite give NaN mean and interval, n = 0, silently."""
    import warnings

    per_trial = pd.DataFrame({"trial": [0, 1, 2, 3], "value": [np.nan, np.inf, 1.0, 3.0]})
    trials = pd.DataFrame({"trial": [0, 1, 2, 3], "agent": ["a", "a", "b", "b"],
                           "seed": [0, 1, 0, 1]})  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = W.summarise_over_seeds(per_trial, trials, ["agent"], None).set_index("agent")
    assert np.isnan(out.loc["a", "value"]) and np.isnan(out.loc["a", "value ±"])
    assert out.loc["a", "value n"] == 0
    assert out.loc["b", "value"] == 2.0 and out.loc["b", "value n"] == 2
    assert out.loc["b", "value ±"] == pytest.approx(stats.t.ppf(0.975, 1) * np.sqrt(2) / np.sqrt(2))


@pytest.mark.parametrize("baseline", [None, "absent"])
def test_no_difference_without_a_baseline_among_the_agents(baseline):
    """A baseline that is None or no agent of the run adds no ``diff`` columns."""
    per_trial = pd.DataFrame({"trial": [0, 1], "value": [1.0, 2.0]})
    trials = pd.DataFrame({"trial": [0, 1], "agent": ["a", "b"], "seed": [0, 0]})
    out = W.summarise_over_seeds(per_trial, trials, ["agent"], baseline)
    assert not any(c.startswith("diff") for c in out.columns)
    with_base = W.summarise_over_seeds(per_trial, trials, ["agent"], "a")
    assert with_base.set_index("agent")["diff"].tolist() == [0.0, 1.0]


def test_pooled_rows_are_one_per_trial_and_window_with_a_fresh_index():
    """Rows of several windows are numbered 0..n-1 (no index repeated across windows)."""
    df = pd.DataFrame({"trial": np.repeat([0, 1, 2], 20), "step": np.tile(np.arange(20), 3)})
    for c, hi in zip(W.COUNTS, (40, 40, 30, 30), strict=True):
        df[c] = np.random.default_rng(len(c)).integers(1, hi, len(df))
    windows = [W.Window("a", 0, 10), W.Window("b", 10, 20)]
    out = W.pooled_bias(df, windows)
    assert out.index.tolist() == list(range(6))
    assert sorted(zip(out["window"], out["trial"], strict=True)) == [
        (w, t) for w in "ab" for t in range(3)
    ]


@pytest.mark.parametrize("warm", [{}, {1: 0}])
def test_a_trial_without_a_warm_up_entry_counts_from_step_0(warm):
    """A trial missing from the warm-up map (or with 0) may tip at step 0."""
    df = pd.DataFrame({"trial": [0, 0, 1, 1], "step": [0, 1, 0, 1], W.SHARE: [0.9, 0.9, 0.1, 0.7]})
    got = W.tipping_points(df, 2, warm).set_index("trial")
    assert got["value"].tolist() == [0, 1] and got["tipped"].all()
