"""RecSim NG's interest-evolution simulation, timed (runs in the RecSim NG environment).

This script runs inside the ``recsim-ng`` extra environment (``simlab extras recsim-ng``),
never in simlab's own: it imports only RecSim NG, TensorFlow and the standard library.
``benchmarks/peers.py`` starts it as a subprocess and reads the JSON it writes.

The workload is RecSim NG's own ``recsys_partially_observable_rl`` application as shipped:
``InterestEvolutionUser`` (multinomial-logit choice over negative-Euclidean affinities,
interests pulled toward consumed documents), a frozen ``CorpusWithTopicAndQuality`` corpus,
the ``CollabFilteringRecommender`` (a Keras model that encodes each user's consumption
history and scores every user against every document, then samples the slate by iterated
multinomial logit) and ``ConsumedTimeAsRewardMetrics``. The network is built exactly as
``simulation_config.create_interest_evolution_simulation_network`` builds it, except that
the slate size is a parameter (that function fixes it at 2).

Timing. ``TFRuntime(graph_compile=True).execute(num_steps=H)`` runs the whole horizon in one
traced ``tf.while_loop``. The first call traces the graph (one-off set-up); the second call,
with the same ``H``, reuses the trace, so its time is the steady-state cost of the run.
``execute(H)`` computes the network's initial value (``initial_step``: a first slate and a
first response of every user) and then ``H`` transitions, so one call serves every user
``H + 1`` slates: the rate counts ``users * (H + 1)`` user-steps. One user-step is one user
served one slate and responding.

    python recsim_ng_bench.py --users 1000 --docs 100 --slate 2 --horizon 100 --out r.json
"""

from __future__ import annotations

import argparse
import functools
import os
import resource
import time

from _common import dist_version, emit


def build_network(users: int, docs: int, slate: int, topics: int, history: int):
    """The interest-evolution simulation variables (as the application's config builds them)."""
    from recsim_ng.applications.recsys_partially_observable_rl import (
        corpus,
        metrics,
        recommender,
        user,
    )
    from recsim_ng.lib.tensorflow import entity
    from recsim_ng.stories import recommendation_simulation as simulation

    config = {
        "num_users": users,
        "num_topics": topics,
        "num_docs": docs,
        "slate_size": slate,
        "history_length": history,
    }

    def corpus_ctor(cfg):
        # freeze_corpus=True in the application's config: a static corpus drawn once
        return corpus.StaticCorpus(cfg, corpus.CorpusWithTopicAndQuality(cfg).initial_state())

    def var_fn():
        return simulation.recs_story(
            config,
            user.InterestEvolutionUser,
            corpus_ctor,
            functools.partial(recommender.CollabFilteringRecommender),
            metrics.ConsumedTimeAsRewardMetrics,
        )

    variables, _ = entity.story_with_trainable_variables(var_fn)
    return variables


def run(args: argparse.Namespace) -> dict:
    """Build, trace and time the simulation; return the result record."""
    t0 = time.perf_counter()
    import tensorflow as tf
    from recsim_ng.core import network as network_lib
    from recsim_ng.lib.tensorflow import runtime

    tf.random.set_seed(args.seed)
    import_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    variables = build_network(args.users, args.docs, args.slate, args.topics, args.history)
    tf_runtime = runtime.TFRuntime(network=network_lib.Network(variables=variables))
    build_s = time.perf_counter() - t1
    t2 = time.perf_counter()
    first = tf_runtime.execute(num_steps=args.horizon)
    reward = float(tf.reduce_mean(first["metrics state"].get("cumulative_reward")))
    first_s = time.perf_counter() - t2
    times = []
    for _ in range(args.repeats):
        t3 = time.perf_counter()
        last = tf_runtime.execute(num_steps=args.horizon)
        float(tf.reduce_mean(last["metrics state"].get("cumulative_reward")))  # force the run
        times.append(time.perf_counter() - t3)
    steady_s = min(times)
    # initial_step() serves and answers one slate per user, then H transitions: H + 1
    user_steps = args.users * (args.horizon + 1)
    return {
        "peer": "recsim-ng",
        "users": args.users,
        "docs": args.docs,
        "slate": args.slate,
        "horizon": args.horizon,
        "responses_per_user": args.horizon + 1,
        "topics": args.topics,
        "user_steps_per_s": user_steps / steady_s,
        "steady_s": steady_s,
        "setup_s": build_s + max(first_s - steady_s, 0.0),
        "import_s": import_s,
        "first_call_s": first_s,
        "mean_cumulative_reward": reward,
        "load_average": os.getloadavg()[0],
        "threads": os.environ.get("TF_NUM_INTRAOP_THREADS", "default"),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "versions": {"tensorflow": tf.__version__, "recsim_ng": dist_version("recsim-ng")},
    }


def main() -> None:
    """Parse arguments, run, write the JSON record (to ``--out`` or stdout)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--docs", type=int, default=100)
    ap.add_argument("--slate", type=int, default=2)
    ap.add_argument("--horizon", type=int, default=100)
    ap.add_argument("--topics", type=int, default=2, help="the application's default: 2")
    ap.add_argument("--history", type=int, default=15, help="the application's default: 15")
    ap.add_argument("--repeats", type=int, default=1, help="timed runs after the traced one")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="JSON file to write (default: stdout)")
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    record = run(args)
    emit(record, args.out)


if __name__ == "__main__":
    main()
