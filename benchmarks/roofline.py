"""Roofline: per workload, unavoidable work per user-step, this machine's floor, the fraction.

Everything is measured in one run, on one core.

The floor of a workload is the time its unavoidable arithmetic takes at the rates this
machine reaches on the same kind of work, measured first in this run with one thread:

- ``gemm``: fp32 matrix product ``(4096, 32) @ (32, 1024)`` (torch.mm), in GFLOP/s;
- ``copy``: a 64 MB array copy, in GB/s (read + write);
- ``exp``: fp32 ``exp`` over 4M values, ns per value;
- ``topk``: ``torch.topk(k=10)`` over ``(4096, 1024)`` scores, ns per score;
- ``draw``: ``simlab.rng`` keyed uniform draws, ns per draw.

The unavoidable work of one user-step (one user served one slate and responding) is
counted per workload from its sizes (see :data:`WORKLOADS`): the FLOPs of scoring the
candidates and of the user's response to the slate, the exps of a softmax over candidates,
the scores ranked, the random draws and the bytes the step must move per user. The floor
rate is ``1 / sum(work_kind / machine_rate_kind)`` user-steps/s on one core; simlab's rate
is measured in a fresh process per workload (``execution.threads`` = 1, steady state after
warm-up steps), and the fraction is simlab / floor. The floor is a lower bound on the
time: it ignores the per-step Python and bookkeeping costs, the log and retrains, and the
metrics, so 100% is out of reach; what is left is how far the loop is from its arithmetic.

Workloads: ``popularity``, ``mf``, ``linucb``, ``two-tower`` on the reference world of
``benchmarks/throughput.py`` (10k users, ~1k items, slate 10, d=32, default metrics) and
``recsim-cf`` on RecSim NG's equal-work world of ``benchmarks/peers.py`` (10k users, 500
documents, slate 5). ``popularity`` scores nobody (one shared ranking per step): its floor
is the users' response alone.

    python benchmarks/roofline.py [--workloads popularity mf recsim-cf] [--steps 10]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

REF = {"users": 10_000, "items": 1000, "slate": 10, "dim": 32}
"""The reference world (``benchmarks/throughput.py``)."""
EQ = {"users": 10_000, "docs": 500, "slate": 5, "embed": 32, "history": 15, "topics": 2}
"""RecSim NG's equal-work world at its large scale (``benchmarks/peers.py``)."""


def _response(slate: int, dim: int) -> dict[str, float]:
    """A user's response to a slate: utilities, choice and engagement draws, items read.

    The utilities are dot products with the slate's item vectors (read once).
    """
    return {
        "flops": 2.0 * slate * dim,
        "draws": slate + 2.0,
        "bytes": slate * (dim * 4 + 8),
    }


def _plus(*parts: dict[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for p in parts:
        for k, v in p.items():
            out[k] = out.get(k, 0.0) + v
    return out


_C, _D, _K = REF["items"], REF["dim"], REF["slate"]
WORKLOADS: dict[str, dict[str, Any]] = {
    "popularity": {
        "world": "reference",
        "what": "no scoring per user (one shared ranking); the response only",
        "work": _response(_K, _D),
    },
    "mf": {
        "world": "reference",
        "what": f"<p_u, v_i> + b_i over {_C} candidates (f=16), top-{_K}, response",
        "work": _plus({"flops": 2.0 * _C * 16, "topk": _C}, _response(_K, _D)),
    },
    "linucb": {
        "world": "reference",
        "what": f"mean + width x'A^-1x over {_C} candidates (d={_D}), top-{_K}",
        # x = [u * v, v, 1]: the mean is 2 (2d + 1) FLOPs per candidate; the width a dot
        # product per candidate with the upper d (d + 1) / 2 entries of the user's
        # symmetric d x d form (d (d + 1) FLOPs)
        "work": _plus(
            {"flops": 2.0 * _C * (2 * _D + 1) + 1.0 * _C * _D * (_D + 1), "topk": _C},
            _response(_K, _D),
        ),
    },
    "two-tower": {
        "world": "reference",
        "what": f"user tower (10 clicks x {_D} -> 16) + {_C} candidates (f=16), top-{_K}",
        "work": _plus({"flops": 2.0 * _C * 16 + 2.0 * 10 * _D * 16, "topk": _C}, _response(_K, _D)),
    },
    "recsim-cf": {
        "world": "equal-work",
        "what": f"history net + {EQ['docs']} documents (E=32), softmax, {EQ['slate']} draws",
        "work": _plus(
            {
                "flops": 2.0 * EQ["docs"] * EQ["embed"] + 2.0 * (EQ["history"] + 32) * 32,
                "exps": EQ["docs"],
                "draws": EQ["slate"],
            },
            _response(EQ["slate"], EQ["topics"]),
        ),
    },
}


# ------------------------------------------------------------------------- machine floor


def _best(fn, repeats: int = 7) -> float:
    """Fastest of ``repeats`` timed calls of ``fn`` (seconds), after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def machine_rates() -> dict[str, float]:
    """This machine's rates on one thread: GEMM FLOP/s, copy B/s, s per exp/score/draw."""
    import numpy as np
    import torch

    from simlab.rng import Stream

    torch.set_num_threads(1)
    a, b = torch.randn(4096, 32), torch.randn(32, 1024)
    out = torch.empty(4096, 1024)
    gemm = 2.0 * 4096 * 32 * 1024 / _best(lambda: torch.mm(a, b, out=out))
    src = np.ones(8 << 20)  # 64 MB
    dst = np.empty_like(src)
    copy = 2.0 * src.nbytes / _best(lambda: np.copyto(dst, src))
    x = torch.randn(4 << 20)
    y = torch.empty_like(x)
    exp = _best(lambda: torch.exp(x, out=y)) / x.numel()
    scores = torch.randn(4096, 1024)
    topk = _best(lambda: torch.topk(scores, 10, dim=1)) / scores.numel()
    ids = np.arange(100_000)
    stream = Stream(0, "roofline")
    draw = _best(lambda: stream.uniform(ids, 0, size=10)) / (ids.size * 10)
    return {"gemm": gemm, "copy": copy, "exp": exp, "topk": topk, "draw": draw}


def floor_seconds(work: dict[str, float], rates: dict[str, float]) -> float:
    """Seconds of one user-step's unavoidable work at this machine's rates."""
    return (
        work.get("flops", 0.0) / rates["gemm"]
        + work.get("bytes", 0.0) / rates["copy"]
        + work.get("exps", 0.0) * rates["exp"]
        + work.get("topk", 0.0) * rates["topk"]
        + work.get("draws", 0.0) * rates["draw"]
    )


# ------------------------------------------------------------------------- simlab's rate


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one workload's world in this (fresh) process; its steady user-steps/s."""
    name, steps, warmup = spec["workload"], int(spec["steps"]), int(spec["warmup"])
    if WORKLOADS[name]["world"] == "equal-work":
        import peers

        from simlab import registry
        from simlab.scenario import parse_scenario

        registry.register("agents", "recsim-cf", peers.RecSimCFAgent)
        scale = peers.Scale(EQ["users"], EQ["docs"], EQ["slate"], steps, 1, 1, 1, 1)
        scenario = parse_scenario(peers.recsim_scenario(scale, warmup + steps, name))
    else:
        from throughput import reference_scenario

        scenario = reference_scenario(REF["users"], warmup + steps, [name])
    from throughput import steady_rate

    return steady_rate(scenario, warmup, steps)


def measure(name: str, steps: int, warmup: int) -> dict[str, Any]:
    """:func:`worker` in a fresh process of this Python."""
    spec = json.dumps({"workload": name, "steps": steps, "warmup": warmup})
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--worker", spec],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-8:])
        raise SystemExit(f"benchmarks/roofline.py: the {name} run failed:\n{tail}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    """Measure the machine, run each workload, print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", nargs="+", choices=sorted(WORKLOADS), default=list(WORKLOADS))
    ap.add_argument("--steps", type=int, default=10, help="timed steps per workload")
    ap.add_argument("--warmup", type=int, default=6, help="untimed steps first (a retrain)")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker is not None:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    if args.steps <= 0 or args.warmup < 0:
        ap.error(f"--steps must be positive and --warmup >= 0, got {args.steps}, {args.warmup}")
    load = os.getloadavg()[0]
    rates = machine_rates()
    print(
        f"machine floor (1 thread, best of 7): GEMM {rates['gemm'] / 1e9:.0f} GFLOP/s, copy "
        f"{rates['copy'] / 1e9:.1f} GB/s, exp {rates['exp'] * 1e9:.2f} ns/value, topk "
        f"{rates['topk'] * 1e9:.2f} ns/score, keyed draw {rates['draw'] * 1e9:.2f} ns/draw"
    )
    head = (
        f"{'workload':<12}{'unavoidable work per user-step':<68}{'floor ns':>9}"
        f"{'floor u-s/s':>13}{'simlab u-s/s':>14}{'of floor':>10}{'load':>6}"
    )
    print(head)
    print("-" * len(head))
    for name in args.workloads:
        spec = WORKLOADS[name]
        ns = floor_seconds(spec["work"], rates)
        got = measure(name, args.steps, args.warmup)
        print(
            f"{name:<12}{spec['what']:<68}{ns * 1e9:>9.0f}{1 / ns:>13,.0f}"
            f"{got['rate']:>14,.0f}{100 * got['rate'] * ns:>9.1f}%{got['load']:>6.1f}"
        )
    print(
        f"load average {load:.1f} at start, {os.getloadavg()[0]:.1f} at end; {os.cpu_count()} "
        "cores. Floor = the unavoidable arithmetic at this machine's one-core rates (no Python, "
        "log, retrain or metrics); simlab = steady state of the whole step with the default "
        "metrics, one BLAS/torch thread, a fresh process per workload."
    )


if __name__ == "__main__":
    main()
