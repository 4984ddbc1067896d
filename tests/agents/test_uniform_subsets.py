"""``uniform_subsets``: the slots the interleave re-ranker gives new items (Floyd's algorithm).

Classes: every subset size from none to the whole set, ground sets of 1 to 50 positions,
rows of different sizes in one call; and the distribution — each of the C(n, k) subsets
equally likely, each position equally likely — from the keyed draws the re-ranker uses.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from simlab.agents.interleave import InterleaveNewReranker, uniform_subsets
from simlab.batch import Catalog, Observation
from simlab.rng import Stream
from simlab.world import WorldContext


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
    cat = Catalog(
        item_ids=np.arange(n, dtype=np.int64),
        features=np.zeros((n, 2), np.float32),
        creator=np.zeros(n, np.int64),
        age=np.zeros(n, np.int64),  # every item new
    )
    ids = np.arange(users, dtype=np.int64)
    obs = Observation(
        step=step,
        user_ids=ids,
        user_features=np.zeros((users, 1), np.float32),
        history=np.full((users, 1), -1),
        candidates=np.broadcast_to(cat.item_ids, (users, n)),
        catalog=cat,
        slate_size=max(length, 1),
        shared_candidates=True,
    )
    ctx = WorldContext(seed=1, dim=2, num_topics=2, topic_spread=1.0, steps=5, slate_size=0,
                       history_length=1, num_users=max(users, 1))  # fmt: skip
    ranked = np.tile(np.arange(length, dtype=np.int64), (users, 1))
    got = InterleaveNewReranker(InterleaveNewReranker.Params(), ctx).rerank(obs, ranked)
    assert got.shape == (users, length)


@pytest.mark.parametrize("seed", range(8))
def test_a_users_list_does_not_depend_on_who_else_is_in_the_batch(seed):
    """Rows with different numbers of new items: each row as when its user is served alone.

    (User shards serve different batches: the same user must get the same list.)
    """
    rng = np.random.default_rng(seed)
    n, step, b = 30, 9, 7
    published = np.where(rng.random(n) < 0.4, step, step - 3)  # ~40% new
    cat = Catalog(
        item_ids=np.arange(n, dtype=np.int64),
        features=np.zeros((n, 2), np.float32),
        creator=np.zeros(n, np.int64),
        age=(step - published).astype(np.int64),
    )
    length = 12
    ranked = np.stack([rng.permutation(n)[:length] for _ in range(b)])  # new counts differ
    users = rng.choice(500, b, replace=False)
    ctx = WorldContext(seed=seed, dim=2, num_topics=2, topic_spread=1.0, steps=10,
                       slate_size=length, history_length=1, num_users=500)  # fmt: skip
    rr = InterleaveNewReranker(InterleaveNewReranker.Params(), ctx)

    def serve(rows):
        obs = Observation(
            step=step,
            user_ids=users[rows],
            user_features=np.zeros((rows.shape[0], 1), np.float32),
            history=np.full((rows.shape[0], 1), -1),
            candidates=np.broadcast_to(cat.item_ids, (rows.shape[0], n)),
            catalog=cat,
            slate_size=length,
            shared_candidates=True,
        )
        return rr.rerank(obs, ranked[rows])

    together = serve(np.arange(b))
    assert len(set((cat.age[ranked] == 0).sum(axis=1).tolist())) > 1  # counts do differ
    for r in range(b):
        np.testing.assert_array_equal(together[r], serve(np.array([r]))[0])
