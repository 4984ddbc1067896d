"""Trials = agents x seeds x sweep points, executed locally and streamed to a run store.

Common random numbers: every agent's world for seed ``s`` (at a sweep point) draws its
users, creators, items and arrivals from the same keyed streams, so differences between
agents are differences of policy, not of luck.
"""

from __future__ import annotations

import signal
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from simlab.scenario import Scenario, sweep_points
from simlab.store import RunStore, TrialInfo

__all__ = ["Trial", "plan_trials", "run_scenario", "ProgressCallback", "metric_columns"]

ProgressCallback = Callable[[TrialInfo, int], None]
"""Called as ``callback(trial, steps_done)`` after every step."""


@dataclass(frozen=True)
class Trial:
    """A trial to execute: its identity and the scenario of its sweep point."""

    info: TrialInfo
    agent_index: int
    scenario: Scenario


def plan_trials(scenario: Scenario) -> list[Trial]:
    """Every (sweep point, agent, seed) combination, in a stable order."""
    trials = []
    for point in sweep_points(scenario):
        for a, spec in enumerate(point.scenario.agents):
            for seed in point.scenario.seeds:
                info = TrialInfo(len(trials), spec.label, seed, point.index, dict(point.values))
                trials.append(Trial(info, a, point.scenario))
    return trials


def metric_columns(scenario: Scenario) -> list[str]:
    """The metric columns a run of ``scenario`` produces, in order."""
    from simlab import registry

    return [c for name in scenario.metrics for c in registry.resolve("metrics", name).columns]


def run_local(trials: list[Trial], store: RunStore, progress: ProgressCallback | None) -> None:
    """Execute ``trials`` in this process (see :mod:`simlab.execution.local`)."""
    from simlab.execution.local import run_trials

    run_trials(trials, store, progress)


def metric_summary(scenario: Scenario) -> dict[str, str]:
    """How each metric column is summarised over steps (``mean`` or ``last``)."""
    from simlab import registry

    out = {}
    for name in scenario.metrics:
        cls = registry.resolve("metrics", name)
        out.update({c: cls.summary.get(c, "mean") for c in cls.columns})
    return out


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt so a terminated run is closed cleanly."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_scenario(
    scenario: Scenario,
    out_dir: str | Path | None = None,
    progress: ProgressCallback | None = None,
    run_id: str | None = None,
) -> RunStore:
    """Run every trial of ``scenario`` locally and return its run store.

    The run's status ends ``completed``, ``failed`` (an exception, re-raised) or
    ``interrupted`` (Ctrl-C or SIGTERM, re-raised as ``KeyboardInterrupt``). Rows of every
    finished step are on disk whatever happens.
    """
    trials = plan_trials(scenario)
    store = RunStore.create(
        out_dir if out_dir is not None else scenario.output.dir,
        scenario.name,
        scenario.to_yaml(),
        [t.info for t in trials],
        metric_columns(scenario),
        sweep_columns=list(scenario.sweep),
        run_id=run_id,
        metric_summary=metric_summary(scenario),
    )
    # privileged agents (the oracle) read latent truth: mark them in every output
    store.manifest["privileged_agents"] = [
        a.label for a in scenario.agents if getattr(a.cls, "privileged", False)
    ]
    store.save_manifest()
    with _sigterm_as_interrupt():
        try:
            run_local(trials, store, progress)
        except KeyboardInterrupt:
            store.finish("interrupted", "interrupted by the user or a signal")
            raise
        except BaseException as e:
            store.finish("failed", "".join(traceback.format_exception_only(type(e), e)).strip())
            raise
    store.finish("completed")
    return store
