"""Topic measures at their boundaries: topics only in histories, nobody served, short centres.

Steck's calibration counts over every topic that can occur; a context that does not say
how many there are must size its tables from the data, including a topic that only a click
history still holds (its items retired). A step that serves nobody has no calibration but
still has an interest entropy. A topic whose live items nearly cancel has a short mean,
which is still normalised to a unit centre.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from test_topic_measures import make_items, make_snapshot

from simlab.metrics.topics import TopicMetric, topic_centres_of

ALPHA = TopicMetric.calibration_alpha
# topics 0, 1 live (items 10, 11 of topic 0; 12 of topic 1); topic 6 only in histories
ITEMS = make_items([0, 0, 1], [[1, 0], [0.8, 0.6], [0, 1]])
INTERESTS = [[1, 0], [0, 1]]


def steck(hist_topics, slate_topics) -> float:
    """``KL(h || (1 - a) q + a h)`` of one user, from plain lists (natural log)."""
    known = [t for t in hist_topics if t >= 0]
    out = 0.0
    for topic in set(known):
        h = known.count(topic) / len(known)
        q = slate_topics.count(topic) / len(slate_topics)
        out += h * math.log(h / ((1 - ALPHA) * q + ALPHA * h))
    return out


@pytest.mark.parametrize(
    "ctx",
    [
        SimpleNamespace(user_range=None),  # the tables are sized from the data
        SimpleNamespace(user_range=None, num_topics=2),  # fewer than the histories hold
        SimpleNamespace(user_range=None, num_topics=40),
    ],
    ids=["from-data", "too-few", "world"],
)
def test_steck_calibration_counts_topics_only_histories_hold(ctx):
    """A history click on topic 6 (no live item) counts with its share, whatever the ctx says."""
    hist = [[6, 6, 0, -1], [1, 6, -1, -1]]
    snap = make_snapshot(ITEMS, [0, 1], [[10, 12], [11, 10]], INTERESTS, INTERESTS, None, hist)
    got = TopicMetric(ctx).measure(snap)["echo/calibration_kl"]
    want = (steck([6, 6, 0, -1], [0, 1]) + steck([1, 6, -1, -1], [0, 0])) / 2
    assert got == pytest.approx(want, rel=1e-12)


def test_users_without_history_are_left_out_of_steck_calibration():
    """Only users with at least one known click enter the mean; none at all gives NaN."""
    snap = make_snapshot(
        ITEMS, [0, 1], [[10, 12], [11, 10]], INTERESTS, INTERESTS, None, [[-1, -1], [1, 0]]
    )
    got = TopicMetric(SimpleNamespace(user_range=None)).measure(snap)["echo/calibration_kl"]
    assert got == pytest.approx(steck([1, 0], [0, 0]), rel=1e-12)
    empty = make_snapshot(
        ITEMS, [0, 1], [[10, 12], [11, 10]], INTERESTS, INTERESTS, None, [[-1, -1], [-1, -1]]
    )
    row = TopicMetric(SimpleNamespace(user_range=None)).measure(empty)
    assert math.isnan(row["echo/calibration_kl"])


def test_nobody_served_keeps_population_columns_and_nan_calibration():
    """No served user (histories of shape (0, H)): entropy and degeneracy, NaN per-slate ones."""
    snap = make_snapshot(
        ITEMS, [], np.zeros((0, 2)), INTERESTS, [[1, 0], [1, 0]], None, np.zeros((0, 3))
    )
    row = TopicMetric(SimpleNamespace(user_range=None, num_topics=7)).measure(snap)
    for col in ("echo/calibration_kl", "echo/interest_calibration_kl", "echo/filter_bubble"):
        assert math.isnan(row[col]), col
    assert 0 < row["echo/interest_entropy"] < 1
    assert row["echo/interest_degeneracy"] == pytest.approx(math.sqrt(0.5**2 + 0.5**2))


@pytest.mark.parametrize("scale", [0.01, 0.3, 1.0, 7.0])
def test_short_topic_means_are_normalised_and_cancelling_ones_are_zero(scale):
    """A topic mean of any length gives a unit centre; exactly cancelling items give 0."""
    latent = scale * np.array([[1.0, 0.2], [-0.9, 0.0], [0.0, 1.0], [0.0, -1.0], [0.6, 0.8]])
    present, centres = topic_centres_of(np.array([3, 3, 5, 5, 9]), latent.astype(np.float32))
    np.testing.assert_array_equal(present, [3, 5, 9])
    np.testing.assert_allclose(centres[0], np.array([0.1, 0.2]) / math.sqrt(0.05), rtol=1e-5)
    np.testing.assert_array_equal(centres[1], [0.0, 0.0])
    np.testing.assert_allclose(centres[2], [0.6, 0.8], rtol=1e-6)


def test_declared_ranges():
    """Entropy and filter bubble in [0, 1]; degeneracy and the KLs non-negative."""
    assert TopicMetric.ranges == {
        "echo/interest_entropy": (0.0, 1.0),
        "echo/interest_degeneracy": (0.0, None),
        "echo/calibration_kl": (0.0, None),
        "echo/interest_calibration_kl": (0.0, None),
        "echo/filter_bubble": (0.0, 1.0),
    }


@pytest.mark.parametrize("scale", [200.0, 1e3, 1e5])
def test_topic_mixes_that_underflow_to_zero_keep_every_column_finite(scale):
    """Interests so long that ``p(k)`` underflows to 0 off the nearest centre: 0 log 0 = 0.

    Topics 0, 1, 3 (centres (1, 0), (0, 1), (-1, 0)); user 0 at ``(s, 0)`` is shown two
    topic-0 items, user 1 at ``(0, s)`` a topic-1 and a topic-3 item. Their mixes are one-hot
    in float64, so the KLs are ``1 log(1 / 1) = 0`` and ``1 log(1 / (0.99 / 2 + 0.01))``.
    """
    items = make_items([0, 0, 1, 3], [[1, 0], [1, 0], [0, 1], [-1, 0]])
    interests = [[scale, 0], [0, scale]]
    snap = make_snapshot(items, [0, 1], [[10, 11], [12, 13]], interests, interests)
    row = TopicMetric(SimpleNamespace(user_range=None)).measure(snap)
    half = (1 - ALPHA) / 2 + ALPHA
    assert row["echo/interest_calibration_kl"] == pytest.approx(math.log(1 / half) / 2, rel=1e-12)
    assert row["echo/interest_entropy"] == 0.0
    assert row["echo/filter_bubble"] == 0.75
