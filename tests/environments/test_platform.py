"""Tests of the platform's click histories: layout, state format and deferred histories."""

from __future__ import annotations

import copy
import gc
import pickle

import numpy as np
import pytest

from simlab.batch import PAD, Deferred, Feedback
from simlab.environments.platform import ClickHistory


class RingReference:
    """The plain ring buffer ``ClickHistory`` replaced (click ``c`` in column ``c % H``)."""

    def __init__(self, lo: int, hi: int, length: int) -> None:
        self.lo, self.length = lo, length
        self.clicks = np.full((hi - lo, length), PAD, np.int64)
        self.num_clicks = np.zeros(hi - lo, np.int64)

    def get(self, user_ids: np.ndarray) -> np.ndarray:
        """Most recent first, PAD-padded."""
        h, loc = self.length, user_ids - self.lo
        n = self.num_clicks[loc][:, None]
        hist = self.clicks[loc[:, None], (n - 1 - np.arange(h)) % h]
        return np.where(np.arange(h) < n, hist, PAD)

    def record(self, fb: Feedback) -> None:
        """Append each clicking user's clicked item."""
        who = fb.user_ids[fb.clicked] - self.lo
        self.clicks[who, self.num_clicks[who] % self.length] = fb.clicked_items[fb.clicked]
        self.num_clicks[who] += 1


def random_feedback(rng: np.random.Generator, t: int, lo: int, hi: int) -> Feedback:
    """Some of users ``lo..hi-1`` served 3 items, some clicking."""
    users = np.flatnonzero(rng.random(hi - lo) < 0.7) + lo
    slates = rng.integers(0, 500, (users.size, 3))
    clicked = rng.integers(-1, 3, users.size)
    return Feedback(t, users, slates, clicked, np.zeros(users.size, np.float32))


@pytest.mark.parametrize("length", [1, 2, 5])
@pytest.mark.parametrize("lo, hi", [(0, 40), (30, 70)])
def test_histories_match_a_plain_ring_buffer(length, lo, hi):
    """``get`` and ``state_dict`` give what a plain ring buffer gives, step after step."""
    rng = np.random.default_rng(length + lo)
    ours, ref = ClickHistory(lo, hi, length), RingReference(lo, hi, length)
    for t in range(3 * length + 4):
        fb = random_feedback(rng, t, lo, hi)
        ours.record(fb)
        ref.record(fb)
        ask = np.sort(rng.choice(np.arange(lo, hi), hi - lo - 3, replace=False))
        np.testing.assert_array_equal(ours.get(ask), ref.get(ask))
        np.testing.assert_array_equal(ours.state_dict()["clicks"], ref.clicks)
        np.testing.assert_array_equal(ours.state_dict()["num_clicks"], ref.num_clicks)


def test_state_round_trips_through_load():
    """A history restored from ``state_dict`` shows and continues the same clicks."""
    rng = np.random.default_rng(0)
    a = ClickHistory(0, 20, 4)
    for t in range(7):
        a.record(random_feedback(rng, t, 0, 20))
    b = ClickHistory(0, 20, 4)
    b.load_state_dict(a.state_dict())
    fb = random_feedback(rng, 7, 0, 20)
    a.record(fb)
    b.record(fb)
    np.testing.assert_array_equal(a.get(np.arange(20)), b.get(np.arange(20)))


def test_deferred_history_is_built_only_when_read():
    """A deferred history nothing reads is never built; one that is read equals ``get``."""
    rng = np.random.default_rng(1)
    h = ClickHistory(0, 10, 3)
    h.record(random_feedback(rng, 0, 0, 10))
    d = h.deferred(np.arange(10))
    assert isinstance(d, Deferred) and not d.resolved
    np.testing.assert_array_equal(d.resolve(), h.get(np.arange(10)))


def test_deferred_history_kept_past_new_clicks_shows_the_old_clicks():
    """A deferred history still referenced is built before new clicks change the buffers."""
    rng = np.random.default_rng(2)
    h = ClickHistory(0, 10, 3)
    h.record(random_feedback(rng, 0, 0, 10))
    before = h.get(np.arange(10))
    d = h.deferred(np.arange(10))
    h.record(random_feedback(rng, 1, 0, 10))
    assert d.resolved
    np.testing.assert_array_equal(d.resolve(), before)


def test_dropped_deferred_history_is_not_built():
    """A deferred history dropped before new clicks costs nothing."""
    h = ClickHistory(0, 10, 3)
    calls = []
    h.get = lambda ids: calls.append(1) or np.zeros((ids.size, 3), np.int64)
    d = h.deferred(np.arange(10))
    del d
    gc.collect()
    h.record(random_feedback(np.random.default_rng(3), 0, 0, 10))
    assert calls == []


def test_history_with_pending_deferred_pickles_and_copies():
    """Pending (weakly referenced) deferred histories do not stop pickling or copying."""
    h = ClickHistory(0, 10, 3)
    h.record(random_feedback(np.random.default_rng(4), 0, 0, 10))
    d = h.deferred(np.arange(10))
    for other in (pickle.loads(pickle.dumps(h)), copy.deepcopy(h)):
        np.testing.assert_array_equal(other.get(np.arange(10)), d.resolve())


@pytest.mark.parametrize("length", [1, 3])
def test_topics_follow_the_clicks(length):
    """``topics`` shows each recent click's topic, most recent first, PAD where none."""
    rng = np.random.default_rng(length)
    ours, ref = ClickHistory(10, 30, length), RingReference(10, 30, length)
    for t in range(2 * length + 3):
        fb = random_feedback(rng, t, 10, 30)
        topics = fb.user_ids + 1000 * t  # (B,) one topic per served user
        ours.record(fb, topics=topics)
        # the reference records the topics as if they were the clicked items
        as_items = Feedback(
            t, fb.user_ids, topics[:, None], np.where(fb.clicked, 0, -1), fb.engagement
        )
        ref.record(as_items)
        users = np.arange(10, 30)
        np.testing.assert_array_equal(ours.topics(users), ref.get(users))
        np.testing.assert_array_equal(ours.state_dict()["topics"], ref.clicks)
    untopical = ClickHistory(0, 5, 2)
    untopical.record(random_feedback(rng, 0, 0, 5))
    assert (untopical.topics(np.arange(5)) == PAD).all()


def test_clicks_property_is_the_ring_in_write_order():
    """``clicks`` puts click ``c`` in column ``c % H``."""
    h = ClickHistory(0, 2, 3)
    for t, item in enumerate([5, 6, 7, 8]):
        h.record(Feedback(t, np.array([1]), np.array([[item]]), np.array([0]), np.ones(1, "f4")))
    assert h.clicks.tolist() == [[PAD] * 3, [8, 6, 7]]
    assert h.num_clicks.tolist() == [0, 4]


def test_load_without_topics_gives_unknown_topics():
    """An older state without topics restores the clicks, with every topic PAD."""
    rng = np.random.default_rng(6)
    a = ClickHistory(0, 8, 3)
    fb = random_feedback(rng, 0, 0, 8)
    a.record(fb, topics=fb.user_ids)
    state = a.state_dict()
    del state["topics"]
    b = ClickHistory(0, 8, 3)
    b.load_state_dict(state)
    np.testing.assert_array_equal(b.get(np.arange(8)), a.get(np.arange(8)))
    assert (b.topics(np.arange(8)) == PAD).all()


@pytest.mark.parametrize(
    "key, shape, what",
    [
        ("clicks", (8, 2), "histories"),
        ("clicks", (7, 3), "histories"),
        ("num_clicks", (9,), "histories"),
        ("topics", (8, 4), "topics"),
        ("topics", (8,), "topics"),
    ],
)
def test_load_of_a_state_of_another_shape_is_a_clear_error(key, shape, what):
    """A state of other users or another length stops with the expected and actual shapes."""
    state = ClickHistory(0, 8, 3).state_dict()
    state[key] = np.zeros(shape, np.int64)
    h = ClickHistory(0, 8, 3)
    with pytest.raises(ValueError, match=rf"Expects click {what} of shape \(8, 3\), actual shape"):
        h.load_state_dict(state)
