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


@pytest.mark.parametrize(
    ("users", "items"),
    [([0], [0]), ([2**31 - 1], [0]), ([0], [2**32 - 1]), ([2**31 - 1, 2**30], [2**32 - 1, 7])],
)
def test_ids_at_the_edges_of_the_key_are_held(users, items):
    """The largest user (2**31 - 1) and item (2**32 - 1) ids fit: held and read back."""
    s = PairSet()
    s.add(np.array(users), np.array(items))
    assert s.contains(np.array(users), np.array(items)).all()
    order = np.argsort(users)
    indptr, got = s.items_of(np.array(users)[order])
    assert got.tolist() == np.array(items)[order].tolist()


def test_no_users_give_an_empty_padded_array():
    """Zero users: a (0, 0) padded array, whatever the set holds."""
    s = PairSet()
    s.add(np.array([1]), np.array([4]))
    assert s.to_padded(np.zeros(0, np.int64)).shape == (0, 0)


@pytest.mark.parametrize("seed", range(6))
def test_join_csr_equals_the_items_of_the_whole_range(seed):
    """Consecutive user ranges' CSR lists joined = the CSR list of all their users at once."""
    from simlab.keysets import join_csr

    rng = np.random.default_rng(seed)
    users = int(rng.integers(3, 30))
    s = PairSet()
    s.add(*_random_pairs(rng, int(rng.integers(0, 120)), users, 50))
    cuts = np.sort(rng.choice(np.arange(1, users), int(rng.integers(0, 4)), replace=False))
    bounds = [0, *cuts.tolist(), users]
    parts = [s.items_of(np.arange(lo, hi)) for lo, hi in zip(bounds, bounds[1:], strict=False)]
    indptr, items = join_csr(parts)
    want_ptr, want_items = s.items_of(np.arange(users))
    assert indptr.dtype == np.int64
    assert indptr.tolist() == want_ptr.tolist() and items.tolist() == want_items.tolist()


def test_join_csr_of_no_parts_is_none():
    """Nothing to join (no parts, or parts without the rule's lists) gives None."""
    from simlab.keysets import join_csr

    assert join_csr([]) is None and join_csr([None, None]) is None


@pytest.mark.parametrize("seed", range(8))
def test_live_items_of_keeps_exactly_the_live_items(seed):
    """Each user's held items that are live, in CSR form.

    Users with none live (the last one included) get empty rows.
    """
    from simlab.keysets import live_items_of

    rng = np.random.default_rng(seed)
    users = int(rng.integers(1, 12))
    s = PairSet()
    s.add(*_random_pairs(rng, int(rng.integers(0, 60)), users, 30))
    live = np.sort(rng.choice(30, int(rng.integers(0, 31)), replace=False))
    if seed % 2:  # the last user holds only items that are not live
        s.add(np.array([users]), np.array([100]))
        users += 1
    ids = np.arange(users)
    indptr, items = live_items_of(s, ids, live)
    full_ptr, full = s.items_of(ids)
    assert indptr.shape == (users + 1,)
    for b in range(users):
        held = full[full_ptr[b] : full_ptr[b + 1]]
        assert items[indptr[b] : indptr[b + 1]].tolist() == [i for i in held if i in live]
