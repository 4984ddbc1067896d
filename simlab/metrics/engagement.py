"""Engagement: click-through rate, mean engagement and active users."""

from __future__ import annotations

from simlab.metrics.base import Metric, StepSnapshot, safe_ratio

__all__ = ["EngagementMetric"]


class EngagementMetric(Metric):
    """Click-through rate, mean engagement and active users per step.

    ``engagement/ctr`` = clicks / served users; ``engagement/mean`` = mean engagement per
    served user (0 for no click); ``users/active`` = served users.
    """

    name = "engagement"
    columns = ("engagement/ctr", "engagement/mean", "users/active")
    summary = {"engagement/ctr": "mean", "engagement/mean": "mean", "users/active": "mean"}
    # engagement per click depends on the user model (a sigmoid in `logit`, watch time in
    # `interest-evolution`): only its sign is known
    ranges = {
        "engagement/ctr": (0.0, 1.0),
        "engagement/mean": (0.0, None),
        "users/active": (0.0, None),
    }

    def measure(self, snap: StepSnapshot) -> dict[str, float]:
        """CTR, mean engagement and active users of the step."""
        fb = snap.feedback
        b = len(fb.user_ids)
        return {
            "engagement/ctr": safe_ratio(fb.clicked.sum(), b),
            "engagement/mean": safe_ratio(fb.engagement.sum(), b),
            "users/active": b,
        }
