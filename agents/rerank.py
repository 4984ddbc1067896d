"""Re-rankers: interventions applied by the platform to an agent's ranked list.

A re-ranker receives the agent's ranking of ``depth`` items per user (best first) and
returns a re-ordered ``(B, L)`` ranking; the platform then cuts it to the slate size. It
may also learn from feedback through ``update``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from pydantic import Field

from simlab.batch import PAD, Feedback, Observation, lookup_sorted
from simlab.errors import ScenarioError
from simlab.rng import Stream
from simlab.scenario import ParamsModel

from .base import ItemCounts

__all__ = [
    # base
    "Reranker",
    # re-rankers
    "PopularityPenaltyReranker",
    "CalibrationReranker",
    "MMRReranker",
    "XQuADReranker",
    "FairReranker",
    "ExplorationFloorReranker",
    "StyleRemovalReranker",
    # helpers
    "rank_relevance",
    "greedy_rerank",
    "order_from_picks",
    "binom_cdf",
    "fair_quotas",
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

    Exposure is the number of impressions an item got so far. ``weight = 0`` keeps the
    agent's order; large weights favour the least exposed of the agent's top items.
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
        top = exp.max()
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


def history_group_counts(obs: Observation, item_group: np.ndarray, num_groups: int) -> np.ndarray:
    """``(B, G)`` how many of each user's history items fall in each group.

    History items that are no longer in the live catalog are ignored: their observable
    features and labels are gone.

    Args:
        obs: the observation (``history`` is ``(B, H)``, ``PAD``-padded).
        item_group: ``(N,)`` group index of each live catalog item.
        num_groups: ``G``.
    """
    pos, found = lookup_sorted(obs.catalog.item_ids, obs.history)  # (B, H)
    valid = found & (obs.history != PAD)
    b = obs.history.shape[0]
    flat = np.arange(b)[:, None] * num_groups + item_group[pos]
    counts = np.bincount(flat[valid], minlength=b * num_groups)
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
class CalibrationReranker(Reranker):
    """Calibrated recommendations (Steck 2018): match the slate's group mix to the history's.

    Greedily fills the K served slots with ``argmax (1 - lam) sum_{i in S} s_i - lam KL(p || q~)``
    where ``p(g|u)`` is the group mix of the user's live history items (uniform weights),
    ``q(g|S)`` the mix of the items chosen so far (uniform weights) and
    ``q~ = (1 - a) q + a p`` with ``a = smoothing``. ``s`` is the rank relevance
    ``1 - j / L`` (the agent's scores are not available to re-rankers).

    Items carry no observable topic, so groups are either ``clusters``: the nearest of
    ``num_clusters`` centres fitted by k-means (k-means++ start with keyed draws, a fixed
    number of Lloyd iterations) on the step's live catalog features; or ``source``
    (human/AIGC, needs ``platform.knows_source: true``). Users with no live history item
    keep the agent's order.
    """

    class Params(ParamsModel):
        """Scenario keys of the calibration re-ranker."""

        lam: float = Field(
            0.5, ge=0, le=1, description="lambda: weight of the KL miscalibration vs relevance."
        )
        groups: Literal["clusters", "source"] = Field(
            "clusters",
            description="Item categories: k-means clusters of features, or human/AIGC source.",
        )
        num_clusters: int = Field(
            8, ge=2, le=256, description="Number of k-means clusters (groups: clusters)."
        )
        iterations: int = Field(
            10, ge=1, le=100, description="Lloyd iterations of k-means per step."
        )
        smoothing: float = Field(
            0.01, gt=0, lt=1, description="a in q~ = (1 - a) q + a p; keeps the KL finite."
        )

    def __init__(self, params: Params, ctx: Any) -> None:
        super().__init__(params, ctx)
        self._stream = Stream(ctx.seed, "rerank/calibration")

    def item_groups(self, obs: Observation) -> tuple[np.ndarray, int]:
        """``(N,)`` group of each live catalog item and the number of groups ``G``."""
        if self.params.groups == "source":
            return source_labels(obs, "CalibrationReranker with groups: source"), 2
        return kmeans_labels(
            obs.catalog.features.astype(np.float64),
            self.params.num_clusters,
            self.params.iterations,
            self._stream.uniform(np.arange(self.params.num_clusters), obs.step),
        )

    def rerank(self, obs: Observation, ranked: np.ndarray) -> np.ndarray:
        """Greedy calibrated top K, then the rest in the agent's order."""
        p = self.params
        group, num_groups = self.item_groups(obs)
        hist = history_group_counts(obs, group, num_groups)  # (B, G)
        total = hist.sum(axis=1, keepdims=True)
        has_history = total[:, 0] > 0
        target = hist / np.maximum(total, 1)  # p(g|u), (B, G)
        cand_group = group[obs.catalog.rows(ranked)]  # (B, L)
        rel = rank_relevance(ranked.shape[1])
        counts = np.zeros_like(target)  # chosen items per group, (B, G)
        eye = np.eye(num_groups)
        rows = np.arange(ranked.shape[0])

        def gain(last: np.ndarray | None) -> np.ndarray:
            if last is not None:
                counts[rows, cand_group[rows, last]] += 1
            # q if one more item of group g were added: (B, G_added, G)
            q = (counts[:, None, :] + eye) / (counts.sum(axis=1)[:, None, None] + 1)
            q_s = (1 - p.smoothing) * q + p.smoothing * target[:, None, :]
            tgt = target[:, None, :]
            # 0 log 0 = 0; where p > 0, q~ >= a p > 0
            ratio = np.where(tgt > 0, tgt, 1) / np.where(tgt > 0, q_s, 1)
            kl = (tgt * np.log(ratio)).sum(-1)
            return (1 - p.lam) * rel - p.lam * np.take_along_axis(kl, cand_group, axis=1)

        out = greedy_rerank(ranked, self.ctx.slate_size, gain)
        return np.where(has_history[:, None], out, ranked)


def kmeans_labels(
    x: np.ndarray, num_clusters: int, iterations: int, draws: np.ndarray
) -> tuple[np.ndarray, int]:
    """Cluster the rows of ``x`` ``(N, d)`` with k-means; return ``(labels (N,), G)``.

    The start is k-means++: centre ``c`` is drawn with probability proportional to the
    squared distance to the nearest earlier centre, using ``draws[c]`` in (0, 1), so the
    result is a pure function of ``x`` and the draws. An empty cluster keeps its centre.
    """
    n = x.shape[0]
    g = min(num_clusters, n)
    centres = np.empty((g, x.shape[1]))
    centres[0] = x[min(int(draws[0] * n), n - 1)]
    d2 = ((x - centres[0]) ** 2).sum(axis=1)
    for c in range(1, g):
        cum = np.cumsum(d2)
        idx = int(np.searchsorted(cum, draws[c] * cum[-1])) if cum[-1] > 0 else c
        centres[c] = x[min(idx, n - 1)]
        d2 = np.minimum(d2, ((x - centres[c]) ** 2).sum(axis=1))
    for _ in range(iterations):
        dist = (x**2).sum(1)[:, None] - 2 * x @ centres.T + (centres**2).sum(1)[None, :]
        labels = np.argmin(dist, axis=1)
        sums = np.zeros_like(centres)
        np.add.at(sums, labels, x)
        sizes = np.bincount(labels, minlength=g)[:, None]
        centres = np.where(sizes > 0, sums / np.maximum(sizes, 1), centres)
    dist = (x**2).sum(1)[:, None] - 2 * x @ centres.T + (centres**2).sum(1)[None, :]
    return np.argmin(dist, axis=1), g


# ---------------------------------------------------------------------------- MMR
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
def binary_groups(
    obs: Observation, groups: str, exposure: ItemCounts, head_share: float, who: str
) -> np.ndarray:
    """``(N,)`` group of each live item: ``head_tail`` (0 head, 1 tail) or ``source`` (0, 1)."""
    if groups == "source":
        return source_labels(obs, f"{who} with groups: source")
    return (~head_items(exposure, obs.catalog.item_ids, head_share)).astype(np.int64)


class XQuADReranker(Reranker):
    """xQuAD over two item groups (Abdollahpouri et al. 2019 for head/tail).

    Greedy ``argmax (1 - lam) s_i + lam sum_c P(c|u) 1[i in c] prod_{j in S, j in c} (1 - s_j)``
    with ``P(i|u) = P(i|c) = s_i``, the rank relevance ``1 - j / L`` (the agent's scores are
    not available), and ``P(c|u)`` the share of the user's live history items in group ``c``
    (1/2 each for a user without one). Groups are ``head_tail``: head = items whose
    impressions so far (counted in :meth:`update`) are in the top ``head_share`` of the live
    items, or ``source``: human/AIGC (needs ``platform.knows_source: true``). ``lam = 0``
    keeps the agent's order.
    """

    class Params(ParamsModel):
        """Scenario keys of the xQuAD re-ranker."""

        lam: float = Field(
            0.5, ge=0, le=1, description="lambda: weight of group coverage vs relevance."
        )
        groups: Literal["head_tail", "source"] = Field(
            "head_tail", description="The two item groups: exposure head/tail, or human/AIGC."
        )
        head_share: float = Field(
            0.2, gt=0, lt=1, description="Share of live items (most exposed first) that is head."
        )

    def __init__(self, params: Params, ctx: Any) -> None:
        super().__init__(params, ctx)
        self._exposure = ItemCounts()

    def rerank(self, obs: Observation, ranked: np.ndarray) -> np.ndarray:
        """Greedy xQuAD top K, then the rest in the agent's order."""
        p = self.params
        group = binary_groups(obs, p.groups, self._exposure, p.head_share, "XQuADReranker")
        hist = history_group_counts(obs, group, 2)  # (B, 2)
        total = hist.sum(axis=1, keepdims=True)
        share = np.where(total > 0, hist / np.maximum(total, 1), 0.5)  # P(c|u)
        cand_group = group[obs.catalog.rows(ranked)]  # (B, L)
        rel = rank_relevance(ranked.shape[1])
        rel_b = np.broadcast_to(rel, ranked.shape)
        uncovered = np.ones_like(share)  # prod over chosen j in c of (1 - s_j), (B, 2)
        rows = np.arange(ranked.shape[0])

        def gain(last: np.ndarray | None) -> np.ndarray:
            if last is not None:
                uncovered[rows, cand_group[rows, last]] *= 1 - rel_b[rows, last]
            coverage = np.take_along_axis(share * uncovered, cand_group, axis=1)
            return (1 - p.lam) * rel + p.lam * coverage

        return greedy_rerank(ranked, self.ctx.slate_size, gain)

    def update(self, feedback: Feedback) -> None:
        """Count impressions (they define head and tail)."""
        self._exposure.add(0, feedback.slates)


def binom_cdf(t: int, p: float) -> np.ndarray:
    """``(t + 1,)`` binomial CDF ``P(X <= x)`` for ``x = 0..t``, ``X ~ Bin(t, p)``, ``0 < p < 1``.

    Computed from log-pmfs with ``math.lgamma`` (no scipy).

    >>> np.round(binom_cdf(2, 0.5), 6).tolist()
    [0.25, 0.75, 1.0]
    """
    x = np.arange(t + 1)
    log_comb = np.array(
        [math.lgamma(t + 1) - math.lgamma(i + 1) - math.lgamma(t - i + 1) for i in x]
    )
    pmf = np.exp(log_comb + x * math.log(p) + (t - x) * math.log1p(-p))
    return np.minimum(np.cumsum(pmf), 1.0)


def fair_quotas(k: int, p: float, alpha: float) -> np.ndarray:
    """``(k,)`` FA*IR minimum protected counts: entry ``t - 1`` is ``BinomInvCDF(t, p, alpha)``.

    ``BinomInvCDF(t, p, alpha)`` is the smallest ``x`` with ``BinomCDF(x; t, p) > alpha``.

    >>> fair_quotas(5, 0.5, 0.1).tolist()
    [0, 0, 0, 1, 1]
    """
    return np.array([int(np.argmax(binom_cdf(t, p) > alpha)) for t in range(1, k + 1)], np.int64)


class FairReranker(Reranker):
    """FA*IR-style prefix quotas (Zehlike et al. 2017) on the K served slots.

    In every prefix of length ``t = 1..K`` at least ``BinomInvCDF(t, p, alpha)`` items must
    be protected. Greedily, slot ``t`` takes the best-ranked remaining protected item when
    the quota would otherwise be missed, else the best-ranked remaining item; when a user's
    list runs out of protected items the slots are filled with the best remaining. The
    protected group is ``tail`` (not head by exposure, as in :class:`XQuADReranker`),
    ``aigc`` or ``human`` (these two need ``platform.knows_source: true``).
    """

    class Params(ParamsModel):
        """Scenario keys of the FA*IR re-ranker."""

        protected: Literal["tail", "aigc", "human"] = Field(
            "tail", description="The protected group: exposure tail, AIGC or human items."
        )
        p: float = Field(0.5, gt=0, lt=1, description="Target minimum share of protected items.")
        alpha: float = Field(
            0.1, gt=0, lt=1, description="Significance of the binomial test behind the quotas."
        )
        head_share: float = Field(
            0.2, gt=0, lt=1, description="Share of live items that is head (protected: tail)."
        )

    def __init__(self, params: Params, ctx: Any) -> None:
        super().__init__(params, ctx)
        self._exposure = ItemCounts()
        self.quotas = fair_quotas(ctx.slate_size, params.p, params.alpha)
        """``(K,)`` minimum number of protected items in each prefix ``1..K``."""

    def protected_items(self, obs: Observation) -> np.ndarray:
        """``(N,)`` bool: which live items are protected."""
        p = self.params
        if p.protected == "tail":
            return ~head_items(self._exposure, obs.catalog.item_ids, p.head_share)
        source = source_labels(obs, f"FairReranker with protected: {p.protected}")
        return source == (1 if p.protected == "aigc" else 0)

    def rerank(self, obs: Observation, ranked: np.ndarray) -> np.ndarray:
        """Greedy top K under the prefix quotas, then the rest in the agent's order."""
        prot = self.protected_items(obs)[obs.catalog.rows(ranked)]  # (B, L)
        rel = rank_relevance(ranked.shape[1])
        num_prot = np.zeros(ranked.shape[0], np.int64)
        rows = np.arange(ranked.shape[0])
        slot = [0]

        def gain(last: np.ndarray | None) -> np.ndarray:
            if last is not None:
                num_prot[:] += prot[rows, last]
            need = num_prot < self.quotas[slot[0]]  # (B,)
            slot[0] += 1
            # relevance lies in (0, 1]: a bonus of 2 puts any protected item first
            return rel + 2.0 * (need[:, None] & prot)

        return greedy_rerank(ranked, self.ctx.slate_size, gain)

    def update(self, feedback: Feedback) -> None:
        """Count impressions (they define head and tail)."""
        self._exposure.add(0, feedback.slates)


# ---------------------------------------------------------------------------- exploration
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
    """Demote items that carry the shared AIGC "style" in their observable features.

    The style direction is estimated on the step's live catalog as ``v = mean(f | AIGC) -
    mean(f | human)`` (labels required: ``platform.knows_source: true``). Each listed item is
    re-scored ``s_j - weight * z_j``, with ``s_j = 1 - j / L`` its rank relevance and ``z_j``
    its projection on ``v / |v|`` standardised over the user's list, and the list is sorted
    by that score. This approximates removing the style from the agent's scores, which the
    platform does not pass to re-rankers. A catalog without both sources keeps the order.

    A label-free estimate is not implemented: the style is shared by all AIGC items, so it
    is constant within a creator and vanishes from deviations around creator means.
    """

    class Params(ParamsModel):
        """Scenario keys of the style-removal re-ranker."""

        weight: float = Field(
            0.25, ge=0, description="Penalty per standard deviation of style projection."
        )

    def rerank(self, obs: Observation, ranked: np.ndarray) -> np.ndarray:
        """Sort each list by rank relevance minus the standardised style projection."""
        source = source_labels(obs, "StyleRemovalReranker")
        feats = obs.catalog.features.astype(np.float64)
        aigc = source == 1
        if aigc.all() or not aigc.any():
            return ranked
        style = feats[aigc].mean(axis=0) - feats[~aigc].mean(axis=0)
        size = np.linalg.norm(style)
        if size == 0:
            return ranked
        proj = (feats @ (style / size))[obs.catalog.rows(ranked)]  # (B, L)
        std = proj.std(axis=1, keepdims=True)
        z = np.where(
            std > 0, (proj - proj.mean(axis=1, keepdims=True)) / np.where(std > 0, std, 1), 0
        )
        score = rank_relevance(ranked.shape[1]) - self.params.weight * z
        order = np.argsort(-score, axis=1, kind="stable")
        return np.take_along_axis(ranked, order, axis=1)
