"""PairSet: sets of (user, item) pairs behave like Python sets of pairs."""

from __future__ import annotations

import numpy as np
import pytest

from simlab.batch import PAD
from simlab.keysets import PairSet


def _random_pairs(rng, n, users, items):
    return rng.integers(0, users, n), rng.integers(0, items, n)


@pytest.mark.parametrize("seed", range(8))
def test_pairset_matches_python_sets(seed):
    """Counts, items, membership and intersections equal those of Python sets, many cases."""
    rng = np.random.default_rng(seed)
    users, items = int(rng.integers(2, 40)), int(rng.integers(1, 3000))
    ref: dict[int, set[int]] = {}
    s = PairSet()
    for _ in range(int(rng.integers(1, 6))):  # several batches, with repeats across them
        u, i = _random_pairs(rng, int(rng.integers(0, 200)), users, items)
        s.add(u, i)
        for a, b in zip(u.tolist(), i.tolist(), strict=True):
            ref.setdefault(a, set()).add(b)
    ids = np.arange(users)
    assert s.count(ids).tolist() == [len(ref.get(u, ())) for u in ids]
    indptr, got = s.items_of(ids[::-1])
    for row, u in enumerate(ids[::-1]):
        assert got[indptr[row] : indptr[row + 1]].tolist() == sorted(ref.get(int(u), ()))
    qu, qi = _random_pairs(rng, 300, users, items)
    want = [b in ref.get(a, ()) for a, b in zip(qu.tolist(), qi.tolist(), strict=True)]
    assert s.contains(qu, qi).tolist() == want
    a, b = rng.integers(0, users, 50), rng.integers(0, users, 50)
    inter = [len(ref.get(x, set()) & ref.get(y, set())) for x, y in zip(a, b, strict=True)]
    assert s.intersection_sizes(a, b).tolist() == inter
    assert len(s) == sum(len(v) for v in ref.values())


def test_retain_items_and_padded_round_trip():
    """Pairs of items not kept are dropped; the padded per-user form round-trips."""
    s = PairSet()
    s.add(np.array([0, 0, 2, 2, 2]), np.array([5, 9, 1, 5, 7]))
    s.retain_items(np.array([1, 5, 7]))
    padded = s.to_padded(np.arange(3))
    assert padded.tolist() == [[5, PAD, PAD], [PAD, PAD, PAD], [1, 5, 7]]
    back = PairSet.from_padded(np.arange(3), padded)
    np.testing.assert_array_equal(back.keys, s.keys)
    assert PairSet().to_padded(np.arange(2)).shape == (2, 0)


@pytest.mark.parametrize(
    ("users", "items", "match"),
    [
        ([-1], [0], "user ids"),
        ([2**31], [0], "user ids"),
        ([0], [-3], "item ids"),
        ([0], [2**32], "item ids"),
    ],
)
def test_out_of_range_ids_are_refused(users, items, match):
    """Ids that do not fit the 64-bit key are refused with the range in the message."""
    with pytest.raises(ValueError, match=match):
        PairSet().add(np.array(users), np.array(items))
