"""The platform: candidate retrieval, re-ranking, logging and the retrain schedule.

Retrieval gives every served user either all live items (``max_candidates: 0`` or a small
catalog; the candidate matrix is then a zero-copy broadcast view) or a cheap pre-selection:
a per-step random permutation of the live items from which each user reads a window of
``max_candidates`` consecutive entries at a personal random offset (distinct items, O(B*C)).

The platform logs impressions and responses for ``log_window`` steps and keeps each user's
recent clicks (the observation's history). Every ``retrain_every`` steps it snapshots the
log; the agent is retrained on that snapshot and the new model serves from ``deploy_lag``
steps later (the retrain call itself happens just before that step's ``act``, with the
stale log, which is equivalent and keeps one model in memory).
"""

from __future__ import annotations

import weakref
from collections import deque
from typing import Any

import numpy as np

from simlab.batch import PAD, Catalog, Deferred, Feedback, Log, Observation, Slates
from simlab.contract import check_reranked
from simlab.errors import ScenarioError
from simlab.log_partition import latest_features
from simlab.rng import Stream
from simlab.scenario import PlatformSection
from simlab.world_context import WorldContext

__all__ = ["Platform", "ClickHistory"]


class ClickHistory:
    """Each user's most recent clicks (what the observation's ``history`` shows).

    Holds users ``lo..hi-1``; on Ray each user shard keeps the histories of its own users.
    Each user's row is a ring buffer of ``H`` item ids written backwards (click ``c`` goes to
    column ``H - 1 - c % H``) and mirrored into a second copy of the ring (columns
    ``H..2H-1``), so the ``H`` most recent clicks, most recent first, are always the ``H``
    consecutive entries that start at the latest click: :meth:`get` copies one contiguous
    window per user instead of gathering and re-ordering ``H`` scattered entries.

    :meth:`deferred` hands out histories that are built only if read; any still referenced
    are built before the buffers change, so they always show the clicks at the time.
    """

    def __init__(self, lo: int, hi: int, length: int) -> None:
        self.lo, self.hi, self.length = lo, hi, length
        self._buf = np.full((hi - lo, 2 * length), PAD, np.int64)  # (users, 2H), see above
        # the clicked items' topics, in the same layout (Steck's calibration reads them)
        self._topics = np.full((hi - lo, 2 * length), PAD, np.int64)
        self.num_clicks = np.zeros(hi - lo, np.int64)
        self._pending: list[weakref.ref] = []  # deferred histories not built yet

    def _starts(self, loc: np.ndarray) -> np.ndarray:
        """Flat index in ``_buf`` of the latest click of each local user ``loc`` (B,)."""
        h = self.length
        first = (h - self.num_clicks[loc] % h) % h  # the column of the latest click
        first += loc * (2 * h)
        return first

    def get(self, user_ids: np.ndarray) -> np.ndarray:
        """``(B, H)`` most recent clicks first, ``PAD``-padded."""
        return self._windows(self._buf, user_ids)

    def topics(self, user_ids: np.ndarray) -> np.ndarray:
        """``(B, H)`` topics of the most recent clicks first, ``PAD`` where none (or unknown)."""
        return self._windows(self._topics, user_ids)

    def _windows(self, buf: np.ndarray, user_ids: np.ndarray) -> np.ndarray:
        h = self.length
        n = buf.size
        # one window of H consecutive entries per user: rows of a strided view of the buffer
        windows = np.lib.stride_tricks.as_strided(
            buf, shape=(max(n - h + 1, 0), h), strides=(8, 8), writeable=False
        )
        return windows[self._starts(np.asarray(user_ids) - self.lo)]

    def deferred(self, user_ids: np.ndarray) -> Deferred:
        """:meth:`get` of ``user_ids`` as a :class:`~simlab.batch.Deferred`: built if read."""
        d = Deferred(lambda: self.get(user_ids))
        self._pending.append(weakref.ref(d))
        return d

    def _settle(self) -> None:
        """Build the deferred histories still referenced: their clicks are about to change."""
        for ref in self._pending:
            d = ref()
            if d is not None:
                d.resolve()
        self._pending.clear()

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_pending": []}  # weak references do not pickle

    def record(self, feedback: Feedback, topics: np.ndarray | None = None) -> None:
        """Append each clicking user's clicked item (and its topic: ``(B,)``, per user)."""
        self._settle()
        chose = np.flatnonzero(feedback.clicked_pos >= 0)
        if chose.size:
            h = self.length
            who = feedback.user_ids[chose] - self.lo
            items = feedback.slates[chose, feedback.clicked_pos[chose]]
            flat = who * (2 * h) + (h - 1 - self.num_clicks[who] % h)
            topics = PAD if topics is None else topics[chose]
            for buf, values in ((self._buf, items), (self._topics, topics)):
                buf = buf.ravel()  # a view: the buffers are contiguous
                buf[flat] = values
                buf[flat + h] = values
            self.num_clicks[who] += 1

    @property
    def clicks(self) -> np.ndarray:
        """``(users, H)`` the ring buffers in write order (click ``c`` in column ``c % H``)."""
        return self._buf[:, self.length - 1 :: -1]

    def state_dict(self) -> dict[str, np.ndarray]:
        """Per-user arrays (first axis: users ``lo..hi-1``)."""
        topics = self._topics[:, self.length - 1 :: -1].copy()
        return {
            "clicks": self.clicks.copy(),
            "num_clicks": self.num_clicks.copy(),
            "topics": topics,
        }

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`state_dict` returned (no topics in older states: unknown)."""
        clicks, num = np.asarray(state["clicks"]), np.asarray(state["num_clicks"])
        expected = (self._buf.shape[0], self.length)
        if clicks.shape != expected or num.shape != self.num_clicks.shape:
            raise ValueError(
                f"Expects click histories of shape {expected}, actual shape: {clicks.shape}"
            )
        topics = np.asarray(state.get("topics", np.full(expected, PAD)))
        if topics.shape != expected:
            raise ValueError(
                f"Expects click topics of shape {expected}, actual shape: {topics.shape}"
            )
        self._settle()
        ring = clicks.astype(np.int64)[:, ::-1]
        self._buf = np.concatenate([ring, ring], axis=1)
        ring = topics.astype(np.int64)[:, ::-1]
        self._topics = np.concatenate([ring, ring], axis=1)
        self.num_clicks = num.astype(np.int64)


class Platform:
    """Serving, logging and retrain scheduling for one world.

    Args:
        section: the scenario's ``platform`` section.
        ctx: the world context (``num_users`` set).
        rerankers: built re-ranker instances, applied in order.

    The platform reads users' click histories through ``clicks`` (a :class:`ClickHistory`
    the world's user side keeps up to date).
    """

    def __init__(self, section: PlatformSection, ctx: WorldContext, rerankers: list[Any]) -> None:
        self.section = section
        self.ctx = ctx
        self.rerankers = rerankers
        self.knows_source = section.knows_source
        self.clicks: ClickHistory | None = None
        self._log: deque[tuple[Any, np.ndarray, np.ndarray]] = deque(maxlen=section.log_window)
        self._pending: list[tuple[int, Any]] = []
        # set by the Ray learner (simlab.execution.ray_learner): the user shards keep the
        # feedback part of the log; this platform keeps each step's number, shown items and
        # their features, and a due retrain's snapshot is that central window
        self.log_on_shards = False
        self._perm = Stream(ctx.seed, "platform/retrieval_perm")
        self._offset = Stream(ctx.seed, "platform/retrieval_offset")
        self._startup = Stream(ctx.seed, "platform/startup")

    # ---------------------------------------------------------------- serving
    def slate_width(self, num_candidates: int) -> int:
        """K: the slate size, or every candidate with ``slate_size: 0``."""
        return self.section.slate_size or num_candidates

    def depth(self, num_candidates: int) -> int:
        """How many items the agent ranks: K, or the re-rank depth when re-rankers are on."""
        k = self.slate_width(num_candidates)
        if not self.rerankers or not self.section.slate_size:
            return k
        return min(num_candidates, self.section.rerank_depth or 3 * k)

    def in_startup(self, t: int) -> bool:
        """Whether step ``t`` is a start-up step (the platform serves random rankings)."""
        return t < self.section.startup_steps

    def candidates(
        self,
        t: int,
        user_ids: np.ndarray,
        catalog: Catalog,
        consumed: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, bool]:
        """``(B, C)`` candidate item ids and whether they are shared by every user.

        Args:
            t: the step.
            user_ids: ``(B,)`` the served users.
            catalog: the live items.
            consumed: with no repeat consumption, each user's consumed live items as
                ``(indptr (B + 1,), items)``; they are left out of the user's candidates.
        """
        sec = self.section
        n, c, k = catalog.num_items, sec.max_candidates, sec.slate_size
        if self.in_startup(t) and sec.startup_candidates == "new":
            new = catalog.item_ids[catalog.age == 0]
            if new.size < max(k, 1):
                raise ScenarioError(
                    f"platform.startup_candidates: 'new' serves the items published at the step, "
                    f"but step {t} published {new.size}, fewer than slate_size {k}; raise "
                    "content.items_per_step or use startup_candidates: all"
                )
            return np.broadcast_to(new, (user_ids.size, new.size)), True
        if n < max(k, 1):
            raise ScenarioError(
                f"platform.slate_size: {k} is more than the {n} live "
                f"items at step {t}; increase content.initial_items or content.items_per_step "
                "(content.num_docs for a fixed corpus)"
            )
        most = int(np.diff(consumed[0]).max(initial=0)) if consumed is not None else 0
        if most:
            return self._unconsumed(t, user_ids, catalog, consumed, most), False
        if c == 0 or n <= c:
            return np.broadcast_to(catalog.item_ids, (user_ids.size, n)), True
        perm = catalog.item_ids[np.argsort(self._perm.uniform(catalog.item_ids, t))]
        start = self._offset.integers(user_ids, t, n)
        return perm[(start[:, None] + np.arange(c)) % n], False

    def _unconsumed(
        self,
        t: int,
        user_ids: np.ndarray,
        catalog: Catalog,
        consumed: tuple[np.ndarray, np.ndarray],
        most: int,
    ) -> np.ndarray:
        """Candidates without each user's consumed items (``most``: the largest count).

        Each user reads a window of the step's random permutation of the live items from a
        personal offset (as without the rule), ``most`` entries longer, drops the consumed
        items in it and keeps the first ``C`` others: ``C = max_candidates``, or every live
        item but ``most`` when ``max_candidates`` is 0 (a user who consumed fewer loses a
        random few). O(B (C + most)), no loop over users. When ``max_candidates`` is 0 and
        every user consumed as many live items, nobody loses one: each row is the catalog,
        in id order, without the user's consumed items.
        """
        n, c, k = catalog.num_items, self.section.max_candidates, self.section.slate_size
        b = user_ids.size
        width = n if c == 0 or c + most >= n else c + most
        size = n - most if c == 0 else min(c, n - most)
        if size < max(k, 1):
            raise ScenarioError(
                f"platform.exclude_consumed: at step {t} a user has consumed {most} of the {n} "
                f"live items, leaving {n - most}, fewer than slate_size {k}; publish more "
                "items (content.items_per_step; content.num_docs for a fixed corpus) or lower "
                "platform.slate_size"
            )
        indptr, items = consumed
        if c == 0 and (np.diff(indptr) == most).all():
            # every user consumed as many live items: each row is the catalog without them
            keep = np.ones((b, n), bool)
            keep[np.repeat(np.arange(b), most), catalog.rows(items)] = False
            return np.broadcast_to(catalog.item_ids, keep.shape)[keep].reshape(b, size)
        order = np.argsort(self._perm.uniform(catalog.item_ids, t))
        place = np.empty(n, np.int64)
        place[order] = np.arange(n)  # each catalog row's position in the permutation
        start = self._offset.integers(user_ids, t, n)
        owner = np.repeat(np.arange(b), np.diff(indptr))
        at = (place[catalog.rows(items)] - start[owner]) % n  # position in the user's window
        inside = at < width
        keep = np.ones((b, width), bool)
        keep[owner[inside], at[inside]] = False
        dropped = np.bincount(owner[inside], minlength=b)
        if (dropped != width - size).any():  # rows with more than `size` left: the first
            keep &= np.cumsum(keep, axis=1, dtype=np.int32) <= size
        window = catalog.item_ids[order][(start[:, None] + np.arange(width)) % n]
        return window[keep].reshape(b, size)

    def startup_slates(self, obs: Observation, k: int) -> Slates:
        """The top ``k`` of a uniformly random ranking of each user's candidates (start-up)."""
        u = self._startup.uniform(obs.user_ids, obs.step, size=obs.candidates.shape[1])
        order = np.argsort(u, axis=1, kind="stable")[:, :k]
        return Slates(obs.user_ids, np.take_along_axis(obs.candidates, order, axis=1))

    def observe(
        self,
        t: int,
        user_ids: np.ndarray,
        catalog: Catalog,
        user_features: np.ndarray,
        history: np.ndarray | None = None,
        consumed: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> Observation:
        """The observation for the users served at step ``t``.

        ``history`` is the users' click histories when the caller already has them (user
        shards send them with the arrivals); by default they are read from ``clicks``.
        ``consumed`` is each user's consumed live items (no repeat consumption).
        """
        cands, shared = self.candidates(t, user_ids, catalog, consumed)
        return Observation(
            step=t,
            user_ids=user_ids,
            user_features=user_features,
            history=self.history(user_ids) if history is None else history,
            candidates=cands,
            catalog=catalog,
            slate_size=self.depth(cands.shape[1]),
            shared_candidates=shared,
        )

    def history(self, user_ids: np.ndarray) -> np.ndarray:
        """``(B, H)`` most recent clicks first, ``PAD``-padded."""
        if self.clicks is None:
            raise RuntimeError("Platform.history needs the users' click histories (`clicks`)")
        return self.clicks.get(user_ids)

    def rerank(self, obs: Observation, ranked: Slates) -> Slates:
        """Apply the configured re-rankers in order and cut to K items."""
        items = ranked.item_ids
        for i, rr in enumerate(self.rerankers):
            who = f"re-ranker {i + 1} of {len(self.rerankers)} ({type(rr).__name__})"
            items = check_reranked(rr.rerank(obs, items), ranked.user_ids.shape[0], who)
        k = self.section.slate_size or items.shape[1]
        return Slates(ranked.user_ids, np.ascontiguousarray(items[:, :k]))

    # ---------------------------------------------------------------- logging
    def record(
        self, t: int, feedback: Feedback, catalog: Catalog, shown: np.ndarray | None = None
    ) -> None:
        """Log the step, notify re-rankers, schedule a retrain if due.

        ``shown`` is the sorted ids of the items shown at the step when the caller knows
        them (from the user shards' exposure counts). Click histories are updated by the
        user side, which owns them.
        """
        if shown is None:
            shown = np.unique(feedback.slates)
        feats = catalog.features[catalog.rows(shown)] if shown.size else catalog.features[:0]
        self._log.append((t if self.log_on_shards else feedback, shown, feats))
        for rr in self.rerankers:
            rr.update(feedback)
        if self.section.retrain_due(t):
            snap = list(self._log) if self.log_on_shards else self.log()
            self._pending.append((t + self.section.deploy_lag, snap))

    def log(self) -> Log:
        """The log window as one :class:`~simlab.batch.Log`."""
        if not self._log:
            k = self.section.slate_size
            return Log(
                step=np.zeros(0, np.int64),
                user_ids=np.zeros(0, np.int64),
                slates=np.zeros((0, k), np.int64),
                clicked_pos=np.zeros(0, np.int64),
                engagement=np.zeros(0, np.float32),
                feature_ids=np.zeros(0, np.int64),
                features=np.zeros((0, self.ctx.dim), np.float32),
            )
        window = list(self._log)
        # the per-user arrays and the item features are joined only if the agent reads
        # them (an agent that never looks at features does not pay for them)
        table = Deferred(lambda: latest_features(window))
        ids = Deferred(lambda: table.resolve()[0])
        feats = Deferred(lambda: table.resolve()[1])
        return Log.of_steps([f for f, _, _ in window], ids, feats)

    def deploy_due(self, t: int, agent: Any) -> int:
        """Retrain ``agent`` on every log snapshot whose model is due to serve at step ``t``.

        Returns the number of retrains (serving replicas get the new model when it is > 0).
        """
        due = [log for at, log in self._pending if at <= t]
        self._pending = [(at, log) for at, log in self._pending if at > t]
        for log in due:
            agent.retrain(log)
        return len(due)
