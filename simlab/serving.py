"""Serving replicas: the agent's ``act`` runs in the user shards, beside its users.

On Ray the trial actor holds the agent, the platform log, content and the world-level
metrics. With serving replicas (``execution.serving: replicas``, the default) an agent that
declares ``serving = "replica"`` does not see its users' features, histories and
candidates there: each user shard actor keeps a copy of the agent (a *replica*) and, per
step,

1. builds the observation of its arriving users exactly as the platform would (the
   candidates are keyed draws per user and step, so a shard draws its users' own);
2. serves them with the replica (or the platform's start-up rankings);
3. lets its users respond and returns only ``user ids, slates, clicks, engagement``
   (O(slate) integers per user), the per-item exposure counts and the sharded metrics'
   partial aggregates, plus whatever :meth:`~simlab.agents.base.Agent.serving_record`
   says learning needs.

The learning instance in the trial actor publishes :meth:`serving_state` through the object
store once per retrain (every step when it learns online), with a version number; every
shard loads a new version before it serves, so every replica serves the same model at the
same step and the metrics equal the local backend's.

With the event log on (``output.events``), each shard also returns the logged context of
its users' slates (:func:`simlab.logged.logged_context`: the features the replica saw, the
served items' features and the replica's propensities), joined in user-id order as the
central loop would have logged it.

Where replicas are not possible (an agent that needs central state, re-rankers, no repeat
consumption whose candidate lists a whole batch shapes) the step runs as before:
:func:`replica_serving` returns ``None`` and says why in :func:`replica_blocker`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from simlab.batch import Catalog, Slates
from simlab.contract import check_shape
from simlab.population import Arrivals

if TYPE_CHECKING:
    from simlab.world import World

__all__ = [
    "SERVING_MODES",
    "serving_mode",
    "replica_blocker",
    "replica_serving",
    "learns_online",
    "records_served",
    "retrain_log_mode",
    "learner_blocker",
    "RETRAIN_LOGS",
    "ServingSpec",
    "Replica",
    "ReplicaServing",
    "join_records",
]

SERVING_MODES = ("replica", "central", "sharded-by-user")


def serving_mode(agent: Any) -> str:
    """The declared ``serving`` mode of an agent or agent class (``central`` if none)."""
    mode = getattr(agent if isinstance(agent, type) else type(agent), "serving", "central")
    if mode not in SERVING_MODES:
        raise ValueError(
            f"{type(agent).__name__}.serving: {mode!r} is not one of {', '.join(SERVING_MODES)}"
        )
    return mode


def learns_online(agent: Any) -> bool:
    """Whether ``agent``'s ``update`` changes it (its replicas then refresh every step)."""
    from simlab.agents.base import Agent

    update = getattr(type(agent), "update", None)
    return not isinstance(agent, Agent) or update is not Agent.update


def replica_blocker(world: World) -> str | None:
    """Why ``world``'s agent serves centrally on Ray (``None``: from replicas)."""
    from simlab.world_context import reranker_specs

    sc = world.scenario
    if sc.execution.serving == "central":
        return "execution.serving is central"
    mode = serving_mode(world.agent)
    if mode != "replica":
        return f"agent '{world.agent_label}' serves {mode}"
    blocker = getattr(world.agent, "serving_blocker", None)
    why = blocker() if blocker is not None else None
    if why:
        return f"agent '{world.agent_label}': {why}"
    if getattr(world.agent, "privileged", False):
        return f"agent '{world.agent_label}' reads latent truth"
    if reranker_specs(sc, world.agent_index):
        return "re-rankers run on the platform"
    plat = sc.platform
    if plat.exclude_consumed and not plat.consumed_ranked and not _candidates_per_user(sc):
        return (
            "platform.exclude_consumed: a user's candidates are the live items less as many as "
            "any served user consumed, so one shard's users do not fix them"
        )
    return None


def _candidates_per_user(sc: Any) -> bool:
    """Whether no repeat consumption leaves each user's candidates a function of the user.

    Without repeats the candidate lists have one width, the live items less the most any
    served user consumed (with ``max_candidates`` 0, or once the catalog less that falls
    below ``max_candidates``): a batch of users, not each user, decides it. A user consumes
    at most one item per step, so a catalog that never falls below ``max_candidates`` plus
    the steps keeps every list at ``max_candidates``.
    """
    from simlab.rules import min_live_items

    c = sc.platform.max_candidates
    live = min_live_items(sc.content, sc.steps) if c else None
    return live is not None and live - sc.steps >= c


def replica_serving(world: World) -> ReplicaServing | None:
    """The replica serving of ``world``, or None (local users, or :func:`replica_blocker`)."""
    if not hasattr(world.population, "serve_respond") or replica_blocker(world) is not None:
        return None
    spec = world.scenario.agents[world.agent_index]
    sc = world.scenario
    serving = ReplicaServing(ServingSpec(spec, world.context, sc.platform, events=sc.output.events))
    attach = getattr(world.population, "learner_serving", None)  # Ray: the learner actor
    return (attach(world, serving) if attach is not None else None) or serving


def _overrides(agent: Any, name: str) -> bool:
    from simlab.agents.base import Agent

    return not isinstance(agent, Agent) or getattr(type(agent), name) is not getattr(Agent, name)


def records_served(agent: Any) -> bool:
    """Whether ``agent`` keeps what replicas served (:meth:`record_served`) for learning."""
    return _overrides(agent, "record_served")


RETRAIN_LOGS = ("whole", "partitioned")


def retrain_log_mode(agent: Any) -> str:
    """How ``agent``'s ``retrain`` reads the log on Ray with a learner actor.

    ``none`` (it has no retrain), or its declared ``retrain_log``: ``whole`` or
    ``partitioned`` (see ``docs/scale.md``).
    """
    if not _overrides(agent, "retrain"):
        return "none"
    mode = getattr(agent, "retrain_log", "whole")
    if mode not in RETRAIN_LOGS:
        raise ValueError(
            f"{type(agent).__name__}.retrain_log: {mode!r} is not one of {', '.join(RETRAIN_LOGS)}"
        )
    return mode


def learner_blocker(world: World) -> str | None:
    """Why ``world``'s agent learns in the trial actor on Ray (``None``: in a learner actor)."""
    sc, agent = world.scenario, world.agent
    if not sc.execution.learner.actor:
        return "execution.learner.actor is false"
    if retrain_log_mode(agent) == "none" and not learns_online(agent):
        if not records_served(agent):
            return f"agent '{world.agent_label}' learns nothing"
    why = agent.learner_blocker() if hasattr(agent, "learner_blocker") else None
    if why:
        return f"agent '{world.agent_label}': {why}"
    if hasattr(agent, "user_representation"):
        return f"agent '{world.agent_label}': metrics read its user representation"
    return None


@dataclass(frozen=True)
class ServingSpec:
    """What a shard builds its replica from (sent once per shard actor).

    Attributes:
        agent: the scenario's agent spec (class and validated params).
        ctx: the world context the learning instance was built with.
        platform: the scenario's ``platform`` section (retrieval, start-up, slate size).
        shard_log: whether each shard keeps its users' part of the platform log (the
            learner actor reads it there: :mod:`simlab.execution.ray_learner`).
        events: whether the shards return the logged context of the slates they serve
            (``output.events``).
    """

    agent: Any
    ctx: Any
    platform: Any
    shard_log: bool = False
    events: bool = False

    @property
    def who(self) -> str:
        """Who chose the slates, for contract errors (as the central loop names it)."""
        return f"agent '{self.agent.label}'"


class Replica:
    """A shard's copy of the agent and of the platform's retrieval.

    Args:
        spec: the trial's :class:`ServingSpec`.
    """

    def __init__(self, spec: ServingSpec) -> None:
        from simlab.environments.platform import Platform

        self.spec = spec
        self.agent = spec.agent.cls(spec.agent.params, spec.ctx)
        self.platform = Platform(spec.platform, spec.ctx, [])
        self.version = -1

    def load(self, version: int, state: dict[str, Any]) -> None:
        """Serve the model ``state`` of ``version`` from now on."""
        self.agent.load_serving_state(state)
        self.version = version

    def serve(
        self, t: int, arrivals: Arrivals, catalog: Catalog
    ) -> tuple[Slates, np.ndarray | None, str, dict[str, np.ndarray] | None, Any]:
        """Slates for the shard's arriving users, as the central loop would choose them.

        Returns:
            ``(slates, candidates, who, record, logged)``: ``candidates`` is ``(B, C)`` when
            they differ per user (the slates must come from them), else None; ``record`` is
            the agent's :meth:`serving_record` of the observation; ``logged`` the slates'
            :class:`~simlab.logged.LoggedContext` with ``spec.events``, else None.
        """
        ids, feats, hist, consumed = arrivals
        obs = self.platform.observe(t, ids, catalog, feats, hist, consumed)
        cands = None if obs.shared_candidates else obs.candidates
        width = self.platform.slate_width(obs.candidates.shape[1])
        startup = self.platform.in_startup(t)
        who = self.spec.who
        if obs.num_users == 0:
            slates = Slates(ids, np.zeros((0, width), np.int64))
        elif startup:
            slates = self.platform.startup_slates(obs, width)
            who = "the platform's start-up"
        else:
            slates = self.agent.act(obs)
            check_shape(slates, obs, obs.slate_size, who)
        logged = None
        if self.spec.events:  # right after acting, as the central loop logs it
            from simlab.logged import logged_context

            logged = logged_context(self.agent, [], obs, slates, catalog, startup=startup)
        record = self.agent.serving_record(obs) if obs.num_users else None
        return slates, cands, who, record, logged


def join_records(parts: list[dict[str, np.ndarray] | None]) -> dict[str, np.ndarray] | None:
    """The shards' serving records (consecutive user ranges) joined in user-id order."""
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


class ReplicaServing:
    """The trial actor's side: publish model versions, run a step whose slates the shards chose.

    Args:
        spec: what the shards build their replicas from.
    """

    def __init__(self, spec: ServingSpec) -> None:
        self.spec = spec
        self.published = False  # nothing published yet (a new or restored world)

    def step(self, world: World, t: int) -> dict[str, float]:
        """Step ``t`` of ``world`` with serving in the shards; its metric row.

        The same phases as :meth:`World.step` (content, retrains due, arrivals, serving,
        responses, learning, metrics); arrivals, serving and responses run in one call
        per shard, and the retrains due run before it (they read neither).
        """
        content = world.step_content(t)
        catalog = content.catalog
        retrained = world.platform.deploy_due(t, world.agent)
        state = None
        if retrained or not self.published or learns_online(world.agent):
            state = world.agent.serving_state()
            self.published = True
        feedback, parts, counts, record, logged = world.population.serve_respond(
            t, content, self.spec, state
        )
        if record is not None and feedback.user_ids.size:
            world.agent.record_served(t, record, catalog)
        world.last_logged = logged
        return world.absorb(t, feedback, parts, counts, catalog)
