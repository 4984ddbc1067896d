"""Gymnasium environments over simlab's own components (users, content, platform, metrics).

Importing this module registers, in the ``simlab`` namespace:

* ``simlab/SlateRec-v0`` — one user's session (:class:`SlateRecEnv`), with a natively
  batched vector env (:class:`SlateRecVectorEnv`) as its ``vector_entry_point``;
* ``simlab/Platform-v0`` — the whole platform for a population (:class:`PlatformEnv`);
* the benchmark tasks of :mod:`simlab.environments.gym.tasks` (``TASKS``):
  ``simlab/LongTermSatisfaction-v0``, ``simlab/FairPlatform-v0``, ``simlab/AIGCShift-v0``.

Either import it first, or let gymnasium import it through the ``module:id`` form (what
RLlib workers need, since they do not share the driver's registry)::

    import gymnasium as gym
    env = gym.make("simlab.environments.gym:simlab/SlateRec-v0", reward="click")
    envs = gym.make_vec("simlab.environments.gym:simlab/SlateRec-v0", num_envs=1024)
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

from .platform_env import PlatformEnv
from .scenarios import DEFAULT_SCENARIO, GYM_DEFAULTS, build_scenario
from .sessions import RewardKind, StepResult, WorldSessions, dedupe_slates
from .slate import SlateRecEnv, SlateRecVectorEnv
from .tasks import TASKS, BenchmarkTask, register_tasks

__all__ = [
    # environments
    "SlateRecEnv",
    "SlateRecVectorEnv",
    "PlatformEnv",
    # building blocks
    "WorldSessions",
    "StepResult",
    "RewardKind",
    "build_scenario",
    "dedupe_slates",
    "DEFAULT_SCENARIO",
    "GYM_DEFAULTS",
    # ids and benchmark tasks
    "ENV_IDS",
    "TASKS",
    "BenchmarkTask",
]

ENV_IDS = ("simlab/SlateRec-v0", "simlab/Platform-v0")
"""The registered environment ids."""

# registering twice (a reload, or gymnasium importing the module for "module:id") is a no-op
if "simlab/SlateRec-v0" not in registry:
    register(
        id="simlab/SlateRec-v0",
        entry_point="simlab.environments.gym.slate:SlateRecEnv",
        vector_entry_point="simlab.environments.gym.slate:SlateRecVectorEnv",
    )
if "simlab/Platform-v0" not in registry:
    register(
        id="simlab/Platform-v0", entry_point="simlab.environments.gym.platform_env:PlatformEnv"
    )
register_tasks()
