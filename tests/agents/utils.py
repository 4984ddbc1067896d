"""The agents every contract test runs over, and helpers to drive them inside a World."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from conftest import make_small

from simlab.world import World


@dataclass(frozen=True)
class AgentCase:
    """One agent of the contract tests.

    Attributes:
        id: readable test id.
        spec: the scenario's agent entry (``model`` plus params).
        learns: whether the agent has learned state (``state_dict`` must round-trip).
    """

    id: str
    spec: dict[str, Any]
    learns: bool = False
    overrides: tuple[tuple[str, Any], ...] = field(default=())

    def world(self, *overrides: tuple[str, Any] | str, seed: int = 0) -> World:
        """A small World in which this agent acts (the oracle gets its truth hook there)."""
        scenario = make_small(*self.overrides, *overrides, agents=[dict(self.spec)])
        return World(scenario, 0, seed)


AGENTS: list[AgentCase] = [
    AgentCase("random", {"model": "random"}),
    AgentCase("popularity", {"model": "popularity"}, learns=True),
    AgentCase("oracle", {"model": "oracle"}),
    AgentCase("epsilon-greedy", {"model": "epsilon-greedy", "epsilon": 0.3}, learns=True),
    AgentCase("mf", {"model": "mf", "factors": 8, "epochs": 2}, learns=True),
    AgentCase("two-tower", {"model": "two-tower", "factors": 8, "epochs": 2}, learns=True),
]
"""Every built-in agent, with parameters that keep the tests fast."""

LEARNING_AGENTS = [case for case in AGENTS if case.learns]
