"""Checks that a component keeps simlab's contracts; use them in your own tests.

:func:`check_agent` runs an agent inside a small world and checks, at every step, the shape
of its slates, that a slate never repeats an item, that it only contains the user's
candidates (with shared and with per-user candidates), that the same seed gives the same
slates, and that ``state_dict``/``load_state_dict`` round-trips (a restored agent acts
exactly like the original).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np

from simlab.errors import AgentContractError
from simlab.scenario import Scenario, parse_scenario

__all__ = ["check_agent", "tiny_scenario", "record_acts"]

_TINY: dict[str, Any] = {
    "name": "check",
    "steps": 12,
    "world": {"dim": 8, "num_topics": 4},
    "users": {"model": "logit", "num_users": 120, "drift_rate": 0.05},
    "content": {
        "model": "creators",
        "num_human_creators": 12,
        "num_aigc_creators": 4,
        "items_per_step": 6,
        "initial_items": 60,
        "lifetime": 10,
        "phases": [{"until": 6, "aigc_share": 0.0}, {"aigc_share": 0.5}],
    },
    "platform": {"slate_size": 4, "retrain_every": 3, "log_window": 4, "history_length": 5},
    "output": {"flush_seconds": 0.0},
    "execution": {"backend": "local"},
}


_SOCIAL_WORLD: tuple[tuple[str, Any], ...] = (
    ("users", {"model": "chaney", "num_users": 120}),
    (
        "content",
        {"model": "chaney-items", "items_per_step": 6, "initial_items": 60, "lifetime": 10},
    ),
)
"""The tiny world's users and content for agents that need a social graph."""


def tiny_scenario(agent: dict[str, Any], *overrides: str | tuple[str, Any]) -> Scenario:
    """A tiny valid scenario (120 users, ~60 items, slate 4) with one agent."""
    data = copy.deepcopy(_TINY)
    data["agents"] = [agent]
    return parse_scenario(data, overrides)


def record_acts(world) -> list:
    """Wrap ``world.agent.act`` so every ``(obs, slates)`` pair is appended to the returned list."""
    calls: list = []
    act = world.agent.act

    def recording_act(obs):
        slates = act(obs)
        calls.append((obs, slates))
        return slates

    world.agent.act = recording_act
    return calls


def _trajectory(scenario: Scenario, seed: int, steps: int):
    """Run a world; return it and every (obs, slates) the agent produced."""
    from simlab.world import World

    world = World(scenario, 0, seed)
    calls = record_acts(world)
    for t in range(steps):
        world.step(t)
    del world.agent.act  # back to the class's method
    return world, calls


def _check_calls(calls: list, who: str) -> None:
    for obs, slates in calls:
        ids = np.asarray(slates.item_ids)
        if ids.shape != (obs.num_users, obs.slate_size):
            raise AgentContractError(
                f"{who}: step {obs.step}: slates of shape {ids.shape}, expected "
                f"{(obs.num_users, obs.slate_size)}"
            )
        srt = np.sort(ids, axis=1)
        if (srt[:, 1:] == srt[:, :-1]).any():
            raise AgentContractError(f"{who}: step {obs.step}: a slate repeats an item")
        ok = (ids[:, :, None] == np.asarray(obs.candidates)[:, None, :]).any(axis=2)
        if not ok.all():
            b, k = np.argwhere(~ok)[0]
            raise AgentContractError(
                f"{who}: step {obs.step}: item {ids[b, k]} for user {obs.user_ids[b]} is not "
                "one of the user's candidates"
            )


def check_agent(
    agent: dict[str, Any] | str,
    *overrides: str | tuple[str, Any],
    steps: int = 12,
    seed: int = 0,
) -> None:
    """Check an agent's contract in tiny worlds; raise ``AgentContractError`` on a breach.

    Args:
        agent: an agent spec as in a scenario (``{"model": "mf", "factors": 4}``) or a
            model name / ``"module:Class"``.
        overrides: ``--set`` style overrides of the tiny scenario.
        steps: steps per world (enough to cover a few retrains).
        seed: the seed of the worlds.

    Checks: slate shape ``(B, K)``; no repeated item in a slate; only the user's
    candidates, with shared candidates and with a per-user pre-selection; identical slates
    for the same seed; ``state_dict``/``load_state_dict`` round trip through the data-only
    checkpoint format (a fresh agent loaded with the state acts like the original on the
    next observation; a state holding anything but arrays, tensors and plain values fails).
    """
    from simlab import registry

    if not isinstance(agent, (str, Mapping)) or not (isinstance(agent, str) or "model" in agent):
        raise TypeError(
            "Expects `agent` to be a model name, 'module:Class' or a spec mapping with a "
            "'model' key (a class: simlab.registry.register it under a name first), actual "
            f"value: {agent!r}"[:300]
        )
    spec = {"model": agent} if isinstance(agent, str) else dict(agent)
    who = f"agent '{spec.get('name') or spec['model']}'"
    if getattr(registry.resolve("agents", spec["model"]), "needs_social_graph", False):
        overrides = (*_SOCIAL_WORLD, *overrides)  # users with a social network
    shared = tiny_scenario(spec, *overrides)
    per_user = tiny_scenario(spec, "platform.max_candidates=20", *overrides)
    for scenario in (shared, per_user):
        world, calls = _trajectory(scenario, seed, steps)
        _check_calls(calls, who)
        _, again = _trajectory(scenario, seed, steps)
        for (obs, a), (_, b) in zip(calls, again, strict=True):
            if not np.array_equal(a.item_ids, b.item_ids):
                raise AgentContractError(
                    f"{who}: step {obs.step}: the same seed gave different slates"
                )
        _check_state_round_trip(world, scenario, seed, who)


def _through_checkpoint(state: Any, who: str) -> Any:
    """``state`` as a checkpoint gives it back: data only (:mod:`simlab.state`), copied."""
    from simlab.state import StateFormatError, decode, encode

    arrays: list[np.ndarray] = []
    try:
        tree = encode(state, arrays, "state_dict()")
    except StateFormatError as e:
        raise AgentContractError(f"{who}: {e}") from None
    return decode(tree, [a.copy() for a in arrays])


def _check_state_round_trip(world, scenario: Scenario, seed: int, who: str) -> None:
    """A fresh agent loaded with ``state_dict()`` acts like the original on the next step."""
    from simlab.world import bind_hooks

    t = world.t
    catalog, active = world.begin(t)
    obs = world.platform.observe(t, active, catalog, world.users.observable_features(active))
    state = _through_checkpoint(world.agent.state_dict(), who)
    spec = scenario.agents[0]
    fresh = spec.cls(spec.params, world.context)
    fresh.load_state_dict(state)
    bind_hooks(fresh, world)  # as a restored checkpoint: state first, then the world's hooks
    expected = world.agent.act(obs).item_ids
    got = fresh.act(obs).item_ids
    if not np.array_equal(expected, got):
        raise AgentContractError(
            f"{who}: an agent restored from state_dict() acts differently from the original"
        )
