"""What an agent's act or a re-ranker's rerank returns is checked by kind, naming who.

An agent that returned a bare array, a list or None failed with "'NoneType' object has no
attribute 'item_ids'"; a re-ranker that returned None, a list, a 1-D or float array, or too
few rows failed deep inside the platform's cut to K or the Slates constructor, without
naming the re-ranker; a sampled agent's propensities of the wrong shape were reshaped
silently (a transposed array) and values outside (0, 1] or NaN went into the event log.
Each is now an ``AgentContractError`` naming the agent (or the re-ranker, its position and
class) and what was expected.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_small

from simlab import registry
from simlab.agents import PopularityAgent, RandomAgent
from simlab.agents.rerank import Reranker
from simlab.batch import Slates
from simlab.errors import AgentContractError
from simlab.world import World

NOT_SLATES = {
    "None": lambda s: None,
    "array": lambda s: s.item_ids,
    "list": lambda s: s.item_ids.tolist(),
    "tuple": lambda s: (s.user_ids, s.item_ids),
    "dict": lambda s: {"user_ids": s.user_ids, "item_ids": s.item_ids},
}

BAD_RERANKED = {
    "None": lambda items: None,
    "list": lambda items: items.tolist(),
    "tuple": lambda items: (items,),
    "float": lambda items: items.astype(np.float64),
    "bool": lambda items: items > 0,
    "object": lambda items: items.astype(object),
    "uint": lambda items: items.astype(np.uint64),
    "1-D": lambda items: items[:, 0],
    "3-D": lambda items: items[:, :, None],
    "fewer rows": lambda items: items[:-1],
    "more rows": lambda items: np.concatenate([items, items[:1]]),
    "Slates": lambda items: Slates(np.arange(items.shape[0]), items),
}


def _run(kind: str, cls, *extra) -> None:
    registry.register(kind, "contract-under-test", cls)
    try:
        if kind == "agents":
            sc = make_small(*extra, agents=[{"model": "contract-under-test"}], steps=3)
        else:
            rr = [{"model": "mmr"}, {"model": "contract-under-test"}]
            sc = make_small(("platform.rerankers", rr), agents=[{"model": "popularity"}], steps=3)
        world = World(sc, 0, 0)
        for t in range(3):
            world.step(t)
    finally:
        registry._REGISTRY[kind].pop("contract-under-test")


@pytest.mark.parametrize("kind", sorted(NOT_SLATES))
@pytest.mark.parametrize("rerankers", [False, True])
def test_an_agent_must_return_slates(kind, rerankers):
    """Named, with what it returned, whether re-rankers follow or not."""

    class Returns(PopularityAgent):
        def act(self, obs):
            return NOT_SLATES[kind](super().act(obs))

    extra = [("platform.rerankers", [{"model": "mmr"}])] if rerankers else []
    with pytest.raises(AgentContractError) as info:
        _run("agents", Returns, *extra)
    msg = str(info.value)
    assert msg.startswith("agent 'contract-under-test' returned ")
    assert "expected simlab.batch.Slates(user_ids, item_ids)" in msg


@pytest.mark.parametrize("kind", sorted(BAD_RERANKED))
def test_a_reranker_must_return_a_row_of_item_ids_per_user(kind):
    """Named by position and class, with the shape and dtype it returned."""

    class Returns(Reranker):
        def rerank(self, obs, items):
            return BAD_RERANKED[kind](items)

    with pytest.raises(AgentContractError) as info:
        _run("rerankers", Returns)
    msg = str(info.value)
    assert msg.startswith("re-ranker 2 of 2 (Returns) returned ")
    assert "integer array of item ids, one row per user" in msg


def test_a_reranker_that_reorders_passes():
    """A valid re-ranking (the rows reversed) runs."""

    class Reverses(Reranker):
        def rerank(self, obs, items):
            return np.ascontiguousarray(items[:, ::-1])

    _run("rerankers", Reverses)


BAD_PROPENSITIES = {
    "transposed": (lambda p: p.T.copy(), "returned shape (3, "),
    "flat": (lambda p: p.ravel(), "returned shape ("),
    "one row short": (lambda p: p[1:], "returned shape ("),
    "scalar": (lambda p: 0.5, "returned shape ()"),
    "ragged": (lambda p: [[0.5], [0.5, 0.5]], "returned a list"),
    "zero": (lambda p: np.zeros_like(p), "returned 0.0 for a served item"),
    "negative": (lambda p: -p, "for a served item, expected probabilities in (0, 1]"),
    "above one": (lambda p: p + 1.0, "for a served item, expected probabilities in (0, 1]"),
    "NaN": (lambda p: np.full_like(p, np.nan), "returned nan for a served item"),
    "infinite": (lambda p: np.full_like(p, np.inf), "returned inf for a served item"),
}


@pytest.mark.parametrize("kind", sorted(BAD_PROPENSITIES))
def test_a_sampled_agents_propensities_are_probabilities_of_its_slates(kind):
    """Logged with the events, where off-policy estimates weigh by them: checked, named."""
    change, fragment = BAD_PROPENSITIES[kind]

    class Reports(RandomAgent):
        def propensities(self, obs, slates):
            return change(super().propensities(obs, slates))

    with pytest.raises(AgentContractError) as info:
        _run("agents", Reports, "output.events=true", "platform.slate_size=3")
    msg = str(info.value)
    assert msg.startswith("agent Reports: propensities() returned ") and fragment in msg


@pytest.mark.parametrize("kind", ["array", "list of lists", "None"])
def test_valid_propensities_are_logged_as_given(kind):
    """An array, nested lists of the right shape, or None (the policy's default)."""
    as_kind = {"array": np.asarray, "list of lists": lambda p: p.tolist(), "None": lambda p: None}

    class Reports(RandomAgent):
        def propensities(self, obs, slates):
            return as_kind[kind](super().propensities(obs, slates))

    _run("agents", Reports, "output.events=true", "platform.slate_size=3")
