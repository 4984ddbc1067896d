"""An observation of no user: every agent returns an empty ``(0, K)`` slate.

The world never calls ``act`` without a user, but an agent used directly (an offline
evaluation, a hand-built loop) may be handed one. 14 of the 17 shipped agents failed on it
with an IndexError from deep inside (``Observation.candidate_pool`` read row 0 of a
``(0, C)`` broadcast; the oracle's utility did the same in the user model; Diag-LinUCB took
the maximum of no candidate id).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SMALL_MODELS, make_small

from simlab import registry
from simlab.batch import Observation, Slates
from simlab.world import World

CHANEY = [
    ("users", {"model": "chaney", "num_users": 30, "social_graph": {"kind": "covariance"}}),
    ("content", {"model": "chaney-items", "items_per_step": 10, "initial_items": 40}),
]
INTEREST_EVOLUTION = [
    ("users", {"model": "interest-evolution", "num_users": 30}),
    ("content", {"model": "recsim-corpus"}),
    "world.num_topics=8",
    "world.dim=8",
]


def _observed(overrides: list, agent: str) -> tuple[World, Observation]:
    """A world of ``agent`` after a few steps, and the last observation it acted on."""
    spec = {"model": agent, **SMALL_MODELS.get(agent, {})}
    world = World(make_small(*overrides, agents=[spec]), 0, 0)
    seen: dict[str, Observation] = {}
    act = world.agent.act

    def recording(obs: Observation) -> Slates:
        seen["obs"] = obs
        return act(obs)

    world.agent.act = recording
    for t in range(5):
        world.step(t)
    world.agent.act = act
    return world, seen["obs"]


def _empty(obs: Observation) -> Observation:
    """``obs`` without its users (same step, catalog, slate size and sharing)."""
    return Observation(
        obs.step,
        obs.user_ids[:0],
        obs.user_features[:0],
        obs.history[:0],
        obs.candidates[:0],
        obs.catalog,
        obs.slate_size,
        obs.shared_candidates,
    )


def _assert_empty_slates(world: World, obs: Observation) -> None:
    empty = _empty(obs)
    assert empty.num_users == 0 and not empty.shared_candidates
    slates = world.agent.act(empty)
    assert isinstance(slates, Slates)
    assert slates.user_ids.shape == (0,)
    assert slates.item_ids.shape == (0, obs.slate_size)
    assert slates.item_ids.dtype.kind == "i"


def _cases() -> list[tuple[str, bool]]:
    return [(a, shared) for a in registry.names("agents") for shared in (True, False)]


@pytest.mark.parametrize(("agent", "shared"), _cases(), ids=[f"{a}-{s}" for a, s in _cases()])
def test_every_agent_returns_an_empty_slate_for_no_user(agent, shared):
    """Shared candidates (every live item) and per-user candidates (``max_candidates``)."""
    overrides = [] if shared else ["platform.max_candidates=20"]
    if agent == "social-filtering":  # its graph comes from the chaney user model
        overrides = [*CHANEY, *overrides]
    world, obs = _observed(overrides, agent)
    assert obs.shared_candidates == shared
    _assert_empty_slates(world, obs)


@pytest.mark.parametrize("users", ["logit", "chaney", "interest-evolution"])
def test_the_oracle_asks_every_user_model_for_no_utility(users):
    """The oracle's utility goes to the user model: each answers ``(0, C)`` for no user."""
    overrides = {"logit": [], "chaney": CHANEY, "interest-evolution": INTEREST_EVOLUTION}[users]
    world, obs = _observed(overrides, "oracle")
    _assert_empty_slates(world, obs)
    ids, items = np.asarray(obs.candidates[:0]), world._content.items
    utility = world.population.expected_utility(obs.step, obs.user_ids[:0], ids, items)
    assert utility.shape == (0, obs.candidates.shape[1])
