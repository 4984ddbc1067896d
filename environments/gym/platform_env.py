"""``simlab/Platform-v0``: the policy is the platform and serves a whole population each step.

The world is built from a scenario (population ``U = users.num_users``, default 32 in the
gym defaults; see :mod:`simlab.environments.gym.sessions`), and every step the policy
serves every visiting user, so it can target long-term ecosystem outcomes. Spaces
(``C`` candidates, ``K`` slate size, ``H`` history length, ``f``/``d`` feature dims):

* observation ``Dict(user=Box(U, f), history=Box(U, H, d), candidates=Box(U, C, d),
  active=Box(0, 1, (U,)))``, float32: per-user features as in ``simlab/SlateRec-v0``, and
  ``active`` = 1 for the users who visit this step;
* action: a flat ``MultiDiscrete([C] * (U * K))``, user ``u``'s slate in entries
  ``u*K .. u*K + K - 1`` (flat, so SB3 and RLlib take it as is); a ``(U, K)`` array is
  accepted too. Rows of inactive users are ignored; repeats within a slate are replaced by
  the lowest-index unused candidate;
* reward: the mean over visiting users of the click or engagement (``reward`` knob),
  minus ``homogenization_weight * echo/homogenization`` minus ``gini_weight *
  exposure/gini`` (the step's metric values, NaN counted as 0);
* ``terminated`` when every user has churned; ``truncated`` after ``max_steps`` steps;
* ``info``: the same keys at reset and step (:mod:`simlab.environments.gym.info`), per-user
  ones as ``(U, ...)`` arrays: executed slates, clicked positions, engagement per slot, and
  the step's metrics.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from .info import RENDER_MODES, render_sessions, session_infos
from .scenarios import Overrides, build_scenario, finite_float, step_budget
from .sessions import EpisodeSeeds, RewardKind, StepResult, WorldSessions

__all__ = ["PlatformEnv"]

PLATFORM_DEFAULTS: dict[str, Any] = {"users.num_users": 32}
"""Population of ``simlab/Platform-v0`` on the default scenario (before the caller's overrides)."""


class PlatformEnv(gym.Env):
    """The whole platform for a population (see the module docstring for the spaces).

    Args:
        scenario: a scenario YAML path or bundled name (default: the bundled ``quickstart``
            with the gym defaults and 32 users).
        scenario_data: an inline scenario mapping instead of a file.
        overrides: scenario overrides, e.g. ``{"users.num_users": 100}``.
        reward: ``"engagement"`` (default) or ``"click"`` (then the mean is the CTR).
        homogenization_weight: weight of the ``echo/homogenization`` penalty (default 0).
        gini_weight: weight of the ``exposure/gini`` penalty (default 0).
        max_steps: step budget of an episode (default the scenario's ``steps``).
        render_mode: ``"ansi"`` (``render()`` returns a text view of the first users' last
            slates and choices), ``"human"`` (prints it) or None.

    Seeding is as for ``simlab/SlateRec-v0``: ``reset(seed=s)`` builds the world of seed
    ``s``, ``reset()`` the next world of the current stream.
    """

    metadata: dict[str, Any] = {"render_modes": RENDER_MODES, "render_fps": 4}

    def __init__(
        self,
        scenario: str | Path | None = None,
        scenario_data: dict[str, Any] | None = None,
        overrides: Overrides = None,
        reward: str = "engagement",
        homogenization_weight: float = 0.0,
        gini_weight: float = 0.0,
        max_steps: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        if render_mode is not None and render_mode not in RENDER_MODES:
            raise ValueError(
                f"Expects `render_mode` in {RENDER_MODES} or None, actual: {render_mode!r}"
            )
        self.render_mode = render_mode
        self.reward_kind = RewardKind.parse(reward)
        self.weights = {
            "echo/homogenization": finite_float("homogenization_weight", homogenization_weight),
            "exposure/gini": finite_float("gini_weight", gini_weight),
        }
        self.scenario = build_scenario(
            scenario, scenario_data, overrides, defaults=PLATFORM_DEFAULTS
        )
        self.max_steps = step_budget(max_steps, self.scenario)
        self.sessions = WorldSessions(self.scenario, 0)
        missing = [
            k for k, w in self.weights.items() if w and k not in self.sessions.metric_columns
        ]
        if missing:
            raise ValueError(f"A penalty weight needs the metric columns {missing} in the scenario")
        s = self.sessions
        box = {
            k: spaces.Box(-np.inf, np.inf, shape=v.shape, dtype=np.float32)
            for k, v in s.obs.items()
        }
        box["active"] = spaces.Box(0.0, 1.0, shape=(s.num_users,), dtype=np.float32)
        self.observation_space = spaces.Dict(box)
        self.action_space = spaces.MultiDiscrete(
            np.full(s.num_users * s.slate_size, s.num_candidates)
        )
        self._seeds = EpisodeSeeds()
        self._steps = 0
        self._last: StepResult | None = None

    def _obs(self) -> dict[str, np.ndarray]:
        s = self.sessions
        return {**s.obs, "active": s.served.astype(np.float32)}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start an episode in a fresh world (``seed`` reseeds, ``None`` continues)."""
        super().reset(seed=seed)
        self.sessions = WorldSessions(self.scenario, self._seeds.next(seed, self.np_random))
        self._steps = 0
        self._last = None
        return self._obs(), session_infos(self.sessions, None)

    def step(
        self, action: np.ndarray
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Serve one slate per user (``U * K`` or ``(U, K)`` candidate indices) for one step."""
        s = self.sessions
        act = np.asarray(action)
        u, k = s.num_users, s.slate_size
        if act.shape == (u * k,):
            act = act.reshape(u, k)
        elif act.shape != (u, k):  # named in both forms: the action space's is the flat one
            raise ValueError(
                f"Expects an action of shape ({u * k},) (the flat action space: {u} users x "
                f"{k} slots) or ({u}, {k}), actual shape: {act.shape}"
            )
        result = s.step(act)
        self._last = result
        self._steps += 1
        served = result.served
        click = self.reward_kind is RewardKind.CLICK
        value = result.clicked if click else result.total_engagement
        reward = float(value[served].mean()) if served.any() else 0.0
        row = result.metrics
        for col, w in self.weights.items():
            if w and not math.isnan(row[col]):
                reward -= w * row[col]
        terminated = bool(s.churned.all())
        truncated = self._steps >= self.max_steps and not terminated
        return self._obs(), reward, terminated, truncated, session_infos(s, result)

    def render(self) -> str | None:
        """The text view of the first four users' last slates and choices (``render_mode``)."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='ansi'")
            return None
        rows = list(range(min(4, self.sessions.num_users)))
        text = render_sessions(self.sessions, self._last, rows, "simlab/Platform-v0")
        if self.render_mode == "human":
            print(text)
            return None
        return text
