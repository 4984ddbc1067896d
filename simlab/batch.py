"""The data that flows through one step of the loop, as struct-of-arrays dataclasses.

Every array is a numpy array with a documented shape; ``__post_init__`` checks shapes so a
model that returns the wrong thing fails at the boundary, not deep inside another model.
Nothing here carries latent truth (true interests, true quality): that stays inside
``simlab.environments``.

Shapes use ``B`` = users served this step, ``K`` = slate size, ``C`` = candidates per user,
``H`` = history length, ``N`` = live items, ``d`` = feature dimension.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cached_property

import numpy as np

from simlab.batch_arrays import (
    PAD,
    BroadcastRows,
    _check,
    compact_rows,
    is_row_broadcast,
    lookup_sorted,
    read_only_fields,
    row_blocks,
)
from simlab.batch_deferred import Deferred, _DeferredField

__all__ = [
    "Catalog",
    "Deferred",
    "Observation",
    "Slates",
    "Feedback",
    "Log",
    "PAD",
    "lookup_sorted",
    "is_row_broadcast",
    "compact_rows",
    "BroadcastRows",
    "row_blocks",
]


@dataclass(frozen=True)
class Catalog:
    """The observable view of the live items, sorted by item id.

    Attributes:
        item_ids: ``(N,)`` int64, strictly increasing.
        features: ``(N, d)`` float32 observable item embeddings.
        creator: ``(N,)`` int64 creator id of each item.
        age: ``(N,)`` int64 steps since publication.
        source: ``(N,)`` int8 (0 = human, 1 = AIGC) only when the platform is configured to
            know the source, else ``None``.
    """

    item_ids: np.ndarray
    features: np.ndarray
    creator: np.ndarray
    age: np.ndarray
    source: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = self.item_ids.shape[0] if isinstance(self.item_ids, np.ndarray) else None
        _check("Catalog.item_ids", self.item_ids, (n,), "i")
        _check("Catalog.features", self.features, (n, None), "f")
        _check("Catalog.creator", self.creator, (n,), "i")
        _check("Catalog.age", self.age, (n,), "i")
        if self.source is not None:
            _check("Catalog.source", self.source, (n,), "iu")
        read_only_fields(self, ("item_ids", "features", "creator", "age", "source"))

    @property
    def num_items(self) -> int:
        """Number of live items ``N``."""
        return int(self.item_ids.shape[0])

    def rows(self, item_ids: np.ndarray) -> np.ndarray:
        """Row index of each item id (any shape); raises ``KeyError`` for an id not live."""
        item_ids = np.asarray(item_ids)
        pos, found = lookup_sorted(self.item_ids, item_ids)
        if not found.all():
            bad = np.unique(item_ids[~found])[:10].tolist()
            raise KeyError(f"item ids not in the live catalog: {bad}")
        return pos


@dataclass(frozen=True)
class Observation:
    """What an agent sees when it acts at one step.

    Attributes:
        step: the step index ``t``.
        user_ids: ``(B,)`` int64 ids of the users to serve, increasing.
        user_features: ``(B, f)`` float32 observable user features.
        history: ``(B, H)`` int64 recently clicked item ids, most recent first, padded
            with ``PAD``. It may be given as a :class:`Deferred`, built when first read.
        candidates: ``(B, C)`` int64 candidate item ids per user (no padding, no duplicates
            within a row). When ``shared_candidates`` is true every row is the same and the
            array is a zero-copy broadcast view.
        catalog: the observable catalog of live items.
        slate_size: ``K``, the number of items to return per user.
        shared_candidates: whether all users have the same candidates.
    """

    step: int
    user_ids: np.ndarray
    user_features: np.ndarray
    history: np.ndarray = _DeferredField(((None,), "i"), read_only=True)  # type: ignore[assignment]
    candidates: np.ndarray
    catalog: Catalog
    slate_size: int
    shared_candidates: bool = False

    def __post_init__(self) -> None:
        b = self.user_ids.shape[0] if isinstance(self.user_ids, np.ndarray) else None
        _check("Observation.user_ids", self.user_ids, (b,), "i")
        _check("Observation.user_features", self.user_features, (b, None), "f")
        if not isinstance(self.__dict__["history"], Deferred):  # else checked when read
            _check("Observation.history", self.history, (b, None), "i")
        _check("Observation.candidates", self.candidates, (b, None), "i")
        if self.candidates.shape[1] < self.slate_size:
            raise ValueError(
                f"Expects at least slate_size={self.slate_size} candidates per user, "
                f"actual: {self.candidates.shape[1]}"
            )
        read_only_fields(self, ("user_ids", "user_features", "history", "candidates"))
        if self.shared_candidates and b == 0:
            # a (0, C) broadcast has no row to share: no user, per-user candidates (empty)
            object.__setattr__(self, "shared_candidates", False)

    @property
    def num_users(self) -> int:
        """Number of users served ``B``."""
        return int(self.user_ids.shape[0])

    @property
    def candidate_pool(self) -> np.ndarray:
        """The candidates without the broadcast: ``(C,)`` when shared, else ``(B, C)``.

        When ``shared_candidates`` is true this is the one row every user shares (score it
        once for everyone); otherwise it is :attr:`candidates` itself.
        """
        return self.candidates[0] if self.shared_candidates else self.candidates

    def __reduce__(self):
        # shared candidates are a (B, C) broadcast of one row: pickle (send to an actor)
        # the row, not B copies of it
        args = (self.step, self.user_ids, self.user_features, self.history)
        rest = (self.catalog, self.slate_size, self.shared_candidates)
        return (Observation, (*args, compact_rows(self.candidates), *rest))


@dataclass(frozen=True)
class Slates:
    """The slates an agent returns: ``item_ids`` of shape ``(B, K)``, position 0 on top."""

    user_ids: np.ndarray
    item_ids: np.ndarray

    def __post_init__(self) -> None:
        b = self.user_ids.shape[0] if isinstance(self.user_ids, np.ndarray) else None
        _check("Slates.user_ids", self.user_ids, (b,), "i")
        _check("Slates.item_ids", self.item_ids, (b, None), "i")


@dataclass(frozen=True)
class Feedback:
    """Users' responses to their slates at one step.

    Attributes:
        step: the step index.
        user_ids: ``(B,)`` int64, increasing.
        slates: ``(B, K)`` int64 item ids shown.
        clicked_pos: ``(B,)`` int64 slate position clicked, ``-1`` for no click.
        engagement: ``(B,)`` float32 engagement value (0 without a click).
    """

    step: int
    user_ids: np.ndarray
    slates: np.ndarray
    clicked_pos: np.ndarray
    engagement: np.ndarray

    def __post_init__(self) -> None:
        b = self.user_ids.shape[0] if isinstance(self.user_ids, np.ndarray) else None
        _check("Feedback.user_ids", self.user_ids, (b,), "i")
        _check("Feedback.slates", self.slates, (b, None), "i")
        _check("Feedback.clicked_pos", self.clicked_pos, (b,), "i")
        _check("Feedback.engagement", self.engagement, (b,), "f")
        read_only_fields(self, ("user_ids", "slates", "clicked_pos", "engagement"))

    @property
    def clicked(self) -> np.ndarray:
        """``(B,)`` bool, whether each user clicked."""
        return self.clicked_pos >= 0

    @cached_property
    def clicked_items(self) -> np.ndarray:
        """``(B,)`` int64 clicked item id, ``PAD`` where no click (computed once, read-only)."""
        items = _clicked_items(self.slates, self.clicked_pos)
        items.setflags(write=False)  # shared by every reader of this feedback
        return items


def _read_only(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


_EMPTY_IDS = Deferred(lambda: _read_only(np.zeros(0, np.int64)))
_EMPTY_FEATURES = Deferred(lambda: _read_only(np.zeros((0, 0), np.float32)))


@dataclass(frozen=True)
class Log:
    """The platform's log window: impressions and responses of recent steps, concatenated.

    Attributes:
        step: ``(M,)`` int64 step of each logged impression (one row per served user).
        user_ids: ``(M,)`` int64.
        slates: ``(M, K)`` int64 item ids shown (with ``platform.slate_size: 0`` the steps'
            slates differ in width: narrower ones are ``PAD``-padded to the widest).
        clicked_pos: ``(M,)`` int64, ``-1`` for no click.
        engagement: ``(M,)`` float32.
        features: observable features of every item appearing in ``slates``, keyed by
            ``feature_ids`` (sorted), so a model can learn about items that have retired.

    Every array may be given as a :class:`Deferred`, built when first read (see
    :meth:`of_steps`); a pickled log carries them built.
    """

    step: np.ndarray = _DeferredField()  # type: ignore[assignment]
    user_ids: np.ndarray = _DeferredField()  # type: ignore[assignment]
    slates: np.ndarray = _DeferredField()  # type: ignore[assignment]
    clicked_pos: np.ndarray = _DeferredField()  # type: ignore[assignment]
    engagement: np.ndarray = _DeferredField()  # type: ignore[assignment]
    feature_ids: np.ndarray = _DeferredField(default=_EMPTY_IDS)  # type: ignore[assignment]
    features: np.ndarray = _DeferredField(default=_EMPTY_FEATURES)  # type: ignore[assignment]

    @classmethod
    def of_steps(
        cls,
        feedback: list[Feedback],
        feature_ids: np.ndarray | Deferred,
        features: np.ndarray | Deferred,
    ) -> Log:
        """The log of several steps' feedback (in order), each array joined when first read.

        An agent that reads only some of the arrays (popularity counts read the clicks)
        does not pay for joining the others, and :attr:`clicked_items` is joined from each
        step's clicked items without joining the ``(M, K)`` slates.
        """
        steps = list(feedback)

        def joined(part) -> Deferred:
            return Deferred(lambda: np.concatenate([part(f) for f in steps]))

        width = max((f.slates.shape[1] for f in steps), default=0)

        def padded(f: Feedback) -> np.ndarray:  # slates of every candidate vary in width
            extra = width - f.slates.shape[1]
            return (
                np.pad(f.slates, ((0, 0), (0, extra)), constant_values=PAD) if extra else f.slates
            )

        log = cls(
            step=joined(lambda f: np.full(f.user_ids.shape[0], f.step, np.int64)),
            user_ids=joined(lambda f: f.user_ids),
            slates=joined(padded),
            clicked_pos=joined(lambda f: f.clicked_pos),
            engagement=joined(lambda f: f.engagement),
            feature_ids=feature_ids,
            features=features,
        )
        log.__dict__["_clicked_items"] = joined(lambda f: f.clicked_items)
        return log

    def __reduce__(self):
        # the arrays, built: a Deferred (a closure) does not pickle
        return (Log, tuple(getattr(self, f.name) for f in fields(self)))

    @property
    def num_rows(self) -> int:
        """Number of logged impressions ``M``."""
        return int(self.user_ids.shape[0])

    @property
    def clicked_items(self) -> np.ndarray:
        """``(M,)`` clicked item id per row, ``PAD`` where no click."""
        joined = self.__dict__.get("_clicked_items")
        if joined is not None:
            return joined.resolve()
        return _clicked_items(self.slates, self.clicked_pos)


def _clicked_items(slates: np.ndarray, clicked_pos: np.ndarray) -> np.ndarray:
    """``(B,)`` the item at ``clicked_pos`` of each slate row, ``PAD`` where it is -1."""
    chose = np.flatnonzero(clicked_pos >= 0)
    out = np.full(clicked_pos.shape[0], PAD, slates.dtype)
    out[chose] = slates[chose, clicked_pos[chose]]
    return out
