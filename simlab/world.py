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
through the scenario. The protocols those components implement, and the context they are
told, are in :mod:`simlab.world_context` (re-exported here).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import numpy as np

from simlab.allocator import keep_freed_memory
from simlab.batch import Catalog, Feedback, Observation, Slates
from simlab.contract import _check_slates, check_content, check_shape
from simlab.metrics.base import Metric, StepSnapshot
from simlab.population import StepContent
from simlab.scenario import Scenario, expect_scenario
from simlab.world_context import (
    AgentProtocol,
    ContentModel,
    Rewriter,
    Truth,
    UserModel,
    WorldContext,
    reranker_specs,
)

__all__ = [
    "WorldContext",
    "UserModel",
    "ContentModel",
    "AgentProtocol",
    "Truth",
    "Rewriter",
    "reranker_specs",
    "World",
    "bind_hooks",
    "bind_rewriter",
]


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


def _check_world_args(scenario: object, agent_index: object) -> None:
    """Raise ``TypeError``/``ValueError`` naming a ``World`` argument of the wrong kind."""
    expect_scenario(scenario)
    n = len(scenario.agents)
    if isinstance(agent_index, bool) or not isinstance(agent_index, (int, np.integer)):
        raise TypeError(
            f"Expects `agent_index` to be an int, actual type: {type(agent_index).__name__}"
        )
    if not 0 <= agent_index < n:
        raise ValueError(
            f"Expects `agent_index` to be in [0, {n}) (the scenario's {n} agents), actual "
            f"value: {agent_index}"
        )


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

        _check_world_args(scenario, agent_index)
        keep_freed_memory()  # this process reuses freed arrays (simlab.allocator)
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

    def _check_next(self, t: object) -> None:
        """Raise ``TypeError``/``ValueError`` unless ``t`` is this world's next step."""
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)):
            raise TypeError(f"Expects the step `t` to be an int, actual type: {type(t).__name__}")
        if t != self.t:
            raise ValueError(
                f"Expects the step `t` to be this world's next step, {self.t}, actual value: "
                f"{t}; steps run in order from 0 (or from a restored checkpoint's step), as "
                "World.run steps them"
            )

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
        """Run step ``t`` of the loop and return its metric row.

        Steps run in order: ``t`` is :attr:`t`, the next step (0 for a new world; after
        :meth:`restore`, the checkpoint's). Any other ``t`` raises ``ValueError``, since every
        draw and schedule is keyed by the step (:meth:`run` steps in order for you).
        """
        if self.replicas is not None:  # slates chosen in the user shards (simlab.serving)
            self._check_next(t)
            return self.replicas.step(self, t)
        catalog, active = self.begin(t)  # (checks t)
        features, history, consumed = self._arrived
        self._arrived = None
        obs = self.platform.observe(t, active, catalog, features, history, consumed)
        slates, who = self._serve(obs, catalog)
        if self.scenario.output.events:  # what the event log keeps besides the feedback
            from simlab.logged import logged_context

            self.last_logged = logged_context(
                self.agent,
                self.platform.rerankers,
                obs,
                slates,
                catalog,
                startup=self.platform.in_startup(t),
            )
        cands = None if obs.shared_candidates else obs.candidates
        # a deferred history that nothing kept is never built (see ClickHistory.deferred)
        del obs, history
        return self.finish(t, slates, catalog, candidates=cands, who=who)

    def begin(self, t: int) -> tuple[Catalog, np.ndarray]:
        """Phases 1-3 of step ``t``: content, arrivals and retrains due.

        Returns ``(catalog, active user ids)``. :meth:`step` is ``begin`` + serve +
        :meth:`finish`; an outside policy (``simlab.environments.gym``) serves in between.
        ``t`` must be the next step, :attr:`t`, as for :meth:`step`.
        """
        self._check_next(t)
        # 1. content ---------------------------------------------------------------
        catalog = self.step_content(t).catalog
        # 2. arrivals (with the features and histories the observation shows) -------
        active, features, history, consumed = self.population.arrive(
            t, self._content, defer_history=True
        )
        self._arrived = (features, history, consumed)
        # 3. retrains due now, so the new model serves from step t --------------------
        self.platform.deploy_due(t, self.agent)
        return catalog, active

    def step_content(self, t: int) -> StepContent:
        """Phase 1 of step ``t``: the content model steps; its catalog, items and sources.

        What the content model returns is checked (:func:`~simlab.contract.check_content`)
        before anything reads it, and kept for the step (``_content``).
        """
        self.content.step(t, self._last_exposure)
        c = self.content
        content = StepContent(
            c.catalog(self.platform.knows_source), c.latent(), c.new_item_sources()
        )
        self._content = check_content(content, f"content model '{self.scenario.content.model}'")
        return content

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
            # an online learner keeps the served users' context, as its act would have
            keep = getattr(self.agent, "serving_record", None)
            record = keep(obs) if keep is not None else None
            if record is not None:
                self.agent.record_served(obs.step, record, catalog)
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
        """The world's state between steps, as a data-only tree (see :mod:`simlab.checkpoint`).

        The tree is a copy: the world's later steps do not change it, so one checkpoint can
        start any number of worlds (:meth:`restore`), at any time.
        """
        from simlab.checkpoint import capture

        return copy.deepcopy(capture(self))

    def restore(self, state: dict[str, Any], saved: Scenario | None = None) -> None:
        """Continue from ``state`` (from :meth:`checkpoint`), possibly under new settings.

        ``saved`` is the scenario the checkpoint was taken under (default: this world's);
        components whose settings changed are rebuilt and given the saved learned state.
        The world takes a copy of ``state``: its steps leave the caller's tree as it was.
        """
        from simlab.checkpoint import restore

        restore(self, copy.deepcopy(state), saved if saved is not None else self.scenario)
