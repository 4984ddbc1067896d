"""Array helpers of the data contracts: the history pad, id lookups, shape checks, row blocks.

Part of :mod:`simlab.batch` (see its docstring for the shapes), which re-exports the public
names.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "PAD",
    "lookup_sorted",
    "is_row_broadcast",
    "compact_rows",
    "BroadcastRows",
    "row_blocks",
]

PAD = -1
"""Item id used to pad histories (and only histories)."""


def lookup_sorted(sorted_ids: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of ``query`` ids (any shape) in the sorted array ``sorted_ids``.

    ``sorted_ids`` must be strictly increasing (ids); when they are consecutive the
    positions are computed by subtraction instead of a binary search, and when they have
    gaps over a span of at most ``_TABLE_SPAN`` per id and query (integer ids and at least
    ``_TABLE_MIN`` integer queries: a catalog whose items retire out of order) they are read
    from a table of the span, the binary search's answer for every query, found or not.

    Returns:
        ``(pos, found)``: ``pos`` indexes ``sorted_ids`` (clipped, meaningful only where
        ``found``), ``found`` says whether the id is present.

    >>> pos, found = lookup_sorted(np.array([2, 5, 9]), np.array([5, 7]))
    >>> pos.tolist(), found.tolist()
    ([1, 2], [True, False])
    """
    query = np.asarray(query)
    n = sorted_ids.shape[0]
    if n == 0:
        return np.zeros(query.shape, np.int64), np.zeros(query.shape, bool)
    lo = sorted_ids[0]
    if sorted_ids[n - 1] - lo == n - 1 and sorted_ids.dtype.kind in "iu":
        # consecutive ids (a catalog whose items retire in publication order): arithmetic
        pos = np.subtract(query, lo, dtype=np.int64)
        found = pos.view(np.uint64) < n  # a negative position wraps to a huge one
        if not found.all():
            np.clip(pos, 0, n - 1, out=pos)
        return pos, found
    span = int(sorted_ids[n - 1]) - int(lo) + 1
    if (
        query.size >= _TABLE_MIN
        and sorted_ids.dtype.kind == "i"
        and query.dtype.kind == "i"
        and span <= _TABLE_SPAN * (n + query.size)
    ):
        # ids with gaps over a short span: each query's insertion point read from a table
        # of how many ids lie below each offset of the span (what the binary search gives;
        # a query past the last id takes the last position, as the clipped search does)
        below = np.zeros(span, np.int64)
        below[sorted_ids[:-1] - lo + 1] = 1
        np.cumsum(below, out=below)
        pos = below[np.clip(np.subtract(query, lo, dtype=np.int64), 0, span - 1)]
    else:
        pos = np.minimum(np.searchsorted(sorted_ids, query), n - 1)
    return pos, sorted_ids[pos] == query


_TABLE_MIN = 256
"""Queries from which :func:`lookup_sorted` reads positions from a table of the id span."""
_TABLE_SPAN = 2
"""The largest id span, per id and query, that :func:`lookup_sorted` makes a table of."""


def row_blocks(rows: int, width: int, cells: int, align: int = 64) -> list[slice]:
    """Slices of ``range(rows)``, in order: blocks of ``t`` rows, the last one ``t`` to ``2 t - 1``.

    ``t`` is ``cells // width`` rounded up to a multiple of ``align`` (at least ``align``), for
    per-row work over ``(rows, width)`` arrays in cache-sized blocks; one block when ``rows``
    is under ``2 t``. Blocks start at multiples of ``align`` and none has under ``t`` rows:
    BLAS then gives every row of a matrix product the bits it gets in one product over all
    rows (measured here: blocks of odd sizes, or of one row, got other bits in numpy or torch
    for some shapes, and so did small blocks aligned to 64 rows, which OpenBLAS multiplies
    with its small-matrix kernel; blocks of ``t`` rows for ``cells`` of 2^16, 2^18 or 2^20
    never did, for 4-128 factors and 2-3,000 columns).
    """
    t = max(align, -(-(cells // max(width, 1)) // align) * align)
    n = max(1, rows // t)
    return [slice(i * t, (i + 1) * t if i < n - 1 else rows) for i in range(n)]


def _check(name: str, arr: np.ndarray, shape: tuple, dtype_kind: str | None = None) -> None:
    """Raise ``ValueError`` unless ``arr`` matches ``shape`` (``None`` = any size)."""
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"Expects `{name}` to be a numpy array, actual type: {type(arr).__name__}")
    mismatch = any(s is not None and s != a for s, a in zip(shape, arr.shape, strict=False))
    if arr.ndim != len(shape) or mismatch:
        dims = ["?" if s is None else str(s) for s in shape]
        want = "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"
        raise ValueError(f"Expects `{name}` of shape {want}, actual shape: {arr.shape}")
    if dtype_kind is not None and arr.dtype.kind not in dtype_kind:
        raise ValueError(
            f"Expects `{name}` of dtype kind {dtype_kind!r}, actual dtype: {arr.dtype}"
        )


def read_only_view(a):
    """A read-only view of the array ``a`` (anything else, or a read-only array, as it is).

    What extension code is handed (an agent's observation, a metric's snapshot) is the
    world's own data: a view costs nothing, the owner keeps writing through its array, and
    a write through the view raises numpy's "assignment destination is read-only".
    """
    if isinstance(a, np.ndarray) and a.flags.writeable:
        a = a.view()
        a.setflags(write=False)
    return a


def read_only_fields(obj: object, names) -> None:
    """Replace each of ``obj``'s attributes ``names`` by :func:`read_only_view` of it.

    The arrays extension code is handed (an observation's, a metric snapshot's items) are
    the world's own: an agent or metric that wrote into them changed what the users, the
    log and the other metrics read next, silently. Anything but a writable array (None, a
    ``Deferred``) stays as it is.
    """
    for name in names:
        obj.__dict__[name] = read_only_view(obj.__dict__.get(name))


def is_row_broadcast(a: np.ndarray) -> bool:
    """Whether ``a`` is a ``(B, C)`` zero-copy broadcast of one row (``B > 1``)."""
    return a.ndim == 2 and a.shape[0] > 1 and a.strides[0] == 0


class BroadcastRows:
    """Pickles as one row; unpickles as the read-only ``(n, C)`` broadcast view of it."""

    def __init__(self, row: np.ndarray, n: int) -> None:
        self.row, self.n = row, n

    def __reduce__(self):
        return (np.broadcast_to, (self.row, (self.n, self.row.shape[0])))


def compact_rows(a: np.ndarray) -> np.ndarray | BroadcastRows:
    """``a`` ready to pickle: a broadcast of one row is sent as that row only."""
    if is_row_broadcast(a):
        return BroadcastRows(np.ascontiguousarray(a[0]), a.shape[0])
    return a
