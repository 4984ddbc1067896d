"""Env-steps per second of ``simlab/SlateRec-v0``: the single env and the native vector env.

Both run the gym default world (``GYM_DEFAULTS``: ~200 live items, C=20 candidates,
slate 5, history 10, d=16, all metrics) under uniformly random actions; the vector env
steps ``--num-envs`` sessions (default 1,024) as one numpy batch. An env-step is one
session's step, so the vector figure is ``num_envs`` times its batch steps per second.

    python benchmarks/gym_envs.py [--steps 200] [--num-envs 1024]
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np

import simlab.environments.gym  # noqa: F401 - registers the ids


def env_steps_per_second(env, steps: int, num_envs: int) -> float:
    """Session-steps per second of ``steps`` random-action steps (reset outside the timing)."""
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(steps)]
    env.reset(seed=0)
    start = time.perf_counter()
    for a in actions:
        _, _, term, trunc, _ = env.step(a)
        if np.any(term) or np.any(trunc):
            env.reset()
    return steps * num_envs / (time.perf_counter() - start)


def main() -> None:
    """Time both envs and print a small table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200, help="steps (batch steps for the vector env)")
    ap.add_argument("--num-envs", type=int, default=1024)
    args = ap.parse_args()
    budget = {"max_steps": 10_000}
    single = gym.make("simlab/SlateRec-v0", **budget)
    vector = gym.make_vec("simlab/SlateRec-v0", num_envs=args.num_envs, **budget)
    env_steps_per_second(single, 5, 1)  # first-call costs outside the timed runs
    env_steps_per_second(vector, 2, args.num_envs)
    one = env_steps_per_second(single, args.steps, 1)
    many = env_steps_per_second(vector, max(args.steps // 4, 10), args.num_envs)
    print(f"{'env':<28}{'env-steps/s':>14}{'vs single':>12}")
    print(f"{'SlateRec-v0 (single)':<28}{one:>14,.0f}{1.0:>12.1f}")
    print(f"{f'SlateRec-v0 vector x{args.num_envs}':<28}{many:>14,.0f}{many / one:>12.1f}")


if __name__ == "__main__":
    main()
