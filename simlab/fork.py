"""Fork: a new run that starts every trial from another run's checkpoint at a step.

``simlab run SCENARIO --from RUN@STEP``: the source run's trials are matched to the new
ones by agent, seed and sweep point; each new trial loads the source's checkpoint at the
step and inherits the source's rows of the steps before it. The new scenario may change
settings (an intervention switched on), not which agents and seeds run. Part of
:mod:`simlab.runner`, which also resumes forked runs through these functions.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simlab.errors import RunStoreError, SimlabError
from simlab.scenario import Scenario
from simlab.store import RunStore
from simlab.trials import Trial

__all__ = ["ForkPlan", "parse_fork", "fork_plan", "fork_load", "copy_rows", "saved_scenario"]


def parse_fork(text: str) -> tuple[str, int]:
    """``RUN@STEP`` -> ``(RUN, STEP)``, with a clear error for anything else."""
    run, sep, step = text.rpartition("@")
    if not sep or not run or not step.isdigit():
        raise RunStoreError(f"--from: expects RUN@STEP (e.g. runs/my-run@100), got {text!r}")
    return run, int(step)


def saved_scenario(path: Path, trust_code: bool) -> Scenario:
    """The scenario a run directory saved, loaded strictly (foreign code only if trusted)."""
    from simlab.scenario import load_scenario
    from simlab.validation import foreign_code

    try:
        with foreign_code(trust_code):
            return load_scenario(path / "scenario.yaml")
    except SimlabError as e:
        raise RunStoreError(f"{path}: its scenario.yaml does not load ({e})") from None


@dataclass(frozen=True)
class ForkPlan:
    """The source of a fork, checked before the new run directory is created."""

    source: RunStore
    step: int
    saved: Scenario
    sources: dict[int, int]  # new trial index -> source trial index


def fork_plan(
    scenario: Scenario,
    trials: list[Trial],
    fork: tuple[str | Path, int],
    trust_code: bool = False,
) -> ForkPlan:
    """Match every new trial to a source trial with a checkpoint at the fork step (cheap)."""
    from simlab.checkpoint import check_continuable, checkpoint_steps, read_checkpoint
    from simlab.store import open_run

    source = open_run(fork[0], runs_dir=scenario.output.dir)
    step = fork[1]
    if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
        raise RunStoreError(f"--from: expects a step in 0..{scenario.steps}, got {step!r}")
    if step > scenario.steps:
        raise RunStoreError(f"--from: step {step} is beyond this scenario's {scenario.steps} steps")
    saved = saved_scenario(source.path, trust_code)
    check_continuable(saved, scenario)  # before the new run directory exists
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
    return ForkPlan(source, step, saved, sources)


def fork_load(plan: ForkPlan, trials: list[Trial]):
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


def copy_rows(store: RunStore, trial: Trial, rows) -> None:
    """Write a fork's inherited rows (steps before the fork) as the trial's first part."""
    cols = [c for c in store.manifest["metric_columns"] if c in rows.columns]
    writer = store.metrics_writer(trial.info, float("inf"))
    for _, r in rows.sort_values("step").iterrows():
        writer.add(int(r["step"]), {c: r[c] for c in cols})
    writer.close()
    store.manifest["trials"][trial.info.index]["steps_done"] = writer.steps_done
