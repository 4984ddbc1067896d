"""Local execution on several processes: whole trials side by side (``execution.workers``).

Each worker process (started with ``spawn``, so it shares no thread pools or locks with
this one) takes trials from a queue (a whole seed's at a time when there are enough seeds:
:func:`task_batches`) and runs each with
:func:`simlab.execution.trial_loop.run_trial`, writing the trial's own files in the run
directory (metric parts and journal, events, checkpoints, snapshots) as the in-process
backend does. The manifest belongs to this process: workers send the trials' status
changes, progress and outcome through a message queue, and this process records them. A
trial's rows do not depend on the process that ran it, so a run gives the same metrics with
any number of workers.

A failure inside a trial stops the run with that trial's exception (its traceback from the
worker attached); a worker that dies (killed, or unable to start) stops it with the exit
code; Ctrl-C or SIGTERM stops every worker. The rows of finished steps are on disk, as
always.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import queue
import signal
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simlab.errors import RemoteTraceback, SimlabError
from simlab.store import RunStore

if TYPE_CHECKING:
    from simlab.scenario import Scenario
    from simlab.trials import ProgressCallback, Trial

__all__ = ["run_pool", "worker_count", "task_batches", "check_not_bootstrapping", "WorkerFailure"]

_PROGRESS_EVERY = 0.25
"""Seconds between a worker's progress messages for one trial (the last step always)."""

_GUARD = 'if __name__ == "__main__":'


class WorkerFailure(RuntimeError):
    """A worker process died before finishing its trials (killed, or unable to start)."""


def check_not_bootstrapping() -> None:
    """Refuse to start a run inside a worker process that is importing the user's script.

    Worker processes are spawned: each imports the parent's main script again. A script
    that starts a run at import (no ``if __name__ == "__main__":`` guard) would start one
    run per worker; this stops that with the fix, as Python's own check does for processes.
    """
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise SimlabError(
            "a worker process (execution.workers) is importing your script and the script "
            f"starts a run when imported; put the run under `{_GUARD}`"
        )


def worker_count(workers: int, trials: int) -> int:
    """Processes to use: ``workers`` (0 = one per CPU), never more than the trials."""
    return max(1, min(workers or os.cpu_count() or 1, trials))


class _WorkerStore(RunStore):
    """The run store as a worker sees it: files written here, manifest changes sent home."""

    def __init__(self, path: Path, manifest: dict, messages: Any) -> None:
        super().__init__(path, manifest)
        self._messages = messages

    def save_manifest(self) -> None:
        """The manifest is the parent's to write."""

    def trial_status(self, index: int, status: str, steps_done: int | None = None) -> None:
        """Send the status change to the parent."""
        self._messages.put(("status", index, status, steps_done))

    def trial_facts(self, index: int, facts: dict) -> None:
        """Send the trial's facts (its logging policy, where its event log starts) home."""
        self.manifest["trials"][index].update(facts)
        self._messages.put(("facts", index, facts))


def _die_with(parent_pid: int) -> None:
    """Exit at once (no flush, as a kill) if the parent is gone; on Linux, with it.

    A killed run's workers must not write on alone: its lock died with the parent, so a
    ``simlab resume`` may already be writing the same trials. Linux kills the worker when
    the parent dies (``PR_SET_PDEATHSIG``); elsewhere each step checks the parent's pid.
    """
    import sys

    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # (no prctl: the per-step check below remains)
            pass
    if os.getppid() != parent_pid:  # it died before the request took effect
        os._exit(1)


def _worker(tasks: Any, messages: Any, path: str, manifest: dict) -> None:
    """A worker's loop: run trials from ``tasks`` until a ``None``."""
    from simlab.execution.trial_loop import run_trial

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the workers
    parent = multiprocessing.parent_process()
    parent_pid = os.getppid() if parent is None else parent.pid
    _die_with(parent_pid)
    store = _WorkerStore(Path(path), manifest, messages)
    while parent is None or parent.is_alive():  # a killed run's workers do not run on alone
        try:
            task = tasks.get(timeout=1.0)
        except queue.Empty:
            continue
        if task is None:
            return
        for trial, start in task:
            last = [0.0]

            def on_step(info, steps: int, trial=trial, last=last) -> None:
                if os.getppid() != parent_pid:  # the run was killed: stop now, as it did
                    os._exit(1)
                now = time.monotonic()
                if steps >= trial.scenario.steps or now - last[0] >= _PROGRESS_EVERY:
                    last[0] = now
                    messages.put(("progress", info.index, steps))

            try:
                run_trial(trial, store, on_step, start)
            except BaseException as e:  # noqa: BLE001 - sent to the parent, which re-raises
                messages.put(("error", trial.info.index, _picklable(e), traceback.format_exc()))
                return
            messages.put(("done", trial.info.index))


def _picklable(e: BaseException) -> BaseException:
    import pickle

    try:
        pickle.loads(pickle.dumps(e))
        return e
    except Exception:  # noqa: BLE001 - an exception that does not travel
        return RuntimeError(f"{type(e).__name__}: {e}")


def run_pool(
    trials: list[Trial],
    store: RunStore,
    progress: ProgressCallback | None,
    starts: dict[int, tuple[dict[str, Any], Scenario] | None],
    workers: int,
) -> None:
    """Run ``trials`` on ``workers`` processes, recording their status in ``store``."""
    ctx = multiprocessing.get_context("spawn")
    tasks, messages = ctx.Queue(), ctx.Queue()
    for batch in task_batches(trials, workers):
        tasks.put([(t, starts.get(t.info.index)) for t in batch])
    for _ in range(workers):
        tasks.put(None)
    args = (tasks, messages, str(store.path), store.manifest)
    procs = [ctx.Process(target=_worker, args=args, daemon=True) for _ in range(workers)]
    by_index = {t.info.index: t for t in trials}
    remaining = set(by_index)
    try:
        for p in procs:
            p.start()
        while remaining:
            try:
                msg = messages.get(timeout=0.2)
            except queue.Empty:
                _check_alive(procs)
                continue
            _handle(msg, store, progress, by_index, remaining)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(timeout=5)
        for index in remaining:  # started, then stopped with the run (not the failed one)
            record = store.manifest["trials"][index]
            if record.get("status") == "running":
                store.trial_status(index, "interrupted", _steps_written(store, index, procs))
        # trials still queued (a stop before the end) are dropped: without this the queue's
        # feeder thread waits at exit to push them into a pipe no worker reads any more
        tasks.cancel_join_thread()
        store.save_manifest()


def task_batches(trials: list[Trial], workers: int) -> list[list[Trial]]:
    """The trials in the order the workers take them, in batches a worker runs in a row.

    Seed by seed, since a worker running several worlds of one seed one after the other
    reuses what they share (e.g. :mod:`simlab.environments.chaney`'s draws). With at least
    ``_SEEDS_PER_WORKER`` seeds per worker each batch is a whole seed, so no two workers draw
    the same seed's shared values; with fewer, each trial is its own batch, so the workers
    stay evenly loaded.
    """
    order = sorted(trials, key=lambda t: (t.info.seed, t.info.point, t.info.index))
    by_seed = [list(group) for _, group in itertools.groupby(order, key=lambda t: t.info.seed)]
    if len(by_seed) < _SEEDS_PER_WORKER * workers:
        return [[t] for t in order]
    return by_seed


_SEEDS_PER_WORKER = 4
"""Seeds per worker from which workers take whole seeds (at most 1/4 of a worker's load
left over at the end)."""


def _handle(msg: tuple, store: RunStore, progress, by_index: dict, remaining: set) -> None:
    """Record one worker message; re-raise a trial's exception."""
    kind, index = msg[0], msg[1]
    if kind == "status":
        store.trial_status(index, msg[2], msg[3])
    elif kind == "facts":
        store.trial_facts(index, msg[2])
    elif kind == "progress":
        if progress is not None:
            progress(by_index[index].info, msg[2])
    elif kind == "done":
        remaining.discard(index)
    else:  # "error"
        raise msg[2] from RemoteTraceback(msg[3])


def _steps_written(store: RunStore, index: int, procs: list) -> int | None:
    """The steps an interrupted trial has on disk (its last flush's count lags its journal).

    Counted only when every worker has exited (none can still be writing); otherwise, or
    when its files cannot be read, the last count a worker sent stays.
    """
    if any(p.is_alive() for p in procs):
        return None
    try:
        return store.steps_on_disk(index)
    except Exception:  # noqa: BLE001 - a damaged file: `simlab resume` recounts and repairs
        return None


def _check_alive(procs: list) -> None:
    """Raise :class:`WorkerFailure` when a worker has died (its trials cannot finish)."""
    for p in procs:
        if p.exitcode not in (None, 0):
            raise WorkerFailure(
                f"a worker process exited with code {p.exitcode} before its trials were done "
                f"(killed, out of memory, or it could not start: a script that runs simlab "
                f"must do so under `{_GUARD}`)"
            )
