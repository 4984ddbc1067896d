"""Env-steps per second of ``simlab/SlateRec-v0``: single, sync, async and native vector envs.

All run the gym default world (``GYM_DEFAULTS``: ~200 live items, C=20 candidates, slate
5, history 10, d=16, all metrics) under uniformly random actions. An env-step is one
session's step, so a vector figure is ``num_envs`` times its batch steps per second.

* single: one ``gym.make`` env (one world per session);
* sync / async: ``gym.make_vec(..., vectorization_mode="sync"|"async")`` over
  ``--num-envs`` single envs (Gymnasium's wrappers: a loop, or one process per env);
* native: ``gym.make_vec`` with the registered ``vector_entry_point`` (the default mode),
  the sessions as users of one world stepped as one numpy batch, at ``--num-envs`` and at
  ``--native-envs`` sessions.

Each setting is timed ``--repeats`` times, interleaved (single, sync, async, native, then
again), and the median is printed with the ratio to the single env measured in the same
run, and the load average (other work on the machine slows every figure).

    python benchmarks/gym_envs.py [--seconds 2] [--num-envs 8] [--native-envs 1024]
"""

from __future__ import annotations

import argparse
import os
import time

import gymnasium as gym
import numpy as np

import simlab.environments.gym  # noqa: F401 - registers the ids

ENV_ID = "simlab/SlateRec-v0"


def env_steps_per_second(env, seconds: float, num_envs: int) -> float:
    """Session-steps per second of random-action steps for about ``seconds`` (after a reset)."""
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(64)]
    env.reset(seed=0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        _, _, term, trunc, _ = env.step(actions[steps % 64])
        steps += 1
        if num_envs == 1 and (term or trunc):  # vector envs reset their sessions themselves
            env.reset()
    return steps * num_envs / (time.perf_counter() - start)


def main() -> None:
    """Time every kind of env, interleaved, and print a table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="timed seconds per repeat")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--num-envs", type=int, default=8, help="envs of sync, async and native")
    ap.add_argument("--native-envs", type=int, default=1024, help="sessions of the large native")
    args = ap.parse_args()
    n, big = args.num_envs, args.native_envs
    kw = {"max_steps": 100_000}
    envs = {
        "single": (gym.make(ENV_ID, **kw), 1),
        f"sync x{n}": (gym.make_vec(ENV_ID, n, vectorization_mode="sync", **kw), n),
        f"async x{n}": (gym.make_vec(ENV_ID, n, vectorization_mode="async", **kw), n),
        f"native x{n}": (gym.make_vec(ENV_ID, n, **kw), n),
        f"native x{big}": (gym.make_vec(ENV_ID, big, **kw), big),
    }
    for env, num in envs.values():  # first-call costs outside the timings
        env_steps_per_second(env, 0.2, num)
    rates: dict[str, list[float]] = {name: [] for name in envs}
    for _ in range(args.repeats):
        for name, (env, num) in envs.items():
            rates[name].append(env_steps_per_second(env, args.seconds, num))
    for env, _ in envs.values():
        env.close()
    base = float(np.median(rates["single"]))
    print(f"{'SlateRec-v0':<22}{'env-steps/s':>14}{'vs single':>12}")
    for name, values in rates.items():
        med = float(np.median(values))
        print(f"{name:<22}{med:>14,.0f}{med / base:>12.1f}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"(median of {args.repeats} interleaved repeats of {args.seconds:g} s; load {load:.2f})")


if __name__ == "__main__":
    main()
