"""Creators as a population: who is active, who exits for lack of exposure, who enters.

A :class:`CreatorPool` holds one row per creator ever seen (ids are row numbers): source
(0 human, 1 AIGC), topic, vector (topic centre plus a fixed personal offset), whether it is
active, the step it entered (-1 for the initial creators), the step it exited (-1 while
active) and its current streak of low-exposure steps.

Economics (knobs of ``CreatorEcosystem``): after each step a creator whose items got fewer than
``exit_threshold`` impressions counts a low step; after ``exit_patience`` low steps in a row it
exits for good (publishes no more; its live items stay until they retire). Each step
``creators_per_step`` new creators enter, each AIGC with the probability the phase schedule
gives for that step. Every draw is keyed by (seed, stream, creator id), so a creator is the
same in every agent's world of a seed until the worlds' exposure makes them differ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simlab.rng import Stream

__all__ = ["CreatorPool", "CreatorTable"]


@dataclass(frozen=True)
class CreatorTable:
    """A read-only view of the creators for metrics (one row per creator ever seen)."""

    source: np.ndarray
    active: np.ndarray
    entered: np.ndarray
    exited: np.ndarray

    @property
    def num_creators(self) -> int:
        """Creators ever seen."""
        return len(self.source)


class CreatorPool:
    """Creator rows with entry and exit (see module docstring).

    Args:
        seed: the trial seed.
        centres: ``(T, d)`` topic centres.
        spread: scale of a creator's offset from its topic centre.
        num_human, num_aigc: initial creators (humans first).
    """

    def __init__(
        self, seed: int, centres: np.ndarray, spread: float, num_human: int, num_aigc: int
    ) -> None:
        self.seed, self.centres, self.spread = seed, centres, spread
        n = num_human + num_aigc
        self.source = np.zeros(0, np.int8)
        self.topic = np.zeros(0, np.int64)
        self.offset = np.zeros((0, centres.shape[1]), np.float32)
        self.vec = np.zeros((0, centres.shape[1]), np.float32)
        self.active = np.zeros(0, bool)
        self.entered = np.zeros(0, np.int64)
        self.exited = np.zeros(0, np.int64)
        self.low_streak = np.zeros(0, np.int64)
        self.add((np.arange(n) >= num_human).astype(np.int8), step=-1)

    @property
    def num_creators(self) -> int:
        """Creators ever seen."""
        return len(self.source)

    def add(self, source: np.ndarray, step: int) -> np.ndarray:
        """Append creators of the given sources; return their ids."""
        start, m = self.num_creators, source.size
        cid = np.arange(start, start + m)
        d = self.centres.shape[1]
        topic = Stream(self.seed, "content/creator_topic").integers(cid, 0, self.centres.shape[0])
        noise = Stream(self.seed, "content/creator_vec").normal(cid, 0, size=d)
        offset = (self.spread * noise).astype(np.float32)
        self.source = np.concatenate([self.source, source.astype(np.int8)])
        self.topic = np.concatenate([self.topic, topic])
        self.offset = np.concatenate([self.offset, offset])
        self.vec = np.concatenate([self.vec, (self.centres[topic] + offset).astype(np.float32)])
        self.active = np.concatenate([self.active, np.ones(m, bool)])
        self.entered = np.concatenate([self.entered, np.full(m, step, np.int64)])
        self.exited = np.concatenate([self.exited, np.full(m, -1, np.int64)])
        self.low_streak = np.concatenate([self.low_streak, np.zeros(m, np.int64)])
        return cid

    def move(self, creator_ids: np.ndarray, topics: np.ndarray) -> None:
        """Creators switch topic for good (their vector follows, keeping their offset)."""
        self.topic[creator_ids] = topics
        self.vec[creator_ids] = (self.centres[topics] + self.offset[creator_ids]).astype(np.float32)

    def exposure(self, item_creators: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """``(num_creators,)`` impressions per creator from per-item creators and counts."""
        return np.bincount(item_creators, weights=counts, minlength=self.num_creators)

    def settle(self, step: int, exposure: np.ndarray, threshold: float, patience: int) -> None:
        """Count low-exposure steps of active creators; retire those out of patience.

        ``exposure`` is never negative, so a ``threshold`` of 0 counts no low step.
        """
        low = self.active & (exposure < threshold)
        self.low_streak = np.where(low, self.low_streak + 1, 0)
        leaving = self.active & (self.low_streak >= patience)
        self.active[leaving] = False
        self.exited[leaving] = step

    def enter(self, step: int, count: int, aigc_share: float) -> np.ndarray:
        """``count`` new creators, each AIGC with probability ``aigc_share``; their ids."""
        cid = np.arange(self.num_creators, self.num_creators + count)
        is_aigc = Stream(self.seed, "content/creator_source").uniform(cid, 0) < aigc_share
        return self.add(is_aigc.astype(np.int8), step)

    def active_of(self, source: int) -> np.ndarray:
        """Ids of the active creators of one source, increasing."""
        return np.flatnonzero(self.active & (self.source == source))

    def table(self) -> CreatorTable:
        """A read-only view for metrics."""
        return CreatorTable(self.source, self.active, self.entered, self.exited)
