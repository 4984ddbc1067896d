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

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from simlab.batch import Catalog, lookup_sorted
from simlab.rng import Stream
from simlab.scenario import ParamsModel
from simlab.world import WorldContext

from .adoption import Adoption, AdoptionParams
from .common import normalize_rows, topic_centres
from .creator_pool import CreatorPool, CreatorTable

__all__ = ["Phase", "ItemTable", "CreatorEcosystem", "observable_catalog"]

HUMAN, AIGC = 0, 1


class Phase(ParamsModel):
    """One phase of the AIGC schedule: ``aigc_share`` of new items until step ``until``."""

    until: int | None = Field(
        None, gt=0, description="Last step (exclusive) of the phase; omit on the last phase."
    )
    aigc_share: float = Field(ge=0.0, le=1.0, description="Share of new items that are AIGC.")
    ramp: int = Field(
        0,
        ge=0,
        description="Steps over which the share moves linearly from the previous phase's "
        "share to this one's, from the phase's start (0 = a step change).",
    )


@dataclass
class ItemTable:
    """Latent truth about the live items, sorted by id (struct of arrays, ``N`` rows).

    Attributes:
        item_ids: ``(N,)`` int64.
        creator: ``(N,)`` int64.
        source: ``(N,)`` int8, 0 = human, 1 = AIGC.
        topic: ``(N,)`` int64 the creator's topic.
        latent: ``(N, d)`` float32 unit-norm latent embeddings (what users' utility uses).
        features: ``(N, d)`` float32 observable embeddings.
        quality: ``(N,)`` float32 latent quality.
        published: ``(N,)`` int64 publication step (negative for the initial catalog).
        original: ``(N,)`` int64 id of the human item an AIGC rewrite copies, else -1.
    """

    item_ids: np.ndarray
    creator: np.ndarray
    source: np.ndarray
    topic: np.ndarray
    latent: np.ndarray
    features: np.ndarray
    quality: np.ndarray
    published: np.ndarray
    original: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.original is None:
            self.original = np.full(self.item_ids.shape[0], -1, np.int64)

    def rows(self, item_ids: np.ndarray) -> np.ndarray:
        """Row index of each (live) item id, any shape."""
        return lookup_sorted(self.item_ids, item_ids)[0]

    def select(self, mask: np.ndarray) -> ItemTable:
        """The rows where ``mask`` is true."""
        return type(self)(**{k: v[mask] for k, v in self.__dict__.items()})

    @staticmethod
    def concat(a: ItemTable, b: ItemTable) -> ItemTable:
        """Rows of ``a`` then rows of ``b`` (ids of ``b`` must all be larger)."""
        return type(a)(**{k: np.concatenate([v, b.__dict__[k]]) for k, v in a.__dict__.items()})


def observable_catalog(items: ItemTable, t: int, knows_source: bool) -> Catalog:
    """What agents see of ``items`` at step ``t``: ids, features, creators, ages (and sources)."""
    return Catalog(
        item_ids=items.item_ids,
        features=items.features,
        creator=items.creator,
        age=t - items.published,
        source=items.source if knows_source else None,
    )


class CreatorEcosystem:
    """Human and AIGC creators publishing items on a phase schedule.

    Args:
        params: :class:`CreatorEcosystem.Params`.
        ctx: the world context (seed, latent space).
    """

    class Params(ParamsModel):
        """Scenario keys of the ``creators`` content model."""

        num_human_creators: int = Field(100, gt=0, description="Human creators.")
        num_aigc_creators: int = Field(20, ge=0, description="AIGC creators.")
        items_per_step: int = Field(
            20, ge=0, description="Items published per step (0 = no new items)."
        )
        initial_items: int = Field(
            1000, ge=0, description="Items live before step 0 (ages spread over the lifetime)."
        )
        lifetime: int = Field(50, gt=0, description="Steps an item stays live.")
        creator_spread: float = Field(
            0.3, ge=0, description="Creator vector scatter around its topic."
        )
        item_spread: float = Field(0.3, ge=0, description="Item scatter around its creator.")
        feature_noise: float = Field(
            0.3, ge=0, description="Noise between latent embedding and observable features."
        )
        quality_mean: float = Field(0.0, description="Mean latent quality.")
        quality_std: float = Field(0.5, ge=0, description="Std of latent quality.")
        phases: list[Phase] = Field(
            default_factory=lambda: [Phase(aigc_share=0.0)],
            min_length=1,
            description="AIGC share schedule, in increasing order of `until`.",
        )
        style_magnitude: float = Field(
            0.0,
            ge=0,
            description="Length of the shared style direction added to AIGC items' observable "
            "features (users' utility ignores it; 0 = no style).",
        )
        anisotropy: float = Field(
            0.0,
            ge=0,
            description="Length along the style direction that every item's observable "
            "features carry, human items included (a content encoder whose embeddings share "
            "a common direction that AIGC text lies further along; 0 = none).",
        )
        rewrite_share: float = Field(
            0.0,
            ge=0,
            le=1,
            description="Share of AIGC items that rewrite a popular live human item (same "
            "topic, embedding and quality up to rewrite_noise).",
        )
        rewrite_noise: float = Field(
            0.1, ge=0, description="Scatter of a rewrite's embedding and quality."
        )
        exit_threshold: float = Field(
            0.0,
            ge=0,
            description="Impressions per step below which a creator's step counts as low "
            "(0 = creators never exit).",
        )
        exit_patience: int = Field(10, gt=0, description="Low steps in a row before exiting.")
        creators_per_step: int = Field(
            0, ge=0, description="New creators entering each step (AIGC with the phase share)."
        )
        production: Literal["schedule", "adoption"] = Field(
            "schedule",
            description="`schedule`: the AIGC share of new items follows `phases`; "
            "`adoption`: creators choose AIGC or human work from the reward each earns "
            "per item (`adoption`), so the share emerges (`phases` must be left out).",
        )
        adoption: AdoptionParams = Field(
            default_factory=AdoptionParams,
            description="How creators adopt AIGC, with `production: adoption`.",
        )
        aigc_quality_gap: float = Field(
            0.0,
            ge=0,
            description="Latent quality AIGC items lack next to human ones (a trade-off users "
            "feel through quality_weight; 0 = none).",
        )

        @model_validator(mode="after")
        def _check_phases(self) -> CreatorEcosystem.Params:
            default = [Phase(aigc_share=0.0)]
            if self.production == "adoption" and self.phases != default:
                raise ValueError(
                    "production: adoption lets creators choose what they produce, so `phases` "
                    "(a schedule of AIGC shares) must be left out (null in a variant)"
                )
            prev = None
            for i, ph in enumerate(self.phases):
                if ph.until is None and i != len(self.phases) - 1:
                    raise ValueError(
                        f"phases[{i}] has no `until` but is not the last phase; only the last "
                        "phase may omit `until`"
                    )
                if ph.until is not None and prev is not None and ph.until <= prev:
                    raise ValueError(
                        f"phases out of order: phases[{i}].until={ph.until} must be greater "
                        f"than phases[{i - 1}].until={prev}"
                    )
                prev = ph.until
            entry = self.creators_per_step > 0
            if (
                self.num_aigc_creators == 0
                and not entry
                and any(p.aigc_share > 0 for p in self.phases)
            ):
                raise ValueError(
                    "num_aigc_creators is 0 but a phase has aigc_share > 0; add AIGC creators "
                    "(or creators_per_step) or set every aigc_share to 0"
                )
            return self

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
        phases, start = self.params.phases, 0
        for i, ph in enumerate(phases):
            if ph.until is None or t < ph.until or i == len(phases) - 1:
                if i == 0 or ph.ramp == 0:
                    return ph.aigc_share
                prev = phases[i - 1].aigc_share
                frac = min(1.0, (t - start + 1) / ph.ramp)
                return prev + (ph.aigc_share - prev) * frac
            start = ph.until
        return phases[-1].aigc_share

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

    # ------------------------------------------------------------------ publishing
    def _publish(
        self,
        n: int,
        published: np.ndarray | int,
        share_step: int,
        creator: np.ndarray | None = None,
    ) -> ItemTable:
        """Create up to ``n`` new items with increasing ids.

        Their creators are ``creator`` if given, else drawn among the active creators of each
        item's source; an item whose source has no active creator is not published.
        """
        p, d, seed = self.params, self.ctx.dim, self.ctx.seed
        ids = np.arange(self._next_id, self._next_id + n, dtype=np.int64)
        self._next_id += n
        published = np.broadcast_to(np.asarray(published, np.int64), (n,))
        if creator is None and self.adoption is not None:
            # every active creator alike; an item's source is its creator's current mode
            pick = Stream(seed, "content/creator").uniform(ids, 0)
            pool = np.flatnonzero(self.pool.active)
            creator = pool[np.floor(pick * pool.size).astype(np.int64)] if pool.size else pool
            if not pool.size:
                ids, published = ids[:0], published[:0]
        elif creator is None:
            is_aigc = Stream(seed, "content/source").uniform(ids, 0) < self.aigc_share(share_step)
            pick = Stream(seed, "content/creator").uniform(ids, 0)
            creator = np.full(n, -1, np.int64)
            for src, mask in ((0, ~is_aigc), (1, is_aigc)):
                pool = self.pool.active_of(src)
                if pool.size:
                    creator[mask] = pool[np.floor(pick[mask] * pool.size).astype(np.int64)]
            keep = creator >= 0
            ids, creator, published = ids[keep], creator[keep], published[keep]
        source = self.pool.source[creator]
        scale = self.ctx.topic_spread / np.sqrt(d)
        noise = Stream(seed, "content/item_vec").normal(ids, 0, size=d)
        latent = normalize_rows(self.pool.vec[creator] + p.item_spread * scale * noise)
        quality = p.quality_mean + p.quality_std * Stream(seed, "content/quality").normal(ids, 0)
        quality = quality - p.aigc_quality_gap * source
        topic = self.pool.topic[creator]
        original = np.full(ids.shape[0], -1, np.int64)
        if p.rewrite_share > 0 and self._popular is not None:
            latent, quality, topic, original = self._rewrite(ids, source, latent, quality, topic)
        fnoise = Stream(seed, "content/features").normal(ids, 0, size=d)
        features = latent + p.feature_noise * fnoise / np.sqrt(d)
        if p.style_magnitude or p.anisotropy:
            along = p.anisotropy + p.style_magnitude * source[:, None]
            features = features + along * self.style
        return ItemTable(
            item_ids=ids,
            creator=creator,
            source=source,
            topic=topic,
            latent=latent.astype(np.float32),
            features=features.astype(np.float32),
            quality=quality.astype(np.float32),
            published=published.copy(),
            original=original,
        )

    def _rewrite(self, ids, source, latent, quality, topic):
        """Turn a share of the new AIGC items into rewrites of popular live human items."""
        p, d, seed = self.params, self.ctx.dim, self.ctx.seed
        human_ids, weight = self._popular
        draw = Stream(seed, "content/rewrite").uniform(ids, 0, size=2)
        is_rw = (source == 1) & (draw[:, 0] < p.rewrite_share) & (human_ids.size > 0)
        if not is_rw.any():
            return latent, quality, topic, np.full(ids.shape[0], -1, np.int64)
        cdf = np.cumsum(weight) / weight.sum()
        pick = np.minimum(np.searchsorted(cdf, draw[is_rw, 1], side="right"), cdf.size - 1)
        orig_rows = self.items.rows(human_ids[pick])
        noise = Stream(seed, "content/rewrite_vec").normal(ids[is_rw], 0, size=d + 1)
        scale = self.ctx.topic_spread / np.sqrt(d)
        latent = latent.copy()
        latent[is_rw] = normalize_rows(
            self.items.latent[orig_rows] + p.rewrite_noise * scale * noise[:, :d]
        )
        quality = quality.copy()
        quality[is_rw] = (
            self.items.quality[orig_rows] + p.rewrite_noise * p.quality_std * noise[:, d]
        )
        topic = topic.copy()
        topic[is_rw] = self.items.topic[orig_rows]
        original = np.full(ids.shape[0], -1, np.int64)
        original[is_rw] = human_ids[pick]
        return latent, quality, topic, original

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
            weight = counts[human] if counts[human].sum() > 0 else np.ones(int(human.sum()))
            self._popular = (items.item_ids[human], weight)

    def record_clicks(self, item_ids: np.ndarray) -> None:
        """The step's clicked items (one entry per click), for a click reward signal."""
        self._clicks = np.unique(item_ids, return_counts=True)

    def _clicked(self, items: ItemTable) -> np.ndarray:
        """``(N,)`` the last step's clicks of each live item."""
        out = np.zeros(items.item_ids.shape[0])
        if self._clicks is not None and self._clicks[0].size:
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
