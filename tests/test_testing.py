"""simlab.testing.check_agent catches agents that break the contract."""

from __future__ import annotations

import numpy as np
import pytest

from simlab import registry
from simlab.agents import Agent, RandomAgent
from simlab.batch import Slates
from simlab.errors import AgentContractError
from simlab.rng import Stream
from simlab.testing import check_agent


class _Repeats(Agent):
    """Puts the first candidate in every slot."""

    def act(self, obs):
        first = np.asarray(obs.candidates)[:, :1]
        return Slates(obs.user_ids, np.repeat(first, obs.slate_size, axis=1))


class _Unseeded(RandomAgent):
    """Random slates from a stream keyed by the object's id: not reproducible."""

    def __init__(self, params, ctx):
        super().__init__(params, ctx)
        self._stream = Stream(id(self) % 1000, "bad")


class _Forgetful(Agent):
    """Learns click counts but does not save them in its state."""

    def __init__(self, params, ctx):
        super().__init__(params, ctx)
        self.clicks = np.zeros(100_000)

    def update(self, feedback):
        np.add.at(self.clicks, feedback.clicked_items[feedback.clicked], 1)

    def act(self, obs):
        scores = self.clicks[np.asarray(obs.candidates)] - 1e-6 * np.asarray(obs.candidates)
        idx = np.argsort(-scores, axis=1, kind="stable")[:, : obs.slate_size]
        return Slates(obs.user_ids, np.take_along_axis(np.asarray(obs.candidates), idx, axis=1))


@pytest.mark.parametrize(
    "cls, message",
    [
        (_Repeats, "duplicate item|repeats an item"),
        (_Unseeded, "same seed gave different slates"),
        (_Forgetful, "restored from state_dict"),
    ],
)
def test_check_agent_rejects_broken_agents(cls, message):
    """Each kind of contract breach is caught and named."""
    registry.register("agents", "broken-under-test", cls)
    try:
        with pytest.raises(AgentContractError, match=message):
            check_agent("broken-under-test")
    finally:
        registry._REGISTRY["agents"].pop("broken-under-test")
