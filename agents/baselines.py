"""Baseline agents: random, popularity (retrained from logs) and the oracle (upper bound)."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from simlab.batch import PAD, Log, Observation, Slates, lookup_sorted
from simlab.rng import Stream
from simlab.scenario import ParamsModel

from .base import Agent, catalog_gather, random_slates, top_k, uniform_propensities
from .cumulative import rank_known_first
from .ties import tie_propensities

__all__ = ["RandomAgent", "PopularityAgent", "OracleAgent"]


class RandomAgent(Agent):
    """Uniformly random distinct candidates for every user: the no-feedback-loop baseline."""

    serving = "replica"  # keyed draws per (user, step), no state

    def __init__(self, params: ParamsModel, ctx: Any) -> None:
        super().__init__(params, ctx)
        self._stream = Stream(self.seed, "agent/random")

    logging_policy = "sampled"

    def act(self, obs: Observation) -> Slates:
        """Random slates keyed by (user, step)."""
        return Slates(obs.user_ids, random_slates(self._stream, obs))

    def propensities(self, obs: Observation, slates: Slates) -> np.ndarray:
        """``1 / C`` in every slot (a uniformly random ordered slate)."""
        return uniform_propensities(obs)


class PopularityAgent(Agent):
    """Most-clicked items of the log window, retrained on the platform's schedule.

    Until the first retrain every item scores 0 and the order is a per-step random
    tie-break (shared by all users); the tie-break also orders items with equal counts.
    """

    serving = "replica"  # item counts, published once per retrain

    class Params(ParamsModel):
        """Scenario keys of the popularity agent."""

        signal: Literal["clicks", "impressions", "engagement"] = Field(
            "clicks",
            description="What counts as popularity: clicks, impressions or engagement.",
        )
        cumulative: bool = Field(
            False,
            description="Count over every step logged since the start (each step once), as "
            "Chaney et al.'s popularity recommender, instead of over the log window.",
        )

    def __init__(self, params: Params, ctx: Any) -> None:
        super().__init__(params, ctx)
        self._ids = np.zeros(0, np.int64)
        self._counts = np.zeros(0, np.float64)
        self._seen = -1  # with `cumulative`, the last logged step counted
        self._tiebreak = Stream(self.seed, "agent/popularity/tiebreak")

    def retrain(self, log: Log) -> None:
        """Count the chosen signal per item over the log window (or since the start)."""
        sig = self.params.signal
        rows = None
        if self.params.cumulative and log.num_rows:
            rows = np.flatnonzero(log.step > self._seen)
            self._seen = max(self._seen, int(log.step.max()))
        if sig == "impressions":
            slates = log.slates if rows is None else log.slates[rows]
            ids, counts = _count_by_id(slates.ravel(), None, skip_pad=True)
        else:  # the clicked item of every row, PAD (skipped) where no click
            w = log.engagement if sig == "engagement" else None
            clicked = log.clicked_items
            if rows is not None:
                clicked, w = clicked[rows], None if w is None else w[rows]
            ids, counts = _count_by_id(clicked, w, skip_pad=True)
        if self.params.cumulative:
            ids, counts = _add_counts(self._ids, self._counts, ids, counts)
        self._ids, self._counts = ids, counts

    @property
    def retrain_log(self) -> str:  # type: ignore[override]
        """``partitioned`` when counting clicks or impressions over the window.

        Integer counts sum exactly in any order, so the shards' partial counts give the
        whole log's bit for bit; engagement sums (float) and ``cumulative`` (which reads
        the last counted step) retrain on the whole log.
        """
        exact = self.params.signal != "engagement" and not self.params.cumulative
        return "partitioned" if exact else "whole"

    def log_summary(self, log: Log) -> tuple[np.ndarray, np.ndarray]:
        """``(sorted item ids, counts)`` of the signal over a shard's part of the window."""
        if self.params.signal == "impressions":
            return _count_by_id(log.slates.ravel(), None, skip_pad=True)
        return _count_by_id(log.clicked_items, None, skip_pad=True)

    def retrain_from_summaries(self, summaries: list[tuple[np.ndarray, np.ndarray]]) -> None:
        """The shards' counts added up (integers: the whole window's counts exactly)."""
        ids, counts = np.zeros(0, np.int64), np.zeros(0)
        for part_ids, part_counts in summaries:
            ids, counts = _add_counts(ids, counts, part_ids, part_counts)
        self._ids, self._counts = ids, counts

    logging_policy = "sampled"  # items of equal counts in a random order (agents.ties)

    def counts(self, item_ids: np.ndarray) -> np.ndarray:
        """Popularity of ``item_ids`` (0 for items without data)."""
        pos, known = lookup_sorted(self._ids, item_ids)
        counts = np.zeros(item_ids.shape)
        counts[known] = self._counts[pos[known]]
        return counts

    def propensities(self, obs: Observation, slates: Slates) -> np.ndarray:
        """``1 / g`` per slot, ``g`` the user's candidates of the item's count (1 / C unfit)."""
        return tie_propensities(_of_candidates(self.counts, obs), obs, slates)

    def scores(self, item_ids: np.ndarray, step: int) -> np.ndarray:
        """Popularity of ``item_ids`` plus a tie-break in [0, 0.5)."""
        counts = self.counts(item_ids)
        if self.params.signal != "engagement":
            return counts + 0.5 * self._tiebreak.uniform(item_ids, step)
        return counts + 1e-6 * self._tiebreak.uniform(item_ids, step)

    def act(self, obs: Observation) -> Slates:
        """Top items by popularity among each user's candidates."""
        s = _of_candidates(lambda ids: self.scores(ids, obs.step), obs)
        return Slates(obs.user_ids, top_k(s, obs.candidates, obs.slate_size, obs.shared_candidates))

    def state_dict(self) -> dict[str, Any]:
        """Item ids, their counts and the last step counted."""
        return {"ids": self._ids.copy(), "counts": self._counts.copy(), "seen": self._seen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore item ids, counts and the last step counted."""
        self._ids = np.asarray(state["ids"], np.int64)
        self._counts = np.asarray(state["counts"], np.float64)
        self._seen = int(state.get("seen", -1))


def _of_candidates(values, obs: Observation) -> np.ndarray:
    """``values(item ids)`` of the candidates: ``(C,)`` shared, else ``(B, C)``.

    Per-user candidates take every live item's value once, then each user's (the same
    values).
    """
    if obs.shared_candidates:
        return values(obs.candidate_pool)
    return catalog_gather(values(obs.catalog.item_ids), obs)


def _add_counts(ids_a, counts_a, ids_b, counts_b) -> tuple[np.ndarray, np.ndarray]:
    """The sum of two ``(sorted ids, counts)`` tables."""
    ids = np.union1d(ids_a, ids_b)
    out = np.zeros(ids.shape[0])
    out[np.searchsorted(ids, ids_a)] += counts_a
    out[np.searchsorted(ids, ids_b)] += counts_b
    return ids, out


def _count_by_id(
    ids: np.ndarray, weights: np.ndarray | None, skip_pad: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """``(sorted distinct ids, float64 sum of weights (default 1) per id)``.

    What ``np.unique`` and ``np.bincount`` over its inverse give (each sum adds in the order
    of ``ids``), by counting over the id range instead of sorting when the range is small.
    With ``skip_pad`` the entries equal to ``PAD`` (and their weights) are left out.
    """
    low = PAD if skip_pad else 0
    if ids.size and ids.min() >= low and int(ids.max()) <= 4 * ids.size + 65536:
        shifted = ids + 1 if skip_pad else ids  # PAD counts in bin 0, dropped below
        seen = np.bincount(shifted)
        sums = seen if weights is None else np.bincount(shifted, weights=weights)
        if skip_pad:
            seen, sums = seen[1:], sums[1:]
        uniq = np.flatnonzero(seen)
        return uniq, sums[uniq].astype(float)
    if skip_pad:
        keep = ids != PAD
        ids, weights = ids[keep], None if weights is None else weights[keep]
    uniq, inv = np.unique(ids, return_inverse=True)
    return uniq, np.bincount(inv, weights=weights, minlength=uniq.shape[0]).astype(float)


class OracleAgent(Agent):
    """PRIVILEGED upper bound: ranks candidates by each user's true expected utility.

    It reads latent truth through the world's explicit ``Truth`` hook, which no other
    agent receives. Its slates maximise each step's click probability under the logit
    choice model (best item on top, where position bias is smallest); it is a myopic
    upper bound for click-through rate, not a deployable recommender.
    """

    privileged = True
    logging_policy = "sampled"  # with known_items: trained, late items in a random order

    class Params(ParamsModel):
        """Scenario keys of the oracle."""

        known_items: Literal["all", "trained"] = Field(
            "all",
            description="`all`: rank every candidate by true utility each step; `trained`: "
            "rank only items published up to the data of its last retrain, newer ones last "
            "in random order (Chaney et al.'s ideal recommender, 'trained' like the others).",
        )

    def __init__(self, params: ParamsModel, ctx: Any) -> None:
        super().__init__(params, ctx)
        self._truth = None
        self._horizon = -1
        self._tiebreak = Stream(self.seed, "agent/oracle/tiebreak")

    def bind_truth(self, truth: Any) -> None:
        """Receive the privileged truth hook from the world."""
        self._truth = truth

    def retrain(self, log: Log) -> None:
        """Note the last step of the data (what ``known_items: trained`` ranks)."""
        if log.num_rows:
            self._horizon = max(self._horizon, int(log.step.max()))

    def act(self, obs: Observation) -> Slates:
        """Top candidates by true utility."""
        if self._truth is None:
            raise RuntimeError("OracleAgent needs the world's truth hook (bind_truth)")
        u = self._truth.utility(obs.step, obs.user_ids, obs.candidates)
        if self.params.known_items == "trained":
            ranked = rank_known_first(u, obs, self._horizon, self._tiebreak)
            return Slates(obs.user_ids, ranked)
        return Slates(obs.user_ids, top_k(u, obs.candidates, obs.slate_size, shared=False))

    def propensities(self, obs: Observation, slates: Slates) -> np.ndarray:
        """1 per slot; with ``known_items: trained``, ``1 / g`` for tied or late items."""
        if self.params.known_items != "trained":
            return np.ones(slates.item_ids.shape)
        u = self._truth.utility(obs.step, obs.user_ids, obs.candidates)
        return tie_propensities(u, obs, slates, self._horizon)

    def state_dict(self) -> dict[str, Any]:
        """The last step of the data."""
        return {"horizon": self._horizon}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the last step of the data."""
        self._horizon = int(state.get("horizon", -1))
