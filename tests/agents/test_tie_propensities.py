"""Logged propensities of agents whose rankings break ties at random.

Content filtering, implicit MF, social filtering, popularity, UCB1, epsilon-greedy and the
ideal recommender (``known_items: trained``) order exact ties (and items newer than their
data) by keyed random draws: before a first fit their slates are as random as ``random``'s.
They logged propensity 1 for them (an off-policy estimate saw no support where there was
full support). Classes: :func:`tie_propensities` against a loop reference on random scores
with ties and late items, and every such agent's logged propensities against the frequency
of each item at each slot over many draws of its randomness (fresh agents of other seeds
loaded with the same state), before and after its first fit.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_small

from simlab.agents.ties import tie_propensities
from simlab.batch import Catalog, Observation, Slates
from simlab.world import World, bind_hooks


def _obs(cands: np.ndarray, age: np.ndarray, step: int, k: int) -> Observation:
    n = age.shape[0]
    catalog = Catalog(
        item_ids=np.arange(n, dtype=np.int64),
        features=np.zeros((n, 2), np.float32),
        creator=np.zeros(n, np.int64),
        age=age,
    )
    b = cands.shape[0]
    return Observation(step, np.arange(b, dtype=np.int64), np.zeros((b, 1), np.float32),
                       np.full((b, 1), -1, np.int64), cands, catalog, k)  # fmt: skip


def _reference(scores, cands, slates, late) -> np.ndarray:
    """By loops: the group of the item (equal score, or late), its ranks, 1/g there."""
    out = np.zeros(slates.shape)
    for u in range(cands.shape[0]):
        key = [np.inf if late[c] else -scores[u, j] for j, c in enumerate(cands[u])]
        order = sorted(key)
        for slot, item in enumerate(slates[u]):
            mine = key[list(cands[u]).index(item)]
            first, g = order.index(mine), order.count(mine)
            out[u, slot] = 1.0 / g if first <= slot < first + g else 0.0
    return out


@pytest.mark.parametrize("seed", range(30))
def test_tie_propensities_equal_the_loop_reference(seed):
    """Random integer scores (many ties), late items, shuffled candidates, any slots."""
    rng = np.random.default_rng(seed)
    n, b = int(rng.integers(4, 15)), int(rng.integers(1, 6))
    c = int(rng.integers(2, n + 1))
    k = int(rng.integers(1, c + 1))
    cands = np.stack([rng.choice(n, c, replace=False) for _ in range(b)]).astype(np.int64)
    scores = rng.integers(0, 3, size=(b, c)).astype(float)
    age = rng.integers(0, 6, size=n).astype(np.int64)
    horizon = None if seed % 3 == 0 else int(rng.integers(0, 6))
    step = 5
    late = np.zeros(n, bool) if horizon is None else (step - age) > horizon
    slates = np.stack([rng.permutation(cands[u])[:k] for u in range(b)])  # any items, any slot
    got = tie_propensities(scores, _obs(cands, age, step, k), Slates(np.arange(b), slates), horizon)
    np.testing.assert_allclose(got, _reference(scores, cands, slates, late), rtol=1e-15)


def test_nan_scores_are_ranked_last_in_a_fixed_order():
    """NaN scores sort last in candidate order (no draw decides): 1 at their ranks."""
    cands = np.array([[3, 0, 2, 1]], np.int64)
    scores = np.array([[np.nan, 1.0, np.nan, 1.0]])
    obs = _obs(cands, np.zeros(4, np.int64), 5, 4)
    slates = Slates(np.arange(1), np.array([[0, 1, 3, 2]]))  # the tie (0, 1), then the NaNs
    got = tie_propensities(scores, obs, slates)
    np.testing.assert_array_equal(got, [[0.5, 0.5, 1.0, 1.0]])


CHANEY = [
    ("users", {"model": "chaney", "num_users": 12}),
    ("content", {"model": "chaney-items", "items_per_step": 3, "initial_items": 6}),
    "platform.exclude_consumed=true",
    "platform.retrain_every=1",
]
CASES = [  # (agent, steps run before the observation, Chaney's world)
    ({"model": "random"}, 0, False),
    ({"model": "epsilon-greedy", "epsilon": 0.3}, 0, False),  # every item at the prior
    ({"model": "epsilon-greedy", "epsilon": 0.3}, 3, False),
    ({"model": "ucb1"}, 0, False),  # every item unseen
    ({"model": "ucb1"}, 2, False),
    ({"model": "popularity"}, 0, False),  # before the first retrain
    ({"model": "popularity"}, 4, False),  # equal counts tied
    ({"model": "content-filtering"}, 0, True),
    ({"model": "content-filtering"}, 3, True),
    ({"model": "implicit-mf", "factors": 3}, 0, True),
    ({"model": "social-filtering"}, 0, True),
    ({"model": "social-filtering"}, 3, True),
    ({"model": "oracle", "known_items": "trained"}, 3, True),  # new items after its horizon
]
DRAWS = 1200


@pytest.mark.parametrize(("agent", "steps", "chaney"), CASES,
                         ids=[f"{a['model']}-{s}" for a, s, _ in CASES])  # fmt: skip
def test_logged_propensities_are_the_slot_frequencies(agent, steps, chaney):
    """Over draws of the agent's randomness, item i sits at slot k as often as logged."""
    base = CHANEY if chaney else ["platform.max_candidates=8", "users.num_users=12"]
    sc = make_small(*base, "platform.slate_size=3", steps=steps + 1, agents=[agent])
    world = World(sc, 0, 0)
    seen = {}
    act = world.agent.act
    world.agent.act = lambda obs: seen.setdefault(obs.step, obs) and act(obs)
    for t in range(steps + 1):
        world.step(t)
    obs = seen[steps]
    one = Observation(obs.step, obs.user_ids[:1], obs.user_features[:1], obs.history[:1],
                      obs.candidates[:1], obs.catalog, obs.slate_size)  # fmt: skip
    state = world.agent.state_dict()
    cands = one.candidates[0]
    freq = np.zeros((cands.shape[0], one.slate_size))
    logged = np.full((cands.shape[0], one.slate_size), np.nan)
    for s in range(DRAWS):
        twin = type(world.agent)(world.agent.params, world.context.__class__(
            **{**world.context.__dict__, "seed": 1000 + s}))  # fmt: skip
        twin.load_state_dict(state)
        bind_hooks(twin, world)
        slates = twin.act(one)
        prop = twin.propensities(one, slates)
        col = np.searchsorted(np.sort(cands), slates.item_ids[0])
        col = np.argsort(cands)[col]
        for slot, c in enumerate(col):
            freq[c, slot] += 1
            if np.isnan(logged[c, slot]):
                logged[c, slot] = prop[0, slot]
            assert prop[0, slot] == pytest.approx(logged[c, slot], rel=1e-12)  # one policy
    shown = ~np.isnan(logged)
    p = logged[shown]
    err = np.abs(freq[shown] / DRAWS - p)
    assert (err <= 5 * np.sqrt(p * (1 - p) / DRAWS) + 1e-9).all(), (err.max(), p)
    assert freq.sum() == DRAWS * one.slate_size
