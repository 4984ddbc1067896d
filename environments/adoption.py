"""Endogenous AIGC production: creators adopt AIGC for the reward it earns, or switch back.

With ``content.production: adoption`` the AIGC share of new items is not a schedule: each
creator produces in its current *mode* (human or AIGC), and modes change with what the
platform rewards. Every step the market signal is the reward per live item of each source
over the last ``window`` steps (impressions, or clicks with ``signal: clicks``), shrunk
toward the pooled rate by one pseudo item-step, ``r_s = (R_s + r) / (N_s + 1)`` with ``R_s``
the source's total reward, ``N_s`` its live item-steps and ``r = (R_AIGC + R_human) /
(N_AIGC + N_human)``; ``Delta = log r_AIGC - log r_human`` (0 when nothing earned anything,
and exactly 0 when both sources earn the same per item). A share ``revise_rate``
of the active creators reconsiders (keyed draws per creator and step) and chooses AIGC when

    sensitivity * Delta + logit(baseline_share) + e_c > 0,

``e_c`` a creator's fixed taste, a standard logistic draw keyed by the creator. So at equal
rewards a ``baseline_share`` of creators would use AIGC (its cost advantage: AIGC is cheap),
and the share moves along a logistic curve as AIGC earns more, or less, per item than human
work. A recommender that over-exposes AIGC raises ``Delta``, more creators adopt AIGC,
more AIGC enters the catalog and the training data: the loop Zhou et al. study, closed.
Whether it *tips* production past one half, and when, is an outcome: ``simlab report``
gives the tipping step per agent.

Everything is keyed by (seed, creator, step), so worlds of one seed share their creators'
tastes and, until their exposures differ, their revisions.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Literal

import numpy as np
from pydantic import Field

from simlab.rng import Stream
from simlab.scenario import ParamsModel

__all__ = ["AdoptionParams", "Adoption"]


class AdoptionParams(ParamsModel):
    """Creators' AIGC adoption (``content.adoption``, with ``production: adoption``)."""

    baseline_share: float = Field(
        0.1,
        gt=0,
        lt=1,
        description="Share of creators who would use AIGC if it earned as much per item as "
        "human work (AIGC's cost advantage); also the share at the start.",
    )
    sensitivity: float = Field(
        2.0,
        ge=0,
        description="How strongly the log ratio of AIGC's to human work's reward per item moves "
        "a reconsidering creator's choice (0 = rewards do not matter).",
    )
    revise_rate: float = Field(
        0.05, gt=0, le=1, description="Share of active creators reconsidering each step."
    )
    signal: Literal["impressions", "clicks"] = Field(
        "impressions", description="The reward creators see: impressions or clicks."
    )
    window: int = Field(5, gt=0, description="Steps of rewards in the market signal.")


class Adoption:
    """Creators' modes and the market signal behind their revisions (see module docstring).

    Args:
        params: the adoption settings.
        seed: the trial seed.
    """

    def __init__(self, params: AdoptionParams, seed: int) -> None:
        self.params = params
        self._taste = Stream(seed, "content/adoption/taste")
        self._revise = Stream(seed, "content/adoption/revise")
        self._history: deque[tuple[float, float, int, int]] = deque(maxlen=params.window)
        self.delta = 0.0

    def initial_modes(self, creator_ids: np.ndarray) -> np.ndarray:
        """``(C,)`` int8 modes of creators entering with no signal (1 = AIGC)."""
        return self.choose(creator_ids, 0.0)

    def choose(self, creator_ids: np.ndarray, delta: float) -> np.ndarray:
        """``(C,)`` the modes these creators choose at signal ``delta`` (1 = AIGC)."""
        u = self._taste.uniform(creator_ids, 0)
        taste = np.log(u) - np.log1p(-u)  # a standard logistic draw per creator
        b = self.params.baseline_share
        return (self.params.sensitivity * delta + np.log(b / (1 - b)) + taste > 0).astype(np.int8)

    def observe(self, source: np.ndarray, reward: np.ndarray) -> None:
        """Add one step's rewards of the live items (``source``, ``reward``: per item)."""
        aigc = source == 1
        self._history.append(
            (
                float(reward[aigc].sum()),
                float(reward[~aigc].sum()),
                int(aigc.sum()),
                int((~aigc).sum()),
            )
        )
        r_a, r_h, n_a, n_h = (sum(x) for x in zip(*self._history, strict=True))
        if r_a + r_h <= 0 or n_a + n_h == 0:
            self.delta = 0.0
            return
        pooled = (r_a + r_h) / (n_a + n_h)
        self.delta = float(np.log((r_a + pooled) / (n_a + 1)) - np.log((r_h + pooled) / (n_h + 1)))

    def revise(self, t: int, modes: np.ndarray, active: np.ndarray) -> np.ndarray:
        """``modes`` after step ``t``'s revisions of the active creators (a new array)."""
        cid = np.arange(modes.shape[0])
        turn = active & (self._revise.uniform(cid, t) < self.params.revise_rate)
        out = modes.copy()
        out[turn] = self.choose(cid[turn], self.delta)
        return out

    def state_dict(self) -> dict[str, Any]:
        """The signal's window and its current value."""
        rows = np.array(self._history, np.float64).reshape(len(self._history), 4)
        return {"history": rows, "delta": self.delta}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self._history.clear()
        for r_a, r_h, n_a, n_h in np.asarray(state["history"], np.float64):
            self._history.append((r_a, r_h, int(n_a), int(n_h)))
        self.delta = float(state["delta"])
