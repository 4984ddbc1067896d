"""The agents' shared helpers: which ranking path runs, loop references, counters, propensities.

Classes (the ranking paths' agreement with numpy is in ``test_agents.py``):

* ``top_indices`` dispatch: a full sort for slates of at least half the row, numpy below
  ``_TORCH_TOPK_MIN`` entries or for other dtypes, torch above; the numpy reference itself
  against a loop (best first, ties by column, NaN last);
* ``top_k`` with shared scores, ``catalog_gather`` with one value per item or per user;
* ``random_slates`` with as many slots as candidates: each row a permutation;
* ``uniform_propensities``: ``1 / C`` where random, 1 elsewhere; the random-until-trained mixin;
* ``ItemCounts``: sums per id over any ids; its capacity grows only when needed, doubling;
* ``require_torch`` without torch: the error names the fix.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from test_bandits import make_catalog, make_obs

from simlab.agents import base
from simlab.agents.base import (
    ItemCounts,
    RandomUntilTrainedMixin,
    catalog_gather,
    random_slates,
    require_torch,
    top_indices,
    top_k,
    uniform_propensities,
)
from simlab.errors import DependencyNotInstalled
from simlab.rng import Stream


def _spy(monkeypatch, name: str) -> list:
    calls: list = []
    real = getattr(base, name)

    def wrapped(scores, k):
        calls.append(scores.shape)
        return real(scores, k)

    monkeypatch.setattr(base, name, wrapped)
    return calls


@pytest.mark.parametrize(
    ("b", "c", "k", "dtype", "path"),
    [
        (4, 10, 5, "f", "sorted"),  # 2 k >= c
        (4, 10, 10, "i", "sorted"),
        (4, 10, 4, "f", "numpy"),  # short slate, small matrix
        (4, 10, 11, "f", "numpy"),  # k > c: the reference's own error
        (128, 128, 5, "f", "torch"),  # exactly _TORCH_TOPK_MIN entries
        (127, 129, 5, "f", "numpy"),  # one entry fewer
        (129, 128, 5, "i", "torch"),
        (300, 60, 30, "f", "sorted"),
    ],
)
def test_each_matrix_is_ranked_by_its_path(monkeypatch, b, c, k, dtype, path):
    """Which of the sorted, numpy and torch paths ranks a matrix, by shape and k."""
    assert base._TORCH_TOPK_MIN == 2**14
    sorted_calls = _spy(monkeypatch, "_top_indices_sorted")
    numpy_calls = _spy(monkeypatch, "_top_indices_numpy")
    scores = np.random.default_rng(b).permutation(b * c).reshape(b, c)  # distinct: no fallback
    scores = scores * 0.5 if dtype == "f" else scores
    if k > c:
        with pytest.raises(ValueError):
            top_indices(scores, k)
    else:
        top_indices(scores, k)
    assert bool(sorted_calls) == (path == "sorted")
    assert (numpy_calls == [(b, c)]) == (path == "numpy")
    if path == "torch":
        assert numpy_calls == []


def _loop_top(row: np.ndarray, k: int) -> list[int]:
    """Best first, NaN after every number (the caller leaves no tie in the top k + 1)."""
    key = [(bool(np.isnan(x)), 0.0 if np.isnan(x) else -x, j) for j, x in enumerate(row)]
    return [j for *_, j in sorted(key)[:k]]


@pytest.mark.parametrize("seed", range(4))
def test_every_path_equals_a_loop_when_the_top_k_is_unambiguous(seed):
    """Distinct top k+1 scores (ties and NaN below) rank as the loop on every path."""
    g = np.random.default_rng(seed)
    for b, c, k in [(5, 12, 3), (5, 12, 6), (5, 12, 12), (140, 130, 4), (140, 130, 7)]:
        scores = np.stack([g.permutation(c) for _ in range(b)]).astype(np.float64)
        low = scores < c - k - 1  # below the top k + 1
        scores[low & (g.random((b, c)) < 0.5)] = -1.0  # ties
        scores[low & (g.random((b, c)) < 0.1)] = np.nan  # and NaN
        scores[np.arange(b), np.argmin(scores, axis=1)] = np.nan  # one NaN at least
        got = top_indices(scores, k)
        for r in range(b):
            assert got[r].tolist() == _loop_top(scores[r], k), (b, c, k, r)


@pytest.mark.parametrize("dtype", [bool, np.uint8, np.uint16, np.uint32, np.uint64, np.int8])
@pytest.mark.parametrize(("b", "c", "k"), [(4, 9, 2), (4, 9, 7), (130, 140, 5)])
def test_bool_and_unsigned_scores_rank_like_their_integer_values(dtype, b, c, k):
    """Any integer kind ranks by value (a negated unsigned array would wrap around).

    Scores tie, so the check is on values: each row's picks are distinct and their scores
    are the row's ``k`` largest, best first.
    """
    g = np.random.default_rng(c + k)
    top = 2 if dtype is bool else 100
    scores = g.integers(0, top, size=(b, c)).astype(dtype)
    want = -np.sort(-scores.astype(np.int64), axis=1)[:, :k]
    got = top_indices(scores, k)
    np.testing.assert_array_equal(np.take_along_axis(scores, got, axis=1), want)
    assert all(len(set(row)) == k for row in got.tolist())
    cands = np.broadcast_to(np.arange(c), (b, c))
    shared = top_k(scores[0], cands, k, shared=True)
    np.testing.assert_array_equal(scores[0, shared[0]], want[0])


@pytest.mark.parametrize(("b", "c", "k"), [(4, 9, 2), (4, 9, 7), (130, 140, 5)])
def test_uint64_scores_at_and_above_two_to_the_63_rank_above_smaller_ones(b, c, k):
    """``uint64`` values past int64's range (a cast to int64 would make them negative).

    Values are multiples of ``2**52`` (exact in float64) over the whole ``uint64`` range;
    the loop reference sorts them as Python integers.
    """
    g = np.random.default_rng(b + c + k)
    scores = (g.integers(0, 2**12, size=(b, c)).astype(np.uint64) << np.uint64(52)).astype(
        np.uint64
    )
    assert (scores >= 2**63).any() and (scores < 2**63).any()
    got = top_indices(scores, k)
    for r in range(b):
        want = sorted((int(x) for x in scores[r]), reverse=True)[:k]
        assert [int(x) for x in scores[r, got[r]]] == want, r
        assert len(set(got[r].tolist())) == k
    shared = top_k(scores[0], np.broadcast_to(np.arange(c), (b, c)), k, shared=True)
    assert [int(x) for x in scores[0, shared[0]]] == sorted(map(int, scores[0]), reverse=True)[:k]


def test_top_k_with_shared_scores_gives_every_user_the_best_first():
    """Shared: one ranking of ``(C,)`` or of row 0, broadcast; ties keep the candidates' order."""
    cands = np.broadcast_to(np.array([7, 3, 9, 1, 5]), (3, 5))
    for s in (np.array([0.2, 0.9, 0.2, -1.0, 0.5]), np.tile([0.2, 0.9, 0.2, -1.0, 0.5], (3, 1))):
        got = top_k(s, cands, 4, shared=True)
        np.testing.assert_array_equal(got, np.tile([3, 5, 7, 9], (3, 1)))


def test_catalog_gather_reads_each_candidates_value():
    """One value per catalog row, or one row of values per user, gathered at the candidates."""
    cat = make_catalog([4, 8, 15, 16], np.zeros((4, 1)))
    cands = np.array([[16, 4], [8, 8], [15, 4]])
    obs = make_obs(cat, [0, 1, 2], np.zeros((3, 1)), 0, 2, cands)
    vals = np.array([10.0, 20.0, 30.0, 40.0])
    np.testing.assert_array_equal(catalog_gather(vals, obs), [[40, 10], [20, 20], [30, 10]])
    per_user = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(catalog_gather(per_user, obs), [[3, 0], [5, 5], [10, 8]])


@pytest.mark.parametrize(("b", "c"), [(3, 7), (2, 300)])
def test_a_slate_of_every_candidate_is_the_keyed_permutation(b, c):
    """With K = C each row is its candidates in the order of the user's keyed uniforms."""
    g = np.random.default_rng(c)
    cat = make_catalog(np.arange(c) + 100, np.zeros((c, 1)))
    cands = np.stack([g.permutation(cat.item_ids) for _ in range(b)])
    obs = make_obs(cat, np.arange(b) * 3, np.zeros((b, 1)), 4, c, cands)
    got = random_slates(Stream(1, "test/perm"), obs)
    u = Stream(1, "test/perm").uniform(obs.user_ids, 4, size=c)
    for r in range(b):
        assert sorted(got[r].tolist()) == sorted(cands[r].tolist())
        np.testing.assert_array_equal(got[r], cands[r][np.argsort(u[r])])


@pytest.mark.parametrize(("c", "k"), [(4, 2), (6, 3), (9, 2), (5, 4)])
def test_floyd_slates_are_distinct_and_uniform(c, k):
    """With K < C: K distinct candidates; each candidate in each slot with probability 1/C."""
    n = 20_000
    cat = make_catalog(np.arange(c), np.zeros((c, 1)))
    obs = make_obs(cat, np.arange(n), np.zeros((n, 1)), 2, k)
    got = random_slates(Stream(2, "test/floyd"), obs)
    s = np.sort(got, axis=1)
    assert not (s[:, 1:] == s[:, :-1]).any()
    freq = (got[:, :, None] == np.arange(c)).mean(axis=0)  # (k, c)
    assert np.abs(freq - 1 / c).max() < 5 * np.sqrt((1 / c) * (1 - 1 / c) / n)


def test_uniform_propensities_and_the_random_until_trained_mixin():
    """``1 / C`` per slot where the slate was random, 1 where not; the mixin before/after."""
    cat = make_catalog(np.arange(8), np.zeros((8, 1)))
    obs = make_obs(cat, np.arange(3), np.zeros((3, 1)), 0, 2)
    np.testing.assert_array_equal(uniform_propensities(obs), np.full((3, 2), 1 / 8))
    mixed = uniform_propensities(obs, np.array([True, False, True]))
    np.testing.assert_array_equal(mixed, [[1 / 8, 1 / 8], [1, 1], [1 / 8, 1 / 8]])
    np.testing.assert_array_equal(uniform_propensities(obs, False), np.ones((3, 2)))

    class Agent(RandomUntilTrainedMixin):
        _model = None

    agent = Agent()
    np.testing.assert_array_equal(agent.propensities(obs, None), np.full((3, 2), 1 / 8))
    agent._model = object()
    np.testing.assert_array_equal(agent.propensities(obs, None), np.ones((3, 2)))


def test_item_counts_sum_per_id_and_grow():
    """Adds per id (repeats accumulate, weights or 1), any ids, past the first capacity."""
    counts = ItemCounts(num_fields=2)
    want = {0: {}, 1: {}}
    g = np.random.default_rng(5)
    for ids in ([3], [], [3, 3, 7], [1023], [1024], [5000, 3], list(g.integers(0, 9000, 50))):
        ids = np.asarray(ids, np.int64)
        w = g.random(ids.size)
        counts.add(0, ids)
        counts.add(1, ids, w)
        for i, x in zip(ids.tolist(), w.tolist(), strict=True):
            want[0][i] = want[0].get(i, 0.0) + 1.0
            want[1][i] = want[1].get(i, 0.0) + x
    probe = np.array([0, 3, 7, 1023, 1024, 5000, 8999, 20_000])
    for field in (0, 1):
        expect = [want[field].get(i, 0.0) for i in probe.tolist()]
        np.testing.assert_allclose(counts.get(field, probe), expect, rtol=1e-12)
    assert counts.values.shape[0] == 2 and counts.values.shape[1] > 20_000
    counts.clear()
    assert not counts.values.any()


def test_item_counts_grow_only_when_needed_and_at_least_double():
    """Capacity: 1024 at first, grown only for an id beyond it, to ``max(id + 1, 2 x)``."""
    counts = ItemCounts()
    sizes = []
    for item in (3, 1023, 5, 1024, 7, 2100, 9000, 11, 9000):
        counts.add(0, [item])
        counts.get(0, np.array([item, 2]))
        sizes.append(counts.values.shape[1])
    assert sizes == [1024, 1024, 1024, 2048, 2048, 4096, 9001, 9001, 9001]


def test_require_torch_without_torch_names_the_fix(monkeypatch):
    """Torch missing: DependencyNotInstalled naming the agent and the pip command."""
    assert require_torch("x") is sys.modules["torch"]
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    with pytest.raises(DependencyNotInstalled, match=r"my-agent needs torch: pip install torch"):
        require_torch("my-agent")


def _float32_rows(kind: int, rng: np.random.Generator, b: int, c: int) -> np.ndarray:
    """float32 rows: distinct, ties, signed zeros, infinities, subnormals, NaN, huge."""
    v = rng.standard_normal((b, c)).astype(np.float32)
    if kind == 1:
        v = np.round(v * 3) / 3
    elif kind == 2:
        v[rng.random((b, c)) < 0.3], v[rng.random((b, c)) < 0.3] = 0.0, -0.0
    elif kind == 3:
        v[rng.random((b, c)) < 0.1], v[rng.random((b, c)) < 0.1] = np.inf, -np.inf
    elif kind == 4:
        v *= np.float32(1e-40)  # subnormal
    elif kind == 5:
        v[rng.random((b, c)) < 0.03] = np.nan
    elif kind == 6:
        v = np.sign(v) * np.float32(3e38)
    elif kind == 7:
        v[:, : c // 2] = 0.0  # a long run of zeros (utilities that underflowed)
    return v


@pytest.mark.parametrize("kind", range(8))
@pytest.mark.parametrize("width", [1, 2, 63, 64, 65, 300])
def test_stable_descending_is_numpys_stable_sort_bit_for_bit(kind, width):
    """Packed float32 keys or not, the order is the stable argsort of the negated values."""
    rng = np.random.default_rng(kind * 1000 + width)
    for b in (1, 7):
        v = _float32_rows(kind, rng, b, width)
        for values in (v, v.astype(np.float64)):
            want = np.argsort(-values, axis=1, kind="stable")
            np.testing.assert_array_equal(base.stable_descending(values), want)


@pytest.mark.parametrize("kind", range(8))
def test_long_float32_slates_equal_the_numpy_reference(kind):
    """The float32 full-sort path (rows with ties or NaN found first) gives numpy's answer."""
    rng = np.random.default_rng(kind)
    for b, c in [(1, 80), (9, 130), (40, 257)]:
        scores = _float32_rows(kind, rng, b, c)
        scores[: b // 3] = np.float32(1.5)  # a few rows of one tie
        for k in (c // 2, c // 2 + 1, c - 1, c):
            want = base._top_indices_numpy(scores, k)
            np.testing.assert_array_equal(top_indices(scores, k), want)
            ref = np.argpartition(-scores, k - 1, axis=1)[:, :k]  # numpy's own, unpacked
            ref = np.take_along_axis(
                ref, np.argsort(-np.take_along_axis(scores, ref, axis=1), axis=1, kind="stable"), 1
            )
            np.testing.assert_array_equal(want, ref)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("c", [3, 64, 300])
def test_no_rows_rank_to_no_rows(dtype, c):
    """Zero users (an empty shard): every path answers (0, k)."""
    scores = np.zeros((0, c), dtype)
    for k in (1, c // 2 + 1, c):
        assert top_indices(scores, k).shape == (0, k)
    assert base.stable_descending(scores).shape == (0, c)
