"""Social filtering as in Chaney et al. (RecSys 2018): items your friends consumed.

The platform knows the users' social network (``users.social_graph``; the world binds it to
the agent, as it binds the oracle's truth hook, see :mod:`simlab.environments.social_graph`).
At every retrain the agent counts each item's consumptions by each user over the whole
history; the score of item ``i`` for user ``u`` is the number of consumptions of ``i`` by
``u``'s friends, ``sum_v A_uv r_vi`` (T-RECS's ``SocialFiltering``: users' representation is
their row of the adjacency matrix, items' the column of interaction counts). Exact ties
(items no friend consumed) are broken at random; items published after the data rank last.

The user representation (for nearest-neighbour homogenization) is the user's row of the
adjacency matrix.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from simlab.batch import Log, Observation, Slates, lookup_sorted
from simlab.rng import Stream
from simlab.scenario import ParamsModel

from .base import Agent
from .cumulative import CumulativeLog, rank_known_first
from .ties import TiedRankingMixin

__all__ = ["SocialFilteringAgent"]


class SocialFilteringAgent(TiedRankingMixin, Agent):
    """Friends' consumption counts over the whole history (see module docstring)."""

    needs_social_graph: ClassVar[bool] = True
    """The world binds the users' social graph (``bind_social_graph``)."""

    class Params(ParamsModel):
        """Scenario keys of the social-filtering agent."""

        score_new_items: bool = Field(
            False,
            description="Rank items published after the model's data by their (zero) counts "
            "(false: they rank last, as in Chaney et al.'s protocol).",
        )

    def __init__(self, params: Params, ctx: Any) -> None:
        super().__init__(params, ctx)
        self.history = CumulativeLog()
        self.graph = None  # (num_users, num_users) scipy.sparse adjacency, bound by the world
        self._friend_counts = None  # (num_users, items) sum_v A_uv r_vi, scipy.sparse
        self._item_ids = None  # (items with data,) sorted ids, set with the counts
        self._tiebreak = Stream(self.seed, "agent/social-filtering/tiebreak")

    def bind_social_graph(self, graph: Any) -> None:
        """Receive the users' social network from the world (and count with it)."""
        self.graph = graph.tocsr()
        self._rebuild()  # no history yet: no item has counts

    def retrain(self, log: Log) -> None:
        """Count every user's friends' consumptions of every item so far."""
        if self.graph is None:
            raise RuntimeError("SocialFilteringAgent needs the world's social graph")
        self.history.ingest(log)
        self._rebuild()

    def _rebuild(self) -> None:
        """The friends' counts from the history and the graph."""
        self._item_ids, cols = np.unique(self.history.items, return_inverse=True)
        num_users, _ = self.graph.shape
        counts = self.history.counts(self.history.users, cols, (num_users, self._item_ids.size))
        self._friend_counts = (self.graph @ counts).tocsr()

    def _scores(self, obs: Observation) -> tuple[np.ndarray, int | None]:
        """``(B, C)`` friends' consumption counts of the candidates and the data's horizon."""
        scores = np.zeros(obs.candidates.shape)
        if self._friend_counts is not None and self._item_ids.size:
            pos, found = lookup_sorted(self._item_ids, obs.candidates)
            dense = self._friend_counts[obs.user_ids].toarray()  # (B, items with data)
            scores = np.where(found, np.take_along_axis(dense, pos, axis=1), 0.0)
        return scores, None if self.params.score_new_items else self.history.horizon

    def act(self, obs: Observation) -> Slates:
        """Candidates by friends' consumption counts, items newer than the data last."""
        scores, horizon = self._scores(obs)
        return Slates(obs.user_ids, rank_known_first(scores, obs, horizon, self._tiebreak))

    def user_representation(self) -> Any:
        """``(num_users, num_users)`` the adjacency matrix (scipy.sparse)."""
        return self.graph

    def state_dict(self) -> dict[str, Any]:
        """The consumption history (the counts are rebuilt from it; the graph is rebound)."""
        return {"history": self.history.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the history and rebuild the counts when the graph is bound."""
        self.history.load_state_dict(state["history"])
        self._friend_counts = None
        if self.graph is not None:
            self._rebuild()
