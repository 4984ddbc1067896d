"""Tests of simlab.batch: shape checks, catalog lookups and clicked items."""

from __future__ import annotations

import dataclasses
import pickle
import re

import numpy as np
import pytest

from simlab.batch import (
    PAD,
    Catalog,
    Deferred,
    Feedback,
    Log,
    Observation,
    Slates,
    lookup_sorted,
    row_blocks,
)


def make_catalog(item_ids=(2, 5, 9, 14), dim: int = 3) -> Catalog:
    """A catalog of ``item_ids`` with zero features."""
    ids = np.asarray(item_ids, np.int64)
    n = ids.shape[0]
    return Catalog(
        item_ids=ids,
        features=np.zeros((n, dim), np.float32),
        creator=np.arange(n, dtype=np.int64),
        age=np.zeros(n, np.int64),
    )


def make_observation(num_candidates: int = 4, slate_size: int = 2, **changes) -> Observation:
    """A two-user observation over :func:`make_catalog`."""
    cat = make_catalog()
    fields = dict(
        step=0,
        user_ids=np.array([0, 1], np.int64),
        user_features=np.zeros((2, 3), np.float32),
        history=np.full((2, 4), PAD, np.int64),
        candidates=np.broadcast_to(cat.item_ids[:num_candidates], (2, num_candidates)),
        catalog=cat,
        slate_size=slate_size,
    )
    fields.update(changes)
    return Observation(**fields)


def make_feedback(**changes) -> Feedback:
    """Three users' feedback on slates of two items."""
    fields = dict(
        step=4,
        user_ids=np.array([1, 3, 8], np.int64),
        slates=np.array([[2, 5], [9, 14], [5, 9]], np.int64),
        clicked_pos=np.array([1, -1, 0], np.int64),
        engagement=np.array([0.7, 0.0, 0.4], np.float32),
    )
    fields.update(changes)
    return Feedback(**fields)


# ----------------------------------------------------------------------------- shape checks


def test_valid_batches_build():
    """Well-formed batches construct and report their sizes."""
    obs = make_observation()
    assert obs.num_users == 2
    assert obs.catalog.num_items == 4
    assert make_feedback().clicked.tolist() == [True, False, True]
    slates = Slates(np.array([0, 1]), np.array([[2, 5], [5, 9]]))
    assert slates.item_ids.shape == (2, 2)


def test_slates_with_1d_item_ids_raise():
    """Slates with 1-D item ids raise ValueError naming ``Slates.item_ids`` and the shape."""
    with pytest.raises(ValueError, match=re.escape("`Slates.item_ids` of shape (2, ?)")):
        Slates(np.array([0, 1]), np.array([2, 5]))


def test_slates_with_wrong_number_of_rows_raise():
    """Slates with more rows than users raise ValueError naming the field and actual shape."""
    with pytest.raises(ValueError, match=re.escape("`Slates.item_ids` of shape (2, ?), actual")):
        Slates(np.array([0, 1]), np.zeros((3, 2), np.int64))


def test_slates_with_float_item_ids_raise():
    """Float item ids raise ValueError naming the field and its dtype."""
    with pytest.raises(ValueError, match=re.escape("`Slates.item_ids` of dtype kind 'i'")):
        Slates(np.array([0, 1]), np.zeros((2, 2)))


def test_non_array_field_raises_type_error():
    """A list where an array is expected raises TypeError naming the field and type."""
    with pytest.raises(TypeError, match=re.escape("`Slates.item_ids` to be a numpy array")):
        Slates(np.array([0]), [[1, 2]])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("slates", np.zeros((2, 2), np.int64)),
        ("clicked_pos", np.array([0, -1], np.int64)),
        ("engagement", np.zeros(4, np.float32)),
    ],
)
def test_feedback_with_mismatched_lengths_raise(field, value):
    """Feedback arrays whose length differs from ``user_ids`` raise ValueError naming the field."""
    with pytest.raises(ValueError, match=re.escape(f"`Feedback.{field}` of shape (3")):
        make_feedback(**{field: value})


def test_feedback_with_int_engagement_raises():
    """Integer engagement raises ValueError naming ``Feedback.engagement``."""
    with pytest.raises(ValueError, match=re.escape("`Feedback.engagement` of dtype kind 'f'")):
        make_feedback(engagement=np.zeros(3, np.int64))


def test_observation_with_fewer_candidates_than_slate_size_raises():
    """An observation with C < K raises ValueError naming slate_size and the candidate count."""
    message = "Expects at least slate_size=3 candidates per user, actual: 2"
    with pytest.raises(ValueError, match=re.escape(message)):
        make_observation(num_candidates=2, slate_size=3)


def test_observation_with_mismatched_history_raises():
    """A history with another number of rows than users raises ValueError naming the field."""
    with pytest.raises(ValueError, match=re.escape("`Observation.history` of shape (2, ?)")):
        make_observation(history=np.full((3, 4), PAD, np.int64))


def test_catalog_with_mismatched_features_raises():
    """Catalog features with the wrong number of rows raise ValueError naming the field."""
    with pytest.raises(ValueError, match=re.escape("`Catalog.features` of shape (2, ?)")):
        Catalog(
            item_ids=np.array([1, 2]),
            features=np.zeros((3, 4), np.float32),
            creator=np.zeros(2, np.int64),
            age=np.zeros(2, np.int64),
        )


def test_catalog_source_checked_when_given():
    """A source label array of the wrong length raises ValueError naming ``Catalog.source``."""
    cat = make_catalog()
    with pytest.raises(ValueError, match=re.escape("`Catalog.source` of shape (4,)")):
        Catalog(cat.item_ids, cat.features, cat.creator, cat.age, source=np.zeros(3, np.int8))


# ----------------------------------------------------------------------------- lookups


def test_catalog_rows_finds_rows_for_any_shape():
    """``Catalog.rows`` maps item ids (any shape) to their rows."""
    cat = make_catalog()
    np.testing.assert_array_equal(cat.rows(np.array([14, 2, 9])), [3, 0, 2])
    np.testing.assert_array_equal(cat.rows(np.array([[5, 9], [2, 2]])), [[1, 2], [0, 0]])


@pytest.mark.parametrize("bad", [7, 1, 100])
def test_catalog_rows_unknown_id_raises_key_error(bad):
    """An id not in the catalog (inside, below or above the range) raises KeyError naming it."""
    cat = make_catalog()
    with pytest.raises(KeyError, match=re.escape(f"not in the live catalog: [{bad}]")):
        cat.rows(np.array([5, bad]))


def test_lookup_sorted_found_and_missing():
    """``lookup_sorted`` returns positions of present ids and flags missing ones."""
    pos, found = lookup_sorted(np.array([2, 5, 9]), np.array([[9, 2], [3, 10]]))
    assert found.tolist() == [[True, True], [False, False]]
    assert pos[found].tolist() == [2, 0]
    assert pos.shape == (2, 2)


@pytest.mark.parametrize("rows", [0, 1, 2, 63, 64, 65, 127, 128, 129, 1000, 4097, 40_001])
@pytest.mark.parametrize("width", [0, 1, 7, 100, 1000, 10_000])
@pytest.mark.parametrize(("cells", "align"), [(1, 1), (1, 64), (640, 8), (1 << 16, 64)])
def test_row_blocks_are_aligned_and_none_is_short(rows, width, cells, align):
    """In order, without gaps: ``t``-row blocks from row 0, the last ``t`` to ``2 t - 1``.

    ``t`` is the multiple of ``align`` at or just above ``cells / width``.
    """
    blocks = row_blocks(rows, width, cells, align)
    t = max(align, -(-(cells // max(width, 1)) // align) * align)
    assert (
        t % align == 0
        and t >= cells // max(width, 1)
        and t - align < max(cells // max(width, 1), 1)
    )
    assert blocks[0].start == 0 and blocks[-1].stop == rows
    assert all(a.stop == b.start for a, b in zip(blocks, blocks[1:], strict=False))
    sizes = [b.stop - b.start for b in blocks]
    assert all(size == t for size in sizes[:-1])  # every block starts at a multiple of t
    if rows >= t:  # the last block holds the rest: at least t rows, under 2 t
        assert t <= sizes[-1] < 2 * t
    else:
        assert sizes == [rows]


@pytest.mark.parametrize("lib", ["numpy", "torch"])
@pytest.mark.parametrize("k", [3, 16, 33, 64, 128])
@pytest.mark.parametrize("n", [2, 10, 17, 100, 1000])
@pytest.mark.parametrize("m", [1000, 7777, 40_001])
def test_row_blocks_keep_the_bits_of_one_matrix_product(lib, k, n, m):
    """Each row of a float32 product over the blocks has its bits over all rows.

    What BLAS gives blocks aligned from the first row, none of them a single row and none
    under ``cells / width`` rows (a 512-row block of a 3,000 x 32 @ 32 x 17 product takes
    OpenBLAS's small-matrix kernel and other bits; 32 x 17 is among the cases here).
    """
    rng = np.random.default_rng(k * n + m)
    z = rng.standard_normal((m, k)).astype(np.float32)
    v = rng.standard_normal((k, n)).astype(np.float32)
    if lib == "torch":
        torch = pytest.importorskip("torch")
        z, v = torch.from_numpy(z), torch.from_numpy(v)
    whole = z @ v
    blocks = row_blocks(m, n, 1 << 16)
    t = row_blocks(1 << 22, n, 1 << 16)[0].stop
    assert len(blocks) > 1 or m < 2 * t
    got = [z[b] @ v for b in blocks]
    got = np.concatenate([np.asarray(g) for g in got])
    np.testing.assert_array_equal(got, np.asarray(whole))


def test_lookup_sorted_on_empty_arrays():
    """An empty sorted array finds nothing; an empty query returns empty results."""
    pos, found = lookup_sorted(np.zeros(0, np.int64), np.array([[1, 2, 3]]))
    assert pos.shape == (1, 3) and found.shape == (1, 3)
    assert not found.any()
    pos, found = lookup_sorted(np.array([1, 2]), np.zeros(0, np.int64))
    assert pos.shape == (0,) and found.shape == (0,)
    pos, found = lookup_sorted(np.zeros(0, np.int64), np.zeros(0, np.int64))
    assert pos.shape == (0,) and found.shape == (0,)


# ----------------------------------------------------------------------------- clicked items


def test_feedback_clicked_items():
    """``Feedback.clicked_items`` is the item at the clicked position, PAD for no click."""
    assert make_feedback().clicked_items.tolist() == [5, PAD, 5]


def test_log_clicked_items_and_num_rows():
    """``Log.clicked_items`` is the item at each row's clicked position, PAD for no click."""
    log = Log(
        step=np.array([0, 0, 1, 1], np.int64),
        user_ids=np.array([0, 1, 0, 1], np.int64),
        slates=np.array([[4, 7, 1], [3, 2, 8], [9, 6, 5], [1, 0, 2]], np.int64),
        clicked_pos=np.array([2, -1, 0, 1], np.int64),
        engagement=np.array([0.2, 0.0, 0.9, 0.5], np.float32),
    )
    assert log.num_rows == 4
    assert log.clicked_items.tolist() == [1, PAD, 9, 0]
    assert log.feature_ids.shape == (0,)


def test_feedback_clicked_items_are_computed_once_and_read_only():
    """The clicked items of a feedback are cached and cannot be changed through it."""
    fb = make_feedback()
    assert fb.clicked_items is fb.clicked_items
    with pytest.raises(ValueError, match="read-only"):
        fb.clicked_items[0] = 3


# ----------------------------------------------------------------------------- deferred arrays


def test_observation_history_may_be_deferred():
    """A deferred history is built on first read (once), checked, and pickled built."""
    calls = []

    def build():
        calls.append(1)
        return np.full((2, 4), 7, np.int64)

    obs = make_observation(history=Deferred(build))
    assert calls == []
    assert obs.history.tolist() == [[7] * 4] * 2 and obs.history.shape == (2, 4)
    assert calls == [1]
    again = pickle.loads(pickle.dumps(make_observation(history=Deferred(build))))
    assert isinstance(again.__dict__["history"], np.ndarray)
    assert dataclasses.replace(obs, slate_size=1).history.shape == (2, 4)


def test_deferred_history_of_the_wrong_shape_raises_when_read():
    """A deferred history is shape-checked when it is built."""
    obs = make_observation(history=Deferred(lambda: np.zeros((3, 4), np.int64)))
    with pytest.raises(
        ValueError, match=re.escape("Expects `Observation.history` of shape (2, ?)")
    ):
        _ = obs.history


def test_observation_history_stays_required():
    """``history`` still has no default."""
    with pytest.raises(TypeError, match="history"):
        Observation(0, np.zeros(1, np.int64), np.zeros((1, 1), np.float32))


def test_log_of_steps_equals_the_joined_arrays():
    """``Log.of_steps`` joins each array when read, as concatenating the steps gives."""
    steps = [
        make_feedback(),
        make_feedback(step=5, slates=np.broadcast_to(np.array([9, 2]), (3, 2))),
    ]
    log = Log.of_steps(steps, np.array([2, 5]), np.zeros((2, 3), np.float32))
    assert isinstance(log.__dict__["slates"], Deferred)
    assert log.clicked_items.tolist() == [5, PAD, 5, 2, PAD, 9]
    assert isinstance(log.__dict__["slates"], Deferred)  # clicked items joined per step
    np.testing.assert_array_equal(log.step, [4, 4, 4, 5, 5, 5])
    np.testing.assert_array_equal(log.slates, np.concatenate([f.slates for f in steps]))
    np.testing.assert_array_equal(log.engagement, np.concatenate([f.engagement for f in steps]))
    assert log.num_rows == 6
    plain = pickle.loads(pickle.dumps(Log.of_steps(steps, log.feature_ids, log.features)))
    assert type(plain) is Log and isinstance(plain.__dict__["user_ids"], np.ndarray)
    np.testing.assert_array_equal(plain.clicked_items, log.clicked_items)


@pytest.mark.parametrize("num_users", [1, 2, 5])
def test_candidate_pool_is_the_shared_row_or_every_row(num_users):
    """Shared candidates give their one row ``(C,)``; per-user ones the ``(B, C)`` array."""
    cat = make_catalog()
    row = cat.item_ids[[3, 0, 2]]
    ids = np.arange(num_users, dtype=np.int64)
    base = dict(
        step=0,
        user_ids=ids,
        user_features=np.zeros((num_users, 3), np.float32),
        history=np.full((num_users, 1), PAD, np.int64),
        catalog=cat,
        slate_size=2,
    )
    shared = Observation(
        candidates=np.broadcast_to(row, (num_users, 3)), shared_candidates=True, **base
    )
    assert shared.candidate_pool.shape == (3,)
    np.testing.assert_array_equal(shared.candidate_pool, row)
    rng = np.random.default_rng(num_users)
    own = np.stack([rng.permutation(cat.item_ids)[:3] for _ in range(num_users)])
    apart = Observation(candidates=own, **base)
    assert apart.candidate_pool is apart.candidates


@pytest.mark.parametrize("rows", [1, 64, 65, 200, 1000, 40_001])
@pytest.mark.parametrize(("width", "cells"), [(1, 1), (7, 640), (100, 1 << 16), (3, 1 << 20)])
def test_row_blocks_align_to_64_rows_by_default(rows, width, cells):
    """Without ``align`` the blocks are those of 64-row alignment (BLAS's bits rely on it)."""
    blocks = row_blocks(rows, width, cells)
    assert blocks == row_blocks(rows, width, cells, 64)
    assert all(b.start % 64 == 0 for b in blocks)


@pytest.mark.parametrize(
    ("make", "broadcast"),
    [
        (lambda a: np.broadcast_to(a[0], a.shape), True),
        (lambda a: a, False),
        (lambda a: a[::-1], False),  # a negative row stride is no broadcast
        (lambda a: a[::-2], False),
        (lambda a: np.broadcast_to(a[0], (1, a.shape[1])), False),  # one row: nothing shared
        (lambda a: a[0], False),  # 1-D
        (lambda a: np.broadcast_to(a[0], (4, 2, a.shape[1])), False),  # 3-D
        (lambda a: np.ascontiguousarray(np.broadcast_to(a[0], a.shape)), False),  # a copy
    ],
)
def test_is_row_broadcast_only_for_zero_row_strides(make, broadcast):
    """A ``(B > 1, C)`` view with a row stride of 0, and nothing else."""
    from simlab.batch import is_row_broadcast

    a = np.arange(12, dtype=np.int64).reshape(4, 3)
    assert is_row_broadcast(make(a)) is broadcast
