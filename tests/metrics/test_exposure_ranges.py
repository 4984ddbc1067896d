"""The exposure measures stay inside their declared ranges and reach every finite bound.

Coverage (the share of live items shown) spans [0, 1]: 0 when a step shows nothing, 1 when
every live item is shown; the exposure Gini spans [0, 1): 0 for equal exposure and
``(n - 1) / n`` when one of ``n`` items takes every impression, so 1 is approached, never
reached.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_metrics import CTX, make_feedback, make_items, make_snapshot

from simlab.metrics.fairness import ExposureMetric


def _step(rng, kind: str):
    """A step of one kind: random, nothing shown, every item once, or one item only."""
    n = int(rng.integers(1, 40))
    ids = np.arange(100, 100 + n)
    items = make_items(ids)
    if kind == "none":
        slates = np.zeros((0, 2), np.int64)
    elif kind == "every":
        slates = ids[rng.permutation(n)][:, None]
    elif kind == "one":
        slates = np.full((int(rng.integers(1, 6)), 1), ids[int(rng.integers(0, n))])
    else:
        slates = rng.choice(ids, (int(rng.integers(1, 8)), int(rng.integers(1, 4))))
    b = slates.shape[0]
    return make_snapshot(make_feedback(np.arange(b), slates, np.full(b, -1)), items)


@pytest.mark.parametrize("seed", range(3))
def test_exposure_values_stay_in_the_declared_ranges_and_reach_their_bounds(seed):
    """Every step lies in ``ranges``; each bound is reached (Gini's 1 approached from below)."""
    rng = np.random.default_rng(seed)
    metric = ExposureMetric(CTX)
    rows = [
        metric.measure(_step(rng, kind))
        for _ in range(20)
        for kind in ("random", "none", "every", "one")
    ]
    # one of 500 items holds every impression: Gini 499/500, close to its bound 1
    items = make_items(np.arange(500))
    rows.append(metric.measure(make_snapshot(make_feedback([0, 1], [[7], [7]], [-1, -1]), items)))
    assert rows[-1]["exposure/gini"] == pytest.approx(499 / 500, rel=1e-12)
    assert rows[-1]["exposure/coverage"] == pytest.approx(1 / 500, rel=1e-12)
    for col, (lo, hi) in metric.ranges.items():
        values = np.array([r[col] for r in rows], float)
        values = values[~np.isnan(values)]
        assert (values >= lo).all() and values.min() == lo, col
        if col == "exposure/gini":
            assert (values < hi).all() and hi - values.max() < 0.01, col  # sup, not max
        else:
            assert (values <= hi).all() and values.max() == hi, col


def test_a_step_that_shows_nothing_covers_nothing_and_has_no_gini():
    """Live items but no impression: coverage 0, Gini NaN (no exposure to share)."""
    items = make_items([1, 2, 3])
    row = ExposureMetric(CTX).measure(make_snapshot(make_feedback([], np.zeros((0, 1)), []), items))
    assert row["exposure/coverage"] == 0.0
    assert np.isnan(row["exposure/gini"])
