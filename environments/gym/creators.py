"""Strategic content creators: a PettingZoo ``ParallelEnv`` over a simlab world.

The agents are ``num_creators`` human creators of the scenario's content ecosystem (creator
ids ``0 .. num_creators - 1``, named ``"creator_0"``, ``"creator_1"``, ...). Each step runs
one simlab :class:`~simlab.world.World` step:

1. every creator picks a topic (``Discrete(num_topics)``) and, through
   :meth:`CreatorEcosystem.commission <simlab.environments.content.CreatorEcosystem.commission>`,
   moves there and publishes ``items_per_creator`` items whose latent embeddings scatter
   around that topic's centre plus the creator's own offset; the rest of the ecosystem
   publishes as usual (its random draws of creators may also pick an agent, whose
   background item then follows the agent's current topic too);
2. a FIXED platform recommender (one of the scenario's agents, by default popularity)
   serves the active users, who respond through the scenario's user model;
3. each creator is rewarded by the ``exposure`` (slate impressions) or the ``clicks`` that
   its live items got this step (``reward`` knob).

Topics are discrete rather than a ``Box`` direction in the latent space on purpose: topics
are the unit users' interests and fatigue are built on, the game stays small enough for
tabular or bandit baselines, and "which niche do I enter" is the strategic question.
Nothing about users, choice or metrics is
reimplemented here: the env only reads the world's feedback and the latent item table.

Observation of each creator, a ``Box(0, 1, (3 * num_topics,), float32)``: the platform-wide
share of last step's impressions per topic, the share of last step's clicks per topic, and a
one-hot of the creator's current topic. ``info[agent]`` carries ``exposure``, ``clicks``,
``topic`` and ``metrics`` (the simlab metric row of the step); the reset infos have the same
keys, with nothing shown yet (0, 0, the starting topic, every metric ``None``).

Seeding: ``reset(seed=s)`` builds the world with trial seed ``s`` (the users, creators and
initial catalog ``simlab run`` builds for seed ``s``); ``reset()`` without a seed
moves on to the next episode of the current seed, whose world seed is drawn through
``simlab.rng`` from ``(s, episode)`` (``sessions.episode_seed``, as in the Gymnasium envs);
a first ``reset()`` without a seed plays episode 0 of the scenario's first seed.
Episodes end by truncation after ``max_steps`` steps, or by termination when every user
has churned.

Example::

    >>> from simlab.environments.gym.creators import CreatorsParallelEnv
    >>> env = CreatorsParallelEnv(num_creators=2, max_steps=3)
    >>> obs, infos = env.reset(seed=0)
    >>> sorted(obs)
    ['creator_0', 'creator_1']
    >>> obs, rewards, terms, truncs, infos = env.step({a: 0 for a in env.agents})
    >>> sorted(rewards) == env.possible_agents
    True
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
from gymnasium import spaces

from simlab.environments.gym.scenarios import is_int, positive_int, step_budget
from simlab.environments.gym.sessions import candidate_indices, episode_seed
from simlab.errors import DependencyNotInstalled, ScenarioError, did_you_mean
from simlab.rng import check_seed
from simlab.scenario import Scenario, load_scenario, parse_scenario
from simlab.world import World

try:
    from pettingzoo import ParallelEnv
except ImportError as e:  # pragma: no cover - pettingzoo is in the `rl` extra
    raise DependencyNotInstalled(
        "the creators' environment needs pettingzoo: pip install 'pettingzoo>=1.24'"
    ) from e

__all__ = ["CreatorsParallelEnv", "DEFAULT_CREATORS_SCENARIO"]

RewardKind = Literal["exposure", "clicks"]

# A small world that steps in a few milliseconds. `max_candidates` gives every user a random
# window of the catalog, so the popularity recommender ranks within it and new items can
# be seen; with all items as shared candidates it would show everyone the same top-K.
DEFAULT_CREATORS_SCENARIO: dict[str, Any] = {
    "name": "creators",
    "steps": 50,
    "world": {"dim": 16, "num_topics": 8},
    "users": {"model": "logit", "num_users": 500},
    "content": {
        "model": "creators",
        "num_human_creators": 30,
        "num_aigc_creators": 0,
        "items_per_step": 10,
        "initial_items": 200,
        "lifetime": 20,
    },
    "platform": {"slate_size": 5, "max_candidates": 40, "retrain_every": 2, "log_window": 4},
    "agents": [{"model": "popularity"}],
    "output": {"flush_seconds": 0.0},
}


def _build_scenario(
    scenario: str | Path | Scenario | Mapping[str, Any] | None,
    overrides: Iterable[str | tuple[str, Any]],
) -> Scenario:
    """A validated scenario from a path, a mapping, a ``Scenario`` or the default."""
    overrides = list(overrides)
    if scenario is None:
        return parse_scenario(copy.deepcopy(DEFAULT_CREATORS_SCENARIO), overrides)
    if isinstance(scenario, Scenario):
        if not overrides:
            return scenario
        return parse_scenario(scenario.resolved_dict(), overrides)
    if isinstance(scenario, Mapping):
        return parse_scenario(copy.deepcopy(dict(scenario)), overrides)
    if isinstance(scenario, (str, Path)):
        return load_scenario(scenario, overrides)
    raise TypeError(
        "Expects `scenario` to be a path, a mapping, a Scenario or None, actual type: "
        f"{type(scenario).__name__}"
    )


def info_row(row: Mapping[str, float]) -> dict[str, float | None]:
    """A metric row for ``info``: undefined (NaN) values become ``None`` (NaN != NaN)."""
    return {k: None if isinstance(v, float) and v != v else v for k, v in row.items()}


def _agent_index(scenario: Scenario, platform_agent: int | str) -> int:
    """The index in ``scenario.agents`` of the fixed platform recommender."""
    labels = scenario.agent_labels()
    if isinstance(platform_agent, str):
        if platform_agent not in labels:
            raise ScenarioError(
                f"platform_agent: '{platform_agent}' is not one of the scenario's agents "
                f"{labels}.{did_you_mean(platform_agent, labels)}"
            )
        return labels.index(platform_agent)
    if not is_int(platform_agent) or not 0 <= platform_agent < len(labels):
        raise ValueError(
            f"Expects `platform_agent` to be an agent label or an index in [0, {len(labels)}), "
            f"actual value: {platform_agent!r}"
        )
    return int(platform_agent)


class CreatorsParallelEnv(ParallelEnv):
    """Content creators choosing topics against a fixed recommender (see module docstring).

    Args:
        scenario: a scenario file, a scenario mapping, a ``Scenario``, or ``None`` for
            :data:`DEFAULT_CREATORS_SCENARIO`. Its content model must be ``creators``.
        overrides: ``"path=value"`` strings or ``(path, value)`` pairs applied to the scenario.
        num_creators: how many of the human creators are agents.
        items_per_creator: items each agent publishes per step.
        reward: ``"exposure"`` (impressions of the creator's items) or ``"clicks"``.
        platform_agent: label or index of the scenario agent that serves users.
        max_steps: episode length; default the scenario's ``steps``.

    Raises:
        ScenarioError: on an invalid scenario or an unknown ``platform_agent`` label.
        ValueError: on out-of-range knobs.
    """

    metadata = {"name": "simlab_creators_v0", "render_modes": [], "is_parallelizable": True}

    # required in every subclass (PettingZoo ParallelEnv)
    possible_agents: list[str]
    agents: list[str]
    observation_spaces: dict[str, spaces.Box]
    action_spaces: dict[str, spaces.Discrete]
    # optional
    render_mode: str | None = None

    def __init__(
        self,
        scenario: str | Path | Scenario | Mapping[str, Any] | None = None,
        overrides: Iterable[str | tuple[str, Any]] = (),
        num_creators: int = 4,
        items_per_creator: int = 1,
        reward: RewardKind = "exposure",
        platform_agent: int | str = 0,
        max_steps: int | None = None,
    ) -> None:
        self.scenario = _build_scenario(scenario, overrides)
        if self.scenario.content.model != "creators":
            raise ScenarioError(
                f"content.model: the creators' env needs the 'creators' content model, "
                f"got '{self.scenario.content.model}'"
            )
        num_human = self.scenario.content.params.num_human_creators
        if not is_int(num_creators) or not 1 <= num_creators <= num_human:
            raise ValueError(
                f"Expects `num_creators` in [1, {num_human}] (content.num_human_creators), "
                f"actual value: {num_creators!r}"
            )
        self.num_creators = int(num_creators)
        self.items_per_creator = positive_int("items_per_creator", items_per_creator)
        if not isinstance(reward, str) or reward not in ("exposure", "clicks"):
            raise ValueError(
                f"Expects `reward` in ['exposure', 'clicks'], actual value: {reward!r}"
            )
        self.agent_index = _agent_index(self.scenario, platform_agent)
        self.reward_kind = reward
        self.max_steps = step_budget(max_steps, self.scenario)
        self.num_topics = self.scenario.world.num_topics
        self.possible_agents = [f"creator_{i}" for i in range(self.num_creators)]
        self.agents = []
        obs_space = spaces.Box(0.0, 1.0, (3 * self.num_topics,), np.float32)
        self.observation_spaces = {a: copy.deepcopy(obs_space) for a in self.possible_agents}
        self.action_spaces = {a: spaces.Discrete(self.num_topics) for a in self.possible_agents}
        self.world: World | None = None
        self._seed = self.scenario.seeds[0]
        self._episode = -1

    # ------------------------------------------------------------------ spaces
    def observation_space(self, agent: str) -> spaces.Box:
        """The (same) observation space object of ``agent``."""
        return self.observation_spaces[self._known(agent)]

    def action_space(self, agent: str) -> spaces.Discrete:
        """The (same) action space object of ``agent``: a topic id."""
        return self.action_spaces[self._known(agent)]

    def _known(self, agent: object) -> str:
        """``agent`` if it is one of the possible agents, else a KeyError naming them."""
        if not isinstance(agent, str) or agent not in self.action_spaces:
            names = self.possible_agents
            listed = ", ".join(names[:3]) + (f", ..., {names[-1]}" if len(names) > 3 else "")
            raise KeyError(f"unknown agent {agent!r}; the agents are {listed}")
        return agent

    # ------------------------------------------------------------------ episode
    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        """Build a fresh world and return the first observations.

        Args:
            seed: the trial seed; ``None`` moves on to the next episode of the current seed.
            options: unused.

        Returns:
            ``(observations, infos)`` keyed by agent.
        """
        if seed is not None:
            self._seed = check_seed(seed)
            self._episode = 0
        else:
            self._episode += 1
        self.world = World(self.scenario, self.agent_index, episode_seed(self._seed, self._episode))
        self.agents = list(self.possible_agents)
        self._t = 0
        zeros = np.zeros(2 * self.num_topics, np.float32)
        obs = {a: self._observe(zeros, i) for i, a in enumerate(self.agents)}
        topics = self.world.content.creator_topic
        unmeasured = dict.fromkeys(self.world.metric_columns())  # None: nothing measured yet
        infos = {
            a: {"exposure": 0, "clicks": 0, "topic": int(topics[i]), "metrics": dict(unmeasured)}
            for i, a in enumerate(self.agents)
        }  # the step infos' keys, as the slate envs' reset infos
        return obs, infos

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        """Publish the creators' choices, run one world step and reward exposure or clicks.

        Args:
            actions: topic id per live agent; a missing agent (or ``None``) keeps its current
                topic. A key that is not a live agent (a typo) raises ``ValueError``.

        Returns:
            ``(observations, rewards, terminations, truncations, infos)`` keyed by agent.
        """
        if self.world is None or not self.agents:
            raise RuntimeError("CreatorsParallelEnv.step called before reset or after the end")
        unknown = (
            sorted(set(actions) - set(self.agents), key=str)
            if isinstance(actions, Mapping)
            else None
        )
        if unknown is None or unknown:
            what = f"unknown agents {unknown}" if unknown else f"a {type(actions).__name__}"
            raise ValueError(
                f"Expects actions as a mapping of live agents ({', '.join(self.agents)}) to "
                f"topics, actual: {what}"
            )
        world, n = self.world, self.num_creators
        content = world.content
        topics = content.creator_topic[:n].copy()
        for i, agent in enumerate(self.possible_agents):
            if agent in actions and actions[agent] is not None:
                topics[i] = self._check_action(agent, actions[agent])
        cids = np.repeat(np.arange(n), self.items_per_creator)
        content.commission(cids, np.repeat(topics, self.items_per_creator))
        row = world.step(world.t)
        exposure, clicks, shares = self._credit(world)
        self._t += 1
        earned = exposure if self.reward_kind == "exposure" else clicks
        churned = getattr(world.users, "churned", None)
        done = bool(churned is not None and churned.all())
        over = self._t >= self.max_steps
        agents = self.agents
        obs = {a: self._observe(shares, i) for i, a in enumerate(agents)}
        rewards = {a: float(earned[i]) for i, a in enumerate(agents)}
        terms = dict.fromkeys(agents, done)
        truncs = dict.fromkeys(agents, over and not done)
        infos = {
            a: {
                "exposure": int(exposure[i]),
                "clicks": int(clicks[i]),
                "topic": int(topics[i]),
                "metrics": info_row(row),
            }
            for i, a in enumerate(agents)
        }
        if done or over:
            self.agents = []
        return obs, rewards, terms, truncs, infos

    # ------------------------------------------------------------------ helpers
    def _check_action(self, agent: str, action: Any) -> int:
        """The topic id of ``action``; raise ``ValueError`` if it is not a valid topic.

        An integer (a whole-number float, or an array of one such value, is taken as it);
        fractions, NaN, strings, booleans and arrays of other sizes are refused, as in the
        slate envs (``step`` reads a missing or ``None`` action as keeping the topic).
        """
        try:
            act = np.asarray(action)
            act = act.reshape(()) if act.size == 1 else act
            return int(candidate_indices(act, (), self.num_topics))
        except (ValueError, TypeError):
            raise ValueError(
                f"Expects the action of '{agent}' to be a topic in [0, {self.num_topics}) "
                f"(an integer), actual value: {action!r}"
            ) from None

    def _credit(self, world: World) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-agent ``(num_creators,)`` exposure and clicks, and ``(2 T,)`` topic shares."""
        fb, items = world.last_feedback, world.content.latent()
        n, num_topics = self.num_creators, self.num_topics
        shown = items.rows(fb.slates.ravel())
        clicked = items.rows(fb.clicked_items[fb.clicked])
        num_creators = world.content.creator_topic.shape[0]
        exposure = np.bincount(items.creator[shown], minlength=num_creators)[:n]
        clicks = np.bincount(items.creator[clicked], minlength=num_creators)[:n]
        shares = np.zeros(2 * num_topics, np.float32)
        for j, rows in enumerate((shown, clicked)):
            if rows.size:
                counts = np.bincount(items.topic[rows], minlength=num_topics)
                shares[j * num_topics : (j + 1) * num_topics] = counts / rows.size
        return exposure, clicks, shares

    def _observe(self, shares: np.ndarray, i: int) -> np.ndarray:
        """Observation of creator ``i``: topic shares and its current topic, one-hot."""
        own = np.zeros(self.num_topics, np.float32)
        own[int(self.world.content.creator_topic[i])] = 1.0
        return np.concatenate([shares, own]).astype(np.float32)

    def topic_appeal(self) -> np.ndarray:
        """``(num_topics,)`` mean match of users' current interests with each topic centre.

        PRIVILEGED (reads latent truth): for analysis and tests, never for the agents.
        """
        if self.world is None:
            raise RuntimeError("CreatorsParallelEnv.topic_appeal called before reset")
        from simlab.environments.common import topic_centres

        ctx = self.world.context
        centres = topic_centres(ctx.seed, ctx.num_topics, ctx.dim, ctx.topic_spread)
        current, _ = self.world.users.interests()
        return (current @ centres.T).mean(axis=0)

    def render(self) -> None:
        """Nothing to draw: the env has no render modes (``render_mode`` is None)."""
        return None

    def close(self) -> None:
        """Drop the world."""
        self.world = None
