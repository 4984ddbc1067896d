"""Baseline table of the benchmark tasks: random, feature match, PPO and a SlateQ-style agent.

Every policy plays the task's fixed evaluation seeds (``TASKS[id].eval_seeds``; the same
worlds and users for every policy) and the table gives the mean episode return ± its
standard deviation over those episodes. The learning agents train on seeds outside that set.

* ``random``: uniformly random candidate indices (repeats replaced by the env).
* ``feature match``: the ``K`` candidates with the largest ⟨user features, item features⟩.
* ``PPO``: Stable-Baselines3 PPO, ``MultiInputPolicy``, ``--train-steps`` env steps.
* ``SlateQ``: ``simlab.environments.gym.baselines.SlateQAgent``, a linear SlateQ-style
  learner (Ie et al., 2019) that uses the per-slot feedback in ``info`` (executed slate,
  clicked position, engagement per slot), ``--train-steps`` env steps with epsilon-greedy
  exploration.

    python benchmarks/gym_baselines.py                     # ~15 minutes on 2 cores
    python benchmarks/gym_baselines.py --train-steps 2000 --tasks simlab/AIGCShift-v0
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

import numpy as np

from simlab.environments.gym import TASKS, BenchmarkTask
from simlab.environments.gym.baselines import SlateQAgent, feature_match

Policy = Callable[[dict[str, np.ndarray]], np.ndarray]
TRAIN_SEED = 0  # training episodes use reset(seed=TRAIN_SEED) then the seed stream after it


def evaluate(task: BenchmarkTask, policy: Policy | None, episodes: int) -> np.ndarray:
    """Returns of ``policy`` (``None``: uniformly random) on the task's evaluation seeds."""
    out = []
    for seed in task.eval_seeds[:episodes]:
        env = task.make()
        env.action_space.seed(seed)
        obs, _ = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            action = env.action_space.sample() if policy is None else policy(obs)
            obs, reward, term, trunc, _ = env.step(action)
            total += float(reward)
            done = term or trunc
        out.append(total)
    return np.asarray(out)


def train_ppo(task: BenchmarkTask, steps: int) -> Policy:
    """SB3 PPO trained for ``steps`` env steps; its greedy policy."""
    from stable_baselines3 import PPO

    env = task.make()
    env.reset(seed=TRAIN_SEED)
    model = PPO(
        "MultiInputPolicy",
        env,
        n_steps=min(512, max(steps, 64)),
        batch_size=64,
        n_epochs=4,
        policy_kwargs={"net_arch": [64, 64]},
        seed=0,
        device="cpu",
        verbose=0,
    )
    model.learn(total_timesteps=steps)
    return lambda obs: model.predict(obs, deterministic=True)[0]


def train_slateq(task: BenchmarkTask, steps: int) -> Policy:
    """The SlateQ-style agent trained for ``steps`` env steps; its greedy policy."""
    env = task.make()
    agent = SlateQAgent(env.unwrapped.sessions.slate_size, seed=0)
    obs, info = env.reset(seed=TRAIN_SEED)
    for _ in range(steps):
        action = agent.act(obs, explore=True)
        nxt, reward, term, trunc, info = env.step(action.reshape(env.action_space.shape))
        agent.update(obs, info, nxt, term)
        obs = nxt
        if term or trunc:
            obs, info = env.reset()
    return lambda o: agent.act(o, explore=False).reshape(env.action_space.shape)


def main() -> None:
    """Train and evaluate every policy on every task; print a Markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    ap.add_argument("--train-steps", type=int, default=20_000)
    ap.add_argument("--episodes", type=int, default=20, help="evaluation episodes (at most)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    start = time.perf_counter()
    rows = []
    for tid in args.tasks:
        task = TASKS[tid]
        probe = task.make()
        fm, shape = feature_match(probe.unwrapped.sessions.slate_size), probe.action_space.shape
        results = {
            "random": evaluate(task, None, args.episodes),
            "feature match": evaluate(
                task, lambda o, fm=fm, shape=shape: fm(o).reshape(shape), args.episodes
            ),
            "PPO": evaluate(task, train_ppo(task, args.train_steps), args.episodes),
            "SlateQ": evaluate(task, train_slateq(task, args.train_steps), args.episodes),
        }
        rows.append((task, results))
        print(f"{tid} done ({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    names = list(rows[0][1])
    print(f"| task (episodes) | {' | '.join(names)} |")
    print("|---|" + "---:|" * len(names))
    for task, res in rows:
        cells = [f"{v.mean():.2f} ± {v.std():.2f}" for v in res.values()]
        n = len(next(iter(res.values())))
        print(f"| `{task.id}` ({n}) | {' | '.join(cells)} |")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"\ntrain steps {args.train_steps}; {time.perf_counter() - start:.0f} s; "
        f"load average {load:.2f}"
    )


if __name__ == "__main__":
    main()
