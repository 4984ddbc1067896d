"""Ray execution: user shard actors, a trial actor holding the agent, parallel trials.

Per trial (one agent x seed x sweep point), in one placement group:

- **user shards**: ``execution.shards`` actors (``shard_cpus`` each), each wrapping a plain
  :class:`~simlab.population.UserShard` that owns a contiguous range of user ids;
- **the trial actor**, with ``execution.agent_resources`` (``num_gpus: 1`` puts a GPU model
  on a GPU worker): it holds the agent and runs the plain :class:`~simlab.world.World` loop
  (content, platform, metrics) with a :class:`RayPopulation` in place of the local users.
  The agent thus acts on observations without another hop, and the oracle's privileged
  utility fans out to the shards like any other user call.

Per step the trial actor puts the step's content in the object store once and makes one call
per shard for the arrivals and one per shard for the responses (which return clicks,
engagement and the sharded metrics' partial aggregates, never raw user state). Feedback
reaches the agent in user-id order whatever the sharding, and every draw is keyed by (seed,
stream, entity, step), so metrics equal the local backend's.

The driver (:func:`run_trials`) runs as many trials at once as the cluster's resources (or
``execution.max_parallel_trials``) allow, writes each metric row as its step finishes, writes
checkpoints every ``output.checkpoint_every`` steps, and when an actor of a trial dies (a
lost node, an out-of-memory kill, ``ray.kill``) restores the trial from its last checkpoint
and goes on by itself, up to ``execution.max_restarts`` times. Model authors never write Ray
code: the actors (:mod:`simlab.execution.ray_actors`) wrap the plain components.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from simlab.checkpoint import due_checkpoint
from simlab.execution.ray_actors import (
    NAMESPACE,
    ClusterError,
    RayPopulation,
    WorkerLost,
    _TrialActor,
    actor_name,
)
from simlab.execution.ray_init import (
    _check_capacity,
    init_local,
    init_ray,
    local_instance_options,
    trial_demand,
)
from simlab.execution.ray_population import (
    _first_line,
    _plain,
    _ray,
    _start_failure,
    remote_cause,
)
from simlab.snapshots import due_snapshot

if TYPE_CHECKING:
    from simlab.scenario import ExecutionSection, Scenario
    from simlab.store import RunStore
    from simlab.trials import ProgressCallback, Trial

__all__ = [
    "NAMESPACE",
    "ClusterError",
    "WorkerLost",
    "init_ray",
    "init_local",
    "trial_demand",
    "RayPopulation",
    "run_trials",
    "actor_name",
    "local_instance_options",
]


# ---------------------------------------------------------------------- driver
@dataclass
class _Running:
    """Driver-side bookkeeping of one trial in flight."""

    trial: Trial
    writer: Any
    events: Any
    pg: Any
    actor: Any = None
    incarnation: int = 0
    restarts: int = 0
    next_step: int = 0
    ref: Any = None
    kind: str = "step"


def _pg_for(ex: ExecutionSection):
    from ray.util.placement_group import placement_group

    bundles = [{"CPU": ex.shard_cpus} for _ in range(ex.shards)]
    res = ex.agent_resources
    agent_bundle = {k: v for k, v in (("CPU", res.num_cpus), ("GPU", res.num_gpus)) if v}
    agent_index = None
    if agent_bundle:
        agent_index = len(bundles)
        bundles.append(agent_bundle)
    if ex.learner.actor:  # the last bundle: the learner actor's (see ray_learner)
        bundles.append(ex.learner.bundle())
    strategy = "SPREAD" if ex.placement == "spread" else "PACK"
    return placement_group(bundles, strategy=strategy), agent_index


def run_trials(
    trials: list[Trial],
    store: RunStore,
    progress: ProgressCallback | None = None,
    starts: dict[int, tuple[dict, Scenario] | None] | None = None,
) -> None:
    """Run ``trials`` on Ray, streaming rows and checkpoints to ``store``.

    Args:
        trials: the trials to run (they share one scenario's ``execution`` section).
        store: the run directory.
        progress: called as ``progress(trial, steps_done)`` after every step.
        starts: per trial index, ``(checkpoint state, scenario it was taken under)`` to
            continue from (resume and fork); missing or ``None`` starts at step 0.
    """
    if not trials:
        return
    ray = _ray()
    ex = trials[0].scenario.execution
    started = init_ray(ex)
    try:
        fits = _check_capacity(ex)
        limit = min(len(trials), ex.max_parallel_trials or fits)
        _drive(ray, trials, store, progress, starts or {}, limit)
    finally:
        if started:
            ray.shutdown()


def _drive(ray, trials, store, progress, starts, limit) -> None:
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    from simlab.checkpoint import (
        expected_of,
        meta_for,
        newest_checkpoint,
        prune_checkpoints,
        write_checkpoint,
    )
    from simlab.snapshots import write_snapshot

    queue = list(trials)
    running: dict[Any, _Running] = {}  # in-flight ref -> trial

    def launch(r: _Running, restore) -> None:
        sc, i = r.trial.scenario, r.trial.info.index
        names = [
            actor_name(store.run_id, i, f"shard-{k}", r.incarnation)
            for k in range(sc.execution.shards)
        ]
        pg, agent_bundle = r.pg
        res = sc.execution.agent_resources
        opts: dict[str, Any] = {
            "num_cpus": res.num_cpus,
            "name": actor_name(store.run_id, i, "trial", r.incarnation),
            "namespace": NAMESPACE,
            "max_restarts": 0,
        }
        if res.num_gpus:
            opts["num_gpus"] = res.num_gpus
        if agent_bundle is not None:
            opts["scheduling_strategy"] = PlacementGroupSchedulingStrategy(
                pg, placement_group_bundle_index=agent_bundle
            )
        actor_cls = ray.remote(_TrialActor).options(**opts)
        names.append(actor_name(store.run_id, i, "learner", r.incarnation))
        r.actor = actor_cls.remote(sc, r.trial.agent_index, r.trial.info.seed, names, pg, restore)
        r.ref, r.kind = r.actor.start.remote(), "start"
        running[r.ref] = r

    def recover(r: _Running, reason: str) -> None:
        ex = r.trial.scenario.execution
        r.restarts += 1
        record = store.manifest["trials"][r.trial.info.index]
        record["restarts"] = r.restarts
        record["last_restart"] = reason
        if r.restarts > ex.max_restarts:  # the trial fails, and the run with it
            close(r)
            store.trial_status(r.trial.info.index, "failed", r.writer.steps_done)
            raise ClusterError(
                f"trial {r.trial.info.index} ({r.trial.info.agent}, seed {r.trial.info.seed}) "
                f"lost an actor {r.restarts} times (execution.max_restarts="
                f"{ex.max_restarts}); last: {reason}"
            )
        ray.kill(r.actor, no_restart=True)
        r.incarnation += 1
        store.save_manifest()
        i = r.trial.info.index
        found = newest_checkpoint(
            store.path, i, r.writer.steps_done, expected_of(store.manifest, i)
        )
        restore = (found[1], r.trial.scenario) if found else starts.get(i)
        launch(r, restore)

    def start_next() -> None:
        trial = queue.pop(0)
        sc = trial.scenario
        writer = store.metrics_writer(trial.info, sc.output.flush_seconds)
        events = None
        if sc.output.events:
            from simlab.logged import scenario_logging_policy

            kind = scenario_logging_policy(sc, trial.agent_index)
            events = store.events_writer(
                trial.info, sc.output.flush_seconds, kind, writer.steps_done
            )
        r = _Running(trial, writer, events, _pg_for(sc.execution))
        store.trial_status(trial.info.index, "running", writer.steps_done)
        launch(r, starts.get(trial.info.index))

    def close(r: _Running) -> None:
        r.writer.close()
        if r.events is not None:
            r.events.close()
        from ray.util.placement_group import remove_placement_group

        ray.kill(r.actor, no_restart=True)
        remove_placement_group(r.pg[0])

    current = None  # the trial whose result is being handled
    try:
        while queue or running:
            while queue and len(running) < limit:
                start_next()
            ready, _ = ray.wait(list(running), num_returns=1)
            r = current = running.pop(ready[0])
            sc = r.trial.scenario
            try:
                result = ray.get(ready[0])
            except Exception as e:  # noqa: BLE001 - sorted below: lost actor or model error
                if _is_lost(e):
                    recover(r, _loss_reason(e))
                    continue
                close(r)
                store.trial_status(r.trial.info.index, "failed", r.writer.steps_done)
                err = _unwrap(e, r.trial)
                raise err from err.__cause__  # (the remote traceback, or nothing)
            if r.kind == "start":
                r.next_step = int(result)
                r.ref, r.kind = r.actor.placement.remote(), "placement"
                running[r.ref] = r
                continue
            i = r.trial.info.index
            if r.kind == "placement":
                # where the shards and the agent run, for `simlab show` and cluster checks
                store.manifest["trials"][i]["placement"] = result
                store.save_manifest()
            elif r.kind == "checkpoint":
                meta = meta_for(store.manifest, i, r.next_step)
                write_checkpoint(store.path, i, r.next_step, result, meta)
                prune_checkpoints(store.path, i, sc.output.keep_checkpoints)
            elif r.kind == "snapshot":
                write_snapshot(store.path, i, r.next_step, result)
            else:
                row, feedback = result
                t = r.next_step
                if t >= r.writer.steps_done:  # steps replayed after a restore are on disk
                    # events first: a step whose metric row is on disk has its events too
                    if r.events is not None and feedback is not None:
                        r.events.add(*feedback)  # (feedback, logged context)
                    r.writer.add(t, row)
                r.next_step = t + 1
                if progress is not None:
                    progress(r.trial.info, r.next_step)
            call = _after(r, store.path) if r.kind != "placement" else None
            if call is None and r.next_step >= sc.steps:
                close(r)
                store.trial_status(i, "completed", sc.steps)
                continue
            r.ref, r.kind = call or (r.actor.step.remote(r.next_step), "step")
            running[r.ref] = r
    except BaseException:
        # the trials in flight, and the one whose result was being handled (not failed)
        stopped = list(running.values()) + ([current] if current is not None else [])
        for r in {id(r): r for r in stopped}.values():
            if store.manifest["trials"][r.trial.info.index].get("status") != "running":
                continue  # completed or failed: closed already
            try:
                close(r)  # (its writer's last flush records the trial running)
            except Exception:  # noqa: BLE001, S110 - best effort on the way out
                pass
            store.trial_status(r.trial.info.index, "interrupted", r.writer.steps_done)
        raise


def _after(r: _Running, run_path) -> tuple[Any, str] | None:
    """The snapshot or checkpoint due after the step just finished (in that order), if any."""
    from simlab.checkpoint import checkpoint_steps
    from simlab.snapshots import snapshot_steps

    out, done, i = r.trial.scenario.output, r.next_step, r.trial.info.index
    if r.kind == "step" and due_snapshot(out, done) and done not in snapshot_steps(run_path, i):
        return r.actor.snapshot.remote(out.snapshot_users), "snapshot"
    if r.kind in ("step", "snapshot") and due_checkpoint(out, done, r.trial.scenario.steps):
        if done not in checkpoint_steps(run_path, i):
            return r.actor.checkpoint.remote(), "checkpoint"
    return None


def _is_lost(e: BaseException) -> bool:
    """Whether ``e`` says an actor died (not that a model raised, nor that one never started).

    A process Ray's memory monitor killed (``OutOfMemoryError``) is lost too.
    """
    from ray.exceptions import OutOfMemoryError, RayActorError, RayTaskError

    if isinstance(e, RayTaskError):
        e = e.cause
    if isinstance(e, RayActorError) and getattr(e, "actor_init_failed", False):
        return False
    return isinstance(e, (RayActorError, WorkerLost, OutOfMemoryError))


def _loss_reason(e: BaseException) -> str:
    """What died and why, in one line (not the wrapper's header, nor its colour codes)."""
    from ray.exceptions import RayTaskError

    cause = e.cause if isinstance(e, RayTaskError) and e.cause is not None else e
    text = _plain(_first_line(cause))
    return text if text.startswith(type(cause).__name__) else f"{type(cause).__name__}: {text}"


def _unwrap(e: BaseException, trial: Trial | None = None) -> BaseException:
    """The model's own exception out of Ray's wrapper (so the CLI shows its message).

    The remote traceback (the model's frames, which the driver does not have) is chained
    as the exception's cause, so a traceback printed on the driver ends in the model's code.
    """
    from ray.exceptions import RayActorError, RayTaskError

    if isinstance(e, RayTaskError) and isinstance(e.cause, BaseException):
        where = f" (trial {trial.info.index}: {trial.info.agent}, seed {trial.info.seed})"
        remote = remote_cause(e, f"a Ray actor{where if trial else ''}")
        e = e.cause
        e.__cause__ = remote
    if isinstance(e, RayActorError):  # failed to start: its creation error, in one line
        return ClusterError(f"an actor could not start: {_start_failure(e)}")
    return e
