"""What Chaney's recommenders share: the cumulative log, the item book and known-first ranking."""

from __future__ import annotations

import numpy as np
import pytest
from test_chaney_agents import _catalog, _obs

from simlab.agents.cumulative import CumulativeLog, ItemBook, rank_known_first
from simlab.batch import Feedback, Log
from simlab.rng import Stream

FEATS = np.eye(8, 3)


def _log_of(steps: dict[int, list[tuple[int, list[int], int]]]) -> Log:
    """{step: [(user, slate, clicked position or -1), ...]} as a log over 8 items."""
    fbs = []
    for step, rows in sorted(steps.items()):
        users = np.array([r[0] for r in rows], np.int64)
        slates = np.array([r[1] for r in rows], np.int64)
        pos = np.array([r[2] for r in rows], np.int64)
        fbs.append(Feedback(step, users, slates, pos, np.ones(len(rows), np.float32)))
    return Log.of_steps(fbs, np.arange(8, dtype=np.int64), FEATS.astype(np.float32))


def test_log_keeps_clicks_at_any_position_and_skips_rows_without_one():
    """A consumption is the clicked item wherever it sits in the slate; no click, no row."""
    h = CumulativeLog()
    assert (h.horizon, h.users.size) == (-1, 0)
    h.ingest(_log_of({0: [(0, [1, 2, 3], 2), (1, [4, 5, 6], -1), (2, [7, 0, 1], 0)]}))
    assert list(zip(h.users.tolist(), h.items.tolist(), strict=True)) == [(0, 3), (2, 7)]
    assert h.horizon == 0


def test_log_takes_no_step_twice_even_when_an_old_window_comes_back():
    """Steps at or before the horizon are never added again, whatever window holds them."""
    h = CumulativeLog()
    h.ingest(_log_of({0: [(0, [1, 2], 0)], 1: [(1, [2, 3], 1)]}))
    h.ingest(_log_of({0: [(0, [1, 2], 0)]}))  # an older window: nothing new
    h.ingest(_log_of({1: [(1, [2, 3], 1)], 2: [(2, [4, 5], 1)]}))
    assert list(zip(h.users.tolist(), h.items.tolist(), strict=True)) == [(0, 1), (1, 3), (2, 5)]
    assert h.horizon == 2
    h.ingest(_log_of({3: [(0, [1, 2], -1)]}))  # a step without clicks: a later horizon
    assert h.horizon == 3 and h.users.size == 3


def test_item_book_publication_steps_and_known_items():
    """Catalog items are published at step - age, log items at -1 (no later than the log).

    ``known(h)`` holds every item published at or before ``h``.
    """
    book = ItemBook(3)
    book.add_log(_log_of({4: [(0, [1, 2], 0)]}))
    assert book.published.tolist() == [-1] * 8
    assert book.known(-1).tolist() == list(range(8))
    book = ItemBook(3)
    cat = _catalog(6, 8, FEATS, np.array([0, 1, 2, 3, 4, 5, 6, 6]))
    book.add_catalog(_obs(6, cat))
    assert book.published.tolist() == [0, 1, 2, 3, 4, 5, 6, 6]
    for h in range(-1, 8):
        assert book.known(h).tolist() == [i for i in range(8) if book.published[i] <= h]
    assert book.known(5).tolist() == [0, 1, 2, 3, 4, 5] and book.known(-1).size == 0
    # an item seen again keeps its first features and publication step
    later = _catalog(9, 8, FEATS * 2, np.full(8, 9))
    book.add_catalog(_obs(9, later))
    assert book.published.tolist() == [0, 1, 2, 3, 4, 5, 6, 6]
    np.testing.assert_array_equal(book.features, FEATS)


@pytest.mark.parametrize("case", range(10))
def test_items_after_the_horizon_come_last_whatever_the_scores(case):
    """Items newer than the horizon come last in the order of their draws, the others first.

    Negative, zero, huge and tied scores.
    """
    rng = np.random.default_rng(case)
    n, step = 8, 5
    published = rng.integers(0, 6, n)
    horizon = int(rng.integers(0, 5))
    cat = _catalog(step, n, FEATS, published)
    users = np.arange(4)
    obs = _obs(step, cat, users=users)
    scores = rng.choice([-1e6, -3.0, -0.5, 0.0, 0.25, 7.0, 1e9], size=(4, n))
    tb = Stream(case, "t")
    got = rank_known_first(scores, obs, horizon, tb)
    late = published > horizon
    for u in range(4):
        row = got[u].tolist()
        known = [i for i in row if not late[i]]
        assert row[: len(known)] == known  # every late item after every known one
        s = scores[u, known]
        assert (np.diff(s) <= 0).all()
        tail = row[len(known) :]
        u_draws = tb.uniform((int(users[u]) << 32) | np.arange(n), step)
        assert tail == sorted(np.flatnonzero(late).tolist(), key=lambda i: u_draws[i])
