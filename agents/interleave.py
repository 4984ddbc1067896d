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

__all__ = ["InterleaveNewReranker", "uniform_subsets"]


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
        most = int(count.max())
        if not most:
            return ranked
        # 2 draws per new item and user: draws 0..count-1 pick the slots, draws
        # count..2 count-1 the order (a user's own count: the same draws in any batch)
        u = self._stream.uniform(obs.user_ids, obs.step, size=2 * most)
        slots = uniform_subsets(u[:, :most], count, length)  # (B, most), -1 past count
        order_u = np.take_along_axis(u, count[:, None] + np.arange(most), axis=1)
        # the row's new items in list order (-1 after them), then in the order of their
        # second draws; they fill the slots in increasing order
        at = np.nonzero(new)
        items = np.full((b, most), -1, np.int64)
        items[at[0], np.cumsum(new, axis=1)[at] - 1] = ranked[at]
        key = np.where(items >= 0, order_u, np.inf)
        shuffled = np.take_along_axis(items, np.argsort(key, axis=1, kind="stable"), axis=1)
        slot_new = np.zeros((b, length), bool)
        active = np.arange(most) < count[:, None]
        slot_new[np.nonzero(active)[0], slots[active]] = True
        out = np.empty_like(ranked)
        out[slot_new] = shuffled[active]  # row-major: each row's slots in increasing order
        out[~slot_new] = ranked[~new]  # the others, in their order (row-major on both sides)
        return out


def uniform_subsets(u: np.ndarray, count: np.ndarray, length: int) -> np.ndarray:
    """``(B, M)`` a uniformly random ``count``-subset of ``range(length)`` per row, sorted.

    Floyd's algorithm, one column at a time (vectorised over rows): for ``j`` from
    ``length - count`` to ``length - 1`` take ``t`` uniform on ``[0, j]``, or ``j`` itself
    when ``t`` is already taken. O(B M^2), whatever ``length``.

    Args:
        u: ``(B, M)`` uniform draws on (0, 1), ``M >= count.max()``.
        count: ``(B,)`` subset sizes, at most ``length``.
        length: the size of the ground set.

    Returns:
        ``(B, M)`` each row's subset in increasing order, then -1 for the unused entries.
    """
    b, m = u.shape
    taken = np.full((b, m), length, np.int64)  # `length`: no slot yet (sorts last)
    for i in range(m):
        j = length - count + i  # (B,)
        live = j < length  # rows whose subset has an i-th element
        t = np.minimum(np.floor(u[:, i] * (j + 1)).astype(np.int64), j)
        hit = (taken[:, :i] == t[:, None]).any(axis=1)
        taken[:, i] = np.where(live, np.where(hit, j, t), length)
    taken.sort(axis=1)
    taken[taken == length] = -1
    return taken
