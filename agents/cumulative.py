"""What Chaney et al.'s recommenders keep between retrains, and how they rank.

T-RECS's replication of Chaney et al. (RecSys 2018) trains every recommender on its whole
interaction history (not a recent window) and ranks only the items it was trained with: an
item published after the model's data (a "new" item) scores minus infinity, so it is seen
only where the platform interleaves it (``interleave-new``). This module holds the pieces
those recommenders share:

- :class:`CumulativeLog`: every ``(user, item)`` consumption of the platform logs the agent
  was retrained on, each logged step taken once however the log windows overlap, and the
  last step of the data (the model's *horizon*);
- :class:`ItemBook`: the observable features and publication step of every item the agent
  has seen (in a log or a catalog), indexed by item id;
- :func:`rank_known_first`: rank by score with the items newer than the horizon last, in a
  random order, and exact ties broken at random (keyed by user and step).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from simlab.batch import Log, Observation, lookup_sorted, row_blocks
from simlab.rng import Stream

from .base import top_indices

__all__ = ["CumulativeLog", "ItemBook", "rank_known_first"]


class CumulativeLog:
    """Every consumption in the logs an agent was retrained on (each step once).

    Attributes:
        users: ``(M,)`` int64 user of each consumption, in log order.
        items: ``(M,)`` int64 consumed item.
        horizon: the last logged step ingested (-1 before any data).
    """

    def __init__(self) -> None:
        self.users = np.zeros(0, np.int64)
        self.items = np.zeros(0, np.int64)
        self.horizon = -1

    def ingest(self, log: Log) -> None:
        """Add the consumptions of the log's steps after :attr:`horizon`."""
        if log.num_rows == 0:
            return
        steps = log.step
        new = (steps > self.horizon) & (log.clicked_pos >= 0)
        self.users = np.concatenate([self.users, log.user_ids[new]])
        self.items = np.concatenate([self.items, log.clicked_items[new]])
        self.horizon = max(self.horizon, int(steps.max()))

    def counts(self, user_index: np.ndarray, item_index: np.ndarray, shape: tuple[int, int]):
        """``scipy.sparse.csr_matrix`` of consumption counts, ``(users, items)``.

        ``user_index``/``item_index`` map each consumption to its row and column.
        """
        from scipy import sparse

        data = np.ones(user_index.shape)
        return sparse.csr_matrix((data, (user_index, item_index)), shape=shape)

    def state_dict(self) -> dict[str, Any]:
        """The consumptions and the horizon."""
        return {"users": self.users.copy(), "items": self.items.copy(), "horizon": self.horizon}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.users = np.asarray(state["users"], np.int64)
        self.items = np.asarray(state["items"], np.int64)
        self.horizon = int(state["horizon"])


class ItemBook:
    """Features and publication steps of every item seen, by id (increasing).

    Attributes:
        ids: ``(N,)`` int64 item ids.
        features: ``(N, d)`` float64 observable features.
        published: ``(N,)`` int64 publication step (``-1`` for items seen only in a log,
            which were published no later than the log).
    """

    def __init__(self, dim: int) -> None:
        self.ids = np.zeros(0, np.int64)
        self.features = np.zeros((0, dim))
        self.published = np.zeros(0, np.int64)

    def add(self, ids: np.ndarray, features: np.ndarray, published: np.ndarray) -> None:
        """Add items not seen yet (features of items already held are kept)."""
        fresh = ~lookup_sorted(self.ids, ids)[1]
        if not fresh.any():
            return
        ids = np.concatenate([self.ids, ids[fresh]])
        order = np.argsort(ids, kind="stable")
        self.ids = ids[order]
        self.features = np.concatenate([self.features, features[fresh]])[order]
        self.published = np.concatenate([self.published, published[fresh]])[order]

    def add_log(self, log: Log) -> None:
        """Add the items of a log (publication unknown: -1)."""
        self.add(log.feature_ids, log.features, np.full(log.feature_ids.shape[0], -1))

    def add_catalog(self, obs: Observation) -> None:
        """Add the live items of an observation's catalog, with their publication steps."""
        cat = obs.catalog
        self.add(cat.item_ids, cat.features, obs.step - cat.age)

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """Row of each item id (any shape; every id must have been seen)."""
        return np.searchsorted(self.ids, ids)

    def known(self, horizon: int) -> np.ndarray:
        """Rows of the items published no later than ``horizon``."""
        return np.flatnonzero(self.published <= horizon)

    def state_dict(self) -> dict[str, Any]:
        """Ids, features and publication steps."""
        return {
            "ids": self.ids.copy(),
            "features": self.features.copy(),
            "published": self.published.copy(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.ids = np.asarray(state["ids"], np.int64)
        self.features = np.asarray(state["features"], np.float64)
        self.published = np.asarray(state["published"], np.int64)


def rank_known_first(
    scores: np.ndarray,
    obs: Observation,
    horizon: int | None,
    tiebreak: Stream,
) -> np.ndarray:
    """``(B, K)`` the ``obs.slate_size`` best candidates per user, best first.

    Candidates published after ``horizon`` (None: no horizon) come after every other, in a
    random order; among the rest, higher score first and exact ties in a random order. The
    random order is keyed by (user, item, step), drawn where it can decide something (the
    items after the horizon, the rows that have ties, every item when the scores are
    counts: small integers, ranked by one sort of ``-score + draw``). A slate of at most a
    quarter of the candidates ranks the head only: where a row's ``K + 1`` best keys are
    distinct they are its ranking's head, and a row with a tie or NaN among them is ranked
    whole, so the slate is the first ``K`` of the whole ranking in every case.

    Args:
        scores: ``(B, C)`` scores of ``obs.candidates``.
        obs: the observation.
        horizon: the last step of the model's data, or None.
        tiebreak: the agent's tie-break stream.

    Users go in blocks (:func:`~simlab.batch.row_blocks`), each ranked alone: every key,
    draw and sort is per user (whether the scores are counts, which picks the faster of two
    ways to the same ranking, is decided once over all users).
    """
    b, c = obs.candidates.shape
    late = None if horizon is None else (obs.step - obs.catalog.age) > horizon  # per item
    counts = _small_integers(scores)
    out = np.empty((b, obs.slate_size), np.int64)
    for sub in row_blocks(b, c, _RANK_BLOCK):
        users, cands = obs.user_ids[sub], obs.candidates[sub]
        out[sub] = _rank_rows(scores[sub], cands, users, late, obs, tiebreak, counts)
    return out


_RANK_BLOCK = 1 << 18
"""(user, candidate) cells per block of :func:`rank_known_first`."""


def _rank_rows(scores, cands, user_ids, late, obs: Observation, tiebreak: Stream, counts: bool):
    """:func:`rank_known_first` of some users (``late``: per live item, or None)."""
    b, c = cands.shape
    k = obs.slate_size
    key = -np.asarray(scores, np.float64)  # ascending key: best first
    if late is not None and late.any():
        at = np.nonzero(late[obs.catalog.rows(cands)])
        draw = tiebreak.uniform(_pair_ids(user_ids[at[0]], cands[at]), obs.step)
        key[at] = _LAST * (1.0 + draw)  # after every finite score, in a random order
    if counts:  # one sort of key + draw orders ties at random
        key += tiebreak.uniform(_pair_ids(user_ids[:, None], cands), obs.step)
    if _TOP_RATIO * (k + 1) > c:
        order = _ranked(key, cands, user_ids, obs.step, tiebreak, counts)
        return np.take_along_axis(cands, order[:, :k], axis=1)
    # a short slate: where the k + 1 smallest keys are distinct, they are the ranking's head
    np.negative(key, out=key)  # (exact) the largest first, for top_indices
    top = top_indices(key, k + 1)
    head = np.take_along_axis(key, top, axis=1)
    unsure = np.flatnonzero((head[:, 1:] == head[:, :-1]).any(axis=1) | np.isnan(head).any(axis=1))
    top = top[:, :k]
    if unsure.size:  # a tie (or NaN) near the head
        rows_key, users = -key[unsure], user_ids[unsure]
        head_ok = np.zeros(unsure.size, bool)
        if not counts:  # ties by the draws, still for the head only
            top[unsure], head_ok = _tied_head(rows_key, cands[unsure], users, obs.step, tiebreak, k)
        whole = np.flatnonzero(~head_ok)  # NaN, or equal draws: the whole ranking
        if whole.size:
            rows = unsure[whole]
            top[rows] = _ranked(
                rows_key[whole], cands[rows], users[whole], obs.step, tiebreak, counts
            )[:, :k]
    return np.take_along_axis(cands, top, axis=1)


def _tied_head(key, cands, user_ids, step: int, tiebreak: Stream, k: int):
    """``((R, k) head, (R,) ok)``: each row's first ``k`` as the whole ranking orders them.

    The ``k``-th smallest key ``t`` splits a row: every key below ``t`` is in the head, and
    the items of key ``t`` fill the rest by their smallest draws. The head is ordered by run
    of equal keys plus draw, the whole ranking's values (:func:`_runs_plus_draws`), so no row
    is sorted whole. ``ok`` is False for a row with NaN, or whose head holds equal run-plus-
    draw values or meets the next item of key ``t`` at an equal one (ranked whole instead).
    """
    kth = np.partition(key, k - 1, axis=1)[:, k - 1 : k]
    less, eq = key < kth, key == kth
    draw = tiebreak.uniform(_pair_ids(user_ids[:, None], cands), step)
    comp = np.where(less, -1.0, np.where(eq, draw, 2.0))  # below t, then t by draw, then above
    part = np.argpartition(comp, k, axis=1)[:, : k + 1]  # the k + 1 smallest, unordered
    by = np.argsort(np.take_along_axis(comp, part, axis=1), axis=1)
    head, after = (
        np.take_along_axis(part, by[:, :k], axis=1),
        np.take_along_axis(part, by[:, k:], 1),
    )
    hk, hd = np.take_along_axis(key, head, axis=1), np.take_along_axis(draw, head, axis=1)
    order = np.lexsort((hd, hk), axis=1)
    head, hk, hd = (np.take_along_axis(a, order, axis=1) for a in (head, hk, hd))
    run = np.zeros(hk.shape)
    np.cumsum(hk[:, 1:] != hk[:, :-1], axis=1, out=run[:, 1:])  # run of each head item
    group = run + hd
    # the next item of key t, if any, has the last run's number plus its own draw
    nxt = run[:, -1] + np.take_along_axis(draw, after, axis=1)[:, 0]
    nxt[~eq[np.arange(key.shape[0]), after[:, 0]]] = np.inf
    ok = (group[:, 1:] > group[:, :-1]).all(axis=1) & (nxt > group[:, -1])
    ok &= ~np.isnan(key).any(axis=1)
    return head, ok


_TOP_RATIO = 4
"""Slates of at most 1/4 of the candidates (less one) rank the head only (a partition)."""


def _ranked(key, cands, user_ids, step: int, tiebreak: Stream, counts: bool) -> np.ndarray:
    """``(R, C)`` every candidate's rank order for ascending ``key``, ties by the draws.

    ``counts``: the keys already hold their draws (``key + draw``, see
    :func:`_small_integers`), and one sort orders them.
    """
    if counts:
        return np.argsort(key, axis=1)
    b = key.shape[0]
    order = np.argsort(key, axis=1, kind=_key_sort_kind(key))
    ranked = np.take_along_axis(key, order, axis=1)
    changes = ranked[:, 1:] != ranked[:, :-1]
    tied = np.flatnonzero(~changes.all(axis=1))
    if tied.size:  # exact ties (e.g. a user the model knows nothing of): by the draws
        # runs of equal keys get consecutive integers; + a draw in (0, 1) orders each run
        every = tied.size == b  # (then no row copies)
        sub, ch, cs = (
            (order, changes, cands) if every else (order[tied], changes[tied], cands[tied])
        )
        group = _runs_plus_draws(ch, cs, sub, user_ids[tied], step, tiebreak)
        within = np.argsort(group, axis=1, kind=_run_sort_kind(changes))
        final = np.take_along_axis(sub, within, axis=1)
        # ``group`` holds no equal values almost surely, and then any sort gives its one
        # order; a row that holds some is ranked exactly as before the sorts were chosen
        group = np.take_along_axis(group, within, axis=1)
        again = np.flatnonzero((group[:, 1:] == group[:, :-1]).any(axis=1))
        if again.size:
            rows = tied[again]
            final[again] = _tied_rows_as_before(
                key[rows], cands[rows], user_ids[rows], step, tiebreak
            )
        order[tied] = final
    return order


def _key_sort_kind(key: np.ndarray) -> str | None:
    """The sort of the keys: ``"stable"`` when the first row is mostly one repeated key.

    numpy's default sort slows down several times on rows made mostly of repeats (a model
    scoring every unseen item alike), where its stable sort does not: rows of at least
    ``_REPEATS_PROBE`` keys whose first row has fewer than 3/4 distinct ones take the stable
    sort. The choice changes only the order of equal keys, which the draws then decide.
    """
    if len(key) and key.shape[1] >= _REPEATS_PROBE:
        return "stable" if np.unique(key[0]).size * 4 < key.shape[1] * 3 else None
    return None


def _run_sort_kind(changes: np.ndarray) -> str | None:
    """The sort of run-plus-draw values: ``"stable"`` when few keys repeat.

    More than 3/4 of the neighbouring sorted keys differ: the values are nearly sorted (a few
    runs to reorder), where the stable sort is adaptive; on long runs it is several times
    slower than the default.
    """
    return "stable" if np.count_nonzero(changes) * 4 > changes.size * 3 else None


_REPEATS_PROBE = 64
"""Row width from which :func:`_key_sort_kind` counts the repeats of the first row."""


def _tied_rows_as_before(key, cands, user_ids, step: int, tiebreak: Stream) -> np.ndarray:
    """``(R, C)`` the order of rows whose run-plus-draw values repeat, as ranked before.

    Equal values are ordered by the unstable sorts, which then depend on the first sort's
    order of equal keys: these rows take the default sort both times, as before.
    """
    order = np.argsort(key, axis=1)
    ranked = np.take_along_axis(key, order, axis=1)
    changes = ranked[:, 1:] != ranked[:, :-1]
    group = _runs_plus_draws(changes, cands, order, user_ids, step, tiebreak)
    return np.take_along_axis(order, np.argsort(group, axis=1), axis=1)


def _runs_plus_draws(changes, cands, order, user_ids, step: int, tiebreak: Stream) -> np.ndarray:
    """``(R, C)`` each sorted position's run number plus the draw of its item.

    Runs of equal keys are numbered from 0 by ``changes``; draws are keyed by (user, item)
    and step.
    """
    group = np.zeros(order.shape)
    np.cumsum(changes, axis=1, out=group[:, 1:])
    items = np.take_along_axis(cands, order, axis=1)
    group += tiebreak.uniform(_pair_ids(user_ids[:, None], items), step)
    return group


def _small_integers(key: np.ndarray) -> bool:
    """Whether every key (or score: the answer is the same) is an integer below 2**20 in size.

    Then ``key + draw`` (a draw in (0, 1)) keeps the order of different keys and orders equal
    ones by their draws: the same ranking as sorting by key and then ties by draw.
    """
    if not key.size:
        return False
    # the first row alone rules most real scores out at once; then blocks of rows, so that
    # the checks' temporaries stay in cache
    blocks = row_blocks(key.shape[0], key.shape[1], _CHECK_BLOCK)
    for part in (key[:1], *(key[b] for b in blocks)):
        part = np.asarray(part, np.float64)
        if not (np.abs(part) < 2**20).all() or not (part == np.rint(part)).all():
            return False
    return True


_CHECK_BLOCK = 1 << 16
"""Keys per block of :func:`_small_integers`."""


def _pair_ids(users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Keys of (user, item) pairs for keyed draws (users below 2**31, items below 2**32)."""
    return (np.asarray(users, np.int64) << 32) | np.asarray(items, np.int64)


_LAST = 1e300
"""Keys of items after the horizon (``-score`` of a finite score is far smaller)."""
