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

from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import Field

from simlab.batch import Catalog, Feedback, is_row_broadcast
from simlab.errors import ScenarioError
from simlab.rng import Stream
from simlab.scenario import ParamsModel
from simlab.world import WorldContext

from .common import Scratch, slate_rows
from .content import ItemTable, observable_catalog

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


def squash(y: np.ndarray, max_affinity: float) -> np.ndarray:
    """RecSim NG's soft saturation ``4 M (sigmoid(y / M) - 0.5)``: about ``y`` near 0, within +-2M.

    >>> float(squash(np.array(0.0), 10.0)), round(float(squash(np.array(1.0), 10.0)), 5)
    (0.0, 0.99917)
    """
    return 4.0 * max_affinity * (0.5 * np.tanh(0.5 * y / max_affinity))


def _squash_into(y: np.ndarray, max_affinity: float, out: np.ndarray) -> np.ndarray:
    """:func:`squash` of ``y`` written into ``out`` (may be ``y``), the same operations in order."""
    np.multiply(y, 0.5, out=out)
    out /= max_affinity
    np.tanh(out, out=out)
    out *= 0.5
    out *= 4.0 * max_affinity
    return out


def topic_means(num_topics: int, trashy_share: float, lo: float, hi: float) -> np.ndarray:
    """``(T,)`` mean topic qualities: trashy ``linspace(lo, 0)``, then ``linspace(0, hi)``.

    >>> topic_means(2, 0.7, -1.0, 1.0).tolist(), topic_means(5, 0.7, -1.0, 1.0).tolist()
    ([-1.0, 0.0], [-1.0, -0.5, 0.0, 0.0, 1.0])
    """
    trashy = int(num_topics * trashy_share)
    return np.concatenate(
        [np.linspace(lo, 0.0, trashy), np.linspace(0.0, hi, num_topics - trashy)]
    ).astype(np.float64)


@dataclass
class RecSimItems(ItemTable):
    """The corpus as simlab's latent item table, plus each document's ``length``.

    ``latent`` and ``features`` are both the document features (``(N, T)``), ``topic`` the
    document topic, ``quality`` its quality; ``creator`` is the document id (RecSim NG has no
    creators) and ``source`` is 0 (human) throughout.
    """

    length: np.ndarray | None = None

    def rows(self, item_ids: np.ndarray) -> np.ndarray:
        """Row index of each (live) item id, any shape (the id itself for ids ``0..N-1``)."""
        n = self.item_ids.shape[0]
        if n and self.item_ids[0] == 0 and self.item_ids[-1] == n - 1:  # sorted, unique
            return np.asarray(item_ids)
        return np.searchsorted(self.item_ids, item_ids)

    def select(self, mask: np.ndarray) -> RecSimItems:
        """The rows where ``mask`` is true."""
        return RecSimItems(**{k: v[mask] for k, v in self.__dict__.items()})


def distances(x: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Euclidean distances of interests ``x`` (B, d) to documents ``f``.

    ``f`` is ``(B, K, d)`` (each user's own documents; result ``(B, K)``, float64) or
    ``(C, d)`` (documents shared by every user; result ``(B, C)``, float32 to halve the
    memory traffic of large candidate sets). For small ``d`` (RecSim NG's 2 topics) a loop
    over the dimensions beats numpy's reductions over a short last axis several times.

    >>> distances(np.zeros((1, 2)), np.array([[3.0, 4.0]])).tolist()
    [[5.0]]
    """
    shared = f.ndim == 2
    if shared:
        x = x.astype(np.float32)
        f = f.astype(np.float32).T[None]  # (1, d, C): dimension j is f[:, j] below
        out_shape = (x.shape[0], f.shape[2])
    else:
        f = f.transpose(0, 2, 1)  # (B, d, K)
        out_shape = f.shape[::2]
    if x.shape[1] > 16:
        cross = np.einsum("bd,bdk->bk", x, f)
        d2 = (x * x).sum(1)[:, None] + (f * f).sum(1) - 2.0 * cross
        return np.sqrt(np.maximum(d2, 0.0, out=d2), out=d2)
    acc = np.zeros(out_shape, np.float32 if shared else np.float64)
    for j in range(x.shape[1]):
        acc += np.square(f[:, j, :] - x[:, j, None])
    return np.sqrt(acc, out=acc)


def check_dims(ctx: WorldContext, who: str) -> None:
    """RecSim NG's models need ``world.dim == world.num_topics``; a ScenarioError otherwise."""
    if ctx.dim != ctx.num_topics:
        raise ScenarioError(
            f"{who}: document features and interests live in R^num_topics, so world.dim must "
            f"equal world.num_topics; got world.dim={ctx.dim}, world.num_topics="
            f"{ctx.num_topics} (RecSim NG's default is 2 and 2)"
        )


def _dim_errors(scenario: Any, where: str) -> list[str]:
    world = scenario.world
    if world.dim == world.num_topics:
        return []
    return [
        f"{where}: document features and interests live in R^num_topics, so world.dim must "
        f"equal world.num_topics; got world.dim={world.dim}, world.num_topics="
        f"{world.num_topics} (RecSim NG's default is 2 and 2)"
    ]


class StaticCorpus:
    """A content model whose documents never change: the protocol around a fixed table.

    A subclass builds its :class:`RecSimItems` and passes them to :meth:`_freeze`.
    """

    items: RecSimItems

    @classmethod
    def check_scenario(cls, params: Any, scenario: Any) -> list[str]:
        """Validate-time rule: RecSim's documents need ``world.dim == world.num_topics``."""
        return _dim_errors(scenario, "content.model")

    def _freeze(self, items: RecSimItems) -> None:
        self.items = items
        for arr in items.__dict__.values():
            arr.setflags(write=False)
        self._no_new = np.zeros(0, np.int8)
        self.t = -1

    def step(self, t: int, last_exposure: tuple[np.ndarray, np.ndarray] | None) -> None:
        """Nothing changes: the corpus is static."""
        self.t = t

    def catalog(self, knows_source: bool) -> Catalog:
        """Every document with its features (``source`` all human when the platform knows it)."""
        return observable_catalog(self.items, self.t, knows_source)

    def latent(self) -> RecSimItems:
        """The documents (users and metrics only)."""
        return self.items

    def new_item_sources(self) -> np.ndarray:
        """No document is published after the start: ``(0,)``."""
        return self._no_new

    def state_dict(self) -> dict[str, int]:
        """The step (the documents are a function of the seed)."""
        return {"t": self.t}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.t = int(state["t"])


class CorpusParams(ParamsModel):
    """Scenario keys shared by RecSim NG's corpus models (native and RecSim NG's own)."""

    num_docs: int = Field(100, gt=0, description="Documents in the (static) corpus.")
    topic_min_utility: float = Field(
        -1.0, le=0, description="Mean quality of the worst trashy topic."
    )
    topic_max_utility: float = Field(
        1.0, ge=0, description="Mean quality of the best nutritious topic."
    )
    doc_length: float = Field(
        2.0, gt=0, description="Length of every document (consumed time = share * length)."
    )


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
            0.1, ge=0, description="Std of a document's quality around its topic's mean."
        )
        doc_feature_std: float = Field(
            0.7, ge=0, description="Std of the noise on a document's one-hot topic features."
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


class AllUsersEachStep:
    """Population protocol pieces shared by the RecSim NG-style users.

    Every user of the shard arrives every step, the platform observes nothing of them, and
    their interests are ``_interest`` (current) and ``_initial``. Subclasses call
    :meth:`_bind` first and then set ``_interest`` and ``_initial``.
    """

    ctx: WorldContext
    _uid: np.ndarray
    _interest: np.ndarray
    _initial: np.ndarray
    _zeros: np.ndarray | None = None

    @classmethod
    def check_scenario(cls, params: Any, scenario: Any) -> list[str]:
        """Validate-time rules: ``world.dim == world.num_topics``; documents with a length."""
        out = _dim_errors(scenario, "users.model")
        if not issubclass(scenario.content.cls, StaticCorpus):
            out.append(
                f"users.model: '{scenario.users.model}' users consume documents with a `length` "
                f"(RecSim's corpus); content.model '{scenario.content.model}' has none; use "
                "content.model: recsim-corpus (or recsim-ng-corpus)"
            )
        return out

    def _bind(self, params: Any, ctx: WorldContext, model: str) -> None:
        """Check the dimensions and take the shard's users ``lo..hi-1`` (all without a range)."""
        check_dims(ctx, model)
        self.params = params
        self.ctx = ctx
        self.num_users = params.num_users
        self.lo, self.hi = ctx.user_range or (0, params.num_users)
        self._uid = np.arange(self.lo, self.hi, dtype=np.int64)

    def arrivals(self, t: int) -> np.ndarray:
        """Every user of the shard, every step."""
        return self._uid

    def observable_features(self, user_ids: np.ndarray) -> np.ndarray:
        """``(B, d)`` zeros: RecSim NG's interest-evolution user shows the platform nothing."""
        b = user_ids.shape[0]
        if self._zeros is None or self._zeros.shape[0] < b:
            self._zeros = np.zeros((b, self.ctx.dim), np.float32)
            self._zeros.setflags(write=False)
        return self._zeros[:b]

    def interests(self) -> tuple[np.ndarray, np.ndarray]:
        """``(current, initial)`` interests of users ``lo..hi-1``, read-only views."""
        cur = self._interest.view()
        cur.setflags(write=False)
        return cur, self._initial


class InterestEvolutionUsers(AllUsersEachStep):
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
        if item_ids.ndim == 2 and item_ids.shape[0] > 1 and item_ids.strides[0] == 0:
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

    def _weights(self, x: np.ndarray, f: np.ndarray) -> np.ndarray:
        """``(B, K + 1)`` unnormalised choice weights ``exp(logit - c)`` (no choice last).

        ``c`` bounds every logit from above (distances are non-negative), so no weight
        overflows; rows whose weights all underflow (logits far below ``c``) are rescaled by
        their own maximum.
        """
        p = self.params
        b, k = f.shape[:2]
        bias = p.position_bias * np.arange(k)
        top = max(p.no_click_mass, p.affinity_offset + float(bias.max()))
        w = np.empty((b, k + 1))
        np.subtract(p.affinity_offset - top + bias, distances(x, f), out=w[:, :k])
        w[:, k] = p.no_click_mass - top
        np.exp(w, out=w)
        low = w.max(axis=1) < 1e-200
        if low.any():
            logits = np.log(np.maximum(w[low], 1e-300))  # only reached in extreme settings
            logits[:, :k] = p.affinity_offset + bias - distances(x[low], f[low])
            logits[:, k] = p.no_click_mass
            w[low] = np.exp(logits - logits.max(axis=1, keepdims=True))
        return w

    def _probs(self, x: np.ndarray, f: np.ndarray) -> np.ndarray:
        """``(B, K + 1)`` choice probabilities of interests ``x`` (B, d), slates ``f`` (B, K, d)."""
        w = self._weights(x, f)
        return w / w.sum(axis=1, keepdims=True)

    def _rows_of(self, user_ids: np.ndarray) -> slice | np.ndarray:
        """Local rows of ``user_ids``: a slice when they are the whole shard (every step here)."""
        n = self.hi - self.lo
        if user_ids.shape[0] == n and n and user_ids[0] == self.lo and user_ids[-1] == self.hi - 1:
            return slice(None)  # increasing, unique ids spanning the range: all of them
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
        consumed = np.where(clicked, length[crow] / (1.0 + np.exp(q)), 0.0)  # sigmoid(-q) * L
        y = x
        if p.interest_step_size and clicked.any():
            fc = items.latent[crow]  # (B, d) the chosen (or last) document's features
            y = x + (p.interest_step_size * q * clicked)[:, None] * (fc - x)
        if p.interest_update_noise and clicked.any():
            z = self._noise.normal(user_ids[clicked], t, size=x.shape[1])
            y = y.copy() if y is x else y
            y[clicked] += p.interest_update_noise * z
        if isinstance(loc, slice):  # the whole shard: squash straight into the interests
            _squash_into(y, p.max_user_affinity, self._interest)
        else:
            self._interest[loc] = squash(y, p.max_user_affinity)
        return Feedback(t, user_ids, slates, clicked_pos, consumed.astype(np.float32))

    def _choose(
        self, t: int, user_ids: np.ndarray, x: np.ndarray, rows: np.ndarray, items: RecSimItems
    ) -> np.ndarray:
        """``(B,)`` chosen slot of each user, ``K`` for no choice (inverse-CDF draws).

        Computes what ``cumsum(_weights(x, latent[rows]))`` and one uniform per user give,
        with the same float64 operations in the same order (so the same choices), but slot
        by slot over all users — ``(K + 1, B)`` arrays — and without gathering the ``(B, K,
        d)`` slate features; a slate shared by every user (``rows`` a row broadcast) is
        looked up once. Settings where a row's weights may underflow, and ``d > 16``, take
        the general path.
        """
        p = self.params
        b, k = rows.shape
        d = x.shape[1]
        if d > 16 or b == 0:
            return self._choose_general(t, user_ids, x, rows, items)
        bias = p.position_bias * np.arange(k)
        top = max(p.no_click_mass, p.affinity_offset + float(bias.max()))
        shared = is_row_broadcast(rows)
        r = rows[0][:, None] if shared else rows.T  # (K, 1) or (K, B)
        w = self._scratch.get("weights", (k + 1, b))
        dist, tmp = w[:k], self._scratch.get("term", (k, b))
        for j in range(d):  # squared distances summed over the (few) dimensions
            col = np.ascontiguousarray(items.latent[:, j])[r]  # (K, B) or (K, 1) float32
            np.subtract(col, x[:, j], out=tmp if j else dist)
            if j:
                np.square(tmp, out=tmp)
                dist += tmp
            else:
                np.square(dist, out=dist)
        np.sqrt(dist, out=dist)
        np.subtract((p.affinity_offset - top + bias)[:, None], dist, out=dist)
        w[k] = p.no_click_mass - top
        np.exp(w, out=w)
        if w[k, 0] < 1e-200:  # rows may underflow (extreme settings): the general path
            return self._choose_general(t, user_ids, x, rows, items)
        for j in range(1, k + 1):  # the cumulative sum, as np.cumsum adds (in order)
            np.add(w[j - 1], w[j], out=w[j])
        u = self._choice.uniform(user_ids, t)
        u *= w[k]
        return np.minimum((w <= u).sum(axis=0), k)

    def _choose_general(
        self, t: int, user_ids: np.ndarray, x: np.ndarray, rows: np.ndarray, items: RecSimItems
    ) -> np.ndarray:
        """:meth:`_choose` for any settings, from the ``(B, K, d)`` slate features."""
        k = rows.shape[1]
        cum = np.cumsum(self._weights(x, items.latent[rows]), axis=1)
        u = self._choice.uniform(user_ids, t) * cum[:, -1]
        return np.minimum((cum <= u[:, None]).sum(axis=1), k)

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
