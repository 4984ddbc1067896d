"""Individual item exposure fairness (Rampisela et al.), with the corrected versions.

The measures studied by Rampisela et al. (ACM TORS 2024, "Evaluation Measures of Individual
Item Fairness for Recommender Systems: A Critical Study") together with their corrected
versions. Notation: ``n`` live items, ``m`` served users, top-``k`` lists of
distinct items, ``S = k * m`` slots, ``c_i`` exposure counts summing to ``S``,
``f = S // n`` and ``r = S % n``. A corrected measure is min-max normalised over the
allocations that are feasible when each user sees ``k`` distinct items: the most unfair
gives the same ``k`` items to every user (``c = m`` on ``k`` items), the fairest gives every
item ``f`` or ``f + 1`` impressions. Corrected Jain, QF, entropy and FSat are 1 at the
fairest allocation and 0 at the most unfair one; corrected Gini is the reverse.

A corrected measure is NaN when that range collapses: no slots (``S = 0``), a single user
(``m = 1``: every feasible allocation is both fairest and most unfair) or ``k >= n``
(``k = n`` shows every item to every user; ``k > n`` cannot fill a list with distinct items).
"""

from __future__ import annotations

import numpy as np

from simlab.metrics.base import Metric, StepSnapshot
from simlab.metrics.fairness import gini
from simlab.metrics.item_fairness_formulas import (
    _NAN,
    _check_allocation,
    _entropy,
    _entropy_corrected,
    _fsat,
    _fsat_corrected,
    _gini_corrected,
    _jain,
    _jain_corrected,
    _qf,
    _qf_corrected,
)

__all__ = [
    "jain",
    "jain_corrected",
    "qf",
    "qf_corrected",
    "entropy",
    "entropy_corrected",
    "gini_corrected",
    "fsat",
    "fsat_corrected",
    "item_fairness",
    "ItemFairnessMetric",
]


# ----------------------------------------------------------------------------- public API


def jain(counts: np.ndarray, k: int, m: int) -> float:
    """Jain's index ``S^2 / (n * sum c_i^2)``, in ``[k/n, 1]``; higher is fairer.

    NaN when ``S = 0``.

    Args:
        counts: ``(num_items,)`` exposure count of every live item, zeros included.
        k: list length (slate size).
        m: number of lists (served users).

    Returns:
        The index.

    Raises:
        ValueError: if ``counts`` does not sum to ``S = k * m``, is not 1-D or holds
            negative or non-integral values, or if ``k`` or ``m`` is negative.
        TypeError: if ``k`` or ``m`` is not an int.

    >>> jain(np.array([2, 2, 1, 1]), k=2, m=3)  # 36 / (4 * 10)
    0.9
    """
    return _jain(_check_allocation(counts, k, m))


def jain_corrected(counts: np.ndarray, k: int, m: int) -> float:
    """Corrected Jain's index ``(Jain - k/n) / (Jain_max - k/n)``, in ``[0, 1]``.

    ``Jain_max = S^2 / (n (n f^2 + r (2f + 1)))`` is the index of the fairest allocation.
    NaN when ``Jain_max = k/n``, i.e. ``S = 0``, ``m = 1`` or ``k >= n``.

    Args:
        counts: ``(num_items,)`` exposure count of every live item, zeros included.
        k: list length (slate size).
        m: number of lists (served users).

    Returns:
        The corrected index: 1 at the fairest allocation, 0 at the most unfair.

    Raises:
        ValueError: if ``counts`` does not sum to ``S = k * m``, is not 1-D or holds
            negative or non-integral values, or if ``k`` or ``m`` is negative.
        TypeError: if ``k`` or ``m`` is not an int.

    >>> jain_corrected(np.array([2, 2, 1, 1]), k=2, m=3)
    1.0
    """
    return _jain_corrected(_check_allocation(counts, k, m))


def qf(counts: np.ndarray, k: int, m: int) -> float:
    """Item coverage QF: the share of items exposed at least once; higher is fairer.

    NaN when ``S = 0``.

    Args:
        counts: ``(num_items,)`` exposure count of every live item, zeros included.
        k: list length (slate size).
        m: number of lists (served users).

    Returns:
        ``|{i: c_i > 0}| / n``.

    Raises:
        ValueError: if ``counts`` does not sum to ``S = k * m``, is not 1-D or holds
            negative or non-integral values, or if ``k`` or ``m`` is negative.
        TypeError: if ``k`` or ``m`` is not an int.
    """
    return _qf(_check_allocation(counts, k, m))


def qf_corrected(counts: np.ndarray, k: int, m: int) -> float:
    """Corrected QF ``(QF n - k) / (n - k)`` if ``S >= n``, else ``(QF n - k) / (k (m - 1))``.

    NaN when the denominator is 0 or there are no slots (``S = 0``, ``m = 1`` or
    ``k >= n``).

    Args:
        counts: ``(num_items,)`` exposure count of every live item, zeros included.
        k: list length (slate size).
        m: number of lists (served users).

    Returns:
        The corrected coverage: 1 when ``min(S, n)`` items are exposed, 0 when only ``k``.

    Raises:
        ValueError: if ``counts`` does not sum to ``S = k * m``, is not 1-D or holds
            negative or non-integral values, or if ``k`` or ``m`` is negative.
        TypeError: if ``k`` or ``m`` is not an int.
    """
    return _qf_corrected(_check_allocation(counts, k, m))


def entropy(counts: np.ndarray, k: int, m: int) -> float:
    """Exposure entropy ``-sum p_i log_n p_i`` with ``p_i = c_i / S`` (``0 log 0 = 0``).

    Higher is fairer. NaN when ``S = 0`` or ``n = 1`` (a base-1 logarithm).

    Args:
        counts: ``(num_items,)`` exposure count of every live item, zeros included.
        k: list length (slate size).
        m: number of lists (served users).

    Returns:
        The entropy, in ``[0, 1]``.

    Raises:
        ValueError: if ``counts`` does not sum to ``S = k * m``, is not 1-D or holds
            negative or non-integral values, or if ``k`` or ``m`` is negative.
        TypeError: if ``k`` or ``m`` is not an int.
    """
    return _entropy(_check_allocation(counts, k, m))


def entropy_corrected(counts: np.ndarray, k: int, m: int) -> float:
    """Corrected entropy ``(Ent - log_n k) / (Ent_max - log_n k)``, in ``[0, 1]``.

    ``Ent_max = -(n - r)(f/S) log_n(f/S) - r ((f + 1)/S) log_n((f + 1)/S)`` (the first term
    is 0 when ``f = 0``, which leaves ``log_n S``). NaN when ``Ent_max = log_n k``, i.e.
    ``S = 0``, ``m = 1`` or ``k >= n``.

    Args:
        counts: ``(num_items,)`` exposure count of every live item, zeros included.
        k: list length (slate size).
        m: number of lists (served users).

    Returns:
        The corrected entropy: 1 at the fairest allocation, 0 at the most unfair.

    Raises:
        ValueError: if ``counts`` does not sum to ``S = k * m``, is not 1-D or holds
            negative or non-integral values, or if ``k`` or ``m`` is negative.
        TypeError: if ``k`` or ``m`` is not an int.
    """
    return _entropy_corrected(_check_allocation(counts, k, m))


def gini_corrected(counts: np.ndarray, k: int, m: int) -> float:
    """Corrected Gini ``(G - G_min) / (1 - k/n - G_min)``, ``G_min = (n - r) r / (n S)``.

    ``G`` is :func:`gini`; ``1 - k/n`` is the Gini of the most unfair allocation. Lower is
    fairer. NaN when ``1 - k/n = G_min``, i.e. ``S = 0``, ``m = 1`` or ``k >= n``.

    Args:
        counts: ``(num_items,)`` exposure count of every live item, zeros included.
        k: list length (slate size).
        m: number of lists (served users).

    Returns:
        The corrected Gini: 0 at the fairest allocation, 1 at the most unfair.

    Raises:
        ValueError: if ``counts`` does not sum to ``S = k * m``, is not 1-D or holds
            negative or non-integral values, or if ``k`` or ``m`` is negative.
        TypeError: if ``k`` or ``m`` is not an int.

    >>> gini_corrected(np.array([3, 3, 0, 0]), k=2, m=3)
    1.0
    """
    return _gini_corrected(_check_allocation(counts, k, m))


def fsat(counts: np.ndarray, k: int, m: int) -> float:
    """FSat: the share of items getting at least their maximin share ``f = S // n``.

    Every item is satisfied when ``f = 0``. Higher is fairer. NaN when ``S = 0``.

    Args:
        counts: ``(num_items,)`` exposure count of every live item, zeros included.
        k: list length (slate size).
        m: number of lists (served users).

    Returns:
        ``|{i: c_i >= f}| / n``.

    Raises:
        ValueError: if ``counts`` does not sum to ``S = k * m``, is not 1-D or holds
            negative or non-integral values, or if ``k`` or ``m`` is negative.
        TypeError: if ``k`` or ``m`` is not an int.
    """
    return _fsat(_check_allocation(counts, k, m))


def fsat_corrected(counts: np.ndarray, k: int, m: int) -> float:
    """Corrected FSat ``(FSat - k/n) / (1 - k/n)``, at most 1 and possibly negative.

    ``k/n`` is the FSat of the most unfair allocation (the same ``k`` items for everyone),
    but not the least FSat a feasible allocation can have: with ``f >= 1`` as few as
    ``ceil((n + r) / (m - f + 1))`` items can reach ``f`` (e.g. ``c = (4, 4, 2, 2)``,
    ``k = 3``, ``m = 4``, ``f = 3`` satisfies 2 items, giving -1), so values below 0 occur
    when ``k`` exceeds that count. This follows the paper's formula; it is not clipped.

    NaN when ``S = 0``, ``m = 1`` or ``k >= n``, and also when ``S < n``: then ``f = 0``,
    every feasible allocation satisfies every item and FSat cannot tell them apart (the
    paper's formula would give 1 even to the most unfair allocation).

    Args:
        counts: ``(num_items,)`` exposure count of every live item, zeros included.
        k: list length (slate size).
        m: number of lists (served users).

    Returns:
        The corrected FSat: 1 at the fairest allocation, 0 at the most unfair one.

    Raises:
        ValueError: if ``counts`` does not sum to ``S = k * m``, is not 1-D or holds
            negative or non-integral values, or if ``k`` or ``m`` is negative.
        TypeError: if ``k`` or ``m`` is not an int.
    """
    return _fsat_corrected(_check_allocation(counts, k, m))


def item_fairness(counts: np.ndarray, k: int, m: int) -> dict[str, float]:
    """All individual item fairness measures of one allocation, validated once.

    Args:
        counts: ``(num_items,)`` exposure count of every live item, zeros included.
        k: list length (slate size).
        m: number of lists (served users).

    Returns:
        ``{name: value}`` for ``jain``, ``jain_corrected``, ``qf``, ``qf_corrected``,
        ``entropy``, ``entropy_corrected``, ``gini`` (:func:`gini`), ``gini_corrected``,
        ``fsat`` and ``fsat_corrected``.

    Raises:
        ValueError: if ``counts`` does not sum to ``S = k * m``, is not 1-D or holds
            negative or non-integral values, or if ``k`` or ``m`` is negative.
        TypeError: if ``k`` or ``m`` is not an int.
    """
    a = _check_allocation(counts, k, m)
    return {
        "jain": _jain(a),
        "jain_corrected": _jain_corrected(a),
        "qf": _qf(a),
        "qf_corrected": _qf_corrected(a),
        "entropy": _entropy(a),
        "entropy_corrected": _entropy_corrected(a),
        "gini": gini(a.counts),
        "gini_corrected": _gini_corrected(a),
        "fsat": _fsat(a),
        "fsat_corrected": _fsat_corrected(a),
    }


class ItemFairnessMetric(Metric):
    """Individual item exposure fairness per step (Rampisela et al.), raw and corrected.

    Computed from the step's impressions of every live item (unexposed items count as 0),
    with ``k`` the slate size and ``m`` the number of served users. The raw Gini is
    ``exposure/gini`` of :class:`ExposureMetric`. Every column is NaN when nobody was served.
    """

    name = "item_fairness"
    columns = (
        "fairness/jain",
        "fairness/jain_corrected",
        "fairness/qf",
        "fairness/qf_corrected",
        "fairness/entropy",
        "fairness/entropy_corrected",
        "fairness/gini_corrected",
        "fairness/fsat",
        "fairness/fsat_corrected",
    )
    summary = dict.fromkeys(columns, "mean")
    # every measure lies in [0, 1] except corrected FSat, which can fall below 0 (docs/metrics.md)
    ranges = {**dict.fromkeys(columns, (0.0, 1.0)), "fairness/fsat_corrected": (None, 1.0)}

    def measure(self, snap: StepSnapshot) -> dict[str, float]:
        """The nine measures of the step's exposure counts."""
        slates = snap.feedback.slates
        num_served, slate_size = slates.shape
        if not num_served:
            return dict.fromkeys(self.columns, _NAN)
        values = item_fairness(snap.exposure_counts(), slate_size, num_served)
        return {c: values[c.removeprefix("fairness/")] for c in self.columns}
