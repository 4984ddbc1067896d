"""Fast tests of the creators' env mechanics: scenario input, knobs, seeding, credit, spaces.

Each test builds the env directly on a small world and plays a few steps; the expected
credit and observations are recomputed by a plain loop over the world's feedback.
"""

from __future__ import annotations

import copy
import math
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pettingzoo  # noqa: F401 - declared in the `rl` extra; fail loudly if missing
import pytest
import yaml

from simlab.environments.common import topic_centres
from simlab.environments.gym.creators import (
    DEFAULT_CREATORS_SCENARIO,
    CreatorsParallelEnv,
    info_row,
)
from simlab.environments.gym.sessions import episode_seed
from simlab.errors import ScenarioError
from simlab.scenario import parse_scenario

# a smaller world than the default: 8 topics, 120 users, 12 human creators
SMALL = [
    ("users.num_users", 120),
    ("content.num_human_creators", 12),
    ("content.initial_items", 60),
    ("steps", 6),
]


def _env(**kw) -> CreatorsParallelEnv:
    return CreatorsParallelEnv(overrides=kw.pop("overrides", SMALL), **kw)


def _runtime(text: str) -> str:
    """``text`` as a new string object (not the interned constant of the source)."""
    return "".join(list(text))


def _by_hand(env: CreatorsParallelEnv) -> tuple[Counter, Counter, np.ndarray]:
    """Impressions and clicks per creator and the topic shares of the last step, by a loop."""
    fb, items = env.world.last_feedback, env.world.content.latent()
    creator = dict(zip(items.item_ids.tolist(), items.creator.tolist(), strict=True))
    topic = dict(zip(items.item_ids.tolist(), items.topic.tolist(), strict=True))
    exposure, clicks, shown_t, clicked_t = Counter(), Counter(), Counter(), Counter()
    for slate, pos in zip(fb.slates.tolist(), fb.clicked_pos.tolist(), strict=True):
        for item in slate:
            exposure[creator[item]] += 1
            shown_t[topic[item]] += 1
        if pos >= 0:
            clicks[creator[slate[pos]]] += 1
            clicked_t[topic[slate[pos]]] += 1
    t = env.num_topics
    shares = np.zeros(2 * t)
    for j, counts in enumerate((shown_t, clicked_t)):
        total = sum(counts.values())
        for k in range(t):
            shares[j * t + k] = counts[k] / total if total else 0.0
    return exposure, clicks, shares


def _one_hot(t: int, k: int) -> np.ndarray:
    out = np.zeros(t)
    out[k] = 1.0
    return out


# ------------------------------------------------------------------ scenario input
def test_scenario_from_every_kind_of_input(tmp_path: Path):
    """None, a mapping, a YAML path (str or Path) and a Scenario give the same world."""
    base = DEFAULT_CREATORS_SCENARIO
    path = tmp_path / "creators.yaml"
    path.write_text(yaml.safe_dump(base))
    scenario = parse_scenario(copy.deepcopy(base))
    want = parse_scenario(copy.deepcopy(base), ["steps=7"]).resolved_dict()
    for source in (None, dict(base), str(path), path, scenario):
        env = CreatorsParallelEnv(source, overrides=["steps=7"])
        assert env.scenario.resolved_dict() == want, source
        assert env.max_steps == 7
        # the YAML file's strings are new objects: the content model is compared by value
        plain = CreatorsParallelEnv(source)
        assert plain.max_steps == 50 and plain.scenario.content.model == "creators"
    assert CreatorsParallelEnv(scenario).scenario is scenario  # no overrides: used as is
    assert base == DEFAULT_CREATORS_SCENARIO  # the default mapping is never changed
    with pytest.raises(TypeError, match="actual type: int"):
        CreatorsParallelEnv(3)


def test_default_world_is_the_documented_one():
    """The default world is the one docs/rl.md describes (its sizes drive the env's speed)."""
    r = CreatorsParallelEnv().scenario.resolved_dict()
    assert (r["steps"], r["world"]["dim"], r["world"]["num_topics"]) == (50, 16, 8)
    assert (r["users"]["model"], r["users"]["num_users"]) == ("logit", 500)
    content = {k: r["content"][k] for k in ("model", "num_human_creators", "num_aigc_creators")}
    assert content == {"model": "creators", "num_human_creators": 30, "num_aigc_creators": 0}
    sizes = [r["content"][k] for k in ("items_per_step", "initial_items", "lifetime")]
    assert sizes == [10, 200, 20]
    platform = [r["platform"][k] for k in ("slate_size", "max_candidates")]
    assert platform == [5, 40]
    assert [r["platform"][k] for k in ("retrain_every", "log_window")] == [2, 4]
    assert [a["model"] for a in r["agents"]] == ["popularity"]
    assert r["output"]["flush_seconds"] == 0.0
    env = CreatorsParallelEnv()
    assert (env.num_creators, env.items_per_creator, env.reward_kind) == (4, 1, "exposure")
    assert env.agent_index == 0 and env.metadata["is_parallelizable"] is True


def test_other_content_model_is_refused():
    """A scenario whose content model is not ``creators`` is refused, naming the model."""
    chaney = {
        "name": "x",
        "steps": 3,
        "agents": [{"model": "popularity"}],
        "users": {"model": "chaney"},
        "content": {"model": "chaney-items"},
    }
    with pytest.raises(ScenarioError, match="content.model: .* got 'chaney-items'"):
        CreatorsParallelEnv(chaney)


# ------------------------------------------------------------------ knobs
@pytest.mark.parametrize(
    ("knobs", "message"),
    [
        ({"num_creators": 0}, "`num_creators` in [1, 12]"),
        ({"num_creators": -1}, "`num_creators` in [1, 12]"),
        ({"num_creators": 13}, "actual value: 13"),
        ({"num_creators": True}, "actual value: True"),
        ({"num_creators": False}, "actual value: False"),
        ({"items_per_creator": 0}, "`items_per_creator` to be a positive int, actual value: 0"),
        ({"items_per_creator": -2}, "actual value: -2"),
        ({"reward": "views"}, "actual value: 'views'"),
        ({"reward": "Exposure"}, "actual value: 'Exposure'"),
        ({"max_steps": 0}, "`max_steps` to be a positive int, actual value: 0"),
        ({"max_steps": -3}, "actual value: -3"),
        ({"platform_agent": 2}, "index in [0, 2), actual value: 2"),
        ({"platform_agent": 3}, "actual value: 3"),
        ({"platform_agent": -1}, "actual value: -1"),
        ({"platform_agent": True}, "actual value: True"),
        ({"platform_agent": False}, "actual value: False"),
    ],
)
def test_bad_knobs_raise_value_error(knobs: dict, message: str):
    """Out-of-range knobs raise ``ValueError`` naming the knob and the value."""
    two = [*SMALL, ("agents", [{"model": "popularity"}, {"model": "random"}])]
    with pytest.raises(ValueError, match=re.escape(message)):
        CreatorsParallelEnv(overrides=two, **knobs)


def test_knob_bounds_are_accepted():
    """The ends of every range are accepted: 1 and every human creator, one step, one item."""
    two = [*SMALL, ("agents", [{"model": "popularity"}, {"model": "random"}])]
    for n in (1, 12):
        env = CreatorsParallelEnv(overrides=two, num_creators=n, max_steps=1)
        assert env.possible_agents == [f"creator_{i}" for i in range(n)]
    for agent, index in ((0, 0), (1, 1), ("popularity", 0), ("random", 1)):
        env = CreatorsParallelEnv(overrides=two, platform_agent=agent)
        assert env.agent_index == index
        env.reset(seed=0)
        assert env.world.agent_label == ("popularity", "random")[index]
    with pytest.raises(ScenarioError, match="'populariti' is not one of .* 'popularity'"):
        CreatorsParallelEnv(overrides=two, platform_agent="populariti")


# ------------------------------------------------------------------ episodes and seeding
def test_episode_ends_by_truncation_after_max_steps():
    """``max_steps`` steps (default the scenario's), truncated at the last; then step raises."""
    for kw, steps in (({"max_steps": 3}, 3), ({}, 6), ({"max_steps": 1}, 1)):
        env = _env(num_creators=2, **kw)
        with pytest.raises(RuntimeError, match="before reset"):
            env.step({})
        env.reset(seed=0)
        for t in range(steps):
            assert env.agents == ["creator_0", "creator_1"]
            _, _, terms, truncs, _ = env.step({})
            last = t == steps - 1
            assert truncs == {"creator_0": last, "creator_1": last}
            assert terms == {"creator_0": False, "creator_1": False}
        assert env.agents == []
        with pytest.raises(RuntimeError, match="after the end"):
            env.step({})


def test_episode_terminates_when_every_user_churned():
    """Users who all churn after one visit end the episode by termination, not truncation."""
    churn = [
        *SMALL,
        ("users.return_prob", 1.0),
        ("users.return_spread", 0.0),
        ("users.churn_threshold", 1.0),
        ("users.churn_patience", 1),
    ]
    for max_steps in (1, 5):
        env = CreatorsParallelEnv(overrides=churn, num_creators=2, max_steps=max_steps)
        env.reset(seed=0)
        _, _, terms, truncs, _ = env.step({})
        assert env.world.users.churned.all()
        assert terms == {"creator_0": True, "creator_1": True}
        assert truncs == {"creator_0": False, "creator_1": False}
        assert env.agents == []


def test_world_seeds_of_episodes():
    """``reset(seed=s)`` builds world seed ``s``; ``reset()`` goes on to the next episodes."""
    env = _env(overrides=[*SMALL, ("seeds", [3, 4])])
    env.reset()  # before any seed: the scenario's first seed, episode 0
    assert env.world.seed == 3
    env.reset()
    assert env.world.seed == episode_seed(3, 1) != 3
    for s in (0, 11):
        env.reset(seed=s)
        assert env.world.seed == s
        env.reset(seed=s)
        assert env.world.seed == s
        env.reset()
        assert env.world.seed == episode_seed(s, 1)
        env.reset()
        assert env.world.seed == episode_seed(s, 2) != episode_seed(s, 1)


# ------------------------------------------------------------------ credit and observations
def test_reset_observation_is_empty_shares_and_own_topic():
    """At reset: no shares yet, the one-hot of each creator's topic, inside the space."""
    env = _env(num_creators=3)
    obs, infos = env.reset(seed=1)
    t = env.num_topics
    for i, agent in enumerate(env.possible_agents):
        topic = int(env.world.content.creator_topic[i])
        assert infos[agent]["topic"] == topic  # (its other keys: test_creators_actions.py)
        want = np.concatenate([np.zeros(2 * t), _one_hot(t, topic)])
        assert obs[agent].dtype == np.float32 and obs[agent].shape == (3 * t,)
        np.testing.assert_array_equal(obs[agent], want)
        assert env.observation_space(agent).contains(obs[agent])


@pytest.mark.parametrize("reward", ["exposure", "clicks"])
def test_credit_rewards_and_observations_match_a_loop(reward: str):
    """Exposure, clicks, rewards and topic shares equal a count by loop over the feedback."""
    env = _env(num_creators=4, items_per_creator=3, reward=_runtime(reward))
    env.reset(seed=2)
    t, differs = env.num_topics, False
    for step in range(4):
        actions = {f"creator_{i}": (i + step) % t for i in range(4)}
        obs, rewards, _, _, infos = env.step(actions)
        exposure, clicks, shares = _by_hand(env)
        assert shares[:t].sum() == pytest.approx(1.0) and shares[t:].sum() == pytest.approx(1.0)
        for i, agent in enumerate(env.possible_agents):
            info = infos[agent]
            assert (info["exposure"], info["clicks"]) == (exposure[i], clicks[i])
            assert rewards[agent] == float((exposure if reward == "exposure" else clicks)[i])
            assert info["topic"] == actions[agent]
            want = np.concatenate([shares, _one_hot(t, actions[agent])])
            np.testing.assert_allclose(obs[agent], want, rtol=1e-6)
            assert env.observation_space(agent).contains(obs[agent])
            differs |= exposure[i] != clicks[i]
    assert differs  # the two rewards were told apart


def test_no_click_leaves_click_shares_zero():
    """A step with impressions but no click has zero click shares and zero clicks."""
    never = [*SMALL, ("users.no_click_utility", 50.0)]
    env = CreatorsParallelEnv(overrides=never, num_creators=2, reward="clicks")
    env.reset(seed=0)
    obs, rewards, _, _, infos = env.step({})
    t = env.num_topics
    exposure, _, shares = _by_hand(env)
    assert not env.world.last_feedback.clicked.any() and sum(exposure.values()) > 0
    np.testing.assert_array_equal(obs["creator_0"][t : 2 * t], np.zeros(t))
    np.testing.assert_allclose(obs["creator_0"][:t], shares[:t], rtol=1e-6)
    assert rewards == {"creator_0": 0.0, "creator_1": 0.0}
    assert infos["creator_1"]["clicks"] == 0


def test_missing_or_none_action_keeps_the_topic():
    """A creator left out of the actions, or given ``None``, keeps its current topic."""
    env = _env(num_creators=3)
    _, first = env.reset(seed=4)
    t = env.num_topics
    moved = (first["creator_0"]["topic"] + 1) % t
    for actions in ({"creator_0": moved}, {"creator_0": moved, "creator_1": None}):
        obs, _, _, _, infos = env.step(actions)
        assert infos["creator_0"]["topic"] == moved
        for agent in ("creator_1", "creator_2"):
            assert infos[agent]["topic"] == first[agent]["topic"]
            np.testing.assert_array_equal(obs[agent][2 * t :], _one_hot(t, first[agent]["topic"]))


def test_each_agent_publishes_items_per_creator_items_in_its_topic():
    """A step publishes ``items_per_step`` plus ``num_creators * items_per_creator`` items."""
    for n, per in ((1, 1), (3, 2), (2, 4)):
        env = _env(num_creators=n, items_per_creator=per)
        env.reset(seed=5)
        for step in range(2):
            actions = {f"creator_{i}": (2 * i + step) % env.num_topics for i in range(n)}
            env.step(actions)
            items = env.world.content.latent()
            new = items.published == env.world.t - 1
            assert new.sum() == 10 + n * per
            for i in range(n):
                mine = new & (items.creator == i)
                assert mine.sum() >= per
                assert set(items.topic[mine].tolist()) == {actions[f"creator_{i}"]}


# ------------------------------------------------------------------ helpers
def test_info_row_turns_only_nan_into_none():
    """NaN floats become ``None``; finite, infinite and integer values are kept."""
    row = {"a": math.nan, "b": 0.25, "c": 3, "d": math.inf, "e": -0.0, "f": np.float64("nan")}
    assert info_row(row) == {"a": None, "b": 0.25, "c": 3, "d": math.inf, "e": 0.0, "f": None}
    assert info_row({}) == {}


def test_topic_appeal_is_the_mean_match_of_users_and_centres():
    """``topic_appeal`` is, per topic, the mean over users of ``<interest, centre>``."""
    env = _env()
    with pytest.raises(RuntimeError, match="before reset"):
        env.topic_appeal()
    env.reset(seed=6)
    ctx = env.world.context
    centres = topic_centres(ctx.seed, ctx.num_topics, ctx.dim, ctx.topic_spread)
    current, _ = env.world.users.interests()
    want = [
        sum(float(np.dot(u, centres[k])) for u in current) / current.shape[0]
        for k in range(ctx.num_topics)
    ]
    appeal = env.topic_appeal()
    assert appeal.shape == (ctx.num_topics,)
    np.testing.assert_allclose(appeal, want, rtol=1e-5, atol=1e-6)
    env.close()
    assert env.world is None
    with pytest.raises(RuntimeError, match="before reset"):
        env.topic_appeal()


def test_spaces_are_per_agent_and_sized_by_topics():
    """Each agent has its own ``Box(0, 1, (3T,))`` and ``Discrete(T)``, T from the scenario."""
    for topics in (4, 8):
        env = _env(overrides=[*SMALL, ("world.num_topics", topics)], num_creators=2)
        for agent in env.possible_agents:
            box, disc = env.observation_space(agent), env.action_space(agent)
            assert box is env.observation_spaces[agent] and disc is env.action_spaces[agent]
            assert box.shape == (3 * topics,) and box.dtype == np.float32
            assert box.low.min() == 0.0 and box.high.max() == 1.0 and disc.n == topics
        a, b = env.possible_agents
        assert env.observation_space(a) is not env.observation_space(b)
