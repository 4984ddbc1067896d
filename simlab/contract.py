"""The slate contract: what an agent's (or re-ranker's) slates must satisfy.

And what a user model's arrivals and responses must be (:func:`check_arrivals`,
:func:`check_feedback`), checked where the population calls it.

Shape and users are checked where the agent acts (:func:`check_shape`); that every item is
live, that no slate repeats an item and that items come from the user's candidates are
checked per user shard with the responses (:func:`check_rows`), so the check scales with the
shards.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from simlab.batch import Catalog, Feedback, Observation, Slates, is_row_broadcast, lookup_sorted
from simlab.errors import AgentContractError, ModelContractError

__all__ = [
    "check_shape",
    "check_reranked",
    "check_rows",
    "check_arrivals",
    "check_features",
    "check_feedback",
    "check_content",
]


def check_shape(slates: Slates, obs: Observation, k: int, who: str) -> None:
    """The cheap half of the slate contract: shape and users (the rest is per user shard)."""
    if not isinstance(slates, Slates):
        raise AgentContractError(
            f"{who} returned {_kind(slates)}, expected simlab.batch.Slates(user_ids, item_ids)"
        )
    ids = slates.item_ids
    if ids.shape != (obs.num_users, k):
        raise AgentContractError(
            f"{who} returned slates of shape {ids.shape}, expected {(obs.num_users, k)}"
        )
    if not np.array_equal(slates.user_ids, obs.user_ids):
        raise AgentContractError(f"{who} returned slates for other users than it was asked")


def check_reranked(items: object, num_users: int, who: str) -> np.ndarray:
    """A re-ranker's output: ``(B, depth)`` integer item ids, one row per user (``B``).

    Its items are checked with the slate (:func:`check_rows`); this catches what would
    otherwise fail deep inside the next re-ranker or the platform's cut to ``K``.
    """
    ok = isinstance(items, np.ndarray) and items.ndim == 2 and items.dtype.kind == "i"
    if not ok or items.shape[0] != num_users:
        raise AgentContractError(
            f"{who} returned {_kind(items)}, expected a ({num_users}, depth) integer "
            "array of item ids, one row per user, best first"
        )
    return items


def check_arrivals(ids: object, lo: int, hi: int, who: str) -> np.ndarray:
    """A user model's ``arrivals``: increasing integer ids of its users ``lo..hi-1``.

    Unsorted or repeated ids reached the platform and the metrics as given (a user served
    twice, rows out of order), and ids outside the range failed deep inside.
    """
    want = f"expected a 1-D integer array of user ids in [{lo}, {hi}), increasing"
    if not isinstance(ids, np.ndarray) or ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise ModelContractError(f"{who}: arrivals returned {_kind(ids)}, {want}")
    if ids.size and (ids[0] < lo or ids[-1] >= hi or not _increasing(ids)):
        bad = ids[(ids < lo) | (ids >= hi)]
        what = f"id {bad[0]}" if bad.size else "ids not increasing (unsorted or repeated)"
        raise ModelContractError(f"{who}: arrivals returned {what}, {want}")
    return ids


def check_features(features: object, ids: np.ndarray, who: str) -> np.ndarray:
    """A user model's ``observable_features``: ``(B, f)`` finite floats, a row per user.

    NaN or infinite features reached every agent as given; a wrong shape was reported as
    the observation's, not the model's.
    """
    ok = isinstance(features, np.ndarray) and features.ndim == 2
    if not ok or features.dtype.kind != "f" or features.shape[0] != ids.shape[0]:
        raise ModelContractError(
            f"{who}: observable_features returned {_kind(features)}, expected a "
            f"({ids.shape[0]}, f) float array, a row per arriving user"
        )
    if not np.isfinite(features).all():
        raise ModelContractError(f"{who}: observable_features returned non-finite features")
    return features


def check_feedback(fb: object, user_ids: np.ndarray, slates: np.ndarray, who: str) -> Feedback:
    """A user model's ``respond``: feedback of the users asked, on their slates as shown.

    A click position outside the slate failed deep inside; other users' or reordered
    slates, and non-finite engagement, went into the log and the metrics as given.
    """
    if not isinstance(fb, Feedback):
        raise ModelContractError(f"{who}: respond returned {_kind(fb)}, expected a Feedback")
    if not np.array_equal(fb.user_ids, user_ids):
        raise ModelContractError(f"{who}: respond returned feedback of other users than asked")
    if not np.array_equal(fb.slates, slates):
        raise ModelContractError(f"{who}: respond returned other slates than it was shown")
    k, pos = slates.shape[1], fb.clicked_pos
    if pos.size and (pos.min() < -1 or pos.max() >= k):
        bad = pos[(pos < -1) | (pos >= k)][0]
        raise ModelContractError(
            f"{who}: respond returned click position {bad}, expected -1 (no click) to {k - 1}"
        )
    if not np.isfinite(fb.engagement).all():
        raise ModelContractError(f"{who}: respond returned non-finite engagement")
    return fb


def check_content(content: Any, who: str) -> Any:
    """A content model's step: a Catalog of the live items, the same ids as its item table.

    An unsorted or repeated catalog was blamed on the agent (its items "not in the live
    catalog"); a catalog of other items than the latent table ran on with each item's
    truth read from another row; ages below 0, non-finite features and sources other than
    0/1 went on as given. ``content`` is the step's ``StepContent``.
    """
    cat, items, sources = content.catalog, content.items, content.new_item_sources
    if not isinstance(cat, Catalog):
        raise ModelContractError(f"{who}: catalog returned {_kind(cat)}, expected a Catalog")
    ids = cat.item_ids
    problem = None
    if not _increasing(ids):
        problem = "catalog item ids not increasing (unsorted or repeated)"
    elif not np.array_equal(getattr(items, "item_ids", None), ids):
        problem = "a catalog of other items than its latent item table (latent())"
    elif ids.size and cat.age.min() < 0:
        problem = f"catalog ages below 0 (e.g. {cat.age.min()}): items from the future"
    elif not np.isfinite(cat.features).all():
        problem = "non-finite catalog features"
    elif not np.isin(np.asarray(sources), (0, 1)).all():
        problem = "new item sources other than 0 (human) and 1 (AIGC)"
    if problem:
        raise ModelContractError(f"{who} returned {problem}")
    return content


def _increasing(ids: np.ndarray) -> bool:
    """Whether the 1-D ``ids`` strictly increase (sorted, no repeats)."""
    return not (ids[1:] <= ids[:-1]).any()


def _kind(value: object) -> str:
    """What ``value`` is, for a contract message: its type, and an array's shape and dtype."""
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    return f"a {type(value).__name__}"


def check_rows(
    ids: np.ndarray,
    user_ids: np.ndarray,
    candidates: np.ndarray | None,
    catalog: Catalog,
    who: str,
) -> np.ndarray:
    """The per-user half of the slate contract; returns the slate items' catalog rows.

    Every item is live, no slate repeats an item and, with per-user ``candidates`` (None
    when every user may get any live item), every item is among the user's candidates.
    Slates that are one row broadcast to every user (a non-personalised ranking) are
    checked once.
    """
    if is_row_broadcast(ids) and candidates is None:
        return np.broadcast_to(check_rows(ids[:1], user_ids[:1], None, catalog, who), ids.shape)
    try:
        rows = catalog.rows(ids)
    except KeyError as e:
        raise AgentContractError(f"{who} returned {e.args[0]}") from None
    if not ids.size:
        return rows
    b, k = ids.shape
    n = catalog.num_items
    outside = None
    if k * _DENSE_RATIO >= n and b * n <= _DENSE_CELLS:
        # long slates (every candidate ranked): one (B, N) tally instead of sorting rows
        outside = _tally(rows, None if candidates is None else catalog.rows(candidates), n)
        if outside is None:
            raise AgentContractError(f"{who} returned a slate with a duplicate item")
    else:
        s = np.sort(rows, axis=1)
        if (s[:, 1:] == s[:, :-1]).any():
            raise AgentContractError(f"{who} returned a slate with a duplicate item")
        if candidates is not None:
            outside = _outside_candidates(ids, candidates)
    if outside is not None and outside.any():
        b, j = np.argwhere(outside)[0]
        raise AgentContractError(
            f"{who} returned item {ids[b, j]} for user {user_ids[b]}, which is not "
            "among the user's candidates"
        )
    return rows


_DENSE_RATIO = 8
"""Slates at least 1/8 of the catalog long are checked by a tally, not by sorting."""
_DENSE_CELLS = 1 << 24
"""Largest users x items tally (16 MiB of bytes)."""


def _tally(rows: np.ndarray, cand_rows: np.ndarray | None, n: int) -> np.ndarray | None:
    """O(B (K + N)): None if a row repeats an item, else ``(B, K)`` items outside candidates."""
    b = rows.shape[0]
    flat = (np.arange(b, dtype=np.int64)[:, None] * n + rows).ravel()
    seen = np.zeros(b * n, bool)
    seen[flat] = True
    if np.count_nonzero(seen) < flat.shape[0]:  # fewer distinct cells than entries
        return None
    if cand_rows is None:
        return np.zeros(rows.shape, bool)
    allowed = np.zeros(b * n, bool)
    allowed[(np.arange(b, dtype=np.int64)[:, None] * n + cand_rows).ravel()] = True
    return ~allowed[flat].reshape(rows.shape)


def _outside_candidates(ids: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """``(B, K)`` whether ``ids[b, k]`` is missing from ``candidates[b]`` (O(B C log C))."""
    lo = min(int(ids.min()), int(candidates.min()))
    span = max(int(ids.max()), int(candidates.max())) - lo + 1
    offset = np.arange(ids.shape[0], dtype=np.int64)[:, None] * span - lo
    flat = (np.sort(candidates, axis=1) + offset).ravel()
    return ~lookup_sorted(flat, ids + offset)[1]


def _check_slates(
    slates: Slates, obs: Observation, k: int, catalog: Catalog, who: str
) -> np.ndarray:
    """The whole slate contract at once; returns the slate rows."""
    check_shape(slates, obs, k, who)
    cands = None if obs.shared_candidates else obs.candidates
    return check_rows(slates.item_ids, slates.user_ids, cands, catalog, who)
