"""Tests of the strategic creators' PettingZoo environment."""

from __future__ import annotations

import re

import numpy as np
import pettingzoo  # noqa: F401 - declared in the `rl` extra; fail loudly if missing
import pytest
from pettingzoo.test import parallel_api_test  # noqa: E402

from simlab.environments.gym.creators import CreatorsParallelEnv  # noqa: E402


def _episode(env: CreatorsParallelEnv, seed: int, actions: dict[str, int]) -> list[dict]:
    """Rewards of every step of one episode under fixed ``actions``."""
    env.reset(seed=seed)
    history = []
    while env.agents:
        _, rewards, _, _, _ = env.step(actions)
        history.append(rewards)
    return history


def test_parallel_api():
    """PettingZoo's parallel API test passes, episodes ending by truncation included."""
    env = CreatorsParallelEnv(num_creators=3, max_steps=15)
    parallel_api_test(env, num_cycles=40)


def test_same_seed_same_rewards():
    """Same seed and fixed actions give the same rewards; another seed differs."""
    actions = {"creator_0": 1, "creator_1": 4, "creator_2": 1}
    a = _episode(CreatorsParallelEnv(num_creators=3, max_steps=10), 5, actions)
    b = _episode(CreatorsParallelEnv(num_creators=3, max_steps=10), 5, actions)
    c = _episode(CreatorsParallelEnv(num_creators=3, max_steps=10), 6, actions)
    assert a == b
    assert a != c


def test_reset_without_seed_moves_to_next_episode():
    """``reset()`` after ``reset(seed=s)`` gives a new world; reseeding repeats the first."""
    env = CreatorsParallelEnv(num_creators=2, max_steps=5, reward="clicks")
    actions = {"creator_0": 0, "creator_1": 1}
    first = _episode(env, 3, actions)
    env.reset()
    second = []
    while env.agents:
        second.append(env.step(actions)[1])
    assert first != second
    assert _episode(env, 3, actions) == first


def test_info_carries_credit_and_metrics():
    """``info`` holds exposure, clicks, the topic and the simlab metric row of the step."""
    env = CreatorsParallelEnv(num_creators=2, max_steps=3)
    env.reset(seed=0)
    _, rewards, _, _, infos = env.step({"creator_0": 2, "creator_1": 3})
    assert infos["creator_0"]["topic"] == 2
    assert rewards["creator_1"] == infos["creator_1"]["exposure"]
    assert infos["creator_0"]["clicks"] <= infos["creator_0"]["exposure"]
    assert infos["creator_0"]["metrics"]
    metrics = infos["creator_0"]["metrics"]
    assert np.isfinite(metrics["engagement/ctr"]) and np.isfinite(metrics["exposure/gini"])
    assert not any(np.isinf(v) for v in metrics.values() if v is not None)  # NaN = undefined


def test_favoured_topic_earns_more_exposure():
    """Publishing in the topic users like most earns more exposure than a disfavoured one.

    Two creators swap roles across two episodes, so a creator's own offset cancels out.
    """
    for seed in (0, 2):
        earned = {"best": 0.0, "worst": 0.0}
        for swap in (False, True):
            env = CreatorsParallelEnv(num_creators=2, items_per_creator=3, max_steps=40)
            env.reset(seed=seed)
            appeal = env.topic_appeal()
            best, worst = int(appeal.argmax()), int(appeal.argmin())
            roles = ("worst", "best") if swap else ("best", "worst")
            topic = {"best": best, "worst": worst}
            actions = {f"creator_{i}": topic[r] for i, r in enumerate(roles)}
            for step in _episode(env, seed, actions):
                for i, r in enumerate(roles):
                    earned[r] += step[f"creator_{i}"]
        assert earned["best"] > 1.1 * earned["worst"], (seed, earned)


def test_bad_knobs_raise():
    """Out-of-range knobs and actions raise ``ValueError`` naming the value."""
    with pytest.raises(ValueError, match=re.escape("`num_creators` in [1, 30]")):
        CreatorsParallelEnv(num_creators=31)
    with pytest.raises(ValueError, match=re.escape("actual value: 'views'")):
        CreatorsParallelEnv(reward="views")
    env = CreatorsParallelEnv(num_creators=1, max_steps=2)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=re.escape("[0, 8) (an integer), actual value: 9")):
        env.step({"creator_0": 9})
