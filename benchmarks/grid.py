"""Cost grid: user-steps/s and peak memory of every shipped agent over users x candidates.

Each cell (agent, users, candidates) runs the reference world of
``benchmarks/throughput.py`` (logit users, a static ``creators`` catalog of ``candidates``
items, slate 10, d=32, retrain every 5 steps, the default metrics) in a fresh process with
one BLAS/torch thread, and reports the steady user-steps/s after the warm-up steps (which
hold the first retrain) and the process's peak resident memory (``ru_maxrss``). If the cost
of a step grows linearly in users and in candidates, the rate stays flat along a row's
users and falls 10x per 10x candidates for agents that score every candidate (and stays
flat for those that do not); the last columns print the ratios that show it.

Cells whose per-step score matrix alone (users x candidates x 4 bytes) is over
``--max-gb`` are skipped (printed as such): they need more memory than the machine can
spare to a benchmark, not more time. A cell that fails or runs past ``--timeout`` prints
its reason. ``--reduced`` runs 1k/10k users x 100/1k candidates (a few minutes); the full
grid is 1k/10k/100k x 100/1k/10k (long: run it on a quiet machine).

With ``--against DIR`` (a checkout of another version, e.g. ``git worktree add /tmp/old
<commit>``) each cell also runs that version in a fresh process, interleaved with this one
``--repeats`` times, and the ratio of the median rates is printed under each row.

    python benchmarks/grid.py [--reduced] [--agents popularity mf] [--steps 4] [--json F]
                              [--repeats 3 --against /tmp/old]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from throughput import OTHER_WORLD  # noqa: E402

USERS = (1_000, 10_000, 100_000)
CANDIDATES = (100, 1_000, 10_000)
REDUCED = ((1_000, 10_000), (100, 1_000))
NEEDS_OTHER_WORLD = {
    **OTHER_WORLD,
    "generative": "a GPU model (benchmarks/gpu_generative.py)",
}
"""Shipped agents the reference world cannot run, and why."""


def scenario(agent: str, users: int, candidates: int, steps: int) -> Any:
    """The reference world with a static catalog of ``candidates`` items."""
    from simlab.scenario import parse_scenario

    return parse_scenario(
        {
            "name": "grid",
            "steps": steps,
            "world": {"dim": 32, "num_topics": 16},
            "users": {"model": "logit", "num_users": users, "drift_rate": 0.02},
            "content": {
                "model": "creators",
                "initial_items": candidates,
                "items_per_step": 0,
                "lifetime": 10**6,
            },
            "platform": {"slate_size": 10, "retrain_every": 5, "log_window": 10},
            "agents": [{"model": agent}],
        }
    )


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    """One cell in this (fresh) process: steady user-steps/s and peak memory."""
    steps, warmup = int(spec["steps"]), int(spec["warmup"])
    sc = scenario(spec["agent"], int(spec["users"]), int(spec["candidates"]), warmup + steps)
    from throughput import steady_rate

    return steady_rate(sc, warmup, steps)


def run_cell(
    agent: str, users: int, cands: int, args: argparse.Namespace, tree: Path | None = None
) -> dict[str, Any]:
    """A cell's record, or ``{"skip": reason}``; ``tree``: run another checkout's simlab."""
    if users * cands * 4 > args.max_gb * 2**30:
        return {"skip": f"scores {users * cands * 4 / 2**30:.1f} GB > --max-gb"}
    spec = {"agent": agent, "users": users, "candidates": cands}
    spec.update(steps=args.steps, warmup=args.warmup)
    script = Path(__file__).resolve() if tree is None else tree / "benchmarks" / "grid.py"
    env = None if tree is None else {**os.environ, "PYTHONPATH": str(tree)}
    try:
        done = subprocess.run(
            [sys.executable, str(script), "--worker", json.dumps(spec)],
            capture_output=True,
            text=True,
            timeout=args.timeout,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return {"skip": f"over {args.timeout:.0f} s"}
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        return {"skip": f"failed: {last[:60]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def median_cell(agent: str, users: int, cands: int, args: argparse.Namespace) -> dict[str, Any]:
    """The cell's median rate over ``--repeats`` runs.

    With ``--against``, the other checkout's runs are interleaved with these and its median
    is ``other_rate``, so load from other work falls on both alike.
    """
    this, other = [], []
    for _ in range(getattr(args, "repeats", 1)):
        this.append(run_cell(agent, users, cands, args))
        if getattr(args, "against", None) is not None:
            other.append(run_cell(agent, users, cands, args, args.against))
    runs = [r for r in this if "rate" in r]
    if not runs:
        return this[0]
    rec = dict(sorted(runs, key=lambda r: r["rate"])[len(runs) // 2])
    others = sorted(r["rate"] for r in other if "rate" in r)
    if others:
        rec["other_rate"] = others[len(others) // 2]
    return rec


def _cell(rec: dict[str, Any]) -> str:
    if "skip" in rec:
        return f"{'-':>18}{'-':>7}"
    return f"{rec['rate']:>18,.0f}{rec['peak_mb']:>7.0f}"


def main(argv: list[str] | None = None) -> None:
    """Run the grid, print one table per agent and the linearity ratios."""
    from simlab import registry

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reduced", action="store_true", help="1k/10k users x 100/1k candidates")
    ap.add_argument("--agents", nargs="+", default=None, help="default: every shipped agent")
    ap.add_argument("--steps", type=int, default=4, help="timed steps per cell")
    ap.add_argument("--warmup", type=int, default=6, help="untimed steps (a retrain) first")
    ap.add_argument("--max-gb", type=float, default=2.0, help="skip cells with larger scores")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per cell")
    ap.add_argument("--json", default=None, help="also write every record to this file")
    ap.add_argument("--repeats", type=int, default=1, help="runs per cell (median kept)")
    ap.add_argument(
        "--against", type=Path, default=None, help="another checkout, run interleaved per cell"
    )
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker is not None:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    if args.steps <= 0 or args.warmup < 0 or args.max_gb <= 0 or args.repeats <= 0:
        ap.error("--steps, --repeats and --max-gb must be positive and --warmup >= 0")
    users, cands = REDUCED if args.reduced else (USERS, CANDIDATES)
    agents = args.agents or registry.names("agents")
    unknown = [a for a in agents if a not in registry.names("agents")]
    if unknown:
        ap.error(f"--agents: unknown {unknown}; shipped: {registry.names('agents')}")
    load = os.getloadavg()[0]
    print(
        f"grid: users {list(users)} x candidates {list(cands)}, slate 10, d=32, "
        f"{args.warmup} warm-up + {args.steps} timed steps per cell, 1 thread, fresh process "
        f"per cell; load average {load:.1f}"
    )
    records = []
    head = "".join(f"{f'{u // 1000}k users u-s/s':>18}{'MB':>7}" for u in users)
    for agent in agents:
        if agent in NEEDS_OTHER_WORLD:
            print(f"\n{agent}: not run ({NEEDS_OTHER_WORLD[agent]})")
            continue
        print(f"\n{agent}\n{'candidates':<12}{head}  rate ratio (users x10, same candidates)")
        for c in cands:
            row = [median_cell(agent, u, c, args) for u in users]
            for u, rec in zip(users, row, strict=True):
                records.append({"agent": agent, "users": u, "candidates": c, **rec})
            ratios = [
                f"{b['rate'] / a['rate']:.2f}" if "rate" in a and "rate" in b else "-"
                for a, b in zip(row, row[1:], strict=False)
            ]
            skips = "; ".join(f"{u}: {r['skip']}" for u, r in zip(users, row, strict=True)
                              if "skip" in r)  # fmt: skip
            print(
                f"{c:<12}{''.join(_cell(r) for r in row)}  {' '.join(ratios)}"
                + (f"  ({skips})" if skips else "")
            )
            if args.against is not None:
                vs = [
                    f"{r['rate'] / r['other_rate']:.2f}x" if "other_rate" in r else "-" for r in row
                ]
                print(f"{'':<12}this / {args.against.name}: {' '.join(vs)}")
    print(
        f"\nload average {load:.1f} at start, {os.getloadavg()[0]:.1f} at end. Linear cost "
        "in users: rate ratio ~1.0 per 10x users; the candidate columns show the cost of "
        "scoring more items (rate / 10 per 10x candidates for a full scorer)."
    )
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=1))


if __name__ == "__main__":
    main()
