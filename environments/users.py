"""User populations: latent interests, slate choice, drift, fatigue, return and churn.

:class:`LogitUserPopulation` is the reference model. Each user has a unit latent interest
vector drawn as a mixture of topic centres. The utility of item ``i`` for user ``u`` is

    U_ui = interest_weight * <x_u, e_i> + quality_weight * q_i
           - fatigue_weight * F_u[topic_i] + source_preference * [i is AIGC]

where ``e_i`` is the item's latent embedding and ``q_i`` its latent quality. A served user
picks among the ``K`` slate items and a no-click option by multinomial logit with position
bias (logit of slot ``k = 0 .. K-1`` is ``U_ui / temperature - position_bias * log2(1 + k)``, the
no-click option has ``no_click_utility / temperature``), sampled with Gumbel-max draws keyed
by (user, step). The engagement of a click is ``sigmoid(U - no_click_utility + noise)``.

After responding, interests drift toward the consumed item's embedding
(``x <- normalize(x + drift_rate * (e - x))``; ``drift_rate = 0`` leaves them untouched),
fatigue decays and grows with the topics shown, satisfaction is an exponential moving
average of engagement, and a user whose satisfaction stays below ``churn_threshold`` for
``churn_patience`` visits leaves for good. Each step a user who has not churned returns
with a personal probability around ``return_prob``, moved by ``satisfaction_return *
(satisfaction - 0.5)`` (satisfied users come back more often; off by default).

Sharding: a population built with ``ctx.user_range = (lo, hi)`` holds only users
``lo..hi-1`` (a user shard on Ray). Every draw is keyed by the global user id, so a user
behaves the same whichever shard holds it. :meth:`LogitUserPopulation.state_dict` returns
the dynamic per-user state (arrays whose first axis is the shard's users), so a checkpoint
can be re-split over any number of shards.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from simlab.batch import Feedback, is_row_broadcast, row_blocks
from simlab.params import FEATURE_SCALE_MAX, LOGIT_SCALE_MAX, TEMPERATURE_MIN
from simlab.rng import Stream
from simlab.scenario import ParamsModel
from simlab.world import WorldContext

from .common import normalize_rows, slate_rows, topic_centres

__all__ = ["LogitUserPopulation"]

_UTILITY_BLOCK = 1 << 18
"""(user, candidate) cells per block of :meth:`LogitUserPopulation.expected_utility`."""


class LogitUserPopulation:
    """Multinomial-logit users with drift, fatigue, return and churn (see module docstring).

    Args:
        params: :class:`LogitUserPopulation.Params`.
        ctx: the world context.
    """

    class Params(ParamsModel):
        """Scenario keys of the ``logit`` user model."""

        num_users: int = Field(2000, gt=0, description="Population size.")
        topic_concentration: float = Field(
            3.0, ge=0, description="How peaked each user's topic mixture is (0 = uniform)."
        )
        feature_noise: float = Field(
            0.5,
            ge=0,
            le=FEATURE_SCALE_MAX,
            description="Noise on the observable user features (signup profile).",
        )
        return_prob: float = Field(0.8, gt=0, le=1, description="Mean per-step return probability.")
        return_spread: float = Field(
            0.2, ge=0, le=1, description="Spread of personal return probabilities around the mean."
        )
        interest_weight: float = Field(
            4.0, ge=0, le=LOGIT_SCALE_MAX, description="Weight of interest match in utility."
        )
        quality_weight: float = Field(
            1.0, ge=0, le=LOGIT_SCALE_MAX, description="Weight of latent quality in utility."
        )
        no_click_utility: float = Field(
            3.0, ge=-LOGIT_SCALE_MAX, le=LOGIT_SCALE_MAX, description="Utility of not clicking."
        )
        temperature: float = Field(
            1.0,
            ge=TEMPERATURE_MIN,
            le=LOGIT_SCALE_MAX,
            description="Logit temperature of the choice.",
        )
        position_bias: float = Field(
            0.3,
            ge=0,
            le=LOGIT_SCALE_MAX,
            description="Logit penalty per log2(1 + slot) down the slate.",
        )
        drift_rate: float = Field(
            0.0, ge=0, le=1, description="Step of interests toward consumed items (0 = static)."
        )
        fatigue_weight: float = Field(
            0.0,
            ge=0,
            le=LOGIT_SCALE_MAX,
            description="Utility lost per unit of fatigue of a topic.",
        )
        fatigue_decay: float = Field(0.8, ge=0, lt=1, description="Per-step decay of fatigue.")
        source_preference: float = Field(
            0.0,
            ge=-LOGIT_SCALE_MAX,
            le=LOGIT_SCALE_MAX,
            description="Utility added to AIGC items (0 = neutral).",
        )
        satisfaction_rate: float = Field(
            0.2, gt=0, le=1, description="EMA rate of satisfaction from engagement."
        )
        churn_threshold: float = Field(
            0.0,
            ge=0,
            le=1,
            description="Satisfaction below which a visit counts as poor (0 = never).",
        )
        churn_patience: int = Field(10, gt=0, description="Poor visits in a row before churning.")
        satisfaction_return: float = Field(
            0.0,
            ge=0,
            le=LOGIT_SCALE_MAX,
            description="How satisfaction moves the return probability: each step it is the "
            "personal return probability + satisfaction_return * (satisfaction - 0.5), "
            "clipped to [0.01, 1] (0 = return does not depend on satisfaction).",
        )
        engagement_noise: float = Field(
            0.3, ge=0, le=LOGIT_SCALE_MAX, description="Noise on engagement logits."
        )

    @classmethod
    def check_scenario(cls, params: Any, scenario: Any) -> list[str]:
        """Validate-time rule: fatigue is kept per topic, one of ``world.num_topics``."""
        from simlab.rules import topic_count

        w, n = scenario.world, topic_count(scenario.content, scenario)
        if not params.fatigue_weight or n <= w.num_topics:
            return []
        return [
            f"users.fatigue_weight: logit users keep their fatigue per topic, one of "
            f"world.num_topics={w.num_topics}, but content.model '{scenario.content.model}' "
            f"gives its items {n} topics; set world.num_topics to at least {n}, or "
            "users.fatigue_weight to 0"
        ]

    def __init__(self, params: LogitUserPopulation.Params, ctx: WorldContext) -> None:
        self.params = p = params
        self.ctx = ctx
        self.num_users = p.num_users
        seed, d = ctx.seed, ctx.dim
        self.lo, self.hi = ctx.user_range or (0, p.num_users)
        uid = np.arange(self.lo, self.hi)
        n = uid.shape[0]
        centres = topic_centres(seed, ctx.num_topics, d, ctx.topic_spread)
        logits = p.topic_concentration * Stream(seed, "users/mixture").normal(
            uid, 0, size=ctx.num_topics
        )
        w = np.exp(logits - logits.max(axis=1, keepdims=True))
        w /= w.sum(axis=1, keepdims=True)
        self._initial = normalize_rows(w @ centres).astype(np.float32)
        self._initial.setflags(write=False)
        self._interest = self._initial.copy()
        profile_noise = Stream(seed, "users/profile").normal(uid, 0, size=d) / np.sqrt(d)
        self._features = (self._initial + p.feature_noise * profile_noise).astype(np.float32)
        spread = Stream(seed, "users/return_propensity").uniform(uid, 0) - 0.5
        self._return_prob = np.clip(p.return_prob + p.return_spread * spread, 0.01, 1.0)
        self._fatigue = np.zeros((n, ctx.num_topics), np.float32)
        self._satisfaction = np.full(n, 0.5, np.float32)
        self._poor_visits = np.zeros(n, np.int64)
        self.churned = np.zeros(n, bool)
        self._uid = uid
        self._arrive = Stream(seed, "users/arrival")
        self._choice = Stream(seed, "users/choice")
        self._engage = Stream(seed, "users/engagement")
        k = np.arange(ctx.slate_size)
        self._pos_bias = (-p.position_bias * np.log2(1.0 + k)).astype(np.float32)

    # ---------------------------------------------------------------- protocol
    def arrivals(self, t: int) -> np.ndarray:
        """Ids of users who have not churned and return at step ``t``."""
        prob = self._return_prob
        if self.params.satisfaction_return:
            shift = self.params.satisfaction_return * (self._satisfaction - 0.5)
            prob = np.clip(prob + shift, 0.01, 1.0)
        here = self._arrive.uniform(self._uid, t) < prob
        return self._uid[here & ~self.churned]

    def observable_features(self, user_ids: np.ndarray) -> np.ndarray:
        """``(B, d)`` noisy signup profile: initial interests plus fixed noise."""
        return self._features[user_ids - self.lo]

    def _rows_of(self, user_ids: np.ndarray) -> slice | np.ndarray:
        """Local rows of ``user_ids``: a slice (no copy) when they are the whole shard."""
        n = self.hi - self.lo
        if user_ids.shape[0] == n and n and user_ids[0] == self.lo and user_ids[-1] == self.hi - 1:
            return slice(None)  # increasing, unique ids spanning the range: all of them
        return user_ids - self.lo

    def interests(self) -> tuple[np.ndarray, np.ndarray]:
        """``(current, initial)`` interests of users ``lo..hi-1``, read-only views."""
        cur = self._interest.view()
        cur.setflags(write=False)
        return cur, self._initial

    def _utility(self, user_ids: np.ndarray, rows: np.ndarray, items) -> np.ndarray:
        """``(B, C)`` utility of item rows ``rows`` (B, C) for ``user_ids``.

        When ``rows`` is one row broadcast to every user (a shared slate), the items' arrays
        are read once and broadcast (the same values: no ``(B, C, d)`` gather).
        """
        p = self.params
        loc = user_ids - self.lo
        x = self._interest[self._rows_of(user_ids)]
        r = rows[:1] if is_row_broadcast(rows) else rows
        lat = items.latent[r]
        match = np.einsum("bcd,bd->bc", np.broadcast_to(lat, rows.shape + lat.shape[2:]), x)
        u = p.interest_weight * match + p.quality_weight * items.quality[r]
        if p.fatigue_weight:
            u -= p.fatigue_weight * self._fatigue[loc[:, None], items.topic[r]]
        if p.source_preference:
            u += p.source_preference * items.source[r]
        return u.astype(np.float32, copy=False)

    def expected_utility(
        self, t: int, user_ids: np.ndarray, item_ids: np.ndarray, items
    ) -> np.ndarray:
        """Noise-free utility ``(B, C)`` (privileged: only the oracle uses it)."""
        p = self.params
        if item_ids.strides[0] != 0 or not item_ids.shape[0]:  # per user (or no user)
            return self._utility(user_ids, items.rows(item_ids), items)
        # shared candidates: a matrix product per block of users (row_blocks), so a block's
        # float64 terms stay in cache; every value is per user, as in one product
        rows = items.rows(item_ids[0])
        loc = user_ids - self.lo
        lat, topic = items.latent[rows].T, items.topic[rows]
        quality = p.quality_weight * items.quality[rows]
        source = p.source_preference * items.source[rows]
        out = np.empty((loc.shape[0], rows.shape[0]), np.float32)
        for sub in row_blocks(loc.shape[0], rows.shape[0], _UTILITY_BLOCK):
            u = p.interest_weight * (self._interest[loc[sub]] @ lat) + quality
            if p.fatigue_weight:
                u -= p.fatigue_weight * self._fatigue[loc[sub]][:, topic]
            if p.source_preference:
                u += source
            out[sub] = u
        return out

    def respond(self, t: int, user_ids: np.ndarray, slates: np.ndarray, items) -> Feedback:
        """Choose among slates (with a no-click option) and update latent state."""
        p = self.params
        b, k = slates.shape
        rows = slate_rows(items, slates)
        util = self._utility(user_ids, rows, items)
        # float32 logits (no click first: no_click_utility / temperature, then the slate's
        # util / temperature + position bias) plus Gumbel noise, added in float64
        noisy = self._choice.gumbel(user_ids, t, size=k + 1)
        noisy[:, 0] += np.float32(p.no_click_utility / p.temperature)
        logits = np.divide(util, p.temperature)
        logits += self._pos_bias[:k]
        noisy[:, 1:] += logits
        choice = np.argmax(noisy, axis=1)
        clicked_pos = choice.astype(np.int64) - 1
        clicked = clicked_pos >= 0
        u_click = util[np.arange(b), np.maximum(clicked_pos, 0)]
        noise = p.engagement_noise * self._engage.normal(user_ids, t)
        with np.errstate(over="ignore"):  # exp(large) = inf: an engagement of exactly 0
            sig = 1.0 / (1.0 + np.exp(-(u_click - p.no_click_utility + noise)))
        engagement = np.where(clicked, sig, 0.0).astype(np.float32)
        self._update_state(user_ids, rows, clicked_pos, engagement, items)
        return Feedback(t, user_ids, slates, clicked_pos, engagement)

    # ---------------------------------------------------------------- dynamics
    def _update_state(self, user_ids, rows, clicked_pos, engagement, items) -> None:
        p = self.params
        clicked = clicked_pos >= 0
        user_ids = user_ids - self.lo  # local rows from here on
        if p.drift_rate > 0 and clicked.any():
            who = user_ids[clicked]
            crow = rows[clicked, clicked_pos[clicked]]
            x = self._interest[who]
            self._interest[who] = normalize_rows(x + p.drift_rate * (items.latent[crow] - x))
        if p.fatigue_weight:
            self._fatigue *= p.fatigue_decay
            flat = user_ids[:, None] * self.ctx.num_topics + items.topic[rows]
            counts = np.bincount(flat.ravel(), minlength=self._fatigue.size)
            self._fatigue += counts.reshape(self._fatigue.shape).astype(np.float32)
        sat = self._satisfaction[user_ids]
        sat = (1 - p.satisfaction_rate) * sat + p.satisfaction_rate * engagement
        self._satisfaction[user_ids] = sat
        if p.churn_threshold > 0:
            poor = np.where(sat < p.churn_threshold, self._poor_visits[user_ids] + 1, 0)
            self._poor_visits[user_ids] = poor
            self.churned[user_ids[poor >= p.churn_patience]] = True

    # ---------------------------------------------------------------- checkpoints
    _STATE = ("_interest", "_fatigue", "_satisfaction", "_poor_visits", "churned")

    def state_dict(self) -> dict[str, np.ndarray]:
        """The dynamic per-user state of users ``lo..hi-1`` (first axis: those users)."""
        return {name.lstrip("_"): getattr(self, name).copy() for name in self._STATE}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`state_dict` returned (for the same user range).

        Every array's shape is checked before any is set: a wrong one loads nothing.
        """
        values = {name: np.asarray(state[name.lstrip("_")]) for name in self._STATE}
        for name, value in values.items():
            current = getattr(self, name)
            if value.shape != current.shape:
                raise ValueError(
                    f"Expects user state `{name.lstrip('_')}` of shape {current.shape}, "
                    f"actual shape: {value.shape}"
                )
        for name, value in values.items():
            setattr(self, name, value.astype(getattr(self, name).dtype, copy=True))
