"""Creator measures: active creators by kind, creator exposure inequality, survival."""

from __future__ import annotations

import numpy as np

from simlab.metrics.base import Metric, StepSnapshot, safe_ratio
from simlab.metrics.fairness import gini

__all__ = ["CreatorMetric"]


class CreatorMetric(Metric):
    """Creators by kind, how unequal their exposure is, and how many survive.

    With a creator table (the ``creators`` content model): ``creators/active_human`` and
    ``creators/active_aigc`` count active creators (not exited) of each kind (with
    ``production: adoption`` a creator's kind is its current mode), ``creators/aigc_share``
    the AIGC share of them (what production follows: its passing 1/2 is the *tipping point*);
    ``creators/exposure_gini`` is the Gini of the step's impressions per active creator
    (items' impressions summed by creator, creators without impressions count 0);
    ``creators/survival`` = active creators / creators ever seen. Without one (another
    content model) the active counts are the distinct creators of live items, the Gini is
    over those creators, and survival is NaN.
    """

    name = "creators"
    columns = (
        "creators/active_human",
        "creators/active_aigc",
        "creators/aigc_share",
        "creators/exposure_gini",
        "creators/survival",
    )
    summary = {c: "mean" for c in columns}
    ranges = {
        "creators/active_human": (0.0, None),
        "creators/active_aigc": (0.0, None),
        "creators/aigc_share": (0.0, 1.0),
        "creators/exposure_gini": (0.0, 1.0),
        "creators/survival": (0.0, 1.0),
    }

    def measure(self, snap: StepSnapshot) -> dict[str, float]:
        """Active creators by kind, creator exposure Gini and survival."""
        items = snap.items
        creator = items.creator.astype(np.int64)
        table = snap.creators
        if table is not None:
            n = table.num_creators
            active, source = np.asarray(table.active, bool), np.asarray(table.source)
            survival = safe_ratio(active.sum(), n)
        else:
            active = np.bincount(creator).astype(bool)  # creators 0..max id of the items
            n = active.size
            source = np.zeros(n, np.int64)
            source[creator] = items.source
            survival = float("nan")
        # items' creators are rows of the creator table (ids below n)
        per_creator = np.bincount(creator, weights=snap.exposure_counts(), minlength=n)
        aigc = int(np.count_nonzero(source[active]))  # sources are 0 (human) or 1 (AIGC)
        return {
            "creators/active_human": int(active.sum()) - aigc,
            "creators/active_aigc": aigc,
            "creators/aigc_share": safe_ratio(aigc, int(active.sum())),
            "creators/exposure_gini": gini(per_creator[active]),
            "creators/survival": survival,
        }
