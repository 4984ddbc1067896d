"""The item-fairness metric's step rows at the boundaries: one served user, none, ranges.

With a single served user the raw measures are defined (Jain's index of ``k`` items shown
once is ``k / n``) while every corrected one is NaN (its range collapses at ``m = 1``); with
nobody served every column is NaN. The declared ranges are what the dashboard clips to. And
the metric on a hand-counted snapshot (moved here from test_item_fairness.py as it was).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from test_metrics import make_feedback, make_items, make_snapshot

from simlab.metrics.item_fairness import ItemFairnessMetric, item_fairness

CTX = SimpleNamespace(seed=0, num_users=4)
CORRECTED = [c for c in ItemFairnessMetric.columns if c.endswith("_corrected")]
RAW = [c for c in ItemFairnessMetric.columns if not c.endswith("_corrected")]


@pytest.mark.parametrize(("num_items", "slate"), [(5, [3, 1]), (4, [2]), (6, [6, 2, 4])])
def test_one_served_user_gives_raw_measures_and_nan_corrected(num_items, slate):
    """One user: Jain k/n, QF k/n, entropy log_n k, FSat 1 (f = 0); every corrected one NaN."""
    items = make_items(np.arange(1, num_items + 1))
    fb = make_feedback([2], [slate], [-1])
    row = ItemFairnessMetric(CTX).observe(make_snapshot(fb, items))
    k, n = len(slate), num_items
    want = item_fairness(np.isin(np.arange(1, n + 1), slate).astype(int), k, 1)
    assert row["fairness/jain"] == pytest.approx(k / n, rel=1e-12)
    assert row["fairness/qf"] == pytest.approx(k / n, rel=1e-12)
    assert row["fairness/entropy"] == pytest.approx(math.log(k) / math.log(n), abs=1e-12)
    assert row["fairness/fsat"] == 1.0
    for col in RAW:
        assert row[col] == pytest.approx(want[col.removeprefix("fairness/")], rel=1e-12), col
    assert all(math.isnan(row[c]) for c in CORRECTED)


@pytest.mark.parametrize("users", [2, 3])
def test_more_users_use_k_from_the_slate_width_and_m_from_the_rows(users):
    """The slate width is k and m the number of served rows, whatever their ids."""
    items = make_items([10, 11, 12, 13, 14])
    slates = [[10, 11, 12], [12, 13, 14], [14, 10, 11]][:users]
    fb = make_feedback([7, 40, 41][:users], slates, [-1] * users)
    row = ItemFairnessMetric(CTX).observe(make_snapshot(fb, items, num_users=50))
    counts = np.bincount(np.asarray(slates).ravel() - 10, minlength=5)
    want = item_fairness(counts, 3, users)
    assert row == {c: want[c.removeprefix("fairness/")] for c in ItemFairnessMetric.columns}
    assert not math.isnan(row["fairness/jain_corrected"])


def test_declared_ranges():
    """Every column in [0, 1] except corrected FSat, which may fall below 0."""
    ranges = ItemFairnessMetric.ranges
    assert set(ranges) == set(ItemFairnessMetric.columns)
    for col in ItemFairnessMetric.columns:
        assert ranges[col] == ((None, 1.0) if col == "fairness/fsat_corrected" else (0.0, 1.0))


def test_item_fairness_metric_on_snapshot():
    """The metric uses all live items' counts, k = slate size and m = served users."""
    items = make_items([1, 2, 3, 4, 5])
    # counts over the live items: item 1 -> 4, 2 -> 2, 3 -> 1, 4 -> 1, 5 -> 0 (= B1)
    fb = make_feedback([0, 1, 2, 3], [[1, 2], [2, 1], [1, 3], [4, 1]], [-1, -1, -1, -1])
    metric = ItemFairnessMetric(CTX)
    row = metric.observe(make_snapshot(fb, items))
    assert set(row) == set(ItemFairnessMetric.columns)
    assert ItemFairnessMetric.summary == dict.fromkeys(ItemFairnessMetric.columns, "mean")
    want = item_fairness(np.array([4, 2, 1, 1, 0]), 2, 4)  # B1 of test_item_fairness.py
    assert row == {c: want[c.removeprefix("fairness/")] for c in ItemFairnessMetric.columns}
    assert row["fairness/jain_corrected"] == pytest.approx(35 / 99, rel=1e-12)
    assert row["fairness/gini_corrected"] == pytest.approx(2 / 3, rel=1e-12)
    assert row["fairness/qf"] == pytest.approx(4 / 5, rel=1e-12)


def test_item_fairness_metric_without_users_is_nan():
    """A step with no served users gives NaN in every column."""
    items = make_items([1, 2, 3])
    fb = make_feedback([], np.zeros((0, 2)), [], [])
    row = ItemFairnessMetric(CTX).observe(make_snapshot(fb, items))
    assert set(row) == set(ItemFairnessMetric.columns)
    assert all(math.isnan(v) for v in row.values())
