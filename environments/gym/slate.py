"""``simlab/SlateRec-v0``: one user's session, and its natively batched vector env.

The world is built from a scenario with a population of one user (:class:`SlateRecEnv`)
or ``num_envs`` users (:class:`SlateRecVectorEnv`); each user is one session served by the
policy (see :mod:`simlab.environments.gym.sessions`). Spaces (``H`` history length, ``C``
candidates, ``K`` slate size, ``d`` feature dimension, from the scenario's ``platform``
and ``world`` sections):

* observation ``Dict(user=Box(d,), history=Box(H, d), candidates=Box(C, d))``, float32,
  unbounded: the user's observable features, the features of their ``H`` most recent clicks
  (most recent first, zeros pad) and of the ``C`` candidate items;
* action ``MultiDiscrete([C] * K)``: candidate indices, slot 0 on top. A repeated index is
  replaced by the lowest-index candidate not already in the slate (slots left to right);
* reward: 1.0 for a click (``reward="click"``) or the click's engagement in ``[0, 1]``
  (``reward="engagement"``, the default), 0 without a click or a visit;
* ``terminated`` when the user churns; ``truncated`` after ``max_steps`` steps (default the
  scenario's ``steps``);
* ``info``: the simlab metric row of the step (``group/name`` keys, None where undefined)
  plus ``clicked`` and ``served``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector.utils import batch_space

from .sessions import (
    EpisodeSeeds,
    Overrides,
    RewardKind,
    WorldSessions,
    build_scenario,
    info_row,
)

try:  # gymnasium >= 1.1 declares the autoreset mode; 1.0 has only next-step autoreset
    from gymnasium.vector import AutoresetMode

    _NEXT_STEP: Any = AutoresetMode.NEXT_STEP
except ImportError:  # pragma: no cover - gymnasium 1.0
    _NEXT_STEP = "NextStep"

__all__ = ["SlateRecEnv", "SlateRecVectorEnv", "session_spaces"]


def session_spaces(sessions: WorldSessions) -> tuple[spaces.Dict, spaces.MultiDiscrete]:
    """The observation and action space of one session of ``sessions``."""
    obs = {
        k: spaces.Box(-np.inf, np.inf, shape=v.shape[1:], dtype=np.float32)
        for k, v in sessions.obs.items()
    }
    action = spaces.MultiDiscrete(np.full(sessions.slate_size, sessions.num_candidates))
    return spaces.Dict(obs), action


class _ScenarioEnvMixin:
    """Scenario, seeding and episode bookkeeping shared by the SlateRec envs."""

    def _setup(
        self,
        num_users: int,
        scenario: str | Path | None,
        scenario_data: dict[str, Any] | None,
        overrides: Overrides,
        reward: str,
        max_steps: int | None,
    ) -> None:
        self.reward_kind = RewardKind.parse(reward)
        self.scenario = build_scenario(
            scenario, scenario_data, overrides, forced={"users.num_users": num_users}
        )
        # homogenization compares pairs of users: undefined (NaN) for one user
        if num_users == 1 and "homogenization" in self.scenario.metrics:
            names = [m for m in self.scenario.metrics if m != "homogenization"]
            self.scenario = self.scenario.model_copy(update={"metrics": names})
        self.max_steps = self.scenario.steps if max_steps is None else int(max_steps)
        if self.max_steps <= 0:
            raise ValueError(f"Expects `max_steps` to be a positive int, actual value: {max_steps}")
        self._seeds = EpisodeSeeds()
        self.sessions = WorldSessions(self.scenario, 0)

    def _next_world(self, seed: int | None, rng: np.random.Generator) -> None:
        """Build the next episode's world: ``seed`` reseeds, ``None`` continues the stream."""
        self.sessions = WorldSessions(self.scenario, self._seeds.next(seed, rng))
        self._steps = 0

    def _rewards(self, clicked: np.ndarray, engagement: np.ndarray) -> np.ndarray:
        """``(N,)`` float32 rewards under the reward knob."""
        if self.reward_kind is RewardKind.CLICK:
            return clicked.astype(np.float32)
        return engagement.astype(np.float32)


class SlateRecEnv(_ScenarioEnvMixin, gym.Env):
    """One user's session in a simlab world (see the module docstring for the spaces).

    Args:
        scenario: a scenario YAML path (default ``scenarios/quickstart.yaml``).
        scenario_data: an inline scenario mapping instead of a file.
        overrides: scenario overrides, ``{"platform.slate_size": 3}`` or ``"path=value"``
            strings, applied after the small gym defaults (``GYM_DEFAULTS``).
        reward: ``"engagement"`` (default) or ``"click"``.
        max_steps: step budget of an episode (default the scenario's ``steps``).

    ``reset(seed=s)`` builds the world of seed ``s`` (the same world ``simlab run`` builds
    for seed ``s``); ``reset()`` builds the next world of the current seed stream.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        scenario: str | Path | None = None,
        scenario_data: dict[str, Any] | None = None,
        overrides: Overrides = None,
        reward: str = "engagement",
        max_steps: int | None = None,
    ) -> None:
        self._setup(1, scenario, scenario_data, overrides, reward, max_steps)
        self.observation_space, self.action_space = session_spaces(self.sessions)
        self._steps = 0

    def _obs(self) -> dict[str, np.ndarray]:
        return {k: v[0] for k, v in self.sessions.obs.items()}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start a session in a fresh world (see the class docstring for seeding)."""
        super().reset(seed=seed)
        self._next_world(seed, self.np_random)
        return self._obs(), {"served": bool(self.sessions.served[0])}

    def step(
        self, action: np.ndarray
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Serve the slate ``action`` (candidate indices) to the user for one step."""
        served = bool(self.sessions.served[0])
        clicked, engagement, row = self.sessions.step(np.asarray(action)[None, :])
        self._steps += 1
        reward = float(self._rewards(clicked, engagement)[0])
        terminated = bool(self.sessions.churned[0])
        truncated = self._steps >= self.max_steps and not terminated
        info = {**info_row(row), "clicked": bool(clicked[0]), "served": served}
        return self._obs(), reward, terminated, truncated, info


class SlateRecVectorEnv(_ScenarioEnvMixin, gym.vector.VectorEnv):
    """``num_envs`` SlateRec sessions stepped as one numpy batch: the users of one world.

    Sub-env ``i`` is user ``i`` of a world with ``num_envs`` users; every draw about that
    user is keyed by ``(seed, i)`` (:mod:`simlab.rng`), so it does not depend on the
    other sessions' random draws. The sessions share the world's catalog, so they are
    independent users of one platform, not independent worlds.

    Episodes are synchronised: when any session ends (its user churns), the other sessions
    are truncated at the same step, and at the next step (gymnasium's next-step autoreset,
    actions ignored, reward 0) every sub-env restarts in the next world of the seed stream.

    Args:
        num_envs: number of sessions ``N``.
        scenario: a scenario YAML path (default ``scenarios/quickstart.yaml``).
        scenario_data: an inline scenario mapping instead of a file.
        overrides: scenario overrides (as for :class:`SlateRecEnv`).
        reward: ``"engagement"`` (default) or ``"click"``.
        max_steps: step budget of an episode (default the scenario's ``steps``).
    """

    metadata: dict[str, Any] = {"render_modes": [], "autoreset_mode": _NEXT_STEP}

    def __init__(
        self,
        num_envs: int = 1,
        scenario: str | Path | None = None,
        scenario_data: dict[str, Any] | None = None,
        overrides: Overrides = None,
        reward: str = "engagement",
        max_steps: int | None = None,
    ) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs <= 0:
            raise ValueError(f"Expects `num_envs` to be a positive int, actual value: {num_envs}")
        self.num_envs = num_envs
        self._setup(num_envs, scenario, scenario_data, overrides, reward, max_steps)
        self.single_observation_space, self.single_action_space = session_spaces(self.sessions)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._np_random, _ = seeding.np_random()
        self._steps = 0
        self._autoreset = False

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start every session in a fresh world; ``seed`` is one int for the whole batch."""
        if seed is not None and not isinstance(seed, (int, np.integer)):
            raise TypeError(
                "Expects `seed` to be one int for all sessions (they share a world), "
                f"actual type: {type(seed).__name__}"
            )
        if seed is not None:
            self._np_random, _ = seeding.np_random(int(seed))
        self._next_world(seed, self._np_random)
        self._autoreset = False
        return dict(self.sessions.obs), self._info(None, None)

    def step(
        self, actions: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Serve ``(N, K)`` slates of candidate indices, one per session."""
        n = self.num_envs
        if self._autoreset:
            obs, info = self.reset()
            zeros = np.zeros(n, bool)
            return obs, np.zeros(n, np.float32), zeros, zeros.copy(), info
        served = self.sessions.served.copy()
        clicked, engagement, row = self.sessions.step(actions)
        self._steps += 1
        terminated = self.sessions.churned.copy()
        ended = terminated.any() or self._steps >= self.max_steps
        truncated = ~terminated if ended else np.zeros(n, bool)
        self._autoreset = bool(ended)
        info = self._info(row, (clicked, served))
        return (
            dict(self.sessions.obs),
            self._rewards(clicked, engagement),
            terminated,
            truncated,
            info,
        )

    def _info(
        self, row: dict[str, float] | None, arrays: tuple[np.ndarray, np.ndarray] | None
    ) -> dict[str, Any]:
        """Vector ``info``: each metric broadcast to ``(N,)`` plus ``clicked``/``served``."""
        n = self.num_envs
        info: dict[str, Any] = {}
        if row is not None:
            for k, v in info_row(row).items():
                info[k] = np.full(n, v)
                info["_" + k] = np.ones(n, bool)
        if arrays is not None:
            info["clicked"], info["served"] = arrays
            info["_clicked"] = info["_served"] = np.ones(n, bool)
        return info
