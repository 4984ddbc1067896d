"""What ``CreatorsParallelEnv.step`` accepts as actions, and what it refuses.

Topics as integers (numpy ints, whole-number floats and one-value arrays taken as their
integer); fractions, NaN, strings, booleans, several values, out-of-range topics, keys that
are no live agent (a typo) and actions that are not a mapping: a ``ValueError`` naming the
agent, after which the env goes on.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from test_creators_env import SMALL, _env


def test_actions_are_checked_and_accept_numpy_ints():
    """Topics ``0`` and ``T-1`` (also as numpy values) are accepted; ``-1`` and ``T`` raise."""
    env = _env(num_creators=1, max_steps=5)
    env.reset(seed=0)
    t = env.num_topics
    for action in (0, t - 1, np.int64(2), np.array(3)):
        _, _, _, _, infos = env.step({"creator_0": action})
        assert infos["creator_0"]["topic"] == int(action)
    for action in (-1, t, t + 5):
        with pytest.raises(ValueError, match=re.escape(f"topic in [0, {t}) (an integer), actual")):
            env.step({"creator_0": action})


@pytest.mark.parametrize(
    "action",
    [
        2.7,
        np.float32(0.9),
        -0.5,
        float("nan"),
        float("inf"),
        "a",
        "2",
        True,
        [1, 2],
        np.zeros((2, 2)),
        np.array([]),
        object(),
        1 + 2j,
    ],  # fmt: skip
)
def test_a_non_topic_action_is_refused_naming_the_agent(action):
    """Fractions, NaN, strings, booleans, several values, objects: a ValueError naming the agent."""
    env = _env(num_creators=2, max_steps=5)
    env.reset(seed=0)
    msg = f"Expects the action of 'creator_1' to be a topic in [0, {env.num_topics})"
    with pytest.raises(ValueError, match=re.escape(msg)):
        env.step({"creator_0": 1, "creator_1": action})


@pytest.mark.parametrize("action", [3.0, np.float64(0.0), np.array([2]), np.uint8(1), [4]])
def test_whole_number_topics_are_taken_as_integers(action):
    """A whole-number float or a one-value array is the topic it holds."""
    env = _env(num_creators=1, max_steps=5)
    env.reset(seed=0)
    _, _, _, _, infos = env.step({"creator_0": action})
    assert infos["creator_0"]["topic"] == int(np.asarray(action).reshape(()))


@pytest.mark.parametrize(
    ("actions", "fragment"),
    [
        ({"creator_0": 1, "creator_9": 2}, "unknown agents ['creator_9']"),
        ({"creator_0": 1, "creator_1 ": 2}, "unknown agents ['creator_1 ']"),
        ({"Creator_0": 1}, "unknown agents ['Creator_0']"),
        ({0: 1}, "unknown agents [0]"),
        ([1, 2], "actual: a list"),
        (3, "actual: a int"),
    ],
)
def test_actions_for_no_live_agent_are_refused(actions, fragment):
    """A typo'd or unknown agent key, or actions not keyed by agent: a ValueError naming it."""
    env = _env(num_creators=2, max_steps=5)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=re.escape(fragment)) as e:
        env.step(actions)
    assert "creator_0, creator_1" in str(e.value)
    _, _, _, _, infos = env.step({"creator_0": 1})  # the env goes on
    assert infos["creator_0"]["topic"] == 1


@pytest.mark.parametrize("seed", [0, 3, 11])
@pytest.mark.parametrize("metrics", [None, ["engagement"], ["engagement", "exposure", "source"]])
def test_reset_infos_have_the_step_infos_keys(seed, metrics):
    """Reset infos carry what step infos carry: nothing shown, the topic, no metric yet."""
    env = _env(overrides=[*SMALL, *([] if metrics is None else [("metrics", metrics)])])
    _, infos = env.reset(seed=seed)
    topics = env.world.content.creator_topic
    _, _, _, _, after = env.step({})
    assert set(infos) == set(after) == set(env.possible_agents)
    for i, agent in enumerate(env.possible_agents):
        first, step = infos[agent], after[agent]
        assert set(first) == set(step) == {"exposure", "clicks", "topic", "metrics"}
        assert first["exposure"] == first["clicks"] == 0
        assert first["topic"] == int(topics[i]) == step["topic"]  # no action: topic kept
        assert list(first["metrics"]) == list(step["metrics"])  # same columns, same order
        assert all(v is None for v in first["metrics"].values())
        assert any(v is not None for v in step["metrics"].values())
