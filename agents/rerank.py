"""Re-rankers: interventions applied by the platform to an agent's ranked list.

A re-ranker receives the agent's ranking of ``depth`` items per user (best first) and
returns a re-ordered ``(B, L)`` ranking; the platform then cuts it to the slate size. It
may also learn from feedback through ``update``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from simlab.batch import Feedback, Observation
from simlab.scenario import ParamsModel

from .base import ItemCounts

__all__ = ["Reranker", "PopularityPenaltyReranker"]


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
