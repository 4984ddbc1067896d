"""How the bandit agents turn scores into slates: real differences, ties, unseen items, exploration.

Classes:

* distinct scores: a slate is the top-K of the agent's own scores (its ``estimates``,
  ``indices`` or ``scores``), the tie-break never overrides a real difference;
* exact ties (a fresh model): broken by one key per (item, step), so every user who has two
  tied items puts them in the same order, whatever the order of its candidates, and the order
  changes with the step; that order is the agent's tie-break uniforms, largest first;
* UCB1: items never shown come before every shown one, however high its index;
* epsilon-greedy: its propensities are ``(1 - eps) [greedy slot] + eps / C`` per slot, and the
  slates it serves are distributed that way (counted over many users).
"""

from __future__ import annotations

import numpy as np
import pytest
from test_bandits import make_agent, make_catalog, make_feedback, make_obs

from simlab.agents.bandits import pair_features
from simlab.rng import Stream


def _catalog(seed: int = 0, n: int = 12, d: int = 3):
    g = np.random.default_rng(seed)
    return make_catalog(np.arange(n) * 5 + 2, g.normal(size=(n, d))), g


def _per_user_candidates(g, item_ids, users: int, c: int) -> np.ndarray:
    """``(users, c)`` a random subset of the items per user, in a random order."""
    return np.stack([g.permutation(item_ids)[:c] for _ in range(users)])


# agents whose fresh model scores every candidate the same (an exact tie for every user)
FRESH_TIES = [
    ("epsilon-greedy", {"epsilon": 0.0}),
    ("ucb1", {}),
    ("linucb", {"alpha": 0.0}),
    ("linear-ts", {"scale": 0.0}),
    ("diag-linucb", {"num_clusters": 2, "clusters_per_user": 2}),
]


@pytest.mark.parametrize(("name", "params"), FRESH_TIES, ids=[n for n, _ in FRESH_TIES])
def test_exact_ties_are_broken_by_one_key_per_item_and_step(name, params):
    """Tied candidates come in one order per step, the same for every user, new each step."""
    cat, g = _catalog(1)
    users = 40
    feats = g.normal(size=(users, 3))
    orders = []
    for step in (0, 1):
        agent = make_agent(name, 3, **params)
        cands = _per_user_candidates(g, cat.item_ids, users, 8)
        slates = agent.act(make_obs(cat, np.arange(users), feats, step, 8, cands)).item_ids
        np.testing.assert_array_equal(np.sort(slates, axis=1), np.sort(cands, axis=1))
        order = agent.act(make_obs(cat, np.arange(3), feats[:3], step, 12)).item_ids
        assert (order == order[0]).all()  # shared candidates: one order for every user
        orders.append(order[0].tolist())
        for row in slates:  # each user's own candidates come in that same order
            np.testing.assert_array_equal(row, [i for i in order[0] if i in set(row)])
    assert orders[0] != orders[1]


@pytest.mark.parametrize(("name", "params"), FRESH_TIES, ids=[n for n, _ in FRESH_TIES])
def test_exact_ties_come_by_decreasing_tiebreak_draw(name, params):
    """The tied order is the agent's ``<stream>/tiebreak`` uniforms per (item, step), largest first.

    (For UCB1 the never-shown items: every item of a fresh model.)
    """
    cat, g = _catalog(4)
    for step in (0, 5):
        agent = make_agent(name, 3, **params)
        order = agent.act(make_obs(cat, np.arange(4), g.normal(size=(4, 3)), step, 12)).item_ids
        u = Stream(3, f"agent/{name}/tiebreak").uniform(cat.item_ids, step)
        np.testing.assert_array_equal(order, np.broadcast_to(cat.item_ids[np.argsort(-u)], (4, 12)))


def _learned(name: str, params: dict, steps: int = 6):
    """An agent after ``steps`` steps of random clicks on random slates of 3, and its world."""
    cat, g = _catalog(2)
    feats = g.normal(size=(30, 3)).astype(np.float32)
    agent = make_agent(name, 5, **params)
    for t in range(steps):
        agent.act(make_obs(cat, np.arange(30), feats, t, 3))  # the context of the update
        slates = _per_user_candidates(g, cat.item_ids, 30, 3)
        agent.update(make_feedback(t, np.arange(30), slates, g.integers(-1, 3, size=30)))
    return agent, cat, feats, g


def _reference_scores(name: str, agent, obs) -> np.ndarray:
    """``(B, C)`` what the agent ranks by, from its public score functions."""
    if name == "epsilon-greedy":
        return agent.estimates(obs.candidates)
    if name == "ucb1":
        return agent.indices(obs.candidates)
    if name == "linear-ts":  # scale 0: theta_hat^T x_ui
        theta = agent.solve()[0]
        u = obs.user_features.astype(np.float64)[:, None, :]
        return pair_features(u, obs.catalog.features[obs.catalog.rows(obs.candidates)]) @ theta
    return agent.scores(obs)


LEARNED = [
    ("epsilon-greedy", {"epsilon": 0.0}),
    ("ucb1", {"c": 0.3}),
    ("linucb", {"alpha": 0.5}),
    ("linear-ts", {"scale": 0.0}),
    ("diag-linucb", {"num_clusters": 3, "clusters_per_user": 2, "alpha": 0.5}),
]


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize(("name", "params"), LEARNED, ids=[n for n, _ in LEARNED])
def test_distinct_scores_rank_by_score(name, params, shared):
    """After learning, each slate is the top-K of the agent's scores (the tie-break is tiny)."""
    agent, cat, feats, g = _learned(name, params)
    cands = None if shared else _per_user_candidates(g, cat.item_ids, 30, 10)
    obs = make_obs(cat, np.arange(30), feats, 9, 4, cands)
    want_scores = _reference_scores(name, agent, obs)
    slates = agent.act(obs).item_ids
    ranked = np.argsort(-want_scores, axis=1, kind="stable")
    top = np.take_along_axis(want_scores, ranked, axis=1)
    clear = (np.abs(np.diff(top[:, :5], axis=1)) > 1e-6).all(axis=1)  # no near tie in the top
    assert clear.mean() > 0.5, f"{name}: too few rows without near ties to test"
    want = np.take_along_axis(obs.candidates, ranked[:, :4], axis=1)
    np.testing.assert_array_equal(slates[clear], want[clear])


def test_ucb1_puts_every_unseen_item_before_every_shown_one():
    """300 never-shown items all come before the one shown item, whatever its index."""
    agent = make_agent("ucb1", c=10.0)
    agent.update(make_feedback(0, np.arange(10), np.full((10, 1), 7), np.zeros(10, np.int64)))
    assert agent.indices(np.array([7]))[0] > 7.0  # 1 + 10 sqrt(2 ln 10 / 10)
    cat = make_catalog(np.arange(301) + 7, np.zeros((301, 1)))
    for step in (1, 2, 3):
        slates = agent.act(make_obs(cat, [0], np.zeros((1, 1)), step, 301)).item_ids
        assert slates[0, -1] == 7


@pytest.mark.parametrize("step", [1, 2, 5])
def test_ucb1_breaks_ties_among_shown_items_by_the_largest_draw(step):
    """Items shown alike (equal indices) come by their tie-break uniforms, largest first.

    As never-shown items do.
    """
    agent = make_agent("ucb1", 3, c=0.5)
    ids = np.arange(20, 32)
    agent.update(make_feedback(0, np.arange(12), ids[:, None], np.full(12, -1)))  # no clicks
    assert np.unique(agent.indices(ids)).size == 1
    cat = make_catalog(ids, np.zeros((12, 1)))
    slate = agent.act(make_obs(cat, [0], np.zeros((1, 1)), step, 12)).item_ids[0]
    u = Stream(3, "agent/ucb1/tiebreak").uniform(ids, step)
    assert slate.tolist() == ids[np.argsort(-u)].tolist()


@pytest.mark.parametrize("eps", [0.0, 0.3, 1.0])
def test_epsilon_greedy_propensities_are_the_mixture_of_greedy_and_uniform(eps):
    """Per slot ``(1 - eps) [greedy item] + eps / C``; the served slates follow them."""
    agent = make_agent("epsilon-greedy", 4, epsilon=eps)
    # estimates (clicks + 1) / (imps + 2): item 10 + i shown 4 times and clicked i times
    ids = np.repeat(np.arange(10, 15), 4)
    clicked = np.concatenate([(np.arange(4) < i) for i in range(5)])
    agent.update(make_feedback(0, np.arange(20), ids[:, None], np.where(clicked, 0, -1)))
    greedy = np.array([14, 13, 12])  # by estimate 5/6, 4/6, 3/6, 2/6, 1/6
    cat = make_catalog(np.arange(10, 15), np.zeros((5, 1)))
    users = 20_000
    obs = make_obs(cat, np.arange(users), np.zeros((users, 1)), 1, 3)
    slates = agent.act(obs)
    got = agent.propensities(obs, slates)
    want = (1 - eps) * (slates.item_ids == greedy) + eps / 5
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-15)
    for slot in range(3):  # how often each item is in each slot, against its propensity
        for item in cat.item_ids:
            share = (slates.item_ids[:, slot] == item).mean()
            p = (1 - eps) * (item == greedy[slot]) + eps / 5
            assert abs(share - p) <= 5 * np.sqrt(p * (1 - p) / users) + 1e-12, (slot, item)
