"""Local execution on several processes: whole trials side by side (``execution.workers``).

Each worker process (started with ``spawn``, so it shares no thread pools or locks with
this one) runs whole trials with :func:`simlab.execution.local.run_trial`, writing the
trial's own files in the run directory (metric parts and journal, events, checkpoints,
snapshots) as the in-process backend does. The manifest belongs to this process: workers
send the trials' status changes and progress through a queue, and this process records
them. A trial's rows do not depend on the process that ran it, so a run gives the same
metrics with any number of workers.

A failure inside a trial stops the run with that trial's exception; Ctrl-C or SIGTERM stops
every worker (the rows of finished steps are on disk, as always).
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simlab.store import RunStore

if TYPE_CHECKING:
    from simlab.runner import ProgressCallback, Trial
    from simlab.scenario import Scenario

__all__ = ["run_pool", "worker_count"]

_PROGRESS_EVERY = 0.25
"""Seconds between a worker's progress messages for one trial (the last step always)."""

_queue: Any = None  # the worker's end of the message queue (set by _init)


def worker_count(workers: int, trials: int) -> int:
    """Processes to use: ``workers`` (0 = one per CPU), never more than the trials."""
    return max(1, min(workers or os.cpu_count() or 1, trials))


class _WorkerStore(RunStore):
    """The run store as a worker sees it: files written here, manifest changes sent home."""

    def save_manifest(self) -> None:
        """The manifest is the parent's to write."""

    def trial_status(self, index: int, status: str, steps_done: int | None = None) -> None:
        """Send the status change to the parent."""
        _queue.put(("status", index, status, steps_done))


def _init(q: Any) -> None:
    global _queue
    _queue = q
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the workers


def _run_one(trial: Trial, path: str, manifest: dict, start: tuple | None) -> int:
    from simlab.execution.local import run_trial

    store = _WorkerStore(Path(path), manifest)
    last = [0.0]

    def on_step(info, steps: int) -> None:
        now = time.monotonic()
        if steps >= trial.scenario.steps or now - last[0] >= _PROGRESS_EVERY:
            last[0] = now
            _queue.put(("progress", info.index, steps))

    run_trial(trial, store, on_step, start)
    return trial.info.index


def run_pool(
    trials: list[Trial],
    store: RunStore,
    progress: ProgressCallback | None,
    starts: dict[int, tuple[dict[str, Any], Scenario] | None],
    workers: int,
) -> None:
    """Run ``trials`` on ``workers`` processes, recording their status in ``store``."""
    ctx = multiprocessing.get_context("spawn")
    messages = ctx.Queue()
    by_index = {t.info.index: t for t in trials}
    pool = ctx.Pool(workers, initializer=_init, initargs=(messages,))
    # seed by seed: a worker running several worlds of one seed reuses what they share
    order = sorted(trials, key=lambda t: (t.info.seed, t.info.point, t.info.index))
    try:
        pending = [
            pool.apply_async(
                _run_one, (t, str(store.path), store.manifest, starts.get(t.info.index))
            )
            for t in order
        ]
        while pending:
            _drain(messages, store, progress, by_index, wait=0.05)
            for result in [r for r in pending if r.ready()]:
                pending.remove(result)
                result.get()  # a trial's exception stops the run
        _drain(messages, store, progress, by_index, wait=0.0)
        pool.close()
        pool.join()
    finally:
        pool.terminate()
        _drain(messages, store, progress, by_index, wait=0.0)
        store.save_manifest()


def _drain(messages, store: RunStore, progress, by_index: dict, wait: float) -> None:
    """Record the workers' messages (waiting up to ``wait`` seconds for the first)."""
    block = wait > 0
    while True:
        try:
            msg = messages.get(timeout=wait) if block else messages.get_nowait()
        except (queue.Empty, OSError, ValueError):
            return
        block = False
        if msg[0] == "status":
            _, index, status, steps = msg
            store.trial_status(index, status, steps)
        elif progress is not None:
            _, index, steps = msg
            progress(by_index[index].info, steps)
