"""What the world's components are told and must implement, without the world itself.

:class:`WorldContext` (what every component is told about the world it lives in), the
protocols the loop requires of its components (:class:`ContentModel`, :class:`UserModel`,
:class:`AgentProtocol`), the hooks through which agents reach a world (:class:`Truth`,
:class:`Rewriter`) and :func:`reranker_specs`. Population, checkpoint and the components
import these from here, below :class:`~simlab.world.World` (which re-exports them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from simlab.batch import Catalog, Feedback, Log, Observation, Slates

if TYPE_CHECKING:
    from simlab.scenario import Scenario

__all__ = [
    "WorldContext",
    "UserModel",
    "ContentModel",
    "AgentProtocol",
    "Truth",
    "Rewriter",
    "reranker_specs",
]


@dataclass(frozen=True)
class WorldContext:
    """What every component is told about the world it lives in.

    Attributes:
        seed: the trial's seed; components draw randomness through ``simlab.rng`` with it.
        dim: dimension of latent interest and item vectors.
        num_topics: number of latent topics.
        topic_spread: scale of topic centres.
        steps: planned number of steps.
        slate_size: K.
        history_length: H.
        num_users: size of the user population (0 until the users are built).
        user_range: ``(lo, hi)``: a user model built with it holds only users
            ``lo..hi-1`` (one user shard); ``None`` means every user.
        measure_every: steps between cadenced (expensive) measures (``measures.every``).
        pairwise_every: steps between pairwise measures (``measures.pairwise_every``).
        pairwise_pairs: user pairs they sample (``measures.pairwise_pairs``).
    """

    seed: int
    dim: int
    num_topics: int
    topic_spread: float
    steps: int
    slate_size: int
    history_length: int
    num_users: int = 0
    user_range: tuple[int, int] | None = None
    pairwise_every: int = 1
    pairwise_pairs: int = 2000
    measure_every: int = 1

    @classmethod
    def from_scenario(cls, scenario: Scenario, seed: int) -> WorldContext:
        """The context of one trial of ``scenario``."""
        return cls(
            seed=seed,
            dim=scenario.world.dim,
            num_topics=scenario.world.num_topics,
            topic_spread=scenario.world.topic_spread,
            steps=scenario.steps,
            slate_size=scenario.platform.slate_size,
            history_length=scenario.platform.history_length,
            pairwise_every=scenario.measures.pairwise_every,
            pairwise_pairs=scenario.measures.pairwise_pairs,
            measure_every=scenario.measures.every,
        )


@runtime_checkable
class ContentModel(Protocol):
    """A content ecosystem: publishes and retires items; holds their latent truth."""

    def step(self, t: int, last_exposure: tuple[np.ndarray, np.ndarray] | None) -> None:
        """Advance to step ``t``; ``last_exposure`` is ``(item_ids, counts)`` of step t-1."""

    def catalog(self, knows_source: bool) -> Catalog:
        """The observable catalog of live items."""

    def latent(self) -> Any:
        """The latent item table (embeddings, quality, source) for users and metrics."""

    def new_item_sources(self) -> np.ndarray:
        """``(P,)`` source (0 human, 1 AIGC) of the items published at the current step."""


@runtime_checkable
class UserModel(Protocol):
    """A user population: arrivals, responses and latent state."""

    num_users: int

    def arrivals(self, t: int) -> np.ndarray:
        """Increasing ids of the users active at step ``t``."""

    def observable_features(self, user_ids: np.ndarray) -> np.ndarray:
        """``(B, f)`` features the platform may see."""

    def respond(self, t: int, user_ids: np.ndarray, slates: np.ndarray, items: Any) -> Feedback:
        """Users' choices among their slates; updates latent state."""

    def expected_utility(
        self, t: int, user_ids: np.ndarray, item_ids: np.ndarray, items: Any
    ) -> np.ndarray:
        """``(B, C)`` noise-free utility of each item for each user (privileged)."""

    def interests(self) -> tuple[np.ndarray, np.ndarray]:
        """``(current, initial)`` latent interest matrices, ``(num_users, d)`` each."""


@runtime_checkable
class AgentProtocol(Protocol):
    """What the loop requires of an agent (``simlab.agents.base.Agent`` implements it)."""

    def act(self, obs: Observation) -> Slates:
        """Rank ``obs.slate_size`` candidate items for every user in ``obs``."""

    def update(self, feedback: Feedback) -> None:
        """Learn online from one step of feedback."""

    def retrain(self, log: Log) -> None:
        """Retrain from the platform's log window."""


class Truth:
    """The privileged hook through which the oracle agent reaches latent truth.

    Only agents that declare ``privileged = True`` receive one (through ``bind_truth``);
    it is the single, explicit door from agents to latent state. A pickled agent (a
    checkpoint) drops it; the world binds a new one on restore.
    """

    def __init__(self, world: Any | None) -> None:  # a simlab.world.World (not imported)
        self._world = world

    def __reduce__(self):
        return (Truth, (None,))

    def utility(self, t: int, user_ids: np.ndarray, item_ids: np.ndarray) -> np.ndarray:
        """``(B, C)`` expected utility of ``item_ids[b, c]`` for ``user_ids[b]`` now."""
        w = self._world
        if w is None:
            raise RuntimeError("this Truth hook is not bound to a world (restored agent?)")
        return w.population.expected_utility(t, user_ids, item_ids, w.content.latent())


class Rewriter:
    """The content model's black-box rewrite function, for agents that debias by source.

    ``rewriter(item_ids, features)`` returns the observable features of a rewrite of each
    item (see ``CreatorEcosystem.rewrite_features``); like :class:`Truth`, a pickled agent
    drops it and the world binds a new one on restore.
    """

    def __init__(self, world: Any | None) -> None:  # a simlab.world.World (not imported)
        self._world = world

    def __reduce__(self):
        return (Rewriter, (None,))

    def __call__(self, item_ids: np.ndarray, features: np.ndarray) -> np.ndarray:
        """``(B, f)`` observable features of a rewrite of each of the ``(B,)`` items."""
        if self._world is None:
            raise RuntimeError("this rewriter is not bound to a world (restored agent?)")
        return self._world.content.rewrite_features(item_ids, features)


def reranker_specs(scenario: Scenario, agent_index: int) -> list[Any]:
    """The re-rankers of one agent's world: the platform's, then the agent's own."""
    return [*scenario.platform.rerankers, *scenario.agents[agent_index].rerankers]
