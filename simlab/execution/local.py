"""Local execution: every trial in this process, one after the other.

Fastest for small worlds and tests; the Ray backend (:mod:`simlab.execution.ray`) runs the
same trials with user shard actors and an agent actor. Both write a checkpoint every
``output.checkpoint_every`` steps and can start a trial from one (resume and fork).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simlab.execution.pool import run_pool, worker_count
from simlab.execution.trial_loop import run_trial
from simlab.store import RunStore

if TYPE_CHECKING:
    from simlab.scenario import Scenario
    from simlab.trials import ProgressCallback, Trial

__all__ = ["run_trial", "run_trials"]


def run_trials(
    trials: list[Trial],
    store: RunStore,
    progress: ProgressCallback | None = None,
    starts: dict[int, tuple[dict[str, Any], Scenario] | None] | None = None,
) -> None:
    """Run ``trials`` (``starts``: per trial index, a checkpoint to start from).

    One after the other in this process, or side by side on ``execution.workers`` processes
    (:mod:`simlab.execution.pool`).
    """
    starts = starts or {}
    if not trials:
        return
    workers = worker_count(trials[0].scenario.execution.workers, len(trials))
    if workers > 1:
        run_pool(trials, store, progress, starts, workers)
        return
    for trial in trials:
        run_trial(trial, store, progress, starts.get(trial.info.index))
