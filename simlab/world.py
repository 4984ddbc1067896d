"""``World``: one closed loop of content, users, platform, agent and metrics.

``World.step(t)`` runs the phases in the order DESIGN.md gives:

1. ``content.step(t, last_exposure)`` — publish, retire, AIGC phase.
2. ``users.arrivals(t)`` — which users are active (return/churn model).
3. ``platform.observe(...)`` — candidates and what the platform may see (no latent truth).
4. ``agent.act(obs)`` -> slates; ``platform.rerank`` applies configured interventions.
5. ``users.respond(...)`` -> feedback; latent state updates (drift, fatigue, churn).
6. ``agent.update(feedback)``; every ``retrain_every`` steps a retrain on the log window is
   scheduled, and the retrained model serves from step ``t + deploy_lag``.
7. ``metrics`` -> one row of numbers for step ``t``.

The engine knows these phases, not any concrete model: components come from the registry
through the scenario. This module also defines the protocols those components implement.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

import numpy as np

from simlab.batch import Catalog, Feedback, Log, Observation, Slates
from simlab.contract import _check_slates, check_shape
from simlab.metrics.base import Metric, StepSnapshot
from simlab.population import StepContent
from simlab.scenario import Scenario

__all__ = [
    "WorldContext",
    "UserModel",
    "ContentModel",
    "AgentProtocol",
    "Truth",
    "World",
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

    def __init__(self, world: World | None) -> None:
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

    def __init__(self, world: World | None) -> None:
        self._world = world

    def __reduce__(self):
        return (Rewriter, (None,))

    def __call__(self, item_ids: np.ndarray, features: np.ndarray) -> np.ndarray:
        if self._world is None:
            raise RuntimeError("this rewriter is not bound to a world (restored agent?)")
        return self._world.content.rewrite_features(item_ids, features)


def bind_rewriter(agent: Any, world: World) -> None:
    """Give ``agent`` the world's rewriter when it asks for one (``bind_rewriter``)."""
    if hasattr(agent, "bind_rewriter") and hasattr(world.content, "rewrite_features"):
        agent.bind_rewriter(Rewriter(world))


def bind_hooks(agent: Any, world: World) -> None:
    """Give a newly built ``agent`` the world's hooks it asks for.

    The truth hook to privileged agents (the oracle), the content's black-box rewriter
    (``bind_rewriter``) and the users' social graph (``bind_social_graph``). A restored
    agent (a checkpoint, a fork) gets them again through this function.
    """
    if getattr(agent, "privileged", False):
        agent.bind_truth(Truth(world))
    bind_rewriter(agent, world)
    if hasattr(agent, "bind_social_graph"):
        agent.bind_social_graph(world.population.social_graph())


def reranker_specs(scenario: Scenario, agent_index: int) -> list[Any]:
    """The re-rankers of one agent's world: the platform's, then the agent's own."""
    return [*scenario.platform.rerankers, *scenario.agents[agent_index].rerankers]


class World:
    """One closed loop for one agent and one seed.

    Args:
        scenario: a resolved scenario (from :func:`simlab.scenario.load_scenario`).
        agent_index: which of ``scenario.agents`` acts in this world.
        seed: the trial seed. Worlds with the same seed and scenario see the same users,
            creators and arrivals whatever the agent (common random numbers).
        population: the user side; default every user in this process
            (:class:`~simlab.population.LocalPopulation`). The Ray backend passes user
            shard actors.
        agent: the agent; default built from the scenario. The Ray backend passes a proxy
            to an agent actor.
    """

    def __init__(
        self,
        scenario: Scenario,
        agent_index: int,
        seed: int,
        population: Any | None = None,
        agent: Any | None = None,
    ) -> None:
        from simlab.environments.platform import Platform
        from simlab.population import LocalPopulation

        ctx = WorldContext.from_scenario(scenario, seed)
        self.scenario = scenario
        self.seed = seed
        self.agent_index = agent_index
        self.content = scenario.content.cls(scenario.content.params, ctx)
        self.population = population if population is not None else LocalPopulation(scenario, seed)
        self.context = replace(ctx, num_users=int(self.population.num_users))
        specs = reranker_specs(scenario, agent_index)
        rerankers = [r.cls(r.params, self.context) for r in specs]
        self.platform = Platform(scenario.platform, self.context, rerankers)
        self.platform.clicks = getattr(self.population, "clicks", None)
        spec = scenario.agents[agent_index]
        self.agent_label = spec.label
        if agent is None:
            agent = spec.cls(spec.params, self.context)
            bind_hooks(agent, self)
        if hasattr(agent, "score"):
            for rr in rerankers:
                if hasattr(rr, "bind_scorer"):
                    rr.bind_scorer(agent.score)
        self.agent = agent
        self.metrics: list[Metric] = self._build_metrics(scenario.metrics)
        from simlab.serving import replica_serving

        self.replicas = replica_serving(self)
        self.t = 0
        self._last_exposure: tuple[np.ndarray, np.ndarray] | None = None
        self._content: StepContent | None = None
        self._arrived: tuple[np.ndarray, np.ndarray] | None = None
        self.last_feedback: Feedback | None = None
        self.last_logged: Any = None
        self.last_exposure_counts: np.ndarray | None = None

    def _build_metrics(self, names: list[str]) -> list[Metric]:
        from simlab import registry

        return [registry.resolve("metrics", name)(self.context) for name in names]

    @property
    def users(self) -> Any:
        """The user model when every user lives in this process (local execution)."""
        users = getattr(self.population, "users", None)
        if users is None:
            raise AttributeError("the users live in shard actors; use world.population")
        return users

    def metric_columns(self) -> list[str]:
        """The metric column names, in row order."""
        return [c for m in self.metrics for c in m.columns]

    def step(self, t: int) -> dict[str, float]:
        """Run step ``t`` of the loop and return its metric row."""
        if self.replicas is not None:  # slates chosen in the user shards (simlab.serving)
            return self.replicas.step(self, t)
        catalog, active = self.begin(t)
        features, history, consumed = self._arrived
        self._arrived = None
        obs = self.platform.observe(t, active, catalog, features, history, consumed)
        slates, who = self._serve(obs, catalog)
        if self.scenario.output.events:  # what the event log keeps besides the feedback
            from simlab.logged import logged_context

            self.last_logged = logged_context(
                self.agent, self.platform.rerankers, obs, slates, catalog
            )
        cands = None if obs.shared_candidates else obs.candidates
        # a deferred history that nothing kept is never built (see ClickHistory.deferred)
        del obs, history
        return self.finish(t, slates, catalog, candidates=cands, who=who)

    def begin(self, t: int) -> tuple[Catalog, np.ndarray]:
        """Phases 1-3 of step ``t``: content, arrivals and retrains due.

        Returns ``(catalog, active user ids)``. :meth:`step` is ``begin`` + serve +
        :meth:`finish`; an outside policy (``simlab.environments.gym``) serves in between.
        """
        # 1. content ---------------------------------------------------------------
        self.content.step(t, self._last_exposure)
        catalog = self.content.catalog(self.platform.knows_source)
        self._content = StepContent(catalog, self.content.latent(), self.content.new_item_sources())
        # 2. arrivals (with the features and histories the observation shows) -------
        active, features, history, consumed = self.population.arrive(
            t, self._content, defer_history=True
        )
        self._arrived = (features, history, consumed)
        # 3. retrains due now, so the new model serves from step t --------------------
        self.platform.deploy_due(t, self.agent)
        return catalog, active

    def finish(
        self,
        t: int,
        slates: Slates,
        catalog: Catalog,
        learn: bool = True,
        candidates: np.ndarray | None = None,
        who: str = "the policy",
    ) -> dict[str, float]:
        """Phases 5-7 of step ``t``: respond, learn, record and measure.

        Args:
            t: the step.
            slates: the served slates, ``(B, K)`` item ids for increasing user ids.
            catalog: the step's catalog (from :meth:`begin`).
            learn: whether the world's agent learns from the feedback (``False`` when an
                outside policy served the slates).
            candidates: ``(B, C)`` per-user candidates the slates must come from (None:
                any live item).
            who: who chose the slates, for contract errors.

        Returns:
            The metric row of step ``t``.

        Raises:
            AgentContractError: a slate has an item that is not live, a duplicate, or an
                item outside the user's candidates (checked by the user side).
        """
        # 5. respond (user side: checks, choices, latent updates, partial metrics) ------
        feedback, parts, counts = self.population.respond(t, slates, self._content, candidates, who)
        return self.absorb(t, feedback, parts, counts, catalog, learn)

    def absorb(
        self,
        t: int,
        feedback: Feedback,
        parts: dict[str, list],
        counts: np.ndarray,
        catalog: Catalog,
        learn: bool = True,
    ) -> dict[str, float]:
        """Phases 6-7 of step ``t`` once the users responded: learn, record and measure.

        ``parts`` maps each sharded metric to its shards' partial aggregates and ``counts``
        is ``(N,)`` impressions per live item (what the population's ``respond`` returns).
        """
        content = self._content
        if hasattr(self.content, "record_clicks"):  # creators who react to clicks
            self.content.record_clicks(feedback.clicked_items[feedback.clicked])
        # 6. learn -----------------------------------------------------------------
        if learn and feedback.user_ids.size:
            self.agent.update(feedback)
        self.last_exposure_counts = counts
        shown = counts > 0
        self._last_exposure = (catalog.item_ids[shown], counts[shown])
        self.platform.record(t, feedback, catalog, shown=catalog.item_ids[shown])
        self.last_feedback = feedback
        # 7. measure ---------------------------------------------------------------
        snap = StepSnapshot(
            step=t,
            num_users=self.context.num_users,
            feedback=feedback,
            catalog=catalog,
            items=content.items,
            new_item_sources=content.new_item_sources,
            interest_source=self.population.interests,
            exposure=counts,
            creators=self.content.creators() if hasattr(self.content, "creators") else None,
            agent_users=getattr(self.agent, "user_representation", None),
        )
        row: dict[str, float] = {}
        for name, m in zip(self.scenario.metrics, self.metrics, strict=True):
            row.update(m.observe(snap, parts.get(name) if m.sharded() else None))
        self.t = t + 1
        return row

    def _serve(self, obs: Observation, catalog: Catalog) -> tuple[Slates, str]:
        """The step's slates and who chose them last (their items are checked per shard)."""
        who = f"agent '{self.agent_label}'"
        width = self.platform.slate_width(obs.candidates.shape[1])
        if obs.num_users == 0:
            return Slates(obs.user_ids, np.zeros((0, width), np.int64)), who
        if self.platform.in_startup(obs.step):
            return self.platform.startup_slates(obs, width), "the platform's start-up"
        ranked = self.agent.act(obs)
        if not self.platform.rerankers:
            check_shape(ranked, obs, obs.slate_size, who)
            return ranked, who
        _check_slates(ranked, obs, obs.slate_size, catalog, who)  # before re-rankers see it
        slates = self.platform.rerank(obs, ranked)
        check_shape(slates, obs, width, "re-rankers")
        return slates, "re-rankers"

    def run(self, steps: int | None = None) -> Iterator[tuple[int, dict[str, float]]]:
        """Yield ``(t, metric row)`` for ``steps`` more steps (default: the scenario's)."""
        steps = self.scenario.steps - self.t if steps is None else steps
        for _ in range(steps):
            t = self.t
            yield t, self.step(t)

    # ------------------------------------------------------------------ checkpoints
    def checkpoint(self) -> dict[str, Any]:
        """The world's state between steps, as a data-only tree (see :mod:`simlab.checkpoint`)."""
        from simlab.checkpoint import capture

        return capture(self)

    def restore(self, state: dict[str, Any], saved: Scenario | None = None) -> None:
        """Continue from ``state`` (from :meth:`checkpoint`), possibly under new settings.

        ``saved`` is the scenario the checkpoint was taken under (default: this world's);
        components whose settings changed are rebuilt and given the saved learned state.
        """
        from simlab.checkpoint import restore

        restore(self, state, saved if saved is not None else self.scenario)
