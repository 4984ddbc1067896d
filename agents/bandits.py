"""Bandit agents, item-level and contextual, all learned online.

Item-level: epsilon-greedy, UCB1 and Beta-Bernoulli Thompson sampling. Contextual: LinUCB,
linear Thompson sampling and Diag-LinUCB.

Rewards. Every agent learns online from impressions: each item shown to a user is one trial,
with reward 1 if that user clicked it and 0 otherwise (the slate position is ignored, so
lower slots look a little worse than they are).

Contextual features. LinUCB and linear Thompson sampling use one shared parameter vector
over the observable pair features ``x_ui = [u * v, v, 1]`` of dimension ``D = 2 d + 1``,
where ``u`` is the user's observable profile, ``v`` the item's observable features (both of
dimension ``d``) and ``*`` the elementwise product. ``theta^T x_ui`` can thus express a
weighted user-item match ``sum_f theta_f u_f v_f``, a linear item appeal and a base rate, and
it scores items never seen before from their features. Because ``x_ui`` is bilinear, scores
are computed from ``(B, d)`` and ``(B, d, d)`` per-user reductions, never from a
``(B, C, D)`` array of pair features.

Diag-LinUCB follows Yi et al., "Online Matching: A Real-time Bandit System for Large-scale
Recommendations" (RecSys 2023, arXiv 2307.15893); see :class:`DiagLinUCBAgent`.

Contextual agents keep the observable context of the last ``act`` (profiles, catalog
features or cluster weights of the served users) to featurise the matching ``update``; it is
part of their ``state_dict``, so a checkpoint taken between the two still learns.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field, model_validator

from simlab.batch import Observation, Slates
from simlab.rng import Stream
from simlab.scenario import ParamsModel

from .bandit_math import (
    _Kept,
    _linear_scores,
    _pair_ids,
    _quadratic,
    beta_logit_draws,
    diag_ucb_scores,
    diag_ucb_slates,
    pair_features,
)
from .bandit_models import _CLICKS, _IMPRESSIONS, _CountingAgent, _EdgeSums, _LinearBandit
from .base import Agent, random_slates, top_k, uniform_propensities
from .ties import tie_propensities

__all__ = [
    "EpsilonGreedyAgent",
    "UCB1Agent",
    "ThompsonSamplingAgent",
    "LinUCBAgent",
    "LinearThompsonAgent",
    "DiagLinUCBAgent",
    "beta_logit_draws",
    "pair_features",
]

_UNSEEN = 1e6
"""Score offset that puts never-shown items ahead of every UCB1 index."""


# ----------------------------------------------------------------------------- item-level


class EpsilonGreedyAgent(_CountingAgent):
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
        self._explore = Stream(self.seed, "agent/epsilon-greedy/explore")
        self._random = Stream(self.seed, "agent/epsilon-greedy/random")
        self._tiebreak = Stream(self.seed, "agent/epsilon-greedy/tiebreak")

    def estimates(self, item_ids: np.ndarray) -> np.ndarray:
        """Posterior-mean click rate of ``item_ids``."""
        p = self.params
        clicks = self._counts.get(_CLICKS, item_ids)
        imps = self._counts.get(_IMPRESSIONS, item_ids)
        return (clicks + p.prior_clicks) / (imps + p.prior_impressions)

    logging_policy = "sampled"

    def act(self, obs: Observation) -> Slates:
        """Greedy slates, replaced by random ones for exploring users."""
        cands = obs.candidate_pool
        s = self.estimates(cands) + 1e-9 * self._tiebreak.uniform(cands, obs.step)
        slates = top_k(s, obs.candidates, obs.slate_size, obs.shared_candidates)
        explore = self._explore.uniform(obs.user_ids, obs.step) < self.params.epsilon
        if explore.any():
            slates = np.array(slates)
            slates[explore] = random_slates(self._random, obs, rows=np.flatnonzero(explore))
        return Slates(obs.user_ids, slates)

    def propensities(self, obs: Observation, slates: Slates) -> np.ndarray:
        """``(1 - epsilon) * P_greedy + epsilon / C`` per slot of the served slates.

        ``P_greedy`` is 1 at the item's rank by estimate, or ``1 / g`` over the ranks of its
        ``g`` equal estimates (fresh items share the prior: their order is the tie-break's).
        """
        eps = self.params.epsilon
        est = self.estimates(obs.candidate_pool if obs.shared_candidates else obs.candidates)
        return (1.0 - eps) * tie_propensities(est, obs, slates) + eps * uniform_propensities(obs)


class UCB1Agent(_CountingAgent):
    """UCB1 (Auer et al., 2002) on per-item click rates, learned online.

    The index of item ``i`` is ``clicks_i / n_i + c * sqrt(2 ln N / n_i)``, where ``n_i`` is
    its number of impressions and ``N`` the total impressions of all items so far. Items never
    shown come first, in an order drawn per step from the item ids. All users of a step with
    the same candidates get the same slate (the index is deterministic).
    """

    class Params(ParamsModel):
        """Scenario keys of the UCB1 agent."""

        c: float = Field(
            1.0, ge=0, le=100, description="Width c of the bonus c*sqrt(2 ln N / n_i)."
        )

    def __init__(self, params: Params, ctx: Any) -> None:
        super().__init__(params, ctx)
        self._tiebreak = Stream(self.seed, "agent/ucb1/tiebreak")

    def indices(self, item_ids: np.ndarray) -> np.ndarray:
        """UCB1 index of ``item_ids`` (any shape); ``inf`` for items never shown."""
        clicks = self._counts.get(_CLICKS, item_ids)
        n = self._counts.get(_IMPRESSIONS, item_ids)
        total = max(float(self._counts.values[_IMPRESSIONS].sum()), 1.0)
        safe = np.maximum(n, 1.0)
        idx = clicks / safe + self.params.c * np.sqrt(2.0 * np.log(total) / safe)
        return np.where(n > 0, idx, np.inf)

    logging_policy = "sampled"  # never-shown items (and equal indices) in a random order

    def propensities(self, obs: Observation, slates: Slates) -> np.ndarray:
        """1 at an item's rank by index, or ``1 / g`` for a group of ``g`` equal indices."""
        if obs.shared_candidates:
            return tie_propensities(self.indices(obs.candidate_pool), obs, slates)
        return tie_propensities(self.indices(obs.candidates), obs, slates)

    def act(self, obs: Observation) -> Slates:
        """Top candidates by UCB1 index, never-shown items first."""
        cands = obs.candidate_pool
        idx = self.indices(cands)
        u = self._tiebreak.uniform(cands, obs.step)
        s = np.where(np.isinf(idx), _UNSEEN + u, idx + 1e-9 * u)
        return Slates(obs.user_ids, top_k(s, obs.candidates, obs.slate_size, obs.shared_candidates))


class ThompsonSamplingAgent(_CountingAgent):
    """Beta-Bernoulli Thompson sampling on per-item click rates, learned online.

    Item ``i`` has the posterior Beta(``prior_alpha + clicks_i``, ``prior_beta + impressions_i
    - clicks_i``). Every served user draws one click rate per candidate (keyed by the user, the
    item and the step, so draws do not depend on who else is served) and gets the top items by
    draw. The Beta draw is exact: a ratio of two Marsaglia-Tsang gamma draws made from keyed
    normals and uniforms (see :func:`beta_logit_draws`).
    """

    logging_policy = "unknown"  # posterior sampling: no closed-form slate probability

    class Params(ParamsModel):
        """Scenario keys of the Thompson sampling agent."""

        prior_alpha: float = Field(
            1.0, gt=0, le=1e6, description="Prior pseudo-clicks alpha of the Beta prior."
        )
        prior_beta: float = Field(
            1.0, gt=0, le=1e6, description="Prior pseudo-non-clicks beta of the Beta prior."
        )

    def __init__(self, params: Params, ctx: Any) -> None:
        super().__init__(params, ctx)
        self._draws = Stream(self.seed, "agent/thompson/draws")

    def posterior(self, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(alpha, beta)`` of the Beta posterior of ``item_ids`` (same shape as the ids)."""
        clicks = self._counts.get(_CLICKS, item_ids)
        imps = self._counts.get(_IMPRESSIONS, item_ids)
        return self.params.prior_alpha + clicks, self.params.prior_beta + imps - clicks

    def sample(
        self, user_ids: np.ndarray, candidates: np.ndarray, step: int, shared: bool = False
    ) -> np.ndarray:
        """``(B, C)`` posterior click-rate logits, one draw per user and candidate.

        Args:
            user_ids: ``(B,)`` users.
            candidates: ``(B, C)`` their candidate item ids.
            step: the step of the draws.
            shared: whether every row of ``candidates`` is the same (the posterior is then
                looked up once per item).
        """
        items = candidates[0] if shared else candidates
        a, b = self.posterior(items)
        return beta_logit_draws(self._draws, _pair_ids(user_ids, candidates), step, a, b)

    def act(self, obs: Observation) -> Slates:
        """Top candidates by each user's own posterior draw."""
        s = self.sample(obs.user_ids, obs.candidates, obs.step, obs.shared_candidates)
        return Slates(obs.user_ids, top_k(s, obs.candidates, obs.slate_size, shared=False))


# ----------------------------------------------------------------------------- linear

# ----------------------------------------------------------------------------- linear


class LinUCBAgent(_LinearBandit):
    """LinUCB (Li et al., WWW 2010) with one shared parameter vector over ``x_ui``.

    Every candidate scores ``theta_hat^T x_ui + alpha sqrt(x_ui^T A^-1 x_ui)`` for each user;
    the model is the ridge regression of :class:`_LinearBandit`, updated online.
    """

    _stream = "agent/linucb"

    class Params(ParamsModel):
        """Scenario keys of the LinUCB agent."""

        alpha: float = Field(
            1.0, ge=0, le=100, description="Width alpha of the bonus alpha*sqrt(x^T A^-1 x)."
        )
        reg: float = Field(
            1.0, gt=0, le=1e6, description="Ridge regulariser lambda: A starts as lambda*I."
        )

    def scores(self, obs: Observation) -> np.ndarray:
        """``(B, C)`` upper confidence bounds of the candidates (keeps the step's context)."""
        u, v = self._prepare(obs)
        theta, a_inv, _ = self.solve()
        scores = _linear_scores(theta, u, v)
        if self.params.alpha == 0:  # no exploration bonus: skip its (B, C, D^2) forms
            scores += 0.0  # (what adding 0 * width gives: -0.0 becomes 0.0)
            return scores
        width = _quadratic(a_inv, u, v)
        np.maximum(width, 0.0, out=width)
        np.sqrt(width, out=width)
        width *= self.params.alpha
        scores += width
        return scores

    def act(self, obs: Observation) -> Slates:
        """Top candidates by upper confidence bound."""
        return self._finish(obs, self.scores(obs))


class LinearThompsonAgent(_LinearBandit):
    """Linear Thompson sampling (Agrawal and Goyal, ICML 2013) over ``x_ui``.

    Each served user draws ``theta ~ N(theta_hat, scale^2 A^-1)`` once per step (keyed by the
    user and the step) and gets the top candidates by ``theta^T x_ui``. Draws are
    ``theta_hat + scale S z`` with ``S S^T = A^-1`` and ``z`` a keyed standard normal vector.
    """

    _stream = "agent/linear-ts"

    logging_policy = "unknown"  # posterior sampling: no closed-form slate probability

    class Params(ParamsModel):
        """Scenario keys of the linear Thompson sampling agent."""

        scale: float = Field(
            0.5, ge=0, le=100, description="Posterior scale v: theta ~ N(theta_hat, v^2 A^-1)."
        )
        reg: float = Field(
            1.0, gt=0, le=1e6, description="Ridge regulariser lambda: A starts as lambda*I."
        )

    def __init__(self, params: Params, ctx: Any) -> None:
        super().__init__(params, ctx)
        self._draws = Stream(self.seed, "agent/linear-ts/theta")

    def sample_theta(self, user_ids: np.ndarray, step: int) -> np.ndarray:
        """``(B, D)`` one posterior draw of ``theta`` per user, keyed by user and step."""
        theta, _, root = self.solve()
        z = self._draws.normal(user_ids, step, size=theta.shape[0])
        return theta + self.params.scale * z @ root.T

    def act(self, obs: Observation) -> Slates:
        """Top candidates by each user's own draw of ``theta``."""
        u, v = self._prepare(obs)
        return self._finish(obs, _linear_scores(self.sample_theta(obs.user_ids, obs.step), u, v))


# ----------------------------------------------------------------------------- Diag-LinUCB


class DiagLinUCBAgent(_EdgeSums, Agent):
    """Diag-LinUCB over (item, user cluster) edges, learned online.

    From Yi et al., "Online Matching: A Real-time Bandit System for Large-scale
    Recommendations" (RecSys 2023, arXiv 2307.15893).

    Clusters. On its first ``act`` (or the first platform start-up step, whose feedback it
    learns from) the agent clusters the observable profiles of the users
    served by k-means (k-means++ seeding with keyed draws, then Lloyd iterations); the
    centroids are fixed from then on (the paper clusters two-tower embeddings offline).

    Context. User ``u`` has weights on its ``clusters_per_user`` nearest centroids: a softmax
    of negative squared distances, ``w_uc`` proportional to ``exp(-||u - mu_c||^2 /
    temperature)``, summing to 1 over those clusters (0 elsewhere), computed at ``act`` from
    the profile.

    Model. Each edge (item ``j``, cluster ``c``) keeps ``d_jc = reg + sum w_uc^2`` and
    ``b_jc = sum w_uc r`` over the impressions of ``j`` (reward ``r`` = click), and

        score_j(u) = sum_c w_uc b_jc / d_jc + alpha sqrt(sum_c w_uc^2 / d_jc),

    i.e. LinUCB on the context ``w_u`` with the diagonal of each item's ``A_j = reg I + sum w
    w^T``. A new item has ``d = reg`` and ``b = 0``: full uncertainty, so it gets explored.

    Distribution. Updates are sums per edge, so they commute: :meth:`partial_update` turns
    any subset of the step's feedback (a shard of users) into edge increments, and
    :meth:`apply_update` adds increments in any order; ``update`` is the two in one.
    """

    class Params(ParamsModel):
        """Scenario keys of the Diag-LinUCB agent."""

        alpha: float = Field(
            1.0, ge=0, le=100, description="Width alpha of the bonus alpha*sqrt(sum w^2/d)."
        )
        reg: float = Field(1.0, gt=0, le=1e6, description="Initial d_jc of every edge (lambda).")
        num_clusters: int = Field(
            16, ge=1, le=4096, description="Number of k-means clusters of user profiles."
        )
        clusters_per_user: int = Field(
            3, ge=1, le=64, description="Nearest clusters a user has weight on (top-k)."
        )
        temperature: float = Field(
            0.5,
            gt=0,
            le=1e6,
            description="Softmax temperature of the weights over squared distances.",
        )
        kmeans_iters: int = Field(
            25, ge=1, le=1000, description="Maximum Lloyd iterations of the k-means."
        )

        @model_validator(mode="after")
        def _check_clusters(self) -> DiagLinUCBAgent.Params:
            if self.clusters_per_user > self.num_clusters:
                raise ValueError(
                    f"Expects `clusters_per_user` <= `num_clusters` ({self.num_clusters}), "
                    f"actual value: {self.clusters_per_user}"
                )
            return self

    def __init__(self, params: Params, ctx: Any) -> None:
        super().__init__(params, ctx)
        self.centroids: np.ndarray | None = None
        self._d = np.zeros((0, 0))  # (capacity, clusters) sums of w^2, without reg
        self._b = np.zeros((0, 0))  # (capacity, clusters) sums of w r
        self._users = _Kept("users")
        self._kmeans = Stream(self.seed, "agent/diag-linucb/kmeans")
        self._tiebreak = Stream(self.seed, "agent/diag-linucb/tiebreak")

    # ---------------------------------------------------------------- acting
    def scores(self, obs: Observation) -> np.ndarray:
        """``(B, C)`` Diag-LinUCB scores (fits the clusters on first use, keeps the weights)."""
        idx, w = self._served(obs)
        sums = (self._b, self._d, self.params.reg, self.params.alpha)
        return diag_ucb_scores(*sums, w, idx, obs.candidates, obs.shared_candidates)

    def _served(self, obs: Observation) -> tuple[np.ndarray, np.ndarray]:
        """``(idx, w)`` clusters and weights of the served users (kept for learning)."""
        idx, w = self._keep(obs.user_ids, obs.user_features)
        if obs.candidates.size:  # (no user: no candidate, nothing to grow)
            self._grow(int(obs.candidates.max()))
        return idx, w

    def act(self, obs: Observation) -> Slates:
        """Top candidates by score, ties broken per (item, step)."""
        idx, w = self._served(obs)
        sums = (self._b, self._d, self.params.reg, self.params.alpha)
        tie = 1e-9 * self._tiebreak.uniform(obs.candidate_pool, obs.step)
        cands, shared, k = obs.candidates, obs.shared_candidates, obs.slate_size
        return Slates(obs.user_ids, diag_ucb_slates(sums, w, idx, cands, shared, tie, k))
