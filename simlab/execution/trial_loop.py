"""One trial's loop in this process: step its world, stream rows, events, snapshots, checkpoints.

Shared by the local backend (:mod:`simlab.execution.local`) and its worker processes
(:mod:`simlab.execution.pool`), which imports it without importing the local backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simlab.checkpoint import (
    capture,
    checkpoint_steps,
    due_checkpoint,
    meta_for,
    prune_checkpoints,
    write_checkpoint,
)
from simlab.errors import RunStoreError
from simlab.execution.threads import ThreadLimit
from simlab.logged import scenario_logging_policy
from simlab.snapshots import capture_snapshot, due_snapshot, snapshot_steps, write_snapshot
from simlab.store import RunStore
from simlab.world import World

if TYPE_CHECKING:
    from simlab.scenario import Scenario
    from simlab.trials import ProgressCallback, Trial

__all__ = ["run_trial"]


def run_trial(
    trial: Trial,
    store: RunStore,
    progress: ProgressCallback | None = None,
    start: tuple[dict[str, Any], Scenario] | None = None,
) -> None:
    """Run one trial to the end, streaming its rows, events and checkpoints to ``store``.

    With ``start``, the world continues from that checkpoint; rows of steps already in the
    store (``steps_done`` in the manifest) are not written again.
    """
    sc = trial.scenario
    with ThreadLimit(sc.execution.threads) as threads:
        world = World(sc, trial.agent_index, trial.info.seed)
        threads.settle()  # the agent may have imported torch
        if start is not None:
            world.restore(*start)
        _run_world(trial, world, store, progress)


def _run_world(trial: Trial, world: World, store: RunStore, progress) -> None:
    """Step ``world`` to the end, streaming its rows, events, snapshots and checkpoints."""
    sc = trial.scenario
    i = trial.info.index
    writer = store.metrics_writer(trial.info, sc.output.flush_seconds)
    events = None
    if sc.output.events:
        kind = scenario_logging_policy(sc, trial.agent_index)
        events = store.events_writer(trial.info, sc.output.flush_seconds, kind, writer.steps_done)
    if world.t > writer.steps_done:  # the steps between would never be written
        raise RunStoreError(
            f"{store.path}: trial {i} would continue at step {world.t} with rows only up to "
            f"step {writer.steps_done - 1}; `simlab resume {store.path}` recomputes it"
        )
    store.trial_status(i, "running", writer.steps_done)
    out = sc.output
    stopped = None  # how the trial ended early: "failed" or "interrupted"
    try:
        for t in range(world.t, sc.steps):
            row = world.step(t)
            if t >= writer.steps_done:
                # events first: a step whose metric row is on disk has its events too
                if events is not None:
                    events.add(world.last_feedback, world.last_logged)
                writer.add(t, row)
            if progress is not None:
                progress(trial.info, t + 1)
            done = t + 1
            if due_snapshot(out, done) and done not in snapshot_steps(store.path, i):
                write_snapshot(store.path, i, done, capture_snapshot(world, out.snapshot_users))
            if due_checkpoint(out, done, sc.steps) and done not in checkpoint_steps(store.path, i):
                meta = meta_for(store.manifest, i, done)
                write_checkpoint(store.path, i, done, capture(world), meta)  # no copy
                prune_checkpoints(store.path, i, out.keep_checkpoints)
    except BaseException as e:
        stopped = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
        raise
    finally:
        writer.close()
        if events is not None:
            events.close()
        if stopped is not None:  # the rows written so far stay; the manifest says so
            store.trial_status(i, stopped, writer.steps_done)
    store.trial_status(i, "completed", sc.steps)
