"""RecSim NG's interest-evolution model, native to simlab (numpy, keyed randomness).

Users (``users.model: interest-evolution``) and corpus (``content.model: recsim-corpus``)
follow ``recsim_ng.applications.recsys_partially_observable_rl`` (recsim-ng 0.1.2:
``user.InterestEvolutionUser``, ``corpus.CorpusWithTopicAndQuality`` frozen as
``StaticCorpus``, ``metrics.ConsumedTimeAsRewardMetrics``), with the same defaults:

**Corpus** (static: drawn once, never changes). ``T = world.num_topics`` topics, of which
``int(T * trashy_share)`` are "trashy" with mean qualities ``linspace(topic_min_utility,
0)`` and the rest "nutritious" with ``linspace(0, topic_max_utility)``. Each document has
a uniform topic ``z``, quality ``q ~ N(mean[z], doc_quality_std)``, features
``f ~ N(onehot(z), doc_feature_std)`` in ``R^T`` and length ``doc_length``.

**Users.** Interest ``x ~ N(0, initial_interest_scale^2 I_T)``. Served a slate, a user picks
by multinomial logit among the slate and a no-choice option: document ``k`` has logit
``-||x - f_k|| + affinity_offset + position_bias * k`` and no-choice has
``no_click_mass``. The response is the consumed time ``sigmoid(-q) * length`` of the chosen
document (0 without a choice), which is also RecSim NG's reward and simlab's engagement.
Then the interest moves, for a user who chose document ``c``,
``y = x + interest_step_size * q_c * (f_c - x) (+ interest_update_noise * N(0, I))``
(toward good documents, away from trashy ones), else ``y = x``; and for every served user
``x <- 4 M (sigmoid(y / M) - 0.5)`` with ``M = max_user_affinity`` (a soft squash).

Every user is active every step (RecSim NG has no return or churn model). Choices are
inverse-CDF draws keyed by (user, step) through ``simlab.rng``, so a user behaves the same
whichever shard holds it.

Differences from RecSim NG (distributional equality, not bit equality):

- randomness: simlab's counter-based streams, not TensorFlow's; the same seed gives another
  corpus and other users than RecSim NG's, so cumulative rewards agree in distribution over
  seeds (``tests/environments/test_recsim_crosscheck.py``), not draw for draw;
- arithmetic in float64 for choices and interests (RecSim NG: float32);
- the recommender is simlab's agent; the user observation RecSim NG exposes is empty, so
  ``observable_features`` is a zero profile of the feature dimension (so agents that
  need a profile still run), and the catalog shows each document's features (RecSim NG's
  recommenders also see topic and quality in ``available_docs``; simlab's catalog has no
  place for them: a privileged agent reaches them through the ``Truth`` hook);
- RecSim NG counts ``horizon`` responses per ``execute(num_steps=horizon)``; a simlab run of
  ``steps: horizon`` gives the same number of responses per user.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from simlab.batch import Feedback, is_row_broadcast
from simlab.errors import ScenarioError
from simlab.params import FEATURE_SCALE_MAX
from simlab.rng import Stream
from simlab.scenario import ParamsModel
from simlab.world import WorldContext

from .common import Scratch, slate_rows
from .interest_evolution_choice import LogitChoice, _squash_into, distances, squash
from .recsim_common import (
    AllUsersEachStep,
    CorpusParams,
    RecSimItems,
    StaticCorpus,
    check_dims,
    topic_means,
)

__all__ = [
    "RecSimItems",
    "StaticCorpus",
    "CorpusParams",
    "RecSimCorpus",
    "AllUsersEachStep",
    "InterestEvolutionUsers",
    "check_dims",
    "squash",
    "topic_means",
    "distances",
]


class RecSimCorpus(StaticCorpus):
    """RecSim NG's static corpus of topic, quality and length (see the module docstring).

    Args:
        params: :class:`RecSimCorpus.Params`.
        ctx: the world context; ``world.dim`` must equal ``world.num_topics``.
    """

    class Params(CorpusParams):
        """Scenario keys of the ``recsim-corpus`` content model (RecSim NG's defaults)."""

        trashy_share: float = Field(
            0.7,
            ge=0,
            le=1,
            description="Share of topics that are trashy (negative mean quality); the count "
            "is int(num_topics * trashy_share).",
        )
        doc_quality_std: float = Field(
            0.1,
            ge=0,
            le=FEATURE_SCALE_MAX,
            description="Std of a document's quality around its topic's mean.",
        )
        doc_feature_std: float = Field(
            0.7,
            ge=0,
            le=FEATURE_SCALE_MAX,
            description="Std of the noise on a document's one-hot topic features.",
        )

    def __init__(self, params: RecSimCorpus.Params, ctx: WorldContext) -> None:
        check_dims(ctx, "content.model 'recsim-corpus'")
        self.params = p = params
        self.ctx = ctx
        t_num, seed = ctx.num_topics, ctx.seed
        ids = np.arange(p.num_docs, dtype=np.int64)
        topic = Stream(seed, "content/topic").integers(ids, 0, t_num)
        means = topic_means(t_num, p.trashy_share, p.topic_min_utility, p.topic_max_utility)
        quality = means[topic] + p.doc_quality_std * Stream(seed, "content/quality").normal(ids, 0)
        noise = Stream(seed, "content/features").normal(ids, 0, size=t_num)
        feats = (np.eye(t_num)[topic] + p.doc_feature_std * noise).astype(np.float32)
        self._freeze(
            RecSimItems(
                item_ids=ids,
                creator=ids.copy(),
                source=np.zeros(p.num_docs, np.int8),
                topic=topic,
                latent=feats,
                features=feats,
                quality=quality.astype(np.float32),
                published=np.full(p.num_docs, -1, np.int64),
                length=np.full(p.num_docs, p.doc_length, np.float32),
            )
        )


class InterestEvolutionUsers(AllUsersEachStep, LogitChoice):
    """RecSim NG's interest-evolution users (see the module docstring).

    Args:
        params: :class:`InterestEvolutionUsers.Params`.
        ctx: the world context; interests have dimension ``world.dim``, which must equal
            ``world.num_topics``. With ``ctx.user_range = (lo, hi)`` only users
            ``lo..hi-1`` live here (a user shard).
    """

    class Params(ParamsModel):
        """Scenario keys of the ``interest-evolution`` user model (RecSim NG's defaults)."""

        num_users: int = Field(1000, gt=0, description="Population size.")
        interest_step_size: float = Field(
            0.1,
            ge=0,
            description="Step of the interest toward (quality > 0) or away from (quality < 0) "
            "a consumed document, times its quality.",
        )
        initial_interest_scale: float = Field(
            1.0, ge=0, description="Std of the initial interest in each topic."
        )
        interest_update_noise: float = Field(
            0.0,
            ge=0,
            description="Std of Gaussian noise added to a consuming user's interest update "
            "(RecSim NG's interest_update_noise_scale; 0 = none, its default).",
        )
        max_user_affinity: float = Field(
            10.0,
            gt=0,
            description="M of the squash 4M(sigmoid(y/M) - 0.5) applied to interests each step.",
        )
        no_click_mass: float = Field(0.0, description="Logit of the no-choice option.")
        affinity_offset: float = Field(
            2.0,
            description="Added to the affinity -||x - f|| to make a document's choice logit "
            "(a constant in RecSim NG).",
        )
        position_bias: float = Field(
            0.0,
            description="Logit added per slot down the slate (RecSim NG's positional_bias; "
            "negative = lower slots chosen less).",
        )

    def __init__(self, params: InterestEvolutionUsers.Params, ctx: WorldContext) -> None:
        self._bind(params, ctx, "users.model 'interest-evolution'")
        p = params
        draw = Stream(ctx.seed, "users/interest").normal(self._uid, 0, size=ctx.dim)
        self._initial = p.initial_interest_scale * draw
        self._initial.setflags(write=False)
        self._interest = self._initial.copy()
        self._choice = Stream(ctx.seed, "users/choice")
        self._noise = Stream(ctx.seed, "users/interest_noise")
        self._scratch = Scratch()

    # ---------------------------------------------------------------- protocol
    def expected_utility(
        self, t: int, user_ids: np.ndarray, item_ids: np.ndarray, items: RecSimItems
    ) -> np.ndarray:
        """``(B, C)`` choice logit ``-||x - f|| + affinity_offset`` (privileged: the oracle's).

        Ranking by it puts the documents a user most likely chooses first (with
        ``position_bias`` 0 or negative that maximises the probability of a choice).
        """
        x = self._interest[user_ids - self.lo]
        if is_row_broadcast(item_ids):
            dist = distances(x, items.latent[items.rows(item_ids[0])])  # shared candidates
        else:
            dist = distances(x, items.latent[items.rows(item_ids)])
        return np.subtract(np.float32(self.params.affinity_offset), dist, dtype=np.float32)

    def choice_probs(
        self, user_ids: np.ndarray, slates: np.ndarray, items: RecSimItems
    ) -> np.ndarray:
        """``(B, K + 1)`` probabilities of choosing each slot, then of no choice (last)."""
        x = self._interest[user_ids - self.lo]
        return self._probs(x, items.latent[items.rows(slates)])

    def _rows_of(self, user_ids: np.ndarray) -> slice | np.ndarray:
        """Local rows of ``user_ids``: a slice when they are the whole shard (every step here).

        Served ids are increasing and within the shard (the population's contract), so as
        many of them as the shard has users are all of its users, in order.
        """
        if user_ids.shape[0] == self.hi - self.lo:
            return slice(None)
        return user_ids - self.lo

    def respond(
        self, t: int, user_ids: np.ndarray, slates: np.ndarray, items: RecSimItems
    ) -> Feedback:
        """Choose by multinomial logit, consume (engagement = consumed time), evolve interests.

        Raises:
            ScenarioError: the content has no document ``length`` (use ``recsim-corpus``).
        """
        p = self.params
        length = getattr(items, "length", None)
        if length is None:
            raise ScenarioError(
                "users.model 'interest-evolution' needs documents with a `length` (consumed "
                f"time = sigmoid(-quality) * length); got content items of type "
                f"{type(items).__name__}; use content.model: recsim-corpus"
            )
        b, k = slates.shape
        loc = self._rows_of(user_ids)
        rows = slate_rows(items, slates)
        x = self._interest[loc]
        choice = self._choose(t, user_ids, x, rows, items)  # k = no choice
        clicked = choice < k
        slot = np.minimum(choice, k - 1)
        clicked_pos = np.where(clicked, choice, -1)
        crow = rows[0, slot] if is_row_broadcast(rows) else rows[np.arange(b), slot]
        q = items.quality[crow].astype(np.float64)
        with np.errstate(over="ignore"):  # exp(large) = inf: a consumed time of exactly 0
            consumed = np.where(clicked, length[crow] / (1.0 + np.exp(q)), 0.0)  # sigmoid(-q) * L
        y = x
        if p.interest_step_size and clicked.any():
            fc = items.latent[crow]  # (B, d) the chosen (or last) document's features
            y = x + (p.interest_step_size * q * clicked)[:, None] * (fc - x)
        if p.interest_update_noise and clicked.any():
            z = self._noise.normal(user_ids[clicked], t, size=x.shape[1])
            y[clicked] += p.interest_update_noise * z  # y may be x: rows overwritten below
        if isinstance(loc, slice):  # the whole shard: squash straight into the interests
            _squash_into(y, p.max_user_affinity, self._interest)
        else:
            self._interest[loc] = squash(y, p.max_user_affinity)
        return Feedback(t, user_ids, slates, clicked_pos, consumed.astype(np.float32))

    # ---------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, np.ndarray]:
        """The interests of users ``lo..hi-1`` (first axis: those users)."""
        return {"interest": self._interest.copy()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`state_dict` returned (for the same user range).

        Raises:
            ValueError: the saved interests have another shape.
        """
        value = np.asarray(state["interest"])
        if value.shape != self._interest.shape:
            raise ValueError(
                f"Expects user state `interest` of shape {self._interest.shape}, "
                f"actual shape: {value.shape}"
            )
        self._interest = value.astype(np.float64, copy=True)
