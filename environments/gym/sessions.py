"""The shared core of the Gymnasium environments: a :class:`~simlab.world.World` served by a policy.

:class:`WorldSessions` is a view onto one ``World`` in which an outside policy, not the
scenario's agent, picks the slates. Each env step runs the world's own phases —
``World.begin`` (content, arrivals), the policy's slates, ``World.finish`` (the users'
responses, the platform's log and histories, the metrics) — so users, content and metrics
are the simulator's components, never a second implementation.

The world holds ``N * R`` users for ``N`` sessions (``R = users_per_session``): session
``i`` is served by user ``i`` first, and when that user's episode ends (churn, or the
env's step budget) by user ``i + N``, then ``i + 2N``, ... — a fresh user of the same,
already running world. Users who are not (yet) the current user of a session are never
served. ``R = 1`` and ``N`` = the population for ``simlab/SlateRec-v0`` (one user) and
``simlab/Platform-v0`` (every user); the native vector env uses ``R > 1`` for its
per-session autoreset. A user who does not visit at a step (the scenario's return model)
gets a zero reward and their action is ignored.

Shapes: ``N`` sessions, ``C`` candidates per user (``platform.max_candidates``, or every
live item when that is 0 and the catalog size never changes), ``K`` slate size, ``H``
history length, ``f`` user-feature and ``d`` item-feature dimensions.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

from simlab.batch import PAD, Slates
from simlab.errors import ScenarioError
from simlab.rng import Stream, check_seed
from simlab.scenario import Scenario
from simlab.world import World

__all__ = [
    "RewardKind",
    "StepResult",
    "WorldSessions",
    "dedupe_slates",
    "episode_seed",
    "EpisodeSeeds",
]


class RewardKind(str, Enum):
    """What a served user's reward is: a click (0/1) or its engagement (0 without a click)."""

    CLICK = "click"
    ENGAGEMENT = "engagement"

    @classmethod
    def parse(cls, value: str | RewardKind) -> RewardKind:
        """``value`` as a :class:`RewardKind`; raises ``ValueError`` listing the valid values."""
        try:
            return cls(value)
        except ValueError:
            valid = [k.value for k in cls]
            raise ValueError(f"Expects `reward` in {valid}, actual value: {value!r}") from None


def episode_seed(base_seed: int, episode: int) -> int:
    """World seed of episode ``episode`` after ``reset(seed=base_seed)``: the seed itself first.

    >>> episode_seed(7, 0)
    7
    >>> episode_seed(7, 1) == episode_seed(7, 1) != episode_seed(7, 2)
    True
    """
    if not episode:
        return check_seed(base_seed)
    return int(Stream(base_seed, "gym/episode_seed").integers([episode], 0, 2**62)[0])


class EpisodeSeeds:
    """World seeds of successive episodes: ``reset(seed=s)`` restarts at ``s``, ``None`` goes on.

    The first episode after ``reset(seed=s)`` gets world seed ``s`` itself (the world
    ``simlab run`` builds for seed ``s``); later unseeded resets get keyed draws from ``s``
    (:func:`episode_seed`). Before any seed, the base comes from the env's ``np_random``.
    """

    def __init__(self) -> None:
        self.base: int | None = None
        self.episode = 0

    def next(self, seed: int | None, rng: np.random.Generator) -> int:
        """The world seed of the episode a ``reset(seed=seed)`` starts."""
        if seed is not None:
            self.base, self.episode = check_seed(seed), 0
        elif self.base is None:
            self.base, self.episode = int(rng.integers(2**62)), 0
        self.episode += 1
        return episode_seed(self.base, self.episode - 1)


def candidate_indices(action: Any, shape: tuple[int, ...], num_candidates: int) -> np.ndarray:
    """``action`` as int64 candidate indices of ``shape``, or a ``ValueError`` saying why not.

    Integers, or floats holding whole numbers (some RL libraries pass those), in
    ``[0, num_candidates)``; NaN, fractions, strings, ``None`` and other shapes are refused.
    """
    act = np.asarray(action)
    if act.shape != shape:
        raise ValueError(f"Expects an action of shape {shape}, actual shape: {act.shape}")
    if act.dtype.kind == "f":
        whole = np.isfinite(act) & (act == np.floor(act))
        if not whole.all():
            bad = act[~whole].ravel()[0]
            raise ValueError(
                f"Expects whole-number candidate indices in the action, actual value: {bad}"
            )
    elif act.dtype.kind not in "iu":
        raise ValueError(
            f"Expects an action of integer candidate indices, actual dtype: {act.dtype}"
        )
    if act.size and (act.min() < 0 or act.max() >= num_candidates):
        raise ValueError(
            f"Expects candidate indices in [0, {num_candidates}) in the action, actual range: "
            f"[{act.min()}, {act.max()}]"
        )
    return act.astype(np.int64, copy=False)


def dedupe_slates(idx: np.ndarray, num_candidates: int) -> np.ndarray:
    """Replace repeated candidate indices in each slate by the lowest unused index.

    Slots are resolved left to right: a slot whose index an earlier slot already took gets
    the lowest-index candidate not yet in the slate. Vectorised over slates (loops over K).

    Args:
        idx: ``(N, K)`` candidate indices in ``[0, num_candidates)``.
        num_candidates: ``C`` (at least ``K``).

    Returns:
        ``(N, K)`` int64 indices, distinct within each row.

    >>> dedupe_slates(np.array([[3, 3, 0, 3]]), 5).tolist()
    [[3, 0, 1, 2]]
    """
    out = np.array(idx, dtype=np.int64, copy=True)
    used = np.zeros((out.shape[0], num_candidates), bool)
    r = np.arange(out.shape[0])
    for j in range(out.shape[1]):
        a = out[:, j]
        dup = used[r, a]
        if dup.any():
            a = np.where(dup, np.argmin(used, axis=1), a)
            out[:, j] = a
        used[r, a] = True
    return out


class _FeatureTable:
    """Observable features of every item ever published, by item id (items never change).

    The history observation needs features of clicked items that may have retired from the
    live catalog; the table keeps them (item ids are consecutive from 0).
    """

    def __init__(self, dim: int) -> None:
        self.table = np.zeros((1024, dim), np.float32)
        self.known = 0

    def add(self, item_ids: np.ndarray, features: np.ndarray) -> None:
        """Store the features of live items not stored yet."""
        new = item_ids >= self.known
        if not new.any():
            return
        top = int(item_ids.max()) + 1
        if top > self.table.shape[0]:
            grown = np.zeros((max(top, 2 * self.table.shape[0]), self.table.shape[1]), np.float32)
            grown[: self.known] = self.table[: self.known]
            self.table = grown
        self.table[item_ids[new]] = features[new]
        self.known = max(self.known, top)


@dataclass(frozen=True)
class StepResult:
    """What one :meth:`WorldSessions.step` did, per session (``N`` sessions, ``K`` slots).

    Attributes:
        served: ``(N,)`` bool, the session's user visited and got the slate.
        slate: ``(N, K)`` int64 candidate indices actually served (repeats replaced), -1 in
            rows not served.
        slate_items: ``(N, K)`` int64 item ids actually served, -1 in rows not served.
        clicked_position: ``(N,)`` int64 slot of the click, -1 for none.
        engagement: ``(N, K)`` float32 engagement per slot (0 except the clicked slot).
        metrics: the step's metric row (``group/name`` -> float, NaN where undefined).
    """

    served: np.ndarray
    slate: np.ndarray
    slate_items: np.ndarray
    clicked_position: np.ndarray
    engagement: np.ndarray
    metrics: dict[str, float]

    @property
    def clicked(self) -> np.ndarray:
        """``(N,)`` bool, the session's user clicked."""
        return self.clicked_position >= 0

    @property
    def total_engagement(self) -> np.ndarray:
        """``(N,)`` float32 engagement of the click (0 without one)."""
        return self.engagement.sum(axis=1)


class WorldSessions:
    """One world whose users serve ``N`` sessions of an outside policy (module docstring).

    Args:
        scenario: a resolved scenario (:func:`~simlab.environments.gym.scenarios.build_scenario`)
            whose ``users.num_users`` is ``N * users_per_session``.
        seed: the world seed.
        users_per_session: ``R``, users each session goes through before the world is spent.

    Attributes:
        obs: the current observation: ``user`` ``(N, f)``, ``history`` ``(N, H, d)`` (zeros
            pad), ``candidates`` ``(N, C, d)``, all float32.
        served: ``(N,)`` bool, whose current user visits at the current step.
        user_ids: ``(N,)`` int64, the current user of each session.
        candidate_ids: ``(N, C)`` int64 item ids behind ``obs["candidates"]``.
    """

    def __init__(self, scenario: Scenario, seed: int, users_per_session: int = 1) -> None:
        self.world = World(scenario, 0, check_seed(seed))
        total = self.world.context.num_users
        if users_per_session < 1 or total % users_per_session:
            raise ValueError(
                f"Expects `users_per_session` to divide the population {total}, "
                f"actual value: {users_per_session}"
            )
        self.num_sessions = total // users_per_session
        self.users_per_session = users_per_session
        sec = scenario.platform
        self.num_candidates = sec.max_candidates  # 0: every live item, set at the first step
        self.slate_size = sec.slate_size
        self.user_ids = np.arange(self.num_sessions, dtype=np.int64)
        self.generation = np.zeros(self.num_sessions, np.int64)
        self._items = _FeatureTable(self.world.context.dim)
        self.t = 0
        self._begin()

    @property
    def num_users(self) -> int:
        """``N``, the number of sessions (the batch)."""
        return self.num_sessions

    @property
    def metric_columns(self) -> list[str]:
        """The metric columns of a step's row."""
        return self.world.metric_columns()

    @property
    def churned(self) -> np.ndarray:
        """``(N,)`` bool, the session's current user has left for good."""
        churned = getattr(self.world.users, "churned", None)
        if churned is None:  # a user model without churn
            return np.zeros(self.num_sessions, bool)
        return np.asarray(churned)[self.user_ids]

    def exhausted(self, sessions: np.ndarray) -> bool:
        """Whether any of ``sessions`` (a bool mask or indices) has no fresh user left."""
        return bool((self.generation[sessions] + 1 >= self.users_per_session).any())

    def next_users(self, sessions: np.ndarray) -> None:
        """Give ``sessions`` (a bool mask or indices) their next, fresh user.

        Takes effect from the next step's observation: call between :meth:`step` calls.
        """
        if self.exhausted(sessions):
            raise RuntimeError("a session has no fresh user left; build a new world")
        self.generation[sessions] += 1
        self.user_ids = self.generation * self.num_sessions + np.arange(self.num_sessions)
        self._observe()

    def _begin(self) -> None:
        """Run the world's phases up to serving for step ``self.t``; build the observation."""
        self.catalog, self._active = self.world.begin(self.t)
        self._items.add(self.catalog.item_ids, self.catalog.features)
        self._observe()

    def _observe(self) -> None:
        """The observation of the sessions' current users at the current step."""
        w, t = self.world, self.t
        self.served = np.isin(self.user_ids, self._active, assume_unique=True)
        cands, _ = w.platform.candidates(t, self.user_ids, self.catalog)
        if not self.num_candidates:
            self.num_candidates = cands.shape[1]  # every live item (max_candidates: 0)
        if cands.shape[1] != self.num_candidates:
            raise ScenarioError(
                f"platform.max_candidates: the gym envs need a fixed number of candidates "
                f"per user, {self.num_candidates}, but step {t} has {cands.shape[1]} (live "
                f"items: {self.catalog.num_items}); set platform.max_candidates to at most "
                "the number of live items, e.g. overrides={'platform.max_candidates': 20}"
            )
        self.candidate_ids = np.ascontiguousarray(cands)
        hist = w.platform.history(self.user_ids)
        hist_feats = self._items.table[np.maximum(hist, 0)]
        hist_feats[hist == PAD] = 0.0
        self.obs = {
            "user": np.asarray(w.users.observable_features(self.user_ids), np.float32),
            "history": hist_feats,
            "candidates": self._items.table[self.candidate_ids],
        }

    def step(self, action: np.ndarray, skip: np.ndarray | None = None) -> StepResult:
        """Serve the slates ``action`` picks and advance the world one step.

        Args:
            action: ``(N, K)`` candidate indices; repeats are replaced
                (:func:`dedupe_slates`); rows of sessions not served are ignored.
            skip: ``(N,)`` bool, sessions not to serve this step (being reset).

        Returns:
            The :class:`StepResult` of the step.

        Raises:
            ValueError: on an action that is not integer indices in ``[0, C)`` of shape
                ``(N, K)`` (:func:`candidate_indices`).
        """
        n, k = self.num_sessions, self.slate_size
        act = candidate_indices(action, (n, k), self.num_candidates)
        served = self.served if skip is None else self.served & ~skip
        idx = dedupe_slates(act, self.num_candidates)
        rows = np.flatnonzero(served)
        order = rows[np.argsort(self.user_ids[rows], kind="stable")]  # increasing user ids
        items = np.take_along_axis(self.candidate_ids[order], idx[order], axis=1)
        metrics = self.world.finish(
            self.t, Slates(self.user_ids[order], items), self.catalog, learn=False, who="the policy"
        )
        fb = self.world.last_feedback
        slate = np.full((n, k), -1, np.int64)
        slate_items = np.full((n, k), -1, np.int64)
        clicked_position = np.full(n, -1, np.int64)
        engagement = np.zeros((n, k), np.float32)
        slate[order], slate_items[order] = idx[order], items
        clicked_position[order] = fb.clicked_pos
        hit = order[fb.clicked_pos >= 0]
        engagement[hit, clicked_position[hit]] = fb.engagement[fb.clicked_pos >= 0]
        self.t += 1
        self._begin()
        return StepResult(served, slate, slate_items, clicked_position, engagement, metrics)
