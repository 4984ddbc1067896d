"""RecSim NG's interest-evolution users and corpus as simlab components.

``users.model: recsim-ng`` (:class:`RecSimNGUsers`) is a simlab user population whose
users are RecSim NG's own ``InterestEvolutionUser`` objects
(``recsim_ng.applications.recsys_partially_observable_rl``), run in a worker process of
the RecSim NG environment (:mod:`.bridge`): the worker applies RecSim NG's
``next_response``, ``next_state`` and ``ConsumedTimeAsRewardMetrics`` to the slates any
simlab agent serves. ``content.model: recsim-ng-corpus`` (:class:`RecSimNGCorpus`) is the
corpus drawn by RecSim NG's own ``CorpusWithTopicAndQuality.initial_state`` (static, as in
the simulation's ``freeze_corpus=True`` default). The users also run on simlab's native
mirror of that corpus (``recsim-corpus``): both are :class:`RecSimItems` tables where
``latent`` and ``features`` are the document features, ``topic`` and ``quality`` the
document's, and ``length`` its length.

What simlab sees. The engagement of a response is RecSim NG's reward, the consumed time
``sigmoid(-quality) * length`` of the chosen document (0 without a choice). Every user is
served every step (RecSim NG has no arrivals or churn); the user observation RecSim NG
defines is empty, so ``observable_features`` is a zero profile of the feature dimension.
The oracle's ``expected_utility`` is the choice logit ``affinity + 2`` computed by the
user's own affinity model. ``interests()`` are RecSim NG's interest states.

Randomness is simlab's, through the same streams as the native ``interest-evolution``
model: initial interests ``users/interest``, choices ``users/choice`` (one uniform per user
and step, an inverse-CDF draw in the worker), interest-update noise
``users/interest_noise``; the corpus ``content/topic``, ``content/quality`` and
``content/features``. Everything RecSim NG draws is fed from them (see the worker's
``NoiseFeed``), so a user behaves the same whichever shard holds it, and with equal
parameters the RecSim NG users follow the native model's trajectory draw for draw (up to
float32 arithmetic; the native model computes in float64).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from simlab.batch import Feedback, is_row_broadcast
from simlab.errors import ScenarioError
from simlab.rng import Stream
from simlab.scenario import ParamsModel
from simlab.world import WorldContext

from ..recsim_common import (
    AllUsersEachStep,
    CorpusParams,
    RecSimItems,
    StaticCorpus,
    check_dims,
)
from .bridge import Session, WorkerProcess, shared_worker

__all__ = ["RecSimNGUsers", "RecSimNGCorpus"]

#: The doc fields a session is sent (RecSim NG's slate document fields).
_DOC_FIELDS = ("doc_id", "doc_topic", "doc_quality", "doc_features", "doc_length")


class _WorkerParams(ParamsModel):
    """Scenario keys of the RecSim NG worker process."""

    threads: int = Field(
        1, ge=0, description="TensorFlow threads in the RecSim NG worker (0 = one per core)."
    )
    startup_timeout: float = Field(
        300.0, gt=0, description="Seconds to wait for the worker to import RecSim NG."
    )


def _worker(params: _WorkerParams) -> WorkerProcess:
    """The process's shared worker (``DependencyNotInstalled`` when the env is missing)."""
    return shared_worker(threads=params.threads, startup_timeout=params.startup_timeout)


class RecSimNGUsers(AllUsersEachStep):
    """RecSim NG's interest-evolution users, run by RecSim NG (see the module docstring).

    Args:
        params: :class:`RecSimNGUsers.Params`.
        ctx: the world context; ``world.dim`` must equal ``world.num_topics`` (RecSim NG's
            ``num_topics``). With ``ctx.user_range = (lo, hi)`` only users ``lo..hi-1``
            live here (one worker session per shard).

    Raises:
        DependencyNotInstalled: the RecSim NG environment is missing (``simlab extras
            recsim-ng`` creates it).
    """

    class Params(_WorkerParams):
        """Scenario keys of the ``recsim-ng`` user model (RecSim NG's defaults)."""

        num_users: int = Field(1000, gt=0, description="Population size.")
        interest_step_size: float = Field(
            0.1,
            ge=0,
            description="Step of the interest toward (quality > 0) or away from (quality < 0) "
            "a consumed document, times its quality (RecSim NG's interest_step_size).",
        )
        interest_update_noise: float = Field(
            0.0,
            ge=0,
            description="Std of the noise on a consuming user's interest update (RecSim NG's "
            "interest_update_noise_scale; 0 = none, its default).",
        )
        max_user_affinity: float = Field(
            10.0, gt=0, description="M of RecSim NG's interest squash 4M(sigmoid(y/M) - 0.5)."
        )
        no_click_mass: float = Field(0.0, description="Logit of the no-choice option.")
        position_bias: float = Field(
            0.0,
            description="Logit added per slot down the slate (the positional_bias of RecSim "
            "NG's multinomial logit choice model).",
        )

    def __init__(self, params: RecSimNGUsers.Params, ctx: WorldContext) -> None:
        self._bind(params, ctx, "users.model 'recsim-ng'")
        p = params
        z = Stream(ctx.seed, "users/interest").normal(self._uid, 0, size=ctx.num_topics)
        header = {
            "num_users": int(self._uid.shape[0]),
            "num_topics": ctx.num_topics,
            "slate_size": ctx.slate_size,
            "no_click_mass": p.no_click_mass,
            "interest_step_size": p.interest_step_size,
            "interest_update_noise_scale": p.interest_update_noise or None,
            "max_user_affinity": p.max_user_affinity,
            "position_bias": p.position_bias,
        }
        self._session = Session(_worker(p), header, {"initial_normal": z.astype(np.float32)})
        self._initial = self._session.initial_state["interest.state"]
        self._initial.setflags(write=False)
        self._interest = self._initial.copy()
        self._choice = Stream(ctx.seed, "users/choice")
        self._noise = Stream(ctx.seed, "users/interest_noise")
        self._docs: Any = None  # the items object last sent, and its arrays
        self._sent: dict[str, np.ndarray] | None = None

    def __reduce__(self):
        raise TypeError(
            "RecSimNGUsers holds a RecSim NG worker session and cannot be pickled; "
            "checkpoints use state_dict()"
        )

    # ---------------------------------------------------------------- protocol
    def _send_docs(self, items: Any) -> None:
        """Send the document table to the worker unless it already has this one."""
        if items is self._docs:
            return
        length = getattr(items, "length", None)
        if length is None:
            raise ScenarioError(
                "users.model 'recsim-ng' needs documents with a `length` (consumed time = "
                f"sigmoid(-quality) * length); got content items of type {type(items).__name__}"
                "; use content.model: recsim-ng-corpus or recsim-corpus"
            )
        docs = {
            "doc_id": items.item_ids.astype(np.int32),
            "doc_topic": items.topic.astype(np.int32),
            "doc_quality": items.quality.astype(np.float32),
            "doc_features": items.latent.astype(np.float32),
            "doc_length": np.asarray(length, np.float32),
        }
        old = self._sent
        if old is None or any(not np.array_equal(old[k], docs[k]) for k in _DOC_FIELDS):
            self._session.request("docs", docs)
            self._sent = docs
        self._docs = items

    def expected_utility(
        self, t: int, user_ids: np.ndarray, item_ids: np.ndarray, items: Any
    ) -> np.ndarray:
        """``(B, C)`` choice logits ``affinity + 2`` from RecSim NG (privileged: the oracle's)."""
        self._send_docs(items)
        shared = is_row_broadcast(item_ids)  # one candidate list: sent once
        cols = items.rows(item_ids[0] if shared else item_ids).astype(np.int32)
        rows = (user_ids - self.lo).astype(np.int64)
        return self._session.request("utility", {"rows": rows, "items": cols})["utility"]

    def respond(self, t: int, user_ids: np.ndarray, slates: np.ndarray, items: Any) -> Feedback:
        """RecSim NG's response (choice, consumed time) and interest update, on simlab noise."""
        self._send_docs(items)
        arrays = {
            "rows": (user_ids - self.lo).astype(np.int64),
            "slates": items.rows(slates).astype(np.int32),
            "uniform": self._choice.uniform(user_ids, t),
        }
        if self.params.interest_update_noise:
            z = self._noise.normal(user_ids, t, size=self.ctx.num_topics)
            arrays["normal"] = z.astype(np.float32)
        out = self._session.request("respond", arrays)
        self._interest = out["interest"]
        return Feedback(t, user_ids, slates, out["clicked_pos"], out["reward"])

    def close(self) -> None:
        """Free the worker session."""
        self._session.release()

    def __del__(self) -> None:
        session = getattr(self, "_session", None)
        if session is not None:
            session.release(now=False)  # no I/O here: collection may interrupt a request

    # ---------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, np.ndarray]:
        """RecSim NG's user state of users ``lo..hi-1``, one array per field (``interest.*``)."""
        return self._session.request("state")

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`state_dict` returned (for the same user range).

        Raises:
            KeyError: a field is missing or unexpected.
            ValueError: a field has another shape.
        """
        own = self._session.initial_state
        if set(state) != set(own):
            raise KeyError(f"Expects user state fields {sorted(own)}, actual: {sorted(state)}")
        for key, value in state.items():
            if np.shape(value) != own[key].shape:
                raise ValueError(
                    f"Expects user state `{key}` of shape {own[key].shape}, "
                    f"actual shape: {np.shape(value)}"
                )
        self._session.request("load", {k: np.asarray(v) for k, v in state.items()})
        self._interest = np.array(state["interest.state"], np.float32)


class RecSimNGCorpus(StaticCorpus):
    """RecSim NG's static corpus, drawn by RecSim NG's ``CorpusWithTopicAndQuality``.

    The documents are drawn once, in the worker, by RecSim NG's own ``initial_state`` (70%
    "trashy" topics, document quality around its topic's mean with std 0.1, features
    ``N(onehot(topic), 0.7)``, fixed length), fed simlab's noise; they are then kept here
    as plain arrays (:class:`RecSimItems`), so the corpus is picklable and needs the
    worker only while it is built.

    Args:
        params: :class:`RecSimNGCorpus.Params`.
        ctx: the world context; ``world.dim`` must equal ``world.num_topics``.
    """

    class Params(CorpusParams, _WorkerParams):
        """Scenario keys of the ``recsim-ng-corpus`` content model (RecSim NG's defaults)."""

    def __init__(self, params: RecSimNGCorpus.Params, ctx: WorldContext) -> None:
        check_dims(ctx, "content.model 'recsim-ng-corpus'")
        self.params = p = params
        self.ctx = ctx
        ids = np.arange(p.num_docs, dtype=np.int64)
        seed, t_num = ctx.seed, ctx.num_topics
        header = {
            "op": "corpus",
            "num_docs": p.num_docs,
            "num_topics": t_num,
            "topic_min_utility": p.topic_min_utility,
            "topic_max_utility": p.topic_max_utility,
            "video_length": p.doc_length,
        }
        noise = {
            "topic_uniform": Stream(seed, "content/topic").uniform(ids, 0),
            "quality_normal": Stream(seed, "content/quality").normal(ids, 0).astype(np.float32),
            "features_normal": Stream(seed, "content/features")
            .normal(ids, 0, size=t_num)
            .astype(np.float32),
        }
        docs = _worker(p).request(header, noise)[1]
        feats = docs["doc_features"].astype(np.float32)
        self._freeze(
            RecSimItems(
                item_ids=ids,
                creator=ids.copy(),
                source=np.zeros(p.num_docs, np.int8),
                topic=docs["doc_topic"].astype(np.int64),
                latent=feats,
                features=feats,
                quality=docs["doc_quality"].astype(np.float32),
                published=np.full(p.num_docs, -1, np.int64),
                length=docs["doc_length"].astype(np.float32),
            )
        )
