"""Interleaving new items at random positions (Chaney et al.'s protocol, as in T-RECS).

In Chaney et al.'s simulations the recommender ranks the items it was trained with, and the
items published at the step are inserted into each user's list at uniformly random
positions (T-RECS's ``random_items_per_iter`` with an interleaving function that picks the
newest items): a recommender never ranks an item before it has data on it, yet every new
item is seen. :class:`InterleaveNewReranker` does this to any agent's ranking: the items of
age at most ``max_age`` leave their places and are put, in random order, at a uniformly
random set of positions of the list; the other items keep their order in the remaining
positions. Draws are keyed by (user, step).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from simlab.batch import Observation
from simlab.rng import Stream
from simlab.scenario import ParamsModel

from .rerank import Reranker

__all__ = ["InterleaveNewReranker"]


class InterleaveNewReranker(Reranker):
    """Put each list's new items at uniformly random positions (see module docstring)."""

    class Params(ParamsModel):
        """Scenario keys of the interleave-new re-ranker."""

        max_age: int = Field(
            0, ge=0, description="Items of this age or younger are interleaved (0 = this step's)."
        )

    def __init__(self, params: Params, ctx: Any) -> None:
        super().__init__(params, ctx)
        self._stream = Stream(ctx.seed, "rerank/interleave-new")

    def rerank(self, obs: Observation, ranked: np.ndarray) -> np.ndarray:
        """``ranked`` ``(B, L)`` with its new items moved to random positions."""
        b, length = ranked.shape
        if b == 0 or length == 0:
            return ranked
        cat = obs.catalog
        new = cat.age[cat.rows(ranked)] <= self.params.max_age  # (B, L)
        count = new.sum(axis=1)
        if not count.any():
            return ranked
        u = self._stream.uniform(obs.user_ids, obs.step, size=2 * length)
        most = int(count.max())
        # the `count` positions of smallest draw hold the new items (a uniform set): the
        # row's count-th smallest draw is the threshold (a partial sort of `most` columns)
        part = np.partition(u[:, :length], most - 1, axis=1)[:, :most]
        part.sort(axis=1)
        threshold = np.take_along_axis(part, np.maximum(count - 1, 0)[:, None], axis=1)
        slot_new = (u[:, :length] <= threshold) & (count[:, None] > 0)
        # the new items in a random order (second draws), first in each row
        key = np.where(new, u[:, length:], np.inf)
        first = np.argpartition(key, most - 1, axis=1)[:, :most] if most < length else None
        if first is None:
            first = np.arange(length)[None, :].repeat(b, axis=0)
        first = np.take_along_axis(first, np.argsort(np.take_along_axis(key, first, 1), 1), 1)
        shuffled = np.take_along_axis(ranked, first, axis=1)
        out = np.empty_like(ranked)
        out[slot_new] = shuffled[np.arange(most) < count[:, None]]
        out[~slot_new] = ranked[~new]  # the others, in their order (row-major on both sides)
        return out
