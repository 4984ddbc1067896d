"""The learned state of the bandit agents, shared by several of them.

Per-item click and impression counters (epsilon-greedy, UCB1, Thompson sampling), the ridge
regression ``A``, ``b`` over pair features shared by LinUCB and linear Thompson sampling (with
its serving protocol), and Diag-LinUCB's sums per (item, user cluster) edge with their
commutative partial updates. The agents themselves are in :mod:`simlab.agents.bandits`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from simlab.batch import Feedback, Observation, Slates
from simlab.errors import ScenarioError
from simlab.rng import Stream
from simlab.scenario import ParamsModel

from .bandit_math import _Kept, _kmeans, _rewards, _sq_dist, pair_features
from .base import Agent, ItemCounts, top_k

_CLICKS, _IMPRESSIONS = 0, 1


class _CountingAgent(Agent):
    """Shared part of the item-level agents: click and impression counters per item id."""

    serving = "replica"  # per-item counters, published every step (online learning)

    def __init__(self, params: ParamsModel, ctx: Any) -> None:
        super().__init__(params, ctx)
        self._counts = ItemCounts(num_fields=2)

    def update(self, feedback: Feedback) -> None:
        """Count impressions of every shown item and clicks of clicked ones."""
        self._counts.add(_IMPRESSIONS, feedback.slates)
        self._counts.add(_CLICKS, feedback.clicked_items[feedback.clicked])

    def state_dict(self) -> dict[str, Any]:
        """The click and impression counters, ``(2, capacity)``."""
        return {"counts": self._counts.values.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the counters."""
        self._counts.values = np.asarray(state["counts"], np.float64).copy()


class _LinearBandit(Agent):
    """Shared model of LinUCB and linear Thompson sampling.

    Ridge regression of the click on ``x_ui`` (see :func:`pair_features`): ``A = reg I +
    sum x x^T`` and ``b = sum r x`` over every impression, ``theta_hat = A^-1 b``. ``A^-1`` and
    its square root are re-derived from one Cholesky factor of the ``(D, D)`` matrix ``A``
    when the first ``act`` after an update needs them (``O(D^3)`` per step, ``D = 2 d + 1``).
    The dimension ``d`` is read from the first observation; user profiles and item features
    must have the same dimension.
    """

    _stream: str = "agent/linear"
    serving = "replica"  # A and b broadcast every step; the learner keeps served profiles

    def __init__(self, params: ParamsModel, ctx: Any) -> None:
        super().__init__(params, ctx)
        self._a: np.ndarray | None = None
        self._b: np.ndarray | None = None
        self._solved: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._users = _Kept("users")
        self._items = _Kept("items")
        self._tiebreak = Stream(self.seed, f"{self._stream}/tiebreak")

    def serving_state(self) -> dict[str, Any]:
        """``A (D, D)`` and ``b (D,)`` (empty before the first observation): all ``act`` reads."""
        empty = self._a is None
        return {
            "A": np.zeros((0, 0)) if empty else self._a.copy(),
            "b": np.zeros(0) if empty else self._b.copy(),
        }

    def load_serving_state(self, state: dict[str, Any]) -> None:
        """Serve with ``A`` and ``b`` of :meth:`serving_state`."""
        a = np.asarray(state["A"], np.float64)
        self._a = a.copy() if a.size else None
        self._b = np.asarray(state["b"], np.float64).copy() if a.size else None
        self._solved = None

    def serving_record(self, obs: Observation) -> dict[str, np.ndarray]:
        """The served users' ids ``(B,)`` and profiles ``(B, d)`` (what ``update`` reads)."""
        return {"user_ids": obs.user_ids, "features": obs.user_features}

    def record_served(self, obs_step: int, record: dict[str, np.ndarray], catalog: Any) -> None:
        """Keep the served users' profiles and the catalog as :meth:`act` would."""
        d = catalog.features.shape[1]
        if self._a is None:
            self._a = self.params.reg * np.eye(2 * d + 1)
            self._b = np.zeros(2 * d + 1)
        self._users.keep(record["user_ids"], features=record["features"])
        self._items.keep(catalog.item_ids, features=catalog.features)

    def _prepare(self, obs: Observation) -> tuple[np.ndarray, np.ndarray]:
        """Keep the step's context; return ``u (B, d)`` and ``v (C, d)`` or ``(B, C, d)``."""
        d = obs.catalog.features.shape[1]
        if obs.user_features.shape[1] != d:
            raise ValueError(
                f"{type(self).__name__} needs user features of the item dimension d={d}, "
                f"actual user feature dimension: {obs.user_features.shape[1]}"
            )
        if self._a is None:
            self._a = self.params.reg * np.eye(2 * d + 1)
            self._b = np.zeros(2 * d + 1)
        elif self._a.shape[0] != 2 * d + 1:
            raise ValueError(
                f"{type(self).__name__} was fitted on item features of dimension "
                f"{(self._a.shape[0] - 1) // 2}, actual: {d}"
            )
        self._users.keep(obs.user_ids, features=obs.user_features)
        self._items.keep(obs.catalog.item_ids, features=obs.catalog.features)
        cands = obs.candidate_pool
        v = obs.catalog.features[obs.catalog.rows(cands)].astype(np.float64)
        return obs.user_features.astype(np.float64), v

    def solve(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(theta_hat (D,), A^-1 (D, D), S (D, D))`` with ``S S^T = A^-1``."""
        if self._a is None:
            raise RuntimeError(f"{type(self).__name__}: no model before the first act()")
        if self._solved is None:
            try:
                chol = np.linalg.cholesky(self._a)
            except np.linalg.LinAlgError:
                raise self._not_positive_definite() from None
            l_inv = np.linalg.inv(chol)
            a_inv = l_inv.T @ l_inv
            self._solved = (a_inv @ self._b, a_inv, l_inv.T)
        return self._solved

    def _not_positive_definite(self) -> ScenarioError:
        """The error for an ``A`` whose ridge ``reg`` is lost in float64 rounding.

        ``sum x x^T`` is singular until the impressions span every direction of ``x``; only
        ``reg I`` keeps ``A`` positive definite, and a ``reg`` below the rounding of ``A``'s
        largest entries (about 1e-16 of them) does not.
        """
        name = self._stream.rsplit("/", 1)[-1]
        largest = float(np.abs(np.diag(self._a)).max())
        return ScenarioError(
            f"agents: {name}'s ridge matrix A = reg*I + sum x x^T is not positive definite in "
            f"float64: reg={self.params.reg!r} is lost in the rounding of its largest diagonal "
            f"entry ({largest:.3g}); raise reg (1.0 by default; below about 1e-12 of that "
            f"entry this can happen)"
        )

    def update(self, feedback: Feedback) -> None:
        """Add ``x x^T`` and ``r x`` of every impression of the step to ``A`` and ``b``."""
        if feedback.user_ids.size == 0:
            return
        u = self._users.arrays["features"][self._users.rows(feedback.user_ids)]
        v = self._items.arrays["features"][self._items.rows(feedback.slates)]
        x = pair_features(u[:, None, :], v).reshape(-1, self._a.shape[0])
        self._a += x.T @ x
        self._b += x.T @ _rewards(feedback).ravel()
        self._solved = None

    def _finish(self, obs: Observation, scores: np.ndarray) -> Slates:
        """Slates from ``(B, C)`` scores plus a tiny per-(item, step) tie-break."""
        cands = obs.candidate_pool
        scores += 1e-9 * self._tiebreak.uniform(cands, obs.step)  # scores: ours to change
        return Slates(obs.user_ids, top_k(scores, obs.candidates, obs.slate_size, shared=False))

    def state_dict(self) -> dict[str, Any]:
        """``A`` and ``b`` (empty before the first act) and the last step's context."""
        empty = self._a is None
        return {
            "A": np.zeros((0, 0)) if empty else self._a.copy(),
            "b": np.zeros(0) if empty else self._b.copy(),
            **self._users.state("users"),
            **self._items.state("items"),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``A``, ``b`` and the kept context."""
        a = np.asarray(state["A"], np.float64)
        self._a = a.copy() if a.size else None
        self._b = np.asarray(state["b"], np.float64).copy() if a.size else None
        self._solved = None
        self._users.load("users", state)
        self._items.load("items", state)


class _EdgeSums:
    """Diag-LinUCB's model: cluster weights and sums ``d_jc``, ``b_jc`` per edge (a mixin).

    Expects ``self.params`` (``reg``, ``clusters_per_user``, ``temperature``,
    ``num_clusters``, ``kmeans_iters``), ``self.centroids``, ``self._d``, ``self._b`` (both
    ``(capacity, clusters)``), ``self._users`` (the kept clusters and weights of ``act``) and
    ``self._kmeans`` (the stream of the k-means seeding).
    """

    def _keep(self, user_ids: np.ndarray, profiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Keep the users' clusters and weights (fitting the clusters on first use)."""
        feats = profiles.astype(np.float64)
        if self.centroids is None:
            self.centroids = _kmeans(
                feats, self.params.num_clusters, self.params.kmeans_iters, self._kmeans
            )
            self._d = np.zeros((0, self.centroids.shape[0]))
            self._b = np.zeros((0, self.centroids.shape[0]))
        idx, w = self.user_clusters(feats)
        self._users.keep(user_ids, clusters=idx, weights=w)
        return idx, w

    def serving_record(self, obs: Observation) -> dict[str, np.ndarray]:
        """The served users' ids ``(B,)`` and profiles ``(B, f)`` (their clusters: ``update``)."""
        return {"user_ids": obs.user_ids, "features": obs.user_features}

    def record_served(self, obs_step: int, record: dict[str, np.ndarray], catalog: Any) -> None:
        """Keep the served users' clusters and weights as :meth:`act` would (start-up steps)."""
        self._keep(record["user_ids"], record["features"])

    def user_clusters(self, user_features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Nearest clusters and weights of profiles ``(B, f)``: ``(B, k)`` ids, ``(B, k)``."""
        if self.centroids is None:
            raise RuntimeError("DiagLinUCBAgent: no clusters before the first act()")
        k = min(self.params.clusters_per_user, self.centroids.shape[0])
        d2 = _sq_dist(np.asarray(user_features, np.float64), self.centroids)
        idx = np.argsort(d2, axis=1, kind="stable")[:, :k]
        logits = -np.take_along_axis(d2, idx, axis=1) / self.params.temperature
        w = np.exp(logits - logits.max(axis=1, keepdims=True))
        return idx, w / w.sum(axis=1, keepdims=True)

    def _grow(self, max_id: int) -> None:
        if max_id >= self._d.shape[0]:
            size = max(max_id + 1, 2 * self._d.shape[0], 1024)
            for name in ("_d", "_b"):
                old = getattr(self, name)
                new = np.zeros((size, old.shape[1]))
                new[: old.shape[0]] = old
                setattr(self, name, new)

    def edge_stats(self, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(d, b)`` of ``item_ids`` (any shape) with every cluster: ``ids.shape + (k,)``."""
        item_ids = np.asarray(item_ids)
        if item_ids.size:
            self._grow(int(item_ids.max()))
        return self.params.reg + self._d[item_ids], self._b[item_ids].copy()

    # ---------------------------------------------------------------- learning
    def partial_update(self, feedback: Feedback) -> dict[str, np.ndarray]:
        """Edge increments of a batch of feedback (e.g. one shard's users).

        Args:
            feedback: feedback of users served by the last ``act``.

        Returns:
            One entry per distinct edge touched: ``item_ids`` ``(E,)``, ``clusters`` ``(E,)``,
            ``d`` ``(E,)`` (sum of ``w_uc^2``) and ``b`` ``(E,)`` (sum of ``w_uc r``).

        Raises:
            RuntimeError: a user was not served by the last ``act``.
        """
        rows = self._users.rows(feedback.user_ids)
        idx = self._users.arrays["clusters"][rows]  # (B, k)
        w = self._users.arrays["weights"][rows]  # (B, k)
        r = _rewards(feedback)  # (B, K)
        nc = self._d.shape[1]
        keys = feedback.slates[:, :, None] * nc + idx[:, None, :]  # (B, K, k)
        dw = np.broadcast_to((w * w)[:, None, :], keys.shape)
        bw = w[:, None, :] * r[:, :, None]
        edges, inv = np.unique(keys.ravel(), return_inverse=True)
        return {
            "item_ids": edges // nc,
            "clusters": edges % nc,
            "d": np.bincount(inv, weights=dw.ravel(), minlength=edges.size),
            "b": np.bincount(inv, weights=bw.ravel(), minlength=edges.size),
        }

    def apply_update(self, partial: dict[str, np.ndarray]) -> None:
        """Add edge increments from :meth:`partial_update` (any order, repeats accumulate)."""
        items = np.asarray(partial["item_ids"], np.int64)
        clusters = np.asarray(partial["clusters"], np.int64)
        if not items.shape == clusters.shape == np.shape(partial["d"]) == np.shape(partial["b"]):
            raise ValueError(
                "Expects `item_ids`, `clusters`, `d` and `b` of one shape, actual shapes: "
                f"{[np.shape(partial[k]) for k in ('item_ids', 'clusters', 'd', 'b')]}"
            )
        if items.size == 0:
            return
        self._grow(int(items.max()))
        np.add.at(self._d, (items, clusters), np.asarray(partial["d"], np.float64))
        np.add.at(self._b, (items, clusters), np.asarray(partial["b"], np.float64))

    def update(self, feedback: Feedback) -> None:
        """``apply_update(partial_update(feedback))``."""
        if feedback.user_ids.size:
            self.apply_update(self.partial_update(feedback))

    def state_dict(self) -> dict[str, Any]:
        """Centroids (empty before the first act), edge sums and the kept user weights."""
        return {
            "centroids": np.zeros((0, 0)) if self.centroids is None else self.centroids.copy(),
            "d": self._d.copy(),
            "b": self._b.copy(),
            **self._users.state("users"),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore centroids, edge sums and kept user weights."""
        c = np.asarray(state["centroids"], np.float64)
        self.centroids = c.copy() if c.size else None
        self._d = np.asarray(state["d"], np.float64).copy()
        self._b = np.asarray(state["b"], np.float64).copy()
        self._users.load("users", state)
