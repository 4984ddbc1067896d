"""Named benchmark tasks, the reference policies, and the gym scripts' smoke runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from simlab.environments.gym import TASKS
from simlab.environments.gym.baselines import SlateQAgent, feature_match

ROOT = Path(__file__).resolve().parents[3]


def _episode(env, policy, seed: int) -> tuple[float, int]:
    obs, _ = env.reset(seed=seed)
    total, steps, done = 0.0, 0, False
    while not done:
        obs, r, term, trunc, _ = env.step(policy(obs))
        total, steps, done = total + r, steps + 1, term or trunc
    return total, steps


@pytest.mark.parametrize("task_id", list(TASKS))
def test_task_is_registered_with_its_settings(task_id):
    """Each task's id makes its base env with the task's settings; its eval seeds are fixed."""
    task = TASKS[task_id]
    env = gym.make(task_id)
    assert env.spec.kwargs == task.kwargs and env.unwrapped.max_steps == task.kwargs["max_steps"]
    assert len(task.eval_seeds) >= 10 and len(set(task.eval_seeds)) == len(task.eval_seeds)
    shape = env.action_space.shape
    fm = feature_match(env.unwrapped.sessions.slate_size)
    policy = lambda o: fm(o).reshape(shape)  # noqa: E731
    a = _episode(env, policy, task.eval_seeds[0])
    assert a == _episode(gym.make(task_id), policy, task.eval_seeds[0])
    assert 0 < a[1] <= task.kwargs["max_steps"]


def test_long_term_task_rewards_keeping_users_satisfied():
    """Satisfaction drives visits and churn: feature match keeps users longer than random."""
    task = TASKS["simlab/LongTermSatisfaction-v0"]
    env = task.make()
    fm = feature_match(5)
    seeds = task.eval_seeds[:6]
    good = [_episode(env, fm, s) for s in seeds]
    rand = []
    for s in seeds:
        env.action_space.seed(s)
        rand.append(_episode(env, lambda o: env.action_space.sample(), s))
    assert np.mean([g[0] for g in good]) > 1.3 * np.mean([r[0] for r in rand])
    assert np.mean([g[1] for g in good]) > np.mean([r[1] for r in rand])


@pytest.mark.parametrize("env_id", ["simlab/SlateRec-v0", "simlab/Platform-v0"])
def test_slateq_learns_from_per_slot_feedback(env_id):
    """SlateQ's TD step moves its weights from the clicked slots; it serves valid slates."""
    env = gym.make(env_id, overrides={"users.num_users": 4, "users.churn_threshold": 0.0})
    agent = SlateQAgent(5, seed=0)
    obs, _ = env.reset(seed=0)
    clicks = 0
    for _ in range(30):
        action = agent.act(obs, explore=True).reshape(env.action_space.shape)
        assert env.action_space.contains(action)
        nxt, _, term, _, info = env.step(action)
        agent.update(obs, info, nxt, term)
        clicks += int(np.sum(info["clicked"]))
        obs = nxt
    assert clicks > 0 and np.abs(agent.w).sum() > 0
    slate = agent.act(obs).reshape(-1, 5)
    assert all(len(set(row)) == 5 for row in slate.tolist())


def _script(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, cwd=ROOT, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_gym_envs_benchmark_prints_every_kind():
    """``benchmarks/gym_envs.py`` prints single, sync, async and native rows (tiny budget)."""
    out = _script(
        "benchmarks/gym_envs.py", "--seconds", "0.05", "--repeats", "1",
        "--num-envs", "2", "--native-envs", "16",
    )  # fmt: skip
    rows = {" ".join(line.split()[:-2]): line.split()[-2:] for line in out.splitlines()[1:-1]}
    assert list(rows) == ["single", "sync x2", "async x2", "native x2", "native x16"], out
    assert rows["single"][1] == "1.0"
    assert all(float(rate.replace(",", "")) > 0 for rate, _ in rows.values())


@pytest.mark.slow
def test_baseline_table_script_runs():
    """``benchmarks/gym_baselines.py`` prints a row per task with the four policies."""
    out = _script(
        "benchmarks/gym_baselines.py", "--train-steps", "64", "--episodes", "1",
        "--tasks", "simlab/AIGCShift-v0",
    )  # fmt: skip
    lines = out.splitlines()
    assert lines[0] == "| task (episodes) | random | feature match | PPO | SlateQ |"
    assert lines[2].startswith("| `simlab/AIGCShift-v0` (1) |") and lines[2].count("±") == 4
