"""CPU cost of Chaney's experiment: CPU-seconds per simulation, per recommender and protocol.

One simulation = one recommender in one world (a seed) under one protocol, 100 steps of
``scenarios/experiments/chaney.yaml``; the full study is ``seeds x 6 x 2`` of them. Each
simulation runs in this process with one BLAS thread; the cost is process CPU time, which a
busy machine inflates less than wall time. With ``--against DIR`` (a checkout of another
version, e.g. ``git worktree add /tmp/old <commit>``) each repeat also runs that version in a
fresh process, interleaved with this one, and the ratio is printed. The load average is
printed beside the figures.

    python benchmarks/chaney_cost.py [--seeds 2] [--repeats 2] [--against /tmp/old]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "experiments" / "chaney.yaml"


def measure(seeds: int) -> dict[tuple[str, str], float]:
    """CPU-seconds per simulation of each (recommender, protocol) over ``seeds`` seeds."""
    from simlab.execution.threads import ThreadLimit
    from simlab.scenario import load_scenario
    from simlab.trials import plan_trials
    from simlab.world import World

    sc = load_scenario(SCENARIO)
    trials = plan_trials(sc.model_copy(update={"seeds": list(range(seeds))}))
    warm = World(trials[0].scenario, trials[0].agent_index, 10**6)  # imports, caches
    warm.step(0)
    cost: dict[tuple[str, str], float] = {}
    with ThreadLimit(1):
        for tr in trials:
            agent = tr.scenario.agents[tr.agent_index]
            key = (agent.name or agent.model, str(tr.info.params.get("variant")))
            start = time.process_time()
            world = World(tr.scenario, tr.agent_index, tr.info.seed)
            for t in range(tr.scenario.steps):
                world.step(t)
            cost[key] = cost.get(key, 0.0) + (time.process_time() - start) / seeds
    return cost


def _run(tree: Path, seeds: int) -> dict[tuple[str, str], float]:
    """:func:`measure` in a fresh process importing simlab from ``tree``."""
    code = (
        "import sys, json; sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[2]);"
        "import chaney_cost as c; print(json.dumps([[*k, v] for k, v in "
        "c.measure(int(sys.argv[3])).items()]))"
    )
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [sys.executable, "-c", code, str(tree), str(ROOT / "benchmarks"), str(seeds)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    import json

    return {(a, v): c for a, v, c in json.loads(out.strip().splitlines()[-1])}


def main(argv: list[str] | None = None) -> None:
    """Print CPU-seconds per simulation (and the ratio against ``--against``)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--against", type=Path, help="another checkout, measured interleaved")
    args = ap.parse_args(argv)
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    runs: dict[str, list[dict]] = {"this": [], "other": []}
    for _ in range(args.repeats):
        runs["this"].append(_run(ROOT, args.seeds))
        if args.against is not None:
            runs["other"].append(_run(args.against, args.seeds))
    keys = list(runs["this"][0])
    print(
        f"{'recommender':12s} {'protocol':9s} {'CPU-s/sim':>10s}"
        + (f" {'other':>8s} {'ratio':>6s}" if args.against else "")
    )
    for key in keys:
        mine = min(r[key] for r in runs["this"])
        line = f"{key[0]:12s} {key[1]:9s} {mine:10.3f}"
        if args.against is not None:
            theirs = min(r[key] for r in runs["other"])
            line += f" {theirs:8.3f} {theirs / mine:6.2f}"
        print(line)
    mean = sum(min(r[k] for r in runs["this"]) for k in keys) / len(keys)
    print(
        f"mean {mean:.3f} CPU-s per simulation; the 400-seed study ({400 * len(keys)} "
        f"simulations) ~{400 * len(keys) * mean / 60:.0f} CPU-min, "
        f"~{400 * len(keys) * mean / 120:.0f} min on 2 idle cores"
    )
    print(f"load average after: {os.getloadavg()[0]:.2f} (min of {args.repeats} repeats)")


if __name__ == "__main__":
    main()
