"""Behaviour tests of the bandit agents: contracts, regret, exact formulas, additive updates."""

from __future__ import annotations

import math
import re
from types import SimpleNamespace

import numpy as np
import pytest
from pydantic import ValidationError

from simlab import registry
from simlab.agents import bandit_math, bandits
from simlab.agents.bandits import (
    DiagLinUCBAgent,
    LinUCBAgent,
    ThompsonSamplingAgent,
    UCB1Agent,
    beta_logit_draws,
    pair_features,
)
from simlab.batch import PAD, Catalog, Feedback, Observation
from simlab.rng import Stream
from simlab.testing import check_agent

NEW_BANDITS = ["ucb1", "thompson", "linucb", "linear-ts", "diag-linucb"]
SEEDS = [0, 1, 2]

# ----------------------------------------------------------------------------- helpers


def make_agent(name: str, seed: int = 0, **params):
    """A registered agent built outside a World (only the seed of the context is used)."""
    cls = registry.resolve("agents", name)
    return cls(cls.Params(**params), SimpleNamespace(seed=seed))


def make_catalog(item_ids, features) -> Catalog:
    """A catalog of ``item_ids`` with the given ``(N, d)`` features."""
    ids = np.asarray(item_ids, np.int64)
    n = ids.shape[0]
    return Catalog(
        item_ids=ids,
        features=np.asarray(features, np.float32),
        creator=np.zeros(n, np.int64),
        age=np.zeros(n, np.int64),
    )


def make_obs(catalog, user_ids, user_features, step, slate_size=1, candidates=None):
    """An observation; shared candidates (the whole catalog) unless ``candidates`` is given."""
    user_ids = np.asarray(user_ids, np.int64)
    b = user_ids.shape[0]
    shared = candidates is None
    if shared:
        candidates = np.broadcast_to(catalog.item_ids, (b, catalog.num_items))
    return Observation(
        step=step,
        user_ids=user_ids,
        user_features=np.asarray(user_features, np.float32),
        history=np.full((b, 2), PAD, np.int64),
        candidates=np.asarray(candidates, np.int64),
        catalog=catalog,
        slate_size=slate_size,
        shared_candidates=shared,
    )


def make_feedback(step, user_ids, slates, clicked_pos) -> Feedback:
    """Feedback from arrays (engagement 1 on a click)."""
    clicked_pos = np.asarray(clicked_pos, np.int64)
    return Feedback(
        step=step,
        user_ids=np.asarray(user_ids, np.int64),
        slates=np.ascontiguousarray(slates, dtype=np.int64),
        clicked_pos=clicked_pos,
        engagement=(clicked_pos >= 0).astype(np.float32),
    )


def run_bandit(agent, catalog, click_prob, user_ids, user_features, steps, seed, per_step=None):
    """Drive ``agent`` with slate size 1 and Bernoulli clicks; return per-step pseudo-regret.

    ``click_prob(user_rows, item_rows)`` gives the true click probability (broadcasting);
    each step serves ``per_step`` users drawn from the pool (all of them if ``None``).
    Clicks and the served users are drawn through ``simlab.rng`` streams of the test.
    """
    clicks, pick = Stream(seed, "test/bandits/click"), Stream(seed, "test/bandits/users")
    all_items = np.arange(catalog.num_items)[None, :]
    regret = np.zeros(steps)
    for t in range(steps):
        rows = np.arange(user_ids.shape[0])
        if per_step is not None:
            rows = np.sort(np.argsort(pick.uniform(user_ids, t))[:per_step])
        obs = make_obs(catalog, user_ids[rows], user_features[rows], t)
        shown = agent.act(obs).item_ids
        p = click_prob(rows, catalog.rows(shown[:, 0]))
        regret[t] = (click_prob(rows[:, None], all_items).max(axis=1) - p).sum()
        clicked = clicks.uniform(user_ids[rows], t) < p
        agent.update(make_feedback(t, user_ids[rows], shown, np.where(clicked, 0, -1)))
    return regret


# ----------------------------------------------------------------------------- contracts


@pytest.mark.parametrize("name", NEW_BANDITS)
def test_passes_check_agent(name):
    """The agent keeps the contract of simlab.testing.check_agent (shared and per-user)."""
    check_agent(name)


@pytest.mark.parametrize("name", ["linucb", "linear-ts", "diag-linucb"])
def test_update_needs_the_served_users(name):
    """A contextual agent refuses feedback of users its last act() did not serve."""
    agent = make_agent(name)
    cat = make_catalog([3, 4], np.eye(2))
    agent.act(make_obs(cat, [0, 1], np.ones((2, 2)), 0))
    with pytest.raises(RuntimeError, match=re.escape("update() got users [7]")):
        agent.update(make_feedback(0, [0, 7], [[3], [4]], [0, -1]))


@pytest.mark.parametrize("name", NEW_BANDITS)
def test_state_taken_between_act_and_update_learns_the_same(name):
    """A checkpoint taken after act() and before update() learns exactly like the original."""
    g = np.random.default_rng(3)
    cat = make_catalog(np.arange(10, 22), g.normal(size=(12, 3)))
    feats = g.normal(size=(8, 3))
    agent, fresh = make_agent(name), make_agent(name)
    for t in range(3):
        obs = make_obs(cat, np.arange(8), feats, t, slate_size=2)
        slates = agent.act(obs).item_ids
        if t == 2:
            fresh.load_state_dict(agent.state_dict())
        fb = make_feedback(t, np.arange(8), slates, np.arange(8) % 3 - 1)
        agent.update(fb)
    fresh.update(fb)
    nxt = make_obs(cat, np.arange(8), feats, 3, slate_size=2)
    np.testing.assert_array_equal(fresh.act(nxt).item_ids, agent.act(nxt).item_ids)
    for key, value in agent.state_dict().items():
        np.testing.assert_allclose(fresh.state_dict()[key], value, err_msg=key)


# ----------------------------------------------------------------------------- item level


def test_ucb1_index_and_unseen_items_first():
    """UCB1 ranks never-shown items first, then by clicks/n + c*sqrt(2 ln N / n)."""
    agent = make_agent("ucb1", c=0.5)
    agent.update(make_feedback(0, [0, 1, 2, 3], [[5], [5], [6], [7]], [0, -1, -1, 0]))
    n_total = 4
    expected = np.array([1 / 2, 0.0, 1.0]) + 0.5 * np.sqrt(
        2 * math.log(n_total) / np.array([2.0, 1.0, 1.0])
    )
    np.testing.assert_allclose(agent.indices(np.array([5, 6, 7])), expected)
    assert np.isinf(agent.indices(np.array([8]))).all()
    cat = make_catalog([5, 6, 7, 8, 9], np.zeros((5, 1)))
    slates = agent.act(make_obs(cat, [0, 1], np.zeros((2, 1)), 1, slate_size=5)).item_ids
    assert set(slates[0, :2]) == {8, 9}  # unseen first
    np.testing.assert_array_equal(slates[:, 2:], [[7, 5, 6], [7, 5, 6]])


@pytest.mark.parametrize("a, b", [(1.0, 1.0), (0.3, 0.6), (2.5, 7.0), (40.0, 700.0), (0.05, 3.0)])
def test_beta_draws_follow_the_beta_distribution(a, b):
    """Keyed Beta draws match Beta(a, b): mean, variance and a two-sample KS distance."""
    n = 20_000
    logits = beta_logit_draws(Stream(4, "test/beta"), np.arange(n), 2, np.full(n, a), np.full(n, b))
    x = 1.0 / (1.0 + np.exp(-logits))
    mean, var = a / (a + b), a * b / ((a + b) ** 2 * (a + b + 1))
    assert abs(x.mean() - mean) < 5 * math.sqrt(var / n)
    assert abs(x.var() / var - 1) < 0.06
    ref = np.sort(np.random.default_rng(0).beta(a, b, n))
    grid = np.sort(np.concatenate([x, ref]))
    ks = np.abs(np.searchsorted(np.sort(x), grid) - np.searchsorted(ref, grid)).max() / n
    assert ks < 0.025  # the 0.1% critical value is 0.0195


def test_thompson_draws_do_not_depend_on_other_users():
    """A user's Thompson draws depend on its own (user, item, step) keys only."""
    agent = make_agent("thompson", seed=2)
    agent.update(make_feedback(0, [0, 1, 2], [[5, 6], [6, 7], [5, 7]], [0, 1, -1]))
    cands = np.broadcast_to(np.array([5, 6, 7]), (4, 3))
    full = agent.sample(np.array([1, 4, 9, 12]), cands, 3, shared=True)
    part = agent.sample(np.array([9]), np.array([[7, 5, 6]]), 3)  # keyed by item, not slot
    np.testing.assert_array_equal(full[2], part[0, [1, 2, 0]])
    assert not np.allclose(full[0], full[1])
    assert not np.allclose(full[0], agent.sample(np.array([1]), cands[:1], 4)[0])  # new step


@pytest.mark.parametrize("seed", SEEDS)
def test_ucb1_and_thompson_regret_is_sublinear_and_below_epsilon_greedy(seed):
    """In a stationary 5-arm world UCB1 and TS regret flattens and ends far below eps-greedy."""
    rates = np.array([0.1, 0.2, 0.3, 0.35, 0.5])
    cat = make_catalog(np.arange(20, 25), np.zeros((5, 2)))
    users, feats = np.arange(100), np.zeros((100, 2))

    def prob(u, i):
        return np.broadcast_to(rates[i], np.broadcast(u, i).shape)

    regret = {
        name: run_bandit(make_agent(name, seed, **kw), cat, prob, users, feats, 500, seed)
        for name, kw in [("ucb1", {}), ("thompson", {}), ("epsilon-greedy", {"epsilon": 0.1})]
    }
    halves = {name: (r[:250].sum(), r[250:].sum()) for name, r in regret.items()}
    for name in ("ucb1", "thompson"):
        assert halves[name][1] < 0.5 * halves[name][0], halves
    # eps-greedy pays ~0.1 * mean gap per pull forever (~500 per half): linear regret
    assert halves["epsilon-greedy"][1] > 0.7 * halves["epsilon-greedy"][0], halves
    # over 12 seeds: UCB1 / eps-greedy <= 0.43 and Thompson / eps-greedy <= 0.07
    eps = regret["epsilon-greedy"].sum()
    assert regret["ucb1"].sum() < 0.6 * eps, halves
    assert regret["thompson"].sum() < 0.2 * eps, halves


# ----------------------------------------------------------------------------- linear


def _linear_world(seed: int, num_items: int = 300, num_users: int = 400, d: int = 6):
    """Profiles, item features and click probability linear in ``x_ui = [u*v, v, 1]``."""
    g = np.random.default_rng(seed)
    items = g.normal(size=(num_items, d)) / math.sqrt(d)
    users = 1.5 * g.normal(size=(num_users, d)) / math.sqrt(d)
    q = g.normal(size=d) / math.sqrt(d)

    def prob(u, i):
        return np.clip(0.3 + 0.6 * (users[u] * items[i]).sum(-1) + 0.2 * items[i] @ q, 0.01, 0.99)

    return make_catalog(np.arange(num_items) * 3 + 1, items), users, prob


@pytest.mark.parametrize("seed", SEEDS)
def test_linucb_beats_ucb1_when_rewards_are_linear(seed):
    """With 300 items and 20 steps, LinUCB's regret is far below item-level UCB1's."""
    cat, feats, prob = _linear_world(seed)
    users = np.arange(feats.shape[0])
    regret = {
        name: run_bandit(make_agent(name, seed), cat, prob, users, feats, 20, seed, per_step=50)
        for name in ("linucb", "ucb1")
    }
    # UCB1 can only try 20 of the 300 items: its regret is about that of random slates;
    # over 8 seeds LinUCB's regret was at most 10% of UCB1's
    assert regret["linucb"].sum() < 0.3 * regret["ucb1"].sum(), regret
    assert regret["linucb"][10:].sum() < regret["linucb"][:10].sum()


@pytest.mark.parametrize("shared", [True, False])
def test_linucb_scores_equal_the_explicit_formula(shared, monkeypatch):
    """LinUCB's factorised scores equal theta^T x + alpha*sqrt(x^T A^-1 x) on explicit x."""
    monkeypatch.setattr(bandit_math, "_USER_BLOCK", 4)  # 6 users: two blocks
    monkeypatch.setattr(bandit_math, "_CACHE_BLOCK", 3)  # built in pieces of 3, then 1
    g = np.random.default_rng(5)
    cat = make_catalog(np.arange(30, 40), g.normal(size=(10, 4)))
    feats = g.normal(size=(6, 4)).astype(np.float32)  # as the agent observes them
    agent = make_agent("linucb", alpha=0.7, reg=2.0)
    a, b = 2.0 * np.eye(9), np.zeros(9)  # A and b summed here, impression by impression
    for t in range(3):
        slates = agent.act(make_obs(cat, np.arange(6), feats, t, slate_size=3)).item_ids
        fb = make_feedback(t, np.arange(6), slates, np.arange(6) % 4 - 1)
        agent.update(fb)
        for u in range(6):
            for k, j in enumerate(slates[u]):
                x = pair_features(feats[u], cat.features[cat.rows(j)])
                a += np.outer(x, x)
                b += x * (fb.clicked_pos[u] == k)
    cands = None if shared else np.stack([g.permutation(cat.item_ids)[:5] for _ in range(6)])
    obs = make_obs(cat, np.arange(6), feats, 3, slate_size=2, candidates=cands)
    x = pair_features(feats[:, None, :], cat.features[cat.rows(obs.candidates)])
    theta = np.linalg.solve(a, b)
    ucb = x @ theta + 0.7 * np.sqrt(np.einsum("bci,ij,bcj->bc", x, np.linalg.inv(a), x))
    np.testing.assert_allclose(agent.scores(obs), ucb, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("shared", [True, False])
def test_linucb_without_exploration_skips_the_bonus_exactly(shared):
    """With alpha 0 the scores are the linear scores plus 0 * bonus, bit for bit."""
    g = np.random.default_rng(6)
    cat = make_catalog(np.arange(30, 40), g.normal(size=(10, 4)))
    feats = g.normal(size=(6, 4)).astype(np.float32)
    agent = make_agent("linucb", alpha=0.0)
    for t in range(2):
        slates = agent.act(make_obs(cat, np.arange(6), feats, t, slate_size=3)).item_ids
        agent.update(make_feedback(t, np.arange(6), slates, np.arange(6) % 4 - 1))
    cands = None if shared else np.stack([g.permutation(cat.item_ids)[:5] for _ in range(6)])
    obs = make_obs(cat, np.arange(6), feats, 2, slate_size=2, candidates=cands)
    got = agent.scores(obs)
    u, v = agent._prepare(obs)
    theta, a_inv, _ = agent.solve()
    bonus = np.sqrt(np.maximum(bandits._quadratic(a_inv, u, v), 0.0))
    want = bandits._linear_scores(theta, u, v) + 0.0 * bonus
    np.testing.assert_array_equal(got.view(np.uint64), want.view(np.uint64))


@pytest.mark.parametrize("seed", SEEDS)
def test_linear_ts_explores_and_concentrates_on_the_best_arm(seed):
    """Linear TS gives users different slates at a step yet ends on the best arm."""
    rates = np.array([0.1, 0.2, 0.3, 0.35, 0.5, 0.25])
    cat = make_catalog(np.arange(5, 11), np.eye(6))  # one-hot items: a plain 6-arm bandit
    agent = make_agent("linear-ts", seed)
    users, feats = np.arange(50), np.ones((50, 6))
    clicks = Stream(seed, "test/linear-ts/click")
    shown = []
    for t in range(120):
        slates = agent.act(make_obs(cat, users, feats, t)).item_ids
        shown.append(slates[:, 0])
        clicked = clicks.uniform(users, t) < rates[cat.rows(slates[:, 0])]
        agent.update(make_feedback(t, users, slates, np.where(clicked, 0, -1)))
    shown = np.array(shown)
    assert len(np.unique(shown[0])) >= 5  # 50 users, 6 arms: the draws differ per user
    best = shown == 9
    assert best[-30:].mean() > 0.95  # over 12 seeds: >= 0.98
    assert best[:10].mean() < best[-30:].mean()


# ----------------------------------------------------------------------------- Diag-LinUCB


def _reference_weights(agent: DiagLinUCBAgent, features: np.ndarray) -> np.ndarray:
    """``(B, clusters)`` dense weights from the centroids, with explicit loops."""
    p = agent.params
    centres = agent.centroids
    w = np.zeros((features.shape[0], centres.shape[0]))
    for u, f in enumerate(features.astype(np.float64)):
        dist = [float(((f - c) ** 2).sum()) for c in centres]
        near = sorted(range(len(dist)), key=lambda c: dist[c])[: p.clusters_per_user]
        z = sum(math.exp(-(dist[c] - dist[near[0]]) / p.temperature) for c in near)
        for c in near:
            w[u, c] = math.exp(-(dist[c] - dist[near[0]]) / p.temperature) / z
    return w


def _diag_setup(seed: int = 0):
    """An agent after 4 steps of random clicks, and its weights/feedback for a reference."""
    g = np.random.default_rng(seed)
    cat = make_catalog([2, 3, 5, 8, 13, 21], g.normal(size=(6, 3)))
    feats = g.normal(size=(12, 3)).astype(np.float32)  # as the agent observes them
    agent = make_agent("diag-linucb", seed, num_clusters=4, clusters_per_user=2, alpha=0.8, reg=1.5)
    log = []
    for t in range(4):
        slates = agent.act(make_obs(cat, np.arange(12), feats, t, slate_size=2)).item_ids
        fb = make_feedback(t, np.arange(12), slates, g.integers(-1, 2, size=12))
        agent.update(fb)
        log.append(fb)
    return agent, cat, feats, log


def test_diag_linucb_scores_equal_a_reference_computation():
    """Scores equal sum_c w b/d + alpha*sqrt(sum_c w^2/d) with d, b summed by explicit loops."""
    agent, cat, feats, log = _diag_setup()
    w = _reference_weights(agent, feats)
    nc = agent.centroids.shape[0]
    d = {(j, c): agent.params.reg for j in cat.item_ids for c in range(nc)}
    b = {(j, c): 0.0 for j in cat.item_ids for c in range(nc)}
    for fb in log:
        for u in range(fb.user_ids.shape[0]):
            for k, j in enumerate(fb.slates[u]):
                r = 1.0 if fb.clicked_pos[u] == k else 0.0
                for c in range(nc):
                    d[j, c] += w[u, c] ** 2
                    b[j, c] += w[u, c] * r
    g = np.random.default_rng(9)
    per_user = np.stack([g.permutation(cat.item_ids)[:4] for _ in range(12)])
    for cands in (None, per_user):
        obs = make_obs(cat, np.arange(12), feats, 4, slate_size=2, candidates=cands)
        expected = np.zeros(obs.candidates.shape)
        for u in range(12):
            for i, j in enumerate(obs.candidates[u]):
                mean = sum(w[u, c] * b[j, c] / d[j, c] for c in range(nc))
                var = sum(w[u, c] ** 2 / d[j, c] for c in range(nc))
                expected[u, i] = mean + 0.8 * math.sqrt(var)
        np.testing.assert_allclose(agent.scores(obs), expected, rtol=1e-10)
    assert np.ptp(expected) > 0.01  # the learned edges make a difference


def test_diag_linucb_partial_updates_add_up():
    """Partial sums of two halves of a feedback batch, applied, equal one whole update."""
    whole, cat, feats, _ = _diag_setup(seed=1)
    shards = make_agent("diag-linucb", 1, **whole.params.model_dump())
    shards.load_state_dict(whole.state_dict())
    obs = make_obs(cat, np.arange(12), feats, 4, slate_size=3)
    slates = whole.act(obs).item_ids
    shards.act(obs)
    fb = make_feedback(4, np.arange(12), slates, np.arange(12) % 4 - 1)
    half = [np.arange(6), np.arange(6, 12)]
    parts = [shards.partial_update(make_feedback(4, h, slates[h], fb.clicked_pos[h])) for h in half]
    for part in reversed(parts):  # order does not matter
        shards.apply_update(part)
    whole.update(fb)
    for key in ("d", "b"):
        np.testing.assert_allclose(shards.state_dict()[key], whole.state_dict()[key], rtol=1e-12)
    w = _reference_weights(whole, feats)
    for h, part in zip(half, parts, strict=True):  # each impression adds sum_c w_uc^2
        assert part["d"].sum() == pytest.approx(3 * (w[h] ** 2).sum())
        assert part["b"].sum() == pytest.approx(w[h][fb.clicked[h]].sum())


def test_diag_linucb_new_items_grow_the_storage():
    """Item ids far beyond the first capacity get fresh edges with d = reg and b = 0."""
    agent, cat, feats, _ = _diag_setup()
    big = make_catalog([2, 5_000, 70_001], np.ones((3, 3)))
    obs = make_obs(big, np.arange(12), feats, 5, slate_size=2)
    w = _reference_weights(agent, feats)
    fresh = 0.8 * np.sqrt((w**2).sum(axis=1) / 1.5)  # b = 0 and d = reg on every edge
    np.testing.assert_allclose(agent.scores(obs)[:, 1:], np.stack([fresh, fresh], 1))
    d, b = agent.edge_stats(np.array([70_001]))
    np.testing.assert_array_equal(d, 1.5)
    np.testing.assert_array_equal(b, 0.0)
    slates = agent.act(obs).item_ids
    agent.update(make_feedback(5, np.arange(12), slates, np.zeros(12, np.int64)))
    assert (agent.edge_stats(slates[:, 0])[1].sum(axis=-1) > 0).all()  # clicked on top
    assert (agent.edge_stats(slates)[0].sum(axis=-1) > 4 * 1.5).all()  # shown


def test_diag_linucb_rejects_more_clusters_per_user_than_clusters():
    """clusters_per_user above num_clusters is a validation error naming both fields."""
    msg = "Expects `clusters_per_user` <= `num_clusters` (4), actual value: 5"
    with pytest.raises(ValidationError, match=re.escape(msg)):
        DiagLinUCBAgent.Params(num_clusters=4, clusters_per_user=5)


def test_bandit_params_have_descriptions():
    """Every scenario key of the new bandits is documented."""
    for cls in (UCB1Agent, ThompsonSamplingAgent, LinUCBAgent, DiagLinUCBAgent):
        for name, field in cls.Params.model_fields.items():
            assert field.description, f"{cls.__name__}.{name}"
