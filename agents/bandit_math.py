"""Shared math of the bandit agents: keyed posterior draws, pair features, k-means.

Beta draws of Thompson sampling (:func:`beta_logit_draws`, from keyed Marsaglia-Tsang gamma
draws); the pair features ``x_ui = [u * v, v, 1]`` of the linear bandits and the scores and
quadratic forms computed from them without forming ``(B, C, D)`` arrays; Diag-LinUCB's
scores (:func:`diag_ucb_scores`) and the k-means of its user clusters; and the small
helpers every bandit shares (rewards per slot, pair keys, the context kept from ``act`` for
``update``). See :mod:`simlab.agents.bandits`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from simlab.batch import Feedback, lookup_sorted, row_blocks
from simlab.rng import Stream

from .base import top_k

__all__ = ["beta_logit_draws", "diag_ucb_scores", "diag_ucb_slates", "pair_features"]

_PAIR_SHIFT = np.int64(1 << 32)
"""(user, item) pairs are keyed as ``user * 2**32 + item`` for per-pair draws."""
_GAMMA_ROUNDS = 6
"""Rejection rounds of the Marsaglia-Tsang gamma sampler (each accepts >= 95%)."""
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


# ----------------------------------------------------------------------------- Beta draws


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
    sides = []
    for side, shape in (("a", alpha), ("b", beta)):
        shp = np.broadcast_to(np.asarray(shape, np.float64), ids.shape).ravel()
        rounds = [stream.child(f"{side}/round{r}") for r in range(_GAMMA_ROUNDS)]
        sides.append((rounds, stream.child(f"{side}/boost"), shp))
    (ra, ba, sa), (rb, bb, sb) = sides
    out = np.empty(flat.shape[0])
    # block by block: each key's draw depends on its key only, and a block's many passes
    # (rounds of normals, uniforms and logs) stay in cache
    for lo in range(0, flat.shape[0], _GAMMA_BLOCK):
        block = slice(lo, lo + _GAMMA_BLOCK)
        keys = flat[block]
        out[block] = _log_gamma(ra, ba, keys, step, sa[block]) - _log_gamma(
            rb, bb, keys, step, sb[block]
        )
    return out.reshape(ids.shape)


_GAMMA_BLOCK = 1 << 15
"""Keys per block of :func:`beta_logit_draws`."""


def diag_ucb_scores(
    sums_b: np.ndarray,
    sums_d: np.ndarray,
    reg: float,
    alpha: float,
    w: np.ndarray,
    idx: np.ndarray,
    candidates: np.ndarray,
    shared: bool,
) -> np.ndarray:
    """``(B, C)`` Diag-LinUCB scores ``sum_k w_k b_ik / (reg + d_ik) + alpha sqrt(var)``.

    ``var = sum_k w_k^2 / (reg + d_ik)`` over each user's clusters ``idx`` (``(B, k)``, with
    weights ``w``), from the per-(item, cluster) sums ``sums_b`` and ``sums_d``. Computed
    block by block of users, so a block's ``(users, clusters, C)`` gathers stay in cache;
    each user's scores are the same as over all users at once.

    Args:
        sums_b: ``(capacity, clusters)`` sums of ``w r`` per item row.
        sums_d: ``(capacity, clusters)`` sums of ``w^2`` per item row.
        reg: the ridge term.
        alpha: the width of the confidence bonus.
        w: ``(B, k)`` cluster weights of the served users.
        idx: ``(B, k)`` their clusters.
        candidates: ``(B, C)`` candidate item ids (rows of the sums).
        shared: whether every row of ``candidates`` is the same.
    """
    b, c = candidates.shape
    if shared:  # gather the item rows once: (clusters, C)
        rows = candidates[0]
        inv_c = (1.0 / (reg + sums_d[rows])).T
        ratio_c = sums_b[rows].T * inv_c
    out = np.empty((b, c))
    step = max(1, _SCORE_BLOCK // max(c * idx.shape[1], 1))  # users per block
    for lo in range(0, b, step):
        ws, ks = w[lo : lo + step], idx[lo : lo + step]
        if shared:
            mean = np.einsum("bk,bkc->bc", ws, ratio_c[ks])
            var = np.einsum("bk,bkc->bc", ws * ws, inv_c[ks])
        else:  # (B, C, k) edges of each user's candidates and clusters
            edge = (candidates[lo : lo + step, :, None], ks[:, None, :])
            inv = 1.0 / (reg + sums_d[edge])
            mean = np.einsum("bck,bk->bc", sums_b[edge] * inv, ws)
            var = np.einsum("bck,bk->bc", inv, ws * ws)
        out[lo : lo + step] = mean + alpha * np.sqrt(var)
    return out


_SCORE_BLOCK = 1 << 17
"""(user, cluster, candidate) cells per block of :func:`diag_ucb_scores`."""


def diag_ucb_slates(sums: tuple, w, idx, candidates, shared: bool, tie, k: int) -> np.ndarray:
    """``(B, k)`` the top ``k`` candidates by Diag-LinUCB score plus ``tie``, best first.

    Users go in blocks (:func:`~simlab.batch.row_blocks`): a block's scores
    (:func:`diag_ucb_scores` of ``sums = (sums_b, sums_d, reg, alpha)``) are ranked while in
    cache, and no ``(B, C)`` array is made. Every score is per user, so the slates are those
    of all users at once. ``tie``: ``(C,)`` offsets when ``shared``, else ``(B, C)``.
    """
    b, c = candidates.shape
    slates = np.empty((b, k), np.int64)
    for sub in row_blocks(b, c * idx.shape[1], _SERVE_BLOCK):
        s = diag_ucb_scores(*sums, w[sub], idx[sub], candidates[sub], shared)
        s += tie if shared else tie[sub]
        slates[sub] = top_k(s, candidates[sub], k, shared=False)
    return slates


_SERVE_BLOCK = 1 << 20
"""(user, cluster, candidate) cells per block of :func:`diag_ucb_slates`."""


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
    memory, into scratch arrays reused from block to block. ``Q_u`` is symmetric, so with
    shared candidates ``v^T Q_u v`` is a product over its ``d (d + 1) / 2`` upper entries
    (the candidates' ``v_i v_j``, doubled off the diagonal): half the FLOPs of all ``d^2``.

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
        upper = _upper(d)  # flat indices of Q's entries (i, j), i <= j
        vv = np.ascontiguousarray((v[:, upper // d] * v[:, upper % d]).T)  # (d(d+1)/2, C)
        vv[upper // d != upper % d] *= 2.0  # Q_ij v_i v_j + Q_ji v_j v_i, Q_ij = Q_ji
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
            out[blk] += np.matmul(qb.reshape(n, d * d)[:, upper], vv, out=forms[:n])
        else:
            out[blk] += np.einsum("bcj,bcj->bc", v[blk] @ qb, v[blk])
    return out


def _upper(d: int) -> np.ndarray:
    """Flat indices ``i * d + j`` of a ``(d, d)`` matrix's entries with ``i <= j``, row-major."""
    i, j = np.triu_indices(d)
    return i * d + j


# ----------------------------------------------------------------------------- k-means


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
