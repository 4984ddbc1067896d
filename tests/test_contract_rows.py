"""The per-user half of the slate contract (``check_rows``) against a reference, many cases.

Classes, each over random catalogs (ids with gaps and far from 0), slates short and long
(both the sorting check and the dense tally, chosen by the slate's length against the
catalog's), with and without per-user candidates, one row broadcast to every user:
valid slates return each item's catalog row; an item that is not live, a repeated item
(the row's smallest or not) and an item outside the user's candidates are each refused
naming the agent, and the last naming the first such item in row order and its user.
The user model's half (arrivals, click positions) names the first bad value.
"""

from __future__ import annotations

import numpy as np
import pytest

from simlab.batch import Catalog, Feedback
from simlab.contract import check_arrivals, check_feedback, check_rows
from simlab.errors import AgentContractError, ModelContractError


def _catalog(rng, n: int, start: int | None = None) -> Catalog:
    """``n`` live items with increasing ids from ``start``, with gaps between them or none.

    ``start`` is random when not given: 0, or far from 0.
    """
    start = int(rng.choice([0, 1000])) if start is None else start
    gaps = rng.integers(1, int(rng.choice([2, 4])), n)
    ids = start + np.cumsum(gaps) - gaps[0]
    return Catalog(
        item_ids=ids.astype(np.int64),
        features=np.zeros((n, 2), np.float32),
        creator=np.zeros(n, np.int64),
        age=np.zeros(n, np.int64),
    )


def _case(seed: int, long: bool, with_candidates: bool):
    """Users, slates drawn from each user's candidates (distinct), candidates, catalog."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(8, 60))
    cat = _catalog(rng, n)
    b = int(rng.integers(1, 12))
    c = n if not with_candidates else int(rng.integers(max(2, n // 2), n + 1))
    k = int(rng.integers(max(2, -(-n // 8)), c + 1)) if long else int(rng.integers(2, 5))
    k = min(k, c)
    cands = np.stack([rng.choice(cat.item_ids, c, replace=False) for _ in range(b)])
    slates = np.stack([rng.choice(row, k, replace=False) for row in cands])
    users = np.sort(rng.choice(10_000, b, replace=False)).astype(np.int64)
    return rng, users, slates, (cands if with_candidates else None), cat


CASES = [(seed, long, cands) for seed in range(10) for long in (False, True) for cands in (0, 1)]


@pytest.mark.parametrize(("seed", "long", "with_candidates"), CASES)
def test_valid_slates_give_their_catalog_rows(seed, long, with_candidates):
    """Every item's row in the catalog, in the slate's shape."""
    _, users, slates, cands, cat = _case(seed, long, with_candidates)
    rows = check_rows(slates, users, cands, cat, "agent x")
    want = [[int(np.flatnonzero(cat.item_ids == i)[0]) for i in row] for row in slates]
    assert np.asarray(rows).tolist() == want


@pytest.mark.parametrize(("seed", "long", "with_candidates"), CASES)
def test_an_item_that_is_not_live_is_refused(seed, long, with_candidates):
    """An id between, beyond or below the live ids: named with the agent."""
    rng, users, slates, cands, cat = _case(seed, long, with_candidates)
    ids = cat.item_ids
    gaps = np.setdiff1d(np.arange(ids[0], ids[-1]), ids)
    gone = [int(ids[-1]) + int(rng.integers(1, 5)), -int(rng.integers(1, 5))]
    gone = ([*gone, int(rng.choice(gaps))] if gaps.size else gone)[seed % (2 + bool(gaps.size))]
    b, j = int(rng.integers(slates.shape[0])), int(rng.integers(slates.shape[1]))
    slates[b, j] = gone
    with pytest.raises(AgentContractError) as e:
        check_rows(slates, users, cands, cat, "agent x")
    assert str(e.value) == f"agent x returned item ids not in the live catalog: [{gone}]"


@pytest.mark.parametrize(("seed", "long", "with_candidates"), CASES)
def test_a_repeated_item_is_refused(seed, long, with_candidates):
    """A row that shows one item twice (its smallest or another one), in any row."""
    rng, users, slates, cands, cat = _case(seed, long, with_candidates)
    b = int(rng.integers(slates.shape[0]))
    row = slates[b]
    target = row.max() if seed % 2 else row.min()  # a repeat of the largest or smallest
    j = int(np.flatnonzero(row != target)[0])
    slates[b, j] = target
    with pytest.raises(AgentContractError, match="^agent x returned a slate with a duplicate"):
        check_rows(slates, users, cands, cat, "agent x")


@pytest.mark.parametrize(("seed", "long"), [(s, lg) for s in range(12) for lg in (False, True)])
def test_an_item_outside_the_candidates_is_refused_naming_the_first(seed, long):
    """Live items the user was not offered: the first in row order is named, with its user."""
    rng, users, slates, cands, cat = _case(seed, long, True)
    outside = [np.setdiff1d(cat.item_ids, row) for row in cands]
    bad = [b for b in range(len(users)) if outside[b].size]
    if not bad:
        cands = cands[:, :-1]  # offer one item fewer; it stays in no slate
        slates = np.stack([row[np.isin(row, c)][:1] for row, c in zip(slates, cands, strict=True)])
        outside = [np.setdiff1d(cat.item_ids, row) for row in cands]
        bad = [b for b in range(len(users)) if outside[b].size]
    picks = rng.choice(bad, min(len(bad), 2), replace=False)
    for b in picks:  # one or two users get an item from outside their candidates
        j = int(rng.integers(slates.shape[1]))
        new = rng.choice(np.setdiff1d(outside[b], slates[b]))
        slates[b, j] = new
    first = min((int(b), int(np.flatnonzero(~np.isin(slates[b], cands[b]))[0])) for b in picks)
    with pytest.raises(AgentContractError) as e:
        check_rows(slates, users, cands, cat, "agent x")
    b, j = first
    assert str(e.value) == (
        f"agent x returned item {slates[b, j]} for user {users[b]}, which is not among the "
        "user's candidates"
    )


@pytest.mark.parametrize("long", [False, True])
def test_one_row_broadcast_to_every_user_is_checked_once(long):
    """A non-personalised ranking (a stride-0 view): rows of every user, a repeat refused."""
    rng = np.random.default_rng(3)
    cat = _catalog(rng, 24)
    k = 20 if long else 2
    row = rng.choice(cat.item_ids, k, replace=False)
    users = np.arange(5, dtype=np.int64)
    rows = check_rows(np.broadcast_to(row, (5, k)), users, None, cat, "agent x")
    assert np.asarray(rows).shape == (5, k)
    assert (cat.item_ids[np.asarray(rows)] == row).all()
    row[1] = row[0]
    with pytest.raises(AgentContractError, match="duplicate"):
        check_rows(np.broadcast_to(row, (5, k)), users, None, cat, "agent x")


@pytest.mark.parametrize(("b", "k"), [(0, 3), (4, 0), (0, 0)])
def test_empty_slates_pass(b, k):
    """No users, or slates of length 0: nothing to check, an empty array of rows back."""
    cat = _catalog(np.random.default_rng(0), 10)
    slates = np.zeros((b, k), np.int64)
    cands = np.broadcast_to(cat.item_ids, (b, 10))
    assert np.asarray(check_rows(slates, np.arange(b), cands, cat, "a")).shape == (b, k)


@pytest.mark.parametrize(
    ("ids", "named"),
    [([5, 3, 12], "id 3"), ([4, 12, 2], "id 12"), ([4, 5, 5], "ids not increasing"),
     ([6, 5], "ids not increasing"), ([10], "id 10"), ([3], "id 3")],
)  # fmt: skip
def test_arrivals_outside_the_range_name_the_first(ids, named):
    """Users 4..9: the first id outside the range, else the order, is named."""
    with pytest.raises(ModelContractError) as e:
        check_arrivals(np.array(ids), 4, 10, "users m")
    assert str(e.value).startswith(f"users m: arrivals returned {named}")


@pytest.mark.parametrize(
    ("pos", "named"),
    [([0, 3, -1], 3), ([1, -2, 5], -2), ([-1, 0, 4], 4), ([7, 0, 0], 7), ([0, 2, -3], -3)],
)
def test_click_positions_outside_the_slate_name_the_first(pos, named):
    """Slates of 3: -1 (no click) to 2 pass; the first position outside is named."""
    users = np.arange(3, dtype=np.int64)
    slates = np.arange(9, dtype=np.int64).reshape(3, 3)
    fb = Feedback(0, users, slates, np.array(pos, np.int64), np.zeros(3, np.float32))
    with pytest.raises(ModelContractError) as e:
        check_feedback(fb, users, slates, "users m")
    assert str(e.value) == (
        f"users m: respond returned click position {named}, expected -1 (no click) to 2"
    )
    ok = Feedback(0, users, slates, np.array([-1, 0, 2], np.int64), np.zeros(3, np.float32))
    assert check_feedback(ok, users, slates, "users m") is ok


@pytest.mark.parametrize("start", [0, 1, 50])
@pytest.mark.parametrize("k", [1, 2])
def test_the_largest_id_outside_one_users_candidates_is_not_the_next_users_smallest(start, k):
    """Rows are told apart by an offset per user.

    The catalog's largest id, shown to a user who was not offered it, is refused though the
    next user was offered the smallest.
    """
    cat = _catalog(np.random.default_rng(0), 40, start)
    ids = cat.item_ids
    cands = np.stack([ids[:-1], ids[:-1]])  # nobody is offered the largest id
    slates = np.stack([np.r_[ids[1:k], ids[-1]], ids[:k]])
    with pytest.raises(AgentContractError) as e:
        check_rows(slates, np.array([3, 4]), cands, cat, "agent x")
    assert str(e.value).startswith(f"agent x returned item {ids[-1]} for user 3, which is not")
