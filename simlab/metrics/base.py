"""The metric protocol and the read-only snapshot a metric measures.

A metric is a class with a default ``name``, the ``columns`` it fills (``group/name`` keys),
the ``ranges`` their values can take and one method, :meth:`Metric.measure`, returning one
value per column for one step (the rows go to the run directory as steps finish; a metric
keeps only the running state its next rows need, which checkpoints hold). Values that are
undefined at a step (e.g. a share of zero items) are NaN.

Metrics that read per-user latent state or do per-user work can instead implement the
sharded form: :meth:`Metric.partial` computes sums, counts or histograms over one user
shard's users (it must be stateless: it runs inside each shard), and :meth:`Metric.reduce`
combines the shards' partials into the row. Locally the whole population is one shard; on
Ray each user shard sends only its partials, never raw user state, so the row is the same
up to float summation order.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from simlab.batch import Catalog, Feedback
from simlab.batch_arrays import read_only_fields, read_only_view

__all__ = ["StepSnapshot", "Metric", "safe_ratio"]


class StepSnapshot:
    """What metrics see after step ``t``: the step's feedback and read-only world state.

    Metrics are measurements, so unlike agents they may read latent truth (``items``,
    ``interests``). They must not modify anything: every array here is a read-only view
    of the world's own (``items`` and ``creators`` are shallow copies holding such views).

    Attributes:
        step: the step index.
        num_users: population size.
        feedback: the step's :class:`~simlab.batch.Feedback` (``B`` served users).
        catalog: the observable catalog at the step (``N`` live items).
        items: the latent item table (``item_ids``, ``source``, ``latent``, ``topic``, ...).
        new_item_sources: ``(P,)`` sources (0 human, 1 AIGC) of items published this step.
        interests: ``(num_users, d)`` current latent interests (of the shard's users in a
            shard's snapshot).
        initial_interests: ``(num_users, d)`` interests at step 0.
        slate_rows: ``(B, K)`` row of each slate item in ``catalog``/``items`` when the
            world already computed it (else :meth:`rows` computes it).
        exposure: ``(N,)`` impressions of each live item at the step (catalog order) when
            the world already counted them (else :meth:`exposure_counts` counts them).
        creators: the content model's creator table (``source``, ``active``, ``entered``,
            ``exited`` per creator ever seen) when it has one, else None.
        history_topics: ``(B, H)`` topics of each served user's last ``H`` clicks before the
            step, most recent first, ``PAD`` where none (a user shard's snapshot only).
        agent_users: a callable returning the agent's own representation of every user
            (``(num_users, r)``, dense or ``scipy.sparse``) when the agent has one
            (``user_representation()``), else None; read-only.

    ``interest_source`` may stand in for the two interest matrices: a callable returning
    ``(current, initial)``, called only if a metric reads them (on Ray it gathers them from
    the user shards, which sharded metrics avoid).
    """

    __slots__ = (
        "step",
        "num_users",
        "feedback",
        "catalog",
        "items",
        "new_item_sources",
        "slate_rows",
        "exposure",
        "creators",
        "agent_users",
        "history_topics",
        "_interests",
        "_initial",
        "_source",
    )

    def __init__(
        self,
        step: int,
        num_users: int,
        feedback: Feedback,
        catalog: Catalog,
        items: Any,
        new_item_sources: np.ndarray,
        interests: np.ndarray | None = None,
        initial_interests: np.ndarray | None = None,
        slate_rows: np.ndarray | None = None,
        interest_source: Callable[[], tuple[np.ndarray, np.ndarray]] | None = None,
        exposure: np.ndarray | None = None,
        creators: Any = None,
        agent_users: Callable[[], Any] | None = None,
        history_topics: np.ndarray | None = None,
    ) -> None:
        # metrics read the world's own arrays: each through a read-only view (a metric
        # that wrote into the items or creators changed what the users and content read)
        self.step = step
        self.num_users = num_users
        self.feedback = feedback
        self.catalog = catalog
        self.items = _read_only_table(items)
        self.new_item_sources = read_only_view(new_item_sources)
        self.slate_rows = read_only_view(slate_rows)
        self.exposure = read_only_view(exposure)
        self.creators = _read_only_table(creators)
        self.agent_users = agent_users
        self.history_topics = read_only_view(history_topics)
        self._interests = read_only_view(interests)
        self._initial = read_only_view(initial_interests)
        self._source = interest_source

    def _fetch(self) -> None:
        if self._source is not None:  # given only without interests; read once
            self._interests, self._initial = map(read_only_view, self._source())
            self._source = None

    @property
    def interests(self) -> np.ndarray:
        """Current latent interests."""
        self._fetch()
        return self._interests

    @property
    def initial_interests(self) -> np.ndarray:
        """Latent interests at step 0."""
        self._fetch()
        return self._initial

    def rows(self) -> np.ndarray:
        """``(B, K)`` rows of the slate items in the live item table."""
        if self.slate_rows is None:
            self.slate_rows = read_only_view(self.catalog.rows(self.feedback.slates))
        return self.slate_rows

    def exposure_counts(self) -> np.ndarray:
        """``(N,)`` impressions of each live item at the step, in catalog order."""
        if self.exposure is None:
            counts = np.bincount(self.rows().ravel(), minlength=self.catalog.num_items)
            self.exposure = read_only_view(counts)
        return self.exposure


def _read_only_table(table: Any) -> Any:
    """A shallow copy of a struct of arrays (the items, the creators) holding read-only views.

    None, and an object without a ``__dict__``, as it is.
    """
    if table is None or not hasattr(table, "__dict__"):
        return table
    out = copy.copy(table)
    read_only_fields(out, list(vars(out)))
    return out


class Metric:
    """Base class of metric groups.

    Subclasses set ``name`` and ``columns`` and implement :meth:`measure`, or the sharded
    pair :meth:`partial` and :meth:`reduce`.
    """

    # required in every subclass
    name: ClassVar[str]
    columns: ClassVar[tuple[str, ...]]
    # the range of each column's values, (low, high) with None for an unbounded side, e.g.
    # {"engagement/ctr": (0.0, 1.0), "users/active": (0.0, None)}. `simlab run` writes them
    # to the manifest (`metric_ranges`); the dashboard and `simlab report` clip interval
    # bands to them. A column without a declared range is never clipped.
    ranges: ClassVar[dict[str, tuple[float | None, float | None]]] = {}

    # optional: how `simlab run`/`show` summarise a column over steps ("mean" or "last")
    summary: ClassVar[dict[str, str]] = {}
    # optional: whether a scenario without a `metrics` list measures this group
    on_by_default: ClassVar[bool] = True
    # optional: an expensive, stateless population-wide measure that a scenario may take
    # every `measures.every` steps only (NaN between; step 0 and the last step always).
    # Only for groups whose value at a step does not depend on earlier steps being measured.
    cadenced: ClassVar[bool] = False

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx

    def measure(self, snap: StepSnapshot) -> dict[str, float]:
        """Return ``{column: value}`` for one step."""
        if self.sharded():
            return self.reduce([self.partial(snap)], snap)
        raise NotImplementedError(f"{type(self).__name__} must implement measure()")

    def partial(self, snap: StepSnapshot) -> dict[str, Any]:
        """Sums, counts or histograms over the users of one shard (``snap`` covers them).

        ``snap.feedback``, ``snap.slate_rows``, ``snap.interests`` and
        ``snap.initial_interests`` hold only the shard's users; the catalog and items are
        the whole step's. Must not keep state between calls.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement partial()")

    def reduce(self, parts: list[dict[str, Any]], snap: StepSnapshot) -> dict[str, float]:
        """Combine the shards' :meth:`partial` results (in shard order) into the row.

        ``snap`` is the step's snapshot at the world level (all served users' feedback).
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement reduce()")

    def due(self, step: int) -> bool:
        """Whether the group is measured at ``step`` (always, unless it is ``cadenced``).

        A cadenced group is measured at the steps that are multiples of
        ``measures.every`` (``ctx.measure_every``) and at the run's last step.
        """
        every = int(getattr(self.ctx, "measure_every", None) or 1)
        return not (self.cadenced and step % every) or self._last_step(step)

    def pairwise_due(self, step: int) -> bool:
        """Whether a pairwise measure is taken at ``step``.

        After every ``measures.pairwise_every`` steps (``(step + 1) % N == 0``) and at the
        run's last step, so that a run's final value is always measured.
        """
        every = int(getattr(self.ctx, "pairwise_every", None) or 1)
        return (step + 1) % every == 0 or self._last_step(step)

    def _last_step(self, step: int) -> bool:
        """Whether ``step`` is the run's last (never, for a context without a length)."""
        steps = getattr(self.ctx, "steps", None)
        return steps is not None and step == int(steps) - 1

    @classmethod
    def value_range(cls, column: str) -> tuple[float | None, float | None] | None:
        """The declared ``(low, high)`` range of ``column``, or None when it declares none."""
        return cls.ranges.get(column)

    @classmethod
    def sharded(cls) -> bool:
        """Whether the metric is computed from per-shard partials."""
        return cls.partial is not Metric.partial

    def observe(
        self, snap: StepSnapshot, parts: list[dict[str, Any]] | None = None
    ) -> dict[str, float]:
        """Measure one step and return its row.

        ``parts`` are the user shards' partials when the metric is sharded. A group that is
        not :meth:`due` at the step gives NaN in every column without measuring.
        """
        if not self.due(snap.step):
            return dict.fromkeys(self.columns, float("nan"))
        raw = self.reduce(parts, snap) if parts is not None else self.measure(snap)
        return {c: float(v) for c, v in raw.items()}


def safe_ratio(num: float, den: float) -> float:
    """``num / den``, NaN when ``den`` is 0."""
    return float(num) / float(den) if den else float("nan")
