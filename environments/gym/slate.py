"""``simlab/SlateRec-v0``: one user's session, and its natively batched vector env.

The world is built from a scenario (:mod:`simlab.environments.gym.scenarios`) with a
population of one user (:class:`SlateRecEnv`) or ``num_envs * users_per_session`` users
(:class:`SlateRecVectorEnv`); each session is served by the policy (see
:mod:`simlab.environments.gym.sessions`). Spaces (``H`` history length, ``C`` candidates,
``K`` slate size, ``f``/``d`` user/item feature dimensions, from the scenario):

* observation ``Dict(user=Box(f,), history=Box(H, d), candidates=Box(C, d))``, float32,
  unbounded: the user's observable features, the features of their ``H`` most recent clicks
  (most recent first, zeros pad) and of the ``C`` candidate items;
* action ``MultiDiscrete([C] * K)``: candidate indices, slot 0 on top. A repeated index is
  replaced by the lowest-index candidate not already in the slate (slots left to right);
* reward: 1.0 for a click (``reward="click"``) or the click's engagement
  (``reward="engagement"``, the default: in ``[0, 1]`` for the logit and Chaney users, the
  user model's own scale otherwise, e.g. RecSim's watch time), 0 without a click or a visit;
* ``terminated`` when the user churns; ``truncated`` after ``max_steps`` steps (default the
  scenario's ``steps``);
* ``info``: the same keys at reset and step (:mod:`simlab.environments.gym.info`): the
  executed slate, the clicked position, engagement per slot and the step's metrics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector.utils import batch_space

from .info import RENDER_MODES, render_sessions, session_infos, single_info, stack_vector_info
from .scenarios import Overrides, build_scenario, positive_int, step_budget
from .sessions import EpisodeSeeds, RewardKind, StepResult, WorldSessions, candidate_indices

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


def _check_render_mode(render_mode: str | None) -> str | None:
    if render_mode is not None and render_mode not in RENDER_MODES:
        raise ValueError(
            f"Expects `render_mode` in {RENDER_MODES} or None, actual: {render_mode!r}"
        )
    return render_mode


class _ScenarioEnvMixin:
    """Scenario, seeding, rewards and rendering shared by the SlateRec envs."""

    def _setup(
        self,
        num_users: int,
        scenario: str | Path | None,
        scenario_data: dict[str, Any] | None,
        overrides: Overrides,
        reward: str,
        max_steps: int | None,
        users_per_session: int = 1,
    ) -> None:
        self.reward_kind = RewardKind.parse(reward)
        self.users_per_session = users_per_session
        self.scenario = build_scenario(
            scenario,
            scenario_data,
            overrides,
            forced={"users.num_users": num_users * users_per_session},
        )
        # homogenization compares pairs of users: undefined (NaN) for one user
        if num_users * users_per_session == 1 and "homogenization" in self.scenario.metrics:
            names = [m for m in self.scenario.metrics if m != "homogenization"]
            self.scenario = self.scenario.model_copy(update={"metrics": names})
        self.max_steps = step_budget(max_steps, self.scenario)
        self._seeds = EpisodeSeeds()
        self.sessions = WorldSessions(self.scenario, 0, users_per_session)
        self._last: StepResult | None = None

    def _next_world(self, seed: int | None, rng: np.random.Generator) -> None:
        """Build the next episode's world: ``seed`` reseeds, ``None`` continues the stream."""
        world_seed = self._seeds.next(seed, rng)
        self.sessions = WorldSessions(self.scenario, world_seed, self.users_per_session)
        self._last = None

    def _rewards(self, result: StepResult) -> np.ndarray:
        """``(N,)`` float32 rewards under the reward knob."""
        if self.reward_kind is RewardKind.CLICK:
            return result.clicked.astype(np.float32)
        return result.total_engagement.astype(np.float32)

    def _render_text(self, rows: list[int], title: str) -> str | None:
        text = render_sessions(self.sessions, self._last, rows, title)
        if self.render_mode == "human":
            print(text)
            return None
        return text


class SlateRecEnv(_ScenarioEnvMixin, gym.Env):
    """One user's session in a simlab world (see the module docstring for the spaces).

    Args:
        scenario: a scenario YAML path or bundled name (default: the bundled ``quickstart``
            with the small gym defaults, ``GYM_DEFAULTS``).
        scenario_data: an inline scenario mapping instead of a file.
        overrides: scenario overrides, ``{"platform.slate_size": 3}`` or ``"path=value"``
            strings; keys a model does not take are dropped only when they are defaults.
        reward: ``"engagement"`` (default) or ``"click"``.
        max_steps: step budget of an episode (default the scenario's ``steps``).
        render_mode: ``"ansi"`` (``render()`` returns a text view of the last slate and
            choice), ``"human"`` (prints it) or None.

    ``reset(seed=s)`` builds the world of seed ``s`` (the same world ``simlab run`` builds
    for seed ``s``); ``reset()`` builds the next world of the current seed stream.
    """

    metadata: dict[str, Any] = {"render_modes": RENDER_MODES, "render_fps": 4}

    def __init__(
        self,
        scenario: str | Path | None = None,
        scenario_data: dict[str, Any] | None = None,
        overrides: Overrides = None,
        reward: str = "engagement",
        max_steps: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        self.render_mode = _check_render_mode(render_mode)
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
        self._steps = 0
        return self._obs(), single_info(session_infos(self.sessions, None))

    def step(
        self, action: np.ndarray
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Serve the slate ``action`` (candidate indices) to the user for one step."""
        s = self.sessions
        result = s.step(candidate_indices(action, (s.slate_size,), s.num_candidates)[None])
        self._last = result
        self._steps += 1
        reward = float(self._rewards(result)[0])
        terminated = bool(self.sessions.churned[0])
        truncated = self._steps >= self.max_steps and not terminated
        info = single_info(session_infos(self.sessions, result))
        return self._obs(), reward, terminated, truncated, info

    def render(self) -> str | None:
        """The text view of the last served slate and the user's choice (``render_mode``)."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='ansi'")
            return None
        return self._render_text([0], "simlab/SlateRec-v0")


class SlateRecVectorEnv(_ScenarioEnvMixin, gym.vector.VectorEnv):
    """``num_envs`` SlateRec sessions stepped as one numpy batch: users of one world.

    Session ``i`` is served by user ``i`` of a world of ``num_envs * users_per_session``
    users; every draw about a user is keyed by ``(seed, user id)`` (:mod:`simlab.rng`), so it
    does not depend on the other sessions. The sessions share the world's catalog: they are
    independent users of one platform, not independent worlds.

    Autoreset is per session (gymnasium's next-step mode): when session ``i``'s user churns
    (``terminated``) or reaches ``max_steps`` (``truncated``), only that session ends; at the
    next step its action is ignored, its reward is 0 and it restarts with a fresh user of
    the same world (user ``i + num_envs``, then ``i + 2 num_envs``, ...). When a session has
    used all its ``users_per_session`` users, every session is truncated at that step (one
    restarting at that step too: its episode is that step's observation alone) and the next
    step starts all of them in the next world of the seed stream.

    Args:
        num_envs: number of sessions ``N``.
        scenario: a scenario YAML path or bundled name (as for :class:`SlateRecEnv`).
        scenario_data: an inline scenario mapping instead of a file.
        overrides: scenario overrides (as for :class:`SlateRecEnv`).
        reward: ``"engagement"`` (default) or ``"click"``.
        max_steps: step budget of one session's episode (default the scenario's ``steps``).
        users_per_session: users each session goes through in one world (default 4).
        render_mode: ``"ansi"`` or ``"human"`` (the first four sessions), or None.
    """

    metadata: dict[str, Any] = {
        "render_modes": RENDER_MODES,
        "render_fps": 4,
        "autoreset_mode": _NEXT_STEP,
    }

    def __init__(
        self,
        num_envs: int = 1,
        scenario: str | Path | None = None,
        scenario_data: dict[str, Any] | None = None,
        overrides: Overrides = None,
        reward: str = "engagement",
        max_steps: int | None = None,
        users_per_session: int = 4,
        render_mode: str | None = None,
    ) -> None:
        self.num_envs = positive_int("num_envs", num_envs)
        users_per_session = positive_int("users_per_session", users_per_session)
        self.render_mode = _check_render_mode(render_mode)
        self._setup(
            self.num_envs, scenario, scenario_data, overrides, reward, max_steps, users_per_session
        )
        self.single_observation_space, self.single_action_space = session_spaces(self.sessions)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._np_random, _ = seeding.np_random()
        self._steps = np.zeros(self.num_envs, np.int64)
        self._autoreset = np.zeros(self.num_envs, bool)
        self._rollover = False

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
        self._steps[:] = 0
        self._autoreset[:] = False
        self._rollover = False
        return dict(self.sessions.obs), stack_vector_info(session_infos(self.sessions, None))

    def step(
        self, actions: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Serve ``(N, K)`` slates of candidate indices, one per session."""
        n = self.num_envs
        if self._rollover:  # a session ran out of users: every session restarts
            obs, info = self.reset()
            zeros = np.zeros(n, bool)
            return obs, np.zeros(n, np.float32), zeros, zeros.copy(), info
        restarting = self._autoreset.copy()
        result = self.sessions.step(np.asarray(actions), skip=restarting)
        self._last = result
        rewards = self._rewards(result)
        self._steps += 1
        if restarting.any():
            self.sessions.next_users(restarting)
            self._steps[restarting] = 0
        terminated = self.sessions.churned & ~restarting
        truncated = (self._steps >= self.max_steps) & ~terminated & ~restarting
        ended = terminated | truncated
        if ended.any() and self.sessions.exhausted(ended):
            # the world is spent: every session ends, one restarting now too (its episode
            # is this step's observation alone), so none runs on into the next world
            truncated = ~terminated
            self._rollover = True
        self._autoreset = terminated | truncated
        info = stack_vector_info(session_infos(self.sessions, result), restarting)
        return dict(self.sessions.obs), rewards, terminated, truncated, info

    def render(self) -> str | None:
        """The text view of the first four sessions' last slates and choices."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='ansi'")
            return None
        rows = list(range(min(4, self.num_envs)))
        return self._render_text(rows, f"simlab/SlateRec-v0 vector x{self.num_envs}")
