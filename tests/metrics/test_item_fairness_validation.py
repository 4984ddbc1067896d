"""The item fairness measures refuse malformed counts, slots and users, naming the value.

Moved from test_item_fairness.py (the hand-value tests) as they were.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from simlab.metrics.item_fairness import item_fairness, jain


def test_counts_must_sum_to_slots():
    """A mismatch between counts.sum() and k * m names both."""
    msg = "Expects `counts` to sum to S = k * m = 6 (k=2, m=3), actual sum of counts: 5"
    with pytest.raises(ValueError, match=re.escape(msg)):
        jain(np.array([3, 2, 0]), 2, 3)


@pytest.mark.parametrize(
    "counts, k, m, error, msg",
    [
        ([[1, 1]], 1, 2, ValueError, "Expects `counts` to be 1-D (num_items,), actual shape"),
        ([3, -1], 1, 2, ValueError, "Expects `counts` to be non-negative, actual minimum: -1"),
        ([1.5, 0.5], 1, 2, ValueError, "Expects `counts` to hold whole numbers"),
        ([1, 1], -1, 2, ValueError, "Expects `k` to be a non-negative int, actual value: -1"),
        ([1, 1], 1, 2.0, TypeError, "Expects `m` to be an int, actual type: float"),
    ],
)
def test_invalid_input(counts, k, m, error, msg):
    """Malformed counts or a bad k or m raise with the offending value."""
    with pytest.raises(error, match=re.escape(msg)):
        item_fairness(np.array(counts), k, m)


@pytest.mark.parametrize(
    "counts",
    [np.array([1 + 0j, 1 + 0j]), np.array([1, 1], dtype=object), np.array(["1", "1"])],
    ids=["complex", "object", "str"],
)
def test_counts_that_are_not_real_numbers_are_refused(counts):
    """Only integer, bool and float counts: a complex, object or string array is refused.

    (Even when it holds whole numbers: ``1 + 0j`` is not a count.)
    """
    with pytest.raises(ValueError, match=re.escape("Expects `counts` to hold whole numbers")):
        item_fairness(counts, 1, 2)


def test_whole_float_counts_and_numpy_ints_are_accepted():
    """Float counts holding whole numbers and numpy integer k, m work like ints."""
    c = np.array([3, 2, 1, 0])  # A1 of test_item_fairness.py
    assert item_fairness(c.astype(float), np.int64(2), np.int32(3)) == item_fairness(c, 2, 3)
