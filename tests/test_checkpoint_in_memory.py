"""An in-memory checkpoint (``World.checkpoint``) is a copy, and ``World.restore`` takes one.

A researcher forks worlds in memory: checkpoint at step s, let the world go on, and start
other worlds (another agent's settings, a counterfactual) from the same state. Components
mutate their arrays in place (the homogenization metric's running counts, two-tower's
profiles), so a checkpoint that shared arrays with its world, or a restored world that
shared arrays with the caller's tree, changed the state under the researcher's feet and
gave silently different metrics. Every registered agent, with every re-ranker and the
nearest-neighbour metric on, in simlab's world and in Chaney's.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from conftest import make_small
from test_checkpoint import RERANKERS, _chaney_world, _every_agent

from simlab.scenario_model import _default_metrics
from simlab.world import World

STEPS, AT = 8, 4


def _rows(world: World, steps) -> list[dict[str, float]]:
    return [world.step(t) for t in steps]


def _scenario(agent: dict):
    from simlab import registry

    if getattr(registry.resolve("agents", agent["model"]), "needs_social_graph", False):
        world = _chaney_world(("platform.rerankers", RERANKERS[:3]))
    else:
        world = ("users.drift_rate=0.05", ("platform.rerankers", RERANKERS))
    metrics = [*_default_metrics(), "homogenization_nn"]
    return make_small(*world, agents=[agent], steps=STEPS, metrics=metrics)


@pytest.mark.parametrize("agent", _every_agent(), ids=lambda a: a["model"])
def test_one_checkpoint_starts_any_number_of_worlds(agent):
    """The original goes on, then two worlds start from the same tree: all as a straight run.

    And the tree is unchanged by all of it (equal to a deep copy taken at once).
    """
    sc = _scenario(agent)
    expected = _rows(World(sc, 0, 5), range(STEPS))
    first = World(sc, 0, 5)
    _rows(first, range(AT))
    state = first.checkpoint()
    frozen = copy.deepcopy(state)
    np.testing.assert_equal(_rows(first, range(AT, STEPS)), expected[AT:])
    for _ in range(2):
        again = World(sc, 0, 5)
        again.restore(state)
        np.testing.assert_equal(_rows(again, range(AT, STEPS)), expected[AT:])
    np.testing.assert_equal(state, frozen)


def test_the_chaney_world_forks_in_memory():
    """Chaney's users, items and no-repeat rule, every Chaney recommender's kind of state."""
    agents = [{"model": m} for m in ("implicit-mf", "content-filtering", "social-filtering")]
    sc = make_small(
        *_chaney_world(), agents=agents, steps=STEPS, metrics=["engagement", "homogenization"]
    )
    for i in range(len(agents)):
        expected = _rows(World(sc, i, 2), range(STEPS))
        first = World(sc, i, 2)
        _rows(first, range(AT))
        state = first.checkpoint()
        _rows(first, range(AT, STEPS))
        again = World(sc, i, 2)
        again.restore(state)
        np.testing.assert_equal(_rows(again, range(AT, STEPS)), expected[AT:])
