"""Nearest-neighbour homogenization: hand-computed values, the representation used, samples."""

from __future__ import annotations

import numpy as np
import pytest

from simlab.batch import Feedback
from simlab.metrics.base import StepSnapshot
from simlab.metrics.homogenization_nn import NNHomogenizationMetric, nearest_neighbours
from simlab.rng import Stream
from simlab.world import WorldContext


def _ctx(n, pairs=2000, every=1):
    return WorldContext(
        seed=0,
        dim=2,
        num_topics=2,
        topic_spread=1.0,
        steps=5,
        slate_size=1,
        history_length=1,
        num_users=n,
        pairwise_every=every,
        pairwise_pairs=pairs,
    )


def _snap(step, clicks, n, interests=None, rep=None):
    """A snapshot where user u clicked clicks[u] (None: no click), one-item slates."""
    users = np.arange(n, dtype=np.int64)
    items = np.array([[c if c is not None else 0] for c in clicks], np.int64)
    pos = np.array([0 if c is not None else -1 for c in clicks], np.int64)
    fb = Feedback(step, users, items, pos, np.ones(n, np.float32))
    return StepSnapshot(
        step=step,
        num_users=n,
        feedback=fb,
        catalog=None,
        items=None,
        new_item_sources=np.zeros(0),
        interests=interests,
        initial_interests=interests,
        agent_users=None if rep is None else (lambda: rep),
    )


def test_hand_computed_jaccard_over_nearest_neighbour_pairs():
    """4 users: NN pairs by cosine of the representation; Jaccard of consumed sets by hand.

    Representation: u0 = (1, 0), u1 = (0.9, 0.1), u2 = (0, 1), u3 = (0.1, 1) -> NN pairs
    (0, 1), (1, 0), (2, 3), (3, 2). Consumption over two steps: S0 = {1, 2}, S1 = {1, 3},
    S2 = {5, 6}, S3 = {5}. Jaccard: J(0, 1) = 1/3, J(2, 3) = 1/2; mean over the 4 anchors
    = (1/3 + 1/3 + 1/2 + 1/2) / 4 = 5/12.
    """
    rep = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 1.0]])
    m = NNHomogenizationMetric(_ctx(4))
    m.measure(_snap(0, [1, 1, 5, 5], 4, rep=rep))
    row = m.measure(_snap(1, [2, 3, 6, None], 4, rep=rep))
    assert row["echo/homogenization_nn"] == pytest.approx(5 / 12)
    assert row["echo/nn_by_agent"] == 1.0


def test_true_preferences_pair_users_when_the_agent_has_no_representation():
    """Without a representation the interests pair users (and the flag says so)."""
    interests = np.array([[0.0, 1.0], [1.0, 0.0], [0.1, 1.0], [1.0, 0.2]], np.float32)
    m = NNHomogenizationMetric(_ctx(4))
    row = m.measure(_snap(0, [7, 8, 7, 9], 4, interests=interests))
    # pairs (0, 2), (1, 3), (2, 0), (3, 1): J = 1, 0, 1, 0
    assert row["echo/homogenization_nn"] == pytest.approx(0.5)
    assert row["echo/nn_by_agent"] == 0.0


def test_ties_and_zero_vectors_are_broken_at_random_never_oneself():
    """Zero rows tie with everyone: partners vary with the step, and are never the user."""
    rep = np.zeros((5, 3))
    tb = Stream(0, "t")
    seen = set()
    for step in range(30):
        nn = nearest_neighbours(rep, np.arange(5), tb, step)
        assert (nn != np.arange(5)).all()
        seen.add(int(nn[0]))
    assert seen == {1, 2, 3, 4}


def test_sparse_and_dense_representations_agree():
    """A scipy.sparse representation pairs users as its dense form does."""
    from scipy import sparse

    rng = np.random.default_rng(0)
    dense = (rng.random((40, 40)) < 0.1).astype(float)
    tb = Stream(0, "t")
    a = nearest_neighbours(dense, np.arange(40), tb, 3)
    b = nearest_neighbours(sparse.csr_matrix(dense), np.arange(40), tb, 3)
    np.testing.assert_array_equal(a, b)


def test_a_fixed_sample_of_anchors_and_the_cadence():
    """Beyond pairwise_pairs users, that many anchors (the same for all); NaN between steps."""
    a = NNHomogenizationMetric(_ctx(50, pairs=10, every=2))
    b = NNHomogenizationMetric(_ctx(50, pairs=10, every=2))
    assert a.anchors.shape == (10,) and np.array_equal(a.anchors, b.anchors)
    interests = np.random.default_rng(1).normal(size=(50, 2))
    first = a.measure(_snap(0, list(range(50)), 50, interests=interests))
    assert np.isnan(first["echo/homogenization_nn"])
    second = a.measure(_snap(1, list(range(50)), 50, interests=interests))
    assert second["echo/homogenization_nn"] == 0.0  # everyone consumed a distinct item


@pytest.mark.parametrize(
    ("clicks", "want"),
    [
        ([[1, 1]], 1.0),  # both consumed item 1: J = 1 for each anchor
        ([[1, 2]], 0.0),  # disjoint
        ([[1, 2], [2, 3]], 1 / 3),  # {1, 2} vs {2, 3}
        ([[1, None], [2, 1]], 1 / 2),  # {1, 2} vs {1}
        ([[None, None]], 0.0),  # nothing consumed: empty unions count 0
    ],
)
def test_two_users_are_each_others_neighbour(clicks, want):
    """The smallest measured population: 2 users, whatever the representation, J by hand."""
    rep = np.array([[1.0, 0.0], [0.0, 1.0]])  # orthogonal: still each other's only other user
    m = NNHomogenizationMetric(_ctx(2))
    for t, step_clicks in enumerate(clicks):
        row = m.measure(_snap(t, step_clicks, 2, rep=rep))
    assert row["echo/homogenization_nn"] == pytest.approx(want)


def test_one_user_has_no_pair():
    """A population of one user: NaN (no other user to pair with)."""
    m = NNHomogenizationMetric(_ctx(1))
    row = m.measure(_snap(0, [3], 1, rep=np.array([[1.0, 0.0]])))
    assert np.isnan(row["echo/homogenization_nn"]) and np.isnan(row["echo/nn_by_agent"])


def test_the_anchor_sample_is_pinned_and_opt_in_by_name():
    """Seed 0's sample of 10 anchors among 50 users is pinned; the metric is opt-in.

    A change of the sample's stream is deliberate; the metric is not among the default
    measures (it costs a similarity row per anchor).
    """
    from simlab.scenario_model import _default_metrics

    anchors = NNHomogenizationMetric(_ctx(50, pairs=10)).anchors
    np.testing.assert_array_equal(anchors, [0, 6, 17, 18, 19, 31, 36, 39, 44, 48])
    assert "homogenization_nn" not in _default_metrics()
    assert "topics" in _default_metrics()  # a default one, for contrast


@pytest.mark.parametrize("seed", range(3))
def test_values_stay_in_the_declared_ranges_and_reach_their_bounds(seed):
    """Random steps in range; each bound reached: Jaccard 0 and 1, pairs by interests or agent.

    Disjoint consumption reads 0, identical consumption 1; ``nn_by_agent`` is 0 without an
    agent representation and 1 with one.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for n in (2, 3, 7):
        interests = rng.normal(size=(n, 2))
        for rep in (None, rng.normal(size=(n, 3))):
            m = NNHomogenizationMetric(_ctx(n))
            for t in range(4):
                clicks = [int(c) if c >= 0 else None for c in rng.integers(-1, 4, n)]
                rows.append(m.measure(_snap(t, clicks, n, interests=interests, rep=rep)))
            same = NNHomogenizationMetric(_ctx(n)).measure(_snap(0, [5] * n, n, interests, rep))
            apart = NNHomogenizationMetric(_ctx(n)).measure(
                _snap(0, list(range(n)), n, interests, rep)
            )
            assert same["echo/homogenization_nn"] == 1.0
            assert apart["echo/homogenization_nn"] == 0.0
            assert same["echo/nn_by_agent"] == apart["echo/nn_by_agent"] == float(rep is not None)
            rows += [same, apart]
    for col, (lo, hi) in NNHomogenizationMetric.ranges.items():
        values = np.array([r[col] for r in rows], float)
        assert not np.isnan(values).any(), col
        assert (values >= lo).all() and values.min() == lo, col
        assert (values <= hi).all() and values.max() == hi, col


@pytest.mark.parametrize(("n", "step"), [(513, 0), (1100, 3), (1600, 7)])
def test_every_block_of_anchors_gets_the_reference_neighbour(n, step):
    """More anchors than one block (512): each anchor's neighbour is the per-user reference.

    One-hot and zero rows make cosines exactly 0 or 1, so most users tie and the tie-break
    draws (keyed by anchor and step) decide: among the most similar others, the largest draw.
    """
    rng = np.random.default_rng(n)
    rep = np.eye(5)[rng.integers(0, 5, n)] * rng.uniform(0.5, 2.0, (n, 1))
    rep[rng.random(n) < 0.1] = 0.0  # zero rows: similarity 0 with everyone
    anchors = np.sort(rng.choice(n, n - 7, replace=False))
    tb = Stream(3, "t")
    got = nearest_neighbours(rep, anchors, tb, step)
    unit = (rep > 0).astype(float)
    for i, u in enumerate(anchors):
        sim = unit @ unit[u]
        sim[u] = -np.inf
        draws = tb.uniform([u], step, size=n)[0]
        best = np.flatnonzero(sim == sim.max())
        assert got[i] == best[np.argmax(draws[best])], u
