"""The metric protocol and the read-only snapshot a metric measures.

A metric is a class with a default ``name``, the ``columns`` it fills (``group/name`` keys),
a stored ``history`` and one method, :meth:`Metric.measure`, returning one value per column
for one step. Values that are undefined at a step (e.g. a share of zero items) are NaN.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from simlab.batch import Catalog, Feedback

__all__ = ["StepSnapshot", "Metric", "safe_ratio"]


@dataclass(frozen=True)
class StepSnapshot:
    """What metrics see after step ``t``: the step's feedback and read-only world state.

    Metrics are measurements, so unlike agents they may read latent truth (``items``,
    ``interests``). They must not modify anything.

    Attributes:
        step: the step index.
        num_users: population size.
        feedback: the step's :class:`~simlab.batch.Feedback` (``B`` served users).
        catalog: the observable catalog at the step (``N`` live items).
        items: the latent item table (``item_ids``, ``source``, ``latent``, ``topic``, ...).
        new_item_sources: ``(P,)`` sources (0 human, 1 AIGC) of items published this step.
        interests: ``(num_users, d)`` current latent interests.
        initial_interests: ``(num_users, d)`` interests at step 0.
        slate_rows: ``(B, K)`` row of each slate item in ``catalog``/``items`` when the
            world already computed it (else :meth:`rows` computes it).
    """

    step: int
    num_users: int
    feedback: Feedback
    catalog: Catalog
    items: Any
    new_item_sources: np.ndarray
    interests: np.ndarray
    initial_interests: np.ndarray
    slate_rows: np.ndarray | None = None

    def rows(self) -> np.ndarray:
        """``(B, K)`` rows of the slate items in the live item table."""
        if self.slate_rows is not None:
            return self.slate_rows
        return self.catalog.rows(self.feedback.slates)


class Metric:
    """Base class of metric groups.

    Subclasses set ``name`` and ``columns`` and implement :meth:`measure`.
    """

    # required in every subclass
    name: ClassVar[str]
    columns: ClassVar[tuple[str, ...]]
    # optional: how `simlab run`/`show` summarise a column over steps ("mean" or "last")
    summary: ClassVar[dict[str, str]] = {}

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.history: list[dict[str, float]] = []

    def measure(self, snap: StepSnapshot) -> dict[str, float]:
        """Return ``{column: value}`` for one step."""
        raise NotImplementedError(f"{type(self).__name__} must implement measure()")

    def observe(self, snap: StepSnapshot) -> dict[str, float]:
        """Measure one step, store it in ``history`` and return it."""
        row = {c: float(v) for c, v in self.measure(snap).items()}
        self.history.append(row)
        return row


def safe_ratio(num: float, den: float) -> float:
    """``num / den``, NaN when ``den`` is 0."""
    return float(num) / float(den) if den else float("nan")
