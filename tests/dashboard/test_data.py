"""Unit tests of the dashboard's pure data logic, against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from simlab.dashboard import data


def test_phase_name_thresholds():
    """A phase is named by its AIGC share: 0, up to one half, above one half."""
    names = [data.phase_name(s) for s in (0.0, 0.01, 0.5, 0.51, 1.0)]
    assert names == [
        "human-dominated",
        "coexisting",
        "coexisting",
        "AIGC-dominated",
        "AIGC-dominated",
    ]


def test_phase_spans_cover_steps_and_cut_at_the_end():
    """Spans run from the previous ``until`` to their own; null runs to the end."""
    phases = [
        {"until": 4, "aigc_share": 0.0},
        {"until": 8, "aigc_share": 0.3},
        {"until": None, "aigc_share": 0.8},
    ]
    spans = data.phase_spans(phases, 12)
    assert [(s.start, s.end, s.name) for s in spans] == [
        (0, 4, "human-dominated"),
        (4, 8, "coexisting"),
        (8, 12, "AIGC-dominated"),
    ]
    short = data.phase_spans(phases, 6)
    assert [(s.start, s.end) for s in short] == [(0, 4), (4, 6)]
    assert data.phase_spans(None, 10) == []


def test_aggregate_two_seeds_mean_and_t_interval():
    """Two seeds 1 and 3: mean 2, sd sqrt(2), half-width t(1) * sd / sqrt(2) = 12.7062."""
    df = pd.DataFrame(
        {
            "series": ["a", "a", "a", "a", "b"],
            "step": [0, 0, 1, 1, 0],
            "m": [1.0, 3.0, 5.0, float("nan"), 7.0],
        }
    )
    out = data.aggregate_over_seeds(df, "m")
    assert out[["series", "step"]].values.tolist() == [["a", 0], ["a", 1], ["b", 0]]
    first = out.iloc[0]
    assert first["mean"] == pytest.approx(2.0)
    assert first["lo"] == pytest.approx(2.0 - 12.7062)
    assert first["hi"] == pytest.approx(2.0 + 12.7062)
    assert first["n"] == 2
    # one value (the other is NaN, left out) or one seed: the interval collapses to the mean
    assert out.iloc[1][["mean", "lo", "hi", "n"]].tolist() == [5.0, 5.0, 5.0, 1]
    assert out.iloc[2][["mean", "lo", "hi"]].tolist() == [7.0, 7.0, 7.0]


def test_aggregate_three_seeds_uses_t_with_two_dof():
    """Seeds 0, 3, 6: mean 3, sd 3, half-width 4.3027 * 3 / sqrt(3)."""
    df = pd.DataFrame({"series": ["x"] * 3, "step": [2] * 3, "m": [0.0, 3.0, 6.0]})
    row = data.aggregate_over_seeds(df, "m").iloc[0]
    assert row["hi"] - row["mean"] == pytest.approx(4.3027 * 3 / math.sqrt(3))


def test_aggregate_missing_metric_gives_empty_frame():
    """A metric that is not a column gives no rows, not an error."""
    df = pd.DataFrame({"series": ["x"], "step": [0], "m": [1.0]})
    assert data.aggregate_over_seeds(df, "nope").empty


def test_t_quantile_table():
    """Known quantiles of Student's t at 0.975."""
    assert data.t_quantile(1) == pytest.approx(12.7062)
    assert data.t_quantile(10) == pytest.approx(2.2281)
    assert data.t_quantile(1000) == pytest.approx(1.962, abs=1e-3)
    assert math.isnan(data.t_quantile(0))


def test_lorenz_of_one_item_taking_everything():
    """[0, 0, 4]: items (0, 1/3, 2/3, 1) hold impressions (0, 0, 0, 1)."""
    x, y = data.lorenz(np.array([4, 0, 0]))
    np.testing.assert_allclose(x, [0, 1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(y, [0, 0, 0, 1])


def test_lorenz_equal_and_empty_exposure():
    """Equal counts and no impressions both give the line of equality."""
    x, y = data.lorenz(np.array([2, 2, 2, 2]))
    np.testing.assert_allclose(y, x)
    x, y = data.lorenz(np.zeros(3, dtype=np.int64))
    np.testing.assert_allclose(y, [0, 1 / 3, 2 / 3, 1])


def test_gini_by_hand():
    """[0,0,4] -> 2/3; [1,2,3] -> (-2 + 0 + 6) / (3 * 6) = 2/9; equal -> 0; none -> NaN."""
    assert data.gini(np.array([0, 0, 4])) == pytest.approx(2 / 3)
    assert data.gini(np.array([3, 1, 2])) == pytest.approx(2 / 9)
    assert data.gini(np.array([5, 5])) == 0.0
    assert math.isnan(data.gini(np.zeros(4)))


def test_pca_of_points_on_a_line():
    """Points on y = 2x project to (-sqrt5, 0, sqrt5) on PC1 and 0 on PC2."""
    x = np.array([[0.0, 0.0], [1.0, 2.0], [2.0, 4.0]])
    mean, axes = data.fit_pca(x)
    np.testing.assert_allclose(mean, [1.0, 2.0])
    np.testing.assert_allclose(axes[0], np.array([1.0, 2.0]) / math.sqrt(5))
    xy = data.project(x, mean, axes)
    np.testing.assert_allclose(xy[:, 0], [-math.sqrt(5), 0.0, math.sqrt(5)], atol=1e-12)
    np.testing.assert_allclose(xy[:, 1], 0.0, atol=1e-12)
    # later snapshots use the same axes: a shifted point lands where expected
    np.testing.assert_allclose(data.project(np.array([[3.0, 6.0]]), mean, axes)[0, 0], 2 * 5**0.5)


def test_pca_sign_is_fixed():
    """Negating the data does not flip the axes' signs."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 4))
    _, a = data.fit_pca(x)
    _, b = data.fit_pca(-x)
    np.testing.assert_allclose(a, b, atol=1e-9)
    assert (a[np.arange(2), np.abs(a).argmax(axis=1)] > 0).all()


def test_steps_done_per_trial():
    """Steps done is the newest step + 1 of each trial."""
    df = pd.DataFrame(
        {"trial": [0, 0, 1], "agent": ["r", "r", "p"], "seed": [0, 0, 1], "step": [0, 1, 0]}
    )
    out = data.steps_done_per_trial(df)
    assert out.values.tolist() == [[0, "r", 0, 2], [1, "p", 1, 1]]


def test_series_labels_and_missing_columns():
    """Labels name the agent, sweep values and the run; all-NaN columns count as missing."""
    df = pd.DataFrame({"agent": ["mf"], "users.drift_rate": [0.05], "m": [float("nan")]})
    assert data.series_labels(df, ["users.drift_rate"], "run1: ").tolist() == [
        "run1: mf drift_rate=0.05"
    ]
    assert data.missing_columns(df, ["m", "agent", "absent"]) == ["m", "absent"]
