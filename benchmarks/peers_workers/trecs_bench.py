"""T-RECS' ContentFiltering simulation, timed (runs in the T-RECS environment).

This script runs inside the ``trecs`` extra environment (``simlab extras trecs``), never in
simlab's own: it imports only T-RECS, numpy and the standard library.
``benchmarks/peers.py`` starts it as a subprocess and reads the JSON it writes.

The workload is ``trecs.models.ContentFiltering`` with its defaults apart from the sizes:
item attributes are random binary ``(attributes, items)``, true user profiles Gaussian
``(users, attributes)``, and the recommender starts from all-zero user profiles. Each step
of ``run`` (``train_between_steps=True``, T-RECS' default) scores every user against every
item, shows each user its top ``num_items_per_iter`` items, lets every user interact with
the shown item of highest true score, and refits every user's profile by non-negative
least squares (``scipy.optimize.nnls``, one call per user) on the interactions so far.

Timing. One warm-up step (the first scores are all zero and T-RECS allocates its state)
is excluded; then ``--steps`` steps are timed. One user-step is one user served one slate
and interacting (T-RECS serves every user every step).

    python trecs_bench.py --users 1000 --items 100 --attributes 32 --slate 2 --steps 5 --out t.json
"""

from __future__ import annotations

import argparse
import resource
import time
import warnings

from _common import dist_version, emit


def run(args: argparse.Namespace) -> dict:
    """Build, warm up and time the simulation; return the result record."""
    t0 = time.perf_counter()
    import numpy as np
    import trecs
    from trecs.models import ContentFiltering

    import_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    model = ContentFiltering(
        num_users=args.users,
        num_items=args.items,
        num_attributes=args.attributes,
        num_items_per_iter=args.slate,
        seed=args.seed,
    )
    build_s = time.perf_counter() - t1
    t2 = time.perf_counter()
    model.run(timesteps=args.warmup, disable_tqdm=True)
    warm_s = time.perf_counter() - t2
    refit = _timed(model, "train")  # the NNLS refit of every user profile
    t3 = time.perf_counter()
    model.run(timesteps=args.steps, disable_tqdm=True)
    steady_s = time.perf_counter() - t3
    scores = model.users.actual_user_scores.value
    chosen = scores[np.arange(args.users), model.interactions]
    return {
        "peer": "trecs",
        "users": args.users,
        "items": args.items,
        "attributes": args.attributes,
        "slate": args.slate,
        "steps": args.steps,
        "user_steps_per_s": args.users * args.steps / steady_s,
        "steady_s": steady_s,
        "setup_s": build_s + warm_s,
        "import_s": import_s,
        "train_share": refit[0] / steady_s,
        "reward_per_user_step": float(chosen.mean()),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "versions": {"trecs": getattr(trecs, "__version__", dist_version("trecs"))},
    }


def _timed(obj: object, method: str) -> list[float]:
    """Wrap ``obj.method`` so each call adds its seconds to the returned one-item list."""
    spent = [0.0]
    inner = getattr(obj, method)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - start

    setattr(obj, method, wrapper)
    return spent


def main() -> None:
    """Parse arguments, run, write the JSON record (to ``--out`` or stdout)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--items", type=int, default=100)
    ap.add_argument("--attributes", type=int, default=32)
    ap.add_argument("--slate", type=int, default=2, help="T-RECS num_items_per_iter")
    ap.add_argument("--steps", type=int, default=5, help="timed steps")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="JSON file to write (default: stdout)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")  # "No measurements are currently defined"
    record = run(args)
    emit(record, args.out)


if __name__ == "__main__":
    main()
