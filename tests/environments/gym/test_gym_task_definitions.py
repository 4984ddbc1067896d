"""Each benchmark task's definition, as docs/rl.md publishes it, and its registration.

The published baseline table (docs/rl.md) is only comparable if every task builds the world,
reward, episode length and evaluation seeds written there: ``SPEC`` restates them from the
docs (not from ``TASKS``) and every test checks the env ``gym.make`` actually builds. No
episode is run: building the envs takes a fraction of a second.
"""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.registration import load_env_creator

from simlab.environments.gym import TASKS, PlatformEnv, SlateRecEnv, SlateRecVectorEnv
from simlab.environments.gym.sessions import RewardKind
from simlab.environments.gym.tasks import BenchmarkTask, register_tasks

BASE_ID = {SlateRecEnv: "simlab/SlateRec-v0", PlatformEnv: "simlab/Platform-v0"}
# docs/rl.md "Benchmark tasks and baselines" (and the module docstring of tasks.py)
EVAL_SEEDS = tuple(range(10_000, 10_020))
SPEC = {
    "simlab/LongTermSatisfaction-v0": {
        "cls": SlateRecEnv,
        "max_steps": 200,
        "users": 1,
        "seeds": EVAL_SEEDS,
        "fields": {
            "users.return_prob": 0.7,
            "users.satisfaction_return": 1.0,
            "users.churn_threshold": 0.15,
            "users.churn_patience": 8,
            "users.fatigue_weight": 0.3,
        },
    },
    "simlab/FairPlatform-v0": {
        "cls": PlatformEnv,
        "max_steps": 50,
        "users": 16,
        "seeds": EVAL_SEEDS[:10],
        "weights": {"echo/homogenization": 0.5, "exposure/gini": 0.5},
        "fields": {"users.drift_rate": 0.05},
    },
    "simlab/AIGCShift-v0": {
        "cls": SlateRecEnv,
        "max_steps": 100,
        "users": 1,
        "seeds": EVAL_SEEDS,
        "fields": {"users.source_preference": -0.5},
        # AIGC share 0 until step 30, 0.5 until step 60, then 0.9
        "phases": [(30, 0.0), (60, 0.5), (None, 0.9)],
    },
}


def _field(scenario, dotted: str):
    """``scenario``'s value of ``section.name`` (a model's parameter; None when unset)."""
    section, name = dotted.split(".")
    return getattr(scenario, section).model_dump().get(name)


def test_every_documented_task_and_only_those():
    """``TASKS`` holds the three documented tasks under their ids, in the docs' order."""
    assert list(TASKS) == list(SPEC)
    assert all(task.id == tid for tid, task in TASKS.items())


@pytest.mark.parametrize("task_id", list(SPEC))
def test_task_builds_the_documented_env(task_id):
    """``gym.make(id)`` builds the base env with the documented horizon, users and reward."""
    spec = SPEC[task_id]
    env = gym.make(task_id)
    inner = env.unwrapped
    assert type(inner) is spec["cls"]
    assert TASKS[task_id].base == BASE_ID[spec["cls"]]
    assert inner.max_steps == spec["max_steps"]
    # the world runs the same number of steps as an episode (the phases are in steps)
    assert inner.scenario.steps == spec["max_steps"]
    assert inner.scenario.users.num_users == spec["users"]
    assert inner.reward_kind is RewardKind.ENGAGEMENT
    for dotted, value in spec["fields"].items():
        assert _field(inner.scenario, dotted) == value, dotted
    if spec["cls"] is PlatformEnv:
        assert inner.weights == spec["weights"]
        assert inner.action_space.shape == (spec["users"] * inner.sessions.slate_size,)


@pytest.mark.parametrize("task_id", list(SPEC))
def test_unset_fields_keep_the_default_world(task_id):
    """A knob the docs do not name for a task is the default gym world's, not a task's."""
    task_world = gym.make(task_id).unwrapped.scenario
    base = gym.make(TASKS[task_id].base).unwrapped.scenario
    named = set(SPEC[task_id]["fields"])
    every = {f for s in SPEC.values() for f in s["fields"]}
    for dotted in sorted(every - named):
        assert _field(task_world, dotted) == _field(base, dotted), dotted
    if "phases" not in SPEC[task_id]:
        assert task_world.content.phases == base.content.phases


def test_aigc_shift_phases():
    """AIGC share 0 until step 30, 0.5 until 60, then 0.9 (the last phase is open-ended)."""
    phases = gym.make("simlab/AIGCShift-v0").unwrapped.scenario.content.phases
    got = [(dict(p).get("until"), dict(p)["aigc_share"]) for p in phases]
    assert got == SPEC["simlab/AIGCShift-v0"]["phases"]


@pytest.mark.parametrize("task_id", list(SPEC))
def test_eval_seeds_are_fixed_and_distinct(task_id):
    """The evaluation seeds are the documented ones (20; 10 for the Platform task), distinct.

    None is the training seed of ``benchmarks/gym_baselines.py`` (0).
    """
    seeds = TASKS[task_id].eval_seeds
    assert isinstance(seeds, tuple) and seeds == SPEC[task_id]["seeds"]
    assert len(set(seeds)) == len(seeds) and 0 not in seeds


@pytest.mark.parametrize("task_id", list(SPEC))
def test_make_applies_overrides_over_the_task(task_id):
    """``task.make(**kw)`` makes the task's env with ``kw`` replacing its keyword arguments."""
    task = TASKS[task_id]
    default = task.make().unwrapped
    assert default.max_steps == SPEC[task_id]["max_steps"]
    env = task.make(max_steps=7, reward="click").unwrapped
    assert type(env) is SPEC[task_id]["cls"] and env.max_steps == 7
    assert env.reward_kind is RewardKind.CLICK
    # the world is still the task's
    for dotted, value in SPEC[task_id]["fields"].items():
        assert _field(env.scenario, dotted) == value


def test_tasks_are_frozen():
    """A task's definition cannot be changed after the fact."""
    task = TASKS["simlab/FairPlatform-v0"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        task.eval_seeds = (1,)  # type: ignore[misc]
    fresh = BenchmarkTask(id="x", base="simlab/SlateRec-v0", kwargs={}, eval_seeds=(1,), reward="")
    assert fresh.summary == "" and fresh.tags == ()


@pytest.mark.parametrize("task_id", list(SPEC))
def test_vector_entry_point(task_id):
    """SlateRec tasks batch natively with ``make_vec``, with the task's settings.

    The Platform task has no vector entry point (it already serves a population).
    """
    spec = gym.spec(task_id)
    if SPEC[task_id]["cls"] is PlatformEnv:
        assert spec.vector_entry_point is None
        return
    envs = gym.make_vec(task_id, num_envs=2, vectorization_mode="vector_entry_point")
    try:
        assert type(envs.unwrapped) is SlateRecVectorEnv
        assert envs.unwrapped.max_steps == SPEC[task_id]["max_steps"]
        for dotted, value in SPEC[task_id]["fields"].items():
            assert _field(envs.unwrapped.scenario, dotted) == value
        obs, _ = envs.reset(seed=0)
        assert np.asarray(obs["user"]).shape[0] == 2
    finally:
        envs.close()


@pytest.mark.parametrize("keep", [(), (0,), (1,), (2,), (0, 1), (0, 2), (1, 2)])
def test_register_tasks_restores_missing_ids_only(keep):
    """``register_tasks`` registers every missing task id, whichever others are registered.

    Registered ones are left as they are (a second call is a no-op).
    """
    registry = gym.envs.registration.registry
    ids = list(TASKS)
    saved = {tid: registry[tid] for tid in ids}
    try:
        for i, tid in enumerate(ids):
            if i not in keep:
                del registry[tid]
        register_tasks()
        for i, tid in enumerate(ids):
            assert tid in registry, tid
            if i in keep:
                assert registry[tid] is saved[tid]
            assert registry[tid].kwargs == TASKS[tid].kwargs
            assert load_env_creator(registry[tid].entry_point) is SPEC[tid]["cls"]
            vector = registry[tid].vector_entry_point
            if SPEC[tid]["cls"] is PlatformEnv:
                assert vector is None
            else:
                assert load_env_creator(vector) is SlateRecVectorEnv
        again = {tid: registry[tid] for tid in ids}
        register_tasks()
        assert all(registry[tid] is again[tid] for tid in ids)
    finally:
        registry.update(saved)


def test_fair_platform_reward_is_the_documented_formula():
    """Reward = mean engagement of visiting users - 0.5 exposure/gini - 0.5 echo/homogenization."""
    task = TASKS["simlab/FairPlatform-v0"]
    env = task.make()
    env.reset(seed=task.eval_seeds[0])
    env.action_space.seed(0)
    penalties = 0.0
    for _ in range(4):
        _, reward, _, _, info = env.step(env.action_space.sample())
        served = np.asarray(info["served"], bool)
        engagement = np.asarray(info["engagement"], np.float64).sum(axis=1)
        m = info["metrics"]
        penalty = 0.5 * m["exposure/gini"] + 0.5 * m["echo/homogenization"]
        assert reward == pytest.approx(engagement[served].mean() - penalty, abs=1e-6)
        penalties += penalty
    assert penalties > 0  # the penalties are in play
