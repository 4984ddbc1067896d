"""The population proxy of a Ray trial: the world's user side as calls to shard actors.

:class:`RayPopulation` stands in for the local population inside the world: one call per
shard per phase of the step, the step's content put in the object store once. A dead actor
becomes :class:`WorkerLost` (``_lost``), after which the driver (:mod:`simlab.execution.ray`)
restores the trial from its last checkpoint. The actors themselves are in
:mod:`simlab.execution.ray_actors`.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable

import numpy as np

from simlab.batch import Slates, compact_rows
from simlab.errors import RemoteTraceback, SimlabError
from simlab.execution.measure import measuring, serialized_size
from simlab.logged import join_logged
from simlab.population import (
    Arrivals,
    StepContent,
    concat_states,
    join_csr,
    respond_feedback,
    split_state,
)
from simlab.serving import join_records

__all__ = ["ClusterError", "WorkerLost", "RayPopulation"]


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


def _plain(text: str) -> str:
    """``text`` without terminal colour codes (Ray colours its actors' names)."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def remote_cause(e: BaseException, where: str) -> RemoteTraceback:
    """A Ray task error's remote traceback (the actor's frames, without colours), ``where``."""
    return RemoteTraceback(f"in {where}:\n{_plain(str(e))}")


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
        from ray.exceptions import OutOfMemoryError, RayActorError

        try:
            return fn(*args, **kwargs)
        except (RayActorError, OutOfMemoryError) as e:  # (OOM: Ray's memory monitor killed it)
            if getattr(e, "actor_init_failed", False):
                raise ClusterError(f"an actor could not start: {_start_failure(e)}") from None
            raise WorkerLost(f"{type(e).__name__}: {_first_line(e)}") from None

    return wrapper


class RayPopulation:
    """The world's user side as shard actors (one call per shard per phase)."""

    def __init__(
        self,
        shards: list,
        bounds: list[tuple[int, int]],
        num_users: int,
        learner: Callable | None = None,
    ) -> None:
        self.shards, self.bounds, self.num_users = shards, bounds, num_users
        self.learner = learner  # learner(world, serving) -> LearnerServing | None
        self.learner_actor = None
        self._log_spec = None
        self._content_ref = None
        self.content_ref = None  # the last step's content in the object store (replicas)
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

    def learner_serving(self, world, serving):
        """The learner actor's serving for ``world`` (None: the agent learns in the trial actor)."""
        if self.learner is None:  # execution.learner.actor is false
            from simlab.serving import learner_blocker

            world.learner_note = learner_blocker(world) or "no learner actor here"
            return None
        return self.learner(world, serving)

    def bind_learner(self, actor, spec) -> None:
        """The learner actor started for this trial, and the spec its shards keep logs by."""
        self.learner_actor, self._log_spec = actor, spec

    @_lost
    def log_states(self) -> list[dict]:
        """Each shard's part of the platform log, with its user range (for a checkpoint)."""
        parts = _ray().get([s.log_state.remote(self._log_spec) for s in self.shards])
        return [{"lo": lo, "hi": hi, **p} for (lo, hi), p in zip(self.bounds, parts, strict=True)]

    @_lost
    def load_logs(self, parts: list[dict]) -> None:
        """Give each shard its part of the platform log (from a checkpoint)."""
        refs = [
            s.load_log.remote(self._log_spec, p) for s, p in zip(self.shards, parts, strict=True)
        ]
        _ray().get(refs)

    @_lost
    def serve_respond(self, t, content: StepContent, spec, state: dict | None, state_ref=None):
        """One call per shard: its users arrive, its replica serves them, they respond.

        ``state`` is the agent's new serving state (published once through the object store
        as the next version) or None when the replicas' version is current; ``state_ref``
        instead is a reference to one the learner actor publishes (the bytes go from there
        to the shards). Returns ``(feedback, partials, exposure, record, logged)`` joined in
        user-id order (``logged``: the slates' logged context with ``spec.events``, else None).
        """
        ray = _ray()
        if state is not None:
            self.version += 1
            self._state_ref = ray.put(state)
        elif state_ref is not None:
            self.version += 1
            self._state_ref = state_ref
        content_ref = ray.put(content)
        self.content_ref = content_ref  # the learner reads the step's catalog from here too
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
        logged = join_logged([o[7] for o in out]) if spec.events else None
        return feedback, partials, exposure, join_records([o[6] for o in out]), logged

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
