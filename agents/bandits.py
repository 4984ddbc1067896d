"""Bandit agents over items. This foundation ships epsilon-greedy on click-rate estimates."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from simlab.batch import Feedback, Observation, Slates
from simlab.rng import Stream
from simlab.scenario import ParamsModel

from .base import Agent, ItemCounts, random_slates, top_k

__all__ = ["EpsilonGreedyAgent"]

_CLICKS, _IMPRESSIONS = 0, 1


class EpsilonGreedyAgent(Agent):
    """Epsilon-greedy over per-item click-rate estimates, learned online.

    The estimate of item ``i`` is ``(clicks_i + prior_clicks) / (impressions_i +
    prior_impressions)``; a fresh item starts at the prior rate. Each served user gets, with
    probability ``epsilon``, a uniformly random slate, else the top items by estimate.
    """

    class Params(ParamsModel):
        """Scenario keys of the epsilon-greedy agent."""

        epsilon: float = Field(0.1, ge=0, le=1, description="Probability of a random slate.")
        prior_clicks: float = Field(1.0, ge=0, description="Pseudo-clicks of a fresh item.")
        prior_impressions: float = Field(
            2.0, gt=0, description="Pseudo-impressions of a fresh item."
        )

    def __init__(self, params: Params, ctx: Any) -> None:
        super().__init__(params, ctx)
        self._counts = ItemCounts(num_fields=2)
        self._explore = Stream(self.seed, "agent/epsilon-greedy/explore")
        self._random = Stream(self.seed, "agent/epsilon-greedy/random")
        self._tiebreak = Stream(self.seed, "agent/epsilon-greedy/tiebreak")

    def estimates(self, item_ids: np.ndarray) -> np.ndarray:
        """Posterior-mean click rate of ``item_ids``."""
        p = self.params
        clicks = self._counts.get(_CLICKS, item_ids)
        imps = self._counts.get(_IMPRESSIONS, item_ids)
        return (clicks + p.prior_clicks) / (imps + p.prior_impressions)

    def act(self, obs: Observation) -> Slates:
        """Greedy slates, replaced by random ones for exploring users."""
        cands = obs.candidates[0] if obs.shared_candidates else obs.candidates
        s = self.estimates(cands) + 1e-9 * self._tiebreak.uniform(cands, obs.step)
        slates = top_k(s, obs.candidates, obs.slate_size, obs.shared_candidates)
        explore = self._explore.uniform(obs.user_ids, obs.step) < self.params.epsilon
        if explore.any():
            slates = np.array(slates)
            slates[explore] = random_slates(self._random, obs, rows=np.flatnonzero(explore))
        return Slates(obs.user_ids, slates)

    def update(self, feedback: Feedback) -> None:
        """Count impressions of every shown item and clicks of clicked ones."""
        self._counts.add(_IMPRESSIONS, feedback.slates)
        self._counts.add(_CLICKS, feedback.clicked_items[feedback.clicked])

    def state_dict(self) -> dict[str, Any]:
        """The click and impression counters."""
        return {"counts": self._counts.values.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the counters."""
        self._counts.values = np.asarray(state["counts"], np.float64).copy()
