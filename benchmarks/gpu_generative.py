"""Training and serving throughput of the generative semantic-ID agent, on CPU or GPU.

Builds a synthetic sequential world (each user walks one of many fixed item cycles, items
have distinct random features), retrains the agent once on the whole click log (residual
k-means codebooks plus the transformer), then serves the users one slate each with every
item as a candidate. Prints the training time, training clicks/s, quantiser items/s
(encoding the catalog with the fitted codebooks), user-slates/s and the hit rate of the
held-out next click as a sanity check. ``--compare-cpu`` repeats the run on the CPU and
prints the speed-up.

    python benchmarks/gpu_generative.py [--device auto|cpu|cuda] [--items 50000]
        [--clicks 200000] [--served 20000] [--compare-cpu] [--small]
"""

from __future__ import annotations

import argparse
import time
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from simlab.agents.generative import SemanticIDAgent, encode_residual
from simlab.batch import Catalog, Log, Observation
from simlab.rng import numpy_generator

SMALL = {
    "items": 200,
    "clicks": 4000,
    "served": 300,
    "codebook": 8,
    "model_dim": 32,
    "history": 10,
    "epochs": 3,
    "batch_size": 128,
    "lr": 1e-2,
}

# ----------------------------------------------------------------------------- world


def synthetic_world(items: int, clicks: int, dim: int, slate: int, seed: int = 0):
    """A click log of users walking item cycles of length 50.

    Returns:
        ``(log, catalog, history, target)``: histories ``(U, 20)`` most recent first, and the
        held-out next click ``(U,)`` of each user.
    """
    gen = numpy_generator(seed, "benchmarks/gpu_generative")
    steps = 20
    users = max(1, clicks // steps)
    features = gen.normal(size=(items, dim)).astype(np.float32)
    cycle = min(50, items)
    perm = gen.permutation(items)[: items - items % cycle].reshape(-1, cycle)
    succ = np.arange(items, dtype=np.int64)
    succ[perm] = np.roll(perm, -1, axis=1)
    walk = np.empty((users, steps + 1), np.int64)
    walk[:, 0] = perm.ravel()[gen.integers(perm.size, size=users)]
    for t in range(1, steps + 1):  # a loop over steps, vectorised over users
        walk[:, t] = succ[walk[:, t - 1]]
    clicked = walk[:, :steps].T.ravel()
    others = gen.integers(1, items, size=(clicked.size, slate - 1))
    slates = (clicked[:, None] + np.concatenate([np.zeros_like(others[:, :1]), others], 1)) % items
    zeros = np.zeros(items, np.int64)
    catalog = Catalog(np.arange(items, dtype=np.int64), features, zeros, zeros)
    log = Log(
        step=np.repeat(np.arange(steps), users),
        user_ids=np.tile(np.arange(users), steps),
        slates=slates,
        clicked_pos=np.zeros(clicked.size, np.int64),  # others may repeat: click the first
        engagement=np.ones(clicked.size, np.float32),
        feature_ids=catalog.item_ids,
        features=features,
    )
    return log, catalog, walk[:, :steps][:, ::-1].copy(), walk[:, steps]


# ----------------------------------------------------------------------------- measurement


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run(args: argparse.Namespace, device: str) -> dict[str, Any]:
    """Train once and serve once on ``device``; return the timings."""
    log, catalog, history, target = synthetic_world(args.items, args.clicks, args.dim, args.slate)
    params = SemanticIDAgent.Params(
        quantiser={"levels": 3, "codebook_size": args.codebook, "dedup_size": 32},
        transformer={
            "dim": args.model_dim,
            "layers": 2,
            "heads": 4,
            "ff_dim": 4 * args.model_dim,
            "max_history": args.history,
        },
        training={
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "max_examples": args.clicks,
        },
        beam_width=args.beam,
        device=device,
    )
    agent = SemanticIDAgent(params, SimpleNamespace(seed=0, num_users=target.size, dim=args.dim))
    # first-call costs (device start, torch's lazy imports) outside the timings
    warm = Log(
        *(getattr(log, f)[:256] for f in ("step", "user_ids", "slates", "clicked_pos")),
        log.engagement[:256],
        log.feature_ids,
        log.features,
    )
    SemanticIDAgent(params, agent.ctx).retrain(warm)
    start = time.perf_counter()
    agent.retrain(log)
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    encode_residual(catalog.features, agent.state_dict()["codebooks"], agent._device)
    _sync(agent._device)
    encode_s = time.perf_counter() - start
    served = min(args.served, target.size)
    obs = Observation(
        step=0,
        user_ids=np.arange(served, dtype=np.int64),
        user_features=np.zeros((served, 1), np.float32),
        history=history[:served],
        candidates=np.broadcast_to(catalog.item_ids, (served, catalog.num_items)),
        catalog=catalog,
        slate_size=args.slate,
        shared_candidates=True,
    )
    agent.act(obs)  # warm-up: first-call costs and the catalog's codes
    start = time.perf_counter()
    slates = agent.act(obs).item_ids
    serve_s = time.perf_counter() - start
    return {
        "device": agent._device,
        "train_s": train_s,
        "train_clicks_per_s": args.epochs * min(args.clicks, log.num_rows) / train_s,
        "quantise_items_per_s": args.items / encode_s,
        "serve_s": serve_s,
        "slates_per_s": served / serve_s,
        "hit_rate": float((slates == target[:served, None]).any(1).mean()),
    }


def _print(r: dict[str, Any], args: argparse.Namespace) -> None:
    print(
        f"[{r['device']}] train {r['train_s']:.2f} s ({r['train_clicks_per_s']:,.0f} clicks/s "
        f"x {args.epochs} epochs) | quantise {r['quantise_items_per_s']:,.0f} items/s | serve "
        f"{r['slates_per_s']:,.0f} user-slates/s ({r['serve_s']:.2f} s) | hit@{args.slate} "
        f"{r['hit_rate']:.3f}"
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse arguments, run the benchmark, print and return the results of ``--device``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ap.add_argument("--items", type=int, default=50_000)
    ap.add_argument("--clicks", type=int, default=200_000)
    ap.add_argument("--served", type=int, default=20_000, help="users served one slate each")
    ap.add_argument("--dim", type=int, default=32, help="item feature dimension")
    ap.add_argument("--slate", type=int, default=10)
    ap.add_argument("--codebook", type=int, default=64, help="centroids per level (3 levels)")
    ap.add_argument("--model-dim", type=int, default=64)
    ap.add_argument("--history", type=int, default=20, help="history items the model reads")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--beam", type=int, default=20)
    ap.add_argument("--compare-cpu", action="store_true", help="also run on CPU; print ratio")
    ap.add_argument("--small", action="store_true", help="CPU smoke-test sizes")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.small:
        for key, value in SMALL.items():
            setattr(args, key, value)
    print(
        f"generative agent: {args.items} items, {args.clicks} clicks, {args.served} users "
        f"served, codebooks 3 x {args.codebook}, model dim {args.model_dim}, beam {args.beam}, "
        f"{torch.get_num_threads()} CPU threads"
    )
    result = run(args, args.device)
    _print(result, args)
    if args.compare_cpu and result["device"] != "cpu":
        cpu = run(args, "cpu")
        _print(cpu, args)
        print(
            f"speed-up vs cpu: train x{cpu['train_s'] / result['train_s']:.1f}, serve "
            f"x{result['slates_per_s'] / cpu['slates_per_s']:.1f}"
        )
        result["cpu"] = cpu
    return result


if __name__ == "__main__":
    main()
