"""simlab.metrics' diversity, drift and homogenization on hand-built snapshots and worlds."""

from __future__ import annotations

import itertools
import math
from types import SimpleNamespace

import numpy as np
import pytest
from test_metrics import CTX, make_feedback, make_items, make_snapshot

from simlab.batch import Feedback
from simlab.environments.content import ItemTable
from simlab.metrics import (
    DiversityMetric,
    HomogenizationMetric,
    InterestDriftMetric,
)
from simlab.metrics.echo import jaccard_pairs

# ----------------------------------------------------------------------------- diversity


def brute_force_diversity(slates: np.ndarray, items: ItemTable) -> float:
    """Mean over slates of the mean pairwise cosine distance of their latent embeddings."""
    per_slate = []
    for slate in slates:
        e = [items.latent[np.searchsorted(items.item_ids, i)].astype(np.float64) for i in slate]
        d = [
            1 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
            for a, b in itertools.combinations(e, 2)
        ]
        per_slate.append(np.mean(d))
    return float(np.mean(per_slate))


@pytest.mark.parametrize("k", [2, 3, 5])
def test_diversity_matches_brute_force(k):
    """Intra-list diversity equals a brute-force mean pairwise cosine distance."""
    rng = np.random.default_rng(k)
    item_ids = np.arange(10, 40, 3)
    items = make_items(item_ids, dim=6, seed=k)
    slates = np.stack([rng.choice(item_ids, size=k, replace=False) for _ in range(7)])
    fb = make_feedback(np.arange(7), slates, np.full(7, -1))
    row = DiversityMetric(CTX).measure(make_snapshot(fb, items, num_users=7))
    assert row["diversity/intra_list"] == pytest.approx(brute_force_diversity(slates, items))


def test_diversity_by_hand():
    """Orthogonal items have distance 1, identical directions 0, opposite 2."""
    latent = np.array([[1, 0, 0], [0, 1, 0], [-1, 0, 0]], np.float32)
    items = make_items([1, 2, 3], latent=latent)
    fb = make_feedback([0, 1], [[1, 2], [1, 3]], [-1, -1])
    row = DiversityMetric(CTX).measure(make_snapshot(fb, items))
    assert row["diversity/intra_list"] == pytest.approx((1.0 + 2.0) / 2)


def test_diversity_undefined_for_single_item_slates():
    """Slates of one item (no pairs) give NaN."""
    items = make_items([1, 2])
    fb = make_feedback([0, 1], [[1], [2]], [0, -1])
    assert math.isnan(
        DiversityMetric(CTX).measure(make_snapshot(fb, items))["diversity/intra_list"]
    )


# ----------------------------------------------------------------------------- drift


def test_interest_drift_by_hand():
    """Interest drift is the mean L2 distance from step-0 interests over the population."""
    initial = np.array([[1, 0], [0, 1], [1, 0]], np.float32)
    current = np.array([[0, 1], [0, 1], [0.6, 0.8]], np.float32)
    items = make_items([1], dim=2)
    fb = make_feedback([0], [[1]], [-1])
    snap = make_snapshot(fb, items, interests=current, initial_interests=initial, num_users=3)
    want = (math.sqrt(2) + 0 + math.sqrt(0.4**2 + 0.8**2)) / 3
    assert InterestDriftMetric(CTX).measure(snap)["echo/interest_drift"] == pytest.approx(want)


# ----------------------------------------------------------------------------- homogenization


class ReferenceHomogenization:
    """Cumulative consumption sets per user, compared with :func:`jaccard_pairs`."""

    def __init__(self, metric: HomogenizationMetric, num_users: int) -> None:
        self.a, self.b = metric.pair_a, metric.pair_b
        self.sets: list[set[int]] = [set() for _ in range(num_users)]

    def observe(self, fb: Feedback) -> float:
        """Add this step's clicks and return the mean Jaccard over the metric's pairs."""
        for user, item in zip(fb.user_ids[fb.clicked], fb.clicked_items[fb.clicked], strict=True):
            self.sets[int(user)].add(int(item))
        sets_a = [self.sets[u] for u in self.a]
        sets_b = [self.sets[u] for u in self.b]
        return float(jaccard_pairs(sets_a, sets_b).mean())


def test_homogenization_pairs_are_valid_and_deterministic():
    """Pairs join two distinct users in range and depend only on the seed."""
    ctx = SimpleNamespace(seed=3, num_users=50)
    m1, m2 = HomogenizationMetric(ctx), HomogenizationMetric(ctx)
    np.testing.assert_array_equal(m1.pair_a, m2.pair_a)
    np.testing.assert_array_equal(m1.pair_b, m2.pair_b)
    assert m1.pair_a.shape == (50 * 49 // 2,)
    assert (m1.pair_a != m1.pair_b).all()
    assert m1.pair_a.min() >= 0 and max(m1.pair_a.max(), m1.pair_b.max()) < 50
    other = HomogenizationMetric(SimpleNamespace(seed=4, num_users=50))
    assert not np.array_equal(m1.pair_a, other.pair_a)


def test_homogenization_caps_pairs():
    """At most ``max_pairs`` pairs are tracked in a large population."""
    m = HomogenizationMetric(SimpleNamespace(seed=0, num_users=10_000))
    assert m.pair_a.shape == (HomogenizationMetric.max_pairs,)


def test_homogenization_single_user_is_nan():
    """A population of one user has no pairs, so homogenization is NaN."""
    items = make_items([1, 2])
    m = HomogenizationMetric(SimpleNamespace(seed=0, num_users=1))
    fb = make_feedback([0], [[1, 2]], [0])
    assert math.isnan(m.measure(make_snapshot(fb, items, num_users=1))["echo/homogenization"])


def test_homogenization_by_hand_same_item_same_step_and_repeats():
    """Hand-checked Jaccard with a shared item in one step and repeated consumption."""
    ctx = SimpleNamespace(seed=0, num_users=2)
    m = HomogenizationMetric(ctx)
    assert sorted({int(m.pair_a[0]), int(m.pair_b[0])}) == [0, 1]
    items = make_items([1, 2, 3, 4, 5])

    def step(clicks: list[int], t: int) -> float:
        """Users 0 and 1 each see items [1..5] and click at ``clicks`` (-1: none)."""
        fb = make_feedback([0, 1], [[1, 2, 3, 4, 5]] * 2, clicks, step=t)
        return m.measure(make_snapshot(fb, items, num_users=2))["echo/homogenization"]

    assert step([-1, -1], 0) == 0.0  # both empty: 0 by convention
    assert step([0, 0], 1) == pytest.approx(1.0)  # {1} vs {1}: same item, same step
    assert step([0, 1], 2) == pytest.approx(1 / 2)  # {1} vs {1, 2}: user 0 repeats item 1
    assert step([1, -1], 3) == pytest.approx(1.0)  # {1, 2} vs {1, 2}
    assert step([2, 2], 4) == pytest.approx(1.0)  # {1, 2, 3} vs {1, 2, 3}
    assert step([3, 2], 5) == pytest.approx(3 / 4)  # {1, 2, 3, 4} vs {1, 2, 3}


@pytest.mark.parametrize(
    ("num_users", "num_items", "seed"),
    [(2, 3, 0), (6, 4, 1), (12, 8, 2), (40, 15, 3), (70, 200, 4)],
)
def test_homogenization_matches_reference_sets(num_users, num_items, seed):
    """The incremental metric equals Jaccard over Python sets after every step of random clicks.

    Few items make collisions frequent: pair members consuming the same item in the same
    step, users repeating items, and the same user in several pairs.
    """
    ctx = SimpleNamespace(seed=seed, num_users=num_users)
    metric = HomogenizationMetric(ctx)
    ref = ReferenceHomogenization(metric, num_users)
    item_ids = np.arange(100, 100 + 7 * num_items, 7)  # sparse, non-contiguous ids
    items = make_items(item_ids, seed=seed)
    rng = np.random.default_rng(seed)
    k = min(3, num_items)
    for t in range(12):
        served = np.flatnonzero(rng.random(num_users) < 0.7)
        slates = np.array([rng.choice(item_ids, size=k, replace=False) for _ in served])
        slates = slates.reshape(served.shape[0], k)
        clicks = np.where(
            rng.random(served.shape[0]) < 0.6, rng.integers(0, k, served.shape[0]), -1
        )
        fb = make_feedback(served, slates, clicks, step=t)
        got = metric.measure(make_snapshot(fb, items, num_users=num_users))
        assert got["echo/homogenization"] == pytest.approx(ref.observe(fb), abs=1e-12), f"t={t}"


def test_homogenization_large_item_ids():
    """Item ids near 2**31 are handled (keys pack user and item into one int64)."""
    ctx = SimpleNamespace(seed=0, num_users=3)
    metric = HomogenizationMetric(ctx)
    ref = ReferenceHomogenization(metric, 3)
    item_ids = np.array([5, 2**31 - 2, 2**31 + 7])
    items = make_items(item_ids)
    for t, clicks in enumerate(([0, 1, 2], [1, 1, 1], [2, 0, -1])):
        fb = make_feedback([0, 1, 2], [item_ids] * 3, clicks, step=t)
        got = metric.measure(make_snapshot(fb, items, num_users=3))["echo/homogenization"]
        assert got == pytest.approx(ref.observe(fb))


def test_pairwise_measures_every_n_steps_match_every_step():
    """With measures.pairwise_every = 3, homogenization is measured every third step.

    It is NaN in between and equals the every-step value on measured steps;
    ``pairwise_pairs`` sets the sample size.
    """
    from conftest import make_small

    from simlab.world import World

    def series(*over):
        world = World(make_small(*over, "users.drift_rate=0.1", steps=9), 1, 0)
        return [world.step(t)["echo/homogenization"] for t in range(9)], world

    every, _ = series()
    third, _ = series("measures.pairwise_every=3")
    for t in range(9):
        if (t + 1) % 3:
            assert math.isnan(third[t])
        else:
            assert third[t] == pytest.approx(every[t], rel=1e-12)
    _, small = series("measures.pairwise_pairs=50")
    homog = next(m for m in small.metrics if m.name == "homogenization")
    assert homog.pair_a.shape == (50,)


@pytest.mark.parametrize(("steps", "every"), [(10, 3), (9, 4), (7, 2), (5, 9), (6, 6), (1, 3)])
@pytest.mark.parametrize("column", ["echo/homogenization", "echo/homogenization_nn"])
def test_pairwise_measures_are_taken_at_the_runs_last_step(steps, every, column):
    """Measured after every N steps and at the last step, there equal to the every-step value."""
    from conftest import make_small

    from simlab.world import World

    def series(*over):
        sc = make_small(*over, "users.drift_rate=0.1", steps=steps,
                        metrics=["engagement", "homogenization", "homogenization_nn"])  # fmt: skip
        world = World(sc, 1, 0)
        return [world.step(t)[column] for t in range(steps)]

    each, sparse = series(), series(f"measures.pairwise_every={every}")
    for t in range(steps):
        if (t + 1) % every and t != steps - 1:
            assert math.isnan(sparse[t]), t
        else:
            assert sparse[t] == pytest.approx(each[t], rel=1e-12), t
    assert not math.isnan(sparse[-1])
