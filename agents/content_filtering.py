"""Content filtering as in Chaney et al. (RecSys 2018): NNLS user weights on item attributes.

At every retrain each user's weights are refitted on the whole consumption history:
``x_u = argmin_{x >= 0} ||A x - y_u||^2``, where the rows of ``A`` are the observable
features (attributes) of every item published up to the end of the data and ``y_u`` is 1
for the items ``u`` consumed, 0 for the others (T-RECS's ``ChaneyContent``). The score of an
item is ``x_u . a_i``. Items published after the data rank last, in random order (T-RECS
gives them a score of minus infinity; the platform's ``interleave-new`` shows the newest at
random positions). Users without consumptions have ``x_u = 0`` (every score ties, so their
ranking is random). The NNLS is solved for every user at once (:func:`.nnls.nnls_gram`),
starting from each user's last support.

The model's user representation (for nearest-neighbour homogenization) is ``x_u``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from simlab.batch import Log, Observation, Slates
from simlab.rng import Stream
from simlab.scenario import ParamsModel

from .base import Agent, catalog_gather
from .cumulative import CumulativeLog, ItemBook, rank_known_first
from .nnls import nnls_gram
from .ties import TiedRankingMixin

__all__ = ["ContentFilteringAgent"]


class ContentFilteringAgent(TiedRankingMixin, Agent):
    """Per-user NNLS on item attributes over the whole history (see module docstring)."""

    class Params(ParamsModel):
        """Scenario keys of the content-filtering agent."""

        score_new_items: bool = Field(
            False,
            description="Score items published after the model's data from their features "
            "(false: they rank last, as in Chaney et al.'s protocol).",
        )

    def __init__(self, params: Params, ctx: Any) -> None:
        super().__init__(params, ctx)
        self.history = CumulativeLog()
        self.book = ItemBook(ctx.dim)
        self.weights = np.zeros((int(ctx.num_users), ctx.dim))  # x_u, (num_users, d)
        self._tiebreak = Stream(self.seed, "agent/content-filtering/tiebreak")

    def retrain(self, log: Log) -> None:
        """Refit every user's weights on all consumptions so far."""
        self.book.add_log(log)
        self.history.ingest(log)
        known = self.book.known(self.history.horizon)
        attrs = self.book.features[known]
        users = self.history.users  # no consumption yet: nothing is fitted, x_u stays 0
        rows = self.book.rows(self.history.items)
        # b_u = A^T y_u: the sum of the consumed items' attributes, per user
        b = np.zeros_like(self.weights)
        np.add.at(b, users, self.book.features[rows])
        who = np.unique(users)
        # the last support is only a starting guess: the solution does not depend on it
        support = self.weights[who] > 0  # pragma: no mutate
        fitted = nnls_gram(attrs.T @ attrs, b[who], support=support)
        self.weights[who] = fitted

    def serving_record(self, obs: Observation) -> dict[str, np.ndarray]:
        """Nothing per user: :meth:`record_served` books the served catalog."""
        return {}

    def record_served(self, obs_step: int, record: dict[str, np.ndarray], catalog: Any) -> None:
        """Book the live items with their publication steps, as :meth:`act` would."""
        self.book.add(catalog.item_ids, catalog.features, obs_step - catalog.age)

    def _scores(self, obs: Observation) -> tuple[np.ndarray, int | None]:
        """``(B, C)`` scores ``x_u . a_i`` of the candidates and the horizon of the data."""
        feats = obs.catalog.features
        x = self.weights[obs.user_ids]
        if obs.shared_candidates:
            scores = x @ feats[obs.catalog.rows(obs.candidate_pool)].T.astype(np.float64)
        else:  # (B, N) over the live catalog, then each user's candidates
            scores = catalog_gather(x @ feats.T.astype(np.float64), obs)
        return scores, None if self.params.score_new_items else self.history.horizon

    def act(self, obs: Observation) -> Slates:
        """Candidates by ``x_u . a_i``, items newer than the data last."""
        self.book.add_catalog(obs)
        scores, horizon = self._scores(obs)
        return Slates(obs.user_ids, rank_known_first(scores, obs, horizon, self._tiebreak))

    def user_representation(self) -> np.ndarray:
        """``(num_users, d)`` the fitted weights ``x_u``."""
        return self.weights

    def state_dict(self) -> dict[str, Any]:
        """Weights, consumption history and item book."""
        return {
            "weights": self.weights.copy(),
            "history": self.history.state_dict(),
            "book": self.book.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.weights = np.asarray(state["weights"], np.float64).copy()
        self.history.load_state_dict(state["history"])
        self.book.load_state_dict(state["book"])
