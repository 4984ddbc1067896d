"""Tests of simlab.metrics.topics: hand values, shard reduction, direction, a real world run."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from simlab.batch import Catalog, Feedback
from simlab.environments.content import ItemTable
from simlab.metrics.base import StepSnapshot
from simlab.metrics.topics import TopicMetric, topic_centres_of, topic_mix

ENTROPY, DEGENERACY, STECK, KL, BUBBLE = TopicMetric.columns
LOCAL = SimpleNamespace(user_range=None)


def make_items(topic, latent) -> ItemTable:
    """An item table with ids 10, 11, ... and the given topics and latent vectors."""
    topic = np.asarray(topic, np.int64)
    latent = np.asarray(latent, np.float32)
    n = topic.shape[0]
    return ItemTable(
        item_ids=np.arange(10, 10 + n, dtype=np.int64),
        creator=np.zeros(n, np.int64),
        source=np.zeros(n, np.int8),
        topic=topic,
        latent=latent,
        features=latent.copy(),
        quality=np.zeros(n, np.float32),
        published=np.zeros(n, np.int64),
    )


def make_snapshot(
    items, user_ids, slates, interests, initial, num_users=None, history_topics=None
) -> StepSnapshot:
    """A snapshot of the served ``user_ids`` with ``slates`` (item ids) over ``items``."""
    user_ids = np.asarray(user_ids, np.int64)
    slates = np.asarray(slates, np.int64)
    if slates.size == 0:
        slates = np.zeros((user_ids.shape[0], 2), np.int64)
    b = user_ids.shape[0]
    fb = Feedback(0, user_ids, slates, np.full(b, -1, np.int64), np.zeros(b, np.float32))
    catalog = Catalog(
        item_ids=items.item_ids,
        features=items.features,
        creator=items.creator,
        age=np.zeros(items.item_ids.shape[0], np.int64),
    )
    interests = np.asarray(interests, np.float32)
    return StepSnapshot(
        step=0,
        num_users=interests.shape[0] if num_users is None else num_users,
        feedback=fb,
        catalog=catalog,
        items=items,
        new_item_sources=np.zeros(0, np.int8),
        interests=interests,
        initial_interests=np.asarray(initial, np.float32),
        history_topics=None if history_topics is None else np.asarray(history_topics, np.int64),
        slate_rows=catalog.rows(slates),
    )


def softmax(logits) -> np.ndarray:
    """A plain softmax of a list of logits."""
    z = np.exp(np.asarray(logits, np.float64))
    return z / z.sum()


# three present topics (0, 1, 3; topic 2 has no live item and is skipped) with centres
# c0 = (1, 0), c1 = (0, 1), c3 = (-1, 0); items 10, 11 of topic 0, 12 of topic 1, 13 of topic 3
ITEMS = make_items([0, 0, 1, 3], [[1, 0], [1, 0], [0, 1], [-1, 0]])
# users 0, 1, 2 at (1, 0), (0, 1), (0.6, 0.8); all started at (1, 0)
INTERESTS = [[1, 0], [0, 1], [0.6, 0.8]]
INITIAL = [[1, 0], [1, 0], [1, 0]]


@pytest.mark.filterwarnings("error")  # no numpy warning (a division by the width) either
def test_served_users_with_empty_slates_have_no_slate_measures():
    """Zero-width slates (nothing left to show): KL and bubble NaN, entropy as without them."""
    base = make_snapshot(ITEMS, [0, 2], [[10, 11], [12, 13]], INTERESTS, INITIAL)
    fb = Feedback(0, base.feedback.user_ids, np.zeros((2, 0), np.int64), np.full(2, -1),
                  np.zeros(2, np.float32))  # fmt: skip
    snap = StepSnapshot(0, base.num_users, fb, base.catalog, ITEMS, np.zeros(0, np.int8),
                        base.interests, base.initial_interests, slate_rows=np.zeros((2, 0), int),
                        history_topics=np.array([[0, -1], [1, 1]]))  # fmt: skip
    row = TopicMetric(LOCAL).measure(snap)
    assert math.isnan(row[KL]) and math.isnan(row[BUBBLE])
    assert math.isnan(row["echo/calibration_kl"])
    assert row[ENTROPY] == TopicMetric(LOCAL).measure(base)[ENTROPY]


def hand_snapshot() -> StepSnapshot:
    """Users 0 and 2 served: user 0 gets [10, 11] (topic 0, 0), user 2 [12, 13] (topics 1, 3)."""
    return make_snapshot(ITEMS, [0, 2], [[10, 11], [12, 13]], INTERESTS, INITIAL)


def test_topic_centre_is_the_normalised_mean_of_live_items():
    """Topic 4 of (1, 0) and (0, 1) has centre (1, 1)/sqrt 2; absent topics are skipped."""
    items = make_items([4, 4, 7], [[1, 0], [0, 1], [0, -1]])
    present, centres = topic_centres_of(items.topic, items.latent)
    np.testing.assert_array_equal(present, [4, 7])
    np.testing.assert_allclose(centres, [[2**-0.5, 2**-0.5], [0, -1]], rtol=1e-7)


def test_topic_mix_is_a_softmax_of_similarities():
    """User (0.6, 0.8) against c0, c1, c3: logits 5 * (0.6, 0.8, -0.6) = (3, 4, -3)."""
    _, centres = topic_centres_of(ITEMS.topic, ITEMS.latent)
    p = np.exp(topic_mix(np.array([[0.6, 0.8]]), centres, 5.0))[0]
    np.testing.assert_allclose(p, softmax([3, 4, -3]), rtol=1e-7)


def test_interest_entropy_by_hand():
    """Normalised entropy, mean over all 3 users (served or not), with log 3 for 3 topics."""
    # logits 5 <x_u, c_k>: u0 (5, 0, -5), u1 (0, 5, 0), u2 (3, 4, -3); for p = softmax(l),
    # H(p) = log sum_k e^{l_k} - sum_k p_k l_k
    z0, z1, z2 = math.e**5 + 1 + math.e**-5, math.e**5 + 2, math.e**3 + math.e**4 + math.e**-3
    h0 = math.log(z0) - (5 * math.e**5 - 5 * math.e**-5) / z0  # ~ 0.0407 (0.0370 log 3)
    h1 = math.log(z1) - 5 * math.e**5 / z1  # ~ 0.0799 (0.0727 log 3)
    h2 = math.log(z2) - (3 * math.e**3 + 4 * math.e**4 - 3 * math.e**-3) / z2  # ~ 0.587
    expected = (h0 + h1 + h2) / (3 * math.log(3))  # ~ 0.2148
    row = TopicMetric(LOCAL).measure(hand_snapshot())
    assert row[ENTROPY] == pytest.approx(expected, rel=1e-6)
    assert row[ENTROPY] == pytest.approx(0.21478529686601935, rel=1e-6)


def test_interest_degeneracy_by_hand():
    """Norm of the mean interest's move: population means, not per-user distances."""
    # mean now ((1 + 0 + 0.6) / 3, (0 + 1 + 0.8) / 3) = (1.6/3, 1.8/3); mean at 0 = (1, 0);
    # difference (-1.4/3, 1.8/3) -> sqrt(1.96 + 3.24) / 3 = sqrt(5.2) / 3 ~ 0.7601
    row = TopicMetric(LOCAL).measure(hand_snapshot())
    assert row[DEGENERACY] == pytest.approx(math.sqrt(5.2) / 3, rel=1e-6)


def test_calibration_kl_by_hand():
    """Mean over the 2 served users of KL(p_u || 0.99 q_u + 0.01 p_u), natural log."""
    p0, p2 = softmax([5, 0, -5]), softmax([3, 4, -3])
    # u0 ~ (0.99326, 0.00669, 0.0000451), slate topics (0, 0): q = (1, 0, 0), so
    # KL0 = p0[0] log(p0[0] / (0.99 + 0.01 p0[0])) + (p0[1] + p0[2]) log 100 ~ 0.02438
    kl0 = p0[0] * math.log(p0[0] / (0.99 + 0.01 * p0[0])) + (p0[1] + p0[2]) * math.log(100)
    # u2 ~ (0.26876, 0.73057, 0.000666), slate topics (1, 3): q = (0, 0.5, 0.5), so
    # KL2 = p2[0] log 100 + sum_{k=1,2} p2[k] log(p2[k] / (0.495 + 0.01 p2[k])) ~ 1.50698
    kl2 = p2[0] * math.log(100) + sum(
        p2[k] * math.log(p2[k] / (0.495 + 0.01 * p2[k])) for k in (1, 2)
    )
    row = TopicMetric(LOCAL).measure(hand_snapshot())
    assert row[KL] == pytest.approx((kl0 + kl2) / 2, rel=1e-6)
    assert row[KL] == pytest.approx(0.7656786652690261, rel=1e-6)


def test_steck_calibration_against_the_click_history_by_hand():
    """Steck's KL(h_u || 0.99 q_u + 0.01 h_u) with h_u the topics of the user's history.

    u0 clicked topics (0, 0, 1) -> h0 = (2/3, 1/3, 0, 0); slate topics (0, 0) -> q = (1, 0,
    0, 0): KL0 = 2/3 log((2/3) / (0.99 + 0.01 * 2/3)) + 1/3 log((1/3) / (0.01/3)).
    u2 clicked (3) -> h2 = (0, 0, 0, 1); slate topics (1, 3) -> q = (0, .5, 0, .5):
    KL2 = log(1 / (0.495 + 0.01)). u1 has no history: left out of the mean.
    """
    kl0 = (2 / 3) * math.log((2 / 3) / (0.99 + 0.01 * 2 / 3)) + (1 / 3) * math.log(100)
    kl2 = math.log(1 / (0.495 + 0.01))
    base = hand_snapshot()
    users = base.feedback.user_ids.tolist()
    hist = {0: [0, 0, 1, -1], 1: [-1, -1, -1, -1], 2: [3, -1, -1, -1]}
    slates = base.feedback.slates
    snap = make_snapshot(
        ITEMS,
        users + [1],
        np.concatenate([slates, slates[:1]]),
        INTERESTS,
        INITIAL,
        history_topics=[hist[u] for u in users] + [hist[1]],
    )
    row = TopicMetric(LOCAL).measure(snap)
    assert row[STECK] == pytest.approx((kl0 + kl2) / 2, rel=1e-9)
    none = make_snapshot(ITEMS, [1], slates[:1], INTERESTS, INITIAL, history_topics=[hist[1]])
    assert math.isnan(TopicMetric(LOCAL).measure(none)[STECK])


def test_steck_calibration_is_zero_when_slates_mirror_the_history():
    """A slate whose topic mix equals the history's mix has KL 0; a different one more."""
    snap = make_snapshot(
        ITEMS, [0], [[10, 11]], INTERESTS, INITIAL, history_topics=[[0, 0, -1, -1]]
    )
    same_topic = TopicMetric(LOCAL).measure(snap)[STECK]  # items 10, 11 are topic 0
    other = make_snapshot(
        ITEMS, [0], [[12, 13]], INTERESTS, INITIAL, history_topics=[[0, 0, -1, -1]]
    )
    assert same_topic == pytest.approx(0.0, abs=1e-12)
    assert TopicMetric(LOCAL).measure(other)[STECK] > 1.0


def test_filter_bubble_by_hand():
    """u0's top topic is 0 (both slate items), u2's is 1 (one of two): 3 of 4 items."""
    row = TopicMetric(LOCAL).measure(hand_snapshot())
    assert row[BUBBLE] == 0.75


def test_undefined_columns_are_nan():
    """No served users: KL and bubble NaN; one present topic: entropy NaN, KL 0, bubble 1."""
    row = TopicMetric(LOCAL).measure(make_snapshot(ITEMS, [], [], INTERESTS, INITIAL))
    assert math.isnan(row[KL]) and math.isnan(row[BUBBLE])
    assert row[ENTROPY] == pytest.approx(0.21478529686601935, rel=1e-6)
    one = make_items([2, 2], [[1, 0], [0, 1]])
    row = TopicMetric(LOCAL).measure(make_snapshot(one, [1], [[10, 11]], INTERESTS, INITIAL))
    assert math.isnan(row[ENTROPY])
    assert row[KL] == pytest.approx(0.0, abs=1e-12)
    assert row[BUBBLE] == 1.0
    empty = make_items([], np.zeros((0, 2)))
    row = TopicMetric(LOCAL).measure(make_snapshot(empty, [], [], INTERESTS, INITIAL))
    assert math.isnan(row[ENTROPY]) and math.isnan(row[KL]) and math.isnan(row[BUBBLE])
    assert row[DEGENERACY] == pytest.approx(math.sqrt(5.2) / 3, rel=1e-6)


def random_world(seed: int, num_users: int, num_items: int, dim: int = 4):
    """Random unit interests and items over 5 topics (seeded)."""
    rng = np.random.default_rng(seed)

    def unit(n):
        x = rng.normal(size=(n, dim))
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    items = make_items(rng.integers(0, 5, num_items), unit(num_items))
    return rng, items, unit(num_users), unit(num_users)


def test_shards_reduce_to_the_one_snapshot_row():
    """Users split over shards [0, 4), [4, 7), [7, 10) (the last unserved) give the same row."""
    rng, items, current, initial = random_world(1, 10, 30)
    served = np.array([1, 3, 4, 6])
    slates = np.stack([rng.choice(items.item_ids, 3, replace=False) for _ in served])
    hist = rng.integers(-1, 5, (4, 6))  # topics of the users' last clicks, -1 = none
    whole = TopicMetric(LOCAL).measure(
        make_snapshot(items, served, slates, current, initial, history_topics=hist)
    )
    parts = []
    for lo, hi in [(0, 4), (4, 7), (7, 10)]:
        mine = (served >= lo) & (served < hi)
        snap = make_snapshot(
            items, served[mine], slates[mine], current[lo:hi], initial[lo:hi], num_users=10,
            history_topics=hist[mine],
        )  # fmt: skip
        parts.append(TopicMetric(SimpleNamespace(user_range=(lo, hi))).partial(snap))
    split = TopicMetric(LOCAL).reduce(parts, None)
    assert split.keys() == whole.keys()
    for column, value in whole.items():
        assert np.isfinite(value), column
        assert split[column] == value, column  # the same bits (metrics.sums)


def test_top_topic_slates_are_a_bubble_and_less_calibrated():
    """Slates of only the top topic: bubble 1 and higher KL than slates in proportion to p_u."""
    rng, _, current, initial = random_world(2, 6, 0)
    # 20 items per topic at 5 random unit topic directions (d = 4)
    topic = np.repeat(np.arange(5), 20)
    latent = rng.normal(size=(5, 4))
    latent /= np.linalg.norm(latent, axis=1, keepdims=True)
    items = make_items(topic, latent[topic])
    _, centres = topic_centres_of(items.topic, items.latent)
    p = np.exp(topic_mix(current, centres, TopicMetric.temperature))
    size, users = 20, np.arange(6)
    bubble = [items.item_ids[topic == k][:size] for k in p.argmax(axis=1)]
    mixed = []
    for pu in p:  # largest-remainder counts of the 20 slots in proportion to p_u
        counts = np.floor(size * pu).astype(int)
        counts[np.argsort(size * pu - counts)[::-1][: size - counts.sum()]] += 1
        mixed.append(np.concatenate([items.item_ids[topic == k][:c] for k, c in enumerate(counts)]))
    metric = TopicMetric(LOCAL)
    in_bubble = metric.measure(make_snapshot(items, users, bubble, current, initial))
    calibrated = metric.measure(make_snapshot(items, users, np.stack(mixed), current, initial))
    assert in_bubble[BUBBLE] == 1.0
    assert calibrated[BUBBLE] < 1.0
    assert in_bubble[KL] > calibrated[KL]
    assert calibrated[KL] < 0.1


def test_runs_in_a_small_world(monkeypatch):
    """Registered under ``topics``, the metric runs in a real world with finite values."""
    from conftest import make_small

    from simlab import registry
    from simlab.world import World

    # register into a copy of the metrics table, which monkeypatch restores after the test
    monkeypatch.setitem(registry._REGISTRY, "metrics", dict(registry._REGISTRY["metrics"]))
    registry.register("metrics", "topics", "simlab.metrics.topics:TopicMetric")
    world = World(make_small("users.drift_rate=0.1", steps=5, metrics=["topics", "drift"]), 0, 0)
    rows = [row for _, row in world.run()]
    assert len(rows) == 5
    assert np.isnan(rows[0][STECK])  # nobody has a click history before the first step
    for row in rows[1:]:
        assert set(TopicMetric.columns) <= row.keys()
        assert all(np.isfinite(row[c]) for c in TopicMetric.columns), row
        assert 0 <= row[ENTROPY] <= 1 and 0 <= row[BUBBLE] <= 1 and row[KL] >= 0
    assert rows[-1][DEGENERACY] > 0
    # the population's mean moves by at most the mean per-user distance (triangle inequality)
    assert rows[-1][DEGENERACY] <= rows[-1]["echo/interest_drift"] + 1e-9


def test_user_shards_of_a_real_world_reduce_to_the_whole(monkeypatch):
    """Three ``UserShard``s (built with their ``user_range``) reduce to the one-shard row."""
    from conftest import make_small

    from simlab import registry
    from simlab.batch import Slates
    from simlab.population import ShardSpec, StepContent, UserShard, shard_bounds
    from simlab.world import World

    monkeypatch.setitem(registry._REGISTRY, "metrics", dict(registry._REGISTRY["metrics"]))
    registry.register("metrics", "topics", "simlab.metrics.topics:TopicMetric")
    sc = make_small("users.drift_rate=0.1", metrics=["topics"])
    world = World(sc, 0, seed=3)
    spec = ShardSpec.of(sc, 3)
    n = spec.ctx.num_users
    bounds = shard_bounds(n, 3)
    whole = UserShard(spec, 0, n)
    shards = [UserShard(spec, lo, hi) for lo, hi in bounds]
    metric = TopicMetric(LOCAL)
    for t in range(3):
        world.content.step(t, None)
        catalog = world.content.catalog(False)
        content = StepContent(catalog, world.content.latent(), world.content.new_item_sources())
        ids = whole.arrive(t)[0]
        for s in shards:
            s.arrive(t)
        # each user gets 5 live items starting at a user-dependent offset
        cols = (ids[:, None] * 7 + np.arange(5)) % catalog.num_items
        slates = Slates(ids, catalog.item_ids[cols])
        one = whole.respond(t, ids, slates.item_ids, content)[3]["topics"]
        parts = []
        for s, (lo, hi) in zip(shards, bounds, strict=True):
            mine = (ids >= lo) & (ids < hi)
            parts.append(s.respond(t, ids[mine], slates.item_ids[mine], content)[3]["topics"])
        expected, split = metric.reduce([one], None), metric.reduce(parts, None)
        for column, value in expected.items():
            if column == STECK and t == 0:  # no click history yet
                assert np.isnan(value) and np.isnan(split[column])
                continue
            assert np.isfinite(value), column
            assert split[column] == value, column  # the same bits (metrics.sums)
