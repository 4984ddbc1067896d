"""The echo-chamber measures stay inside their declared ranges and reach every finite bound.

Diversity (1 - cosine of unit latents) spans [0, 2]: 0 for a slate of one direction, 2 for
a slate of two opposite items; interest drift is 0 for users who never moved and grows
without bound; homogenization (a Jaccard mean) spans [0, 1]. Random steps of every kind stay
inside the ranges and the hand-built extremes reach each finite bound, exactly.
"""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pytest
from test_metrics import CTX, make_feedback, make_items, make_snapshot, unit_rows

from simlab.metrics.echo import (
    DiversityMetric,
    HomogenizationMetric,
    InterestDriftMetric,
    jaccard_pairs,
)

#: ``(3, 3)`` unit latents: two opposite directions and one orthogonal to both
AXES = np.array([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], np.float32)


def _assert_in_range_and_bounds_reached(metric, rows: list[dict[str, float]]) -> None:
    """Every non-NaN value lies in the declared range and each finite bound is attained."""
    for col, (lo, hi) in metric.ranges.items():
        values = np.array([r[col] for r in rows], float)
        values = values[~np.isnan(values)]
        assert values.size, col
        if lo is not None:
            assert (values >= lo).all() and values.min() == pytest.approx(lo, abs=1e-6), col
        if hi is not None:
            assert (values <= hi).all() and values.max() == pytest.approx(hi, abs=1e-6), col


@pytest.mark.parametrize("seed", range(3))
def test_diversity_stays_in_zero_two_and_reaches_both_ends(seed):
    """Random slates in range; one direction gives 0, two opposite items give 2."""
    rng = np.random.default_rng(seed)
    metric = DiversityMetric(CTX)
    ids = np.arange(20, 40)
    items = make_items(ids, dim=4, seed=seed)
    rows = []
    for b, k in itertools.product((1, 3, 6), (2, 3, 5)):
        slates = np.stack([rng.choice(ids, k, replace=False) for _ in range(b)])
        snap = make_snapshot(make_feedback(np.arange(b), slates, np.full(b, -1)), items)
        rows.append(metric.measure(snap))
    same = make_items([1, 2, 3], latent=np.repeat(AXES[:1], 3, axis=0))
    rows.append(metric.measure(make_snapshot(make_feedback([0], [[1, 2, 3]], [-1]), same)))
    opposite = make_items([1, 2, 3], latent=AXES)
    fb = make_feedback([0, 1], [[1, 2], [2, 1]], [-1, -1])
    rows.append(metric.measure(make_snapshot(fb, opposite)))
    assert rows[-2]["diversity/intra_list"] == pytest.approx(0.0, abs=1e-6)
    assert rows[-1]["diversity/intra_list"] == pytest.approx(2.0)
    _assert_in_range_and_bounds_reached(metric, rows)


@pytest.mark.parametrize(("b", "k"), [(2, 2), (3, 3), (7, 4), (40, 5)])
def test_diversity_of_one_slate_broadcast_to_every_user_is_that_slates(b, k):
    """A zero-copy broadcast of one slate row (shared candidates): its own pairwise value.

    Checked against a per-pair reference and against the same slate copied into every row.
    """
    rng = np.random.default_rng(b * k)
    ids = np.arange(50, 70)
    latent = unit_rows(rng.normal(size=(20, 3)))
    items = make_items(ids, latent=latent)
    slate = rng.choice(ids, k, replace=False)
    rows_of = np.searchsorted(ids, slate)
    e = latent[rows_of].astype(np.float64)
    want = 1.0 - np.mean([e[i] @ e[j] for i, j in itertools.combinations(range(k), 2)])
    copied = np.tile(slate, (b, 1))
    fb = make_feedback(np.arange(b), copied, np.full(b, -1))
    plain = DiversityMetric(CTX).measure(make_snapshot(fb, items, num_users=b))
    snap = make_snapshot(fb, items, num_users=b)
    snap.slate_rows = np.broadcast_to(rows_of, (b, k))
    shared = DiversityMetric(CTX).measure(snap)
    assert shared["diversity/intra_list"] == pytest.approx(want, abs=1e-5)
    assert shared["diversity/intra_list"] == pytest.approx(plain["diversity/intra_list"])
    part = DiversityMetric(CTX).partial(snap)
    assert part["slates"] == b
    assert part["cos_sum"] == pytest.approx(b * (1.0 - want), abs=1e-5 * b)


@pytest.mark.parametrize(("b", "k"), [(1, 1), (3, 1), (7, 1), (0, 1), (0, 2), (0, 5)])
def test_steps_without_item_pairs_count_no_slates_and_divide_nothing(b, k):
    """Slates of one item, or no slates: no pair to compare, so no slate counts (NaN).

    Nothing is divided on the way (a 0/0 or x/0 would raise here), whatever the latents.
    """
    items = make_items(np.arange(10, 20), dim=3, seed=b + k)
    slates = np.random.default_rng(k).choice(items.item_ids, (b, k))
    snap = make_snapshot(make_feedback(np.arange(b), slates, np.full(b, -1)), items)
    metric = DiversityMetric(CTX)
    with np.errstate(all="raise"):
        assert metric.partial(snap) == {"cos_sum": 0.0, "slates": 0}
        assert np.isnan(metric.measure(snap)["diversity/intra_list"])


def test_jaccard_reference_refuses_unpaired_lists():
    """The reference pairs sets one to one: lists of different lengths are an error."""
    assert jaccard_pairs([{1}, set()], [{1, 2}, set()]).tolist() == [0.5, 0.0]
    for a, b in (([{1}], []), ([], [{1}]), ([{1}, {2}], [{2}])):
        with pytest.raises(ValueError):
            jaccard_pairs(a, b)


@pytest.mark.parametrize("seed", range(3))
def test_interest_drift_is_never_negative_and_zero_for_users_who_stayed(seed):
    """Random moves give positive drift; unmoved interests give exactly 0; no upper bound."""
    rng = np.random.default_rng(seed)
    metric = InterestDriftMetric(CTX)
    items = make_items([1], dim=3)
    fb = make_feedback([0], [[1]], [-1])
    rows = []
    for n in (1, 4, 9):
        initial = rng.normal(size=(n, 3)).astype(np.float32)
        for scale in (0.0, 0.1, 5.0, 1e3):
            current = initial + scale * rng.normal(size=(n, 3)).astype(np.float32)
            snap = make_snapshot(fb, items, interests=current, initial_interests=initial)
            rows.append(metric.measure(snap))
    drift = np.array([r["echo/interest_drift"] for r in rows])
    assert (drift[0::4] == 0.0).all() and (drift[1::4] > 0).all()
    assert drift.max() > 100.0  # unbounded above: far moves read far
    _assert_in_range_and_bounds_reached(metric, rows)


@pytest.mark.parametrize("seed", range(3))
def test_homogenization_stays_in_unit_interval_and_reaches_both_ends(seed):
    """Random clicks in range; nothing consumed reads 0, the same items for all reads 1."""
    rng = np.random.default_rng(seed)
    rows = []
    for n in (2, 3, 8):
        metric = HomogenizationMetric(SimpleNamespace(seed=seed, num_users=n))
        items = make_items(np.arange(1, 6))
        for t in range(6):
            slates = rng.integers(1, 6, (n, 2))
            clicks = rng.integers(-1, 2, n)
            snap = make_snapshot(make_feedback(np.arange(n), slates, clicks, step=t), items)
            rows.append(metric.measure(snap))
        same = HomogenizationMetric(SimpleNamespace(seed=seed, num_users=n))
        none = make_feedback(np.arange(n), np.full((n, 2), 3), np.full(n, -1))
        rows.append(same.measure(make_snapshot(none, items)))
        assert rows[-1]["echo/homogenization"] == 0.0
        every = make_feedback(np.arange(n), np.full((n, 2), 3), np.zeros(n), step=1)
        rows.append(same.measure(make_snapshot(every, items)))
        assert rows[-1]["echo/homogenization"] == 1.0
    _assert_in_range_and_bounds_reached(HomogenizationMetric(CTX), rows)
