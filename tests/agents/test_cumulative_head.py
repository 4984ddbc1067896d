"""Short slates of Chaney's recommenders: the head of the whole ranking, without sorting it.

``rank_known_first`` ranks only the head of a row when the slate is at most a quarter of
the candidates (less one): by ``top_indices`` where the ``K + 1`` best keys are distinct,
by the run of the ``K``-th key and its draws where they tie, and whole where NaN or equal
draws decide. Every slate must be the first ``K`` of the whole ranking, bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_chaney_agents import _catalog, _obs
from test_cumulative import _CoarseStream, _old_rank_known_first, _wide_case

from simlab.agents import cumulative
from simlab.agents.cumulative import rank_known_first
from simlab.batch import Observation
from simlab.rng import Stream


def _head_case(case: int, kind: str):
    """``(scores, obs, horizon)``: 1-20 users, 8-300 per-user candidates, a class of scores."""
    scores, obs, horizon, _ = _wide_case(case)
    rng = np.random.default_rng(900 + case)
    b, n = scores.shape
    if kind == "counts":
        scores = rng.integers(0, 5, (b, n)).astype(np.float64)
    elif kind == "nan":  # NaN scores rank after every other (numpy's sorts put them last)
        scores[rng.random((b, n)) < rng.choice([0.05, 0.9, 1.0])] = np.nan
    elif kind == "zeros":  # +0 and -0 are equal keys: a tie
        scores = rng.choice([0.0, -0.0, 1.0], size=(b, n))
    elif kind == "inf":
        scores[rng.random((b, n)) < 0.3] = rng.choice([np.inf, -np.inf])
    elif kind == "huge":  # integers too large for the counts path
        scores = rng.integers(0, 3, (b, n)) * 2.0**52
    return scores, obs, horizon


def _with_slate(obs: Observation, k: int) -> Observation:
    return Observation(
        step=obs.step, user_ids=obs.user_ids, user_features=obs.user_features,
        history=obs.history, candidates=obs.candidates, catalog=obs.catalog,
        slate_size=k, shared_candidates=obs.shared_candidates,
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["reals", "counts", "nan", "zeros", "inf", "huge"])
@pytest.mark.parametrize("case", range(8))
def test_a_short_slate_is_the_head_of_the_whole_ranking(case, kind):
    """Slates of k items are the first k of the full ranking, bit for bit, for any k.

    Short slates rank the head only (a partition); rows with a tie or NaN near the head are
    ranked whole. Ties of every kind, NaN, +-0, infinities, late items and coarse draws
    (run-plus-draw values that repeat) are covered, and the reference from before the sort
    choices agrees (except in the order among NaN scores, which is each sort's own).
    """
    scores, obs, horizon = _head_case(case, kind)
    n = obs.candidates.shape[1]
    coarse = [_CoarseStream(Stream(case, "t"), levels) for levels in (2, 50, 1000)]
    for stream in (Stream(case, "t"), *coarse):
        whole = rank_known_first(scores, _with_slate(obs, n), horizon, stream)
        for k in sorted({1, 2, n // 4 - 1, n // 4, n // 2, n} - {0, -1}):
            head = _with_slate(obs, k)
            got = rank_known_first(scores, head, horizon, stream)
            np.testing.assert_array_equal(got, whole[:, :k])
            if kind != "nan":  # NaN keys never compare equal: their order is the sort's own
                old = _old_rank_known_first(scores, head, horizon, stream)
                np.testing.assert_array_equal(got, old)


def test_a_short_slate_ranks_no_row_whole_unless_its_draws_tie(monkeypatch):
    """Distinct scores, or ties broken by distinct draws: no row's whole ranking is computed."""
    rng = np.random.default_rng(0)
    b, n = 50, 400
    cat = _catalog(3, n, np.zeros((n, 2)), np.zeros(n, np.int64))
    obs = _with_slate(_obs(3, cat, users=np.arange(b, dtype=np.int64)), 10)
    scores = rng.standard_normal((b, n))
    scores[7] = 0.5  # one row of ties: ranked whole
    calls, heads = [], []
    real, real_head = cumulative._ranked, cumulative._tied_head
    monkeypatch.setattr(
        cumulative, "_ranked", lambda key, *a: calls.append(key.shape) or real(key, *a)
    )
    monkeypatch.setattr(
        cumulative, "_tied_head", lambda key, *a: heads.append(key.shape) or real_head(key, *a)
    )
    got = rank_known_first(scores, obs, None, Stream(1, "t"))
    assert calls == [] and heads == [(1, n)]  # only the row of ties takes the tied head
    want = np.argsort(-scores, axis=1, kind="stable")[:, :10]
    np.testing.assert_array_equal(np.delete(got, 7, axis=0), np.delete(want, 7, axis=0))
    draws = Stream(1, "t").uniform((7 << 32) | np.arange(n), 3)
    assert got[7].tolist() == np.argsort(draws)[:10].tolist()  # the row of ties: by draw
    coarse = _CoarseStream(Stream(1, "t"), 4)  # draws that tie: that row is ranked whole
    rank_known_first(scores, obs, None, coarse)
    assert calls == [(1, n)]


@pytest.mark.parametrize("k", [1, 3, 10])
def test_the_head_only_ranking_starts_at_a_quarter_of_the_candidates(k, monkeypatch):
    """Slates of at most a quarter of the candidates (less one) rank the head only.

    Longer ones rank every row whole: the documented boundary is ``4 (k + 1) <= C``.
    """
    real = cumulative._ranked
    calls = []
    monkeypatch.setattr(
        cumulative, "_ranked", lambda key, *a: calls.append(key.shape) or real(key, *a)
    )
    for c in range(4 * (k + 1) - 2, 4 * (k + 1) + 2):
        cat = _catalog(3, c, np.zeros((c, 2)), np.zeros(c, np.int64))
        obs = _with_slate(_obs(3, cat, users=np.arange(5, dtype=np.int64)), k)
        scores = np.random.default_rng(c).standard_normal((5, c))  # distinct: no tie
        calls.clear()
        got = rank_known_first(scores, obs, None, Stream(1, "t"))
        assert calls == ([] if 4 * (k + 1) <= c else [(5, c)]), c
        np.testing.assert_array_equal(got, np.argsort(-scores, axis=1)[:, :k])


# keys (small integers, as characters from '0') on which np.partition at k, not k - 1, leaves
# a wrong k-th key at index k - 1 on this numpy: the head must use the guaranteed position
_PARTITION_EDGE = (
    "9FBWDX:XSOJIFPXYPKYWXEF47E@Z3;CNDI3>4UWTJBQ79IC1SDQL<LD6@GRD0KH4O>7J0GJL0K?LM@ZU3O7FBO>4UV"
    "VX5AL@KAR4CFFG>0CM2>WZ1VRUZ4JP9S@84WC>SV9C8A5M<UWTBOUCDSS3UR3GRV<NZKX38;E7ZWA8Z?HZT4?7VO7P"
    "AM89YG8O5I63D@IFN:FXK@25HD48EW1QP3TH1UF31C0ODE1BFIX0IV7MO?H3QV18N29DWSDFV@9?9TV17AE2WHT303"
    "UA=>JRXNCE=E4=P<YUOJEG25"
)


def test_a_tied_head_takes_the_kth_key_from_its_guaranteed_place():
    """A row of many ties whose k-th smallest key a partition at ``k`` would misplace."""
    key = np.frombuffer(_PARTITION_EDGE.encode(), np.uint8).astype(np.float64) - ord("0")
    n, k = key.size, 66
    assert np.sort(key)[k - 1] != np.partition(key, k)[k - 1]  # the trap, on this numpy
    cat = _catalog(3, n, np.zeros((n, 2)), np.zeros(n, np.int64))
    scores = -(key + 0.5)[None]  # not counts: the tied-head path
    got = rank_known_first(
        scores, _with_slate(_obs(3, cat, users=np.arange(1)), k), None, Stream(2, "t")
    )
    whole = rank_known_first(
        scores, _with_slate(_obs(3, cat, users=np.arange(1)), n), None, Stream(2, "t")
    )
    np.testing.assert_array_equal(got, whole[:, :k])


def test_a_head_of_several_tie_runs_is_not_ranked_whole(monkeypatch):
    """Runs of equal scores in the head, the last one going on past it: no whole ranking.

    The head's order is run number plus draw (later runs' draws may be smaller than earlier
    ones'), and the next item of the last run is compared with that run's number too.
    """
    n, k = 40, 9
    scores = np.repeat([5.5, 3.5, 0.5], [4, 10, 26])[None].repeat(6, axis=0)
    cat = _catalog(3, n, np.zeros((n, 2)), np.zeros(n, np.int64))
    calls = []
    real = cumulative._ranked
    monkeypatch.setattr(
        cumulative, "_ranked", lambda key, *a: calls.append(key.shape) or real(key, *a)
    )
    users = np.arange(6, dtype=np.int64)
    got = rank_known_first(scores, _with_slate(_obs(3, cat, users=users), k), None, Stream(5, "t"))
    assert calls == []
    whole = rank_known_first(
        scores, _with_slate(_obs(3, cat, users=users), n), None, Stream(5, "t")
    )
    np.testing.assert_array_equal(got, whole[:, :k])


@pytest.mark.parametrize("kind", ["reals", "counts", "nan", "zeros", "ties"])
@pytest.mark.parametrize("horizon", [None, 2])
@pytest.mark.parametrize("k", [3, 40])
def test_users_in_blocks_rank_as_all_users_at_once(monkeypatch, kind, horizon, k):
    """Blocks of 64+ users give every user the slate of one call over all users.

    Covers the head-only and whole rankings, late items, counts (with one real score in the
    last block), NaN, +-0 and ties.
    """
    rng = np.random.default_rng(len(kind) + k)
    b, n = 300, 40
    cat = _catalog(5, n, np.zeros((n, 2)), rng.integers(0, 6, n))  # items of age 0..5
    obs = _with_slate(_obs(5, cat, users=np.arange(3, 3 + b, dtype=np.int64)), k)
    scores = {
        "reals": rng.standard_normal((b, n)),
        "counts": rng.integers(0, 4, (b, n)).astype(np.float64),
        "nan": np.where(rng.random((b, n)) < 0.2, np.nan, rng.standard_normal((b, n))),
        "zeros": rng.choice([0.0, -0.0, 1.0], size=(b, n)),
        "ties": rng.integers(0, 4, (b, n)) + 0.5,  # tied reals, not counts
    }[kind]
    if kind == "counts":
        scores[290, 7] = 0.25  # one real score, in the last block
    stream = Stream(2, "t")
    want = rank_known_first(scores, obs, horizon, stream)
    monkeypatch.setattr(cumulative, "_RANK_BLOCK", 1)
    assert len(cumulative.row_blocks(b, n, cumulative._RANK_BLOCK)) == 4
    np.testing.assert_array_equal(rank_known_first(scores, obs, horizon, stream), want)
