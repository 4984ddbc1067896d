"""Settings that scale embeddings and features stop at ``FEATURE_SCALE_MAX``, where worlds run.

Spreads, noise and style lengths of 1e20 made the float32 features so large that LinUCB's
``sum x x^T`` overflowed (its Cholesky failed) and the isotropy re-ranker's SVD did not
converge, mid-run. Every such setting is bounded: the bound itself (and its negative, where
allowed) runs a few steps with the agents that broke, and one past it is refused by name.
"""

from __future__ import annotations

import copy
import itertools

import annotated_types as at
import pytest
from conftest import SMALL, SMALL_MODELS
from test_malformed_scenarios import NUMBER_FIELDS, _put

from simlab.errors import ScenarioError
from simlab.params import FEATURE_SCALE_MAX
from simlab.scenario import parse_scenario
from simlab.world import World

SCALED = [
    (owner, path, info)
    for owner, path, info in NUMBER_FIELDS
    if info.annotation is float
    and any(isinstance(m, at.Le) and m.le == FEATURE_SCALE_MAX for m in info.metadata)
]
# worlds whose other components fit the setting's owner (the small world's are logit/creators)
WORLDS = [
    {},
    {"users": {"model": "chaney", "num_users": 30}, "content": {"model": "chaney-items"}},
    {
        "world": {"dim": 8, "num_topics": 8},
        "users": {"model": "interest-evolution", "num_users": 60},
        "content": {"model": "recsim-corpus"},
    },
]
AGENTS = [
    ({"model": "linucb"}, None),
    ({"model": "linear-ts"}, None),
    ({"model": "two-tower", **SMALL_MODELS["two-tower"]}, {"model": "isotropy"}),
]


def _scenario(owner, path, value, agent, reranker, world=0):
    data = copy.deepcopy(SMALL)
    data.update(steps=3)
    data["users"]["num_users"] = 60
    data["content"]["initial_items"] = 60
    data["platform"]["retrain_every"] = 1
    data.update(copy.deepcopy(WORLDS[world]))
    where = _put(data, owner, path, value)
    data["agents"] = [agent]
    if reranker:
        data["platform"]["rerankers"] = [reranker]
    return where, data


def test_the_scaled_settings_are_found():
    """A guard against an empty parametrize: the known ones are among them."""
    names = {".".join(map(str, p)) for _, p, _ in SCALED}
    assert {"world.topic_spread", "content.style_magnitude", "content.anisotropy"} <= names
    assert {"content.feature_noise", "users.feature_noise", "content.doc_feature_std"} <= names
    assert len(SCALED) >= 12


@pytest.mark.parametrize(
    ("owner", "path", "info"), SCALED, ids=[f"{o}.{'.'.join(map(str, p))}" for o, p, _ in SCALED]
)
def test_the_bound_runs_and_one_past_it_is_refused(owner, path, info):
    """At the bound the agents that overflowed before run; past it, an error names the field."""
    lows = [m.ge for m in info.metadata if isinstance(m, at.Ge) and m.ge < 0]
    ran = 0
    for value in (FEATURE_SCALE_MAX, *lows):
        for (agent, reranker), world in itertools.product(AGENTS, range(len(WORLDS))):
            where, data = _scenario(owner, path, value, agent, reranker, world)
            try:
                sc = parse_scenario(data)
            except ScenarioError:
                continue  # the component does not fit this world (e.g. Chaney's users)
            world = World(sc, 0, 0)
            for t in range(sc.steps):
                world.step(t)
            ran += 1
    assert ran, "no world accepted the component"
    where, data = _scenario(owner, path, FEATURE_SCALE_MAX * 1.5, *AGENTS[0])
    with pytest.raises(ScenarioError, match=rf"{where.split('[')[0]}.*less than or equal to 1000"):
        parse_scenario(data)
