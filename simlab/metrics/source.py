"""Source mix: AIGC share of exposure and of production."""

from __future__ import annotations

from simlab.metrics.base import Metric, StepSnapshot, safe_ratio

__all__ = ["SourceMetric"]


class SourceMetric(Metric):
    """AIGC shares of exposure and production per step.

    ``source/aigc_exposure_share`` = AIGC items among all slate impressions;
    ``source/aigc_production_share`` = AIGC items among the items published this step;
    ``source/aigc_click_share`` = AIGC items among the clicked items.
    """

    name = "source"
    columns = (
        "source/aigc_exposure_share",
        "source/aigc_production_share",
        "source/aigc_click_share",
    )
    summary = {c: "mean" for c in columns}

    def measure(self, snap: StepSnapshot) -> dict[str, float]:
        """AIGC shares of impressions and of new items."""
        counts = snap.exposure_counts()
        aigc = int(counts[snap.items.source == 1].sum())
        new = snap.new_item_sources
        fb = snap.feedback
        clicked = fb.clicked_items[fb.clicked]
        click_src = snap.items.source[snap.catalog.rows(clicked)] if clicked.size else clicked
        return {
            "source/aigc_exposure_share": safe_ratio(aigc, int(counts.sum())),
            "source/aigc_production_share": safe_ratio(new.sum(), new.size),
            "source/aigc_click_share": safe_ratio(int(click_src.sum()), clicked.size),
        }
