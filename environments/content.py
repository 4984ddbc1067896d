"""The content ecosystem: creators (human and AIGC) publish items that age out.

Each creator has a topic and a topic vector; each step the ecosystem publishes
``items_per_step`` items. An item is AIGC with the probability the phase schedule gives
for the step (e.g. human-dominated, then coexisting, then AIGC-dominated; a phase's
``ramp`` moves the share linearly from the previous phase's over its first steps), and its
creator is drawn among the *active* creators of that source kind. An item's latent
embedding scatters around its creator's vector; its observable features are the latent
embedding plus noise; its latent quality is drawn once. Items retire when their age reaches
``lifetime``.

The source-bias mechanisms (Zhou et al., "Source Echo Chamber"), each a knob:

- **Rewrites.** A share ``rewrite_share`` of AIGC items rewrite a popular live human item
  (picked with probability proportional to its impressions at the last step): same topic,
  latent embedding and quality up to ``rewrite_noise``; ``ItemTable.original`` names the
  rewritten item (-1 otherwise). AIGC is cheap: the phase share fixes how much of the
  production is AIGC, and the fewer AIGC creators each publish correspondingly more.
- **Style.** Every AIGC item's *observable* features carry a shared style direction ``s``
  (a fixed unit vector of the seed) times ``style_magnitude``: ``features = latent + noise
  + style_magnitude * s``. Users' utility uses the latent embedding only, so they do not
  value the style (``users.source_preference``, default 0, is the separate knob for users
  who do). A content-based scorer that builds user vectors from clicked items' features can
  latch onto ``s``: the more AIGC a user clicked, the more AIGC it is shown.
- **Encoder anisotropy.** Every item's observable features, human ones included, carry
  ``anisotropy * s`` on top: the content encoder's embeddings share a common direction, and
  AIGC text lies further along it (``features = latent + noise + (anisotropy +
  style_magnitude * [AIGC]) * s``). A user vector built from clicked features then leans
  toward ``s`` whatever the user clicked, so a similarity scorer ranks AIGC higher for
  every user -- Zhou et al.'s finding that a neural recommender favours AIGC even when
  trained on human content only -- and leans further the more AIGC the user clicked. With
  ``style_magnitude`` 0 the common part is the same for every item and ranks nothing.
- **Creator economics** (:mod:`simlab.environments.creator_pool`): creators whose items get
  fewer than ``exit_threshold`` impressions for ``exit_patience`` steps in a row exit; each
  step ``creators_per_step`` new creators enter, AIGC with the phase's probability.
:meth:`CreatorEcosystem.commission` lets outside code (strategic creators in
``simlab.environments.gym.creators``) choose a creator's topic and have it publish.

The latent :class:`ItemTable` is seen by users (to respond) and metrics (to measure);
agents only ever see the observable :class:`~simlab.batch.Catalog`.
"""

from __future__ import annotations

import numpy as np

from simlab.batch import Catalog, lookup_sorted
from simlab.rng import Stream
from simlab.world import WorldContext

from .adoption import Adoption
from .common import topic_centres
from .content_params import CreatorEcosystemParams, Phase
from .content_publish import Publisher
from .creator_pool import CreatorPool, CreatorTable
from .items import ItemTable, observable_catalog

__all__ = [
    "Phase",
    "ItemTable",
    "CreatorEcosystem",
    "CreatorEcosystemParams",
    "observable_catalog",
]


class CreatorEcosystem(Publisher):
    """Human and AIGC creators publishing items on a phase schedule.

    Args:
        params: :class:`CreatorEcosystem.Params`.
        ctx: the world context (seed, latent space).
    """

    Params = CreatorEcosystemParams

    def __init__(self, params: CreatorEcosystem.Params, ctx: WorldContext) -> None:
        self.params = params
        self.ctx = ctx
        p, d = params, ctx.dim
        centres = topic_centres(ctx.seed, ctx.num_topics, d, ctx.topic_spread)
        scale = ctx.topic_spread / np.sqrt(d)
        self.pool = CreatorPool(
            ctx.seed, centres, p.creator_spread * scale, p.num_human_creators, p.num_aigc_creators
        )
        self.adoption = Adoption(p.adoption, ctx.seed) if p.production == "adoption" else None
        if self.adoption is not None:  # every creator chooses; the initial kinds do not apply
            self.pool.source = self.adoption.initial_modes(np.arange(self.pool.num_creators))
        self._clicks: tuple[np.ndarray, np.ndarray] | None = None  # last step's clicked items
        style = Stream(ctx.seed, "content/style").normal(np.zeros(1, np.int64), 0, size=d)[0]
        self.style = (style / np.linalg.norm(style)).astype(np.float32)
        self._commissioned: np.ndarray | None = None
        self._next_id = 0
        self._new_sources = np.zeros(0, np.int8)
        self._popular: tuple[np.ndarray, np.ndarray] | None = None  # human items, impressions
        self.t = -1
        # the initial catalog is the state after step -1: ages 0..lifetime-1 at t = -1, so the
        # oldest cohort retires at step 0 as step 0's items arrive and the size stays steady
        ages = np.arange(p.initial_items) % p.lifetime
        self.items = self._publish(p.initial_items, published=-1 - ages, share_step=0)

    # ------------------------------------------------------------------ creators
    @property
    def creator_source(self) -> np.ndarray:
        """``(C,)`` source of every creator ever seen (0 human, 1 AIGC)."""
        return self.pool.source

    @property
    def creator_topic(self) -> np.ndarray:
        """``(C,)`` topic of every creator."""
        return self.pool.topic

    @property
    def creator_vec(self) -> np.ndarray:
        """``(C, d)`` creator vectors."""
        return self.pool.vec

    def creators(self) -> CreatorTable:
        """Who is active, entered and exited (for metrics)."""
        return self.pool.table()

    # ------------------------------------------------------------------ schedule
    def aigc_share(self, t: int) -> float:
        """The AIGC share of new items at step ``t`` under the phase schedule (with ramps)."""
        phases = self.params.phases
        # the first phase not over at t (the last one once every phase is over)
        last = len(phases) - 1
        i = next((i for i, ph in enumerate(phases) if ph.until is None or t < ph.until), last)
        ph = phases[i]
        if i == 0 or ph.ramp == 0:
            return ph.aigc_share
        before = phases[i - 1]  # its `until` is where this phase starts
        frac = min(1.0, (t - before.until + 1) / ph.ramp)
        return before.aigc_share + (ph.aigc_share - before.aigc_share) * frac

    # ------------------------------------------------------------------ steering hook
    def commission(self, creator_ids: np.ndarray, topics: np.ndarray) -> None:
        """Steer creators: at the next :meth:`step` each listed creator publishes one item.

        This is the hook for strategic creators (``simlab.environments.gym.creators``). Creator
        ``creator_ids[i]`` moves to topic ``topics[i]`` for good (its vector becomes that
        topic's centre plus the creator's own fixed offset, so later background items by it
        follow too) and publishes one item at the next step, on top of ``items_per_step``.
        A creator listed ``m`` times publishes ``m`` items. Without a call, nothing changes.

        Args:
            creator_ids: ``(M,)`` creator ids in ``[0, num_creators)``.
            topics: ``(M,)`` topic ids in ``[0, num_topics)``; equal for repeated creators.

        Raises:
            ValueError: on mismatched shapes, out-of-range ids, or one creator given two topics.
        """
        cids = np.asarray(creator_ids, np.int64).ravel()
        tops = np.asarray(topics, np.int64).ravel()
        num_creators, num_topics = self.creator_topic.shape[0], self.ctx.num_topics
        if cids.shape != tops.shape:
            raise ValueError(
                f"Expects `creator_ids` and `topics` of one shape, actual shapes: "
                f"{cids.shape} and {tops.shape}"
            )
        if cids.size and not (0 <= cids.min() and cids.max() < num_creators):
            raise ValueError(
                f"Expects `creator_ids` in [0, {num_creators}), actual values: {cids.tolist()}"
            )
        if tops.size and not (0 <= tops.min() and tops.max() < num_topics):
            raise ValueError(
                f"Expects `topics` in [0, {num_topics}), actual values: {tops.tolist()}"
            )
        uniq, first = np.unique(cids, return_index=True)
        if not np.array_equal(tops, tops[first][np.searchsorted(uniq, cids)]):
            raise ValueError("Expects one topic per creator in `commission`, got two for one")
        self.pool.move(uniq, tops[first])
        self._commissioned = cids

    def step(self, t: int, last_exposure: tuple[np.ndarray, np.ndarray] | None) -> None:
        """Creators exit and enter, items retire, then this step's items are published.

        ``last_exposure`` (item ids and impressions at step t-1) drives creator exits and
        which human items are popular enough to be rewritten.
        """
        self.t = t
        self._react(t, last_exposure)
        keep = (t - self.items.published) < self.params.lifetime
        new = self._publish(self.params.items_per_step, published=t, share_step=t)
        if self._commissioned is not None:
            extra = self._publish(
                self._commissioned.shape[0], published=t, share_step=t, creator=self._commissioned
            )
            new = ItemTable.concat(new, extra)
            self._commissioned = None
        self._new_sources = new.source
        self.items = ItemTable.concat(self.items.select(keep), new)

    def _react(self, t: int, last_exposure: tuple[np.ndarray, np.ndarray] | None) -> None:
        """Creator exits and entries, and the popular human items, from last step's exposure."""
        p = self.params
        items = self.items
        counts = np.zeros(items.item_ids.shape[0])
        if last_exposure is not None and last_exposure[0].size:
            shown_ids, shown_counts = last_exposure
            pos, found = lookup_sorted(items.item_ids, shown_ids)
            counts[pos[found]] = shown_counts[found]
        if p.exit_threshold > 0 and last_exposure is not None:
            per_creator = self.pool.exposure(items.creator, counts)
            self.pool.settle(t, per_creator, p.exit_threshold, p.exit_patience)
        entered = self.pool.enter(t, p.creators_per_step, self.aigc_share(t))
        if self.adoption is not None:
            if last_exposure is not None:  # last step's rewards, then this step's revisions
                reward = counts if p.adoption.signal == "impressions" else self._clicked(items)
                self.adoption.observe(items.source, reward)
            self.pool.source = self.adoption.revise(t, self.pool.source, self.pool.active)
            self.pool.source[entered] = self.adoption.choose(entered, self.adoption.delta)
        if p.rewrite_share > 0:
            human = items.source == 0
            weight = counts[human] if counts[human].any() else np.ones(int(human.sum()))
            self._popular = (items.item_ids[human], weight)

    def record_clicks(self, item_ids: np.ndarray) -> None:
        """The step's clicked items (one entry per click), for a click reward signal."""
        self._clicks = np.unique(item_ids, return_counts=True)

    def _clicked(self, items: ItemTable) -> np.ndarray:
        """``(N,)`` the last step's clicks of each live item."""
        out = np.zeros(items.item_ids.shape[0])
        if self._clicks is not None:
            pos, found = lookup_sorted(items.item_ids, self._clicks[0])
            out[pos[found]] = self._clicks[1][found]
        return out

    # ------------------------------------------------------------------ black-box rewriter
    def rewrite_features(self, item_ids: np.ndarray, features: np.ndarray) -> np.ndarray:
        """The observable features of an "LLM rewrite" of each item (a black box for agents).

        A rewrite carries the AIGC style once more and fresh feature noise:
        ``features + style_magnitude * s + feature_noise * z / sqrt(d)``, ``z`` keyed by the
        item id. Human items become AIGC-like copies, AIGC items re-rewritten copies. This
        is what Zhou et al.'s black-box debiasing needs — a rewrite function, no source
        labels — and exposes no latent truth.
        """
        p, d = self.params, self.ctx.dim
        z = Stream(self.ctx.seed, "content/llm_rewrite").normal(np.asarray(item_ids), 0, size=d)
        out = features + p.style_magnitude * self.style + p.feature_noise * z / np.sqrt(d)
        return out.astype(np.float32)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        """The dynamic state: live items, creators' topics and vectors, id counter, step."""
        return {
            "items": dict(self.items.__dict__),
            "pool": {k: v.copy() for k, v in vars(self.pool).items() if isinstance(v, np.ndarray)},
            "next_id": self._next_id,
            "new_sources": self._new_sources,
            "popular": self._popular,
            "t": self.t,
            "commissioned": self._commissioned,
            "clicks": self._clicks,
            "adoption": None if self.adoption is None else self.adoption.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned (same dimension)."""
        pool = state["pool"]
        if pool["vec"].shape[1] != self.pool.vec.shape[1]:
            raise ValueError("the saved creator vectors have another dimension")
        for key, value in pool.items():
            if key != "centres":
                setattr(self.pool, key, value.copy())
        self.items = ItemTable(**state["items"])
        self._next_id = int(state["next_id"])
        self._new_sources = state["new_sources"]
        self._popular = state["popular"]
        self.t = int(state["t"])
        self._commissioned = state["commissioned"]
        self._clicks = state.get("clicks")
        if self.adoption is not None and state.get("adoption") is not None:
            self.adoption.load_state_dict(state["adoption"])

    # ------------------------------------------------------------------ views
    def catalog(self, knows_source: bool) -> Catalog:
        """The observable catalog of live items."""
        return observable_catalog(self.items, self.t, knows_source)

    def latent(self) -> ItemTable:
        """The latent item table (users and metrics only)."""
        return self.items

    def new_item_sources(self) -> np.ndarray:
        """Sources of the items published at the current step."""
        return self._new_sources
