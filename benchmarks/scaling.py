"""Scaling of the closed loop on Ray: user-steps per second, local vs Ray with 1 and 2 shards.

Reference world of the throughput benchmark at 100,000 users (about 1,000 live items, slate
10, d=32) with the popularity agent. One user-step = one active user served one slate and
responding. Each configuration runs one trial through the run store (rows, checkpoints off)
exactly as ``simlab run`` does; the rate counts the steps after the first ``--warmup`` ones,
so Ray's start-up and actor creation are reported separately, not mixed into the rate.
Ratios are against local execution measured in the same run, and 2 shards against 1.

    python benchmarks/scaling.py [--users 100000] [--steps 40] [--shards 1 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from throughput import reference_scenario

from simlab.runner import run_scenario


def measure(users: int, steps: int, warmup: int, backend: str, shards: int, agent: str):
    """Run one trial; return (start-up seconds, user-steps/s over the steps after warm-up)."""
    sc = reference_scenario(users, steps, [agent])
    data = sc.resolved_dict()
    data["execution"].update(backend=backend, shards=shards)
    data["output"].update(checkpoint_every=0, flush_seconds=60.0)
    from simlab.scenario import parse_scenario

    sc = parse_scenario(data)
    stamps: list[float] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        store = run_scenario(
            sc, out_dir=out, progress=lambda _t, _n: stamps.append(time.perf_counter())
        )
        active = store.read_metrics()["users/active"].to_numpy()
    timed = active[warmup:].sum()
    seconds = stamps[-1] - stamps[warmup - 1]
    return stamps[0] - start, timed / seconds


def main() -> None:
    """Parse arguments, run each configuration, print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--shards", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--agent", default="popularity")
    args = ap.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    # one embedded instance for every Ray configuration (start-up measured once, here)
    t0 = time.perf_counter()
    cpus = max(os.cpu_count() or 1, max(args.shards) + 1)
    ray.init(
        num_cpus=cpus,
        include_dashboard=False,
        log_to_driver=False,
        logging_level="ERROR",
        configure_logging=False,
    )
    init_s = time.perf_counter() - t0
    print(
        f"reference world: {args.users:,} users, ~1000 items, slate 10, d=32, agent "
        f"{args.agent}, {args.steps} steps ({args.warmup} warm-up), {os.cpu_count()} cores; "
        f"ray.init {init_s:.1f}s"
    )
    print(
        f"{'execution':<16}{'start-up s':>12}{'user-steps/s':>16}{'vs local':>10}{'vs 1 shard':>12}"
    )
    _, local = measure(args.users, args.steps, args.warmup, "local", 1, args.agent)
    print(f"{'local':<16}{0.0:>12.1f}{local:>16,.0f}{1.0:>9.2f}x{'':>12}")
    one = None
    for k in args.shards:
        startup, rate = measure(args.users, args.steps, args.warmup, "ray", k, args.agent)
        one = one or rate
        print(
            f"{f'ray {k} shard' + ('s' if k > 1 else ''):<16}{startup:>12.1f}{rate:>16,.0f}"
            f"{rate / local:>9.2f}x{rate / one:>11.2f}x"
        )
    ray.shutdown()


if __name__ == "__main__":
    main()
