"""The content ecosystem: creators (human and AIGC) publish items that age out.

Each creator has a topic and a topic vector; each step the ecosystem publishes
``items_per_step`` items. An item is AIGC with the probability the phase schedule gives
for the step (e.g. human-dominated, then coexisting, then AIGC-dominated), and its creator
is drawn among the creators of that source kind. An item's latent embedding scatters
around its creator's vector; its observable features are the latent embedding plus noise;
its latent quality is drawn once. Items retire when their age reaches ``lifetime``.
:meth:`CreatorEcosystem.commission` lets outside code (strategic creators in
``simlab.environments.gym.creators``) choose a creator's topic and have it publish.

The latent :class:`ItemTable` is seen by users (to respond) and metrics (to measure);
agents only ever see the observable :class:`~simlab.batch.Catalog`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import Field, model_validator

from simlab.batch import Catalog
from simlab.rng import Stream
from simlab.scenario import ParamsModel
from simlab.world import WorldContext

from .common import normalize_rows, topic_centres

__all__ = ["Phase", "ItemTable", "CreatorEcosystem"]

HUMAN, AIGC = 0, 1


class Phase(ParamsModel):
    """One phase of the AIGC schedule: ``aigc_share`` of new items until step ``until``."""

    until: int | None = Field(
        None, gt=0, description="Last step (exclusive) of the phase; omit on the last phase."
    )
    aigc_share: float = Field(ge=0.0, le=1.0, description="Share of new items that are AIGC.")


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
    """

    item_ids: np.ndarray
    creator: np.ndarray
    source: np.ndarray
    topic: np.ndarray
    latent: np.ndarray
    features: np.ndarray
    quality: np.ndarray
    published: np.ndarray

    def rows(self, item_ids: np.ndarray) -> np.ndarray:
        """Row index of each (live) item id, any shape."""
        return np.searchsorted(self.item_ids, item_ids)

    def select(self, mask: np.ndarray) -> ItemTable:
        """The rows where ``mask`` is true."""
        return ItemTable(**{k: v[mask] for k, v in self.__dict__.items()})

    @staticmethod
    def concat(a: ItemTable, b: ItemTable) -> ItemTable:
        """Rows of ``a`` then rows of ``b`` (ids of ``b`` must all be larger)."""
        return ItemTable(**{k: np.concatenate([v, b.__dict__[k]]) for k, v in a.__dict__.items()})


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

        @model_validator(mode="after")
        def _check_phases(self) -> CreatorEcosystem.Params:
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
            if self.num_aigc_creators == 0 and any(p.aigc_share > 0 for p in self.phases):
                raise ValueError(
                    "num_aigc_creators is 0 but a phase has aigc_share > 0; add AIGC creators "
                    "or set every aigc_share to 0"
                )
            return self

    def __init__(self, params: CreatorEcosystem.Params, ctx: WorldContext) -> None:
        self.params = params
        self.ctx = ctx
        p, d = params, ctx.dim
        centres = topic_centres(ctx.seed, ctx.num_topics, d, ctx.topic_spread)
        num_creators = p.num_human_creators + p.num_aigc_creators
        cid = np.arange(num_creators)
        self.creator_source = (cid >= p.num_human_creators).astype(np.int8)
        self.creator_topic = Stream(ctx.seed, "content/creator_topic").integers(
            cid, 0, ctx.num_topics
        )
        noise = Stream(ctx.seed, "content/creator_vec").normal(cid, 0, size=d)
        scale = ctx.topic_spread / np.sqrt(d)
        self._centres = centres
        self._creator_offset = p.creator_spread * scale * noise
        self.creator_vec = (centres[self.creator_topic] + self._creator_offset).astype(np.float32)
        self._commissioned: np.ndarray | None = None
        self._next_id = 0
        self._new_sources = np.zeros(0, np.int8)
        self.t = -1
        # the initial catalog is the state after step -1: ages 0..lifetime-1 at t = -1, so the
        # oldest cohort retires at step 0 as step 0's items arrive and the size stays steady
        ages = np.arange(p.initial_items) % p.lifetime
        self.items = self._publish(p.initial_items, published=-1 - ages, share_step=0)

    # ------------------------------------------------------------------ schedule
    def aigc_share(self, t: int) -> float:
        """The AIGC share of new items at step ``t`` under the phase schedule."""
        for ph in self.params.phases:
            if ph.until is None or t < ph.until:
                return ph.aigc_share
        return self.params.phases[-1].aigc_share

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
        self.creator_topic[uniq] = tops[first]
        self.creator_vec[uniq] = (self._centres[tops[first]] + self._creator_offset[uniq]).astype(
            np.float32
        )
        self._commissioned = cids

    # ------------------------------------------------------------------ publishing
    def _publish(
        self,
        n: int,
        published: np.ndarray | int,
        share_step: int,
        creator: np.ndarray | None = None,
    ) -> ItemTable:
        """Create ``n`` new items with consecutive ids (by ``creator`` if given, else drawn)."""
        p, d, seed = self.params, self.ctx.dim, self.ctx.seed
        ids = np.arange(self._next_id, self._next_id + n, dtype=np.int64)
        self._next_id += n
        if creator is not None:
            source = self.creator_source[creator]
        else:
            is_aigc = Stream(seed, "content/source").uniform(ids, 0) < self.aigc_share(share_step)
            source = is_aigc.astype(np.int8)
            num_h, num_a = p.num_human_creators, p.num_aigc_creators
            pick = Stream(seed, "content/creator").uniform(ids, 0)
            creator = np.where(
                is_aigc,
                num_h + np.floor(pick * max(num_a, 1)).astype(np.int64),
                np.floor(pick * num_h).astype(np.int64),
            )
        scale = self.ctx.topic_spread / np.sqrt(d)
        noise = Stream(seed, "content/item_vec").normal(ids, 0, size=d)
        latent = normalize_rows(self.creator_vec[creator] + p.item_spread * scale * noise)
        fnoise = Stream(seed, "content/features").normal(ids, 0, size=d)
        features = latent + p.feature_noise * fnoise / np.sqrt(d)
        quality = p.quality_mean + p.quality_std * Stream(seed, "content/quality").normal(ids, 0)
        return ItemTable(
            item_ids=ids,
            creator=creator,
            source=source,
            topic=self.creator_topic[creator],
            latent=latent.astype(np.float32),
            features=features.astype(np.float32),
            quality=quality.astype(np.float32),
            published=np.broadcast_to(np.asarray(published, np.int64), (n,)).copy(),
        )

    def step(self, t: int, last_exposure: tuple[np.ndarray, np.ndarray] | None) -> None:
        """Retire items that reached their lifetime, then publish this step's items.

        ``last_exposure`` is accepted for creators that react to exposure; these creators
        publish at a constant rate regardless.
        """
        self.t = t
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

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        """The dynamic state: live items, creators' topics and vectors, id counter, step."""
        return {
            "items": dict(self.items.__dict__),
            "creator_topic": self.creator_topic.copy(),
            "creator_vec": self.creator_vec.copy(),
            "next_id": self._next_id,
            "new_sources": self._new_sources,
            "t": self.t,
            "commissioned": self._commissioned,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned (the creator counts must match)."""
        if state["creator_topic"].shape != self.creator_topic.shape:
            raise ValueError(
                f"Expects {self.creator_topic.shape[0]} creators in the saved state, actual: "
                f"{state['creator_topic'].shape[0]}"
            )
        if state["creator_vec"].shape != self.creator_vec.shape:
            raise ValueError("the saved creator vectors have another dimension")
        self.items = ItemTable(**state["items"])
        self.creator_topic = state["creator_topic"].copy()
        self.creator_vec = state["creator_vec"].copy()
        self._next_id = int(state["next_id"])
        self._new_sources = state["new_sources"]
        self.t = int(state["t"])
        self._commissioned = state["commissioned"]

    # ------------------------------------------------------------------ views
    def catalog(self, knows_source: bool) -> Catalog:
        """The observable catalog of live items."""
        it = self.items
        return Catalog(
            item_ids=it.item_ids,
            features=it.features,
            creator=it.creator,
            age=self.t - it.published,
            source=it.source if knows_source else None,
        )

    def latent(self) -> ItemTable:
        """The latent item table (users and metrics only)."""
        return self.items

    def new_item_sources(self) -> np.ndarray:
        """Sources of the items published at the current step."""
        return self._new_sources
