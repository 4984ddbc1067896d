"""Reference policies for the Gymnasium envs: feature match and a SlateQ-style learner.

Both work on ``simlab/SlateRec-v0`` observations (one user) and on ``simlab/Platform-v0``
ones (``U`` users stacked), and return candidate indices ``(K,)`` or ``(U, K)``
(``C`` candidates, ``K`` slots, ``d`` feature dimensions). Both score a candidate by
``<user, item>``, so the user features must live in the item feature space (``f = d``, as
every registered user model's do); other observations are refused with a ``ValueError``.

:class:`SlateQAgent` follows the decomposition of SlateQ (Ie et al., IJCAI 2019): the value
of a slate is the choice-probability-weighted sum of item-wise long-term values
``Q(s, i)``; the user's choice is modelled as a conditional logit over the slate plus a
no-click option with scores ``v(s, i) = <user, item>``; and the slate served is the top-K
by ``exp(v) * Q`` (SlateQ's greedy top-K). It needs the per-slot feedback the envs put in
``info``: the executed slate, the clicked position and its engagement. Departures from the
paper: ``Q`` is linear in hand-made features (not a network), the choice model is fixed
(not learned) and the update is one SGD step of TD(0) per served user and step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from simlab.rng import Stream

__all__ = ["feature_match", "SlateQAgent"]


def _batch(obs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(user (B, d), history (B, H, d), candidates (B, C, d))`` of an observation.

    One user's observation (``user (d,)``) becomes a batch of one (``B = 1``).

    Raises:
        ValueError: if the user features' dimension is not the items' ``d``.
    """
    user, hist, cands = obs["user"], obs["history"], obs["candidates"]
    if user.shape[-1] != cands.shape[-1]:
        raise ValueError(
            "Expects user features in the item feature space (f = d), actual dimensions: "
            f"user {user.shape[-1]}, candidates {cands.shape[-1]}"
        )
    b = math.prod(user.shape[:-1])  # users: 1 for one user's observation
    return (
        user.reshape(b, user.shape[-1]),
        hist.reshape(b, *hist.shape[-2:]),
        cands.reshape(b, *cands.shape[-2:]),
    )


def _unbatch(idx: np.ndarray, obs: dict[str, np.ndarray]) -> np.ndarray:
    """``idx (B, K)`` shaped as ``obs`` is: ``(K,)`` for one user, ``(B, K)`` for a batch."""
    return idx.reshape(*obs["user"].shape[:-1], idx.shape[1])


def feature_match(k: int) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    """A policy serving the ``k`` candidates with the largest ``<user, item>`` feature match."""

    def policy(obs: dict[str, np.ndarray]) -> np.ndarray:
        user, _, cands = _batch(obs)
        scores = np.einsum("bcd,bd->bc", cands, user)
        return _unbatch(np.argsort(-scores, axis=1, kind="stable")[:, :k], obs)

    return policy


class SlateQAgent:
    """A linear SlateQ-style agent (see the module docstring).

    ``Q(s, i) = w . phi(s, i)`` with ``phi = [user * item (d), <user, item>,
    <mean history, item>, 1]``.

    Args:
        slate_size: ``K``.
        seed: seed of the exploration draws (a :mod:`simlab.rng` stream; default 0).
        gamma: discount of the long-term value (default 0.9).
        lr: SGD step size (default 0.05).
        epsilon: probability of a random slate when exploring (default 0.1).
        no_click_score: the no-click option's score in the choice model (default 1.0).

    Exploration is reproducible: the ``n``-th exploring :meth:`act` call (from 0) draws, for
    each row ``b`` of the batch, ``1 + C`` uniforms of the stream ``(seed,
    "baselines/slateq/explore")`` at ids ``b`` and step ``n``; the row gets a random slate
    when the first is below ``epsilon``, made of the candidates of the ``K`` smallest other
    draws (smallest first).
    """

    def __init__(
        self,
        slate_size: int,
        seed: int = 0,
        gamma: float = 0.9,
        lr: float = 0.05,
        epsilon: float = 0.1,
        no_click_score: float = 1.0,
    ) -> None:
        self.k = slate_size
        self.gamma, self.lr, self.epsilon = gamma, lr, epsilon
        self.no_click = no_click_score
        self.w: np.ndarray | None = None
        self._explore = Stream(seed, "baselines/slateq/explore")
        self._t = 0

    def _features(self, obs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """``(phi (B, C, p), v (B, C))`` for every candidate."""
        user, hist, cands = _batch(obs)
        mean_hist = hist.mean(axis=1)
        v = np.einsum("bcd,bd->bc", cands, user)
        h = np.einsum("bcd,bd->bc", cands, mean_hist)
        prod = cands * user[:, None, :]
        ones = np.ones_like(v)
        phi = np.concatenate([prod, v[..., None], h[..., None], ones[..., None]], axis=2)
        if self.w is None:
            self.w = np.zeros(phi.shape[2])
        return phi, v

    def _slate_value(self, q: np.ndarray, v: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """``(B,)`` expected long-term value of the slates ``idx`` under the choice model."""
        ev = np.exp(np.take_along_axis(v, idx, axis=1))
        p = ev / (ev.sum(axis=1, keepdims=True) + np.exp(self.no_click))
        return (p * np.take_along_axis(q, idx, axis=1)).sum(axis=1)

    def _greedy(self, q: np.ndarray, v: np.ndarray) -> np.ndarray:
        return np.argsort(-(np.exp(v) * q), axis=1, kind="stable")[:, : self.k]

    def act(self, obs: dict[str, np.ndarray], explore: bool = False) -> np.ndarray:
        """Candidate indices ``(K,)`` or ``(U, K)``: the greedy top-K, or random when exploring."""
        phi, v = self._features(obs)
        idx = self._greedy(phi @ self.w, v)
        if explore:
            b, c = v.shape
            u = self._explore.uniform(np.arange(b), self._t, size=1 + c)
            self._t += 1
            rnd = np.argsort(u[:, 1:], axis=1)[:, : self.k]
            idx = np.where((u[:, 0] < self.epsilon)[:, None], rnd, idx)
        return _unbatch(idx, obs)

    def update(
        self,
        obs: dict[str, np.ndarray],
        info: dict[str, Any],
        next_obs: dict[str, np.ndarray],
        terminated: bool,
    ) -> None:
        """One TD(0) step on the consumed item of each served user (per-slot feedback)."""
        phi, _ = self._features(obs)
        served = np.atleast_1d(info["served"])
        pos = np.atleast_1d(info["clicked_position"])
        slate = np.atleast_2d(info["slate"])
        engagement = np.atleast_2d(info["engagement"])
        rows = np.flatnonzero(np.logical_and(served, pos >= 0))
        if not rows.size:
            return
        item = slate[rows, pos[rows]]
        reward = engagement[rows, pos[rows]]
        nphi, nv = self._features(next_obs)
        nq = nphi @ self.w
        future = self._slate_value(nq, nv, self._greedy(nq, nv))[rows]
        target = reward + (0.0 if terminated else self.gamma) * future
        x = phi[rows, item]
        err = target - x @ self.w
        self.w += self.lr * (err[:, None] * x).mean(axis=0)
