"""The latent item table: defaults, selection, concatenation and id lookup.

Classes: a table built without ``original`` marks every item as no rewrite (-1) whatever its
size; ``select`` and ``concat`` keep every column row-aligned (``original`` included), from
the class or an instance; ``rows`` finds ids in any shape.
"""

from __future__ import annotations

import numpy as np
import pytest

from simlab.environments.items import ItemTable


def _table(ids, original=None):
    ids = np.asarray(ids, np.int64)
    return ItemTable(
        item_ids=ids,
        creator=ids % 3,
        source=(ids % 2).astype(np.int8),
        topic=ids % 5,
        latent=np.tile(ids[:, None], (1, 2)).astype(np.float32),
        features=np.tile(-ids[:, None], (1, 2)).astype(np.float32),
        quality=ids.astype(np.float32) / 10,
        published=ids - 100,
        original=None if original is None else np.asarray(original, np.int64),
    )


@pytest.mark.parametrize("n", [0, 1, 2, 7])
def test_a_table_without_originals_marks_no_item_as_a_rewrite(n):
    """``original`` defaults to -1 for each of the N items (int64)."""
    t = _table(range(10, 10 + n))
    assert t.original.dtype == np.int64
    np.testing.assert_array_equal(t.original, np.full(n, -1))


def test_select_and_concat_keep_every_column_aligned():
    """Each row of a selection or a concatenation is the row of the same id."""
    a = _table([1, 4, 6, 9], original=[-1, 1, -1, 4])
    b = _table([12, 15], original=[9, -1])
    for both in (ItemTable.concat(a, b), a.concat(a, b)):
        np.testing.assert_array_equal(both.item_ids, [1, 4, 6, 9, 12, 15])
        np.testing.assert_array_equal(both.original, [-1, 1, -1, 4, 9, -1])
        np.testing.assert_array_equal(both.latent[:, 0], both.item_ids)
        np.testing.assert_array_equal(both.published, both.item_ids - 100)
    picked = ItemTable.concat(a, b).select(np.array([False, True, False, True, True, False]))
    np.testing.assert_array_equal(picked.item_ids, [4, 9, 12])
    np.testing.assert_array_equal(picked.original, [1, 4, 9])
    np.testing.assert_array_equal(picked.features[:, 1], [-4, -9, -12])
    np.testing.assert_array_equal(picked.source, [0, 1, 0])


def test_rows_finds_ids_in_any_shape():
    """``rows`` of a (2, 2) array of ids: their row positions, same shape."""
    t = _table([3, 5, 8, 13])
    np.testing.assert_array_equal(t.rows(np.array([[13, 3], [5, 8]])), [[3, 0], [1, 2]])
