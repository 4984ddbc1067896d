"""Per-step measurements: engagement, echo chamber, exposure fairness, source mix.

Metric groups are registered in :mod:`simlab.registry` under ``metrics`` and selected by
name in a scenario's ``metrics`` list.
"""

from simlab.metrics.base import Metric, StepSnapshot, safe_ratio
from simlab.metrics.creators import CreatorMetric
from simlab.metrics.echo import DiversityMetric, HomogenizationMetric, InterestDriftMetric
from simlab.metrics.engagement import EngagementMetric
from simlab.metrics.fairness import ExposureMetric, exposure_counts, gini
from simlab.metrics.item_fairness import ItemFairnessMetric
from simlab.metrics.source import SourceMetric
from simlab.metrics.topics import TopicMetric

__all__ = [
    # protocol
    "Metric",
    "StepSnapshot",
    "safe_ratio",
    # groups
    "EngagementMetric",
    "ExposureMetric",
    "CreatorMetric",
    "ItemFairnessMetric",
    "SourceMetric",
    "DiversityMetric",
    "InterestDriftMetric",
    "HomogenizationMetric",
    "TopicMetric",
    # functions
    "gini",
    "exposure_counts",
]
