"""Trials, the unit of execution: one agent, one seed, one sweep point; and their plan.

The runner (:mod:`simlab.runner`, which re-exports these) plans the trials and the backends
(:mod:`simlab.execution`) run them; both import the types from here, below either.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from simlab.scenario import Scenario, sweep_points
from simlab.store import TrialInfo

__all__ = ["ProgressCallback", "Trial", "plan_trials"]

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
                warmup = point.scenario.platform.warmup_steps()
                info = TrialInfo(
                    len(trials), spec.label, seed, point.index, dict(point.values), warmup
                )
                trials.append(Trial(info, a, point.scenario))
    return trials
