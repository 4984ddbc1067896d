"""Echo-chamber measures: intra-list diversity, interest drift and homogenization."""

from __future__ import annotations

import numpy as np

from simlab.batch import is_row_broadcast, lookup_sorted
from simlab.metrics.base import Metric, StepSnapshot
from simlab.metrics.sums import shard_sum
from simlab.rng import Stream

__all__ = ["DiversityMetric", "InterestDriftMetric", "HomogenizationMetric", "jaccard_pairs"]


class DiversityMetric(Metric):
    """Intra-list diversity: mean pairwise cosine distance within slates.

    Per slate, the mean of ``1 - cos(e_i, e_j)`` over pairs of its items' latent
    embeddings; averaged over slates.

    Embeddings are unit vectors, so the mean pairwise cosine of a slate is
    ``(||sum_k e_k||^2 - K) / (K (K - 1))`` — O(B K d) with no K x K matrix. Computed per
    user shard (a sum over its slates) and reduced.
    """

    name = "diversity"
    columns = ("diversity/intra_list",)
    summary = {"diversity/intra_list": "mean"}
    # 1 - cos of unit vectors: 0 (identical) to 2 (opposite)
    ranges = {"diversity/intra_list": (0.0, 2.0)}

    def partial(self, snap: StepSnapshot) -> dict[str, float]:
        """Sum of the shard's slates' mean cosine similarity, and their number."""
        b, k = snap.feedback.slates.shape
        if not b or k < 2:
            return {"cos_sum": 0.0, "slates": 0}
        rows = snap.rows()
        shared = is_row_broadcast(rows)  # one slate for every user: measure it once
        latent = snap.items.latent
        # sum of each slate's embeddings, added slot by slot (as a sum over the slate axis
        # of the (B, K, d) gathered embeddings adds), without that (B, K, d) array
        s = latent[rows[:1, 0] if shared else rows[:, 0]].copy()
        for j in range(1, k):
            s += latent[rows[:1, j] if shared else rows[:, j]]
        mean_cos = ((s * s).sum(axis=1) - k) / (k * (k - 1))
        if shared:
            mean_cos = np.full(b, mean_cos[0], mean_cos.dtype)
        # mean cosines lie in [-1, 1]; a shard_sum is the same bits for any sharding
        return {"cos_sum": shard_sum(mean_cos, 2.0, snap.num_users), "slates": b}

    def reduce(self, parts: list[dict[str, float]], snap: StepSnapshot) -> dict[str, float]:
        """``1 - (sum of mean cosines) / slates``; NaN without slates of 2+ items."""
        n = sum(p["slates"] for p in parts)
        if not n:
            return {"diversity/intra_list": float("nan")}
        return {"diversity/intra_list": 1.0 - sum(p["cos_sum"] for p in parts) / n}


class InterestDriftMetric(Metric):
    """Mean L2 distance of users' latent interests from their step-0 interests.

    Each user shard sums the distances of its users; the sums are reduced.
    """

    name = "drift"
    columns = ("echo/interest_drift",)
    summary = {"echo/interest_drift": "last"}
    ranges = {"echo/interest_drift": (0.0, None)}

    def partial(self, snap: StepSnapshot) -> dict[str, float]:
        """Sum of ``||x_u(t) - x_u(0)||`` over the shard's users, and their number."""
        diff = snap.interests - snap.initial_interests
        dist = np.sqrt((diff * diff).sum(axis=1))
        # components in [-1, 1]: a distance is at most 2 sqrt(d)
        bound = 2.0 * np.sqrt(diff.shape[1]) + 1.0
        return {"sum": shard_sum(dist, bound, snap.num_users), "users": dist.size}

    def reduce(self, parts: list[dict[str, float]], snap: StepSnapshot) -> dict[str, float]:
        """Mean ``||x_u(t) - x_u(0)||`` over the population."""
        n = sum(p["users"] for p in parts)
        total = sum(p["sum"] for p in parts)
        return {"echo/interest_drift": total / n if n else float("nan")}


def jaccard_pairs(sets_a: list[set[int]], sets_b: list[set[int]]) -> np.ndarray:
    """Reference Jaccard similarity of paired Python sets (for tests; 0 for two empty sets).

    Raises:
        ValueError: lists of different lengths (every set needs its partner).
    """
    out = []
    for a, b in zip(sets_a, sets_b, strict=True):
        union = len(a | b)
        out.append(len(a & b) / union if union else 0.0)
    return np.asarray(out)


class HomogenizationMetric(Metric):
    """Homogenization (Chaney et al. 2018): mean Jaccard similarity of consumption.

    The cumulative sets of consumed (clicked) items are compared over a fixed,
    deterministic sample of user pairs.

    Pairs (``measures.pairwise_pairs``, default 2,000) are drawn once per trial from the
    ``metrics/homogenization`` stream, so every agent of a seed is measured on the same
    pairs. With ``measures.pairwise_every = N`` the consumptions are gathered every step
    but folded in and measured every N steps and at the run's last step (NaN in between).
    Pairs whose union is still empty count as 0. The sets are kept as a sorted array of
    ``user << 32 | item`` keys and the intersections are updated incrementally from each
    step's new consumptions, so a step costs O(new clicks x pairs per user), not O(history).
    """

    name = "homogenization"
    columns = ("echo/homogenization",)
    summary = {"echo/homogenization": "last"}
    ranges = {"echo/homogenization": (0.0, 1.0)}
    max_pairs = 2000

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        n = int(ctx.num_users)
        self._pending: list[np.ndarray] = []
        cap = int(getattr(ctx, "pairwise_pairs", self.max_pairs))
        num_pairs = min(cap, n * (n - 1) // 2) if n > 1 else 0
        pid = np.arange(num_pairs)
        s = Stream(ctx.seed, "metrics/homogenization")
        a = s.integers(pid, 0, n)
        b = s.integers(pid, 1, n - 1)  # empty without pairs (fewer than 2 users)
        b = b + (b >= a)
        self.pair_a, self.pair_b = a.astype(np.int64), b.astype(np.int64)
        # pairs of each user, as a CSR-like index over both ends of every pair
        ends = np.concatenate([self.pair_a, self.pair_b])
        partner = np.concatenate([self.pair_b, self.pair_a])
        pair_of = np.concatenate([pid, pid])
        order = np.argsort(ends, kind="stable")
        self._end_user, self._end_partner, self._end_pair = (
            ends[order],
            partner[order],
            pair_of[order],
        )
        self._tracked = np.zeros(n, bool)
        self._tracked[ends] = True
        self._keys = np.zeros(0, np.int64)
        self._size = np.zeros(n, np.int64)
        self._inter = np.zeros(num_pairs, np.int64)

    def measure(self, snap: StepSnapshot) -> dict[str, float]:
        """Mean pairwise Jaccard of cumulative consumption after this step."""
        if not self._inter.size:
            return {"echo/homogenization": float("nan")}
        fb = snap.feedback
        clicked = fb.clicked
        users = fb.user_ids[clicked]
        items = fb.clicked_items[clicked]
        keep = self._tracked[users]
        self._pending.append((users[keep] << 32) | items[keep])
        if not self.pairwise_due(snap.step):
            return {"echo/homogenization": float("nan")}
        new = np.unique(np.concatenate(self._pending))
        self._pending = []
        new = new[~lookup_sorted(self._keys, new)[1]]
        if new.size:
            old_keys = self._keys
            new_user, new_item = new >> 32, new & 0xFFFFFFFF
            np.add.at(self._size, new_user, 1)
            lo = np.searchsorted(self._end_user, new_user, side="left")
            hi = np.searchsorted(self._end_user, new_user, side="right")
            reps = hi - lo
            idx = np.repeat(lo - np.cumsum(reps) + reps, reps) + np.arange(reps.sum())
            item_rep = np.repeat(new_item, reps)
            user_rep = np.repeat(new_user, reps)
            partner = self._end_partner[idx]
            probe = (partner << 32) | item_rep
            in_old = lookup_sorted(old_keys, probe)[1]
            in_new = lookup_sorted(new, probe)[1]
            # a consumption both users made this step is counted once, from the lower id
            hit = in_old | (in_new & (user_rep < partner))
            np.add.at(self._inter, self._end_pair[idx[hit]], 1)
            # union of two sorted, disjoint key sets: insert, no re-sort
            self._keys = np.insert(old_keys, np.searchsorted(old_keys, new), new)
        union = self._size[self.pair_a] + self._size[self.pair_b] - self._inter
        jac = np.divide(self._inter, union, out=np.zeros(union.shape), where=union > 0)
        return {"echo/homogenization": float(jac.mean())}
