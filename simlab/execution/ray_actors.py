"""The Ray actors of one trial: user shards, the trial actor, and the population proxy.

- ``_ShardActor`` wraps a plain :class:`~simlab.population.UserShard` (a contiguous range of
  user ids and their state);
- :class:`RayPopulation` stands in for the local population inside the world: one call per
  shard per phase of the step, the step's content put in the object store once;
- ``_TrialActor`` holds the agent and runs the plain :class:`~simlab.world.World` loop with
  a :class:`RayPopulation`, in the trial's placement group.

The driver that schedules trials, writes rows and checkpoints and recovers lost actors is
:mod:`simlab.execution.ray`.
"""

from __future__ import annotations

import functools
import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from simlab.batch import Slates, compact_rows
from simlab.errors import SimlabError
from simlab.execution.measure import measuring, serialized_size
from simlab.population import (
    Arrivals,
    ShardSpec,
    StepContent,
    UserShard,
    concat_states,
    join_csr,
    population_size,
    respond_feedback,
    shard_bounds,
    split_state,
)
from simlab.serving import join_records

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


class ClusterError(SimlabError):
    """Ray cannot be started or reached, or it lacks the resources a trial needs."""


class WorkerLost(Exception):
    """An actor of a trial died; the trial is restored from its last checkpoint."""


def _ray():
    try:
        import ray
    except ImportError as e:  # pragma: no cover - ray is a declared dependency
        raise ClusterError("execution.backend: ray needs Ray: pip install 'ray>=2.30'") from e
    return ray


def actor_name(run_id: str, trial: int, role: str, incarnation: int) -> str:
    """Name of a trial's actor (``role``: ``shard-<k>``, ``agent`` or ``trial``)."""
    return f"{run_id}/trial={trial}/{role}/{incarnation}"


# ---------------------------------------------------------------------- actors
class _ShardActor:
    """A user shard in an actor; it keeps the step's content for the oracle's utility."""

    def __init__(self, spec: ShardSpec, lo: int, hi: int) -> None:
        # a model's error while building is raised by the first call, with its own type
        self.error: BaseException | None = None
        try:
            self.shard = UserShard(spec, lo, hi)
        except Exception as e:  # noqa: BLE001 - re-raised by arrive()
            self.error = e
        self.content: StepContent | None = None
        self.replica = None  # the agent's serving replica (simlab.serving), built on first use

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
        slates, cands, who, record = self.replica.serve(t, arrivals, content.catalog)
        items = slates.item_ids
        out = self.shard.respond(t, arrivals.user_ids, items, content, cands, who)
        return (arrivals.user_ids, compact_rows(items), *out, record)

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


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _start_failure(e: BaseException) -> str:
    """Why an actor failed to start: the last line of its creation error (the exception)."""
    lines = [x.strip() for x in str(e).splitlines() if x.strip()]
    return lines[-1] if lines else type(e).__name__


def _slices(user_ids: np.ndarray, bounds: list[tuple[int, int]]) -> list[slice]:
    """Per shard, the slice of the increasing ``user_ids`` it owns."""
    cuts = np.searchsorted(user_ids, [hi for _, hi in bounds[:-1]])
    edges = [0, *cuts.tolist(), user_ids.shape[0]]
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def _lost(fn: Callable) -> Callable:
    """Turn a dead actor into :class:`WorkerLost` (the driver then restores the trial)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from ray.exceptions import RayActorError

        try:
            return fn(*args, **kwargs)
        except RayActorError as e:
            if getattr(e, "actor_init_failed", False):
                raise ClusterError(f"an actor could not start: {_start_failure(e)}") from None
            raise WorkerLost(f"{type(e).__name__}: {_first_line(e)}") from None

    return wrapper


class RayPopulation:
    """The world's user side as shard actors (one call per shard per phase)."""

    def __init__(self, shards: list, bounds: list[tuple[int, int]], num_users: int) -> None:
        self.shards, self.bounds, self.num_users = shards, bounds, num_users
        self._content_ref = None
        self.version = 0  # model versions published to the serving replicas
        self._state_ref = None
        self.last_bytes: dict[str, int] = {}  # serialized sizes of the last step's calls
        self.wait_s = 0.0  # seconds spent waiting on the shards (the rest is serial)

    def _wait(self, refs: list) -> list:
        """``ray.get(refs)``, adding the seconds spent waiting to ``wait_s``."""
        start = time.perf_counter()
        out = _ray().get(refs)
        self.wait_s += time.perf_counter() - start
        return out

    @_lost
    def arrive(self, t: int, content: StepContent, defer_history: bool = False):
        """Arrivals from every shard (the content is put in the object store once).

        The shards send the histories with the arrivals, so ``defer_history`` changes nothing.
        """
        ray = _ray()
        self._content_ref = ray.put(content)  # once per step, read by every shard
        parts = self._wait([s.arrive.remote(t, self._content_ref) for s in self.shards])
        if measuring():
            self.last_bytes = {
                "content": serialized_size(content),
                "from_shards": sum(serialized_size(p) for p in parts),
                "to_shards": 0,
            }
        ids, feats, hist, consumed = zip(*parts, strict=True)
        return Arrivals(
            np.concatenate(ids), np.concatenate(feats), np.concatenate(hist), join_csr(consumed)
        )

    @_lost
    def respond(self, t, slates: Slates, content: StepContent, candidates=None, who="the policy"):
        """Each shard checks and responds to its users' slates; results joined in id order."""
        ray = _ray()
        ref = self._content_ref if self._content_ref is not None else ray.put(content)
        ids, items = slates.user_ids, slates.item_ids
        refs = []
        for shard, sl in zip(self.shards, _slices(ids, self.bounds), strict=True):
            cands = None if candidates is None else candidates[sl]
            refs.append(shard.respond.remote(t, ids[sl], compact_rows(items[sl]), ref, cands, who))
        out = self._wait(refs)
        self._content_ref = None
        if measuring():
            b = self.last_bytes
            b["to_shards"] = b.get("to_shards", 0) + sum(
                serialized_size((t, ids[sl], compact_rows(items[sl]), cands))
                for sl in _slices(ids, self.bounds)
                for cands in [None if candidates is None else candidates[sl]]
            )
            b["from_shards"] = b.get("from_shards", 0) + sum(serialized_size(o) for o in out)
        clicked = np.concatenate([o[0] for o in out])
        engagement = np.concatenate([o[1] for o in out])
        exposure = np.sum([o[2] for o in out], axis=0)
        partials: dict[str, list] = {}
        for o in out:
            for name, part in o[3].items():
                partials.setdefault(name, []).append(part)
        return respond_feedback(t, slates, clicked, engagement), partials, exposure

    @_lost
    def serve_respond(self, t, content: StepContent, spec, state: dict | None):
        """One call per shard: its users arrive, its replica serves them, they respond.

        ``state`` is the agent's new serving state (published once through the object store
        as the next version) or None when the replicas' version is current. Returns
        ``(feedback, partials, exposure, record)`` joined in user-id order.
        """
        ray = _ray()
        if state is not None:
            self.version += 1
            self._state_ref = ray.put(state)
        content_ref = ray.put(content)
        refs = [
            s.serve_respond.remote(t, content_ref, spec, self.version, [self._state_ref])
            for s in self.shards
        ]
        out = self._wait(refs)
        if measuring():
            self.last_bytes = {
                "model": serialized_size(state) if state is not None else 0,
                "content": serialized_size(content),
                "to_shards": sum(serialized_size((t, spec, self.version)) for _ in self.shards),
                "from_shards": sum(serialized_size(o) for o in out),
            }
        ids = np.concatenate([o[0] for o in out])
        slates = Slates(ids, np.concatenate([o[1] for o in out]))
        clicked = np.concatenate([o[2] for o in out])
        engagement = np.concatenate([o[3] for o in out])
        exposure = np.sum([o[4] for o in out], axis=0)
        partials: dict[str, list] = {}
        for o in out:
            for name, part in o[5].items():
                partials.setdefault(name, []).append(part)
        feedback = respond_feedback(t, slates, clicked, engagement)
        return feedback, partials, exposure, join_records([o[6] for o in out])

    @_lost
    def expected_utility(self, t, user_ids, item_ids, items):
        """Noise-free utility from the shards (the oracle's privileged hook)."""
        ray = _ray()
        refs = [
            shard.expected_utility.remote(t, user_ids[sl], compact_rows(item_ids[sl]))
            for shard, sl in zip(self.shards, _slices(user_ids, self.bounds), strict=True)
            if sl.stop > sl.start
        ]
        if not refs:
            return np.zeros((0, item_ids.shape[1]), np.float32)
        return np.concatenate(ray.get(refs))

    @_lost
    def interests(self) -> tuple[np.ndarray, np.ndarray]:
        """Every user's interests, gathered (only for metrics that are not sharded)."""
        parts = _ray().get([s.interests.remote() for s in self.shards])
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    @_lost
    def social_graph(self):
        """The users' social network (every shard can draw it; the first one does)."""
        return _ray().get(self.shards[0].social_graph.remote())

    @_lost
    def sample_interests(self, user_ids: np.ndarray) -> np.ndarray:
        """Current interests of the given users (increasing ids), from their shards."""
        refs = [
            shard.sample_interests.remote(user_ids[sl])
            for shard, sl in zip(self.shards, _slices(user_ids, self.bounds), strict=True)
        ]
        return np.concatenate(_ray().get(refs))

    @_lost
    def state_dict(self) -> dict[str, np.ndarray]:
        """The population's per-user state, joined from the shards."""
        return concat_states(_ray().get([s.state_dict.remote() for s in self.shards]))

    @_lost
    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Split the population's per-user state over the shards."""
        parts = split_state(state, self.bounds)
        _ray().get([s.load_state_dict.remote(p) for s, p in zip(self.shards, parts, strict=True)])


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
        population = RayPopulation(self.shards, self.bounds, n)
        self.world = World(scenario, agent_index, seed, population)
        self.events = scenario.output.events
        if restore is not None:
            _lost(self.world.restore)(*restore)

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
        """The world's checkpoint state."""
        return self.world.checkpoint()

    @_lost
    def snapshot(self, size: int) -> dict:
        """A snapshot of sampled users' interests and the last step's exposure."""
        from simlab.snapshots import capture_snapshot

        return capture_snapshot(self.world, size)

    def placement(self) -> dict[str, Any]:
        """Node ids of the shards and of this actor (where the agent learns), and who serves."""
        ray = _ray()
        from simlab.serving import replica_blocker

        w = self.world
        return {
            "shards": ray.get([s.node_id.remote() for s in self.shards]),
            "agent": ray.get_runtime_context().get_node_id(),
            "serving": "replicas" if w.replicas is not None else f"central: {replica_blocker(w)}",
        }
