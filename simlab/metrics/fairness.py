"""Exposure fairness: catalog coverage and the Gini coefficient of item exposure.

The individual item fairness measures of Rampisela et al. and their corrected versions are
in :mod:`simlab.metrics.item_fairness`.
"""

from __future__ import annotations

import numpy as np

from simlab.metrics.base import Metric, StepSnapshot, safe_ratio

__all__ = ["gini", "exposure_counts", "ExposureMetric"]


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of non-negative exposure counts (zeros included).

    ``G = sum_j (2j - n - 1) c_(j) / (n * sum c)`` over counts sorted ascending,
    ``j = 1..n``: 0 when every item gets the same exposure, ``(n-1)/n`` when one item gets
    all of it; NaN when there is no exposure at all.

    >>> gini(np.array([1, 1, 1, 1]))
    0.0
    >>> gini(np.array([0, 0, 0, 4]))
    0.75
    """
    c = np.sort(np.asarray(counts, dtype=np.float64))
    n, total = c.shape[0], c.sum()
    if not total:  # no exposure (no items included: an empty sum is 0)
        return float("nan")
    j = np.arange(1, n + 1)
    return float(((2 * j - n - 1) * c).sum() / (n * total))


def exposure_counts(slate_rows: np.ndarray, num_items: int) -> np.ndarray:
    """``(N,)`` number of times each of ``num_items`` live items appears in the slates.

    Args:
        slate_rows: ``(B, K)`` row (into the live catalog) of every slate item.
        num_items: ``N``, live items.
    """
    return np.bincount(slate_rows.ravel(), minlength=num_items)


class ExposureMetric(Metric):
    """Item exposure per step: coverage and Gini.

    ``exposure/coverage`` = share of live items shown at least once; ``exposure/gini`` =
    Gini of the exposure counts over all live items (unexposed items count as 0).
    """

    name = "exposure"
    columns = ("exposure/coverage", "exposure/gini")
    summary = {"exposure/coverage": "mean", "exposure/gini": "mean"}
    ranges = {"exposure/coverage": (0.0, 1.0), "exposure/gini": (0.0, 1.0)}

    def measure(self, snap: StepSnapshot) -> dict[str, float]:
        """Coverage and exposure Gini over the live catalog."""
        counts = snap.exposure_counts()
        return {
            "exposure/coverage": safe_ratio((counts > 0).sum(), counts.shape[0]),
            "exposure/gini": gini(counts),
        }


# ----------------------------------------------------------------------------- validation
