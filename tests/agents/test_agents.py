"""Contract tests over every agent (in a small World) and behaviour tests of each agent."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from conftest import record_acts
from utils import AGENTS, LEARNING_AGENTS, AgentCase

from simlab.agents import EpsilonGreedyAgent, PopularityAgent, random_slates, top_k
from simlab.agents.base import _top_indices_numpy, top_indices
from simlab.agents.baselines import _count_by_id
from simlab.agents.neural import MatrixFactorizationAgent
from simlab.batch import PAD, Catalog, Feedback, Log, Observation
from simlab.rng import Stream

STEPS = 7  # with retrain_every=3 and deploy_lag=1, retrained models serve from steps 3 and 6

# ----------------------------------------------------------------------------- helpers


def make_catalog(item_ids, features=None, dim: int = 2) -> Catalog:
    """A catalog of ``item_ids`` (zero features unless given)."""
    ids = np.asarray(item_ids, np.int64)
    n = ids.shape[0]
    feats = np.zeros((n, dim), np.float32) if features is None else features
    return Catalog(
        item_ids=ids,
        features=np.asarray(feats, np.float32),
        creator=np.zeros(n, np.int64),
        age=np.zeros(n, np.int64),
    )


def make_obs(
    catalog: Catalog,
    num_users: int,
    slate_size: int,
    candidates: np.ndarray | None = None,
    step: int = 0,
) -> Observation:
    """An observation of ``num_users`` users; shared candidates (the catalog) unless given."""
    shared = candidates is None
    if shared:
        candidates = np.broadcast_to(catalog.item_ids, (num_users, catalog.num_items))
    return Observation(
        step=step,
        user_ids=np.arange(num_users, dtype=np.int64),
        user_features=np.zeros((num_users, 2), np.float32),
        history=np.full((num_users, 3), PAD, np.int64),
        candidates=np.asarray(candidates, np.int64),
        catalog=catalog,
        slate_size=slate_size,
        shared_candidates=shared,
    )


def make_log(user_ids, slates, clicked_pos, catalog: Catalog | None = None, step: int = 0) -> Log:
    """A log from plain lists (features of the ``catalog`` items, if given)."""
    user_ids = np.asarray(user_ids, np.int64)
    clicked_pos = np.asarray(clicked_pos, np.int64)
    kwargs = {}
    if catalog is not None:
        kwargs = {"feature_ids": catalog.item_ids, "features": catalog.features}
    return Log(
        step=np.full(user_ids.shape[0], step, np.int64),
        user_ids=user_ids,
        slates=np.asarray(slates, np.int64),
        clicked_pos=clicked_pos,
        engagement=np.where(clicked_pos >= 0, 0.5, 0.0).astype(np.float32),
        **kwargs,
    )


def assert_valid_slates(obs: Observation, item_ids: np.ndarray) -> None:
    """Slates are ``(B, K)``, duplicate-free per row, and drawn from each row's candidates."""
    assert item_ids.shape == (obs.num_users, obs.slate_size)
    s = np.sort(item_ids, axis=1)
    assert not (s[:, 1:] == s[:, :-1]).any(), "duplicate item in a slate"
    in_row = (item_ids[:, :, None] == obs.candidates[:, None, :]).any(axis=2)
    assert in_row.all(), "slate item that is not one of the user's candidates"


# ----------------------------------------------------------------------------- contract tests


@pytest.mark.parametrize("case", AGENTS, ids=lambda c: c.id)
def test_slates_are_valid_with_shared_candidates(case: AgentCase):
    """Every agent returns (B, K) duplicate-free slates of candidates, before and after retrains."""
    world = case.world()
    calls = record_acts(world)
    for t in range(STEPS):
        world.step(t)
    assert len(calls) == STEPS
    for obs, slates in calls:
        assert obs.shared_candidates
        np.testing.assert_array_equal(slates.user_ids, obs.user_ids)
        assert_valid_slates(obs, slates.item_ids)


@pytest.mark.parametrize("case", AGENTS, ids=lambda c: c.id)
def test_slates_are_valid_with_per_user_candidates(case: AgentCase):
    """With max_candidates below the catalog size, slates use only each user's own candidates."""
    world = case.world(("platform.max_candidates", 30))
    calls = record_acts(world)
    for t in range(STEPS):
        world.step(t)
    for obs, slates in calls:
        assert not obs.shared_candidates
        assert obs.candidates.shape == (obs.num_users, 30)
        assert not (obs.candidates == obs.candidates[:1]).all(), "candidates should differ"
        assert_valid_slates(obs, slates.item_ids)


@pytest.mark.parametrize("case", AGENTS, ids=lambda c: c.id)
def test_same_seed_gives_same_slates(case: AgentCase):
    """Two worlds with the same seed serve identical slates and metric rows at every step."""
    worlds = [case.world(seed=5), case.world(seed=5)]
    calls = [record_acts(w) for w in worlds]
    for t in range(STEPS):
        rows = [w.step(t) for w in worlds]
        np.testing.assert_equal(rows[0], rows[1])  # NaN (undefined) equals NaN
    for (_, a), (_, b) in zip(calls[0], calls[1], strict=True):
        np.testing.assert_array_equal(a.item_ids, b.item_ids)


@pytest.mark.parametrize("case", LEARNING_AGENTS, ids=lambda c: c.id)
def test_state_dict_round_trip(case: AgentCase):
    """A fresh agent loading another's state_dict acts identically; without it, it does not."""
    world = case.world()
    calls = record_acts(world)
    for t in range(STEPS):
        world.step(t)
    obs, _ = calls[-1]
    expected = world.agent.act(obs).item_ids  # with the state after the last update
    spec = world.scenario.agents[0]
    restored = spec.cls(spec.params, world.context)
    fresh = spec.cls(spec.params, world.context)
    restored.load_state_dict(world.agent.state_dict())
    np.testing.assert_array_equal(restored.act(obs).item_ids, expected)
    assert not np.array_equal(fresh.act(obs).item_ids, expected)


@pytest.mark.parametrize("case", LEARNING_AGENTS, ids=lambda c: c.id)
def test_state_dict_is_a_snapshot(case: AgentCase):
    """A state_dict taken earlier is not changed by later learning."""
    world = case.world()
    for t in range(STEPS):
        world.step(t)
    state = world.agent.state_dict()
    before = {k: np.array(v, copy=True) for k, v in state.items()}
    for t in range(STEPS, STEPS + 3):
        world.step(t)
    for key, value in before.items():
        np.testing.assert_array_equal(np.asarray(state[key]), value, err_msg=key)


# ----------------------------------------------------------------------------- helpers: slates


def test_random_slates_uniform_and_distinct():
    """``random_slates`` picks each candidate equally often, in every slot, without repeats."""
    num_users, c, k = 20_000, 10, 3
    cat = make_catalog(np.arange(100, 100 + c))
    obs = make_obs(cat, num_users, k, step=4)
    slates = random_slates(Stream(0, "test/random-slates"), obs)
    assert_valid_slates(obs, slates)
    freq = np.bincount(slates.ravel() - 100, minlength=c) / (num_users * k)
    np.testing.assert_allclose(freq, 1 / c, rtol=0.05)
    top = np.bincount(slates[:, 0] - 100, minlength=c) / num_users
    np.testing.assert_allclose(top, 1 / c, rtol=0.1)


def test_random_slates_uniform_over_sets():
    """Every 2-subset of 4 candidates is drawn about equally often (Floyd's sampling)."""
    num_users = 12_000
    obs = make_obs(make_catalog(np.arange(4)), num_users, 2)
    slates = np.sort(random_slates(Stream(1, "test/random-sets"), obs), axis=1)
    codes = slates[:, 0] * 4 + slates[:, 1]
    counts = np.bincount(codes, minlength=16)
    pairs = [a * 4 + b for a in range(4) for b in range(a + 1, 4)]
    np.testing.assert_allclose(counts[pairs] / num_users, 1 / 6, rtol=0.08)
    assert counts.sum() == counts[pairs].sum()


def test_random_slates_slate_of_all_candidates():
    """With K = C every slate is a permutation of the candidates."""
    obs = make_obs(make_catalog(np.arange(5)), 50, 5)
    slates = random_slates(Stream(0, "test/random-all"), obs)
    np.testing.assert_array_equal(np.sort(slates, axis=1), np.broadcast_to(np.arange(5), (50, 5)))


def test_random_slates_per_user_candidates_and_rows():
    """Per-user candidates are respected; a user's slate does not depend on who else is served."""
    rng = np.random.default_rng(0)
    cat = make_catalog(np.arange(50))
    cands = np.stack([rng.permutation(50)[:8] for _ in range(30)])
    obs = make_obs(cat, 30, 4, candidates=cands, step=2)
    stream = Stream(0, "test/random-rows")
    slates = random_slates(stream, obs)
    assert_valid_slates(obs, slates)
    rows = np.array([3, 17, 29])
    np.testing.assert_array_equal(random_slates(stream, obs, rows=rows), slates[rows])


def test_top_k_shared_scores():
    """With shared scores every user gets the k best candidates, best first."""
    cands = np.broadcast_to(np.array([10, 11, 12, 13, 14]), (3, 5))
    scores = np.array([0.3, 0.9, 0.1, 0.5, 0.7])
    out = top_k(scores, cands, 3, shared=True)
    np.testing.assert_array_equal(out, [[11, 14, 13]] * 3)


def test_top_k_per_user_scores():
    """With per-user scores each row gets its own k best candidates in descending order."""
    rng = np.random.default_rng(0)
    cands = np.stack([rng.permutation(100)[:20] for _ in range(50)])
    scores = rng.normal(size=(50, 20))
    out = top_k(scores, cands, 5, shared=False)
    want = np.take_along_axis(cands, np.argsort(-scores, axis=1)[:, :5], axis=1)
    np.testing.assert_array_equal(out, want)


def test_top_k_all_candidates():
    """With K equal to the number of candidates all are returned, sorted by score."""
    cands = np.array([[4, 5, 6], [7, 8, 9]])
    scores = np.array([[1.0, 3.0, 2.0], [0.0, -1.0, 5.0]])
    np.testing.assert_array_equal(top_k(scores, cands, 3, shared=False), [[5, 6, 4], [9, 7, 8]])


def _scores_with_ties(kind: int, rng: np.random.Generator) -> np.ndarray:
    """(B, C) scores: distinct, many ties, NaNs, integer ties or signed zeros and infinities."""
    shape = (int(rng.integers(1, 200)), int(rng.integers(120, 400)))
    if kind == 0:
        return rng.random(shape)
    if kind == 1:
        return rng.integers(0, 4, shape).astype(np.float64)
    if kind == 2:
        s = rng.random(shape).astype(np.float32)
        s[rng.random(shape) < 0.02] = np.nan
        return s
    if kind == 3:
        return rng.integers(-2, 3, shape)
    s = np.round(rng.random(shape), 2)
    s[:, ::7], s[:, ::11], s[rng.random(shape) < 0.02] = -0.0, 0.0, np.inf
    return s


@pytest.mark.parametrize("kind", range(5))
def test_top_indices_equal_numpy_ranking_with_ties_and_nan(kind):
    """Top indices equal argpartition + stable argsort, ties, infinities and NaN included.

    Short slates are ranked by torch, long ones (up to every column) by a full sort per row.
    """
    rng = np.random.default_rng(kind)
    for _ in range(20):
        scores = _scores_with_ties(kind, rng)
        c = scores.shape[1]
        for k in (int(rng.integers(1, 12)), int(rng.integers(c // 2, c + 1)), c):
            np.testing.assert_array_equal(top_indices(scores, k), _top_indices_numpy(scores, k))


# ----------------------------------------------------------------------------- popularity


CTX = SimpleNamespace(seed=0, num_users=10)


@pytest.mark.parametrize("high", [7, 500, 10**7])
def test_count_by_id_equals_unique_and_bincount(high):
    """Counting over the id range gives np.unique's ids and bincount's sums, bit for bit."""
    rng = np.random.default_rng(high)
    ids = rng.integers(0, high, 3000)
    for weights in (None, rng.random(3000).astype(np.float32)):
        uniq, inv = np.unique(ids, return_inverse=True)
        sums = np.bincount(inv, weights=weights, minlength=uniq.shape[0]).astype(float)
        got_ids, got_sums = _count_by_id(ids, weights)
        np.testing.assert_array_equal(got_ids, uniq)
        np.testing.assert_array_equal(got_sums.view(np.uint64), sums.view(np.uint64))
        # PAD entries (rows without a click) are skipped with their weights
        padded = np.where(rng.random(3000) < 0.3, PAD, ids)
        keep = padded != PAD
        uniq, inv = np.unique(padded[keep], return_inverse=True)
        w = None if weights is None else weights[keep]
        sums = np.bincount(inv, weights=w, minlength=uniq.shape[0]).astype(float)
        got_ids, got_sums = _count_by_id(padded, weights, skip_pad=True)
        np.testing.assert_array_equal(got_ids, uniq)
        np.testing.assert_array_equal(got_sums.view(np.uint64), sums.view(np.uint64))


def popularity_log() -> Log:
    """Clicks: item 7 five times, item 3 three times, item 9 once; item 1 only impressed."""
    slates = [[7, 1], [7, 1], [1, 7], [7, 3], [3, 7], [3, 1], [3, 1], [9, 1], [1, 2], [1, 2]]
    clicked = [0, 0, 1, 0, 1, 0, 0, 0, -1, -1]
    return make_log(np.arange(10), slates, clicked)


def test_popularity_ranks_most_clicked_first_after_retrain():
    """After a retrain the most-clicked items of the log come first, for every user."""
    agent = PopularityAgent(PopularityAgent.Params(), CTX)
    agent.retrain(popularity_log())
    obs = make_obs(make_catalog(np.arange(12)), 10, 3, step=5)
    np.testing.assert_array_equal(agent.act(obs).item_ids, np.tile([7, 3, 9], (10, 1)))


def test_popularity_per_user_candidates():
    """With per-user candidates each user gets the most popular of their own candidates."""
    agent = PopularityAgent(PopularityAgent.Params(), CTX)
    agent.retrain(popularity_log())
    cands = np.array([[0, 3, 5, 9], [9, 7, 2, 4], [1, 2, 4, 5]])
    obs = make_obs(make_catalog(np.arange(12)), 3, 2, candidates=cands)
    out = agent.act(obs).item_ids
    np.testing.assert_array_equal(out[:2], [[3, 9], [7, 9]])
    assert set(out[2]) <= {1, 2, 4, 5}


def test_popularity_impressions_signal():
    """With ``signal: impressions`` the most shown item comes first."""
    agent = PopularityAgent(PopularityAgent.Params(signal="impressions"), CTX)
    agent.retrain(popularity_log())
    obs = make_obs(make_catalog(np.arange(12)), 2, 2)
    np.testing.assert_array_equal(agent.act(obs).item_ids, [[1, 7], [1, 7]])


def test_popularity_before_retrain_is_shared_random_order():
    """Before any retrain the order is a per-step tie-break shared by all users."""
    agent = PopularityAgent(PopularityAgent.Params(), CTX)
    cat = make_catalog(np.arange(30))
    first = agent.act(make_obs(cat, 4, 5, step=0)).item_ids
    assert (first == first[0]).all()
    later = [agent.act(make_obs(cat, 4, 5, step=t)).item_ids[0] for t in range(1, 4)]
    assert any(not np.array_equal(first[0], s) for s in later)


# ----------------------------------------------------------------------------- epsilon-greedy


TRUE_RATES = np.array([0.1, 0.25, 0.05, 0.3, 0.7, 0.15, 0.2, 0.1, 0.35, 0.05])
BEST = int(np.argmax(TRUE_RATES))


def drive_bandit(agent: EpsilonGreedyAgent, steps: int, num_users: int = 40) -> list[np.ndarray]:
    """Serve slates of one item and click with the item's true rate; return the slates."""
    rng = np.random.default_rng(0)
    cat = make_catalog(np.arange(TRUE_RATES.size))
    served = []
    for t in range(steps):
        obs = make_obs(cat, num_users, 1, step=t)
        slates = np.asarray(agent.act(obs).item_ids)
        clicked = rng.random(num_users) < TRUE_RATES[slates[:, 0]]
        agent.update(
            Feedback(
                step=t,
                user_ids=obs.user_ids,
                slates=slates,
                clicked_pos=np.where(clicked, 0, -1).astype(np.int64),
                engagement=clicked.astype(np.float32),
            )
        )
        served.append(slates)
    return served


def test_epsilon_greedy_zero_epsilon_converges_to_best_item():
    """With epsilon 0 the agent ends up serving the item with the highest true click rate."""
    agent = EpsilonGreedyAgent(EpsilonGreedyAgent.Params(epsilon=0.0), CTX)
    served = drive_bandit(agent, steps=40)
    assert (served[-1] == BEST).all()
    assert np.mean([(s == BEST).all() for s in served[-15:]]) == 1.0
    assert int(np.argmax(agent.estimates(np.arange(TRUE_RATES.size)))) == BEST
    # greedy slates are shared: every user got the same item at each step
    assert all((s == s[0]).all() for s in served)


def test_epsilon_greedy_one_epsilon_is_random():
    """With epsilon 1 the slates are uniform over candidates even after learning."""
    agent = EpsilonGreedyAgent(EpsilonGreedyAgent.Params(epsilon=0.0), CTX)
    drive_bandit(agent, steps=20)
    explorer = EpsilonGreedyAgent(EpsilonGreedyAgent.Params(epsilon=1.0), CTX)
    explorer.load_state_dict(agent.state_dict())
    num_users = 5000
    obs = make_obs(make_catalog(np.arange(TRUE_RATES.size)), num_users, 3, step=99)
    greedy = agent.act(obs).item_ids
    assert (greedy[:, 0] == BEST).all()
    slates = explorer.act(obs).item_ids
    assert_valid_slates(obs, slates)
    top = np.bincount(slates[:, 0], minlength=TRUE_RATES.size) / num_users
    np.testing.assert_allclose(top, 1 / TRUE_RATES.size, atol=0.02)


def test_epsilon_greedy_explores_about_epsilon_of_users():
    """With epsilon 0.25 about a quarter of users get a non-greedy slate."""
    agent = EpsilonGreedyAgent(EpsilonGreedyAgent.Params(epsilon=0.25), CTX)
    num_users = 8000
    obs = make_obs(make_catalog(np.arange(50)), num_users, 2, step=3)
    greedy = EpsilonGreedyAgent(EpsilonGreedyAgent.Params(epsilon=0.0), CTX).act(obs).item_ids
    slates = agent.act(obs).item_ids
    differs = (slates != greedy).any(axis=1).mean()
    assert 0.22 < differs < 0.27


# ----------------------------------------------------------------------------- mf


def aligned_world(seed: int = 0):
    """Two user groups and two item groups with aligned features, and a log of aligned clicks."""
    rng = np.random.default_rng(seed)
    num_users, num_items, dim = 40, 20, 4
    group_of_item = np.arange(num_items) >= num_items // 2
    basis = np.eye(dim, dtype=np.float32)
    features = basis[group_of_item.astype(int)] + 0.1 * rng.normal(size=(num_items, dim))
    catalog = make_catalog(np.arange(num_items), features.astype(np.float32), dim=dim)
    group_of_user = np.arange(num_users) >= num_users // 2
    users, slates, clicks = [], [], []
    for _ in range(10):
        for u in range(num_users):
            a = rng.choice(np.flatnonzero(~group_of_item), 2, replace=False)
            b = rng.choice(np.flatnonzero(group_of_item), 2, replace=False)
            slate = rng.permutation(np.concatenate([a, b]))
            aligned = np.flatnonzero(group_of_item[slate] == group_of_user[u])
            users.append(u)
            slates.append(slate)
            clicks.append(rng.choice(aligned))
    log = make_log(users, slates, clicks, catalog)
    return catalog, log, group_of_user, group_of_item


def test_mf_serves_random_slates_before_retrain():
    """Before its first retrain mf serves valid random slates (not all users the same)."""
    catalog, _, _, _ = aligned_world()
    agent = MatrixFactorizationAgent(
        MatrixFactorizationAgent.Params(), SimpleNamespace(seed=0, num_users=40)
    )
    obs = make_obs(catalog, 40, 5)
    slates = agent.act(obs).item_ids
    assert_valid_slates(obs, slates)
    assert not (slates == slates[0]).all()


def test_mf_ranks_items_aligned_with_user_group():
    """After retraining on aligned clicks, mf puts each user's group items above the others."""
    catalog, log, group_of_user, group_of_item = aligned_world()
    params = MatrixFactorizationAgent.Params(factors=4, epochs=30, lr=0.05, batch_size=256)
    agent = MatrixFactorizationAgent(params, SimpleNamespace(seed=0, num_users=40))
    agent.retrain(log)
    obs = make_obs(catalog, 40, 5, step=10)
    slates = agent.act(obs).item_ids
    assert_valid_slates(obs, slates)
    aligned = group_of_item[slates] == group_of_user[:, None]
    assert aligned.mean() >= 0.95
    # cold start: unseen items are scored from their features alone
    rng = np.random.default_rng(1)
    new_feats = np.eye(4, dtype=np.float32)[[0, 0, 1, 1]] + 0.1 * rng.normal(size=(4, 4))
    new_cat = make_catalog(np.arange(100, 104), new_feats.astype(np.float32), dim=4)
    new_slates = agent.act(make_obs(new_cat, 40, 2, step=11)).item_ids
    new_aligned = (new_slates >= 102) == group_of_user[:, None]
    assert new_aligned.mean() >= 0.9


def test_mf_retrain_is_deterministic():
    """Two mf agents retrained on the same log with the same seed hold identical models."""
    _, log, _, _ = aligned_world()
    params = MatrixFactorizationAgent.Params(factors=4, epochs=2)
    states = []
    for _ in range(2):
        agent = MatrixFactorizationAgent(params, SimpleNamespace(seed=3, num_users=40))
        agent.retrain(log)
        states.append(agent.state_dict())
    assert states[0].keys() == states[1].keys()
    for key in states[0]:
        np.testing.assert_array_equal(states[0][key], states[1][key], err_msg=key)


def test_mf_retrain_without_clicks_keeps_random_serving():
    """A log without clicks leaves mf untrained (it keeps serving random slates)."""
    catalog, log, _, _ = aligned_world()
    no_clicks = make_log(log.user_ids, log.slates, np.full(log.num_rows, -1), catalog)
    agent = MatrixFactorizationAgent(
        MatrixFactorizationAgent.Params(), SimpleNamespace(seed=0, num_users=40)
    )
    agent.retrain(no_clicks)
    assert agent.state_dict()["num_retrains"] == 0
    assert not any(k.startswith("model.") for k in agent.state_dict())
