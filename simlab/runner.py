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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simlab.errors import RunStoreError, SimlabError, SimlabWarning
from simlab.scenario import Scenario
from simlab.signals import interrupts_as_keyboard
from simlab.store import RunStore, _now
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

    check_not_bootstrapping()
    trials = plan_trials(scenario)
    plan = _fork_plan(scenario, trials, fork, trust_code) if fork else None
    store = RunStore.create(
        out_dir if out_dir is not None else scenario.output.dir,
        scenario.name,
        scenario.to_yaml(),
        [t.info for t in trials],
        metric_columns(scenario),
        sweep_columns=scenario.sweep_columns(),
        run_id=run_id,
        metric_summary=metric_summary(scenario),
    )

    def prepare() -> dict[int, Any]:
        # privileged agents (the oracle) read latent truth: mark them in every output
        store.manifest["privileged_agents"] = [
            a.label for a in scenario.agents if getattr(a.cls, "privileged", False)
        ]
        store.manifest["execution"] = scenario.execution.model_dump(mode="json")
        store.manifest["metric_ranges"] = metric_ranges(scenario)
        if plan is None:
            return {}
        starts, copied = _fork_load(plan, trials)
        store.manifest["forked_from"] = {"run": str(plan.source.path.resolve()), "step": plan.step}
        for trial in trials:
            _copy_rows(store, trial, copied[trial.info.index])
        return starts

    _execute_and_finish(trials, store, progress, prepare)
    return store


def _execute_and_finish(trials, store: RunStore, progress, prepare) -> None:
    """``prepare()`` (returns the starts), then execute; the run ends finished and unlocked."""
    with interrupts_as_keyboard():
        try:
            starts = prepare()
            store.start()
            execute(trials, store, progress, starts)
        except KeyboardInterrupt:
            store.finish("interrupted", "interrupted by the user or a signal")
            raise
        except BaseException as e:
            store.finish("failed", "".join(traceback.format_exception_only(type(e), e)).strip())
            raise
        else:
            store.finish("completed")
        finally:
            store.release()


# ---------------------------------------------------------------------- fork and resume
def parse_fork(text: str) -> tuple[str, int]:
    """``RUN@STEP`` -> ``(RUN, STEP)``, with a clear error for anything else."""
    run, sep, step = text.rpartition("@")
    if not sep or not run or not step.isdigit():
        raise RunStoreError(f"--from: expects RUN@STEP (e.g. runs/my-run@100), got {text!r}")
    return run, int(step)


def _saved_scenario(path: Path, trust_code: bool) -> Scenario:
    from simlab.scenario import load_scenario
    from simlab.validation import foreign_code

    try:
        with foreign_code(trust_code):
            return load_scenario(path / "scenario.yaml")
    except SimlabError as e:
        raise RunStoreError(f"{path}: its scenario.yaml does not load ({e})") from None


@dataclass(frozen=True)
class _ForkPlan:
    """The source of a fork, checked before the new run directory is created."""

    source: RunStore
    step: int
    saved: Scenario
    sources: dict[int, int]  # new trial index -> source trial index


def _fork_plan(
    scenario: Scenario,
    trials: list[Trial],
    fork: tuple[str | Path, int],
    trust_code: bool = False,
) -> _ForkPlan:
    """Match every new trial to a source trial with a checkpoint at the fork step (cheap)."""
    from simlab.checkpoint import checkpoint_steps, read_checkpoint
    from simlab.store import open_run

    source = open_run(fork[0], runs_dir=scenario.output.dir)
    step = fork[1]
    if step > scenario.steps:
        raise RunStoreError(f"--from: step {step} is beyond this scenario's {scenario.steps} steps")
    saved = _saved_scenario(source.path, trust_code)
    by_key = {
        (t["agent"], t["seed"], _key(t.get("params", {}))): t["index"]
        for t in source.manifest["trials"]
    }
    sources = {}
    for trial in trials:
        info = trial.info
        src = by_key.get((info.agent, info.seed, _key(info.params)))
        if src is None:
            raise RunStoreError(
                f"--from: {source.path} has no trial of agent '{info.agent}' with seed "
                f"{info.seed}{f' at {info.params}' if info.params else ''}; a fork changes "
                "settings, not which agents and seeds run"
            )
        if step not in checkpoint_steps(source.path, src):
            read_checkpoint(source.path, src, step)  # raises, naming the steps that exist
        sources[info.index] = src
    return _ForkPlan(source, step, saved, sources)


def _fork_load(plan: _ForkPlan, trials: list[Trial]):
    """Per new trial, the source run's checkpoint at the fork step and its earlier rows."""
    import numpy as np

    from simlab.checkpoint import expected_of, read_checkpoint

    rows = plan.source.read_metrics()
    starts, copied = {}, {}
    for trial in trials:
        src = plan.sources[trial.info.index]
        expect = expected_of(plan.source.manifest, src)
        state = read_checkpoint(plan.source.path, src, plan.step, expect)
        starts[trial.info.index] = (state, plan.saved)
        before = rows[(rows["trial"] == src) & (rows["step"] < plan.step)]
        steps = before["step"].to_numpy()
        if steps.size != plan.step or (steps != np.arange(plan.step)).any():
            raise RunStoreError(
                f"--from: {plan.source.path} trial {src} lacks rows of steps before "
                f"{plan.step} (it has {len(before)}): a fork copies them"
            )
        copied[trial.info.index] = before
    return starts, copied


def _key(params: dict[str, Any]) -> str:
    import json

    return json.dumps(params, sort_keys=True, default=str)


def _copy_rows(store: RunStore, trial: Trial, rows) -> None:
    """Write a fork's inherited rows (steps before the fork) as the trial's first part."""
    cols = [c for c in store.manifest["metric_columns"] if c in rows.columns]
    writer = store.metrics_writer(trial.info, float("inf"))
    for _, r in rows.sort_values("step").iterrows():
        writer.add(int(r["step"]), {c: r[c] for c in cols})
    writer.close()
    store.manifest["trials"][trial.info.index]["steps_done"] = writer.steps_done


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
        store.manifest["execution"] = scenario.execution.model_dump(mode="json")
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


def _check_resumable(store: RunStore) -> None:
    """Refuse a completed run, unless some trial's rows lost or repeat a step (a repair)."""
    if store.manifest["status"] == "completed" and not store.damaged_steps():
        raise RunStoreError(f"{store.path}: the run is already completed; nothing to resume")


def _resume_plan(store: RunStore, overrides: list[str | tuple[str, Any]], trust_code: bool):
    """Clean up after the stopped process and find where each unfinished trial continues."""
    from simlab.checkpoint import expected_of, newest_checkpoint
    from simlab.events import recover_events
    from simlab.scenario import load_scenario
    from simlab.store_read import step_problems
    from simlab.validation import foreign_code

    with foreign_code(trust_code):
        scenario = load_scenario(store.path / "scenario.yaml", overrides)
    trials = plan_trials(scenario)
    records = store.manifest["trials"]
    if [(t.info.agent, t.info.seed) for t in trials] != [(r["agent"], r["seed"]) for r in records]:
        raise RunStoreError(f"{store.path}: manifest trials do not match its scenario.yaml")
    store.clean_temporary()
    store.recover()
    rows = store.read_metrics(strict=False)
    damaged = step_problems(rows)
    for i, (step, what) in damaged.items():
        warnings.warn(
            f"trial {i} ({records[i]['agent']}, seed {records[i]['seed']}) {what}: its rows "
            f"from step {step} on are dropped and recomputed",
            SimlabWarning,
            stacklevel=2,
        )
    if damaged:
        store.drop_rows({i: step for i, (step, _) in damaged.items()})
        rows = store.read_metrics()
    fork = store.manifest.get("forked_from")
    todo, starts = [], {}
    for trial in trials:
        i = trial.info.index
        done = int((rows["trial"] == i).sum())  # steps 0 .. done - 1, once each
        records[i]["steps_done"] = done
        recover_events(store.events_folder(i), done)
        if done >= scenario.steps:
            records[i]["status"] = "completed"
            continue
        todo.append(trial)
        found = newest_checkpoint(store.path, i, done, expected_of(store.manifest, i))
        if found:
            starts[i] = (found[1], scenario)
        elif fork:
            plan = _fork_plan(scenario, [trial], (fork["run"], int(fork["step"])), trust_code)
            starts[i] = _fork_load(plan, [trial])[0][i]
    return scenario, trials, todo, starts
