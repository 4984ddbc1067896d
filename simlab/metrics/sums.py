"""Sums over users that are the same bits however the users are split into shards.

A sharded metric sums per-user values in each user shard and adds the shards' sums
(:meth:`~simlab.metrics.base.Metric.reduce`). In floating point such a total depends on
how the users were split, since the additions happen in another order: two Ray shards and
one local process differed in the last bits. :func:`shard_sum` rounds each value to a whole
number of units of ``2**-q`` first, with ``q`` chosen from the population size and a bound
on the values so that every partial sum, and the total, is a whole number of units below
``2**53``: float64 adds such numbers exactly, in any order, so every split of the users
gives the same bits.

The rounding moves each value by at most half a unit: ``2**-(q+1)`` with
``q = 52 - ceil(log2(bound * count))`` (for 10,000 users and a bound of 4, a unit is about
``2**-36``, 1.5e-11; for a million users ``2**-30``). A value beyond ``bound`` (which the
metrics choose above any value their formulas give) keeps the sum correct to float
precision but may cost the bit-for-bit agreement.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["shard_sum", "unit_exponent"]


def unit_exponent(bound: float, count: int) -> int:
    """``q``: values rounded to multiples of ``2**-q`` sum exactly, ``count`` of them."""
    span = max(float(bound), 2.0**-500) * max(int(count), 1)  # (2**-q stays a normal float)
    return 52 - math.ceil(math.log2(span))


def shard_sum(
    values: np.ndarray,
    bound: float,
    count: int,
    axis: int | None = None,
    overwrite: bool = False,
):
    """The sum of ``values`` (over ``axis``), each rounded to ``2**-q`` first (module docs).

    Args:
        values: the per-user values of one shard (any float array).
        bound: at least ``max |value|`` over the whole population.
        count: at least how many values the whole population sums (e.g. its users).
        axis: the axis summed (None: all).
        overwrite: ``values`` is a float64 scratch array the sum may write into.

    Returns:
        A float (``axis`` None) or an array: whole numbers of units, exact.
    """
    q = unit_exponent(bound, count)
    # times a power of two: exact (np.ldexp is an order of magnitude slower)
    scale = math.ldexp(1.0, q)
    if overwrite and isinstance(values, np.ndarray) and values.dtype == np.float64:
        units = np.multiply(values, scale, out=values)
    else:
        units = np.multiply(values, scale, dtype=np.float64)
    np.rint(units, out=units)
    total = units.sum(axis=axis) * math.ldexp(1.0, -q)
    return float(total) if axis is None else total
