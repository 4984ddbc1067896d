"""The formulas of the item fairness measures on a validated exposure allocation.

The kernel of :mod:`simlab.metrics.item_fairness` (see its docstring for the notation and
the corrections): :func:`_check_allocation` validates exposure counts once and derives
``S``, ``f`` and ``r``; each private measure then takes the validated allocation.
"""

from __future__ import annotations

import operator
from typing import NamedTuple

import numpy as np

from simlab.metrics.fairness import gini

__all__: list[str] = []

_NAN = float("nan")


class _Allocation(NamedTuple):
    """A validated exposure allocation: ``counts`` over ``n`` items from ``m`` top-``k`` lists."""

    counts: np.ndarray  # (num_items,) int64
    n: int
    k: int
    m: int
    s: int  # slots, k * m
    f: int  # s // n (0 when n == 0)
    r: int  # s % n (0 when n == 0)

    @property
    def undefined_range(self) -> bool:
        """Whether the corrected measures' range collapses (S = 0, m = 1 or k >= n)."""
        return self.s == 0 or self.m < 2 or self.k >= self.n


def _check_count(name: str, value: int) -> int:
    """``value`` as a non-negative Python int."""
    try:
        v = operator.index(value)
    except TypeError as e:
        kind = type(value).__name__
        raise TypeError(f"Expects `{name}` to be an int, actual type: {kind}") from e
    if v < 0:
        raise ValueError(f"Expects `{name}` to be a non-negative int, actual value: {v}")
    return v


def _check_allocation(counts: np.ndarray, k: int, m: int) -> _Allocation:
    """Validate ``counts`` against ``k`` and ``m`` and derive ``S``, ``f`` and ``r``."""
    k, m = _check_count("k", k), _check_count("m", m)
    c = np.asarray(counts)
    if c.ndim != 1:
        raise ValueError(f"Expects `counts` to be 1-D (num_items,), actual shape: {c.shape}")
    if c.dtype.kind not in "iub":
        if c.dtype.kind != "f" or not np.all(np.isfinite(c) & (c == np.round(c))):
            raise ValueError(
                f"Expects `counts` to hold whole numbers, actual dtype {c.dtype} "
                "with non-integral values."
            )
    c = c.astype(np.int64)
    if c.shape[0] and c.min() < 0:
        raise ValueError(f"Expects `counts` to be non-negative, actual minimum: {c.min()}")
    s, total = k * m, int(c.sum())
    if total != s:
        raise ValueError(
            f"Expects `counts` to sum to S = k * m = {s} (k={k}, m={m}), "
            f"actual sum of counts: {total}"
        )
    n = c.shape[0]
    f, r = divmod(s, n) if n else (0, 0)
    return _Allocation(c, n, k, m, s, f, r)


# ----------------------------------------------------------------------------- measures
# Each private measure takes a validated allocation; the public wrappers validate first.
# Ratios of integers use Python ints, whose true division rounds correctly, so a value and
# its bound that are the same rational (e.g. Jain of the most unfair allocation and k/n)
# are the same float and the corrected measures hit 0 and 1 exactly at the extremes.


def _jain(a: _Allocation) -> float:
    if a.s == 0:
        return _NAN
    return a.s * a.s / (a.n * int((a.counts * a.counts).sum()))


def _jain_corrected(a: _Allocation) -> float:
    if a.undefined_range:
        return _NAN
    # the fairest allocation's sum of squares: (n - r) f^2 + r (f + 1)^2
    jain_max = a.s * a.s / (a.n * (a.n * a.f * a.f + a.r * (2 * a.f + 1)))
    jain_min = a.k / a.n
    return (_jain(a) - jain_min) / (jain_max - jain_min)


def _qf(a: _Allocation) -> float:
    return int((a.counts > 0).sum()) / a.n if a.s else _NAN


def _qf_corrected(a: _Allocation) -> float:
    if a.undefined_range:
        return _NAN
    exposed = int((a.counts > 0).sum())
    # at most min(S, n) items can be exposed, at least k
    return (exposed - a.k) / (a.n - a.k if a.s >= a.n else a.k * (a.m - 1))


def _grouped_entropy(values: np.ndarray, mult: np.ndarray, a: _Allocation) -> float:
    """``-sum mult * p log_n p`` with ``p = values / S``, skipping zero values and mults."""
    keep = (values > 0) & (mult > 0)
    p = values[keep] / a.s
    # + 0.0 turns the -0.0 of a single item holding everything into 0.0
    return float(-(mult[keep] * p * np.log(p)).sum() / np.log(a.n)) + 0.0


def _entropy(a: _Allocation) -> float:
    if a.s == 0 or a.n < 2:
        return _NAN
    values, mult = np.unique(a.counts, return_counts=True)
    return _grouped_entropy(values, mult.astype(np.int64), a)


def _entropy_corrected(a: _Allocation) -> float:
    if a.undefined_range:
        return _NAN
    # Both bounds go through the same grouped sum as the measure itself, so an allocation
    # that is a permutation of a bound gives exactly that bound. The minimum, k items with
    # m impressions each, equals log_n k; with f = 0 the maximum is log_n S.
    ent_max = _grouped_entropy(np.array([a.f, a.f + 1]), np.array([a.n - a.r, a.r]), a)
    ent_min = _grouped_entropy(np.array([a.m]), np.array([a.k]), a)
    return (_entropy(a) - ent_min) / (ent_max - ent_min)


def _gini_corrected(a: _Allocation) -> float:
    if a.undefined_range:
        return _NAN
    gini_min = (a.n - a.r) * a.r / (a.n * a.s)
    gini_max = (a.n - a.k) / a.n  # 1 - k/n, as one correctly rounded ratio
    return (gini(a.counts) - gini_min) / (gini_max - gini_min)


def _satisfied(a: _Allocation) -> int:
    """Items with at least their maximin share ``f`` (all of them when ``f = 0``)."""
    return int((a.counts >= a.f).sum())


def _fsat(a: _Allocation) -> float:
    return _satisfied(a) / a.n if a.s else _NAN


def _fsat_corrected(a: _Allocation) -> float:
    if a.undefined_range or a.f == 0:
        return _NAN
    # (FSat - k/n) / (1 - k/n) with numerator and denominator multiplied by n
    return (_satisfied(a) - a.k) / (a.n - a.k)
