"""Local execution: every trial in this process, one after the other.

Fastest for small worlds and tests; the Ray backend (execution/ray.py) runs the same
trials with user shards and agent actors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from simlab.store import RunStore
from simlab.world import World

if TYPE_CHECKING:
    from simlab.runner import ProgressCallback, Trial

__all__ = ["run_trial", "run_trials"]


def run_trial(trial: Trial, store: RunStore, progress: ProgressCallback | None = None) -> None:
    """Run one trial to the end, streaming its rows (and events) to ``store``."""
    sc = trial.scenario
    world = World(sc, trial.agent_index, trial.info.seed)
    writer = store.metrics_writer(trial.info, sc.output.flush_seconds)
    events = store.events_writer(trial.info, sc.output.flush_seconds) if sc.output.events else None
    store.trial_status(trial.info.index, "running", 0)
    try:
        for t in range(sc.steps):
            row = world.step(t)
            writer.add(t, row)
            if events is not None:
                events.add(world.last_feedback)
            if progress is not None:
                progress(trial.info, t + 1)
    finally:
        writer.close()
        if events is not None:
            events.close()
    store.trial_status(trial.info.index, "completed", sc.steps)


def run_trials(
    trials: list[Trial], store: RunStore, progress: ProgressCallback | None = None
) -> None:
    """Run ``trials`` sequentially."""
    for trial in trials:
        run_trial(trial, store, progress)
