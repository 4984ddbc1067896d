"""Re-rankers: interventions applied by the platform to an agent's ranked list.

A re-ranker receives the agent's ranking of ``depth`` items per user (best first) and
returns a re-ordered ``(B, L)`` ranking; the platform then cuts it to the slate size. It
may also learn from feedback through ``update``. This module holds the base class, the
shared greedy machinery and the item-level re-rankers (popularity penalty, MMR,
exploration floor, style removal); the group-level ones (calibration, xQuAD, FA*IR) are in
:mod:`simlab.agents.rerank_groups`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from pydantic import Field

from simlab.batch import Feedback, Observation, lookup_sorted
from simlab.errors import ScenarioError
from simlab.rng import Stream
from simlab.scenario import ParamsModel

from .base import ItemCounts

__all__ = [
    # base
    "Reranker",
    # re-rankers
    "PopularityPenaltyReranker",
    "MMRReranker",
    "ExplorationFloorReranker",
    "StyleRemovalReranker",
    # helpers
    "rank_relevance",
    "greedy_rerank",
    "order_from_picks",
    "source_labels",
    "history_group_counts",
    "head_items",
    "item_features",
]


class Reranker:
    """Base class of re-rankers: implement :meth:`rerank`, optionally :meth:`update`."""

    Params: type[ParamsModel] = ParamsModel

    def __init__(self, params: ParamsModel, ctx: Any) -> None:
        self.params = params
        self.ctx = ctx

    def rerank(self, obs: Observation, ranked: np.ndarray) -> np.ndarray:
        """Return a re-ordering of ``ranked`` ``(B, L)`` item ids, best first."""
        raise NotImplementedError(f"{type(self).__name__} must implement rerank()")

    def update(self, feedback: Feedback) -> None:
        """Observe one step of feedback (default: nothing)."""


class PopularityPenaltyReranker(Reranker):
    """Push over-exposed items down: ``score = -rank / L - weight * exposure / max exposure``.

    Exposure is the number of impressions an item got so far; ``max exposure`` is the
    largest over the live catalog, so an item's penalty is its own, whoever else is served
    that step. ``weight = 0`` keeps the agent's order; large weights favour the least
    exposed of the agent's top items.
    """

    class Params(ParamsModel):
        """Scenario keys of the popularity-penalty re-ranker."""

        weight: float = Field(0.5, ge=0, description="Strength of the exposure penalty.")

    def __init__(self, params: Params, ctx: Any) -> None:
        super().__init__(params, ctx)
        self._exposure = ItemCounts()

    def rerank(self, obs: Observation, ranked: np.ndarray) -> np.ndarray:
        """Re-order each row by rank minus the exposure penalty."""
        _, length = ranked.shape
        exp = self._exposure.get(0, ranked)  # (B, L)
        top = self._exposure.get(0, obs.catalog.item_ids).max(initial=0.0)
        penalty = self.params.weight * exp / top if top > 0 else np.zeros_like(exp)
        score = -np.arange(length) / length - penalty  # (B, L)
        order = np.argsort(-score, axis=1, kind="stable")
        return np.take_along_axis(ranked, order, axis=1)

    def update(self, feedback: Feedback) -> None:
        """Count impressions."""
        self._exposure.add(0, feedback.slates)


# ---------------------------------------------------------------------------- helpers
# The platform gives re-rankers the agent's ranking, not its scores, so every re-ranker
# below scores the item at rank j (0 = best) of an L-item list by the rank relevance
# s_j = 1 - j / L (in (0, 1], 1 for the agent's top item).


def rank_relevance(length: int) -> np.ndarray:
    """``(L,)`` rank relevance ``s_j = 1 - j / L`` of the items at ranks ``j = 0..L-1``.

    >>> rank_relevance(4).tolist()
    [1.0, 0.75, 0.5, 0.25]
    """
    return 1.0 - np.arange(length, dtype=np.float64) / length


def order_from_picks(picks: np.ndarray, length: int) -> np.ndarray:
    """``(B, L)`` column order: the picked columns first (in pick order), the rest after.

    Args:
        picks: ``(B, n)`` distinct column indices per row.
        length: ``L``, the row length.

    Returns:
        ``(B, L)`` permutation of ``0..L-1`` per row; unpicked columns keep their order.

    >>> order_from_picks(np.array([[2, 0]]), 4).tolist()
    [[2, 0, 1, 3]]
    """
    b, n = picks.shape
    key = np.broadcast_to(np.arange(n, n + length), (b, length)).copy()
    np.put_along_axis(key, picks, np.broadcast_to(np.arange(n), (b, n)), axis=1)
    return np.argsort(key, axis=1)


def greedy_rerank(
    ranked: np.ndarray, k: int, gain: Callable[[np.ndarray | None], np.ndarray]
) -> np.ndarray:
    """Fill ``k`` slots greedily, vectorised over users; the rest keep the agent's order.

    Args:
        ranked: ``(B, L)`` item ids, best first.
        k: number of slots to fill greedily (clipped to ``L``).
        gain: called once per slot with the column ``(B,)`` picked at the previous slot
            (``None`` at the first); returns the ``(B, L)`` finite marginal gain of each
            column. Columns already picked are masked out here.

    Returns:
        ``(B, L)`` re-ordered item ids.
    """
    b, length = ranked.shape
    k = min(k, length)
    taken = np.zeros((b, length), bool)
    picks = np.empty((b, k), np.int64)
    rows = np.arange(b)
    last = None
    for n in range(k):
        score = np.where(taken, -np.inf, gain(last))
        last = np.argmax(score, axis=1)  # ties go to the agent's better-ranked item
        picks[:, n] = last
        taken[rows, last] = True
    return np.take_along_axis(ranked, order_from_picks(picks, length), axis=1)


def source_labels(obs: Observation, who: str) -> np.ndarray:
    """``(N,)`` int64 source of each live item (0 human, 1 AIGC), or a ``ScenarioError``."""
    if obs.catalog.source is None:
        raise ScenarioError(
            f"{who} needs item source labels (human/AIGC), which the platform does not "
            "observe; set platform.knows_source: true, or choose groups that need no labels."
        )
    return obs.catalog.source.astype(np.int64)


def source_rule(scenario: Any, setting: str, instead: str = "") -> list[str]:
    """The ``check_scenario`` line of a re-ranker ``setting`` that reads source labels.

    Without ``platform.knows_source`` the catalog carries no labels, and the re-ranker would
    fail at its first step (:func:`source_labels`): say so when the scenario is validated.
    """
    if scenario.platform.knows_source:
        return []
    return [
        f"{setting} needs item source labels (human/AIGC), which the platform does not "
        f"observe (platform.knows_source: false); set platform.knows_source: true{instead}"
    ]


def history_group_counts(obs: Observation, item_group: np.ndarray, num_groups: int) -> np.ndarray:
    """``(B, G)`` how many of each user's history items fall in each group.

    History items that are no longer in the live catalog are ignored: their observable
    features and labels are gone.

    Args:
        obs: the observation (``history`` is ``(B, H)``, ``PAD``-padded).
        item_group: ``(N,)`` group index of each live catalog item.
        num_groups: ``G``.
    """
    pos, found = lookup_sorted(obs.catalog.item_ids, obs.history)  # (B, H); PAD: not found
    b = obs.history.shape[0]
    flat = np.arange(b)[:, None] * num_groups + item_group[pos]
    counts = np.bincount(flat[found], minlength=b * num_groups)
    return counts.reshape(b, num_groups).astype(np.float64)


def head_items(exposure: ItemCounts, item_ids: np.ndarray, head_share: float) -> np.ndarray:
    """``(N,)`` bool: which of the live items are "head" by exposure so far.

    An item is head when it has been shown at least once and fewer than
    ``head_share * N`` live items have strictly more impressions (items tied at the
    boundary are all head). Before anything has been shown every item is tail.
    """
    exp = exposure.get(0, item_ids)
    n = exp.shape[0]
    num_greater = n - np.searchsorted(np.sort(exp), exp, side="right")
    return (exp > 0) & (num_greater < head_share * n)


def item_features(obs: Observation, ranked: np.ndarray) -> np.ndarray:
    """``(B, L, d)`` float64 observable features of the ranked items."""
    return obs.catalog.features[obs.catalog.rows(ranked)].astype(np.float64)


# ---------------------------------------------------------------------------- calibration
class MMRReranker(Reranker):
    """Maximal marginal relevance: greedy ``argmax lam s_i - (1 - lam) max_{j in S} cos(f_i, f_j)``.

    ``s`` is the rank relevance ``1 - j / L``, ``f`` the observable item features and ``S``
    the items already chosen (the similarity term is 0 for the first slot). ``lam = 1``
    keeps the agent's order; smaller values trade relevance for intra-slate diversity.
    """

    class Params(ParamsModel):
        """Scenario keys of the MMR re-ranker."""

        lam: float = Field(
            0.7, ge=0, le=1, description="lambda: weight of relevance vs dissimilarity."
        )

    def rerank(self, obs: Observation, ranked: np.ndarray) -> np.ndarray:
        """Greedy MMR top K, then the rest in the agent's order."""
        lam = self.params.lam
        feats = item_features(obs, ranked)  # (B, L, d)
        norm = np.linalg.norm(feats, axis=2, keepdims=True)
        unit = feats / np.where(norm > 0, norm, 1)
        rel = rank_relevance(ranked.shape[1])
        max_sim = np.full(ranked.shape, -np.inf)  # (B, L), max cosine to the chosen items
        rows = np.arange(ranked.shape[0])

        def gain(last: np.ndarray | None) -> np.ndarray:
            nonlocal max_sim
            if last is None:  # S is empty: relevance only
                return lam * np.broadcast_to(rel, ranked.shape)
            max_sim = np.maximum(max_sim, np.einsum("bld,bd->bl", unit, unit[rows, last]))
            return lam * rel - (1 - lam) * max_sim

        return greedy_rerank(ranked, self.ctx.slate_size, gain)


# ---------------------------------------------------------------------------- group fairness
class ExplorationFloorReranker(Reranker):
    """Guarantee ``slots`` of the K served positions to rarely shown items.

    An item qualifies when it has fewer than ``min_exposure`` impressions so far (counted
    in :meth:`update`). If the agent's top K holds ``q < slots`` qualifying items, up to
    ``slots - q`` qualifying items are drawn uniformly at random (keyed by user and step)
    from the user's list beyond the top K; they take the last slots of the top K, replacing
    the lowest-ranked non-qualifying items, which move just below the top K. Users without
    qualifying items keep the agent's order.
    """

    class Params(ParamsModel):
        """Scenario keys of the exploration-floor re-ranker."""

        slots: int = Field(
            1, ge=0, le=1000, description="Served positions reserved for rarely shown items."
        )
        min_exposure: int = Field(
            1, ge=1, description="An item with fewer impressions than this qualifies."
        )

    def __init__(self, params: Params, ctx: Any) -> None:
        super().__init__(params, ctx)
        self._exposure = ItemCounts()
        self._stream = Stream(ctx.seed, "rerank/exploration")

    def rerank(self, obs: Observation, ranked: np.ndarray) -> np.ndarray:
        """Swap randomly drawn qualifying items into the last slots of the top K."""
        b, length = ranked.shape
        k = min(self.ctx.slate_size, length)
        pos = np.arange(length)
        qualifies = self._exposure.get(0, ranked) < self.params.min_exposure  # (B, L)
        in_top = pos < k
        have = (qualifies & in_top).sum(axis=1)
        pool = qualifies & ~in_top
        need = np.minimum(np.maximum(min(self.params.slots, k) - have, 0), pool.sum(axis=1))
        # a uniform random subset of size `need`: the pool items with the smallest draws
        u = np.where(pool, self._stream.uniform(obs.user_ids, obs.step, size=length), np.inf)
        draw_rank = np.argsort(np.argsort(u, axis=1), axis=1)
        pick = pool & (draw_rank < need[:, None])
        # drop the `need` lowest-ranked non-qualifying items of the top K
        stay = in_top & ~qualifies
        from_end = np.cumsum(stay[:, ::-1], axis=1)[:, ::-1]  # stay items at or below j
        drop = stay & (from_end <= need[:, None])
        key = np.where(in_top & ~drop, pos, k + 1 + pos).astype(np.float64)
        key = np.where(pick, k + pos / length, key)  # after the kept top items, before the rest
        order = np.argsort(key, axis=1, kind="stable")
        return np.take_along_axis(ranked, order, axis=1)

    def update(self, feedback: Feedback) -> None:
        """Count impressions."""
        self._exposure.add(0, feedback.slates)


# ---------------------------------------------------------------------------- source debiasing
class StyleRemovalReranker(Reranker):
    """Take the shared AIGC "style" direction out of the agent's scores.

    The style direction is estimated on the step's live catalog as ``v = mean(f | AIGC) -
    mean(f | human)`` (labels required: ``platform.knows_source: true``). When the agent
    can score given features (it has ``score(obs, item_ids, features)``, e.g. two-tower),
    each listed item is re-scored with the projection of its features on ``v / |v|``
    removed, and the list is sorted by those scores: exactly the agent's ranking with the
    style direction gone. Otherwise (scores not available) each item is re-scored
    ``s_j - weight * z_j``, with ``s_j = 1 - j / L`` its rank relevance and ``z_j`` its
    projection on ``v / |v|`` standardised over the user's list -- a fixed penalty that
    does not know how much the agent used the style, so it can over- or under-correct.
    A catalog without both sources keeps the order.

    A label-free estimate is not implemented: the style is shared by all AIGC items, so it
    is constant within a creator and vanishes from deviations around creator means.
    """

    class Params(ParamsModel):
        """Scenario keys of the style-removal re-ranker."""

        weight: float = Field(
            0.25,
            ge=0,
            description="Without agent scores only: penalty per standard deviation of style "
            "projection.",
        )

    _scorer: Any = None

    @classmethod
    def check_scenario(cls, params: Params, scenario: Any) -> list[str]:
        """The style direction is estimated from source labels: the platform must see them."""
        return source_rule(scenario, "the style-removal re-ranker")

    def bind_scorer(self, scorer: Any) -> None:
        """Receive the agent's ``score(obs, item_ids, features)`` (the world binds it)."""
        self._scorer = scorer

    def rerank(self, obs: Observation, ranked: np.ndarray) -> np.ndarray:
        """Sort each list by style-free agent scores (or rank relevance minus style)."""
        source = source_labels(obs, "StyleRemovalReranker")
        feats = obs.catalog.features.astype(np.float64)
        aigc = source == 1
        if aigc.all() or not aigc.any():
            return ranked
        style = feats[aigc].mean(axis=0) - feats[~aigc].mean(axis=0)
        size = np.linalg.norm(style)
        if size == 0:
            return ranked
        unit = style / size
        listed = feats[obs.catalog.rows(ranked)]  # (B, L, d)
        proj = listed @ unit  # (B, L)
        if self._scorer is not None:
            cleaned = (listed - proj[..., None] * unit).astype(np.float32)
            score = np.asarray(self._scorer(obs, ranked, cleaned))
        else:
            std = proj.std(axis=1, keepdims=True)
            z = np.where(
                std > 0, (proj - proj.mean(axis=1, keepdims=True)) / np.where(std > 0, std, 1), 0
            )
            score = rank_relevance(ranked.shape[1]) - self.params.weight * z
        order = np.argsort(-score, axis=1, kind="stable")
        return np.take_along_axis(ranked, order, axis=1)
