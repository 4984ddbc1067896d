"""The creator pool by hand: rows, keyed draws, topic moves, exposure, exits and entries."""

from __future__ import annotations

import numpy as np
import pytest

from simlab.environments.creator_pool import CreatorPool
from simlab.rng import Stream

SEED, DIM, TOPICS = 9, 5, 6

# the pool's arithmetic is on booleans and counts: any numpy warning is a fault
pytestmark = pytest.mark.filterwarnings("error")


def pool(humans: int = 4, aigc: int = 2, spread: float = 0.4) -> CreatorPool:
    """A pool on fixed topic centres ``centres[j] = j * ones``."""
    centres = np.arange(TOPICS, dtype=np.float32)[:, None] * np.ones(DIM, np.float32)
    return CreatorPool(SEED, centres, spread, humans, aigc)


def expected_row(c: int, spread: float = 0.4):
    """Creator ``c``'s topic, offset and vector from its keyed draws."""
    topic = int(Stream(SEED, "content/creator_topic").integers(np.array([c]), 0, TOPICS)[0])
    offset = spread * Stream(SEED, "content/creator_vec").normal(np.array([c]), 0, size=DIM)[0]
    return topic, offset, topic + offset


@pytest.mark.parametrize("humans, aigc", [(4, 2), (1, 0), (3, 5)])
def test_initial_creators_are_humans_first_then_aigc(humans, aigc):
    """Rows 0..h-1 human, then AIGC; all active, entered -1, not exited, no low streak."""
    p = pool(humans, aigc)
    n = humans + aigc
    assert p.num_creators == n and p.table().num_creators == n
    assert p.source.tolist() == [0] * humans + [1] * aigc and p.source.dtype == np.int8
    assert p.active.all() and (p.entered == -1).all() and (p.exited == -1).all()
    assert (p.low_streak == 0).all()
    for c in range(n):
        topic, offset, vec = expected_row(c)
        assert p.topic[c] == topic
        np.testing.assert_allclose(p.offset[c], offset, rtol=1e-6)
        np.testing.assert_allclose(p.vec[c], vec, rtol=1e-6)
    assert p.vec.dtype == p.offset.dtype == np.float32
    assert p.active_of(0).tolist() == list(range(humans))
    assert p.active_of(1).tolist() == list(range(humans, n))


def test_added_creators_continue_the_ids_with_the_same_draws():
    """``add`` appends rows whose draws are keyed by the new ids, entered at the step."""
    p = pool(3, 1)
    ids = p.add(np.array([1, 0, 1]), step=7)
    assert ids.tolist() == [4, 5, 6]
    assert p.source.tolist() == [0, 0, 0, 1, 1, 0, 1]
    assert p.entered.tolist() == [-1] * 4 + [7] * 3
    assert p.exited.tolist() == [-1] * 7 and p.active.all() and p.low_streak.tolist() == [0] * 7
    for c in ids:
        topic, _, vec = expected_row(int(c))
        assert p.topic[c] == topic
        np.testing.assert_allclose(p.vec[c], vec, rtol=1e-6)
    # a pool built with the extra creators upfront draws the same rows
    big = pool(3, 4)
    np.testing.assert_array_equal(big.vec, p.vec)
    np.testing.assert_array_equal(big.topic, p.topic)


def test_move_keeps_the_personal_offset():
    """A moved creator's vector is the new topic's centre plus its own offset."""
    p = pool()
    before = p.vec.copy()
    p.move(np.array([1, 4]), np.array([5, 0]))
    assert p.topic[1] == 5 and p.topic[4] == 0
    np.testing.assert_allclose(p.vec[1], 5 + p.offset[1], rtol=1e-6)
    np.testing.assert_allclose(p.vec[4], p.offset[4], rtol=1e-6)
    others = [0, 2, 3, 5]
    np.testing.assert_array_equal(p.vec[others], before[others])


def test_exposure_sums_impressions_per_creator():
    """Impressions per creator over their items; creators without items get 0."""
    p = pool()
    out = p.exposure(np.array([2, 0, 2, 5]), np.array([3.0, 1.0, 4.0, 2.0]))
    assert out.tolist() == [1.0, 0.0, 7.0, 0.0, 0.0, 2.0]
    assert p.exposure(np.zeros(0, np.int64), np.zeros(0)).tolist() == [0.0] * 6


def settle_reference(active, streak, exited, step, exposure, threshold, patience):
    """One step of the exit rule, creator by creator."""
    for c in range(len(active)):
        if threshold <= 0:
            return
        low = active[c] and exposure[c] < threshold
        streak[c] = streak[c] + 1 if low else 0
        if active[c] and streak[c] >= patience:
            active[c], exited[c] = False, step


@pytest.mark.parametrize("threshold, patience", [(2.0, 1), (2.0, 3), (1.0, 2), (0.0, 1)])
def test_exits_follow_the_streak_rule(threshold, patience):
    """A low step (exposure below the threshold) adds one; ``patience`` in a row exits."""
    p = pool(5, 3)
    rng = np.random.default_rng(int(threshold * 10) + patience)
    active, streak, exited = [True] * 8, [0] * 8, [-1] * 8
    for step in range(8):
        exposure = rng.integers(0, 4, 8).astype(float)
        exposure[step % 8] = threshold  # exactly the threshold is not low
        p.settle(step, exposure, threshold, patience)
        settle_reference(active, streak, exited, step, exposure, threshold, patience)
        assert p.active.tolist() == active
        assert p.exited.tolist() == exited
        assert p.low_streak.tolist() == streak
    if threshold > 0:
        assert not all(active)
    assert p.active_of(0).tolist() == [c for c in range(5) if active[c]]
    assert p.table().active.tolist() == active


@pytest.mark.parametrize("lowered", [1, 2, 3])
def test_a_streak_past_a_lowered_patience_exits(lowered):
    """Creators whose low streak already reaches a lowered patience exit at the next low step."""
    p = pool(3, 2)
    low = np.array([0.0, 5.0, 0.0, 0.0, 5.0])  # creators 0, 2 and 3 have low steps
    for step in range(3):
        p.settle(step, low, 1.0, 4)
    assert p.low_streak.tolist() == [3, 0, 3, 3, 0] and p.active.all()
    p.settle(3, np.array([0.0, 5.0, 0.0, 9.0, 5.0]), 1.0, lowered)
    assert p.low_streak.tolist() == [4, 0, 4, 0, 0]  # creator 3 was not low this time
    assert p.active.tolist() == [False, True, False, True, True]
    assert p.exited.tolist() == [3, -1, 3, -1, -1]
    assert p.table().num_creators == p.num_creators == 5 == len(p.table().exited)


@pytest.mark.parametrize("share", [0.0, 0.3, 1.0])
def test_entrants_are_aigc_with_the_share(share):
    """``enter``: ``count`` new creators, each AIGC when its keyed uniform is below the share."""
    p = pool(2, 1)
    ids = p.enter(4, 6, share)
    assert ids.tolist() == list(range(3, 9))
    u = Stream(SEED, "content/creator_source").uniform(ids, 0)
    assert p.source[3:].tolist() == (u < share).astype(int).tolist()
    assert p.entered[3:].tolist() == [4] * 6
    for count in (0, -2):
        assert p.enter(5, count, share).tolist() == [] and p.num_creators == 9
    table = p.table()
    assert table.entered.tolist() == [-1] * 3 + [4] * 6
    assert table.source is p.source and table.exited is p.exited
