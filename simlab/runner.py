"""Trials = agents x seeds x sweep points, executed locally or on Ray, streamed to a run store.

Also resume (continue a stopped run from its checkpoints) and fork (start a new run from
another run's checkpoint, possibly with changed settings).

Common random numbers: every agent's world for seed ``s`` (at a sweep point) draws its
users, creators, items and arrivals from the same keyed streams, so differences between
agents are differences of policy, not of luck.
"""

from __future__ import annotations

import os
import socket
import traceback
import warnings
from pathlib import Path
from typing import Any

from simlab.errors import (
    RunStoreError,
    SimlabWarning,
    describe_disk_failure,
    disk_failure,
)
from simlab.fork import copy_rows, fork_load, fork_plan, parse_fork
from simlab.scenario import Scenario, expect_scenario
from simlab.signals import interrupts_as_keyboard
from simlab.store import RunStore, _now
from simlab.store_write import library_versions
from simlab.trials import ProgressCallback, Trial, plan_trials

__all__ = [
    "Trial",
    "plan_trials",
    "run_scenario",
    "resume_run",
    "parse_fork",
    "execute",
    "ProgressCallback",
    "metric_columns",
    "metric_ranges",
]


def metric_columns(scenario: Scenario) -> list[str]:
    """The metric columns a run of ``scenario`` produces, in order."""
    from simlab import registry

    return [c for name in scenario.metrics for c in registry.resolve("metrics", name).columns]


def execute(
    trials: list[Trial],
    store: RunStore,
    progress: ProgressCallback | None,
    starts: dict[int, Any] | None = None,
) -> None:
    """Run ``trials`` on the scenario's backend (``execution.backend``)."""
    if not trials:
        return
    if trials[0].scenario.execution.backend == "ray":
        from simlab.execution.ray import run_trials as run_ray

        run_ray(trials, store, progress, starts)
    else:
        from simlab.execution.local import run_trials as run_here

        run_here(trials, store, progress, starts)


def metric_summary(scenario: Scenario) -> dict[str, str]:
    """How each metric column is summarised over steps (``mean`` or ``last``)."""
    from simlab import registry

    out = {}
    for name in scenario.metrics:
        cls = registry.resolve("metrics", name)
        out.update({c: cls.summary.get(c, "mean") for c in cls.columns})
    return out


def metric_ranges(scenario: Scenario) -> dict[str, list[float | None]]:
    """The declared ``[low, high]`` range of each metric column that declares one."""
    from simlab import registry

    out: dict[str, list[float | None]] = {}
    for name in scenario.metrics:
        cls = registry.resolve("metrics", name)
        for c in cls.columns:
            r = cls.value_range(c) if hasattr(cls, "value_range") else None
            if r is not None:
                out[c] = [None if v is None else float(v) for v in r]
    return out


def run_scenario(
    scenario: Scenario,
    out_dir: str | Path | None = None,
    progress: ProgressCallback | None = None,
    run_id: str | None = None,
    fork: tuple[str | Path, int] | None = None,
    trust_code: bool = False,
) -> RunStore:
    """Run every trial of ``scenario`` and return its run store.

    Args:
        scenario: the resolved scenario; ``execution`` says where it runs.
        out_dir: parent of the run directory (default ``output.dir``).
        progress: called as ``progress(trial, steps_done)`` after every step.
        run_id: the run directory's name (default: generated).
        fork: ``(run directory, step)``: start every trial from that run's checkpoint at
            ``step`` (trials are matched by agent label, seed and sweep values); the new
            run's rows before ``step`` are copied from it. The settings may differ.
        trust_code: let the fork source's ``scenario.yaml`` import ``module:Class`` entries
            outside simlab (importing runs their code; off for a directory from elsewhere).

    The run directory's manifest is written (status ``starting``) before anything heavy is
    imported or allocated, and the process holds the directory's lock until the end. The
    status ends ``completed``, ``failed`` (an exception, re-raised) or ``interrupted``
    (Ctrl-C or SIGTERM, re-raised as ``KeyboardInterrupt``). Rows of every finished step
    are on disk whatever happens.
    """
    from simlab.execution.pool import check_not_bootstrapping

    expect_scenario(scenario)
    _check_progress(progress)
    if fork is not None and not (isinstance(fork, tuple) and len(fork) == 2):
        raise TypeError(
            "Expects `fork` to be a (run directory, step) pair (simlab.fork.parse_fork reads "
            f"'RUN@STEP'), actual value: {fork!r}"[:300]
        )
    check_not_bootstrapping()
    trials = plan_trials(scenario)
    plan = fork_plan(scenario, trials, fork, trust_code) if fork else None
    store = RunStore.create(
        out_dir if out_dir is not None else scenario.output.dir,
        scenario.name,
        scenario.to_yaml(),
        [t.info for t in trials],
        metric_columns(scenario),
        sweep_columns=scenario.sweep_columns(),
        run_id=run_id,
        metric_summary=metric_summary(scenario),
        # in the first manifest: a fork killed at once must resume as the fork it is
        extra={
            **_scenario_facts(scenario),
            **(
                {"forked_from": {"run": str(plan.source.path.resolve()), "step": plan.step}}
                if plan is not None
                else {}
            ),
        },
    )

    def prepare() -> dict[int, Any]:
        if plan is None:
            return {}
        starts, copied = fork_load(plan, trials)
        for trial in trials:
            copy_rows(store, trial, copied[trial.info.index])
        return starts

    _execute_and_finish(trials, store, progress, prepare)
    return store


def _scenario_facts(scenario: Scenario) -> dict[str, Any]:
    """What a run's manifest records of its scenario besides the trials."""
    return {
        # privileged agents (the oracle) read latent truth: marked in every output
        "privileged_agents": [
            a.label for a in scenario.agents if getattr(a.cls, "privileged", False)
        ],
        "execution": scenario.execution.model_dump(mode="json"),
        "metric_ranges": metric_ranges(scenario),
    }


def _execute_and_finish(trials, store: RunStore, progress, prepare) -> None:
    """``prepare()`` (returns the starts), then execute; the run ends finished and unlocked."""
    with interrupts_as_keyboard():
        try:
            starts = prepare()
            store.start()
            execute(trials, store, progress, starts)
        except KeyboardInterrupt:
            _finish(store, "interrupted", "interrupted by the user or a signal")
            raise
        except BaseException as e:
            refused = disk_failure(e)
            if refused is None:
                _finish(store, "failed", "".join(traceback.format_exception_only(e)).strip())
                raise
            message = (
                f"{store.path}: the run stopped because a file could not be written: "
                f"{describe_disk_failure(refused)}. The steps written so far are kept: make "
                f"room (or fix the folder's permissions), then `simlab resume {store.path}` "
                "continues the run"
            )
            _finish(store, "failed", message)
            raise RunStoreError(message) from e
        else:
            store.finish("completed")
        finally:
            store.release()


def _finish(store: RunStore, status: str, error: str) -> None:
    """Mark a stopped run; a disk that refuses the manifest too leaves it "running" (warned).

    A "running" manifest whose process has gone reads as crashed, and resume continues it.
    """
    try:
        store.finish(status, error)
    except OSError as e:
        if disk_failure(e) is None:
            raise
        warnings.warn(
            f"{store.path}: could not mark the run {status} ({describe_disk_failure(e)}); "
            "it will read as crashed, and `simlab resume` continues it",
            SimlabWarning,
            stacklevel=2,
        )


# ---------------------------------------------------------------------- resume
def _check_progress(progress: object) -> None:
    """Raise ``TypeError`` unless ``progress`` is None or callable."""
    if progress is not None and not callable(progress):
        raise TypeError(
            "Expects `progress` to be None or callable as progress(trial, steps_done), "
            f"actual type: {type(progress).__name__}"
        )


def resume_run(
    path: str | Path,
    overrides: list[str | tuple[str, Any]] | None = None,
    progress: ProgressCallback | None = None,
    runs_dir: str | Path | None = None,
    trust_code: bool = False,
) -> RunStore:
    """Continue a run that stopped (crashed, killed, interrupted or failed).

    Each unfinished trial restarts from its newest checkpoint at or before the rows on disk
    (from step 0 without one, or from the fork point of a forked run); rows already written
    are kept, not written twice. ``overrides`` may change ``execution.*`` only (e.g. resume
    a Ray run locally). ``trust_code`` lets the run's ``scenario.yaml`` import
    ``module:Class`` entries outside simlab (importing runs their code).
    """
    from simlab.execution.pool import check_not_bootstrapping
    from simlab.store import open_run

    _check_progress(progress)
    check_not_bootstrapping()
    store = open_run(path, runs_dir=runs_dir)
    _check_resumable(store)
    bad = [
        o
        for o in overrides or []
        if not str(o[0] if isinstance(o, tuple) else o).startswith("execution.")
    ]
    if bad:
        raise RunStoreError(
            f"resume: only execution.* settings may change, not {bad[0]!r}; to change other "
            "settings fork the run instead: simlab run SCENARIO --from RUN@STEP --set ..."
        )
    store.lock.acquire()  # refuses while another process runs or resumes this run
    try:
        # re-read under the lock: the manifest may have changed while we waited for it
        store = _locked_reopen(store)
        scenario, trials, todo, starts = _resume_plan(store, overrides or [], trust_code)
    except BaseException:
        store.release()
        raise

    def prepare() -> dict[int, Any]:
        store.manifest.update(pid=os.getpid(), host=socket.gethostname(), error=None)
        store.manifest.setdefault("resumed", []).append(_now())
        for key, value in _scenario_facts(scenario).items():  # (a run killed at its start
            store.manifest.setdefault(key, value)  # has no record of them yet)
        store.manifest["execution"] = scenario.execution.model_dump(mode="json")
        if not store.manifest.get("versions"):
            store.manifest["versions"] = library_versions()
        store.save_manifest()
        return starts

    _execute_and_finish(todo, store, progress, prepare)
    return store


def _locked_reopen(store: RunStore) -> RunStore:
    """The run re-read from disk, keeping the lock ``store`` holds."""
    from simlab.store import open_run

    fresh = open_run(store.path)
    fresh.lock = store.lock
    _check_resumable(fresh)
    return fresh


def _warn_recompute(record: dict[str, Any], i: int, what: str, step: int) -> None:
    warnings.warn(
        f"trial {i} ({record['agent']}, seed {record['seed']}) {what}: its rows from step "
        f"{step} on are dropped and recomputed",
        SimlabWarning,
        stacklevel=3,
    )


def _check_resumable(store: RunStore) -> None:
    """Refuse a completed run, unless some trial's rows or events lose or repeat a step."""
    if (
        store.manifest["status"] == "completed"
        and not store.damaged_steps()
        and not store.event_problems()
    ):
        raise RunStoreError(f"{store.path}: the run is already completed; nothing to resume")


def _resume_plan(store: RunStore, overrides: list[str | tuple[str, Any]], trust_code: bool):
    """Clean up after the stopped process and find where each unfinished trial continues."""
    from simlab.checkpoint import expected_of, newest_checkpoint
    from simlab.events import recover_events
    from simlab.scenario import load_scenario
    from simlab.validation import foreign_code

    with foreign_code(trust_code):
        scenario = load_scenario(store.path / "scenario.yaml", overrides)
    trials = plan_trials(scenario)
    records = store.manifest["trials"]
    if [(t.info.agent, t.info.seed) for t in trials] != [(r["agent"], r["seed"]) for r in records]:
        raise RunStoreError(f"{store.path}: manifest trials do not match its scenario.yaml")
    store.clean_temporary()
    store.make_folders()  # (a run killed as it was created, or a folder lost since)
    store.recover()
    rows = store.read_metrics(strict=False)
    damaged = store.row_problems(rows)
    for i, (step, what) in damaged.items():
        _warn_recompute(records[i], i, what, step)
    if damaged:
        store.drop_rows({i: step for i, (step, _) in damaged.items()})
        for i, (step, _) in damaged.items():  # no longer complete: recomputed from `step`
            records[i].update(status="interrupted", steps_done=step)
        rows = store.read_metrics()
    fork = store.manifest.get("forked_from")
    todo, starts = [], {}
    for trial in trials:
        i = trial.info.index
        done = int((rows["trial"] == i).sum())  # steps 0 .. done - 1, once each
        recover_events(store.events_folder(i), done)
        lost = store.event_problem(i, done)
        if lost is not None:
            _warn_recompute(records[i], i, f"event log {lost[1]}", lost[0])
            store.drop_rows({i: lost[0]})
            recover_events(store.events_folder(i), lost[0])
            done = lost[0]
            records[i]["status"] = "interrupted"
        records[i]["steps_done"] = done
        if done >= scenario.steps:
            records[i]["status"] = "completed"
            continue
        todo.append(trial)
        found = newest_checkpoint(store.path, i, done, expected_of(store.manifest, i))
        if found:
            starts[i] = (found[1], scenario)
        elif fork:
            plan = fork_plan(scenario, [trial], (fork["run"], int(fork["step"])), trust_code)
            loaded, copied = fork_load(plan, [trial])
            starts[i] = loaded[i]
            if done < plan.step:  # stopped while copying the parent's rows: copy the rest
                copy_rows(store, trial, copied[i][copied[i]["step"] >= done])
    return scenario, trials, todo, starts
