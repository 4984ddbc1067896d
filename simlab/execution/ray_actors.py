"""The Ray actors of one trial: user shards and the trial actor.

- ``_ShardActor`` wraps a plain :class:`~simlab.population.UserShard` (a contiguous range of
  user ids and their state);
- ``_TrialActor`` holds the agent and runs the plain :class:`~simlab.world.World` loop with
  a :class:`~simlab.execution.ray_population.RayPopulation` (the population proxy: one call
  per shard per phase of the step), in the trial's placement group.

The driver that schedules trials, writes rows and checkpoints and recovers lost actors is
:mod:`simlab.execution.ray`.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from simlab.allocator import keep_freed_memory
from simlab.batch import compact_rows
from simlab.execution.ray_population import (
    ClusterError,
    RayPopulation,
    WorkerLost,
    _lost,
    _ray,
)
from simlab.population import (
    ShardSpec,
    StepContent,
    UserShard,
    population_size,
    shard_bounds,
)

if TYPE_CHECKING:
    from simlab.scenario import Scenario

__all__ = [
    "NAMESPACE",
    "ClusterError",
    "WorkerLost",
    "RayPopulation",
    "actor_name",
]

NAMESPACE = "simlab"
_NO_IDS = np.zeros(0, np.int64)
_NO_FEATURES = np.zeros((0, 0), np.float32)  # a shard's log summary reads no item features


def actor_name(run_id: str, trial: int, role: str, incarnation: int) -> str:
    """Name of a trial's actor (``role``: ``shard-<k>``, ``agent`` or ``trial``)."""
    return f"{run_id}/trial={trial}/{role}/{incarnation}"


# ---------------------------------------------------------------------- actors
class _ShardActor:
    """A user shard in an actor; it keeps the step's content for the oracle's utility."""

    def __init__(self, spec: ShardSpec, lo: int, hi: int) -> None:
        keep_freed_memory()  # the actor's process reuses freed arrays (simlab.allocator)
        # a model's error while building is raised by the first call, with its own type
        self.error: BaseException | None = None
        try:
            self.shard = UserShard(spec, lo, hi)
        except Exception as e:  # noqa: BLE001 - re-raised by arrive()
            self.error = e
        self.content: StepContent | None = None
        self.replica = None  # the agent's serving replica (simlab.serving), built on first use
        self.log = None  # this shard's part of the platform log (with the learner actor)

    def arrive(self, t: int, content: StepContent):
        if self.error is not None:
            raise self.error
        self.content = content
        return self.shard.arrive(t, live=content.catalog.item_ids)

    def respond(self, t, user_ids, slates, content, candidates, who):
        return self.shard.respond(t, user_ids, slates, content, candidates, who)

    def serve_respond(self, t, content, spec, version, state_refs):
        """Arrivals, serving by this shard's replica and responses in one call.

        ``state_refs`` is ``[ref]`` of the model state of ``version`` (in a list, so Ray
        does not fetch it unless this replica serves an older version).
        """
        if self.error is not None:
            raise self.error
        from simlab.serving import Replica

        self.content = content
        if self.replica is None:
            self.replica = Replica(spec)
        if self.replica.version != version:
            self.replica.load(version, _ray().get(state_refs[0]))
        arrivals = self.shard.arrive(t, live=content.catalog.item_ids)
        slates, cands, who, record, logged = self.replica.serve(t, arrivals, content.catalog)
        items = slates.item_ids
        out = self.shard.respond(t, arrivals.user_ids, items, content, cands, who)
        if spec.shard_log:  # the learner reads this shard's users' log from here
            from simlab.batch import Feedback

            self._log(spec).record(Feedback(t, arrivals.user_ids, items, out[0], out[1]))
        return (arrivals.user_ids, compact_rows(items), *out, record, logged)

    def _log(self, spec):
        if self.log is None:
            from simlab.log_partition import ShardLog

            self.log = ShardLog(spec.platform)
        return self.log

    def log_snapshot(self, at: int, mode: str, spec):
        """This shard's part of the log snapshot whose model serves from step ``at``.

        ``mode`` ``whole``: the snapshot's steps (the learner joins the shards' parts);
        ``partitioned``: the agent's :meth:`log_summary` of them, computed here.
        """
        parts = self._log(spec).take(at)
        if mode != "partitioned":
            return parts if mode == "whole" else None
        from simlab.batch import Log

        if self.replica is None:
            from simlab.serving import Replica

            self.replica = Replica(spec)
        return self.replica.agent.log_summary(Log.of_steps(parts, _NO_IDS, _NO_FEATURES))

    def log_state(self, spec) -> dict:
        """This shard's log window and pending snapshots (its part of a checkpoint)."""
        return self._log(spec).state_dict()

    def load_log(self, spec, state) -> None:
        self._log(spec).load_state_dict(state)

    def expected_utility(self, t, user_ids, item_ids):
        return self.shard.expected_utility(t, user_ids, item_ids, self.content.items)

    def interests(self):
        return self.shard.interests()

    def social_graph(self):
        return self.shard.social_graph()

    def sample_interests(self, user_ids):
        return self.shard.sample_interests(user_ids)

    def state_dict(self):
        return self.shard.state_dict()

    def load_state_dict(self, state) -> None:
        self.shard.load_state_dict(state)

    def node_id(self) -> str:
        return _ray().get_runtime_context().get_node_id()

    def peak_rss_mb(self) -> float:
        """This actor's peak resident memory in MiB (for ``benchmarks/scaling.py``)."""
        from simlab.execution.measure import peak_rss_mb

        return peak_rss_mb()


class _TrialActor:
    """Runs one world's loop, holding the agent, with user shard actors in the trial's group."""

    def __init__(
        self,
        scenario: Scenario,
        agent_index: int,
        seed: int,
        names: list[str],
        pg,
        restore: tuple[dict, Scenario] | None,
    ) -> None:
        self.error: BaseException | None = None
        try:
            self._build(scenario, agent_index, seed, names, pg, restore)
        except Exception as e:  # noqa: BLE001 - re-raised by start(), with its own type
            self.error = e

    def _build(self, scenario, agent_index, seed, names, pg, restore) -> None:
        ray = _ray()
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        from simlab.world import World

        # arrays from the object store are read-only views; agents only read their inputs,
        # so torch.from_numpy's warning about non-writable arrays is noise here
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        ex = scenario.execution
        n = population_size(scenario)
        self.bounds = shard_bounds(n, ex.shards)
        spec = ShardSpec.of(scenario, seed)
        shard_cls = ray.remote(_ShardActor)
        self.shards = [
            shard_cls.options(
                num_cpus=ex.shard_cpus,
                name=names[k],
                namespace=NAMESPACE,
                max_restarts=0,
                scheduling_strategy=PlacementGroupSchedulingStrategy(
                    pg, placement_group_bundle_index=k
                ),
            ).remote(spec, lo, hi)
            for k, (lo, hi) in enumerate(self.bounds)
        ]
        learner = None
        if ex.learner.actor:
            learner = _learner_factory(ex, pg, names[ex.shards] if len(names) > ex.shards else None)
        population = RayPopulation(self.shards, self.bounds, n, learner)
        self.world = World(scenario, agent_index, seed, population)
        self.events = scenario.output.events
        if restore is not None:
            from simlab.state import writable

            state, saved = restore  # (the object store's arrays are read-only views)
            _lost(self.world.restore)(writable(state), saved)

    def start(self) -> int:
        """The step this trial continues at (0, or a restored checkpoint's step)."""
        if self.error is not None:
            raise self.error
        return self.world.t

    @_lost
    def step(self, t: int):
        """Run step ``t``; return its row (and feedback, logged context when events are logged)."""
        row = self.world.step(t)
        w = self.world
        return row, ((w.last_feedback, w.last_logged) if self.events else None)

    @_lost
    def checkpoint(self) -> dict:
        """The world's checkpoint state (pickled on its way out: no copy needed)."""
        from simlab.checkpoint import capture

        return capture(self.world)

    @_lost
    def snapshot(self, size: int) -> dict:
        """A snapshot of sampled users' interests and the last step's exposure."""
        from simlab.snapshots import capture_snapshot

        return capture_snapshot(self.world, size)

    def placement(self) -> dict[str, Any]:
        """Node ids of the shards, this actor and the learner; who serves and who learns."""
        ray = _ray()
        from simlab.serving import replica_blocker

        w = self.world
        actor = w.population.learner_actor
        note = getattr(w, "learner_note", None) or replica_blocker(w) or "replicas are off"
        return {
            "shards": ray.get([s.node_id.remote() for s in self.shards]),
            "agent": ray.get_runtime_context().get_node_id(),
            "serving": "replicas" if w.replicas is not None else f"central: {replica_blocker(w)}",
            "learner": ray.get(actor.node_id.remote()) if actor is not None else None,
            "learning": "learner actor" if actor is not None else f"trial actor: {note}",
        }


def _learner_factory(ex, pg, name: str | None):
    """``attach(world, serving)``: the learner serving, its actor in the trial's group."""
    from functools import partial

    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    from simlab.execution.ray_learner import _LearnerActor, attach_learner

    def make(spec):
        opts: dict[str, Any] = {"num_cpus": ex.learner.num_cpus, "max_restarts": 0}
        if ex.learner.num_gpus:
            opts["num_gpus"] = ex.learner.num_gpus
        if name is not None:
            opts.update(name=name, namespace=NAMESPACE)
        if pg is not None and len(pg.bundle_specs) > ex.shards:
            opts["num_cpus"] = ex.learner.bundle().get("CPU", 0.0)  # what its bundle holds
            index = len(pg.bundle_specs) - 1
            opts["scheduling_strategy"] = PlacementGroupSchedulingStrategy(
                pg, placement_group_bundle_index=index
            )
        return _ray().remote(_LearnerActor).options(**opts).remote(spec)

    return partial(attach_learner, make_actor=make)
