"""RecSim NG's interest-evolution models as the worker serves them (runs inside RecSim NG).

Part of the worker (:mod:`simlab.environments.recsim_ng.worker`, whose docstring describes
the noise feed, the compiled step and the sessions): :class:`NoiseFeed` (simlab's noise
into edward2's draws), :func:`make_corpus`, :class:`UserModel` (compiled, shared) and
:class:`UserSession` (one population's state). RecSim NG's stack is imported by
:func:`_import_recsim` when the worker starts (never when simlab imports this module);
it runs in RecSim NG's environment and never imports simlab.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

import numpy as np

__all__ = ["NoiseFeed", "make_corpus", "MODEL_KEYS", "UserModel", "UserSession"]

#: Per (user, document) elements of one expected-utility chunk (bounds worker memory).
_UTILITY_CHUNK = 1 << 22


# ---------------------------------------------------------------------------- RecSim NG
# Imported in main(): simlab imports this module for the framing functions only.
tf: Any = None
ed: Any = None
tfd: Any = None
Value: Any = None
user_lib: Any = None
corpus_lib: Any = None
metrics_lib: Any = None
selectors_lib: Any = None


def _import_recsim(threads: int) -> dict[str, str]:
    """Import RecSim NG's stack (and set TensorFlow's thread pools); return versions."""
    global tf, ed, tfd, Value, user_lib, corpus_lib, metrics_lib, selectors_lib
    import warnings

    warnings.filterwarnings("ignore")
    import edward2
    import recsim_ng
    import tensorflow
    import tensorflow_probability
    from recsim_ng.applications.recsys_partially_observable_rl import corpus, metrics, user
    from recsim_ng.core import value
    from recsim_ng.entities.choice_models import selectors

    tf, ed, tfd = tensorflow, edward2, tensorflow_probability.distributions
    Value, user_lib, corpus_lib, metrics_lib = value.Value, user, corpus, metrics
    selectors_lib = selectors
    if threads > 0:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    tf.random.set_seed(0)  # every draw is fed; this only pins anything unforeseen
    return {
        "recsim_ng": getattr(recsim_ng, "__version__", "0.1.2"),
        "tensorflow": tf.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
    }


class NoiseFeed:
    """An edward2 tracer that sets every random draw from noise sent by simlab.

    Draws of each kind take the next array of their queue, in the order the model makes
    them; :meth:`check_consumed` fails if an array was left over.

    Args:
        uniform: uniforms on (0, 1), one tensor per ``Categorical`` draw, shaped like its
            batch (its logits without the last axis).
        normal: standard normal tensors, one per ``Normal`` / multivariate normal draw,
            shaped like its value.
    """

    _NORMAL = ("Normal", "MultivariateNormalLinearOperator", "MultivariateNormalDiag")

    def __init__(self, uniform: list | None = None, normal: list | None = None) -> None:
        self.queues = {"uniform": list(uniform or []), "normal": list(normal or [])}

    def __call__(self, f, *args, **kwargs):
        """Trace one random-variable constructor ``f`` (edward2's tracer signature)."""
        if kwargs.get("value") is None and kwargs.get("sample_shape", ()) in ((), None):
            kw = {k: v for k, v in kwargs.items() if k not in ("value", "sample_shape")}
            value = self._value(f.__name__, getattr(tfd, f.__name__)(*args, **kw))
            if value is not None:
                kwargs["value"] = value
        elif kwargs.get("value") is None:
            raise NotImplementedError(f"{f.__name__} draw with a sample_shape cannot be fed")
        return ed.traceable(f)(*args, **kwargs)

    def _take(self, kind: str, what: str, shape) -> Any:
        queue = self.queues[kind]
        if not queue:
            raise ValueError(f"RecSim NG made a {what} draw but no {kind} noise is left to feed it")
        noise = queue.pop(0)
        if not noise.shape.is_compatible_with(shape):
            raise ValueError(
                f"{kind} noise of shape {noise.shape} for a {what} draw of shape {shape}"
            )
        return noise

    def _value(self, name: str, dist) -> Any:
        """The value of a draw from ``dist`` given the next noise (None: deterministic)."""
        if name in ("Deterministic", "VectorDeterministic"):
            return None
        if name == "Independent":
            inner = type(dist.distribution).__name__
            if inner in ("Deterministic", "VectorDeterministic"):
                return None
            return self._value(inner, dist.distribution)
        if name == "Categorical":
            logits = tf.cast(dist.logits_parameter(), tf.float64)
            u = tf.cast(self._take("uniform", name, logits.shape[:-1]), tf.float64)
            cum = tf.cumsum(tf.nn.softmax(logits, axis=-1), axis=-1)
            below = tf.cast(cum <= (u[..., None] * cum[..., -1:]), tf.int32)
            last = tf.shape(logits)[-1] - 1
            return tf.cast(tf.minimum(tf.reduce_sum(below, axis=-1), last), dist.dtype)
        if name in self._NORMAL:
            shape = dist.batch_shape.concatenate(dist.event_shape)
            z = tf.cast(self._take("normal", name, shape), dist.dtype)
            if name == "Normal":
                return dist.loc + dist.scale * z
            return dist.mean() + dist.scale.matvec(z)
        raise NotImplementedError(
            f"RecSim NG drew from a {name} distribution; the worker feeds only Categorical "
            "(inverse CDF), Normal and multivariate normal draws from simlab's noise"
        )

    def check_consumed(self) -> None:
        """Fail if noise was sent that no draw used (the model and the caller disagree)."""
        left = {k: len(v) for k, v in self.queues.items() if v}
        if left:
            raise ValueError(f"noise arrays left unused by RecSim NG's model: {left}")


def _tensors(value) -> dict[str, Any]:
    """A RecSim NG ``Value``'s fields as a flat dict of tensors."""
    return {k: tf.convert_to_tensor(v) for k, v in value.as_dict.items()}


def make_corpus(header: dict[str, Any], arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Documents of RecSim NG's ``CorpusWithTopicAndQuality.initial_state`` on fed noise.

    Header keys: ``num_docs``, ``num_topics``, ``topic_min_utility``, ``topic_max_utility``,
    ``video_length``. Arrays: ``topic_uniform (N,)``, ``quality_normal (N,)``,
    ``features_normal (N, T)``.
    """
    config = {
        "num_users": 1,
        "num_topics": int(header["num_topics"]),
        "num_docs": int(header["num_docs"]),
        "slate_size": 1,
    }
    corpus = corpus_lib.CorpusWithTopicAndQuality(
        config,
        topic_min_utility=float(header["topic_min_utility"]),
        topic_max_utility=float(header["topic_max_utility"]),
        video_length=float(header["video_length"]),
    )
    feed = NoiseFeed(
        uniform=[tf.constant(arrays["topic_uniform"], tf.float64)],
        normal=[
            tf.constant(arrays["quality_normal"], tf.float32),
            tf.constant(arrays["features_normal"], tf.float32),
        ],
    )
    with ed.trace(feed):
        state = corpus.initial_state()
    feed.check_consumed()
    return {k: np.asarray(v) for k, v in _tensors(state).items()}


#: The ``open`` header keys that define a user model (sessions with equal ones share it).
MODEL_KEYS = (
    "num_users",
    "num_topics",
    "slate_size",
    "no_click_mass",
    "interest_step_size",
    "interest_update_noise_scale",
    "max_user_affinity",
    "position_bias",
)


class UserModel:
    """RecSim NG's interest-evolution user model for ``n`` users, with compiled functions.

    The model holds no user state (sessions do), so every session with the same
    parameters shares it and its traces.

    Args:
        header: ``num_users`` (n), ``num_topics`` (T), ``slate_size`` (K) and the user
            model's keyword arguments ``no_click_mass``, ``interest_step_size``,
            ``interest_update_noise_scale`` (None: noiseless), ``max_user_affinity``, and
            ``position_bias`` (the ``positional_bias`` of its multinomial logit choice model).
    """

    def __init__(self, header: dict[str, Any]) -> None:
        n, k = int(header["num_users"]), int(header["slate_size"])
        self.num_users, self.slate_size = n, k
        self.num_topics = int(header["num_topics"])
        config = {"num_users": n, "num_topics": self.num_topics, "num_docs": 1, "slate_size": k}
        noise_scale = header.get("interest_update_noise_scale")
        self.noisy = noise_scale is not None
        choice_ctor = functools.partial(
            selectors_lib.MultinomialLogitChoiceModel,
            positional_bias=float(header.get("position_bias", 0.0)),
        )
        self.user = user_lib.InterestEvolutionUser(
            config,
            choice_model_ctor=choice_ctor,
            no_click_mass=float(header["no_click_mass"]),
            interest_step_size=float(header["interest_step_size"]),
            interest_update_noise_scale=None if noise_scale is None else float(noise_scale),
            max_user_affinity=float(header["max_user_affinity"]),
        )
        self.metrics = metrics_lib.ConsumedTimeAsRewardMetrics(config)
        self.step = tf.function(self._step_graph, jit_compile=True)
        self.utility = tf.function(self._utility_graph, reduce_retracing=True)

    def initial_state(self, initial_normal: np.ndarray) -> dict[str, Any]:
        """RecSim NG's initial user state, its interest drawn from ``(n, T)`` normals."""
        z = tf.constant(initial_normal, tf.float32)
        # The switching (no-op or continue) state model draws its initial state in both
        # branches; the state is the first branch's draw. Both get the same z.
        feed = NoiseFeed(normal=[z, z])
        with ed.trace(feed):
            state = self.user.initial_state()
        feed.check_consumed()
        return _tensors(state)

    def _step_graph(self, state, docs, slates, served, uniform, normal):
        """One response and state update of every user (state kept where not served)."""
        previous = Value(**state)
        slate_docs = Value(**{k: tf.gather(v, slates) for k, v in docs.items()})
        feed = NoiseFeed(uniform=[uniform], normal=[normal] if self.noisy else [])
        with ed.trace(feed):
            response = self.user.next_response(previous, slate_docs)
            following = self.user.next_state(previous, response, slate_docs)
            zeros = tf.zeros((self.num_users,), tf.float32)
            metrics = self.metrics.next_metrics(
                Value(reward=zeros, cumulative_reward=zeros), None, None, response, None
            )
        feed.check_consumed()
        new = {}
        for key, value in _tensors(following).items():
            old = state[key]
            mask = tf.reshape(served, [-1] + [1] * (len(old.shape) - 1))
            new[key] = tf.where(mask, tf.cast(value, old.dtype), old)
        choice = tf.cast(tf.convert_to_tensor(response.get("choice")), tf.int32)
        reward = tf.convert_to_tensor(metrics.get("reward"))
        return choice, reward, new

    def _utility_graph(self, interest, doc_features):
        """Choice logits ``affinity + 2`` of InterestEvolutionUser.next_response."""
        aff = self.user._affinity_model.affinities(interest, doc_features).get("affinities")
        return aff + 2.0


class UserSession:
    """The state of one population (or shard) of users of a :class:`UserModel`.

    Args:
        model: the (shared) user model.
        initial_normal: ``(n, T)`` standard normal noise of the initial interests.
    """

    def __init__(self, model: UserModel, initial_normal: np.ndarray) -> None:
        self.model = model
        self.state = model.initial_state(initial_normal)
        self.docs: dict[str, Any] | None = None

    # ------------------------------------------------------------ requests
    def set_docs(self, arrays: dict[str, np.ndarray]) -> None:
        """The document table the slates index (``doc_*`` fields, first axis documents)."""
        self.docs = {k: tf.constant(v) for k, v in arrays.items()}

    def _need_docs(self) -> dict[str, Any]:
        if self.docs is None:
            raise RuntimeError("no documents were sent to this session (send 'docs' first)")
        return self.docs

    def respond(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Responses of the served users ``rows`` to ``slates`` (rows into the documents)."""
        docs = self._need_docs()
        rows = arrays["rows"].astype(np.int64)
        m = self.model
        n, k = m.num_users, m.slate_size
        slates = np.zeros((n, k), np.int32)
        slates[rows] = arrays["slates"]
        served = np.zeros(n, bool)
        served[rows] = True
        uniform = np.full(n, 0.5)
        uniform[rows] = arrays["uniform"]
        normal = np.zeros((n, m.num_topics), np.float32)
        if m.noisy:
            normal[rows] = arrays["normal"]
        choice, reward, self.state = m.step(self.state, docs, slates, served, uniform, normal)
        choice = choice.numpy()[rows]
        return {
            "clicked_pos": np.where(choice < k, choice, -1).astype(np.int64),
            "reward": reward.numpy()[rows].astype(np.float32),
            "interest": self.state["interest.state"].numpy(),
        }

    def utility(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``(B, C)`` choice logits of ``items`` (``(C,)`` shared or ``(B, C)``) for ``rows``."""
        feats = self._need_docs()["doc_features"]
        rows, items = arrays["rows"].astype(np.int64), arrays["items"].astype(np.int32)
        interest = tf.gather(self.state["interest.state"], rows)
        per_row = max(1, _UTILITY_CHUNK // max(1, items.shape[-1] * int(feats.shape[1])))
        out = []
        for lo in range(0, rows.shape[0], per_row):
            sl = slice(lo, lo + per_row)
            docs = tf.gather(feats, items[None] if items.ndim == 1 else items[sl])
            out.append(self.model.utility(interest[sl], docs).numpy())
        width = items.shape[-1]
        return {"utility": np.concatenate(out) if out else np.zeros((0, width), np.float32)}

    def state_dict(self) -> dict[str, np.ndarray]:
        """RecSim NG's user state, one array per field (first axis: users)."""
        return {k: v.numpy() for k, v in self.state.items()}

    def load_state_dict(self, arrays: dict[str, np.ndarray]) -> None:
        """Replace the user state (same fields and shapes as :meth:`state_dict`)."""
        if set(arrays) != set(self.state):
            raise KeyError(f"user state fields {sorted(arrays)}, expected {sorted(self.state)}")
        new = {}
        for key, old in self.state.items():
            if tuple(arrays[key].shape) != tuple(old.shape):
                raise ValueError(
                    f"user state `{key}` of shape {tuple(arrays[key].shape)}, "
                    f"expected {tuple(old.shape)}"
                )
            new[key] = tf.constant(arrays[key].astype(old.dtype.as_numpy_dtype))
        self.state = new
