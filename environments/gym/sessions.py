"""The shared core of the Gymnasium environments: a :class:`~simlab.world.World` served by a policy.

:class:`WorldSessions` is a view onto one ``World`` in which an outside policy, not the
scenario's agent, picks the slates. Each env step runs the world's own phases —
``World.begin`` (content, arrivals), the policy's slates, ``World.finish`` (the users'
responses, the platform's log and histories, the metrics) — so users, content and metrics
are the simulator's components, never a second implementation.

Every user of the world is one session: the world's population is the batch (1 for
``simlab/SlateRec-v0``, ``num_envs`` for its vector env, ``num_users`` for
``simlab/Platform-v0``). There are no background users. Observations are arrays over all
users; a user who does not visit at a step (the scenario's return model; the gym defaults
make every user visit every step) gets a zero reward and their action is ignored.

Shapes: ``N`` users, ``C`` candidates per user (``platform.max_candidates``), ``K`` slate
size, ``H`` history length, ``f`` user-feature and ``d`` item-feature dimensions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from simlab.batch import PAD, Slates
from simlab.errors import ScenarioError
from simlab.rng import Stream, check_seed
from simlab.scenario import Scenario, load_scenario, parse_scenario
from simlab.world import World

__all__ = [
    "DEFAULT_SCENARIO",
    "GYM_DEFAULTS",
    "RewardKind",
    "WorldSessions",
    "build_scenario",
    "dedupe_slates",
    "episode_seed",
    "EpisodeSeeds",
    "override_pairs",
]

DEFAULT_SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "quickstart.yaml"
"""The scenario used when neither ``scenario`` nor ``scenario_data`` is given."""

GYM_DEFAULTS: dict[str, Any] = {
    "world.dim": 16,
    "world.num_topics": 8,
    "users.return_prob": 1.0,
    "users.return_spread": 0.0,
    "content.initial_items": 200,
    "content.items_per_step": 4,
    "content.lifetime": 50,
    "platform.slate_size": 5,
    "platform.max_candidates": 20,
    "platform.history_length": 10,
}
"""Small-world overrides applied to the scenario before the caller's ``overrides``.

Every user visits every step (``return_prob: 1``), so an env step is one visit; the caller's
overrides win over these.
"""

Overrides = Mapping[str, Any] | Iterable[str | tuple[str, Any]] | None


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


def info_row(row: Mapping[str, float]) -> dict[str, float | None]:
    """A metric row for an env's ``info``: undefined (NaN) values become ``None``.

    (NaN never equals itself, so NaN in ``info`` would fail Gymnasium's determinism checks.)
    """
    return {k: None if isinstance(v, float) and v != v else v for k, v in row.items()}


def override_pairs(overrides: Overrides) -> list[str | tuple[str, Any]]:
    """Overrides as a list of ``"path=value"`` strings or ``(path, value)`` pairs."""
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        return list(overrides.items())
    if isinstance(overrides, str):
        return [overrides]
    return list(overrides)


def build_scenario(
    scenario: str | Path | None = None,
    scenario_data: Mapping[str, Any] | None = None,
    overrides: Overrides = None,
    forced: Overrides = None,
) -> Scenario:
    """The scenario of a gym env: file or inline data, then gym defaults, overrides, ``forced``.

    Args:
        scenario: a scenario YAML path (default :data:`DEFAULT_SCENARIO`).
        scenario_data: an inline scenario mapping instead of a file.
        overrides: ``{"path.to.field": value}``, ``"path=value"`` strings or pairs.
        forced: overrides the env itself needs (population size, a placeholder agent).

    Raises:
        ValueError: if both ``scenario`` and ``scenario_data`` are given.
        ScenarioError: on any invalid field, naming its path.
    """
    if scenario is not None and scenario_data is not None:
        raise ValueError("Expects at most one of `scenario` and `scenario_data`, got both")
    # the scenario's agents are not used (the policy serves), so a cheap placeholder replaces
    # them: the world still needs one to build, and it never learns or retrains anything
    pairs = [*GYM_DEFAULTS.items(), *override_pairs(overrides), ("agents", [{"model": "random"}])]
    pairs += override_pairs(forced)
    if scenario_data is not None:
        return parse_scenario(scenario_data, pairs, source="<scenario_data>")
    return load_scenario(DEFAULT_SCENARIO if scenario is None else scenario, pairs)


def episode_seed(base_seed: int, episode: int) -> int:
    """World seed of episode ``episode`` after ``reset(seed=base_seed)``: the seed itself first.

    >>> episode_seed(7, 0)
    7
    >>> episode_seed(7, 1) == episode_seed(7, 1) != episode_seed(7, 2)
    True
    """
    if episode == 0:
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
        top = int(item_ids[-1]) + 1
        if top > self.table.shape[0]:
            grown = np.zeros((max(top, 2 * self.table.shape[0]), self.table.shape[1]), np.float32)
            grown[: self.known] = self.table[: self.known]
            self.table = grown
        self.table[item_ids[new]] = features[new]
        self.known = top


class WorldSessions:
    """One world whose every user is a session served by an outside policy.

    Args:
        scenario: a resolved scenario (:func:`build_scenario`); ``platform.max_candidates``
            must be positive so that ``C`` is fixed.
        seed: the world seed.

    Attributes:
        obs: the current observation: ``user`` ``(N, f)``, ``history`` ``(N, H, d)`` (zeros
            pad), ``candidates`` ``(N, C, d)``, all float32.
        served: ``(N,)`` bool, which users visit at the current step.
        candidate_ids: ``(N, C)`` int64 item ids behind ``obs["candidates"]``.
    """

    def __init__(self, scenario: Scenario, seed: int) -> None:
        self.world = World(scenario, 0, check_seed(seed))
        sec = scenario.platform
        if sec.max_candidates <= 0:
            raise ScenarioError(
                "platform.max_candidates: the gym envs need a fixed number of candidates, "
                f"got {sec.max_candidates}; set a positive value such as 20"
            )
        self.num_users = self.world.context.num_users
        self.num_candidates = sec.max_candidates
        self.slate_size = sec.slate_size
        self.user_ids = np.arange(self.num_users, dtype=np.int64)
        self._items = _FeatureTable(self.world.context.dim)
        self.t = 0
        self._begin()

    @property
    def metric_columns(self) -> list[str]:
        """The metric columns of a step's row."""
        return self.world.metric_columns()

    @property
    def churned(self) -> np.ndarray:
        """``(N,)`` bool, users who have left for good (none if the user model has no churn)."""
        return getattr(self.world.users, "churned", np.zeros(self.num_users, bool))

    def _begin(self) -> None:
        """Run the world's phases up to serving for step ``self.t``; build the observation."""
        w, t = self.world, self.t
        self.catalog, active = w.begin(t)
        self._items.add(self.catalog.item_ids, self.catalog.features)
        self.served = np.zeros(self.num_users, bool)
        self.served[active] = True
        cands, _ = w.platform.candidates(t, self.user_ids, self.catalog)
        if cands.shape[1] != self.num_candidates:
            raise ScenarioError(
                f"platform.max_candidates: {self.num_candidates} is more than the "
                f"{cands.shape[1]} live items at step {t}; increase content.initial_items"
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

    def step(self, action: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
        """Serve the slates ``action`` picks and advance the world one step.

        Args:
            action: ``(N, K)`` candidate indices; repeats are replaced
                (:func:`dedupe_slates`); rows of users who do not visit are ignored.

        Returns:
            ``(clicked, engagement, row)``: ``(N,)`` bool and ``(N,)`` float32 (False and 0
            for users not served) and the step's metric row.

        Raises:
            ValueError: on a wrongly shaped action or an index outside ``[0, C)``.
        """
        act = np.asarray(action)
        want = (self.num_users, self.slate_size)
        if act.shape != want:
            raise ValueError(f"Expects an action of shape {want}, actual shape: {act.shape}")
        if act.size and (act.min() < 0 or act.max() >= self.num_candidates):
            raise ValueError(
                f"Expects candidate indices in [0, {self.num_candidates}), actual range: "
                f"[{act.min()}, {act.max()}]"
            )
        idx = dedupe_slates(act, self.num_candidates)
        active = self.user_ids[self.served]
        items = np.take_along_axis(self.candidate_ids[self.served], idx[self.served], axis=1)
        row = self.world.finish(
            self.t, Slates(active, items), self.catalog, learn=False, who="the policy"
        )
        fb = self.world.last_feedback
        clicked = np.zeros(self.num_users, bool)
        engagement = np.zeros(self.num_users, np.float32)
        clicked[active] = fb.clicked
        engagement[active] = fb.engagement
        self.t += 1
        self._begin()
        return clicked, engagement, row
