"""Tests of simlab.metrics on hand-built snapshots, against hand and brute-force values."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from simlab.batch import Catalog, Feedback
from simlab.environments.content import ItemTable
from simlab.metrics import (
    EngagementMetric,
    ExposureMetric,
    StepSnapshot,
    exposure_counts,
    gini,
)

CTX = SimpleNamespace(seed=0, num_users=4)


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` scaled to unit norm."""
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def make_items(item_ids, source=None, latent=None, dim: int = 3, seed: int = 0) -> ItemTable:
    """A latent item table for ``item_ids`` (random unit latents unless given)."""
    ids = np.asarray(item_ids, np.int64)
    n = ids.shape[0]
    if latent is None:
        latent = unit_rows(np.random.default_rng(seed).normal(size=(n, dim)))
    latent = np.asarray(latent, np.float32)
    return ItemTable(
        item_ids=ids,
        creator=np.zeros(n, np.int64),
        source=np.zeros(n, np.int8) if source is None else np.asarray(source, np.int8),
        topic=np.zeros(n, np.int64),
        latent=latent,
        features=latent.copy(),
        quality=np.zeros(n, np.float32),
        published=np.zeros(n, np.int64),
    )


def make_catalog(items: ItemTable) -> Catalog:
    """The observable catalog of ``items``."""
    return Catalog(
        item_ids=items.item_ids,
        features=items.features,
        creator=items.creator,
        age=np.zeros(items.item_ids.shape[0], np.int64),
    )


def make_feedback(user_ids, slates, clicked_pos, engagement=None, step: int = 0) -> Feedback:
    """Feedback from plain lists."""
    user_ids = np.asarray(user_ids, np.int64)
    clicked_pos = np.asarray(clicked_pos, np.int64)
    if engagement is None:
        engagement = np.where(clicked_pos >= 0, 0.5, 0.0)
    return Feedback(
        step=step,
        user_ids=user_ids,
        slates=np.asarray(slates, np.int64).reshape(user_ids.shape[0], np.shape(slates)[-1]),
        clicked_pos=clicked_pos,
        engagement=np.asarray(engagement, np.float32),
    )


def make_snapshot(
    feedback: Feedback,
    items: ItemTable,
    new_item_sources=(),
    interests=None,
    initial_interests=None,
    num_users: int = 4,
) -> StepSnapshot:
    """A snapshot with zero interests unless given."""
    dim = items.latent.shape[1]
    zeros = np.zeros((num_users, dim), np.float32)
    return StepSnapshot(
        step=feedback.step,
        num_users=num_users,
        feedback=feedback,
        catalog=make_catalog(items),
        items=items,
        new_item_sources=np.asarray(new_item_sources, np.int8),
        interests=zeros if interests is None else interests,
        initial_interests=zeros if initial_interests is None else initial_interests,
    )


# ----------------------------------------------------------------------------- gini


def gini_by_mean_difference(counts: np.ndarray) -> float:
    """Gini as mean absolute difference over twice the mean (the textbook definition)."""
    c = np.asarray(counts, np.float64)
    n = c.shape[0]
    return float(np.abs(c[:, None] - c[None, :]).sum() / (2 * n * n * c.mean()))


def test_gini_equal_exposure_is_zero():
    """Equal exposure has Gini 0."""
    assert gini(np.array([3, 3, 3, 3, 3])) == 0.0


@pytest.mark.parametrize("n", [1, 2, 5, 10])
def test_gini_one_item_gets_everything(n):
    """When one of n items gets all exposure the Gini is (n - 1) / n."""
    counts = np.zeros(n)
    counts[n // 2] = 7
    assert gini(counts) == pytest.approx((n - 1) / n)


def test_gini_by_hand():
    """Gini of [1, 2, 3, 4]: sum |xi - xj| = 20 over 2 * 16 * 2.5 = 80 gives 0.25."""
    assert gini(np.array([1, 2, 3, 4])) == pytest.approx(0.25)
    assert gini(np.array([4, 1, 3, 2])) == pytest.approx(0.25)
    # [0, 0, 1, 3]: sum |xi - xj| = 2 * (0+1+3+1+3+2) = 20 over 2 * 16 * 1 = 32
    assert gini(np.array([0, 3, 0, 1])) == pytest.approx(20 / 32)


def test_gini_matches_mean_difference_definition():
    """The sorted-rank formula equals the mean-absolute-difference definition on random counts."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        counts = rng.integers(0, 20, size=rng.integers(2, 40))
        counts[0] += 1
        assert gini(counts) == pytest.approx(gini_by_mean_difference(counts))


@pytest.mark.parametrize("counts", [np.zeros(5), np.zeros(0)], ids=["no-exposure", "no-items"])
def test_gini_without_exposure_is_nan(counts):
    """No exposure at all (or no items) gives NaN."""
    assert math.isnan(gini(counts))


def test_exposure_counts():
    """``exposure_counts`` counts every appearance of each live item row, zeros included."""
    slate_rows = np.array([[1, 2], [2, 3], [2, 1]])
    np.testing.assert_array_equal(exposure_counts(slate_rows, 5), [0, 2, 3, 1, 0])
    empty = exposure_counts(np.zeros((0, 2), np.int64), 5)
    np.testing.assert_array_equal(empty, np.zeros(5))


def test_snapshot_rows_default_and_precomputed():
    """``StepSnapshot.rows`` looks slate items up in the catalog unless rows were given."""
    items = make_items([3, 8, 11, 20])
    fb = make_feedback([0, 1], [[20, 3], [8, 11]], [-1, -1])
    snap = make_snapshot(fb, items)
    np.testing.assert_array_equal(snap.rows(), [[3, 0], [1, 2]])
    given = np.array([[0, 1], [2, 3]])
    snap.slate_rows = given
    assert snap.rows() is given


def test_snapshot_fetches_interests_only_when_read():
    """An ``interest_source`` is called once, and only when a metric reads interests."""
    items = make_items([3, 8])
    fb = make_feedback([0], [[3, 8]], [0])
    calls = []
    cur, init = np.ones((4, 2), np.float32), np.zeros((4, 2), np.float32)

    def source():
        calls.append(1)
        return cur, init

    snap = StepSnapshot(
        0, 4, fb, make_catalog(items), items, np.zeros(0, np.int8), interest_source=source
    )
    assert snap.rows().shape == (1, 2) and calls == []
    assert np.shares_memory(snap.interests, cur) and np.shares_memory(snap.initial_interests, init)
    assert not snap.interests.flags.writeable  # read-only views of the users' arrays
    assert calls == [1]


# ----------------------------------------------------------------------------- engagement


def test_engagement_metric():
    """CTR is clicks over served users, mean engagement is the sum over served users."""
    items = make_items([1, 2, 3, 4])
    fb = make_feedback(
        [0, 1, 2, 3], [[1, 2], [3, 4], [2, 3], [4, 1]], [0, -1, 1, -1], [0.6, 0.0, 0.2, 0.0]
    )
    row = EngagementMetric(CTX).observe(make_snapshot(fb, items))
    assert row["engagement/ctr"] == pytest.approx(0.5)
    assert row["engagement/mean"] == pytest.approx(0.2)
    assert row["users/active"] == 4


def test_engagement_metric_without_users_is_nan():
    """A step with no served users has NaN CTR and engagement and 0 active users."""
    items = make_items([1, 2])
    fb = make_feedback([], np.zeros((0, 2)), [], [])
    metric = EngagementMetric(CTX)
    row = metric.observe(make_snapshot(fb, items))
    assert math.isnan(row["engagement/ctr"]) and math.isnan(row["engagement/mean"])
    assert row["users/active"] == 0


@pytest.mark.parametrize("seed", range(4))
def test_engagement_values_stay_in_the_declared_ranges_and_reach_their_bounds(seed):
    """Every step lies in ``ranges``; each finite bound is reached (the bounds are tight)."""
    rng = np.random.default_rng(seed)
    items = make_items([1, 2, 3, 4])
    metric = EngagementMetric(CTX)
    rows = []
    for b in (0, 1, 3, 7):
        for kind in ("none", "all", "some"):
            clicked = {"none": np.full(b, -1), "all": np.zeros(b, np.int64)}.get(
                kind, rng.integers(-1, 2, b)
            )
            engagement = np.where(clicked >= 0, rng.uniform(0, 2, b), 0.0)
            slates = rng.integers(1, 5, (b, 2))
            rows.append(metric.observe(make_snapshot(make_feedback(
                np.arange(b), slates, clicked, engagement), items)))  # fmt: skip
    for col, (lo, hi) in metric.ranges.items():
        values = np.array([r[col] for r in rows], float)
        values = values[~np.isnan(values)]
        assert lo is None or (values >= lo).all() and values.min() == lo, col
        assert hi is None or (values <= hi).all() and values.max() == hi, col


# ----------------------------------------------------------------------------- exposure


def test_exposure_metric_coverage_and_gini():
    """Coverage is the share of live items shown; Gini is over all live items' counts."""
    items = make_items([1, 2, 3, 4, 5])
    fb = make_feedback([0, 1, 2], [[1, 2], [2, 3], [2, 1]], [-1, -1, -1])
    row = ExposureMetric(CTX).measure(make_snapshot(fb, items))
    assert row["exposure/coverage"] == pytest.approx(3 / 5)
    assert row["exposure/gini"] == pytest.approx(gini(np.array([2, 3, 1, 0, 0])))
    assert row["exposure/gini"] == pytest.approx(gini_by_mean_difference([2, 3, 1, 0, 0]))


def test_gini_is_nan_without_exposure_and_exact_for_tiny_inputs():
    """No items or no exposure: NaN, returned without a 0/0 (found by mutation testing)."""
    with np.errstate(all="raise"):
        assert math.isnan(gini(np.zeros(0)))
        assert math.isnan(gini(np.zeros(4)))
        assert gini(np.array([0, 1])) == pytest.approx(0.5)
        assert gini(np.array([1])) == 0.0
