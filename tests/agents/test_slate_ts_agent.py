"""The slate-ts agent's posterior and policies against by-hand references (fast).

Classes (keys, keyed normals and tables are in ``test_slate_ts_tables.py``):

* posterior: unseen items and users keep the prior, features enter through ``W`` and ``A``;
  ``score_moments`` and a draw of ``sample_scores`` equal their formulas computed in loops;
* policies: random before the first retrain, greedy / thompson = top-K per user of the mean /
  of draw 0, in-slate = slot ``k`` takes the best unused item of draw ``k``;
* checkpoints: a copy loaded from the state acts and retrains exactly like the original.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from simlab.agents.base import random_slates
from simlab.agents.slate_ts import SlateThompsonAgent, _normals
from simlab.batch import PAD, Catalog, Log, Observation
from simlab.rng import Stream

F, D_ITEM, D_USER = 3, 2, 2


def _agent(seed: int = 0, num_users: int = 6, **params) -> SlateThompsonAgent:
    params = {"factors": F, "epochs": 3, "batch_size": 64, **params}
    ctx = SimpleNamespace(seed=seed, num_users=num_users)
    return SlateThompsonAgent(SlateThompsonAgent.Params(**params), ctx)


def _catalog(n: int = 9, seed: int = 0) -> Catalog:
    g = np.random.default_rng(seed)
    return Catalog(
        item_ids=np.arange(n, dtype=np.int64) * 3 + 1,
        features=g.normal(size=(n, D_ITEM)).astype(np.float32),
        creator=np.zeros(n, np.int64),
        age=np.zeros(n, np.int64),
    )


def _obs(cat, users, profiles, k, step=0, candidates=None) -> Observation:
    users = np.asarray(users, np.int64)
    shared = candidates is None
    if shared:
        candidates = np.broadcast_to(cat.item_ids, (users.size, cat.num_items))
    return Observation(
        step=step,
        user_ids=users,
        user_features=np.asarray(profiles, np.float32),
        history=np.full((users.size, 2), PAD, np.int64),
        candidates=np.asarray(candidates, np.int64),
        catalog=cat,
        slate_size=k,
        shared_candidates=shared,
    )


def _log(cat, users, rows: int, seed: int, k: int = 3, with_features=None) -> Log:
    """Random slates of the catalog's first 6 items, random clicks, and item features.

    Features of every item, or of those where ``with_features`` is true.
    """
    g = np.random.default_rng(seed)
    keep = np.ones(cat.num_items, bool) if with_features is None else with_features
    u = g.choice(users, size=rows)
    slates = np.stack([g.permutation(cat.item_ids[:6])[:k] for _ in range(rows)])
    clicked = g.integers(-1, k, size=rows)
    return Log(
        step=np.zeros(rows, np.int64),
        user_ids=u.astype(np.int64),
        slates=slates.astype(np.int64),
        clicked_pos=clicked.astype(np.int64),
        engagement=(clicked >= 0).astype(np.float32),
        feature_ids=cat.item_ids[keep],
        features=cat.features[keep],
    )


def _trained(seed: int = 0, users=(0, 2, 4, 7), **params):
    """An agent that served and was retrained once on users ``users`` (7 is beyond 6)."""
    cat = _catalog(seed=seed)
    g = np.random.default_rng(seed + 10)
    users = np.asarray(users, np.int64)
    profiles = g.normal(size=(users.size, D_USER))
    agent = _agent(seed, **params)
    agent.act(_obs(cat, users, profiles, 3))
    agent.retrain(_log(cat, users, 60, seed))
    return agent, cat, users, profiles


# ----------------------------------------------------------------------------- posterior


def test_posterior_keeps_the_prior_for_unseen_items_and_users():
    """Never-fitted items: mean 0 plus ``f W``, std the priors; unknown users: the user prior."""
    agent, cat, users, profiles = _trained(prior_std=0.2, bias_prior_std=0.7, user_prior_std=0.3)
    ids = np.array([2, 5, 0, 7, 9])  # 0, 2 and 9 were fitted (users); 5 and 9 ... see below
    obs = _obs(cat, ids, np.ones((5, D_USER)), 3)
    zm, zs, vm, vs, idx = agent.posterior(obs)
    assert idx is None
    m = agent._model
    fitted = np.isin(cat.item_ids, agent._item_ids)
    assert fitted[:6].all() and not fitted[6:].any()  # the log shows the first 6 items only
    np.testing.assert_allclose(vm[6:, :F], cat.features[6:] @ m["W"], rtol=1e-6)
    np.testing.assert_array_equal(vm[6:, F], 0.0)
    np.testing.assert_allclose(vs[6:, :F], 0.2, rtol=1e-7)
    np.testing.assert_allclose(vs[6:, F], 0.7, rtol=1e-7)
    rows = np.searchsorted(agent._item_ids, cat.item_ids[:6])
    np.testing.assert_allclose(vm[:6, :F], agent._item_mean[rows, :F] + cat.features[:6] @ m["W"])
    np.testing.assert_array_equal(vm[:6, F], agent._item_mean[rows, F])
    np.testing.assert_array_equal(vs[:6], agent._item_std[rows])
    known = np.isin(ids, users)
    np.testing.assert_allclose(zm, agent._user_mean[ids] + np.ones((5, D_USER)) @ m["A"])
    np.testing.assert_array_equal(zs[known], agent._user_std[ids[known]])
    np.testing.assert_allclose(zs[~known], 0.3, rtol=1e-7)
    assert (agent._user_std[users] < 0.3).all()  # fitted users are surer than the prior


def _moments_by_loops(agent, obs):
    zm, zs, vm, vs, idx = agent.posterior(obs)
    cands = obs.candidates
    mean, sd = np.zeros(cands.shape), np.zeros(cands.shape)
    for b in range(cands.shape[0]):
        for c in range(cands.shape[1]):
            j = c if idx is None else idx[b, c]
            z, s = np.append(zm[b], 1.0), np.append(zs[b], 0.0)
            mean[b, c] = z @ vm[j]
            sd[b, c] = math.sqrt(np.sum(z**2 * vs[j] ** 2 + s**2 * vm[j] ** 2 + s**2 * vs[j] ** 2))
    return mean, sd


@pytest.mark.parametrize("shared", [True, False])
def test_score_moments_equal_the_formula(shared):
    """Mean ``<[z, 1], m_v>``, variance ``sum m_z^2 s_v^2 + s_z^2 m_v^2 + s_z^2 s_v^2``."""
    agent, cat, users, _ = _trained(1)
    g = np.random.default_rng(3)
    ids = np.array([0, 3, 7])
    cands = None if shared else np.stack([g.permutation(cat.item_ids)[:5] for _ in ids])
    obs = _obs(cat, ids, g.normal(size=(3, D_USER)), 2, candidates=cands)
    mean, sd = agent.score_moments(obs)
    want_mean, want_sd = _moments_by_loops(agent, obs)
    np.testing.assert_allclose(mean, want_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sd, want_sd, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("k", "a"), [(0, 0.5), (2, 1.0), (1, 3.0)])
def test_a_draw_is_the_user_state_draw_then_the_score_draw(k, a):
    """Draw ``k``: ``z = m_z + a s_z e_u``; score ``<[z, 1], m_v> + a sqrt(sum z^2 s_v^2) e``."""
    agent, cat, users, _ = _trained(2, exploration=a)
    g = np.random.default_rng(4)
    ids = np.array([0, 4, 9])
    cands = np.stack([g.permutation(cat.item_ids)[:6] for _ in ids])
    obs = _obs(cat, ids, g.normal(size=(3, D_USER)), 3, 5, cands)
    zm, zs, vm, vs, idx = agent.posterior(obs)
    draws = Stream(2, "agent/slate-ts/draw").child(str(k))  # sub-stream k of the draws
    e_user = draws.child("user").normal(ids, 5, size=F)
    e_item = _normals(draws.child("item"), ids, 5, 6)
    want = np.zeros(cands.shape)
    for b in range(3):
        z = np.append(zm[b] + a * zs[b] * e_user[b].astype(np.float32), 1.0)
        for c in range(6):
            j = idx[b, c]
            want[b, c] = z @ vm[j] + a * math.sqrt(np.sum(z**2 * vs[j] ** 2)) * e_item[b, c]
    np.testing.assert_allclose(agent.sample_scores(obs, k), want, rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- policies


def test_random_slates_before_the_first_retrain_and_after_an_empty_one():
    """Before a model: the uniformly random slates of the agent's random stream."""
    cat = _catalog()
    agent = _agent(5)
    log = _log(cat, np.array([0]), 2, 0)
    empty = Log(
        **{k: getattr(log, k)[:0] for k in ("step", "user_ids", "slates", "clicked_pos")},
        engagement=log.engagement[:0],
        feature_ids=log.feature_ids,
        features=log.features,
    )
    agent.retrain(empty)  # nothing to learn from: still no model
    assert agent._model is None and agent._num_retrains == 0
    for step in (0, 1):
        obs = _obs(cat, np.arange(6), np.zeros((6, D_USER)), 4, step=step)
        want = random_slates(Stream(5, "agent/slate-ts/random"), obs)
        np.testing.assert_array_equal(agent.act(obs).item_ids, want)


@pytest.mark.parametrize("policy", ["greedy", "thompson", "in-slate"])
@pytest.mark.parametrize("shared", [True, False])
def test_policies_rank_by_their_scores(policy, shared):
    """greedy: top-K of each user's mean; thompson: of draw 0; in-slate: best unused of draw k."""
    agent, cat, users, _ = _trained(3, policy=policy, exploration=2.0)
    g = np.random.default_rng(5)
    ids = np.array([0, 2, 4, 7, 8])
    cands = None if shared else np.stack([g.permutation(cat.item_ids)[:7] for _ in ids])
    obs = _obs(cat, ids, g.normal(size=(5, D_USER)), 4, 6, cands)
    got = agent.act(obs).item_ids
    if policy != "in-slate":
        s = agent.score_moments(obs)[0] if policy == "greedy" else agent.sample_scores(obs, 0)
        want = np.take_along_axis(obs.candidates, np.argsort(-s, axis=1)[:, :4], axis=1)
    else:
        draws = [agent.sample_scores(obs, k) for k in range(4)]
        want = np.zeros((5, 4), np.int64)
        for b in range(5):
            used: list[int] = []
            for k in range(4):
                best = max(
                    (c for c in range(obs.candidates.shape[1]) if c not in used),
                    key=lambda c: draws[k][b, c],
                )
                used.append(best)
                want[b, k] = obs.candidates[b, best]
    np.testing.assert_array_equal(got, want)
    assert len({tuple(r) for r in got}) > 1, "users get their own slates"


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("block", [1, 300, 1 << 30])
def test_in_slate_picks_are_those_of_all_users_at_once(monkeypatch, shared, block):
    """Users in blocks (several blocks of 64+ users, or one): the picks of draws over everyone.

    The reference draws every user's scores in one product (``sample_scores``); the blocked
    policy's must equal them bit for bit, which BLAS gives for blocks that are not tiny.
    """
    import simlab.agents.slate_ts as slate_ts

    monkeypatch.setattr(slate_ts, "_SLATE_BLOCK", block)
    agent, cat, _, _ = _trained(4, policy="in-slate", exploration=1.5)
    g = np.random.default_rng(6)
    ids = np.sort(g.choice(900, size=300, replace=False)).astype(np.int64)
    cands = None if shared else np.stack([g.permutation(cat.item_ids)[:8] for _ in ids])
    obs = _obs(cat, ids, g.normal(size=(ids.size, D_USER)), 5, 3, cands)
    blocks = slate_ts.row_blocks(ids.size, obs.candidates.shape[1], block)
    assert (len(blocks) > 1) == (block < 1 << 30)
    got = agent.act(obs).item_ids
    draws = [agent.sample_scores(obs, k) for k in range(5)]
    taken = np.zeros(obs.candidates.shape, bool)
    rows = np.arange(ids.size)
    for k in range(5):
        best = np.argmax(np.where(taken, -np.inf, draws[k]), axis=1)
        np.testing.assert_array_equal(got[:, k], obs.candidates[rows, best])
        taken[rows, best] = True


# ----------------------------------------------------------------------------- checkpoints


@pytest.mark.parametrize("policy", ["greedy", "in-slate"])
def test_a_copy_from_the_state_acts_and_retrains_like_the_original(policy):
    """State round trip: same slates now, and the same model after one more retrain."""
    agent, cat, users, profiles = _trained(4, policy=policy)
    copy = _agent(4, policy=policy)
    state = agent.state_dict()
    copy.load_state_dict(state)
    for name, value in state.items():
        got = copy.state_dict()[name]
        np.testing.assert_array_equal(got, value, err_msg=name)
        assert np.asarray(got).dtype == np.asarray(value).dtype, name
    obs = _obs(cat, users, profiles, 3, step=8)
    np.testing.assert_array_equal(copy.act(obs).item_ids, agent.act(obs).item_ids)
    log = _log(cat, np.append(users, 11), 40, 9)  # a new user (11) too
    for a in (agent, copy):
        a.act(_obs(cat, [11], np.ones((1, D_USER)), 3, step=8))
        a.retrain(log)
    assert copy._num_retrains == agent._num_retrains == 2
    for name, value in agent.state_dict().items():
        np.testing.assert_array_equal(copy.state_dict()[name], value, err_msg=name)
    fresh = _agent(4, policy=policy)
    assert not any(k.startswith("model.") for k in fresh.state_dict())
    fresh.load_state_dict(fresh.state_dict())
    assert fresh._model is None
