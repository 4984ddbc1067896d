"""Homogenization over nearest-neighbour pairs (Chaney, Stewart & Engelhardt, RecSys 2018).

Each user ``u`` of a fixed sample (every user when there are at most
``measures.pairwise_pairs``; otherwise that many, the same for every agent of a seed) is
paired with ``v(u)``, the user most similar to ``u`` by cosine similarity of a user
representation, exact ties broken at random (keyed by step). The measure is the mean over
the pairs of the Jaccard similarity of the two users' cumulative sets of consumed
(clicked) items, ``|S_u & S_v| / |S_u | S_v|`` (0 when both are empty):

- ``echo/homogenization_nn``: that mean, after the step;
- ``echo/nn_by_agent``: 1 when the pairs come from the agent's own representation of the
  users (``user_representation()``: content filtering's NNLS weights, implicit MF's user
  factors, social filtering's adjacency rows), 0 when the agent has none and the pairs come
  from the users' true preferences (latent interests: the ideal/oracle, popularity and
  random recommenders).

Chaney et al. report it relative to the ideal recommender: ``simlab report`` adds
``echo/homogenization_nn_vs_oracle``, the measure minus the oracle's at the same seed and
step (worlds of one seed share their random numbers, so the difference is paired).
T-RECS's replication instead evaluates the ideal run's consumption on the recommender's
own pairs; simlab's worlds are independent trials, so the ideal's value here is on the
ideal's own pairs (by true preferences).

Cost per measured step (every ``measures.pairwise_every`` steps and the last; NaN between): one
similarity row per sampled user, O(sample x users x dimension), in blocks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from simlab.keysets import PairSet
from simlab.metrics.base import Metric, StepSnapshot
from simlab.rng import Stream

__all__ = ["NNHomogenizationMetric", "nearest_neighbours"]

_BLOCK = 512


def _unit_rows(rep: Any) -> Any:
    """Rows scaled to unit L2 norm (zero rows stay zero); dense or scipy.sparse."""
    if hasattr(rep, "tocsr"):
        from scipy import sparse

        rep = rep.tocsr().astype(np.float64)
        norms = np.sqrt(np.asarray(rep.multiply(rep).sum(axis=1))).ravel()
        scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        return sparse.diags(scale) @ rep
    rep = np.asarray(rep, np.float64)
    norms = np.linalg.norm(rep, axis=1, keepdims=True)
    return np.divide(rep, norms, out=np.zeros_like(rep), where=norms > 0)


def nearest_neighbours(rep: Any, anchors: np.ndarray, tiebreak: Stream, step: int) -> np.ndarray:
    """``(A,)`` each anchor's most cosine-similar other user, exact ties broken at random.

    Args:
        rep: ``(n, r)`` user representation (dense or scipy.sparse); zero rows have
            similarity 0 with everyone.
        anchors: ``(A,)`` user ids (rows of ``rep``).
        tiebreak: the stream of the tie-break draws (keyed by anchor and ``step``); among
            equally similar users the one with the largest draw wins.
        step: the step.
    """
    unit = _unit_rows(rep)
    n = unit.shape[0]
    out = np.empty(len(anchors), np.int64)
    for lo in range(0, len(anchors), _BLOCK):  # blocks of anchors bound the memory
        a = anchors[lo : lo + _BLOCK]
        sim = unit[a] @ unit.T
        sim = sim.toarray() if hasattr(sim, "toarray") else np.asarray(sim)
        sim[np.arange(len(a)), a] = -np.inf  # never oneself
        best = sim.max(axis=1, keepdims=True)
        draws = tiebreak.uniform(a, step, size=n)
        draws[sim < best] = -np.inf  # only the most similar users compete
        out[lo : lo + _BLOCK] = np.argmax(draws, axis=1)
    return out


class NNHomogenizationMetric(Metric):
    """Mean Jaccard of cumulative consumption over nearest-neighbour pairs (module docs)."""

    name = "homogenization_nn"
    columns = ("echo/homogenization_nn", "echo/nn_by_agent")
    summary = {"echo/homogenization_nn": "last", "echo/nn_by_agent": "last"}
    ranges = {"echo/homogenization_nn": (0.0, 1.0), "echo/nn_by_agent": (0.0, 1.0)}
    on_by_default = False  # a similarity row per sampled user: opt in by name

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        n = int(ctx.num_users)
        cap = int(getattr(ctx, "pairwise_pairs", 2000))
        if n <= cap:
            self.anchors = np.arange(n, dtype=np.int64)
        else:  # a fixed sample of users, the same for every agent of the seed
            draw = Stream(ctx.seed, "metrics/homogenization_nn/anchors").uniform(np.arange(n), 0)
            self.anchors = np.sort(np.argsort(draw, kind="stable")[:cap]).astype(np.int64)
        self.sets = PairSet()
        self._tiebreak = Stream(ctx.seed, "metrics/homogenization_nn")

    def measure(self, snap: StepSnapshot) -> dict[str, float]:
        """Add the step's consumptions; on measured steps (``pairwise_due``), the Jaccard."""
        fb = snap.feedback
        chose = fb.clicked
        self.sets.add(fb.user_ids[chose], fb.clicked_items[chose])
        nan = float("nan")
        if not self.anchors.size or snap.num_users < 2 or not self.pairwise_due(snap.step):
            return {"echo/homogenization_nn": nan, "echo/nn_by_agent": nan}
        rep = snap.agent_users() if snap.agent_users is not None else None
        by_agent = rep is not None
        if rep is None:
            rep = snap.interests
        partner = nearest_neighbours(rep, self.anchors, self._tiebreak, snap.step)
        inter = self.sets.intersection_sizes(self.anchors, partner)
        union = self.sets.count(self.anchors) + self.sets.count(partner) - inter
        jac = np.divide(inter, union, out=np.zeros(union.shape), where=union > 0)
        return {"echo/homogenization_nn": float(jac.mean()), "echo/nn_by_agent": float(by_agent)}
