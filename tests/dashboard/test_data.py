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


def test_phase_spans_cover_steps_and_the_last_phase_lasts_to_the_end():
    """Spans run from the previous ``until`` to their own; the last one to the end, always."""
    phases = [
        {"until": 4, "aigc_share": 0.0},
        {"until": 8, "aigc_share": 0.3},
        {"until": 10, "aigc_share": 0.8},  # the content model keeps it after step 10
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
    assert [s.end for s in data.phase_spans(phases, 30)] == [4, 8, 30]


def test_phase_labels_differ_when_shares_differ():
    """Two coexisting phases with different shares get different labels."""
    spans = data.phase_spans([{"until": 3, "aigc_share": 0.3}, {"aigc_share": 0.5}], 6)
    assert [s.label for s in spans] == ["coexisting 30%", "coexisting 50%"]


def test_phase_ramp_matches_the_content_model():
    """A ramp moves the share linearly from the previous phase's, as CreatorEcosystem does."""
    from simlab.environments.content import CreatorEcosystem

    raw = [{"until": 3, "aigc_share": 0.1}, {"until": 9, "aigc_share": 0.9, "ramp": 4},
           {"aigc_share": 0.5, "ramp": 20}]  # fmt: skip
    spans = data.phase_spans(raw, 12)
    assert [(s.start, s.end, s.ramp, s.from_share) for s in spans] == [
        (0, 3, 0, 0.0),
        (3, 9, 4, 0.1),
        (9, 12, 20, 0.9),  # the run ends during the ramp
    ]
    assert spans[1].label == "AIGC-dominated 90% (ramp 4)"
    params = CreatorEcosystem.Params(phases=raw)
    model = CreatorEcosystem.__new__(CreatorEcosystem)
    model.params = params
    for span in spans:
        for step in range(span.start, span.end):
            assert span.share_at(step) == pytest.approx(model.aigc_share(step)), step


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


def test_series_labels_and_missing_columns():
    """Labels name the agent, sweep values and the run; all-NaN columns count as missing."""
    df = pd.DataFrame({"agent": ["mf"], "users.drift_rate": [0.05], "m": [float("nan")]})
    assert data.series_labels(df, ["users.drift_rate"], "run1: ").tolist() == [
        "run1: mf drift_rate=0.05"
    ]
    assert data.missing_columns(df, ["m", "agent", "absent"]) == ["m", "absent"]
