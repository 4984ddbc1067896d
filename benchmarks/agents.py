"""User-steps per second of every registered agent on the reference world.

The reference world is the one of ``benchmarks/throughput.py`` (10,000 users, ~1,000 live
candidate items, slate 10, dimension 32, local execution, all metrics). Each agent runs
``--steps`` steps (retrains included, on the platform's schedule); the random agent of the
same run is the baseline of the ratio column.

    python benchmarks/agents.py [--steps 50] [--users 10000] [--agents ucb1 mf ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import OTHER_WORLD, measure, reference_scenario  # noqa: E402

from simlab import registry  # noqa: E402
from simlab.errors import ScenarioError  # noqa: E402


def main() -> None:
    """Run every agent (or the chosen ones) and print a table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument(
        "--agents", nargs="+", default=None, help="default: every agent the world can run"
    )
    args = ap.parse_args()
    names = args.agents or [a for a in registry.names("agents") if a not in OTHER_WORLD]
    agents = ["random", *[a for a in names if a != "random"]]
    try:
        sc = reference_scenario(args.users, args.steps, agents)
    except ScenarioError as e:
        sys.exit(f"error: --agents: {e}")
    warm = reference_scenario(300, 6, agents)
    for name in sorted(set(registry.names("agents")) - set(agents)):
        print(f"{name}: not run ({OTHER_WORLD.get(name, 'not chosen')})")
    for i in range(len(agents)):  # imports and first-call costs outside the timed runs
        measure(warm, i)
    print(f"reference world: {args.users} users, ~1000 items, slate 10, d=32, {args.steps} steps")
    print(f"{'agent':<16}{'seconds':>10}{'user-steps/s':>16}{'vs random':>12}")
    base = None
    for i, agent in enumerate(agents):
        seconds, _, rate = measure(sc, i)
        base = base or rate
        print(f"{agent:<16}{seconds:>10.2f}{rate:>16,.0f}{rate / base:>11.2f}x", flush=True)


if __name__ == "__main__":
    main()
