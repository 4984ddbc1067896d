"""Sets of (user, item) pairs as one sorted array of 64-bit keys.

Who consumed what is a set of pairs: the platform's no-repeat rule reads each served user's
consumed items, and homogenization measures intersect pairs of users' consumed sets. A
:class:`PairSet` holds the pairs as the sorted keys ``user << 32 | item`` (users below
``2**31``, items below ``2**32``): a user's items are one contiguous run of the array, so
reading them, counting them and probing membership are ``searchsorted`` calls vectorised
over users, with no Python loop over users or items.
"""

from __future__ import annotations

import numpy as np

from simlab.batch import PAD, lookup_sorted

__all__ = ["PairSet", "live_items_of", "join_csr"]

_SHIFT = np.int64(32)
_ITEM_MASK = np.int64(0xFFFFFFFF)


def _keys(users: np.ndarray, items: np.ndarray) -> np.ndarray:
    users = np.asarray(users, np.int64)
    items = np.asarray(items, np.int64)
    if items.size and (items.min() < 0 or items.max() > _ITEM_MASK):
        raise ValueError(
            f"Expects item ids in [0, 2**32), actual range: [{items.min()}, {items.max()}]"
        )
    if users.size and (users.min() < 0 or users.max() >= 2**31):
        raise ValueError(
            f"Expects user ids in [0, 2**31), actual range: [{users.min()}, {users.max()}]"
        )
    return (users << _SHIFT) | items


class PairSet:
    """A set of ``(user, item)`` pairs (sorted keys; see the module docstring).

    >>> s = PairSet()
    >>> s.add(np.array([3, 1, 3]), np.array([7, 2, 7]))
    >>> s.count(np.array([1, 2, 3])).tolist()
    [1, 0, 1]
    >>> indptr, items = s.items_of(np.array([3, 1]))
    >>> indptr.tolist(), items.tolist()
    ([0, 1, 2], [7, 2])
    """

    def __init__(self, keys: np.ndarray | None = None) -> None:
        self.keys = np.zeros(0, np.int64) if keys is None else np.asarray(keys, np.int64)

    def __len__(self) -> int:
        return int(self.keys.shape[0])

    def add(self, users: np.ndarray, items: np.ndarray) -> None:
        """Add the pairs ``(users[j], items[j])`` (repeats and pairs already held are fine)."""
        new = np.unique(_keys(users, items))
        new = new[~lookup_sorted(self.keys, new)[1]]
        if new.size:
            self.keys = np.insert(self.keys, np.searchsorted(self.keys, new), new)

    def _runs(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(start, stop)`` of each user's run of keys."""
        first = np.asarray(users, np.int64) << _SHIFT
        lo = np.searchsorted(self.keys, first, side="left")
        # past the user's last possible key (the next user's first would overflow at 2**31 - 1)
        hi = np.searchsorted(self.keys, first | _ITEM_MASK, side="right")
        return lo, hi

    def count(self, users: np.ndarray) -> np.ndarray:
        """``(B,)`` number of items held for each user."""
        lo, hi = self._runs(users)
        return hi - lo

    def items_of(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each user's items in CSR form: ``(indptr (B + 1,), items (sum of counts,))``.

        Items of ``users[b]`` are ``items[indptr[b]:indptr[b + 1]]``, increasing.
        """
        lo, hi = self._runs(users)
        counts = hi - lo
        indptr = np.zeros(counts.shape[0] + 1, np.int64)
        np.cumsum(counts, out=indptr[1:])
        at = np.repeat(lo - indptr[:-1], counts) + np.arange(indptr[-1])
        return indptr, self.keys[at] & _ITEM_MASK

    def contains(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Whether each pair ``(users[j], items[j])`` (any equal shapes) is held."""
        return lookup_sorted(self.keys, _keys(users, items))[1]

    def intersection_sizes(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``(P,)`` size of the intersection of the item sets of users ``a[p]`` and ``b[p]``.

        Costs O(sum of ``a``'s set sizes x log of the total): each of ``a[p]``'s items is
        probed in ``b[p]``'s set.
        """
        indptr, items = self.items_of(a)
        counts = np.diff(indptr)
        partner = np.repeat(np.asarray(b, np.int64), counts)
        hit = self.contains(partner, items)
        pair = np.repeat(np.arange(counts.shape[0]), counts)
        return np.bincount(pair[hit], minlength=counts.shape[0])

    def retain_items(self, items: np.ndarray) -> None:
        """Keep only the pairs whose item is in the sorted array ``items``."""
        if self.keys.size:
            self.keys = self.keys[lookup_sorted(items, self.keys & _ITEM_MASK)[1]]

    # ------------------------------------------------------------------ per-user arrays
    def to_padded(self, users: np.ndarray) -> np.ndarray:
        """``(B, W)`` each user's items, increasing, ``PAD``-padded (``W``: the largest count).

        The form checkpoints use: one row per user, so the state can be cut into user
        shards and joined again.
        """
        indptr, items = self.items_of(users)
        counts = np.diff(indptr)
        width = int(counts.max()) if counts.size else 0
        out = np.full((counts.shape[0], width), PAD, np.int64)
        col = np.arange(items.shape[0]) - np.repeat(indptr[:-1], counts)
        out[np.repeat(np.arange(counts.shape[0]), counts), col] = items
        return out

    @classmethod
    def from_padded(cls, users: np.ndarray, padded: np.ndarray) -> PairSet:
        """The set holding ``padded[b]``'s items (``PAD`` skipped) for each ``users[b]``."""
        padded = np.asarray(padded, np.int64)
        if padded.ndim != 2 or padded.shape[0] != np.asarray(users).shape[0]:
            raise ValueError(
                f"Expects a (users, width) array of item ids for {np.asarray(users).shape[0]} "
                f"users, actual shape: {padded.shape}"
            )
        rows, cols = np.nonzero(padded != PAD)
        out = cls()
        out.add(np.asarray(users, np.int64)[rows], padded[rows, cols])
        return out


def live_items_of(
    pairs: PairSet, user_ids: np.ndarray, live: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(indptr, items)``: each user's items in ``pairs`` that are in ``live`` (sorted ids)."""
    indptr, items = pairs.items_of(user_ids)
    keep = lookup_sorted(live, items)[1]
    if keep.all():
        return indptr, items
    counts = np.bincount(
        np.repeat(np.arange(indptr.shape[0] - 1), np.diff(indptr))[keep],
        minlength=indptr.shape[0] - 1,
    )
    out = np.zeros_like(indptr)
    np.cumsum(counts, out=out[1:])
    return out, items[keep]


def join_csr(
    parts: list[tuple[np.ndarray, np.ndarray] | None],
) -> tuple[np.ndarray, np.ndarray] | None:
    """The CSR lists of consecutive user ranges joined into one (None if the parts are)."""
    if not parts or parts[0] is None:
        return None
    offsets = np.cumsum([0] + [p[0][-1] for p in parts[:-1]])
    indptr = np.concatenate([[0]] + [p[0][1:] + off for p, off in zip(parts, offsets, strict=True)])
    return indptr.astype(np.int64), np.concatenate([p[1] for p in parts])
