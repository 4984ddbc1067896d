"""Named benchmark tasks: registered env ids with fixed settings, rewards and evaluation seeds.

A task fixes everything a comparison needs: the world (scenario overrides), the reward, the
episode length and the seeds episodes are evaluated on (``eval_seeds``, never used for
training; train on any other seed stream). ``python benchmarks/gym_baselines.py`` evaluates
the reference policies on each and prints the table of docs/rl.md.

* ``simlab/LongTermSatisfaction-v0`` — one user over a long horizon (200 steps) whose
  satisfaction (a moving average of engagement) drives both whether they come back each
  step (``satisfaction_return``) and whether they churn (below 0.15 for 8 visits in a row),
  with topic fatigue (``fatigue_weight: 0.3``). Reward:
  the click's engagement. A myopic click-maximiser that bores the user loses visits and the
  user; return rewards keeping them engaged.
* ``simlab/FairPlatform-v0`` — the platform serving 16 users for 50 steps. Reward: mean
  engagement over visiting users minus ``0.5 * exposure/gini`` (concentration of item
  exposure) minus ``0.5 * echo/homogenization`` (users' interests growing alike).
* ``simlab/AIGCShift-v0`` — one user for 100 steps while the catalog shifts from human to
  AI-generated content (AIGC share 0 until step 30, 0.5 until 60, then 0.9) and the user
  slightly dislikes AIGC (``source_preference: -0.5``; the source is not observed). Reward:
  engagement. Policies must keep finding the human items users prefer as they grow scarce.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

__all__ = ["BenchmarkTask", "TASKS", "register_tasks"]


@dataclass(frozen=True)
class BenchmarkTask:
    """One named benchmark task.

    Attributes:
        id: the registered env id.
        base: the env it specialises (``simlab/SlateRec-v0`` or ``simlab/Platform-v0``).
        kwargs: the env's keyword arguments (scenario overrides, reward, episode length).
        eval_seeds: the seeds evaluation episodes use (``reset(seed=s)``), fixed.
        reward: what the reward is, in words.
    """

    id: str
    base: str
    kwargs: dict[str, Any]
    eval_seeds: tuple[int, ...]
    reward: str
    summary: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)

    def make(self, **overrides: Any) -> gym.Env:
        """``gym.make`` the task (``overrides`` replace keyword arguments)."""
        return gym.make(self.id, **overrides)


_EVAL = tuple(range(10_000, 10_020))

TASKS: dict[str, BenchmarkTask] = {
    t.id: t
    for t in (
        BenchmarkTask(
            id="simlab/LongTermSatisfaction-v0",
            base="simlab/SlateRec-v0",
            kwargs={
                "max_steps": 200,
                "reward": "engagement",
                "overrides": {
                    "users.return_prob": 0.7,
                    "users.satisfaction_return": 1.0,
                    "users.churn_threshold": 0.15,
                    "users.churn_patience": 8,
                    "users.fatigue_weight": 0.3,
                    "steps": 200,
                },
            },
            eval_seeds=_EVAL,
            reward="engagement of the click (0 without a click or a visit)",
            summary="one user, 200 steps; satisfaction drives return and churn",
        ),
        BenchmarkTask(
            id="simlab/FairPlatform-v0",
            base="simlab/Platform-v0",
            kwargs={
                "max_steps": 50,
                "reward": "engagement",
                "gini_weight": 0.5,
                "homogenization_weight": 0.5,
                "overrides": {"users.num_users": 16, "users.drift_rate": 0.05, "steps": 50},
            },
            eval_seeds=_EVAL[:10],
            reward="mean engagement of visiting users - 0.5 exposure/gini "
            "- 0.5 echo/homogenization",
            summary="16 users, 50 steps; exposure fairness and homogenization penalties",
        ),
        BenchmarkTask(
            id="simlab/AIGCShift-v0",
            base="simlab/SlateRec-v0",
            kwargs={
                "max_steps": 100,
                "reward": "engagement",
                "overrides": {
                    "users.source_preference": -0.5,
                    "content.phases": [
                        {"until": 30, "aigc_share": 0.0},
                        {"until": 60, "aigc_share": 0.5},
                        {"aigc_share": 0.9},
                    ],
                    "steps": 100,
                },
            },
            eval_seeds=_EVAL,
            reward="engagement of the click (0 without a click)",
            summary="one user, 100 steps; the catalog shifts to AIGC the user dislikes",
        ),
    )
}
"""The benchmark tasks by id."""


def register_tasks() -> None:
    """Register every task's id with gymnasium (a second call is a no-op)."""
    entry = {
        "simlab/SlateRec-v0": "simlab.environments.gym.slate:SlateRecEnv",
        "simlab/Platform-v0": "simlab.environments.gym.platform_env:PlatformEnv",
    }
    vector = {"simlab/SlateRec-v0": "simlab.environments.gym.slate:SlateRecVectorEnv"}
    for task in TASKS.values():
        if task.id in gym.envs.registration.registry:
            continue
        gym.register(
            id=task.id,
            entry_point=entry[task.base],
            vector_entry_point=vector.get(task.base),
            kwargs=task.kwargs,
        )
