"""Mixing Chaney's items with logit users: fatigue per topic needs a topic for every item.

``chaney-items`` gives each item the index of its largest attribute as its topic
(``0..world.dim - 1``), while logit users keep fatigue per topic in ``world.num_topics``
columns. With fewer topics than attributes, an item's topic ran past the user's row: the
update credited the next user's fatigue (silently) and the next utility stopped the run
with an IndexError. Such a world is now refused at validate time, naming the fields and the
fix; a world with enough topics runs, and its fatigue counts each user's own items.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from conftest import SMALL

from simlab.errors import ScenarioError
from simlab.scenario import parse_scenario
from simlab.world import World

CHANEY_ITEMS = {"model": "chaney-items", "items_per_step": 10, "initial_items": 40}


def _data(dim: int, topics: int, fatigue: float) -> dict:
    data = copy.deepcopy(SMALL)
    data["world"] = {"dim": dim, "num_topics": topics}
    data["users"] = {"model": "logit", "num_users": 30, "fatigue_weight": fatigue}
    data["content"] = dict(CHANEY_ITEMS)
    data["steps"] = 6
    return data


@pytest.mark.parametrize("dim, topics", [(8, 4), (8, 7), (20, 16), (3, 1), (64, 2)])
@pytest.mark.parametrize("fatigue", [0.3, 5.0, 1e-6])
def test_too_few_topics_for_the_items_is_refused(dim, topics, fatigue):
    """Any fatigue with fewer topics than attributes: one line naming both fields and the fix."""
    with pytest.raises(ScenarioError) as info:
        parse_scenario(_data(dim, topics, fatigue))
    (line,) = [x for x in str(info.value).splitlines() if "fatigue" in x]
    assert line.startswith("users.fatigue_weight: ")
    assert f"world.num_topics={topics}" in line and f"{dim} topics" in line
    assert f"at least {dim}" in line and "content.model 'chaney-items'" in line


@pytest.mark.parametrize("key, value", [("world.num_topics", 4), ("users.fatigue_weight", 0.3)])
def test_a_sweep_point_that_makes_it_is_refused(key, value):
    """The rule runs on every sweep point: a point with too few topics is named."""
    # each base is valid: fatigue with enough topics, or too few topics without fatigue
    data = _data(8, 8, 0.3) if key == "world.num_topics" else _data(8, 4, 0.0)
    data["sweep"] = {key: [value]}
    with pytest.raises(ScenarioError, match="users.fatigue_weight: logit users keep"):
        parse_scenario(data)


@pytest.mark.parametrize("dim, topics", [(8, 8), (8, 12), (4, 16)])
def test_enough_topics_runs_and_counts_each_users_own_items(dim, topics):
    """Fatigue lands in the attribute topics only, and every served user has some."""
    sc = parse_scenario(_data(dim, topics, 0.3) | {"agents": [{"model": "random"}]})
    world = World(sc, 0, 1)
    for t in range(6):
        world.step(t)
    fatigue = world.users._fatigue
    assert fatigue.shape == (30, topics)
    assert (fatigue[:, dim:] == 0).all()  # no item has a topic past the attributes
    assert (fatigue.sum(axis=1) > 0).all()  # every user saw slates


@pytest.mark.parametrize("dim, topics", [(8, 4), (20, 2)])
def test_without_fatigue_any_topic_count_runs(dim, topics):
    """Nothing reads item topics per user then: any count is fine."""
    sc = parse_scenario(_data(dim, topics, 0.0))
    world = World(sc, 0, 0)
    rows = [world.step(t) for t in range(6)]
    assert np.isfinite(rows[-1]["engagement/ctr"])
