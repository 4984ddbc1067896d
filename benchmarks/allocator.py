"""What keeping freed memory (``simlab.allocator``) buys: the reference world with and without.

Each agent runs the reference world of ``throughput.py`` (10,000 users by default) in a fresh
process with ``SIMLAB_KEEP_FREED_MEMORY=0`` (glibc's own thresholds) and with the default
(simlab's), the two interleaved over ``--repeats``; one BLAS/torch thread. Prints per agent
the median CPU user-steps/s of each, their ratio, and the minor page faults per step, with
the load average before and after (CPU time, which a busy machine inflates less than wall
time).

    python benchmarks/allocator.py [--users 10000] [--steps 30] [--repeats 3]
        [--agents popularity random mf]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from throughput import reference_scenario
from simlab.execution.threads import ThreadLimit
from simlab.world import World
users, steps, agent = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
sc = reference_scenario(users, steps, [agent])
with ThreadLimit(1):
    world = World(sc, 0, 0)
    world.step(0)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.process_time()
    for t in range(1, steps):
        world.step(t)
    cpu = time.process_time() - start
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
print(json.dumps({"rate": users * (steps - 1) / cpu, "faults": faults / (steps - 1)}))
"""


def run_once(agent: str, keep: bool, users: int, steps: int) -> dict[str, float]:
    """One fresh process: CPU user-steps/s and faults per step after the first step."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env["SIMLAB_KEEP_FREED_MEMORY"] = "1" if keep else "0"
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(HERE), str(users), str(steps), agent],
        env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    """Interleave both settings per agent and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--agents", nargs="+", default=["popularity", "random", "mf"])
    args = ap.parse_args(argv)
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    print(f"{'agent':12s} {'glibc u-s/s':>12s} {'kept u-s/s':>12s} {'ratio':>6s} "
          f"{'faults/step':>12s} {'kept':>6s}")  # fmt: skip
    for agent in args.agents:
        runs: dict[bool, list[dict[str, float]]] = {False: [], True: []}
        for _ in range(args.repeats):
            for keep in (False, True):
                runs[keep].append(run_once(agent, keep, args.users, args.steps))
        rate = {k: statistics.median(r["rate"] for r in v) for k, v in runs.items()}
        faults = {k: statistics.median(r["faults"] for r in v) for k, v in runs.items()}
        ratio = rate[True] / rate[False]
        print(f"{agent:12s} {rate[False]:12,.0f} {rate[True]:12,.0f} {ratio:6.2f} "
              f"{faults[False]:12,.0f} {faults[True]:6,.0f}")  # fmt: skip
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
