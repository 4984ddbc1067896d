"""Propensities of rankings whose ties are broken at random.

Content filtering, implicit MF, social filtering, popularity and the ideal recommender rank
candidates by a score and order its exact ties (and the items published after their data,
ranked last) uniformly at random, keyed by user, item and step. Such a slate is random
wherever a tie reaches it: before a first fit every score is equal and the slate is as
random as ``random``'s. :func:`tie_propensities` gives the event log each slot's probability
(``1 / g`` for a group of ``g`` tied candidates), so off-policy estimators see that support.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from simlab.batch import Observation, Slates

__all__ = ["TiedRankingMixin", "tie_propensities"]


def tie_propensities(
    scores: np.ndarray, obs: Observation, slates: Slates, horizon: int | None = None
) -> np.ndarray:
    """``(B, K)`` probability of each slate item at its slot under random tie-breaks.

    A ranking by score (best first) whose exact ties (and, with a ``horizon``, the items
    published after it, ranked last) are ordered uniformly at random puts a candidate of a
    group of ``g`` tied candidates, whose ranks are ``s .. s + g - 1``, at each of those
    ranks with probability ``1 / g``, and elsewhere never. A user whose scores are all equal
    (a model before its first fit) gets ``1 / C``, as a random slate does; distinct scores
    give 1 at the item's own rank.

    Args:
        scores: ``(B, C)`` or ``(C,)`` (shared candidates) scores of ``obs.candidates``.
        obs: the observation the slates were ranked for.
        slates: ``(B, K)`` items of ``obs.candidates``, at slots ``0 .. K - 1``.
        horizon: the last step of the model's data, or None.
    """
    b, c = obs.candidates.shape
    keys = -np.array(np.broadcast_to(scores, (b, c)), np.float64)  # ascending: best first
    if horizon is not None:
        late = (obs.step - obs.catalog.age) > horizon  # per live item
        keys[late[obs.catalog.rows(obs.candidates)]] = np.inf  # one group, ranked last
    order = np.argsort(keys, axis=1, kind="stable")
    ranked = np.take_along_axis(keys, order, axis=1)
    new = np.ones((b, c), bool)  # where a run of equal keys starts, per row
    new[:, 1:] = ranked[:, 1:] != ranked[:, :-1]
    run = np.cumsum(new, axis=1) + (np.arange(b) * c)[:, None]  # run id, unique per row
    size = np.bincount(run.ravel())[run]  # (B, C) in ranked order
    first = np.maximum.accumulate(np.where(new, np.arange(c), 0), axis=1)  # run's first rank
    at = _columns(obs.candidates, slates.item_ids)
    g, s = np.empty((b, c), np.int64), np.empty((b, c), np.int64)
    np.put_along_axis(g, order, size, axis=1)  # back to candidate order
    np.put_along_axis(s, order, first, axis=1)
    g, s = np.take_along_axis(g, at, axis=1), np.take_along_axis(s, at, axis=1)
    slot = np.arange(slates.item_ids.shape[1])[None, :]
    return np.where((s <= slot) & (slot < s + g), 1.0 / g, 0.0)


class TiedRankingMixin:
    """Propensities of agents that rank ``_scores(obs)`` with :func:`rank_known_first`.

    Such an agent's ``_scores(obs)`` returns the candidates' ``(B, C)`` scores and the
    horizon of its data (None: no horizon), what its ``act`` ranks.
    """

    logging_policy: ClassVar[str] = "sampled"  # random wherever a tie reaches the slate

    def propensities(self, obs: Observation, slates: Slates) -> np.ndarray:
        """``1 / g`` per slot, ``g`` the candidates tied with the item (1 / C before a fit)."""
        scores, horizon = self._scores(obs)  # type: ignore[attr-defined]
        return tie_propensities(scores, obs, slates, horizon)


def _columns(candidates: np.ndarray, items: np.ndarray) -> np.ndarray:
    """``(B, K)`` column of each of ``items`` in its row of ``candidates`` (each is there)."""
    b, c = candidates.shape
    pairs = (np.arange(b, dtype=np.int64)[:, None] << 32) | candidates
    order = np.argsort(pairs, axis=None, kind="stable")
    want = (np.arange(b, dtype=np.int64)[:, None] << 32) | items
    return order[np.searchsorted(pairs.ravel()[order], want)] % c
