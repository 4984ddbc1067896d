"""Throughput of the closed loop: user-steps per second on the reference world.

One user-step = one active user served one slate and responding. Reference world:
10,000 users, about 1,000 live candidate items, slate 10, dimension 32, 100 steps, local
execution, all default metrics. Prints user-steps/s per agent and the ratio against the
random agent measured in the same run (the baseline).

    python benchmarks/throughput.py [--steps 100] [--users 10000] [--agents popularity mf]
"""

from __future__ import annotations

import argparse
import time

from simlab.scenario import parse_scenario
from simlab.world import World

OTHER_WORLD = {"social-filtering": "needs a user model with a social graph (chaney)"}
"""Shipped agents the reference world (logit users) cannot run, and why."""


def reference_scenario(users: int, steps: int, agents: list[str]):
    """The reference world of the foundation issue."""
    return parse_scenario(
        {
            "name": "throughput",
            "steps": steps,
            "world": {"dim": 32, "num_topics": 16},
            "users": {"model": "logit", "num_users": users, "drift_rate": 0.02},
            "content": {
                "model": "creators",
                "items_per_step": 20,
                "initial_items": 1000,
                "lifetime": 50,
                "phases": [{"until": steps // 2, "aigc_share": 0.0}, {"aigc_share": 0.5}],
            },
            "platform": {"slate_size": 10, "retrain_every": 5, "log_window": 10},
            "agents": [{"model": a} for a in agents],
        }
    )


def measure(scenario, index: int) -> tuple[float, int, float]:
    """Run one agent's world; return (seconds, user-steps, user-steps/s)."""
    world = World(scenario, index, seed=0)
    user_steps = 0
    start = time.perf_counter()
    for _, row in world.run():
        user_steps += int(row["users/active"])
    seconds = time.perf_counter() - start
    return seconds, user_steps, user_steps / seconds


def steady_rate(scenario, warmup: int, steps: int) -> dict[str, float]:
    """Step agent 0's world ``warmup`` steps, then time ``steps`` more, as ``simlab run`` does.

    Runs under the scenario's thread limit (restored on return: the caller may be a test
    running it in-process). Returns ``rate`` (user-steps/s over the timed steps), ``peak_mb``
    (this process's peak resident memory) and ``load`` (the 1-minute load average).
    """
    import os
    import resource

    from simlab.execution.threads import ThreadLimit

    with ThreadLimit(scenario.execution.threads) as limit:
        world = World(scenario, 0, seed=0)
        limit.settle()
        for t in range(warmup):
            world.step(t)
        n = 0
        start = time.perf_counter()
        for t in range(warmup, warmup + steps):
            n += int(world.step(t)["users/active"])
        seconds = time.perf_counter() - start
    return {
        "rate": n / seconds,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "load": os.getloadavg()[0],
    }


def main() -> None:
    """Parse arguments, run each agent, print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--agents", nargs="+", default=["popularity", "mf"])
    args = ap.parse_args()
    agents = ["random", *[a for a in args.agents if a != "random"]]
    sc = reference_scenario(args.users, args.steps, agents)
    # warm-up: imports (torch) and first-call costs outside the timed runs
    warm = reference_scenario(500, 6, agents)
    for i in range(len(agents)):
        measure(warm, i)
    print(f"reference world: {args.users} users, ~1000 items, slate 10, d=32, {args.steps} steps")
    print(f"{'agent':<14}{'seconds':>10}{'user-steps':>14}{'user-steps/s':>16}{'vs random':>12}")
    base = None
    for i, agent in enumerate(agents):
        seconds, n, rate = measure(sc, i)
        base = base or rate
        print(f"{agent:<14}{seconds:>10.2f}{n:>14,}{rate:>16,.0f}{rate / base:>11.2f}x")


if __name__ == "__main__":
    main()
