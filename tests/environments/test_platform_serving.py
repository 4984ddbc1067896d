"""The platform's serving rules against loop references: retrieval, start-up, depth, re-rank."""

from __future__ import annotations

import numpy as np
import pytest

from simlab.batch import PAD, Catalog, Feedback, Observation, Slates
from simlab.environments.platform import ClickHistory, Platform
from simlab.errors import ScenarioError
from simlab.rng import Stream
from simlab.scenario import PlatformSection
from simlab.world_context import WorldContext

SEED, DIM = 5, 3


def platform(rerankers=(), **fields) -> Platform:
    """A platform of the given section fields on a small world."""
    ctx = WorldContext(SEED, DIM, 2, 1.0, 10, fields.get("slate_size", 10), 4, num_users=50)
    return Platform(PlatformSection(**fields), ctx, list(rerankers))


def catalog(n: int, new: int = 0, first: int = 0) -> Catalog:
    """``n`` live items with gappy ids from ``first``; the last ``new`` were published now."""
    ids = first + 3 * np.arange(n, dtype=np.int64) + 1
    age = np.where(np.arange(n) >= n - new, 0, 1 + np.arange(n) % 4).astype(np.int64)
    feats = np.arange(n * DIM, dtype=np.float32).reshape(n, DIM)
    return Catalog(ids, feats, np.arange(n, dtype=np.int64) % 3, age)


def permutation(cat: Catalog, t: int) -> list[int]:
    """The step's permutation of the live items (ordered by their keyed uniforms)."""
    u = Stream(SEED, "platform/retrieval_perm").uniform(cat.item_ids, t)
    return [int(i) for _, i in sorted(zip(u.tolist(), cat.item_ids.tolist(), strict=True))]


def offsets(users: np.ndarray, t: int, n: int) -> list[int]:
    """Each user's personal offset into the permutation."""
    u = Stream(SEED, "platform/retrieval_offset").uniform(users, t)
    return [min(int(x * n), n - 1) for x in u.tolist()]


@pytest.mark.parametrize(
    "k, depth, rr, n, width, ranked",
    [
        (5, 0, 0, 40, 5, 5),  # no re-ranker: the agent ranks K
        (5, 0, 1, 40, 5, 15),  # re-rankers: 3 K by default
        (5, 0, 1, 12, 5, 12),  # ... at most every candidate
        (5, 7, 2, 40, 5, 7),  # an explicit depth
        (5, 30, 1, 20, 5, 20),
        (0, 0, 0, 9, 9, 9),  # slate_size 0: every candidate
        (0, 4, 1, 9, 9, 9),  # ... whatever the re-rankers
    ],
)
def test_slate_width_and_depth(k, depth, rr, n, width, ranked):
    """K is slate_size (every candidate at 0); the agent ranks K, or the re-rank depth."""
    p = platform([object()] * rr, slate_size=k, rerank_depth=depth)
    assert p.slate_width(n) == width
    assert p.depth(n) == ranked


@pytest.mark.parametrize("steps", [0, 1, 4])
def test_startup_steps_are_the_first_ones(steps):
    """Step t is a start-up step exactly when t < startup_steps."""
    p = platform(startup_steps=steps)
    assert [t for t in range(8) if p.in_startup(t)] == list(range(steps))


@pytest.mark.parametrize("n, c", [(30, 0), (30, 30), (30, 45), (5, 0), (5, 5)])
def test_all_live_items_are_shared_candidates(n, c):
    """Without a pre-selection (or a catalog no larger), every user gets every live item."""
    cat = catalog(n)
    users = np.array([2, 7, 8])
    cands, shared = platform(slate_size=5, max_candidates=c).candidates(3, users, cat)
    assert shared and cands.shape == (3, n) and cands.strides[0] == 0
    np.testing.assert_array_equal(cands, np.tile(cat.item_ids, (3, 1)))


@pytest.mark.parametrize("t", [0, 3])
@pytest.mark.parametrize("n, c", [(31, 30), (40, 7), (12, 1)])
def test_preselection_is_a_window_of_the_steps_permutation(n, c, t):
    """Each user reads ``c`` consecutive entries of the permutation from a personal offset."""
    cat = catalog(n, first=10)
    users = np.array([0, 4, 5, 19, 33])
    cands, shared = platform(slate_size=1, max_candidates=c).candidates(t, users, cat)
    perm, start = permutation(cat, t), offsets(users, t, n)
    assert not shared and cands.shape == (users.size, c)
    for row, s in zip(cands.tolist(), start, strict=True):
        assert row == [perm[(s + j) % n] for j in range(c)]
    # nothing consumed is the same as no rule
    none = (np.zeros(users.size + 1, np.int64), np.zeros(0, np.int64))
    again, _ = platform(slate_size=1, max_candidates=c).candidates(t, users, cat, none)
    np.testing.assert_array_equal(again, cands)


@pytest.mark.parametrize("n, k", [(4, 5), (0, 1), (0, 0)])
def test_fewer_live_items_than_the_slate_is_a_clear_error(n, k):
    """A catalog smaller than K (or empty) stops with the field and both counts."""
    p = platform(slate_size=k)
    with pytest.raises(ScenarioError, match=rf"platform.slate_size: {k} is more than the {n} live"):
        p.candidates(2, np.array([1]), catalog(n))


def test_a_catalog_of_exactly_k_items_serves():
    """K live items are enough for a slate of K."""
    cands, _ = platform(slate_size=4).candidates(0, np.array([1, 2]), catalog(4))
    assert cands.shape == (2, 4)


@pytest.mark.parametrize("new, k", [(6, 5), (5, 5), (1, 0), (3, 1)])
def test_startup_new_serves_the_steps_items_to_everyone(new, k):
    """With startup_candidates 'new', start-up candidates are the items of age 0, shared."""
    cat = catalog(20, new=new)
    p = platform(slate_size=k, startup_steps=2, startup_candidates="new", max_candidates=3)
    cands, shared = p.candidates(1, np.array([3, 4]), cat)
    assert shared and cands.strides[0] == 0
    np.testing.assert_array_equal(cands, np.tile(cat.item_ids[-new:], (2, 1)))
    # after the start-up the usual retrieval serves
    cands, shared = p.candidates(2, np.array([3, 4]), cat)
    assert not shared and cands.shape == (2, 3)


@pytest.mark.parametrize("new, k", [(4, 5), (0, 1), (0, 0)])
def test_too_few_new_items_at_startup_is_a_clear_error(new, k):
    """'new' with fewer of the step's items than K (at least one) names the step and counts."""
    p = platform(slate_size=k, startup_steps=3, startup_candidates="new")
    msg = rf"startup_candidates: 'new' .* step 2 published {new}, fewer than slate_size {k}"
    with pytest.raises(ScenarioError, match=msg):
        p.candidates(2, np.array([0]), catalog(20, new=new))


def test_startup_all_uses_the_usual_retrieval():
    """startup_candidates 'all' serves every live item during the start-up too."""
    cat = catalog(20, new=2)
    cands, shared = platform(slate_size=2, startup_steps=3).candidates(0, np.array([1]), cat)
    assert shared
    np.testing.assert_array_equal(cands[0], cat.item_ids)


def unconsumed_reference(cat, users, consumed, t, c):
    """Loop reference of the candidates without each user's consumed items."""
    n, (indptr, items) = cat.num_items, consumed
    per_user = [set(items[indptr[b] : indptr[b + 1]].tolist()) for b in range(users.size)]
    most = max(len(s) for s in per_user)
    width = n if c == 0 or c + most >= n else c + most
    size = n - most if c == 0 else min(c, n - most)
    if c == 0 and all(len(s) == most for s in per_user):
        return [[i for i in cat.item_ids.tolist() if i not in s] for s in per_user]
    perm, start = permutation(cat, t), offsets(users, t, n)
    rows = []
    for s, mine in zip(start, per_user, strict=True):
        window = [perm[(s + j) % n] for j in range(width)]
        rows.append([i for i in window if i not in mine][:size])
    return rows


def consumed_of(cat, rng, counts):
    """``(indptr, items)``: ``counts[b]`` distinct live items per user, in random order."""
    rows = [rng.choice(cat.item_ids, m, replace=False) for m in counts]
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return indptr, np.concatenate(rows).astype(np.int64)


@pytest.mark.parametrize("t", [0, 2])
@pytest.mark.parametrize(
    "n, c, counts",
    [
        (30, 0, [3, 3, 3, 3]),  # every user consumed as many: the catalog without them
        (30, 0, [3, 0, 1, 3]),
        (30, 8, [3, 0, 1, 2]),  # a window 'most' longer
        (30, 8, [0, 0, 1, 0]),
        (30, 27, [3, 0, 2, 1]),  # c + most reaches n: the whole permutation
        (30, 26, [3, 3, 3, 3]),
        (12, 10, [2, 5, 0, 1]),  # fewer left than c
        (30, 4, [6, 6, 6, 6]),
    ],
)
def test_consumed_items_leave_the_candidates(n, c, counts, t):
    """Each row is the user's window with the consumed items dropped, cut to its size."""
    cat = catalog(n, first=3)
    rng = np.random.default_rng(n + c + sum(counts) + t)
    users = np.array([1, 6, 9, 40])
    consumed = consumed_of(cat, rng, counts)
    cands, shared = platform(slate_size=2, max_candidates=c).candidates(t, users, cat, consumed)
    assert not shared
    assert cands.tolist() == unconsumed_reference(cat, users, consumed, t, c)


@pytest.mark.parametrize("c", [0, 8, 30, 40])
@pytest.mark.parametrize("users", [[1, 6, 9, 40], [7], []])
def test_nothing_consumed_serves_as_without_the_rule(c, users):
    """Users who consumed no live item get the candidates of a platform without the rule."""
    cat = catalog(30, first=3)
    users = np.array(users, np.int64)
    nothing = (np.zeros(users.size + 1, np.int64), np.zeros(0, np.int64))
    p = platform(slate_size=2, max_candidates=c)
    for t in (0, 3):
        cands, shared = p.candidates(t, users, cat, nothing)
        want, want_shared = p.candidates(t, users, cat)
        assert shared == want_shared == (c == 0 or c >= 30)
        assert cands.shape == (users.size, min(c or 30, 30))
        np.testing.assert_array_equal(cands, want)


@pytest.mark.parametrize("c, most, k, left", [(0, 6, 5, 4), (4, 7, 4, 3), (0, 10, 1, 0)])
def test_too_little_left_to_consume_is_a_clear_error(c, most, k, left):
    """Fewer unconsumed live items than K stop with the step and the counts."""
    cat = catalog(10)
    consumed = (np.array([0, 1, 1 + most]), cat.item_ids[np.r_[0, 0:most]])
    p = platform(slate_size=k, max_candidates=c)
    msg = rf"exclude_consumed: at step 4 a user has consumed {most} of the 10 live items, leaving"
    with pytest.raises(ScenarioError, match=msg + rf" {left}, fewer than slate_size {k}"):
        p.candidates(4, np.array([0, 1]), cat, consumed)


def test_exactly_k_left_to_consume_serves():
    """K unconsumed live items are enough."""
    cat = catalog(10)
    consumed = (np.array([0, 1, 6]), cat.item_ids[np.r_[0, 0:5]])
    cands, _ = platform(slate_size=5).candidates(1, np.array([0, 1]), cat, consumed)
    assert cands.shape == (2, 5)


def observation(p: Platform, t: int, users: np.ndarray, cat: Catalog) -> Observation:
    """An observation of ``users`` at step ``t`` (empty click histories)."""
    p.clicks = ClickHistory(0, 50, 4)
    return p.observe(t, users, cat, np.zeros((users.size, 2), np.float32))


@pytest.mark.parametrize("k", [1, 3, 7])
def test_startup_slates_are_the_top_of_a_keyed_random_order(k):
    """Each user's start-up slate is its candidates ordered by keyed uniforms, cut to k."""
    cat = catalog(12)
    p = platform(slate_size=k, max_candidates=9)
    obs = observation(p, 3, np.array([2, 5, 11]), cat)
    u = Stream(SEED, "platform/startup").uniform(obs.user_ids, 3, size=9)
    slates = p.startup_slates(obs, k)
    assert isinstance(slates, Slates)
    np.testing.assert_array_equal(slates.user_ids, obs.user_ids)
    for b in range(3):
        row = sorted(range(9), key=lambda j, b=b: (u[b, j], j))[:k]
        assert slates.item_ids[b].tolist() == obs.candidates[b, row].tolist()


def test_observation_holds_the_candidates_depth_and_histories():
    """observe: the candidates, the agent's depth, and the click histories (or the ones given)."""
    cat = catalog(30)
    users = np.array([4, 9])
    p = platform([object()], slate_size=4, max_candidates=20)
    p.clicks = ClickHistory(0, 50, 4)
    fb = Feedback(0, users, np.array([[1, 4], [7, 10]]), np.array([1, -1]), np.ones(2, np.float32))
    p.clicks.record(fb)
    obs = p.observe(2, users, cat, np.ones((2, 2), np.float32))
    assert obs.step == 2 and obs.slate_size == 12 and not obs.shared_candidates
    np.testing.assert_array_equal(obs.candidates, p.candidates(2, users, cat)[0])
    assert obs.history.tolist() == [[4, PAD, PAD, PAD], [PAD] * 4]
    given = np.full((2, 4), 99, np.int64)
    obs = p.observe(2, users, cat, np.ones((2, 2), np.float32), history=given)
    assert np.shares_memory(obs.history, given)  # used as given (a read-only view), not copied
    np.testing.assert_array_equal(obs.history, given)


def test_history_without_click_histories_is_a_clear_error():
    """Reading histories before the users' click histories are attached names the attribute."""
    with pytest.raises(RuntimeError, match="click histories"):
        platform().history(np.array([0]))


class Reverse:
    """A re-ranker that reverses each row and records what it was given."""

    def __init__(self, tag: int) -> None:
        self.tag, self.seen = tag, []

    def rerank(self, obs, items):
        """Reverse, and append the tag as the last column (to see the order of application)."""
        self.seen.append(items.copy())
        return np.concatenate([items[:, ::-1], np.full((items.shape[0], 1), self.tag)], axis=1)


@pytest.mark.parametrize("k", [0, 2, 4])
def test_rerankers_apply_in_order_then_the_slate_is_cut(k):
    """Re-rankers run in order on the previous one's output; the result is cut to K."""
    a, b = Reverse(100), Reverse(200)
    p = platform([a, b], slate_size=k)
    ranked = Slates(np.array([1, 3]), np.array([[1, 2, 3], [4, 5, 6]]))
    out = p.rerank(None, ranked)
    np.testing.assert_array_equal(b.seen[0], [[3, 2, 1, 100], [6, 5, 4, 100]])
    full = [[100, 1, 2, 3, 200], [100, 4, 5, 6, 200]]
    assert out.item_ids.tolist() == [row[: k or 5] for row in full]
    assert out.item_ids.flags.c_contiguous
    np.testing.assert_array_equal(out.user_ids, ranked.user_ids)
