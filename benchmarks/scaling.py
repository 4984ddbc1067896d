"""Scaling of the closed loop on Ray: throughput, bytes between actors, serial time, memory.

Reference world of the throughput benchmark (about 1,000 live items, slate 10, d=32; 100,000
users by default) with a learned agent (``mf`` by default). One user-step = one active user
served one slate and responding. Three tables:

1. **Runs as ``simlab run`` does them** (the run store, the trial actor): user-steps/s of the
   local backend and of Ray with 1/2/4 shards, serving from replicas with the learner actor
   (``+learner``) or learning in the trial actor, and serving centrally, over the steps
   after ``--warmup`` (Ray's start-up reported apart). Ratios are against local in the same
   run.
2. **What crosses between actors** (machine-independent): the loop runs in this process as
   the trial actor would (``simlab.execution.measure.drive_in_process``) and every call to
   and from the user shards is pickled to count its bytes: per user-step to and from the
   shards, the serving model published (bytes per step, amortised), and the step's content
   (put once per step), and what the coordinator sends the learner actor; plus the
   coordinator's serial time (step time minus the time spent waiting on the shards): the
   median step (serving, logging, metrics, and learning unless the learner actor does it),
   the mean step with the retrains and per user-step, the time it waited on the shards per
   user-step (their work, the calls, and a new model from the learner when it is late), and
   the learner actor's own time learning per step.
3. **Memory** (``--memory-users``, default 1,000,000): a few steps of that world with the
   learned agent on 2 shards; peak resident memory of the coordinator and of each shard.

Configurations are interleaved over ``--repeats`` and the median is printed beside the load
average. Run under the benchmark lock:

    flock /tmp/simlab-bench.lock nice -n 5 python benchmarks/scaling.py [--users 100000]
        [--steps 12] [--shards 1 2 4] [--agent mf] [--memory-users 1000000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from throughput import reference_scenario

from simlab.runner import run_scenario
from simlab.scenario import parse_scenario


def scenario(
    users: int,
    steps: int,
    agent: str,
    backend: str,
    shards: int,
    serving: str,
    learner: bool = False,
    lag: int = 1,
):
    """The reference world with one agent, on ``backend`` with ``shards`` shards."""
    data = reference_scenario(users, steps, [agent]).resolved_dict()
    data["execution"].update(backend=backend, shards=shards, serving=serving)
    data["execution"]["learner"] = {"actor": learner}
    data["platform"]["deploy_lag"] = lag
    data["output"].update(checkpoint_every=0, snapshot_every=0, flush_seconds=60.0)
    return parse_scenario(data)


def run_rate(sc, warmup: int) -> tuple[float, float]:
    """Run one trial through the store; (start-up seconds, user-steps/s after warm-up)."""
    stamps: list[float] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        store = run_scenario(
            sc, out_dir=out, progress=lambda _t, _n: stamps.append(time.perf_counter())
        )
        active = store.read_metrics()["users/active"].to_numpy()
    return stamps[0] - start, active[warmup:].sum() / (stamps[-1] - stamps[warmup - 1])


def crossing(sc, steps: int, warmup: int) -> dict[str, float]:
    """Per-user-step bytes, serial time and rate with this process as the coordinator."""
    from simlab.execution.measure_drive import drive_in_process

    learner: dict[str, float] = {}
    every = drive_in_process(sc, steps, learner=learner)
    rows = every[warmup:]
    users = sum(r["users"] for r in rows)
    seconds = sum(r["seconds"] for r in rows)
    serial = [r["seconds"] - r["wait_s"] for r in rows]
    return {
        "rate": users / seconds,
        "to": sum(r["to_shards"] for r in rows) / users,
        "from": sum(r["from_shards"] for r in rows) / users,
        "model": sum(r.get("model", 0.0) for r in rows) / len(rows)
        + learner.get("model_bytes", 0.0) / len(every),  # (the learner's: all steps)
        "learner_ms": 1e3 * learner.get("busy_s", 0.0) / len(every),
        "to_learner": sum(r.get("to_learner", 0.0) for r in rows) / users,
        "content": sum(r["content"] for r in rows) / len(rows),
        "serial_ms": 1e3 * statistics.median(serial),
        "serial_mean_ms": 1e3 * statistics.mean(serial),
        "serial_us_user": 1e6 * sum(serial) / users,
        "wait_us_user": 1e6 * sum(r["wait_s"] for r in rows) / users,
    }


def memory(users: int, agent: str, shards: int, steps: int) -> dict:
    """Peak memory of a ``users``-user world with ``agent`` on Ray (coordinator here)."""
    from simlab.execution.measure_drive import drive_in_process

    data = scenario(users, steps, agent, "ray", shards, "replicas", True).resolved_dict()
    data["platform"].update(retrain_every=1, max_candidates=200)  # a model serves at step 2
    if agent == "mf":  # one pass in large batches: memory is measured here, not training
        data["agents"][0].update(epochs=1, batch_size=65536)
    out: dict = {}
    learner: dict = {}
    start = time.perf_counter()
    rows = drive_in_process(parse_scenario(data), steps, memory=out, learner=learner)
    out["learner_peak_rss_mb"] = learner.get("peak_rss_mb", 0.0)
    out["seconds_per_step"] = (time.perf_counter() - start) / steps
    out["users_per_step"] = statistics.mean(r["users"] for r in rows)
    return out


def load() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    """Parse arguments, run each configuration, print the tables."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--shards", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--agent", default="mf")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--memory-users", type=int, default=1_000_000, help="0 = skip")
    ap.add_argument("--memory-steps", type=int, default=3)
    ap.add_argument("--skip-runs", action="store_true", help="skip table 1")
    ap.add_argument("--deploy-lag", type=int, default=1, help="platform.deploy_lag (D)")
    args = ap.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    from simlab.execution.ray import init_local

    t0 = time.perf_counter()
    init_local(max(os.cpu_count() or 1, max(args.shards) + 2), 4096)
    print(
        f"reference world: {args.users:,} users, ~1000 items, slate 10, d=32, agent "
        f"{args.agent}, {args.steps} steps ({args.warmup} warm-up), deploy_lag "
        f"{args.deploy_lag}, {os.cpu_count()} cores; ray.init {time.perf_counter() - t0:.1f}s; "
        f"load {load()}"
    )
    kinds = [("replicas", True), ("replicas", False), ("central", False)]
    configs = [(k, s, lr) for k in args.shards for s, lr in kinds]

    def label(k: int, s: str, lr: bool) -> str:
        return f"ray {k} shard(s), {s}{'+learner' if lr else ''}"

    def make(backend: str, k: int, s: str, lr: bool):
        return scenario(args.users, args.steps, args.agent, backend, k, s, lr, args.deploy_lag)

    if not args.skip_runs:
        rates: dict = {}
        for _ in range(args.repeats):
            rates.setdefault("local", []).append(run_rate(make("local", 1, "central", False), 2))
            for c in configs:
                rates.setdefault(c, []).append(run_rate(make("ray", *c), args.warmup))
        local = statistics.median(r for _, r in rates["local"])
        print(f"\n1. runs (simlab run's path), median of {args.repeats}; load {load()}")
        print(f"{'execution':<33}{'start-up s':>11}{'user-steps/s':>14}{'vs local':>10}")
        print(f"{'local':<33}{0.0:>11.1f}{local:>14,.0f}{1.0:>9.2f}x")
        for c in configs:
            start = statistics.median(a for a, _ in rates[c])
            rate = statistics.median(r for _, r in rates[c])
            print(f"{label(*c):<33}{start:>11.1f}{rate:>14,.0f}{rate / local:>9.2f}x")

    found: dict = {}
    for _ in range(args.repeats):
        for c in configs:
            found.setdefault(c, []).append(crossing(make("ray", *c), args.steps, args.warmup))
    print(f"\n2. between actors, per user-step (bytes) and serial time; load {load()}")
    print(
        f"{'execution':<33}{'to shards':>10}{'from shards':>12}{'to learner':>11}"
        f"{'model B/step':>13}{'content B/step':>15}{'serial ms/step':>15}{'with retrains':>14}"
        f"{'serial us/u-s':>14}{'shards us/u-s':>14}{'learner ms/step':>16}{'u-s/s':>10}"
    )
    for c in configs:
        m = {key: statistics.median(f[key] for f in found[c]) for key in found[c][0]}
        print(
            f"{label(*c):<33}{m['to']:>10.1f}{m['from']:>12.1f}{m['to_learner']:>11.1f}"
            f"{m['model']:>13,.0f}{m['content']:>15,.0f}{m['serial_ms']:>15.1f}"
            f"{m['serial_mean_ms']:>14.1f}{m['serial_us_user']:>14.2f}{m['wait_us_user']:>14.2f}"
            f"{m['learner_ms']:>16.1f}{m['rate']:>10,.0f}"
        )

    if args.memory_users:
        got = memory(args.memory_users, args.agent, 2, args.memory_steps)
        shards = ", ".join(f"{x:,.0f}" for x in got["shards_peak_rss_mb"])
        total = got["coordinator_peak_rss_mb"] + sum(got["shards_peak_rss_mb"])
        total += got["learner_peak_rss_mb"]
        print(
            f"\n3. memory: {args.memory_users:,} users, {args.agent}, 2 shards, "
            f"{args.memory_steps} steps ({got['users_per_step']:,.0f} active users/step, "
            f"{got['seconds_per_step']:.1f} s/step); load {load()}"
        )
        print(
            f"peak RSS MiB: coordinator {got['coordinator_peak_rss_mb']:,.0f}; shards {shards}; "
            f"learner {got['learner_peak_rss_mb']:,.0f}; total {total:,.0f} (object store "
            "shared memory not included)"
        )
    ray.shutdown()


if __name__ == "__main__":
    main()
