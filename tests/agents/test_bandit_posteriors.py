"""Exact posterior values of every bandit after known updates (hand-computed expectations).

A statistical test cannot see a posterior that adds impressions instead of non-clicks, or a
bonus with the wrong constant; these tests feed each bandit a few known impressions and
compare its posterior (or index, or sufficient statistics) with the formula, to 1e-12.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_bandits import make_agent, make_catalog, make_feedback, make_obs

from simlab.agents.bandits import pair_features
from simlab.agents.slate_ts import ClickData, Priors, laplace_std
from simlab.rng import Stream

ITEMS = [10, 11, 12, 13]


def _feed_counting(agent) -> None:
    """Step 0: user 0 sees [10, 11, 12] and clicks 11; user 1 sees [10, 12, 13], no click.

    Step 1: user 0 sees [10, 11] and clicks 10. Impressions: 10: 3, 11: 2, 12: 2, 13: 1;
    clicks: 10: 1, 11: 1.
    """
    agent.update(make_feedback(0, [0, 1], [[10, 11, 12], [10, 12, 13]], [1, -1]))
    agent.update(make_feedback(1, [0], [[10, 11]], [0]))


IMPRESSIONS = {10: 3, 11: 2, 12: 2, 13: 1, 99: 0}
CLICKS = {10: 1, 11: 1, 12: 0, 13: 0, 99: 0}


def test_thompson_beta_posterior():
    """Beta(prior_alpha + clicks, prior_beta + impressions - clicks) per item."""
    agent = make_agent("thompson", prior_alpha=2.0, prior_beta=3.0)
    _feed_counting(agent)
    ids = np.array(list(IMPRESSIONS))
    alpha, beta = agent.posterior(ids)
    np.testing.assert_array_equal(alpha, [2.0 + CLICKS[i] for i in ids])
    np.testing.assert_array_equal(beta, [3.0 + IMPRESSIONS[i] - CLICKS[i] for i in ids])


def test_epsilon_greedy_estimates():
    """(clicks + prior_clicks) / (impressions + prior_impressions) per item."""
    agent = make_agent("epsilon-greedy", prior_clicks=0.5, prior_impressions=4.0)
    _feed_counting(agent)
    ids = np.array(list(IMPRESSIONS))
    want = [(CLICKS[i] + 0.5) / (IMPRESSIONS[i] + 4.0) for i in ids]
    np.testing.assert_allclose(agent.estimates(ids), want, rtol=0, atol=1e-15)


def test_ucb1_indices():
    """clicks/n + c sqrt(2 ln N / n) with N every impression so far; inf when never shown."""
    agent = make_agent("ucb1", c=0.7)
    _feed_counting(agent)
    total = sum(IMPRESSIONS.values())
    ids = np.array(list(IMPRESSIONS))
    want = [
        CLICKS[i] / IMPRESSIONS[i] + 0.7 * math.sqrt(2 * math.log(total) / IMPRESSIONS[i])
        if IMPRESSIONS[i]
        else math.inf
        for i in ids
    ]
    np.testing.assert_allclose(agent.indices(ids), want, rtol=0, atol=1e-14)


def test_counts_survive_state_round_trip():
    """The state holds the counts (and loads into a fresh agent with equal posteriors)."""
    agent = make_agent("thompson")
    _feed_counting(agent)
    other = make_agent("thompson")
    other.load_state_dict(agent.state_dict())
    ids = np.array(list(IMPRESSIONS))
    for a, b in zip(agent.posterior(ids), other.posterior(ids), strict=True):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------- linear bandits
U = np.array([[1.0, 0.0], [0.5, -1.0]])
V = np.array([[0.2, 0.4], [1.0, -0.5], [0.0, 1.0], [-1.0, 0.3]])


def _linear_feed(agent):
    """One act (2 users, 4 items), then slates [10, 11] (click 11) and [12, 13] (no click)."""
    catalog = make_catalog(ITEMS, V)
    agent.act(make_obs(catalog, [0, 1], U, 0, slate_size=2))
    agent.update(make_feedback(0, [0, 1], [[10, 11], [12, 13]], [1, -1]))


def _expected_ridge(reg: float) -> tuple[np.ndarray, np.ndarray]:
    u32, v32 = U.astype(np.float32).astype(np.float64), V.astype(np.float32).astype(np.float64)
    a, b = reg * np.eye(5), np.zeros(5)
    for user, items, clicked in ((0, [0, 1], 1), (1, [2, 3], -1)):
        for pos, item in enumerate(items):
            x = np.concatenate([u32[user] * v32[item], v32[item], [1.0]])
            a += np.outer(x, x)
            b += (1.0 if pos == clicked else 0.0) * x
    return a, b


@pytest.mark.parametrize("name", ["linucb", "linear-ts"])
def test_linear_bandit_ridge_statistics(name: str):
    """A = reg I + sum x x^T and b = sum r x over every impression; theta = A^-1 b."""
    agent = make_agent(name, reg=2.5)
    _linear_feed(agent)
    a, b = _expected_ridge(2.5)
    np.testing.assert_allclose(agent._a, a, rtol=0, atol=1e-12)
    np.testing.assert_allclose(agent._b, b, rtol=0, atol=1e-12)
    theta, a_inv, s = agent.solve()
    np.testing.assert_allclose(theta, np.linalg.solve(a, b), rtol=0, atol=1e-10)
    np.testing.assert_allclose(a_inv, np.linalg.inv(a), rtol=0, atol=1e-10)
    np.testing.assert_allclose(s @ s.T, np.linalg.inv(a), rtol=0, atol=1e-10)


@pytest.mark.parametrize("scale", [0.0, 0.3, 2.0])
def test_linear_ts_draws_theta_hat_plus_scale_root_times_keyed_normals(scale):
    """``theta = theta_hat + scale S z``: z the keyed normals of (user, step), ``S = L^-T``.

    ``A = L L^T`` (Cholesky), so ``S S^T = A^-1``; every user draws its own ``z``.
    """
    agent = make_agent("linear-ts", 7, scale=scale)
    _linear_feed(agent)
    a, b = _expected_ridge(1.0)
    users = np.array([3, 0, 11])
    z = Stream(7, "agent/linear-ts/theta").normal(users, 4, size=5)  # (3, D)
    root = np.linalg.inv(np.linalg.cholesky(a)).T
    want = np.linalg.solve(a, b) + scale * z @ root.T
    np.testing.assert_allclose(agent.sample_theta(users, 4), want, rtol=0, atol=1e-10)


def test_pair_features_layout():
    """x_ui = [u * v, v, 1]."""
    x = pair_features(U[:1, None, :], V[None, :2, :])
    np.testing.assert_array_equal(x[0, 1], [1.0 * 1.0, 0.0 * -0.5, 1.0, -0.5, 1.0])


def test_diag_linucb_edge_statistics():
    """Per (item, cluster) edge: d = sum w^2 and b = sum w r; scores use reg + d."""
    agent = make_agent("diag-linucb", num_clusters=2, clusters_per_user=2, reg=1.5)
    catalog = make_catalog(ITEMS, V)
    agent.act(make_obs(catalog, [0, 1], U, 0, slate_size=2))
    rows = agent._users.rows(np.array([0, 1]))
    idx, w = agent._users.arrays["clusters"][rows], agent._users.arrays["weights"][rows]
    agent.update(make_feedback(0, [0, 1], [[10, 11], [12, 13]], [1, -1]))
    d_want, b_want = np.zeros((4, 2)), np.zeros((4, 2))
    for user, items, clicked in ((0, [0, 1], 1), (1, [2, 3], -1)):
        for pos, item in enumerate(items):
            for c, weight in zip(idx[user], w[user], strict=True):
                d_want[item, c] += weight**2
                b_want[item, c] += weight * (1.0 if pos == clicked else 0.0)
    d, b = agent.edge_stats(np.array(ITEMS))
    np.testing.assert_allclose(d, 1.5 + d_want, rtol=0, atol=1e-12)
    np.testing.assert_allclose(b, b_want, rtol=0, atol=1e-12)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=0, atol=1e-12)


# ---------------------------------------------------------------------- slate Thompson
def test_slate_ts_laplace_posterior():
    """The diagonal Laplace std of items and users equals the closed form, computed here."""
    f, k = 2, 2
    z = np.array([[0.5, -1.0], [1.5, 0.25]], np.float32)  # user states (P, with A = 0)
    delta = np.array([[0.3, 0.1], [-0.2, 0.4], [0.0, 0.7]], np.float32)
    c = np.array([0.1, -0.3, 0.2], np.float32)
    model = {
        "A": np.zeros((1, f), np.float32),
        "W": np.zeros((1, f), np.float32),
        "P": z,
        "delta": delta,
        "c": c,
        "b0": np.array([0.4], np.float32),
        "pos": np.array([0.0, -0.5], np.float32),
    }
    data = ClickData(
        users=np.array([0, 1, 0], np.int64),
        slates=np.array([[0, 1], [2, 0], [1, 2]], np.int64),
        target=np.array([1, 0, 2], np.int64),
        user_features=np.zeros((2, 1), np.float32),
        item_features=np.zeros((3, 1), np.float32),
    )
    priors = Priors(delta=0.8, bias=1.3, user=0.6)
    item_std, user_std = laplace_std(data, model, priors)
    items = np.zeros((3, f + 1))
    users = np.zeros((2, f))
    for m in range(3):
        u, s = data.users[m], data.slates[m]
        logits = [0.4] + [float(z[u] @ delta[i] + c[i] + model["pos"][j]) for j, i in enumerate(s)]
        p = np.exp(logits) / np.exp(logits).sum()
        for j, i in enumerate(s):
            q = p[j + 1]
            items[i, :f] += q * (1 - q) * z[u].astype(np.float64) ** 2
            items[i, f] += q * (1 - q)
        v = delta[s].astype(np.float64)
        users[u] += (p[1:, None] * v**2).sum(0) - ((p[1:, None] * v).sum(0)) ** 2
    items[:, :f] += 1 / 0.8**2
    items[:, f] += 1 / 1.3**2
    users += 1 / 0.6**2
    np.testing.assert_allclose(item_std, 1 / np.sqrt(items), rtol=1e-5)
    np.testing.assert_allclose(user_std, 1 / np.sqrt(users), rtol=1e-5)
    assert k == data.slates.shape[1]
