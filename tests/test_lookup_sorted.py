"""``lookup_sorted``: every path gives the binary search's positions and flags, exactly.

Three paths: consecutive ids by subtraction, ids with gaps over a short span by a table of
insertion points, and otherwise ``searchsorted``. The table path must return what the
binary search returns for every query, present or not (callers read ``pos`` only where
``found``, but the same arrays make that a non-question). Each class of input is run with
the table forced on, forced off and at the shipped thresholds: gaps, queries below and above
the ids, PAD, repeats, several shapes and integer widths, and sizes at the thresholds.
"""

from __future__ import annotations

import numpy as np
import pytest

from simlab import batch_arrays
from simlab.batch import PAD, lookup_sorted


def reference(sorted_ids: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The binary search: insertion point (left), clipped to the last position; equality."""
    pos = np.minimum(np.searchsorted(sorted_ids, query), sorted_ids.shape[0] - 1)
    return pos, sorted_ids[pos] == query


MODES = {
    "shipped": {},
    "table": {"_TABLE_MIN": 0, "_TABLE_SPAN": 1 << 30},
    "search": {"_TABLE_MIN": 1 << 62},
}


@pytest.fixture(params=sorted(MODES))
def mode(request, monkeypatch):
    """Run with the table forced on, forced off, or at the shipped thresholds."""
    for name, value in MODES[request.param].items():
        monkeypatch.setattr(batch_arrays, name, value)
    return request.param


def random_case(seed: int, id_dtype, query_dtype, shape):
    """Ids with gaps (or none) over a span, and queries around and inside it."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    span = n + int(rng.integers(0, 3 * n + 3)) * (seed % 4 != 0)  # every 4th: consecutive
    lo = int(rng.integers(-3, 5000))
    ids = (np.sort(rng.choice(span, n, replace=False)) + lo).astype(id_dtype)
    size = int(np.prod(shape))
    query = rng.integers(lo - 30, lo + span + 30, size=size)
    query[: size // 10] = PAD  # padded histories look up PAD
    query[size // 10 : size // 5] = rng.choice(ids, size // 5 - size // 10)  # present, repeated
    return ids, query.astype(query_dtype).reshape(shape)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize(
    "id_dtype, query_dtype",
    [(np.int64, np.int64), (np.int64, np.int32), (np.int32, np.int64), (np.int32, np.int16)],
)
@pytest.mark.parametrize("shape", [(0,), (1,), (255,), (256,), (2000,), (40, 7), (3, 5, 20)])
def test_positions_and_flags_equal_the_binary_search(mode, seed, id_dtype, query_dtype, shape):
    """Whatever the path, ``(pos, found)`` are the binary search's arrays."""
    ids, query = random_case(seed, id_dtype, query_dtype, shape)
    pos, found = lookup_sorted(ids, query)
    want_pos, want_found = reference(ids, query)
    assert pos.shape == found.shape == query.shape
    np.testing.assert_array_equal(found, want_found)
    np.testing.assert_array_equal(pos, want_pos)
    assert pos.dtype == np.int64


@pytest.mark.parametrize("gap", [1, 2, 3, 7, 50])
@pytest.mark.parametrize("queries", [255, 256, 257, 5000])
def test_spans_at_the_threshold(gap, queries):
    """Ids ``gap`` apart (spans on both sides of the table's limit), hits and misses."""
    ids = np.arange(100, dtype=np.int64) * gap + 10
    rng = np.random.default_rng(gap * queries)
    query = rng.integers(0, ids[-1] + 20, size=queries)
    for got, want in zip(lookup_sorted(ids, query), reference(ids, query), strict=True):
        np.testing.assert_array_equal(got, want)


def test_other_dtypes_take_the_binary_search(monkeypatch):
    """Unsigned ids and float queries: the binary search (the table needs signed ints)."""
    monkeypatch.setattr(batch_arrays, "_TABLE_MIN", 0)
    ids = np.array([3, 8, 9, 20], np.uint64)
    query = np.array([3, 4, 20, 21, 8] * 100, np.uint64)
    for got, want in zip(lookup_sorted(ids, query), reference(ids, query), strict=True):
        np.testing.assert_array_equal(got, want)
    query = np.array([3.0, 8.5, 9.0, -1.0] * 100)
    for got, want in zip(
        lookup_sorted(ids.astype(np.int64), query), reference(ids, query), strict=True
    ):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("n", [2, 3, 4, 5, 8, 9, 64, 65])
@pytest.mark.parametrize("where", ["first", "middle", "last"])
@pytest.mark.parametrize("width", [1, 2, 5])
def test_ids_one_gap_from_consecutive(mode, n, where, width):
    """Ids consecutive but for one gap (anywhere; odd and even counts) are not consecutive.

    Every id, each missing one and the neighbours get the binary search's answers.
    """
    at = {"first": 1, "middle": n // 2, "last": n - 1}[where]
    ids = np.arange(n, dtype=np.int64) + 7
    ids[at:] += width
    query = np.tile(np.arange(ids[0] - 2, ids[-1] + 3), 30)  # >= 256 queries: the table too
    for got, want in zip(lookup_sorted(ids, query), reference(ids, query), strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("lo", [-1, -3, -40, -1000])
@pytest.mark.parametrize("gap", [1, 2, 3])
def test_negative_ids(mode, lo, gap):
    """Ids from below 0 (the span counted from the smallest): hits and misses at both ends."""
    ids = np.arange(60, dtype=np.int64) * gap + lo
    query = np.tile(np.arange(ids[0] - 3, ids[-1] + 4), 5)
    for got, want in zip(lookup_sorted(ids, query), reference(ids, query), strict=True):
        np.testing.assert_array_equal(got, want)
