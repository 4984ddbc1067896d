"""Group-level re-rankers: calibration (Steck 2018), xQuAD and FA*IR prefix quotas.

Each balances the groups of a user's list — feature clusters or sources for calibration,
head/tail or human/AIGC for xQuAD and FA*IR — against the agent's ranking, using the shared
greedy machinery of :mod:`simlab.agents.rerank`.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import Field

from simlab.batch import Feedback, Observation
from simlab.rng import Stream
from simlab.scenario import ParamsModel

from .base import ItemCounts
from .rerank import (
    Reranker,
    greedy_rerank,
    head_items,
    history_group_counts,
    rank_relevance,
    source_labels,
    source_rule,
)

__all__ = [
    "CalibrationReranker",
    "XQuADReranker",
    "FairReranker",
    "kmeans_labels",
    "binom_cdf",
    "fair_quotas",
]


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

    @classmethod
    def check_scenario(cls, params: Params, scenario: Any) -> list[str]:
        """``groups: source`` reads source labels: the platform must see them."""
        if params.groups != "source":
            return []
        return source_rule(scenario, "groups: source", ", or use groups: clusters")

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
        # draws[c] < 1: the first point whose running sum reaches draws[c] * cum[-1] exists
        idx = int(np.searchsorted(cum, draws[c] * cum[-1])) if cum[-1] > 0 else c
        centres[c] = x[idx]
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

    @classmethod
    def check_scenario(cls, params: Params, scenario: Any) -> list[str]:
        """``groups: source`` reads source labels: the platform must see them."""
        if params.groups != "source":
            return []
        return source_rule(scenario, "groups: source", ", or use groups: head_tail")

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

    @classmethod
    def check_scenario(cls, params: Params, scenario: Any) -> list[str]:
        """``protected: aigc`` or ``human`` reads source labels: the platform must see them."""
        if params.protected == "tail":
            return []
        return source_rule(scenario, f"protected: {params.protected}", ", or use protected: tail")

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
        num_prot = np.zeros(ranked.shape[0], np.int64)
        rows = np.arange(ranked.shape[0])
        quota = iter(self.quotas)  # one per slot: gain is called once per slot

        def gain(last: np.ndarray | None) -> np.ndarray:
            if last is not None:
                num_prot[:] += prot[rows, last]
            need = num_prot < next(quota)  # (B,)
            # 1 for a protected item where the quota needs one, else 0: greedy_rerank's ties
            # go to the agent's better-ranked item, so the best protected item comes first
            # where needed and the best remaining item everywhere else
            return (need[:, None] & prot).astype(np.float64)

        return greedy_rerank(ranked, self.ctx.slate_size, gain)

    def update(self, feedback: Feedback) -> None:
        """Count impressions (they define head and tail)."""
        self._exposure.add(0, feedback.slates)


# ---------------------------------------------------------------------------- exploration
