"""The Agent protocol and the vectorised helpers agents share.

An agent needs ``act(obs)``; ``update(feedback)`` (online learning), ``retrain(log)``
(batch learning on the platform's schedule) and ``state_dict``/``load_state_dict``
(checkpoints) are optional. Every agent declares its scenario keys as a nested pydantic
``Params`` model and is built as ``cls(params, ctx)`` with the world context.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from simlab.batch import Feedback, Log, Observation, Slates
from simlab.errors import DependencyNotInstalled
from simlab.execution.threads import torch_threads
from simlab.rng import Stream
from simlab.scenario import ParamsModel

__all__ = [
    "Agent",
    "NoParams",
    "top_k",
    "top_indices",
    "catalog_gather",
    "random_slates",
    "uniform_propensities",
    "RandomUntilTrainedMixin",
    "ItemCounts",
    "require_torch",
]


def require_torch(who: str):
    """Import torch for the agent ``who``, or raise ``DependencyNotInstalled`` naming the fix."""
    try:
        import torch
    except ImportError as e:  # pragma: no cover - torch is a declared dependency
        raise DependencyNotInstalled(
            f"{who} needs torch: pip install torch==2.13.0 (CPU build)"
        ) from e
    return torch


class NoParams(ParamsModel):
    """An agent without scenario keys."""


class Agent:
    """Base class of recommender agents.

    Args:
        params: the agent's validated ``Params``.
        ctx: the world context (seed, sizes). Agents draw randomness through
            ``simlab.rng`` streams named ``agent/<something>``.
    """

    # required in every subclass
    Params: ClassVar[type[ParamsModel]] = NoParams
    # optional
    privileged: ClassVar[bool] = False
    """True only for agents that read latent truth (the oracle); marked in outputs."""
    logging_policy: ClassVar[str] = "deterministic"
    """How the agent's slates are drawn, for the propensities of the event log:
    ``deterministic`` (a function of the observation: propensity 1), ``sampled`` (it draws
    slates and :meth:`propensities` gives their probabilities) or ``unknown`` (it draws slates
    without a closed-form probability, e.g. posterior sampling: logged as NaN)."""

    serving: ClassVar[str] = "central"
    """Where the agent's ``act`` can run on Ray (see ``docs/scale.md``): ``replica`` (a pure
    function of the state :meth:`serving_state` returns and of the observation, row by row
    with draws keyed by user and step, so copies of it in the user shards serve their own
    users), ``central`` (one instance serves every user: it reads latent truth, the social
    graph, or state its ``act`` changes) or ``sharded-by-user`` (per-user state only; served
    centrally for now)."""

    retrain_log: ClassVar[str] = "whole"
    """How :meth:`retrain` reads the platform log on Ray with a learner actor (see
    ``docs/scale.md``): ``whole`` (the default: the user shards' partitions are joined in the
    learner into the log the local backend would give) or ``partitioned`` (each shard
    reduces its users' part with :meth:`log_summary` and the learner combines the summaries
    with :meth:`retrain_from_summaries`; the whole log is never gathered)."""

    def __init__(self, params: ParamsModel, ctx: Any) -> None:
        self.params = params
        self.ctx = ctx
        self.seed = int(ctx.seed)

    def act(self, obs: Observation) -> Slates:
        """Return ``obs.slate_size`` distinct candidates per served user (``obs`` is read-only).

        The world calls it with one user or more; shipped agents give ``(0, K)`` for none.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement act()")

    def update(self, feedback: Feedback) -> None:
        """Learn online from one step of feedback (read-only arrays; default: nothing)."""

    def retrain(self, log: Log) -> None:
        """Retrain on the platform's log window (default: nothing)."""

    def propensities(self, obs: Observation, slates: Slates) -> np.ndarray | None:
        """``(B, K)`` probability that the last :meth:`act` put each slate item in its slot.

        Called right after :meth:`act` on the same ``obs``, before any learning, by agents
        whose ``logging_policy`` is ``sampled``; the default (``None``) means 1 for a
        deterministic agent and NaN for an ``unknown`` one.
        """
        return None

    def serving_blocker(self) -> str | None:
        """Why this instance must serve centrally despite ``serving = "replica"`` (None: it can).

        For settings that make ``act`` keep state (e.g. a per-user memory it writes).
        """
        return None

    def serving_state(self) -> dict[str, Any]:
        """What a serving replica needs to act as this agent would (default: :meth:`state_dict`).

        Published through Ray's object store once per retrain (every step for agents that
        learn online); override to leave out what only learning reads.
        """
        return self.state_dict()

    def load_serving_state(self, state: dict[str, Any]) -> None:
        """Make this replica serve the model of :meth:`serving_state` (default: load it)."""
        self.load_state_dict(state)

    def serving_record(self, obs: Observation) -> dict[str, np.ndarray] | None:
        """What learning needs of an observation a replica served (default: nothing).

        Returns per-user arrays (first axis: ``obs.user_ids``), joined over the shards in
        user-id order and handed to the learning instance's :meth:`record_served`.
        """
        return None

    def record_served(self, obs_step: int, record: dict[str, np.ndarray], catalog: Any) -> None:
        """Keep what :meth:`serving_record` gave, as ``act`` would have (default: nothing)."""

    def learner_blocker(self) -> str | None:
        """Why this instance must learn in the trial actor on Ray (None: a learner actor can).

        For settings whose learning reads the world (e.g. the content model's rewriter).
        """
        return None

    def log_summary(self, log: Log) -> Any:
        """With ``retrain_log = "partitioned"``: a shard's summary of its users' log part.

        Runs in each user shard on a :class:`Log` of its users' rows only (no item
        features); must depend only on the parameters and ``log``.
        """
        raise NotImplementedError(f"{type(self).__name__} declares no log_summary()")

    def retrain_from_summaries(self, summaries: list[Any]) -> None:
        """With ``retrain_log = "partitioned"``: retrain from the shards' summaries.

        ``summaries`` come in shard order (user-id order); the model must be exactly what
        :meth:`retrain` would fit on the whole log.
        """
        raise NotImplementedError(f"{type(self).__name__} declares no retrain_from_summaries()")

    def state_dict(self) -> dict[str, Any]:
        """Learned state as plain data/arrays (default: empty)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (default: nothing to restore)."""


def top_k(scores: np.ndarray, candidates: np.ndarray, k: int, shared: bool) -> np.ndarray:
    """The ``k`` highest-scored candidates per user, best first.

    Args:
        scores: ``(C,)`` when ``shared`` (one score per candidate, same for all users) or
            ``(B, C)``.
        candidates: ``(B, C)`` candidate item ids.
        k: slate size.
        shared: whether every row of ``candidates`` is the same.

    Returns:
        ``(B, k)`` item ids.
    """
    if shared:
        s = _signed(scores[0] if scores.ndim > 1 else scores)
        best = np.argsort(-s, kind="stable")[:k]
        return np.broadcast_to(candidates[0, best], (candidates.shape[0], k))
    return np.take_along_axis(candidates, top_indices(scores, k), axis=1)


_TORCH_TOPK_MIN = 1 << 14
"""Score matrices with fewer entries rank in numpy (torch's call overhead dominates)."""


def _signed(scores: np.ndarray) -> np.ndarray:
    """Scores that can be negated: bools as ``int8``, unsigned integers as ``int64``.

    (Negating a bool array raises and an unsigned one wraps around, reversing the order.)
    """
    if scores.dtype.kind == "b":
        return scores.astype(np.int8)
    if scores.dtype.kind == "u":
        return scores.astype(np.int64 if scores.dtype.itemsize < 8 else np.float64)
    return scores


def top_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """``(B, k)`` column indices of the ``k`` highest scores of each row, best first.

    Exactly what ``argpartition`` then a stable ``argsort`` of the chosen scores give
    (:func:`_top_indices_numpy`). Large matrices are ranked by ``torch.topk`` (several times
    faster); a row whose top ``k + 1`` scores hold a tie or a NaN — where that order is not
    unique, or where torch orders NaN otherwise — is ranked by numpy, so every row gets
    numpy's answer.
    """
    scores = _signed(scores)
    b, c = scores.shape
    if scores.dtype.kind in "fi" and 2 * k >= c and k <= c:
        return _top_indices_sorted(scores, k)
    if scores.size < _TORCH_TOPK_MIN or scores.dtype.kind not in "fi" or k > c:
        return _top_indices_numpy(scores, k)
    torch = require_torch("top_k")
    s = np.ascontiguousarray(scores)
    if not s.flags.writeable:  # torch wants a writable buffer (it does not write to it)
        s = s.copy()
    # on one intra-op thread: torch's idle worker threads spin for a while after a parallel
    # call and slow the next BLAS call down (a GEMM right after a 2-thread topk ran ~2x
    # slower on 2 cores); the agent's own torch setting is restored at once
    with torch_threads(torch, 1):
        vals, idx = torch.topk(torch.from_numpy(s), min(k + 1, c), dim=1)
    vals, idx = vals.numpy(), idx.numpy()
    unsure = (vals[:, 1:] == vals[:, :-1]).any(axis=1)
    if vals.dtype.kind == "f":
        unsure |= np.isnan(vals).any(axis=1)
    out = idx[:, :k]
    if unsure.any():
        rows = np.flatnonzero(unsure)
        out[rows] = _top_indices_numpy(scores[rows], k)
    return out


def _top_indices_sorted(scores: np.ndarray, k: int) -> np.ndarray:
    """:func:`top_indices` for long slates (at least half the row): one full sort per row.

    Cheaper than a partition and a stable sort of most of the row, or ``torch.topk``; a row
    whose top ``k + 1`` hold a tie or NaN is ranked by :func:`_top_indices_numpy` instead.
    """
    head_n = min(k + 1, scores.shape[1])
    if scores.dtype == np.float32:  # find the rows to fall back first: one cheap float32 sort
        top = np.sort(scores, axis=1)[:, scores.shape[1] - head_n :]  # ascending, NaN last
        unsure = (top[:, 1:] == top[:, :-1]).any(axis=1) | np.isnan(top[:, -1])
        out = np.empty((scores.shape[0], k), np.int64)
        sure = np.flatnonzero(~unsure)
        out[sure] = np.argsort(np.negative(scores[sure]), axis=1)[:, :k]  # a unique order
    else:
        key = np.negative(scores, dtype=np.float64)
        order = np.argsort(key, axis=1)
        head = np.take_along_axis(key, order[:, :head_n], axis=1)
        unsure = (head[:, 1:] == head[:, :-1]).any(axis=1) | np.isnan(head).any(axis=1)
        out = order[:, :k]
    if unsure.any():
        rows = np.flatnonzero(unsure)
        out[rows] = _top_indices_numpy(scores[rows], k)
    return out


def _top_indices_numpy(scores: np.ndarray, k: int) -> np.ndarray:
    """:func:`top_indices` by ``argpartition`` and a stable ``argsort`` (the reference)."""
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    return np.take_along_axis(part, stable_descending(part_scores), axis=1)


def stable_descending(values: np.ndarray) -> np.ndarray:
    """``np.argsort(-values, axis=1, kind="stable")``, exactly; faster for wide float32 rows.

    One sort of 64-bit keys: ``-value``'s order-preserving bits (``-0.0`` as ``0.0``, as
    comparisons count it) above the column (ties by position, as the stable sort).
    """
    if values.dtype != np.float32 or values.shape[-1] < _PACKED_MIN or np.isnan(values).any():
        return np.argsort(-values, axis=1, kind="stable")
    bits = (np.negative(values) + np.float32(0.0)).view(np.uint32)  # + 0: no -0.0
    flip = np.where(bits >> np.uint32(31), np.uint32(0xFFFFFFFF), np.uint32(0x80000000))
    key = (bits ^ flip).astype(np.uint64) << np.uint64(32)
    key |= np.arange(values.shape[-1], dtype=np.uint64)
    key.sort(axis=1)
    return (key & np.uint64(0xFFFFFFFF)).astype(np.int64)


_PACKED_MIN = 64  # row width from which stable_descending packs float32 keys


def catalog_gather(values: np.ndarray, obs: Observation) -> np.ndarray:
    """``(B, C)`` the values of each user's candidates, read from values of the live catalog.

    Scoring the ``N`` live items once (or one ``(B, N)`` matrix product) and gathering each
    user's candidates is cheaper than scoring ``(B, C)`` candidate cells one by one when the
    candidates are per user (e.g. without the items a user consumed).

    Args:
        values: ``(N,)`` one value per row of ``obs.catalog``, or ``(B, N)`` per user.
        obs: the observation (its ``candidates`` are live items).
    """
    rows = obs.catalog.rows(obs.candidates)
    if values.ndim == 1:
        return values[rows]
    return np.take_along_axis(values, rows, axis=1)


def random_slates(stream: Stream, obs: Observation, rows: np.ndarray | None = None) -> np.ndarray:
    """``(B, K)`` uniformly random distinct candidates per user (Floyd's sampling).

    Draws are keyed by (user id, step), so a user's slate does not depend on who else is
    served. The loop runs over the K slate positions, vectorised over users.
    """
    user_ids = obs.user_ids if rows is None else obs.user_ids[rows]
    cands = obs.candidates if rows is None else obs.candidates[rows]
    b, c = cands.shape
    k = obs.slate_size
    if k == c:  # every candidate: a uniform permutation, O(C log C) instead of O(K^2)
        order = np.argsort(stream.uniform(user_ids, obs.step, size=c), axis=1)
        return np.take_along_axis(cands, order, axis=1)
    u = stream.uniform(user_ids, obs.step, size=2 * k)
    chosen = np.empty((b, k), np.int64)
    for n, j in enumerate(range(c - k, c)):
        t = np.minimum(np.floor(u[:, n] * (j + 1)).astype(np.int64), j)
        seen = (chosen[:, :n] == t[:, None]).any(axis=1)
        chosen[:, n] = np.where(seen, j, t)
    # Floyd's algorithm gives a uniform set; shuffle its order with the other k draws
    order = np.argsort(u[:, k:], axis=1)
    chosen = np.take_along_axis(chosen, order, axis=1)
    return np.take_along_axis(cands, chosen, axis=1)


def uniform_propensities(obs: Observation, random: bool | np.ndarray = True) -> np.ndarray:
    """``(B, K)`` slot propensities of :func:`random_slates` (``1 / C``), or 1 where not random.

    A uniformly random ordered slate of ``K`` distinct items out of ``C`` candidates puts a
    given candidate in a given slot with probability ``1 / C``.

    Args:
        obs: the observation the slates were drawn for (``C`` candidates per user).
        random: whether the slates were random: one bool, or ``(B,)`` per user.
    """
    b, c = obs.candidates.shape
    rnd = np.broadcast_to(np.asarray(random, bool), (b,))
    return np.where(rnd[:, None], 1.0 / c, np.ones((1, obs.slate_size)))


class RandomUntilTrainedMixin:
    """Propensities of agents that serve :func:`random_slates` until their first retrain.

    Such an agent keeps its model in ``self._model`` (``None`` before the first retrain):
    its slates are uniformly random (``1 / C`` per slot) until then and a deterministic
    top-K (1) after.
    """

    logging_policy: ClassVar[str] = "sampled"

    def propensities(self, obs: Observation, slates: Slates) -> np.ndarray:
        """``(B, K)``: ``1 / C`` before the first retrain, 1 after."""
        return uniform_propensities(obs, getattr(self, "_model", None) is None)


class ItemCounts:
    """Per-item counters indexed by item id, growing as new ids appear."""

    def __init__(self, num_fields: int = 1) -> None:
        self.values = np.zeros((num_fields, 1024), np.float64)

    def _grow(self, max_id: int) -> None:
        if max_id >= self.values.shape[1]:
            size = max(max_id + 1, 2 * self.values.shape[1])
            grown = np.zeros((self.values.shape[0], size), np.float64)
            grown[:, : self.values.shape[1]] = self.values
            self.values = grown

    def add(self, field: int, item_ids: np.ndarray, weights: np.ndarray | None = None) -> None:
        """Add ``weights`` (default 1) to ``field`` of each item id (repeats accumulate)."""
        item_ids = np.asarray(item_ids).ravel()
        if item_ids.size == 0:
            return
        self._grow(int(item_ids.max()))
        w = None if weights is None else np.asarray(weights, np.float64).ravel()
        self.values[field] += np.bincount(item_ids, weights=w, minlength=self.values.shape[1])[
            : self.values.shape[1]
        ]

    def get(self, field: int, item_ids: np.ndarray) -> np.ndarray:
        """Values of ``field`` for ``item_ids`` (0 for ids never counted)."""
        item_ids = np.asarray(item_ids)
        if item_ids.size:
            self._grow(int(item_ids.max()))
        return self.values[field][item_ids]

    def clear(self) -> None:
        """Reset every counter to 0."""
        self.values[:] = 0
