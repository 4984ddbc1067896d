"""The platform's log window, its retrain snapshots and the deploy lag, against by-hand sets."""

from __future__ import annotations

import numpy as np
import pytest

from simlab.batch import Catalog, Feedback
from simlab.environments.platform import Platform
from simlab.scenario import PlatformSection
from simlab.world_context import WorldContext

DIM = 3


def platform(rerankers=(), **fields) -> Platform:
    """A platform of the given section fields on a small world."""
    ctx = WorldContext(0, DIM, 2, 1.0, 10, fields.get("slate_size", 10), 4, num_users=20)
    return Platform(PlatformSection(**fields), ctx, list(rerankers))


def catalog(t: int) -> Catalog:
    """Items 0..39 whose features name the step: ``[id, t, 0]``."""
    ids = np.arange(40, dtype=np.int64)
    feats = np.stack([ids, np.full(40, t), np.zeros(40)], axis=1).astype(np.float32)
    return Catalog(ids, feats, ids % 3, np.zeros(40, np.int64))


def feedback(t: int, rng: np.random.Generator, k: int = 3) -> Feedback:
    """A few users served ``k`` items of 0..39, some clicking."""
    users = np.sort(rng.choice(20, 4, replace=False)).astype(np.int64)
    slates = np.stack([rng.choice(40, k, replace=False) for _ in users]).astype(np.int64)
    return Feedback(t, users, slates, rng.integers(-1, k, 4), rng.random(4).astype(np.float32))


class Spy:
    """An agent (and a re-ranker) that records what it is given."""

    def __init__(self) -> None:
        self.logs, self.updates = [], []

    def retrain(self, log) -> None:
        """Record the log."""
        self.logs.append(log)

    def update(self, fb) -> None:
        """Record the feedback."""
        self.updates.append(fb.step)


@pytest.mark.parametrize("every, lag, window", [(1, 1, 1), (2, 2, 3), (3, 1, 2), (2, 5, 4)])
def test_snapshots_hold_the_window_and_serve_after_the_lag(every, lag, window):
    """A retrain at the end of t snapshots the last ``window`` steps; it is deployed at t + lag."""
    rng = np.random.default_rng(every * 10 + lag)
    spy = Spy()
    p = platform([spy], slate_size=3, retrain_every=every, deploy_lag=lag, log_window=window)
    steps = 12
    fbs = [feedback(t, rng) for t in range(steps)]
    retrained = []
    for t in range(steps):
        n = p.deploy_due(t, spy)
        retrained.append(n)
        p.record(t, fbs[t], catalog(t))
    assert spy.updates == list(range(steps))
    snaps = [s for s in range(steps) if (s + 1) % every == 0]
    expect = [sum(1 for s in snaps if s + lag == t) for t in range(steps)]
    assert retrained == expect
    served = [s for s in snaps if s + lag < steps]
    assert len(spy.logs) == len(served)
    for s, log in zip(served, spy.logs, strict=True):
        kept = [fbs[x] for x in range(max(0, s - window + 1), s + 1)]
        np.testing.assert_array_equal(log.step, np.concatenate([[f.step] * 4 for f in kept]))
        np.testing.assert_array_equal(log.user_ids, np.concatenate([f.user_ids for f in kept]))
        np.testing.assert_array_equal(log.slates, np.concatenate([f.slates for f in kept]))
        np.testing.assert_array_equal(
            log.clicked_pos, np.concatenate([f.clicked_pos for f in kept])
        )
        np.testing.assert_array_equal(log.engagement, np.concatenate([f.engagement for f in kept]))
        # every item shown in the window, with the features of the last step it was shown
        last = {}
        for f in kept:
            for i in f.slates.ravel().tolist():
                last[i] = f.step
        np.testing.assert_array_equal(log.feature_ids, sorted(last))
        expected = [[i, last[i], 0] for i in sorted(last)]
        np.testing.assert_array_equal(log.features, np.array(expected, np.float32))


def test_deploy_due_retrains_every_overdue_snapshot_in_order():
    """Snapshots due by step t are all retrained, oldest first; later ones wait."""
    rng = np.random.default_rng(3)
    spy = Spy()
    p = platform(slate_size=3, retrain_every=1, deploy_lag=2, log_window=1)
    for t in range(4):
        p.record(t, feedback(t, rng), catalog(t))
    assert p.deploy_due(1, spy) == 0
    assert p.deploy_due(3, spy) == 2  # the snapshots of steps 0 and 1
    assert [int(log.step[0]) for log in spy.logs] == [0, 1]
    assert p.deploy_due(3, spy) == 0
    assert p.deploy_due(9, spy) == 2
    assert [int(log.step[0]) for log in spy.logs] == [0, 1, 2, 3]


@pytest.mark.parametrize("k", [0, 4])
def test_empty_log_has_the_slate_width_and_the_feature_dimension(k):
    """Before any step the log is empty, with (0, K) slates and (0, d) features."""
    log = platform(slate_size=k).log()
    assert log.slates.shape == (0, k) and log.features.shape == (0, DIM)
    for name in ("step", "user_ids", "clicked_pos", "engagement", "feature_ids"):
        assert getattr(log, name).shape == (0,)
    assert log.slates.dtype == np.int64 and log.features.dtype == np.float32
    assert log.engagement.dtype == np.float32


def test_shown_items_given_by_the_caller_set_the_logged_features():
    """``shown`` replaces the slates' unique items (none shown: no features)."""
    rng = np.random.default_rng(4)
    p = platform(slate_size=3, log_window=5, retrain_every=100)
    p.record(0, feedback(0, rng), catalog(0), shown=np.array([2, 30]))
    p.record(1, feedback(1, rng), catalog(1), shown=np.zeros(0, np.int64))
    log = p.log()
    np.testing.assert_array_equal(log.feature_ids, [2, 30])
    np.testing.assert_array_equal(log.features, [[2, 0, 0], [30, 0, 0]])


def test_log_on_shards_keeps_steps_shown_items_and_features():
    """With the feedback on the user shards, the central log holds (step, shown, features)."""
    rng = np.random.default_rng(5)
    p = platform(slate_size=3, retrain_every=2, log_window=3)
    p.log_on_shards = True
    fbs = [feedback(t, rng) for t in range(4)]
    for t, fb in enumerate(fbs):
        p.record(t, fb, catalog(t))
    snaps = [log for _, log in p._pending]
    assert [[s for s, _, _ in snap] for snap in snaps] == [[0, 1], [1, 2, 3]]
    for t, shown, feats in snaps[1]:
        np.testing.assert_array_equal(shown, np.unique(fbs[t].slates))
        np.testing.assert_array_equal(feats[:, 0], shown)
        assert (feats[:, 1] == t).all()
