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

from simlab.batch import Feedback, Observation, Slates, lookup_sorted
from simlab.rng import Stream
from simlab.scenario import ParamsModel

from .base import Agent, ItemCounts, random_slates, top_k, uniform_propensities

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

_CLICKS, _IMPRESSIONS = 0, 1
_PAIR_SHIFT = np.int64(1 << 32)
"""(user, item) pairs are keyed as ``user * 2**32 + item`` for per-pair draws."""
_GAMMA_ROUNDS = 6
"""Rejection rounds of the Marsaglia-Tsang gamma sampler (each accepts >= 95%)."""
_UNSEEN = 1e6
"""Score offset that puts never-shown items ahead of every UCB1 index."""
_USER_BLOCK = 1024
"""Users per block when the linear bandits build ``(block, d, d)`` matrices."""
_CACHE_BLOCK = 32
"""Users per piece while building those matrices (the piece's passes stay in cache)."""


# ----------------------------------------------------------------------------- helpers


def _rewards(feedback: Feedback) -> np.ndarray:
    """``(B, K)`` float64: 1 at the clicked slot of each row, else 0."""
    k = feedback.slates.shape[1]
    return (np.arange(k)[None, :] == feedback.clicked_pos[:, None]).astype(np.float64)


def _pair_ids(user_ids: np.ndarray, item_ids: np.ndarray) -> np.ndarray:
    """``(B, C)`` keys ``user * 2**32 + item`` of users ``(B,)`` and their items ``(B, C)``."""
    return np.asarray(user_ids, np.int64)[:, None] * _PAIR_SHIFT + item_ids


class _Kept:
    """Arrays per id (sorted ids) kept from ``act`` so ``update`` can look them up."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.ids = np.zeros(0, np.int64)
        self.arrays: dict[str, np.ndarray] = {}

    def keep(self, ids: np.ndarray, **arrays: np.ndarray) -> None:
        """Remember ``arrays`` (first axis aligned with the sorted ``ids``)."""
        self.ids = np.asarray(ids, np.int64)
        self.arrays = arrays

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """Row of each id; raises ``RuntimeError`` if one was not in the last ``act``."""
        pos, found = lookup_sorted(self.ids, ids)
        if not found.all():
            bad = np.unique(np.asarray(ids)[~found])[:5].tolist()
            raise RuntimeError(
                f"update() got {self.what} {bad} that the last act() did not see; "
                "call act() on the same step's observation first"
            )
        return pos

    def state(self, prefix: str) -> dict[str, np.ndarray]:
        """Copies of the kept arrays under ``<prefix>_<name>`` keys."""
        out = {f"{prefix}_ids": self.ids.copy()}
        out.update({f"{prefix}_{k}": np.array(v, copy=True) for k, v in self.arrays.items()})
        return out

    def load(self, prefix: str, state: dict[str, Any]) -> None:
        """Restore what :meth:`state` returned."""
        head = f"{prefix}_"
        self.ids = np.asarray(state[f"{prefix}_ids"], np.int64).copy()
        self.arrays = {
            k[len(head) :]: np.array(v, copy=True)
            for k, v in state.items()
            if k.startswith(head) and k != f"{prefix}_ids"
        }


# ----------------------------------------------------------------------------- item-level


class _CountingAgent(Agent):
    """Shared part of the item-level agents: click and impression counters per item id."""

    serving = "replica"  # per-item counters, published every step (online learning)

    def __init__(self, params: ParamsModel, ctx: Any) -> None:
        super().__init__(params, ctx)
        self._counts = ItemCounts(num_fields=2)

    def update(self, feedback: Feedback) -> None:
        """Count impressions of every shown item and clicks of clicked ones."""
        self._counts.add(_IMPRESSIONS, feedback.slates)
        self._counts.add(_CLICKS, feedback.clicked_items[feedback.clicked])

    def state_dict(self) -> dict[str, Any]:
        """The click and impression counters, ``(2, capacity)``."""
        return {"counts": self._counts.values.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the counters."""
        self._counts.values = np.asarray(state["counts"], np.float64).copy()


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
        cands = obs.candidates[0] if obs.shared_candidates else obs.candidates
        s = self.estimates(cands) + 1e-9 * self._tiebreak.uniform(cands, obs.step)
        slates = top_k(s, obs.candidates, obs.slate_size, obs.shared_candidates)
        self._greedy = slates
        explore = self._explore.uniform(obs.user_ids, obs.step) < self.params.epsilon
        if explore.any():
            slates = np.array(slates)
            slates[explore] = random_slates(self._random, obs, rows=np.flatnonzero(explore))
        return Slates(obs.user_ids, slates)

    def propensities(self, obs: Observation, slates: Slates) -> np.ndarray:
        """``(1 - epsilon) * [greedy slot] + epsilon / C`` per slot of the served slates."""
        eps = self.params.epsilon
        greedy = np.asarray(self._greedy) == slates.item_ids
        return (1.0 - eps) * greedy + eps * uniform_propensities(obs)


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

    def act(self, obs: Observation) -> Slates:
        """Top candidates by UCB1 index, never-shown items first."""
        cands = obs.candidates[0] if obs.shared_candidates else obs.candidates
        idx = self.indices(cands)
        u = self._tiebreak.uniform(cands, obs.step)
        s = np.where(np.isinf(idx), _UNSEEN + u, idx + 1e-9 * u)
        return Slates(obs.user_ids, top_k(s, obs.candidates, obs.slate_size, obs.shared_candidates))


def _log_gamma(
    rounds: list[Stream], boost: Stream, ids: np.ndarray, step: int, shape: np.ndarray
) -> np.ndarray:
    """``log`` of one Gamma(``shape``, 1) draw per key, by Marsaglia and Tsang (2000).

    Vectorised over keys: round ``r`` draws a normal and a uniform from ``rounds[r]`` (keyed
    by ``ids`` and ``step``) for the keys still rejected, so each key's draw depends only on
    its own key. Each round accepts with probability >= 0.95; keys rejected in all
    ``len(rounds)`` rounds (probability < 0.05**6 ~ 2e-8) keep their last proposal
    ``d * (1 + c x)**3`` (with ``1 + c x`` floored at 1e-3), which is the Wilson-Hilferty
    approximation of the gamma. A shape ``a < 1`` is boosted: ``G(a) = G(a + 1) U**(1/a)``.

    Args:
        rounds: one stream per rejection round.
        boost: stream of the uniforms that boost shapes below 1.
        ids: ``(n,)`` int64 keys.
        step: the step of the draws.
        shape: ``(n,)`` positive shapes.

    Returns:
        ``(n,)`` float64 log gamma draws.
    """
    a = np.where(shape < 1.0, shape + 1.0, shape)
    d = a - 1.0 / 3.0
    c = 1.0 / np.sqrt(9.0 * d)
    out = np.log(d)
    todo = None  # None = every key (no gathers in the first round)
    for stream in rounds:
        sel = slice(None) if todo is None else todo
        u = stream.uniform(ids[sel], step, size=3)
        x = np.sqrt(-2.0 * np.log(u[:, 0])) * np.cos(2.0 * np.pi * u[:, 1])
        dt = d[sel]
        base = 1.0 + c[sel] * x
        logv = 3.0 * np.log(np.maximum(base, 1e-3))
        v = base * base * base
        ok = (base > 0) & (np.log(u[:, 2]) < 0.5 * x * x + dt - dt * v + dt * logv)
        if todo is None:
            out += logv  # final for accepted keys, the fallback for the rest
            todo = np.flatnonzero(~ok)
        else:
            out[todo] = np.log(dt) + logv
            todo = todo[~ok]
        if todo.size == 0:
            break
    small = np.flatnonzero(shape < 1.0)
    if small.size:
        out[small] += np.log(boost.uniform(ids[small], step)) / shape[small]
    return out


def beta_logit_draws(
    stream: Stream, ids: np.ndarray, step: int, alpha: np.ndarray, beta: np.ndarray
) -> np.ndarray:
    """Logits ``log(X / (1 - X))`` of Beta(``alpha``, ``beta``) draws ``X``, one per key.

    ``X = G_a / (G_a + G_b)`` with independent gamma draws (see :func:`_log_gamma`); the
    logit ``log G_a - log G_b`` is returned because it keeps full precision where ``X`` is
    within float rounding of 0 or 1, and it ranks items exactly as ``X`` does.

    Args:
        stream: parent stream; sub-streams ``a/round<r>``, ``b/round<r>`` and ``*/boost``.
        ids: keys of the draws (any shape, e.g. ``(B, C)`` user-item pairs).
        step: the step of the draws.
        alpha: positive first shapes, broadcastable to ``ids.shape``.
        beta: positive second shapes, broadcastable to ``ids.shape``.

    Returns:
        Float64 logits of shape ``ids.shape``; ``1 / (1 + exp(-logit))`` is the Beta draw.
    """
    ids = np.asarray(ids, np.int64)
    flat = ids.ravel()
    logs = []
    for side, shape in (("a", alpha), ("b", beta)):
        shp = np.broadcast_to(np.asarray(shape, np.float64), ids.shape).ravel()
        rounds = [stream.child(f"{side}/round{r}") for r in range(_GAMMA_ROUNDS)]
        logs.append(_log_gamma(rounds, stream.child(f"{side}/boost"), flat, step, shp))
    return (logs[0] - logs[1]).reshape(ids.shape)


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


def pair_features(user_features: np.ndarray, item_features: np.ndarray) -> np.ndarray:
    """The pair features ``x_ui = [u * v, v, 1]`` of the linear bandits.

    Args:
        user_features: ``(..., d)`` observable profiles, broadcastable against the items.
        item_features: ``(..., d)`` observable item features.

    Returns:
        ``(..., 2 d + 1)`` float64 features.
    """
    u = np.asarray(user_features, np.float64)
    v = np.asarray(item_features, np.float64)
    u, v = np.broadcast_arrays(u, v)
    d = v.shape[-1]
    x = np.empty(v.shape[:-1] + (2 * d + 1,))
    np.multiply(u, v, out=x[..., :d])
    x[..., d : 2 * d] = v
    x[..., 2 * d] = 1.0
    return x


def _linear_scores(theta: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``(B, C)`` values ``theta^T x_ui`` without forming ``x``.

    Args:
        theta: ``(D,)`` shared or ``(B, D)`` per-user parameters, ``D = 2 d + 1``.
        u: ``(B, d)`` user profiles.
        v: ``(C, d)`` shared or ``(B, C, d)`` per-user candidate features.
    """
    d = u.shape[1]
    theta = np.atleast_2d(theta)
    w = theta[:, :d] * u + theta[:, d : 2 * d]  # (B, d): theta_a * u + theta_b
    bias = theta[:, 2 * d, None]
    out = w @ v.T if v.ndim == 2 else np.einsum("bcd,bd->bc", v, w)
    out += bias
    return out


def _quadratic(m: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``(B, C)`` quadratic forms ``x_ui^T m x_ui`` without forming ``x``.

    With ``x = [u * v, v, 1]`` and ``m`` in blocks ``(a, b, 1)``, ``x^T m x = v^T Q_u v +
    l_u^T v + m_11`` where ``Q_u = (u u^T) * m_aa + diag(u) m_ab + m_ba diag(u) + m_bb`` and
    ``l_u = 2 (u * m_a1 + m_b1)``. The ``(B, d, d)`` matrices ``Q_u`` replace a ``(B, C, D)``
    array of pair features; they are built for ``_USER_BLOCK`` users at a time to bound
    memory, into scratch arrays reused from block to block.

    Args:
        m: ``(D, D)`` symmetric matrix.
        u: ``(B, d)`` user profiles.
        v: ``(C, d)`` shared or ``(B, C, d)`` per-user candidate features.
    """
    b_, d = u.shape
    maa, mab, mbb = m[:d, :d], m[:d, d : 2 * d], m[d : 2 * d, d : 2 * d]
    lin = 2.0 * (u * m[:d, 2 * d] + m[d : 2 * d, 2 * d])
    shared = v.ndim == 2
    if shared:
        vv = (v[:, :, None] * v[:, None, :]).reshape(v.shape[0], d * d).T  # (d*d, C)
        out = lin @ v.T
    else:
        out = np.einsum("bci,bi->bc", v, lin)
    out += m[2 * d, 2 * d]
    # per-block scratch, reused: (block, d, d) matrices, a term of them, the block's forms
    q = np.empty((min(_USER_BLOCK, b_), d, d))
    term = np.empty((min(_CACHE_BLOCK, b_), d, d))
    forms = np.empty((q.shape[0], out.shape[1])) if shared else None
    for start in range(0, b_, _USER_BLOCK):  # blocks of users, each block vectorised
        blk = slice(start, start + _USER_BLOCK)
        n = min(_USER_BLOCK, b_ - start)
        qb = q[:n]
        for sub in range(0, n, _CACHE_BLOCK):  # (block, d, d), built in cache-sized pieces
            end = min(sub + _CACHE_BLOCK, n)
            us, qs, ts = u[start + sub : start + end], qb[sub:end], term[: end - sub]
            np.multiply(us[:, :, None], us[:, None, :], out=qs)
            qs *= maa
            qs += np.multiply(us[:, :, None], mab, out=ts)
            qs += np.multiply(mab.T, us[:, None, :], out=ts)
            qs += mbb
        if shared:
            out[blk] += np.matmul(qb.reshape(n, d * d), vv, out=forms[:n])
        else:
            out[blk] += np.einsum("bcj,bcj->bc", v[blk] @ qb, v[blk])
    return out


class _LinearBandit(Agent):
    """Shared model of LinUCB and linear Thompson sampling.

    Ridge regression of the click on ``x_ui`` (see :func:`pair_features`): ``A = reg I +
    sum x x^T`` and ``b = sum r x`` over every impression, ``theta_hat = A^-1 b``. ``A^-1`` and
    its square root are re-derived from one Cholesky factor of the ``(D, D)`` matrix ``A``
    when the first ``act`` after an update needs them (``O(D^3)`` per step, ``D = 2 d + 1``).
    The dimension ``d`` is read from the first observation; user profiles and item features
    must have the same dimension.
    """

    _stream: str = "agent/linear"
    serving = "replica"  # A and b broadcast every step; the learner keeps served profiles

    def __init__(self, params: ParamsModel, ctx: Any) -> None:
        super().__init__(params, ctx)
        self._a: np.ndarray | None = None
        self._b: np.ndarray | None = None
        self._solved: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._users = _Kept("users")
        self._items = _Kept("items")
        self._tiebreak = Stream(self.seed, f"{self._stream}/tiebreak")

    def serving_state(self) -> dict[str, Any]:
        """``A (D, D)`` and ``b (D,)`` (empty before the first observation): all ``act`` reads."""
        empty = self._a is None
        return {
            "A": np.zeros((0, 0)) if empty else self._a.copy(),
            "b": np.zeros(0) if empty else self._b.copy(),
        }

    def load_serving_state(self, state: dict[str, Any]) -> None:
        """Serve with ``A`` and ``b`` of :meth:`serving_state`."""
        a = np.asarray(state["A"], np.float64)
        self._a = a.copy() if a.size else None
        self._b = np.asarray(state["b"], np.float64).copy() if a.size else None
        self._solved = None

    def serving_record(self, obs: Observation) -> dict[str, np.ndarray]:
        """The served users' ids ``(B,)`` and profiles ``(B, d)`` (what ``update`` reads)."""
        return {"user_ids": obs.user_ids, "features": obs.user_features}

    def record_served(self, obs_step: int, record: dict[str, np.ndarray], catalog: Any) -> None:
        """Keep the served users' profiles and the catalog as :meth:`act` would."""
        d = catalog.features.shape[1]
        if self._a is None:
            self._a = self.params.reg * np.eye(2 * d + 1)
            self._b = np.zeros(2 * d + 1)
        self._users.keep(record["user_ids"], features=record["features"])
        self._items.keep(catalog.item_ids, features=catalog.features)

    def _prepare(self, obs: Observation) -> tuple[np.ndarray, np.ndarray]:
        """Keep the step's context; return ``u (B, d)`` and ``v (C, d)`` or ``(B, C, d)``."""
        d = obs.catalog.features.shape[1]
        if obs.user_features.shape[1] != d:
            raise ValueError(
                f"{type(self).__name__} needs user features of the item dimension d={d}, "
                f"actual user feature dimension: {obs.user_features.shape[1]}"
            )
        if self._a is None:
            self._a = self.params.reg * np.eye(2 * d + 1)
            self._b = np.zeros(2 * d + 1)
        elif self._a.shape[0] != 2 * d + 1:
            raise ValueError(
                f"{type(self).__name__} was fitted on item features of dimension "
                f"{(self._a.shape[0] - 1) // 2}, actual: {d}"
            )
        self._users.keep(obs.user_ids, features=obs.user_features)
        self._items.keep(obs.catalog.item_ids, features=obs.catalog.features)
        cands = obs.candidates[0] if obs.shared_candidates else obs.candidates
        v = obs.catalog.features[obs.catalog.rows(cands)].astype(np.float64)
        return obs.user_features.astype(np.float64), v

    def solve(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(theta_hat (D,), A^-1 (D, D), S (D, D))`` with ``S S^T = A^-1``."""
        if self._a is None:
            raise RuntimeError(f"{type(self).__name__}: no model before the first act()")
        if self._solved is None:
            l_inv = np.linalg.inv(np.linalg.cholesky(self._a))
            a_inv = l_inv.T @ l_inv
            self._solved = (a_inv @ self._b, a_inv, l_inv.T)
        return self._solved

    def update(self, feedback: Feedback) -> None:
        """Add ``x x^T`` and ``r x`` of every impression of the step to ``A`` and ``b``."""
        if feedback.user_ids.size == 0:
            return
        u = self._users.arrays["features"][self._users.rows(feedback.user_ids)]
        v = self._items.arrays["features"][self._items.rows(feedback.slates)]
        x = pair_features(u[:, None, :], v).reshape(-1, self._a.shape[0])
        self._a += x.T @ x
        self._b += x.T @ _rewards(feedback).ravel()
        self._solved = None

    def _finish(self, obs: Observation, scores: np.ndarray) -> Slates:
        """Slates from ``(B, C)`` scores plus a tiny per-(item, step) tie-break."""
        cands = obs.candidates[0] if obs.shared_candidates else obs.candidates
        scores += 1e-9 * self._tiebreak.uniform(cands, obs.step)  # scores: ours to change
        return Slates(obs.user_ids, top_k(scores, obs.candidates, obs.slate_size, shared=False))

    def state_dict(self) -> dict[str, Any]:
        """``A`` and ``b`` (empty before the first act) and the last step's context."""
        empty = self._a is None
        return {
            "A": np.zeros((0, 0)) if empty else self._a.copy(),
            "b": np.zeros(0) if empty else self._b.copy(),
            **self._users.state("users"),
            **self._items.state("items"),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``A``, ``b`` and the kept context."""
        a = np.asarray(state["A"], np.float64)
        self._a = a.copy() if a.size else None
        self._b = np.asarray(state["b"], np.float64).copy() if a.size else None
        self._solved = None
        self._users.load("users", state)
        self._items.load("items", state)


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


def _sq_dist(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """``(n, k)`` squared distances of points ``(n, f)`` to centres ``(k, f)``."""
    d2 = (x * x).sum(1)[:, None] - 2.0 * x @ centres.T + (centres * centres).sum(1)[None, :]
    return np.maximum(d2, 0.0)


def _kmeans(x: np.ndarray, num_clusters: int, iters: int, stream: Stream) -> np.ndarray:
    """``(k, f)`` centroids of points ``x (n, f)``, ``k = min(num_clusters, n)``.

    k-means++ seeding (centre ``c`` is drawn by a keyed categorical draw with key ``c``),
    then at most ``iters`` Lloyd iterations; an empty cluster keeps its centroid.
    """
    n = x.shape[0]
    k = min(num_clusters, n)
    centres = np.empty((k, x.shape[1]))
    centres[0] = x[stream.integers([0], 0, n)[0]]
    d2 = _sq_dist(x, centres[:1])[:, 0]
    for c in range(1, k):  # loop over clusters, vectorised over points
        if d2.sum() > 0:
            pick = stream.categorical([c], 0, d2[None, :])[0]
        else:  # every point coincides with a centre
            pick = stream.integers([c], 0, n)[0]
        centres[c] = x[pick]
        d2 = np.minimum(d2, _sq_dist(x, centres[c : c + 1])[:, 0])
    for _ in range(iters):
        labels = _sq_dist(x, centres).argmin(1)
        counts = np.bincount(labels, minlength=k).astype(np.float64)
        sums = np.zeros_like(centres)
        np.add.at(sums, labels, x)
        new = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1.0)[:, None], centres)
        if np.array_equal(new, centres):
            break
        centres = new
    return centres


class DiagLinUCBAgent(Agent):
    """Diag-LinUCB over (item, user cluster) edges, learned online.

    From Yi et al., "Online Matching: A Real-time Bandit System for Large-scale
    Recommendations" (RecSys 2023, arXiv 2307.15893).

    Clusters. On its first ``act`` the agent clusters the observable profiles of the users
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

    # ---------------------------------------------------------------- context
    def user_clusters(self, user_features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Nearest clusters and weights of profiles ``(B, f)``: ``(B, k)`` ids, ``(B, k)``."""
        if self.centroids is None:
            raise RuntimeError("DiagLinUCBAgent: no clusters before the first act()")
        k = min(self.params.clusters_per_user, self.centroids.shape[0])
        d2 = _sq_dist(np.asarray(user_features, np.float64), self.centroids)
        idx = np.argsort(d2, axis=1, kind="stable")[:, :k]
        logits = -np.take_along_axis(d2, idx, axis=1) / self.params.temperature
        w = np.exp(logits - logits.max(axis=1, keepdims=True))
        return idx, w / w.sum(axis=1, keepdims=True)

    def _grow(self, max_id: int) -> None:
        if max_id >= self._d.shape[0]:
            size = max(max_id + 1, 2 * self._d.shape[0], 1024)
            for name in ("_d", "_b"):
                old = getattr(self, name)
                new = np.zeros((size, old.shape[1]))
                new[: old.shape[0]] = old
                setattr(self, name, new)

    def edge_stats(self, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(d, b)`` of ``item_ids`` (any shape) with every cluster: ``ids.shape + (k,)``."""
        item_ids = np.asarray(item_ids)
        if item_ids.size:
            self._grow(int(item_ids.max()))
        return self.params.reg + self._d[item_ids], self._b[item_ids].copy()

    # ---------------------------------------------------------------- acting
    def scores(self, obs: Observation) -> np.ndarray:
        """``(B, C)`` Diag-LinUCB scores (fits the clusters on first use, keeps the weights)."""
        feats = obs.user_features.astype(np.float64)
        if self.centroids is None:
            self.centroids = _kmeans(
                feats, self.params.num_clusters, self.params.kmeans_iters, self._kmeans
            )
            self._d = np.zeros((0, self.centroids.shape[0]))
            self._b = np.zeros((0, self.centroids.shape[0]))
        idx, w = self.user_clusters(feats)
        self._users.keep(obs.user_ids, clusters=idx, weights=w)
        reg = self.params.reg
        if obs.shared_candidates:  # gather the item rows once: (clusters, C)
            rows = obs.candidates[0]
            self._grow(int(rows.max()))
            inv = (1.0 / (reg + self._d[rows])).T
            ratio = self._b[rows].T * inv
            mean = np.einsum("bk,bkc->bc", w, ratio[idx])
            var = np.einsum("bk,bkc->bc", w * w, inv[idx])
        else:  # (B, C, k) edges of each user's candidates and clusters
            self._grow(int(obs.candidates.max()))
            edge = (obs.candidates[:, :, None], idx[:, None, :])
            inv = 1.0 / (reg + self._d[edge])
            mean = np.einsum("bck,bk->bc", self._b[edge] * inv, w)
            var = np.einsum("bck,bk->bc", inv, w * w)
        return mean + self.params.alpha * np.sqrt(var)

    def act(self, obs: Observation) -> Slates:
        """Top candidates by score, ties broken per (item, step)."""
        cands = obs.candidates[0] if obs.shared_candidates else obs.candidates
        s = self.scores(obs) + 1e-9 * self._tiebreak.uniform(cands, obs.step)
        return Slates(obs.user_ids, top_k(s, obs.candidates, obs.slate_size, shared=False))

    # ---------------------------------------------------------------- learning
    def partial_update(self, feedback: Feedback) -> dict[str, np.ndarray]:
        """Edge increments of a batch of feedback (e.g. one shard's users).

        Args:
            feedback: feedback of users served by the last ``act``.

        Returns:
            One entry per distinct edge touched: ``item_ids`` ``(E,)``, ``clusters`` ``(E,)``,
            ``d`` ``(E,)`` (sum of ``w_uc^2``) and ``b`` ``(E,)`` (sum of ``w_uc r``).

        Raises:
            RuntimeError: a user was not served by the last ``act``.
        """
        rows = self._users.rows(feedback.user_ids)
        idx = self._users.arrays["clusters"][rows]  # (B, k)
        w = self._users.arrays["weights"][rows]  # (B, k)
        r = _rewards(feedback)  # (B, K)
        nc = self._d.shape[1]
        keys = feedback.slates[:, :, None] * nc + idx[:, None, :]  # (B, K, k)
        dw = np.broadcast_to((w * w)[:, None, :], keys.shape)
        bw = w[:, None, :] * r[:, :, None]
        edges, inv = np.unique(keys.ravel(), return_inverse=True)
        return {
            "item_ids": edges // nc,
            "clusters": edges % nc,
            "d": np.bincount(inv, weights=dw.ravel(), minlength=edges.size),
            "b": np.bincount(inv, weights=bw.ravel(), minlength=edges.size),
        }

    def apply_update(self, partial: dict[str, np.ndarray]) -> None:
        """Add edge increments from :meth:`partial_update` (any order, repeats accumulate)."""
        items = np.asarray(partial["item_ids"], np.int64)
        clusters = np.asarray(partial["clusters"], np.int64)
        if not items.shape == clusters.shape == np.shape(partial["d"]) == np.shape(partial["b"]):
            raise ValueError(
                "Expects `item_ids`, `clusters`, `d` and `b` of one shape, actual shapes: "
                f"{[np.shape(partial[k]) for k in ('item_ids', 'clusters', 'd', 'b')]}"
            )
        if items.size == 0:
            return
        self._grow(int(items.max()))
        np.add.at(self._d, (items, clusters), np.asarray(partial["d"], np.float64))
        np.add.at(self._b, (items, clusters), np.asarray(partial["b"], np.float64))

    def update(self, feedback: Feedback) -> None:
        """``apply_update(partial_update(feedback))``."""
        if feedback.user_ids.size:
            self.apply_update(self.partial_update(feedback))

    def state_dict(self) -> dict[str, Any]:
        """Centroids (empty before the first act), edge sums and the kept user weights."""
        return {
            "centroids": np.zeros((0, 0)) if self.centroids is None else self.centroids.copy(),
            "d": self._d.copy(),
            "b": self._b.copy(),
            **self._users.state("users"),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore centroids, edge sums and kept user weights."""
        c = np.asarray(state["centroids"], np.float64)
        self.centroids = c.copy() if c.size else None
        self._d = np.asarray(state["d"], np.float64).copy()
        self._b = np.asarray(state["b"], np.float64).copy()
        self._users.load("users", state)
