"""Chaney et al.'s recommenders and what they share.

NNLS content filtering, implicit MF, social filtering, cumulative popularity, the trained
ideal and new-item interleaving.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import pytest
from scipy.optimize import nnls

from simlab.agents.content_filtering import ContentFilteringAgent
from simlab.agents.cumulative import CumulativeLog, rank_known_first
from simlab.agents.implicit_mf import ImplicitMFAgent, als_implicit
from simlab.agents.nnls import nnls_gram
from simlab.batch import Catalog, Feedback, Log, Observation
from simlab.rng import Stream
from simlab.world import WorldContext

CTX = WorldContext(
    seed=1,
    dim=4,
    num_topics=4,
    topic_spread=1.0,
    steps=10,
    slate_size=0,
    history_length=3,
    num_users=6,
)


# ----------------------------------------------------------------------------- NNLS


def _problem(rng, kind: int):
    n, f = int(rng.integers(3, 150)), int(rng.integers(1, 22))
    if kind == 0:  # sparse Dirichlet attributes, as Chaney's items
        a = rng.dirichlet(np.full(f, 0.01), size=n)
    elif kind == 1:
        a = rng.normal(size=(n, f))
    elif kind == 2:
        a = rng.random((n, f))
    else:  # rank deficient: duplicated columns
        a = rng.random((n, max(f // 2, 1)))
        a = np.concatenate([a, a], axis=1)
    y = (rng.random((12, n)) < 0.2).astype(float) if kind != 1 else rng.normal(size=(12, n))
    return a, y


@pytest.mark.parametrize("kind", range(4))
@pytest.mark.parametrize("seed", range(25))
def test_nnls_matches_scipy(kind, seed):
    """Batched Lawson-Hanson reaches scipy.optimize.nnls's optimum on every row."""
    rng = np.random.default_rng(seed * 10 + kind)
    a, y = _problem(rng, kind)
    x = nnls_gram(a.T @ a, y @ a)
    warm = nnls_gram(a.T @ a, y @ a, support=rng.random(x.shape) < 0.5)
    assert (x >= 0).all() and (warm >= 0).all()
    full_rank = np.linalg.matrix_rank(a) == a.shape[1] and np.linalg.cond(a) < 1e6
    for row in range(y.shape[0]):
        ref, _ = nnls(a, y[row])
        best = np.sum((a @ ref - y[row]) ** 2)
        for got in (x[row], warm[row]):
            excess = np.sum((a @ got - y[row]) ** 2) - best
            assert excess <= 1e-6 * max(best, 1.0)
            if full_rank:
                np.testing.assert_allclose(got, ref, atol=1e-7 * max(1.0, np.abs(ref).max()))


def test_nnls_handles_empty_and_zero_columns():
    """No rows, and an attribute no item has, give zeros where nothing can be fitted."""
    assert nnls_gram(np.eye(3), np.zeros((0, 3))).shape == (0, 3)
    a = np.array([[1.0, 0.0, 2.0], [0.5, 0.0, 1.0], [0.0, 0.0, 1.0]])
    x = nnls_gram(a.T @ a, np.array([[1.0, 1.0, 1.0]]) @ a)
    assert x[0, 1] == 0.0
    np.testing.assert_allclose(x[0], nnls(a, np.ones(3))[0], atol=1e-9)


# ----------------------------------------------------------------------------- a tiny world by hand


def _catalog(step: int, n: int, features: np.ndarray, published: np.ndarray) -> Catalog:
    return Catalog(
        item_ids=np.arange(n, dtype=np.int64),
        features=features.astype(np.float32),
        creator=np.zeros(n, np.int64),
        age=(step - published).astype(np.int64),
    )


def _obs(step, catalog, users=None, k=None):
    users = np.arange(6) if users is None else users
    cands = np.broadcast_to(catalog.item_ids, (users.shape[0], catalog.num_items))
    return Observation(
        step=step,
        user_ids=users,
        user_features=np.zeros((users.shape[0], 1), np.float32),
        history=np.full((users.shape[0], 1), -1),
        candidates=cands,
        catalog=catalog,
        slate_size=k or catalog.num_items,
        shared_candidates=True,
    )


def _log(clicks: dict[int, list[tuple[int, int]]], features: np.ndarray) -> Log:
    """A log of steps: {step: [(user, item), ...]} with one-item slates."""
    fbs = []
    for step, pairs in sorted(clicks.items()):
        u = np.array([p[0] for p in pairs], np.int64)
        i = np.array([[p[1]] for p in pairs], np.int64)
        fbs.append(
            Feedback(step, u, i, np.zeros(len(pairs), np.int64), np.ones(len(pairs), np.float32))
        )
    ids = np.arange(features.shape[0], dtype=np.int64)
    return Log.of_steps(fbs, ids, features.astype(np.float32))


FEATS = np.array(
    [[1, 0, 0, 0], [0.9, 0.1, 0, 0], [0, 1, 0, 0], [0, 0.8, 0.2, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
    float,
)


def test_cumulative_log_takes_each_step_once_across_overlapping_windows():
    """Overlapping log windows add each logged step's consumptions once."""
    h = CumulativeLog()
    h.ingest(_log({0: [(0, 1)], 1: [(1, 2)]}, FEATS))
    h.ingest(_log({1: [(1, 2)], 2: [(0, 3), (2, 4)]}, FEATS))
    assert list(zip(h.users.tolist(), h.items.tolist(), strict=True)) == [
        (0, 1),
        (1, 2),
        (0, 3),
        (2, 4),
    ]
    assert h.horizon == 2


def test_content_filtering_weights_are_per_user_nnls_over_known_items():
    """x_u = NNLS(A, y_u) over every item up to the data; scores x_u . a_i; unknown last."""
    agent = ContentFilteringAgent(ContentFilteringAgent.Params(), CTX)
    clicks = {0: [(0, 0), (1, 2)], 1: [(0, 1), (1, 3), (2, 4)]}
    agent.retrain(_log(clicks, FEATS))
    y = np.zeros((6, 6))
    for pairs in clicks.values():
        for u, i in pairs:
            y[u, i] = 1
    for u in range(6):
        np.testing.assert_allclose(agent.weights[u], nnls(FEATS, y[u])[0], atol=1e-9)
    published = np.array([0, 0, 0, 1, 1, 2])  # item 5 is newer than the data (step 1)
    obs = _obs(2, _catalog(2, 6, FEATS, published))
    slates = agent.act(obs).item_ids
    assert (slates[:, -1] == 5).all()
    assert slates[0, :2].tolist() == [0, 1] and set(slates[1, :2].tolist()) == {2, 3}
    np.testing.assert_array_equal(agent.user_representation(), agent.weights)


@pytest.mark.parametrize("users", [1, 2, 5])
def test_content_filtering_scores_each_users_own_candidates(users):
    """One consumption fits a user; each user's own candidates are ranked by ``x_u . a_i``.

    Per-user candidates are scored as that user's items, shared ones for every user alike.
    """
    agent = ContentFilteringAgent(ContentFilteringAgent.Params(), CTX)
    agent.retrain(_log({0: [(u, u) for u in range(users)]}, FEATS))
    for u in range(users):
        y = np.eye(6)[u]
        np.testing.assert_allclose(agent.weights[u], nnls(FEATS, y)[0], atol=1e-9)
        assert agent.weights[u].any()
    cat = _catalog(1, 6, FEATS, np.zeros(6, np.int64))
    ids = np.arange(users)
    shared = _obs(1, cat, users=ids, k=6)
    own = dataclasses.replace(
        shared,
        candidates=np.stack([np.roll(np.arange(6), -u)[:4] for u in range(users)]),
        shared_candidates=False,
        slate_size=4,
    )
    for obs in (shared, own):
        got = agent.act(obs).item_ids
        for u in range(users):
            cands = obs.candidates[u]
            assert sorted(got[u].tolist()) == sorted(cands.tolist())
            # best first (exact ties, e.g. zero scores, are ordered by draws)
            s = FEATS[got[u]] @ agent.weights[u]
            assert (np.diff(s) <= 1e-12).all(), (u, got[u], s)
            assert s[0] == (FEATS[cands] @ agent.weights[u]).max() > 0


def test_als_matches_a_per_row_solve_by_hand():
    """One ALS iteration equals solving each row's normal equations one by one."""
    rng = np.random.default_rng(0)
    users, items = np.array([0, 0, 1, 2, 2, 2, 0]), np.array([1, 1, 0, 2, 3, 1, 3])
    x0, y0 = rng.normal(size=(3, 4)), rng.normal(size=(4, 4))
    x1, y1 = als_implicit(users, items, x0, y0, 1, 0.1, 40.0)
    counts = Counter(zip(users.tolist(), items.tolist(), strict=True))

    def half(other, n, by_row):
        out = np.zeros((n, other.shape[1]))
        for row in range(n):
            a = other.T @ other + 0.1 * np.eye(other.shape[1])
            b = np.zeros(other.shape[1])
            for col, r in by_row(row):
                a += 40 * r * np.outer(other[col], other[col])
                b += (1 + 40 * r) * other[col]
            out[row] = np.linalg.solve(a, b)
        return out

    xr = half(y0, 3, lambda u: [(i, r) for (uu, i), r in counts.items() if uu == u])
    yr = half(xr, 4, lambda i: [(u, r) for (u, ii), r in counts.items() if ii == i])
    np.testing.assert_allclose(x1, xr, atol=1e-10)
    np.testing.assert_allclose(y1, yr, atol=1e-10)


@pytest.mark.parametrize("warm", [False, True])
def test_implicit_mf_scores_consumed_tastes_higher(warm):
    """After fitting, a user's consumed items outscore items nobody like them consumed."""
    rng = np.random.default_rng(3)
    ctx = WorldContext(**{**CTX.__dict__, "num_users": 40, "dim": 8})
    agent = ImplicitMFAgent(ImplicitMFAgent.Params(warm_start=warm, factors=4), ctx)
    # two taste groups: users 0-19 consume items 0-9, users 20-39 items 10-19
    clicks = {}
    for step in range(6):
        clicks[step] = [(u, int(rng.integers(0, 10)) + (10 if u >= 20 else 0)) for u in range(40)]
        agent.retrain(_log({step: clicks[step]}, np.eye(20, 8)))
    x, _ = agent.user_factors, agent.item_factors
    vec = agent._item_vectors(np.arange(20))
    s = x @ vec.T
    assert (s[:20, :10].mean(axis=1) > s[:20, 10:].mean(axis=1)).all()
    assert (s[20:, 10:].mean(axis=1) > s[20:, :10].mean(axis=1)).all()


def test_rank_known_first_orders_by_score_then_draws():
    """Higher scores first, exact ties by the draws, items newer than the horizon last."""
    n = 6
    cat = _catalog(5, n, FEATS, np.array([0, 1, 2, 3, 5, 5]))
    obs = _obs(5, cat, users=np.array([3]))
    tb = Stream(0, "t")
    scores = np.array([[0.5, 0.9, 0.5, 0.5, 0.99, 0.1]])
    got = rank_known_first(scores, obs, 4, tb)[0].tolist()
    u = tb.uniform((3 << 32) | np.arange(n), 5)  # keyed by (user, item) and step
    ties = sorted([0, 2, 3], key=lambda i: u[i])
    # items 4 and 5 were published after the horizon: last, in the order of their draws,
    # whatever their scores (item 4 has the highest)
    assert got == [1, *ties, *sorted([4, 5], key=lambda i: u[i])]


def test_social_filtering_scores_are_friends_consumption_counts():
    """Score of item i for u = consumptions of i by u's friends, over the whole history."""
    from scipy import sparse

    from simlab.agents.social_filtering import SocialFilteringAgent

    adj = np.zeros((6, 6))
    for a, b in [(0, 1), (0, 2), (3, 4)]:
        adj[a, b] = adj[b, a] = 1
    agent = SocialFilteringAgent(SocialFilteringAgent.Params(), CTX)
    agent.bind_social_graph(sparse.csr_matrix(adj))
    clicks = {0: [(1, 0), (2, 0), (4, 3)], 1: [(1, 2), (2, 4), (5, 1)], 2: [(2, 0)]}
    agent.retrain(_log({k: v for k, v in clicks.items() if k < 2}, FEATS))
    agent.retrain(_log({k: v for k, v in clicks.items() if k >= 1}, FEATS))  # overlapping
    r = np.zeros((6, 6))
    for pairs in clicks.values():
        for u, i in pairs:
            r[u, i] += 1
    want = adj @ r
    cat = _catalog(3, 6, FEATS, np.zeros(6, np.int64))
    obs = _obs(3, cat)
    dense = agent._friend_counts.toarray()
    np.testing.assert_array_equal(dense, want[:, agent._item_ids])
    slates = agent.act(obs).item_ids
    assert slates[0, 0] == 0  # two friends consumed item 0 three times
    assert slates[3, 0] == 3
    np.testing.assert_array_equal(agent.user_representation().toarray(), adj)


def test_cumulative_popularity_counts_every_step_once():
    """cumulative: true counts every logged step once; the default counts the window."""
    from simlab.agents.baselines import PopularityAgent

    cum = PopularityAgent(PopularityAgent.Params(cumulative=True), CTX)
    win = PopularityAgent(PopularityAgent.Params(), CTX)
    logs = [
        _log({0: [(0, 1), (1, 1)], 1: [(2, 3)]}, FEATS),
        _log({1: [(2, 3)], 2: [(0, 3), (1, 5)]}, FEATS),
    ]
    for log in logs:
        cum.retrain(log)
        win.retrain(log)
    assert dict(zip(cum._ids.tolist(), cum._counts.tolist(), strict=True)) == {1: 2, 3: 2, 5: 1}
    assert dict(zip(win._ids.tolist(), win._counts.tolist(), strict=True)) == {3: 2, 5: 1}
    restored = PopularityAgent(PopularityAgent.Params(cumulative=True), CTX)
    restored.load_state_dict(cum.state_dict())
    restored.retrain(_log({2: [(0, 3)], 3: [(4, 1)]}, FEATS))
    assert dict(zip(restored._ids.tolist(), restored._counts.tolist(), strict=True)) == {
        1: 3,
        3: 2,
        5: 1,
    }


def test_trained_ideal_ranks_items_after_its_data_last():
    """known_items: trained ranks by true utility only items up to its last retrain."""
    from simlab.agents.baselines import OracleAgent

    class Truth:
        def utility(self, step, users, items):
            return np.broadcast_to(np.arange(6, dtype=np.float32), items.shape)  # item 5 best

    agent = OracleAgent(OracleAgent.Params(known_items="trained"), CTX)
    agent.bind_truth(Truth())
    agent.retrain(_log({0: [(0, 1)], 3: [(1, 2)]}, FEATS))
    cat = _catalog(5, 6, FEATS, np.array([0, 1, 2, 3, 4, 5]))
    slates = agent.act(_obs(5, cat)).item_ids
    assert slates[:, :4].tolist() == [[3, 2, 1, 0]] * 6  # published <= 3, by utility
    assert set(slates[0, 4:].tolist()) == {4, 5}
    every = OracleAgent(OracleAgent.Params(), CTX)
    every.bind_truth(Truth())
    assert every.act(_obs(5, cat)).item_ids[0].tolist() == [5, 4, 3, 2, 1, 0]
