"""The gym reference policies against by-hand references, one user and candidate at a time."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simlab.environments.gym import PlatformEnv, SlateRecEnv
from simlab.environments.gym.baselines import SlateQAgent, feature_match
from simlab.rng import Stream

SHAPES = [(1, 6, 3, 4), (3, 8, 4, 5), (5, 7, 2, 3), (2, 9, 6, 1)]
"""``(B users, C candidates, H history, d feature dims)``."""


def _obs(rng, b: int, c: int, h: int, d: int) -> dict[str, np.ndarray]:
    """A random batched observation (float32, as the envs give)."""
    return {
        "user": rng.normal(size=(b, d)).astype(np.float32),
        "history": rng.normal(size=(b, h, d)).astype(np.float32),
        "candidates": rng.normal(size=(b, c, d)).astype(np.float32),
    }


def _one(obs: dict[str, np.ndarray], i: int) -> dict[str, np.ndarray]:
    """User ``i``'s observation as a single env gives it (no batch axis)."""
    return {k: v[i] for k, v in obs.items()}


def _dot(a, b) -> float:
    return sum(float(x) * float(y) for x, y in zip(a, b, strict=True))


def _phi(obs, u: int, i: int) -> list[float]:
    """SlateQ's features of candidate ``i`` for user ``u``: ``[user * item, v, h, 1]``."""
    user, item = obs["user"][u], obs["candidates"][u, i]
    hist = obs["history"][u]
    mean_hist = [sum(float(row[j]) for row in hist) / len(hist) for j in range(len(item))]
    prod = [float(x) * float(y) for x, y in zip(user, item, strict=True)]
    return [*prod, _dot(user, item), _dot(mean_hist, item), 1.0]


def _ranked(scores: list[float], k: int) -> list[int]:
    """The ``k`` largest scores' indices, ties to the lower index."""
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))[:k]


def _slate_value(obs, w, u: int, slate: list[int], no_click: float) -> float:
    """SlateQ's slate value: conditional-logit choice probabilities times ``Q``."""
    v = [_dot(obs["user"][u], obs["candidates"][u, i]) for i in slate]
    denom = sum(math.exp(x) for x in v) + math.exp(no_click)
    return sum(
        math.exp(x) / denom * _dot(w, _phi(obs, u, i)) for x, i in zip(v, slate, strict=True)
    )


def _greedy(obs, w, u: int, k: int) -> list[int]:
    """SlateQ's greedy top-K by ``exp(v) * Q``."""
    c = obs["candidates"].shape[1]
    score = [
        math.exp(_dot(obs["user"][u], obs["candidates"][u, i])) * _dot(w, _phi(obs, u, i))
        for i in range(c)
    ]
    return _ranked(score, k)


# -- feature match ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("k", [1, 2, 3])
def test_feature_match_serves_the_best_matches_in_order(shape, k):
    """The ``k`` candidates of largest ``<user, item>``, best first, batched or single."""
    b, c, h, d = shape
    rng = np.random.default_rng(k * 100 + b)
    obs = _obs(rng, b, c, h, d)
    policy = feature_match(k)
    got = policy(obs)
    assert got.shape == (b, k)
    for u in range(b):
        scores = [_dot(obs["user"][u], cand) for cand in obs["candidates"][u]]
        assert got[u].tolist() == _ranked(scores, k)
        single = policy(_one(obs, u))
        assert single.shape == (k,) and single.tolist() == got[u].tolist()


@pytest.mark.parametrize("k", [2, 4, 5])
def test_feature_match_breaks_ties_by_the_lower_index(k):
    """Candidates with equal scores are served lowest index first."""
    user = np.array([1.0, 0.0], np.float32)
    # scores 1, 2, 1, 2, 0, 2: the 2s at 1, 3, 5, then the 1s at 0, 2
    x = np.array([1, 2, 1, 2, 0, 2], np.float32)
    cands = np.stack([x, np.arange(6, dtype=np.float32)], axis=1)
    obs = {"user": user, "history": np.zeros((3, 2), np.float32), "candidates": cands}
    assert feature_match(k)(obs).tolist() == [1, 3, 5, 0, 2, 4][:k]


# -- SlateQ: features, values and the greedy slate --------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
def test_slateq_features_follow_the_documented_layout(shape):
    """``phi = [user * item (d), <user, item>, <mean history, item>, 1]``."""
    b, c, h, d = shape
    obs = _obs(np.random.default_rng(b * c), b, c, h, d)
    agent = SlateQAgent(3)
    phi, v = agent._features(obs)
    assert phi.shape == (b, c, d + 3) and v.shape == (b, c)
    assert agent.w.shape == (d + 3,) and not agent.w.any()
    for u in range(b):
        for i in range(c):
            np.testing.assert_allclose(phi[u, i], _phi(obs, u, i), rtol=1e-5, atol=1e-5)
            assert v[u, i] == pytest.approx(_dot(obs["user"][u], obs["candidates"][u, i]), 1e-5)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("no_click", [0.0, 1.0, -2.0])
def test_slate_value_is_choice_probability_times_q(shape, no_click):
    """The value of a slate: the conditional logit over it plus no-click, weighting ``Q``."""
    b, c, h, d = shape
    rng = np.random.default_rng(b + c)
    obs = _obs(rng, b, c, h, d)
    agent = SlateQAgent(3, no_click_score=no_click)
    phi, v = agent._features(obs)
    agent.w = rng.normal(size=d + 3)
    slates = np.stack([rng.permutation(c)[:3] for _ in range(b)])
    got = agent._slate_value(phi @ agent.w, v, slates)
    for u in range(b):
        want = _slate_value(obs, agent.w, u, slates[u].tolist(), no_click)
        assert got[u] == pytest.approx(want, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("k", [1, 3])
def test_slateq_acts_greedily_on_exp_v_times_q(shape, k):
    """Without exploration the slate is the top-K of ``exp(v) * Q``, single or batched."""
    b, c, h, d = shape
    rng = np.random.default_rng(7 * b + k)
    obs = _obs(rng, b, c, h, d)
    agent = SlateQAgent(k)
    agent._features(obs)
    agent.w = rng.normal(size=d + 3)
    got = agent.act(obs)
    assert got.shape == (b, k)
    for u in range(b):
        assert got[u].tolist() == _greedy(obs, agent.w, u, k)
        assert agent.act(_one(obs, u)).tolist() == got[u].tolist()


@pytest.mark.parametrize(("f", "d"), [(3, 4), (5, 2), (1, 3)])
def test_user_features_outside_the_item_space_are_refused(f, d):
    """Both policies score ``<user, item>``: user features of another dimension are refused."""
    rng = np.random.default_rng(f * d)
    obs = _obs(rng, 2, 6, 2, d)
    obs["user"] = rng.normal(size=(2, f)).astype(np.float32)
    msg = rf"\(f = d\), actual dimensions: user {f}, candidates {d}"
    for single in (False, True):
        o = _one(obs, 0) if single else obs
        with pytest.raises(ValueError, match=msg):
            feature_match(2)(o)
        with pytest.raises(ValueError, match=msg):
            SlateQAgent(2).act(o)
        with pytest.raises(ValueError, match=msg):
            SlateQAgent(2).update(o, {}, o, False)


def test_slateq_with_zero_weights_serves_the_lowest_indices():
    """Before any update every ``Q`` is 0: the greedy slate is candidates ``0 .. K - 1``."""
    obs = _obs(np.random.default_rng(0), 3, 8, 2, 4)
    assert SlateQAgent(4).act(obs).tolist() == [[0, 1, 2, 3]] * 3


# -- SlateQ: exploration ---------------------------------------------------------------------


def _explore_batch(agent: SlateQAgent, obs, calls: int = 1) -> np.ndarray:
    return np.stack([agent.act(obs, explore=True) for _ in range(calls)])


def test_slateq_never_explores_at_epsilon_zero():
    """``epsilon=0``: exploring serves the greedy slate, whatever the draws."""
    rng = np.random.default_rng(3)
    obs = _obs(rng, 64, 8, 3, 4)
    agent = SlateQAgent(3, seed=5, epsilon=0.0)
    agent._features(obs)
    agent.w = rng.normal(size=7)
    greedy = agent.act(obs)
    assert (_explore_batch(agent, obs, 5) == greedy).all()


@pytest.mark.parametrize(("c", "k"), [(8, 3), (5, 5), (6, 1)])
def test_slateq_random_slates_are_uniform_and_distinct(c, k):
    """``epsilon=1``: every slate random, of distinct candidates, each as likely per slot."""
    rng = np.random.default_rng(c)
    obs = _obs(rng, 600, c, 2, 3)
    agent = SlateQAgent(k, seed=1, epsilon=1.0)
    agent._features(obs)
    agent.w = rng.normal(size=6)
    slates = _explore_batch(agent, obs, 2).reshape(-1, k)
    assert ((slates >= 0) & (slates < c)).all()
    assert all(len(set(row)) == k for row in slates.tolist())
    for slot in range(k):
        counts = np.bincount(slates[:, slot], minlength=c)
        want = len(slates) / c
        assert counts.shape == (c,) and (np.abs(counts - want) < 5 * math.sqrt(want)).all()
    greedy = agent.act(obs)
    assert (slates[:600] != greedy).any(axis=1).mean() > 0.5


@pytest.mark.parametrize("epsilon", [0.1, 0.3, 0.7])
def test_slateq_explores_a_share_epsilon_of_the_users(epsilon):
    """Each user's slate is random with probability ``epsilon``, else greedy."""
    rng = np.random.default_rng(11)
    obs = _obs(rng, 3000, 9, 2, 3)
    agent = SlateQAgent(4, seed=2, epsilon=epsilon)
    agent._features(obs)
    agent.w = rng.normal(size=6)
    greedy = agent.act(obs)
    share = (_explore_batch(agent, obs)[0] != greedy).any(axis=1).mean()
    assert abs(share - epsilon) < 4 * math.sqrt(epsilon * (1 - epsilon) / 3000) + 0.002


def test_slateq_exploration_is_seeded_and_advances_per_explored_call():
    """Same seed, same draws; another seed, other draws; each exploring call draws anew."""
    obs = _obs(np.random.default_rng(0), 40, 8, 2, 3)

    def agent(seed):
        return SlateQAgent(3, seed=seed, epsilon=1.0)

    a = _explore_batch(agent(4), obs, 3)
    assert np.array_equal(a, _explore_batch(agent(4), obs, 3))
    assert not np.array_equal(a, _explore_batch(agent(5), obs, 3))
    assert not np.array_equal(a[0], a[1]) and not np.array_equal(a[1], a[2])
    # greedy calls draw nothing: they do not shift the exploring ones
    mixed = agent(4)
    got = [mixed.act(obs, explore=True), mixed.act(obs), mixed.act(obs, explore=True)]
    assert np.array_equal(got[0], a[0]) and np.array_equal(got[2], a[1])
    # a single user's draws are row 0's of a batch
    one = agent(4)
    assert np.array_equal(one.act(_one(obs, 0), explore=True), a[0][0])


# -- SlateQ: the TD(0) update ----------------------------------------------------------------


INFO_KEYS = ("served", "clicked_position", "slate", "engagement")


def _info(rng, b: int, c: int, k: int) -> dict[str, np.ndarray]:
    """Per-slot feedback of ``b`` users: some not served, some without a click."""
    served = rng.random(b) < 0.8
    pos = np.where(served & (rng.random(b) < 0.7), rng.integers(0, k, b), -1)
    return {
        "served": served,
        "clicked_position": pos,
        "slate": np.stack([rng.permutation(c)[:k] for _ in range(b)]),
        "engagement": rng.random((b, k)).astype(np.float32),  # noise in unclicked slots too
    }


def _td_reference(agent: SlateQAgent, obs, info, nxt, terminated: bool) -> np.ndarray:
    """The weights after one TD(0) step, one user at a time."""
    w = agent.w.copy()
    steps = []
    for u in range(len(info["served"])):
        pos = int(info["clicked_position"][u])
        if not info["served"][u] or pos < 0:
            continue
        item = int(info["slate"][u][pos])
        future = _slate_value(nxt, w, u, _greedy(nxt, w, u, agent.k), agent.no_click)
        target = float(info["engagement"][u][pos]) + (0.0 if terminated else agent.gamma) * future
        x = _phi(obs, u, item)
        err = target - _dot(w, x)
        steps.append([err * xi for xi in x])
    if not steps:
        return w
    return w + agent.lr * np.mean(np.array(steps), axis=0)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(
    ("gamma", "lr", "no_click", "terminated"),
    [
        (0.9, 0.05, 1.0, False),
        (0.5, 0.2, -1.0, False),
        (0.9, 0.05, 1.0, True),
        (0.0, 1.0, 0.0, False),
    ],
)
def test_slateq_update_is_one_td0_step_on_the_clicked_items(shape, gamma, lr, no_click, terminated):
    """``w += lr * mean over clicking users of (r + gamma * V(next) - Q) * phi(clicked item)``."""
    b, c, h, d = shape
    rng = np.random.default_rng(b * 10 + c)
    agent = SlateQAgent(3, gamma=gamma, lr=lr, no_click_score=no_click)
    obs, nxt = _obs(rng, b, c, h, d), _obs(rng, b, c, h, d)
    agent._features(obs)
    for _ in range(3):
        agent.w = rng.normal(size=d + 3)
        info = _info(rng, b, c, 3)
        info["served"][0], info["clicked_position"][0] = True, 1  # at least one click
        want = _td_reference(agent, obs, info, nxt, terminated)
        agent.update(obs, info, nxt, terminated)
        np.testing.assert_allclose(agent.w, want, rtol=1e-6, atol=1e-7)


def test_slateq_update_without_a_click_changes_nothing():
    """No served user clicked (or nobody was served): the weights stay as they are."""
    rng = np.random.default_rng(1)
    obs, nxt = _obs(rng, 4, 6, 2, 3), _obs(rng, 4, 6, 2, 3)
    agent = SlateQAgent(2)
    agent.w = rng.normal(size=6)
    before, info = agent.w.copy(), _info(rng, 4, 6, 2)
    for served, pos in [([True] * 4, [-1] * 4), ([False] * 4, [0, 1, 0, 1])]:
        info["served"], info["clicked_position"] = np.array(served), np.array(pos)
        agent.update(obs, info, nxt, False)
        assert np.array_equal(agent.w, before)


def test_slateq_first_update_starts_from_zero_weights():
    """An agent that never acted initialises ``w`` to zeros at its first update."""
    rng = np.random.default_rng(2)
    obs, nxt = _obs(rng, 3, 6, 2, 3), _obs(rng, 3, 6, 2, 3)
    info = _info(rng, 3, 6, 2)
    info["served"][:], info["clicked_position"][:] = True, 0
    agent, ref = SlateQAgent(2), SlateQAgent(2)
    ref.w = np.zeros(6)
    want = _td_reference(ref, obs, info, nxt, False)
    agent.update(obs, info, nxt, False)
    np.testing.assert_allclose(agent.w, want, rtol=1e-6, atol=1e-7)
    assert agent.w.any()


@pytest.mark.parametrize("make", [SlateRecEnv, PlatformEnv], ids=["slate", "platform"])
def test_slateq_learns_from_the_envs_info(make):
    """On the envs' own observations and info (single or per user) the update is the TD step."""
    env = make(overrides={"users.num_users": 3, "users.churn_threshold": 0.0}, max_steps=50)
    agent = SlateQAgent(5, seed=0, epsilon=0.5)
    obs, _ = env.reset(seed=0)
    single = make is SlateRecEnv
    moved = 0
    for _ in range(40):
        action = agent.act(obs, explore=True).reshape(env.action_space.shape)
        nxt, _, term, _, info = env.step(action)
        batch = [
            {k: np.asarray(v)[None] if single else v for k, v in d.items()} for d in (obs, nxt)
        ]
        fb = {k: np.asarray(info[k])[None] if single else info[k] for k in INFO_KEYS}
        want = _td_reference(agent, batch[0], fb, batch[1], term)
        before = agent.w.copy()
        agent.update(obs, info, nxt, term)
        np.testing.assert_allclose(agent.w, want, rtol=1e-5, atol=1e-6)
        moved += int(not np.array_equal(agent.w, before))
        obs = nxt
        if moved == 3:
            break
    assert moved == 3


@pytest.mark.parametrize("seed", [0, 3])
def test_slateq_exploration_draws_are_the_documented_stream(seed):
    """Row ``b`` of the ``n``-th exploring call: random iff its first draw is < ``epsilon``."""
    b, c, k = 50, 7, 3
    obs = _obs(np.random.default_rng(seed), b, c, 2, 3)
    stream = Stream(seed, "baselines/slateq/explore")
    agent = SlateQAgent(k, seed=seed, epsilon=0.4)
    greedy = agent.act(obs)
    for n in range(3):
        got = agent.act(obs, explore=True)
        for row in range(b):
            u = stream.uniform([row], n, size=1 + c)[0]
            others = sorted(range(c), key=lambda i: u[1 + i])[:k]
            want = others if u[0] < 0.4 else greedy[row].tolist()
            assert got[row].tolist() == want
    # a first draw exactly at epsilon is served greedily; just above it, a random slate
    for n, above in ((3, False), (4, True)):
        u = stream.uniform([0], n, size=1 + c)[0]
        agent.epsilon = float(np.nextafter(u[0], 1.0)) if above else float(u[0])
        want = sorted(range(c), key=lambda i: u[1 + i])[:k] if above else greedy[0].tolist()
        assert agent.act(obs, explore=True)[0].tolist() == want


def test_slateq_defaults_are_the_documented_ones():
    """Seed 0, ``gamma`` 0.9, ``lr`` 0.05, ``epsilon`` 0.1 and a no-click score of 1."""
    agent = SlateQAgent(4)
    assert agent.k == 4 and agent.w is None
    assert (agent.gamma, agent.lr, agent.epsilon, agent.no_click) == (0.9, 0.05, 0.1, 1.0)
    obs = _obs(np.random.default_rng(0), 30, 8, 2, 3)
    seeded = SlateQAgent(4, seed=0)
    assert np.array_equal(_explore_batch(agent, obs, 3), _explore_batch(seeded, obs, 3))


@pytest.mark.parametrize("d", [257, 300, 1000])
def test_policies_take_wide_feature_vectors(d):
    """Feature dimensions past small-int caching (> 256) are compared by value."""
    obs = _obs(np.random.default_rng(d), 2, 5, 2, d)
    assert feature_match(2)(obs).shape == (2, 2)
    agent = SlateQAgent(2)
    assert agent.act(obs).shape == (2, 2) and agent.w.shape == (d + 3,)
