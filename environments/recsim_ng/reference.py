"""RecSim NG's own interest-evolution simulation, run by its own runtime (a reference).

This script runs INSIDE the RecSim NG environment (``simlab extras recsim-ng``): it imports
only RecSim NG's stack (recsim_ng, TensorFlow, numpy 1.26), never simlab. It builds the
network of ``recsim_ng.applications.recsys_partially_observable_rl`` — its
``InterestEvolutionUser``, its ``CorpusWithTopicAndQuality`` corpus (frozen as a
``StaticCorpus``, RecSim NG's ``freeze_corpus=True`` default, or drawn afresh each episode
with ``--fresh-corpus``) and its ``ConsumedTimeAsRewardMetrics`` — through RecSim NG's
``recs_story``, with the chosen recommender(s), and runs it with ``TFRuntime`` (graph
compiled), ``repeats`` episodes per recommender. ``--seed`` sets TensorFlow's global seed,
so a run is reproducible. It writes to an ``.npz``, for each recommender ``<rec>``:

- ``cumulative_reward_<rec>``: ``(repeats, users)`` float32, each user's summed reward over
  ``horizon`` responses (``execute(num_steps=horizon)``: the metrics state after ``horizon``
  steps sums the responses of steps ``0..horizon-1``), one row per episode. Every episode
  has fresh users; with ``--fresh-corpus`` also a fresh corpus, so episodes are
  independent replications, like simlab seeds;
- ``wall_s_<rec>``: ``(repeats,)`` seconds of each ``execute`` call. The first call traces
  and compiles the graph and later calls reuse it, so ``trace_s_<rec> = wall_s[0] -
  median(wall_s[1:])`` and ``user_steps_per_s_<rec> = users * horizon / median(wall_s[1:])``
  is the steady state (both stored; NaN with one repeat); ``build_s_<rec>`` is the time to
  build the network and runtime;
- ``config``: ``[users, docs, slate, topics, horizon, seed]``.

With a single recommender the same fields are also stored without the ``_<rec>`` suffix.

Recommenders (``--recommender``):

- ``random``: each user gets ``slate`` distinct documents drawn uniformly (the top ``slate``
  of i.i.d. uniform scores), in random order.
- ``greedy``: each user gets the ``slate`` documents of highest true affinity
  ``-||interest - doc_features||`` (the user model's own affinity, which plus RecSim's
  constant 2.0 is the document's choice logit), best first. It reads the user's latent
  interest, which the stock user hides, so a subclass of ``InterestEvolutionUser``
  exposes it as the user observation; nothing else of the user changes. This is exactly
  simlab's ``oracle`` agent over the native ``interest-evolution`` model, whose
  ``expected_utility`` is the same logit.
- ``stock``: the simulation's own ``CollabFilteringRecommender`` (untrained network over
  each user's consumption history, slates sampled by iterated multinomial logit), as in
  ``simulation_config.create_interest_evolution_simulation_network``.

Usage::

    python reference.py --users 1000 --docs 100 --slate 2 --topics 2 --horizon 100 \
        --seed 0 --recommender random greedy --repeats 8 --fresh-corpus --out ref.npz
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import warnings  # noqa: E402

warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from gym import spaces  # noqa: E402
from recsim_ng.applications.recsys_partially_observable_rl import (  # noqa: E402
    corpus as corpus_lib,
)
from recsim_ng.applications.recsys_partially_observable_rl import (  # noqa: E402
    metrics as metrics_lib,
)
from recsim_ng.applications.recsys_partially_observable_rl import (  # noqa: E402
    recommender as recommender_lib,
)
from recsim_ng.applications.recsys_partially_observable_rl import (  # noqa: E402
    user as user_lib,
)
from recsim_ng.core import network as network_lib  # noqa: E402
from recsim_ng.core import value as value_lib  # noqa: E402
from recsim_ng.entities.recommendation import recommender as base_recommender  # noqa: E402
from recsim_ng.lib.tensorflow import field_spec, runtime  # noqa: E402
from recsim_ng.stories import recommendation_simulation as story_lib  # noqa: E402

Value = value_lib.Value
ValueSpec = value_lib.ValueSpec
Space = field_spec.Space

RECOMMENDERS = ("random", "greedy", "stock")


def _box(shape: tuple[int, ...]) -> Space:
    return Space(spaces.Box(low=-np.inf, high=np.inf, shape=shape))


class ObservedInterestUser(user_lib.InterestEvolutionUser):
    """RecSim NG's interest-evolution user whose observation is its latent interest.

    Only the observation changes (the stock user observes nothing); state, choice, response
    and interest evolution are the parent's. A privileged recommender (``greedy``) reads it.
    """

    def observation(self, user_state):
        """The current interest vector ``(users, topics)``."""
        return Value(interest=tf.identity(user_state.get("interest.state")))

    def specs(self):
        """The parent's specs plus the ``observation.interest`` field."""
        obs = ValueSpec(interest=_box((self._num_users, self._num_topics)))
        return super().specs().union(obs.prefixed_with("observation"))


class _StatelessRecommender(base_recommender.BaseRecommender):
    """A recommender with no state that ranks documents by a per-user score."""

    def __init__(self, config, name="Recommender"):
        super().__init__(config, name=name)
        self._num_topics = config["num_topics"]

    def initial_state(self):
        """No state (a constant placeholder)."""
        return Value(tick=tf.zeros((self._num_users,), tf.int32))

    def next_state(self, previous_state, user_response, slate_docs):
        """No state (a constant placeholder)."""
        del user_response, slate_docs
        return Value(tick=previous_state.get("tick"))

    def scores(self, user_obs, available_docs):
        """``(users, docs)`` scores; the slate is the top ``slate_size``."""
        raise NotImplementedError

    def slate_docs(self, previous_state, user_obs, available_docs):
        """The top-scored documents of every user, best first."""
        del previous_state
        scores = self.scores(user_obs, available_docs)
        doc_indices = tf.math.top_k(scores, k=self._slate_size, sorted=True).indices
        slate = available_docs.map(lambda field: tf.gather(field, doc_indices))
        return slate.union(Value(doc_ranks=doc_indices))

    def specs(self):
        """State and slate specs (shapes as the stock recommender's)."""
        u, k, t = self._num_users, self._slate_size, self._num_topics
        state = ValueSpec(tick=_box((u,)))
        slate = ValueSpec(
            doc_ranks=_box((u, k)),
            doc_id=_box((u, k)),
            doc_topic=_box((u, k)),
            doc_quality=_box((u, k)),
            doc_features=_box((u, k, t)),
            doc_length=_box((u, k)),
        )
        return state.prefixed_with("state").union(slate.prefixed_with("slate"))


class RandomRecommender(_StatelessRecommender):
    """``slate_size`` distinct documents per user, uniformly at random."""

    def scores(self, user_obs, available_docs):
        """I.i.d. uniform scores: their top-k is a uniform random k-subset, randomly ordered."""
        del user_obs, available_docs
        return tf.random.uniform((self._num_users, self._num_docs))


class GreedyAffinityRecommender(_StatelessRecommender):
    """The documents of highest true affinity ``-||interest - doc_features||`` per user."""

    def scores(self, user_obs, available_docs):
        """The user model's negative-Euclidean affinity to every document."""
        interest = tf.convert_to_tensor(user_obs.get("interest"))  # (users, topics)
        feats = tf.convert_to_tensor(available_docs.get("doc_features"))  # (docs, topics)
        return -tf.norm(interest[:, None, :] - feats[None, :, :], axis=-1)


def build_network(args: argparse.Namespace, recommender: str) -> network_lib.Network:
    """RecSim NG's interest-evolution network with the chosen recommender."""
    config = {
        "num_users": args.users,
        "num_topics": args.topics,
        "num_docs": args.docs,
        "slate_size": args.slate,
        "history_length": args.history,
    }
    if args.fresh_corpus:  # RecSim NG's freeze_corpus=False: drawn in-graph per episode
        corpus_ctor = corpus_lib.CorpusWithTopicAndQuality
    else:  # freeze_corpus=True (its default): drawn once, shared by every episode
        frozen = corpus_lib.CorpusWithTopicAndQuality(config).initial_state()

        def corpus_ctor(cfg):
            return corpus_lib.StaticCorpus(cfg, frozen)

    user_ctor = user_lib.InterestEvolutionUser
    if recommender == "stock":
        rec_ctor = recommender_lib.CollabFilteringRecommender
    elif recommender == "random":
        rec_ctor = RandomRecommender
    else:
        user_ctor, rec_ctor = ObservedInterestUser, GreedyAffinityRecommender
    variables = story_lib.recs_story(
        config, user_ctor, corpus_ctor, rec_ctor, metrics_lib.ConsumedTimeAsRewardMetrics
    )
    return network_lib.Network(variables=variables)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=1000, help="Number of users (RecSim: 1000).")
    ap.add_argument("--docs", type=int, default=100, help="Number of documents (RecSim: 100).")
    ap.add_argument("--slate", type=int, default=2, help="Slate size (RecSim: 2).")
    ap.add_argument("--topics", type=int, default=2, help="Number of topics (RecSim: 2).")
    ap.add_argument("--history", type=int, default=15, help="Stock recommender's history.")
    ap.add_argument("--horizon", type=int, default=100, help="Responses per user.")
    ap.add_argument("--seed", type=int, default=0, help="TensorFlow global seed.")
    ap.add_argument(
        "--recommender",
        nargs="+",
        choices=RECOMMENDERS,
        default=["random"],
        help="One or more recommenders, each run in its own network.",
    )
    ap.add_argument("--repeats", type=int, default=1, help="Episodes (1st traces the graph).")
    ap.add_argument(
        "--fresh-corpus",
        action="store_true",
        help="Draw a new corpus each episode (RecSim NG's freeze_corpus=False); default: one "
        "corpus for every episode (freeze_corpus=True).",
    )
    ap.add_argument("--threads", type=int, default=0, help="TF intra/inter-op threads (0=TF).")
    ap.add_argument("--out", required=True, help="Output .npz path.")
    args = ap.parse_args(argv)
    for name in ("users", "docs", "slate", "topics", "horizon", "repeats"):
        if getattr(args, name) <= 0:
            ap.error(f"--{name} must be a positive int, got {getattr(args, name)}")
    if args.slate > args.docs:
        ap.error(f"--slate ({args.slate}) must not exceed --docs ({args.docs})")
    return args


def run(args: argparse.Namespace, recommender: str) -> dict[str, np.ndarray]:
    """Build one network and run ``repeats`` episodes of ``horizon`` steps; results by key."""
    start = time.perf_counter()
    tf_runtime = runtime.TFRuntime(network=build_network(args, recommender), graph_compile=True)
    build_s = time.perf_counter() - start
    rewards, walls = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        final = tf_runtime.execute(num_steps=args.horizon)
        rewards.append(np.asarray(final["metrics state"].get("cumulative_reward"), np.float32))
        walls.append(time.perf_counter() - t0)
    walls_a = np.asarray(walls)
    steady = float(np.median(walls_a[1:])) if walls_a.size > 1 else float("nan")
    return {
        "cumulative_reward": np.stack(rewards),
        "wall_s": walls_a,
        "build_s": np.float64(build_s),
        "trace_s": np.float64(walls_a[0] - steady),
        "user_steps_per_s": np.float64(args.users * args.horizon / steady),
    }


def main(argv: list[str] | None = None) -> None:
    """Run every requested recommender and write the npz.

    Keys are ``<field>_<recommender>`` for each recommender (fields: ``cumulative_reward``,
    ``wall_s``, ``build_s``, ``trace_s``, ``user_steps_per_s``); with a single recommender
    the plain ``<field>`` names are written too.
    """
    args = parse_args(argv)
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    tf.random.set_seed(args.seed)
    out: dict[str, np.ndarray] = {}
    for rec in args.recommender:
        res = run(args, rec)
        out.update({f"{k}_{rec}": v for k, v in res.items()})
        if len(args.recommender) == 1:
            out.update(res)
    config = [args.users, args.docs, args.slate, args.topics, args.horizon, args.seed]
    np.savez(args.out, config=np.array(config, np.int64), **out)


if __name__ == "__main__":
    main()
