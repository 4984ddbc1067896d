"""Agents under the platform's start-up: every agent runs, online learners learn from it.

During ``platform.startup_steps`` the platform serves random rankings and the agent's ``act``
does not run, yet its ``update`` sees the feedback. Agents whose ``act`` keeps the served
users' context (``linucb``, ``linear-ts``: profiles; ``diag-linucb``: cluster weights;
``slate-ts``: profiles; ``content-filtering``: the live catalog) get it through
``serving_record``/``record_served`` instead: the bandits' sums after the start-up hold
exactly the start-up's impressions, with the users' own profiles, and every agent ends the
start-up in the state its ``act`` would have left.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SMALL_MODELS, make_small

from simlab import registry
from simlab.agents.bandit_math import pair_features
from simlab.errors import ScenarioError
from simlab.world import World, bind_hooks

CHANEY = {  # for agents that need Chaney's users (the social graph)
    "world": {"dim": 6, "num_topics": 6},
    "users": {"model": "chaney", "num_users": 30},
    "content": {"model": "chaney-items", "items_per_step": 8},
}


def _world(agent: str, startup: int, candidates: str, steps: int = 5, **params) -> World:
    spec = [{"model": agent, **SMALL_MODELS.get(agent, {}), **params}]
    sets = (f"steps={steps}", f"platform.startup_steps={startup}",
            f"platform.startup_candidates={candidates}", "platform.retrain_every=2")  # fmt: skip
    try:
        sc = make_small(*sets, "users.num_users=40", agents=spec)
    except ScenarioError:  # an agent of Chaney's world
        sc = make_small(*sets, agents=spec, **CHANEY)
    return World(sc, 0, 0)


@pytest.mark.parametrize(("startup", "candidates"), [(1, "all"), (3, "new")])
@pytest.mark.parametrize("agent", registry.names("agents"))
def test_every_agent_serves_after_a_startup(agent, startup, candidates):
    """Every registered agent takes over from a start-up of 1 or 3 steps, of any candidates."""
    world = _world(agent, startup, candidates)
    rows = [world.step(t) for t in range(5)]
    assert len(rows) == 5 and world.t == 5
    assert world.last_feedback.user_ids.size > 0  # the agent's own slates were answered


def _startup_impressions(agent: str, startup: int, candidates: str, **params):
    """The world after its start-up, and each start-up step's (profiles, items, clicks)."""
    world = _world(agent, startup, candidates, steps=startup + 1, **params)
    users = world.population.users
    seen = []
    for t in range(startup):
        world.step(t)
        fb, catalog = world.last_feedback, world._content.catalog
        feats = catalog.features[catalog.rows(fb.slates)]  # (B, K, d)
        clicks = np.arange(fb.slates.shape[1])[None, :] == fb.clicked_pos[:, None]
        seen.append((users.observable_features(fb.user_ids), fb.slates, feats, clicks))
    return world, seen


@pytest.mark.parametrize("agent", ["linucb", "linear-ts"])
@pytest.mark.parametrize(("startup", "candidates"), [(1, "all"), (2, "new"), (4, "all")])
def test_linear_bandits_sum_the_startup_impressions(agent, startup, candidates):
    """``A = reg I + sum x x'`` and ``b = sum r x`` over every start-up impression."""
    world, seen = _startup_impressions(agent, startup, candidates, reg=0.5)
    a, b = world.agent._a, world.agent._b
    dim = a.shape[0]
    want_a, want_b = 0.5 * np.eye(dim), np.zeros(dim)
    for profiles, _, feats, clicks in seen:
        x = pair_features(profiles[:, None, :], feats).reshape(-1, dim)
        want_a += x.T @ x
        want_b += x.T @ clicks.ravel().astype(np.float64)
    assert sum(c.sum() for *_, c in seen) > 0  # some clicks: b is not trivially zero
    np.testing.assert_allclose(a, want_a, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b, want_b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("startup", "candidates"), [(1, "all"), (2, "new"), (3, "all")])
def test_diag_linucb_sums_the_startup_edges(startup, candidates):
    """Each (item, cluster) edge holds ``sum w^2`` and ``sum w r`` of its start-up impressions."""
    world, seen = _startup_impressions("diag-linucb", startup, candidates, num_clusters=4)
    agent = world.agent
    assert agent.centroids is not None  # fitted on the start-up's profiles
    want_d, want_b = {}, {}
    for profiles, slates, _, clicks in seen:
        idx, w = agent.user_clusters(profiles)
        for row in range(slates.shape[0]):  # a plain loop: the reference, not the code
            for pos, item in enumerate(slates[row]):
                for c, wc in zip(idx[row], w[row], strict=True):
                    key = (int(item), int(c))
                    want_d[key] = want_d.get(key, 0.0) + wc * wc
                    want_b[key] = want_b.get(key, 0.0) + wc * clicks[row, pos]
    touched = np.argwhere(agent._d > 0)
    assert {(int(i), int(c)) for i, c in touched} == set(want_d)
    for (item, c), d in want_d.items():
        assert agent._d[item, c] == pytest.approx(d, rel=1e-12)
        assert agent._b[item, c] == pytest.approx(want_b[(item, c)], rel=1e-12, abs=1e-15)


def _flat(state: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in state.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


@pytest.mark.parametrize(("startup", "candidates"), [(2, "all"), (3, "new")])
@pytest.mark.parametrize("agent", registry.names("agents"))
def test_the_startup_leaves_an_agent_as_its_act_would(agent, startup, candidates):
    """After the start-up an agent's state is what it would be had its ``act`` seen each step.

    The platform serves the start-up without ``act``; whatever ``act`` keeps for learning
    (profiles, the live catalog) reaches the agent through ``serving_record``. A twin that
    acts on every start-up observation and learns the same feedback must end in the same
    state (slate-ts once lost the start-up's profiles, content filtering its catalog).
    """
    world = _world(agent, startup, candidates, steps=startup)
    twin = type(world.agent)(world.agent.params, world.context)
    bind_hooks(twin, world)
    serve = world._serve

    def serve_and_act(obs, catalog):
        if obs.num_users:
            twin.act(obs)
        return serve(obs, catalog)

    world._serve = serve_and_act
    for t in range(startup):
        world.step(t)
        twin.update(world.last_feedback)
    got, want = _flat(world.agent.state_dict()), _flat(twin.state_dict())
    assert set(got) == set(want)
    for key, value in want.items():
        a, b = np.asarray(got[key]), np.asarray(value)
        assert a.shape == b.shape, key
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), key


def test_slate_ts_fits_the_startup_users_profiles():
    """The first fit after a start-up maps profiles to user states (``A`` is ``(d_u, f)``)."""
    world = _world("slate-ts", 3, "all", steps=5)
    for t in range(5):
        world.step(t)
    dim = world.population.users.observable_features(np.arange(2)).shape[1]
    assert dim > 0
    assert world.agent._model["A"].shape == (dim, world.agent.params.factors)
    served = np.unique(world.platform.log().user_ids)
    assert np.abs(world.agent._profiles[served]).sum(axis=1).min() > 0  # none left at zero
