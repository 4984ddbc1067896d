"""The interleave-new re-ranker and ``uniform_subsets``, the slots it gives new items.

Classes: the rule applied by hand (Floyd's slots, the order draws, the others in order) on
lists of 1 to 40 items and batches of 1 to 29 users; uniform positions and orders; lists
without new items, empty batches and lists; a user's list whatever else is in the batch;
``uniform_subsets`` for every subset size and its distribution (each of the C(n, k) subsets
and each position equally likely) from the keyed draws the re-ranker uses.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
from test_chaney_agents import CTX

from simlab.agents.interleave import InterleaveNewReranker, uniform_subsets
from simlab.batch import Catalog, Observation
from simlab.rng import Stream
from simlab.world import WorldContext


def _catalog(step: int, n: int, published: np.ndarray) -> Catalog:
    """``n`` items with ids 0..n-1 published at ``published`` (features unused)."""
    return Catalog(
        item_ids=np.arange(n, dtype=np.int64),
        features=np.zeros((n, 2), np.float32),
        creator=np.zeros(n, np.int64),
        age=(step - np.asarray(published)).astype(np.int64),
    )


def _obs(step, catalog, users=None, k=None):
    """Every user's candidates are the whole catalog."""
    users = np.arange(6) if users is None else users
    return Observation(
        step=step,
        user_ids=users,
        user_features=np.zeros((users.shape[0], 1), np.float32),
        history=np.full((users.shape[0], 1), -1),
        candidates=np.broadcast_to(catalog.item_ids, (users.shape[0], catalog.num_items)),
        catalog=catalog,
        slate_size=k or catalog.num_items,
        shared_candidates=True,
    )


def test_interleave_puts_new_items_at_uniform_positions_and_keeps_the_rest_in_order():
    """New items land at uniformly random positions; the others keep the agent's order."""
    n, b = 12, 4000
    published = np.array([0] * 9 + [5] * 3)  # items 9, 10, 11 are new at step 5
    cat = _catalog(5, n, published)
    obs = _obs(5, cat, users=np.arange(b))
    rr = InterleaveNewReranker(InterleaveNewReranker.Params(), CTX)
    rng = np.random.default_rng(0)
    ranked = np.stack([rng.permutation(n) for _ in range(b)])
    out = rr.rerank(obs, ranked)
    np.testing.assert_array_equal(np.sort(out, axis=1), np.sort(ranked, axis=1))
    old = ranked[ranked < 9].reshape(b, 9)
    np.testing.assert_array_equal(out[out < 9].reshape(b, 9), old)
    pos = np.argwhere(out >= 9)[:, 1]
    counts = np.bincount(pos, minlength=n)  # each position holds a new item 3/12 of the time
    expected = b * 3 / n
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 31.3  # chi-square 0.999 quantile, 11 degrees of freedom
    first = out[np.arange(b)[:, None], np.argsort(out >= 9, axis=1, kind="stable")[:, -3:]]
    assert len({tuple(r) for r in first.tolist()}) == 6  # all 3! orders of the new items occur


def _interleave_by_hand(ranked, new, u):
    """One row of the interleave rule, position by position, from the row's draws."""
    length, count = ranked.shape[0], int(new.sum())
    if count == 0:
        return ranked.copy()
    slots = set()  # Floyd's algorithm on the first draws
    for i, j in enumerate(range(length - count, length)):
        t = min(int(np.floor(u[i] * (j + 1))), j)
        slots.add(j if t in slots else t)
    order = sorted(range(count), key=lambda c: u[count + c])  # the next draws order them
    incoming = iter(ranked[np.flatnonzero(new)[order]].tolist())
    staying = iter(ranked[~new].tolist())
    return np.array([next(incoming) if p in slots else next(staying) for p in range(length)])


@pytest.mark.parametrize("case", range(40))
def test_interleave_equals_the_rule_applied_by_hand(case):
    """Every row equals the interleave rule applied by hand from the row's draws.

    The new items fill the positions Floyd's algorithm picks from the row's first ``count``
    draws, in the order of its next ``count``; the others keep their order. Lists of 1 to 40
    items, 0 to every item new, ``max_age`` 0 to 3, batches of 1 to 29 users.
    """
    rng = np.random.default_rng(case)
    n, b, step = int(rng.integers(1, 41)), int(rng.integers(1, 30)), 7
    b = 1 if case % 5 == 1 else b  # one user: still interleaved
    max_age = int(rng.integers(0, 4))
    published = step - rng.integers(0, 6, n)
    if case % 4 == 0:
        published[:] = step  # every item new: the rows' new items fill them
    cat = _catalog(step, n, published)
    users = rng.choice(1000, b, replace=False)
    obs = _obs(step, cat, users=users)
    length = int(rng.integers(1, n + 1))
    ranked = np.stack([rng.permutation(n)[:length] for _ in range(b)])
    ctx = dataclasses.replace(CTX, seed=case)
    got = InterleaveNewReranker(InterleaveNewReranker.Params(max_age=max_age), ctx).rerank(
        obs, ranked
    )
    new = cat.age[ranked] <= max_age
    most = int(new.sum(axis=1).max())
    u = Stream(case, "rerank/interleave-new").uniform(users, step, size=2 * most)
    for r in range(b):
        np.testing.assert_array_equal(got[r], _interleave_by_hand(ranked[r], new[r], u[r]))


def test_interleave_age_setting_is_an_age():
    """``max_age`` 0 is this step's items (the smallest allowed); -1 is refused."""
    InterleaveNewReranker.Params(max_age=0)
    with pytest.raises(ValueError, match="max_age"):
        InterleaveNewReranker.Params(max_age=-1)


def test_interleave_leaves_lists_without_new_items_alone():
    """No item of age <= max_age: the ranking is returned unchanged."""
    cat = _catalog(5, 6, np.zeros(6, np.int64))
    obs = _obs(5, cat)
    ranked = np.tile(np.arange(6)[::-1], (6, 1))
    rr = InterleaveNewReranker(InterleaveNewReranker.Params(max_age=2), CTX)
    np.testing.assert_array_equal(rr.rerank(obs, ranked), ranked)


@pytest.mark.parametrize("case", range(30))
def test_each_row_is_a_sorted_set_of_its_size_inside_the_ground_set(case):
    """Rows of sizes 0..length: distinct, increasing, in range, -1 after the row's size."""
    rng = np.random.default_rng(case)
    length = int(rng.integers(1, 51))
    b = int(rng.integers(1, 40))
    count = rng.integers(0, length + 1, b)
    count[0] = length  # the whole set
    if b > 1:
        count[1] = 0  # the empty set
    m = int(count.max()) + int(rng.integers(0, 3))  # spare columns are allowed
    u = Stream(case, "test/subsets").uniform(np.arange(b), 0, size=m)
    got = uniform_subsets(u, count, length)
    assert got.shape == (b, m)
    for r in range(b):
        row, c = got[r], int(count[r])
        assert (row[c:] == -1).all()
        assert ((row[:c] >= 0) & (row[:c] < length)).all()
        assert (np.diff(row[:c]) > 0).all()  # distinct and increasing
    np.testing.assert_array_equal(
        uniform_subsets(u, np.full(b, length), length)[:, :length],
        np.broadcast_to(np.arange(length), (b, length)),
    )


@pytest.mark.parametrize(("length", "count"), [(4, 1), (5, 2), (6, 3), (7, 2), (6, 5)])
def test_every_subset_is_equally_likely(length, count):
    """The C(n, k) subsets occur equally often over 20,000 keyed rows (chi-square 0.999)."""
    b = 20_000
    u = Stream(length * 10 + count, "test/subsets").uniform(np.arange(b), 3, size=count)
    got = uniform_subsets(u, np.full(b, count), length)
    index = {s: i for i, s in enumerate(itertools.combinations(range(length), count))}
    freq = np.bincount([index[tuple(r)] for r in got.tolist()], minlength=len(index))
    k = len(index)
    expected = b / k
    chi2 = ((freq - expected) ** 2 / expected).sum()
    # Wilson-Hilferty 0.999 quantile of chi-square with k - 1 degrees of freedom
    df = k - 1
    bound = df * (1 - 2 / (9 * df) + 3.09 * math.sqrt(2 / (9 * df))) ** 3
    assert chi2 < bound, (freq, bound)


def test_positions_are_equally_likely_in_long_lists():
    """In lists of 200, each position holds one of 10 slots with probability 10/200."""
    b, length, count = 8_000, 200, 10
    u = Stream(1, "test/subsets").uniform(np.arange(b), 0, size=count)
    got = uniform_subsets(u, np.full(b, count), length)
    freq = np.bincount(got.ravel(), minlength=length)
    expected = b * count / length
    chi2 = ((freq - expected) ** 2 / expected).sum()
    assert chi2 < 270.0  # chi-square 0.999 quantile, 199 degrees of freedom (~267.6)
    # the last position is as likely as the first (Floyd's j-or-t rule is not biased to j)
    assert abs(freq[-1] - freq[0]) < 6 * math.sqrt(expected)


@pytest.mark.parametrize(("users", "length"), [(0, 5), (0, 0), (3, 0)])
def test_the_re_ranker_returns_empty_batches_and_lists_as_they_are(users, length):
    """No user, or lists of no item: nothing to interleave, the input comes back."""
    n, step = 6, 4
    cat = _catalog(step, n, np.full(n, step))  # every item new
    obs = _obs(step, cat, users=np.arange(users, dtype=np.int64), k=max(length, 1))
    ranked = np.tile(np.arange(length, dtype=np.int64), (users, 1))
    got = InterleaveNewReranker(InterleaveNewReranker.Params(), CTX).rerank(obs, ranked)
    assert got.shape == (users, length)


@pytest.mark.parametrize("seed", range(8))
def test_a_users_list_does_not_depend_on_who_else_is_in_the_batch(seed):
    """Rows with different numbers of new items: each row as when its user is served alone.

    (User shards serve different batches: the same user must get the same list.)
    """
    rng = np.random.default_rng(seed)
    n, step, b = 30, 9, 7
    published = np.where(rng.random(n) < 0.4, step, step - 3)  # ~40% new
    cat = _catalog(step, n, published)
    length = 12
    ranked = np.stack([rng.permutation(n)[:length] for _ in range(b)])  # new counts differ
    users = rng.choice(500, b, replace=False)
    ctx = WorldContext(seed=seed, dim=2, num_topics=2, topic_spread=1.0, steps=10,
                       slate_size=length, history_length=1, num_users=500)  # fmt: skip
    rr = InterleaveNewReranker(InterleaveNewReranker.Params(), ctx)

    def serve(rows):
        return rr.rerank(_obs(step, cat, users=users[rows], k=length), ranked[rows])

    together = serve(np.arange(b))
    assert len(set((cat.age[ranked] == 0).sum(axis=1).tolist())) > 1  # counts do differ
    for r in range(b):
        np.testing.assert_array_equal(together[r], serve(np.array([r]))[0])
