"""How the creator ecosystem makes new items: creators, embeddings, quality, rewrites, style.

Part of :mod:`simlab.environments.content` (see its docstring for the mechanisms).
"""

from __future__ import annotations

import numpy as np

from simlab.rng import Stream

from .common import normalize_rows
from .items import ItemTable

__all__ = ["Publisher"]


class Publisher:
    """Publishing of new items (a mixin of :class:`~simlab.environments.content.CreatorEcosystem`).

    The host provides ``params``, ``ctx``, ``pool`` (the creators), ``adoption``, ``items``
    (the live items), ``_popular``, ``_next_id`` and :meth:`aigc_share`.
    """

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
