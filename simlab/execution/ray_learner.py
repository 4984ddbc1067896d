"""The learner actor of a Ray trial: the agent's ``update`` and ``retrain`` on their own worker.

With serving replicas (:mod:`simlab.serving`) the trial actor only coordinates: the shards
choose the slates. With the learner actor (``execution.learner.actor``, the default) the
learning instance of the agent moves out of the trial actor too:

- **the log stays on the shards**: each user shard keeps its users' part of the platform log
  (:class:`~simlab.log_partition.ShardLog`) and its part of every due retrain's snapshot; the
  trial actor keeps each logged step's shown items and their features (content);
- **the learner** (:class:`_LearnerActor`, ``execution.learner`` CPUs and GPUs) receives the
  snapshot as object references to the shards' parts, resolved in the learner's process:
  joined there in user-id order into the log the local backend would give (``retrain_log:
  whole``), or reduced on the shards by the agent's ``log_summary`` and combined by
  ``retrain_from_summaries`` (``partitioned``: the whole log is never gathered anywhere);
- **the model** the learner publishes (``serving_state``) goes from the learner to the
  shards through the object store: the trial actor passes the reference on, never the
  bytes.

The calls reach the learner in the local backend's order (``record_served``, ``update``,
``retrain``, ``serving_state``) and it runs them one at a time, so the models equal the
local ones. The trial actor never waits for them: the shards wait for a new version when
they serve. A retrain starts as soon as the agent cannot change before the model is due —
at the end of the step that took the snapshot for an agent that neither learns online nor
keeps served records (``mf``, ``popularity``), so with ``deploy_lag: D`` it overlaps the
serving of ``D - 1`` steps; otherwise after the previous step's ``update`` — and never
across the publication of an earlier model (with ``retrain_every < D``) nor across a
checkpoint boundary, so that a checkpoint holds the agent as the local backend's before the
retrain (with the pending snapshot on the shards).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from simlab.allocator import keep_freed_memory
from simlab.execution.measure import measuring, serialized_size
from simlab.execution.ray_population import _lost, _ray
from simlab.serving import (
    ServingSpec,
    learner_blocker,
    learns_online,
    records_served,
    retrain_log_mode,
)

if TYPE_CHECKING:
    from simlab.world import World

__all__ = ["LearnerServing", "LearnerProxy", "attach_learner"]


class _LearnerActor:
    """Holds the learning instance of the agent; runs its updates and retrains in order."""

    def __init__(self, spec: ServingSpec) -> None:
        keep_freed_memory()  # the actor's process reuses freed arrays (simlab.allocator)
        self.error: BaseException | None = None
        try:
            self.agent = spec.agent.cls(spec.agent.params, spec.ctx)
        except Exception as e:  # noqa: BLE001 - re-raised by the first call
            self.error = e
        self.busy_s = 0.0  # seconds spent learning (update, record_served, retrain)
        self.model_bytes = 0  # serialized size of the models published (when measured)

    def _timed(self, fn, *args) -> None:
        if self.error is not None:
            raise self.error
        start = time.perf_counter()
        try:
            fn(*args)
        except Exception as e:  # sticky: every later call (the next version) raises it
            self.error = e
            raise
        self.busy_s += time.perf_counter() - start

    def retrain(self, mode: str, central: list, *parts) -> None:
        """Retrain on a snapshot: the shards' parts (resolved here) and the central window."""
        self._timed(self._retrain, mode, central, list(parts))

    def _retrain(self, mode: str, central: list, parts: list) -> None:
        if mode == "partitioned":
            self.agent.retrain_from_summaries(parts)
            return
        from simlab.batch import Deferred, Log
        from simlab.log_partition import join_steps, latest_features

        table = Deferred(lambda: latest_features(central))
        ids = Deferred(lambda: table.resolve()[0])
        feats = Deferred(lambda: table.resolve()[1])
        self.agent.retrain(Log.of_steps(join_steps(parts), ids, feats))

    def update(self, feedback) -> None:
        self._timed(self.agent.update, feedback)

    def record_served(self, t: int, record: dict, content) -> None:
        """Keep what the replicas served (``content``: the step's, from the object store)."""
        self._timed(self.agent.record_served, t, record, content.catalog)

    def serving_state(self, measure: bool = False) -> dict[str, Any]:
        """The model the replicas serve next (the reference goes to the shards)."""
        if self.error is not None:
            raise self.error
        state = self.agent.serving_state()
        if measure:
            self.model_bytes += serialized_size(state)
        return state

    def state_dict(self) -> dict[str, Any]:
        if self.error is not None:
            raise self.error
        return self.agent.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.error is not None:
            raise self.error
        from simlab.state import writable

        self.agent.load_state_dict(writable(state))  # (the object store's arrays: read-only)

    def stats(self) -> dict[str, float]:
        """Seconds spent learning and the measured models' bytes (``benchmarks/scaling.py``)."""
        return {"busy_s": self.busy_s, "model_bytes": float(self.model_bytes)}

    def node_id(self) -> str:
        return _ray().get_runtime_context().get_node_id()

    def peak_rss_mb(self) -> float:
        from simlab.execution.measure import peak_rss_mb

        return peak_rss_mb()


class LearnerProxy:
    """The trial actor's handle on the learner, in place of the agent (checkpoints only)."""

    serving = "replica"

    def __init__(self, actor: Any) -> None:
        self.actor = actor

    @_lost
    def state_dict(self) -> dict[str, Any]:
        """The learning agent's state (for a checkpoint)."""
        return _ray().get(self.actor.state_dict.remote())

    @_lost
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the learning agent (a checkpoint's state)."""
        _ray().get(self.actor.load_state_dict.remote(state))


def attach_learner(world: World, serving: Any, make_actor: Any) -> LearnerServing | None:
    """The learner serving of ``world`` (replicas on), or None when it learns here (and why).

    ``make_actor(spec)`` starts the learner actor. The reason the agent learns in the trial
    actor, if any, is left in ``world.learner_note``.
    """
    why = learner_blocker(world)
    world.learner_note = why
    if why is not None:
        return None
    agent = world.agent
    spec = replace(serving.spec, shard_log=True)
    out = LearnerServing(spec, make_actor(spec), agent)
    world.population.bind_learner(out.actor, spec)
    world.agent = LearnerProxy(out.actor)
    world.platform.log_on_shards = True
    return out


class LearnerServing:
    """The trial actor's side with a learner actor: publish, serve, log and learn elsewhere.

    Args:
        spec: what the shards build their replicas from (``shard_log`` on).
        actor: the learner actor.
        agent: the agent as built in the trial actor (read for its declarations only).
    """

    def __init__(self, spec: ServingSpec, actor: Any, agent: Any) -> None:
        self.spec, self.actor = spec, actor
        self.mode = retrain_log_mode(agent)
        self.online = learns_online(agent)
        self.records = records_served(agent)
        self.published = False
        self.submitted: list[int] = []  # deploy steps of the retrains handed to the learner
        self.inflight: list = []  # the learner's calls not yet seen to finish
        self.last_bytes: dict[str, int] = {}  # to the learner, last step (when measuring)

    def step(self, world: World, t: int) -> dict[str, float]:
        """Step ``t`` of ``world`` with serving in the shards and learning in the learner."""
        content = world.step_content(t)
        catalog = content.catalog
        self._check()
        sent = self._submit(world, t, after_step=False)
        deployed = [at for at in self.submitted if at <= t]
        self.submitted = [at for at in self.submitted if at > t]
        ref = None
        if deployed or not self.published or self.online:
            ref = self.actor.serving_state.remote(measuring())
            self.published = True
        feedback, parts, counts, record, logged = world.population.serve_respond(
            t, content, self.spec, None, state_ref=ref
        )
        if feedback.user_ids.size:
            if self.records and record is not None:
                ref = world.population.content_ref  # put once for the shards: read, not sent
                self.inflight.append(self.actor.record_served.remote(t, record, ref))
                sent += _size((t, record))
            if self.online:
                self.inflight.append(self.actor.update.remote(feedback))
                sent += _size(feedback)
        world.last_logged = logged
        row = world.absorb(t, feedback, parts, counts, catalog, learn=False)
        sent += self._submit(world, t + 1, after_step=True)
        if measuring():
            self.last_bytes = {"to_learner": sent}
        return row

    def _check(self) -> None:
        """Raise a finished learner call's error (the model's own exception) here."""
        if not self.inflight:
            return
        ray = _ray()
        from ray.exceptions import RayTaskError

        ready, self.inflight = ray.wait(self.inflight, num_returns=len(self.inflight), timeout=0)
        try:
            ray.get(ready)
        except RayTaskError as e:
            if isinstance(e.cause, Exception):
                from simlab.execution.ray_population import remote_cause

                raise e.cause from remote_cause(e, "the learner actor")
            raise

    def _submit(self, world: World, boundary: int, after_step: bool) -> int:
        """Hand the learner the retrains it may run from ``boundary`` on; bytes sent.

        At the start of a step (``after_step`` false) only the retrains due at that step
        (their deploy step has come). At the end of one, the next snapshot goes early if
        the learner's agent would not change before its deploy step anyway: nothing in
        between learns (no ``update``, no ``record_served``: else it waits for the step
        before the deploy), no model is published in between (an earlier retrain still to
        deploy) and no checkpoint falls in between (it must hold the agent before the
        retrain, as the local backend's does, with the snapshot pending on the shards).
        """
        from simlab.checkpoint import due_checkpoint

        sc = world.scenario
        lag, sent = sc.platform.deploy_lag, 0
        pending = world.platform._pending
        while pending:
            at, central = pending[0]
            if not after_step:
                if at > boundary:
                    break
            else:
                learns = self.online or self.records
                if boundary < (at if learns else at - lag + 1):
                    break
                if any(d >= boundary for d in self.submitted):
                    break
                if any(due_checkpoint(sc.output, b, sc.steps) for b in range(boundary, at + 1)):
                    break
            pending.pop(0)
            pop = world.population
            parts = [s.log_snapshot.remote(at, self.mode, self.spec) for s in pop.shards]
            if self.mode != "none":  # (an agent without retrain: the snapshot is dropped)
                self.inflight.append(self.actor.retrain.remote(self.mode, central, *parts))
                sent += _size(central)
            self.submitted.append(at)
        return sent


def _size(obj: Any) -> int:
    return serialized_size(obj) if measuring() else 0
