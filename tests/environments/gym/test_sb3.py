"""Stable-Baselines3 PPO on ``simlab/SlateRec-v0`` (Dict observation, MultiDiscrete slate)."""

from __future__ import annotations

import math

import gymnasium as gym  # noqa: E402
import numpy as np
from stable_baselines3 import PPO  # noqa: E402
from stable_baselines3.common.env_checker import check_env  # noqa: E402

import simlab.environments.gym  # noqa: E402, F401 - registers the ids


def test_sb3_env_checker():
    """SB3's own env checker accepts the env."""
    check_env(gym.make("simlab/SlateRec-v0", max_steps=5).unwrapped, warn=False)


def test_sb3_ppo_multi_input_policy():
    """PPO with ``MultiInputPolicy`` trains a few hundred steps and predicts valid slates."""
    env = gym.make("simlab/SlateRec-v0", max_steps=20, reward="click")
    model = PPO(
        "MultiInputPolicy",
        env,
        n_steps=128,
        batch_size=64,
        n_epochs=1,
        policy_kwargs={"net_arch": [32]},
        seed=0,
        device="cpu",
    )
    model.learn(total_timesteps=256)
    obs, _ = env.reset(seed=1)
    total, done = 0.0, False
    while not done:
        action, _ = model.predict(obs, deterministic=True)
        assert env.action_space.contains(np.asarray(action))
        obs, reward, terminated, truncated, _ = env.step(action)
        total += float(reward)
        done = terminated or truncated
    assert math.isfinite(total)


def test_sb3_ppo_trains_platform_env():
    """PPO trains on ``simlab/Platform-v0``: the flat MultiDiscrete action over all users."""
    env = gym.make("simlab/Platform-v0", max_steps=10, overrides={"users.num_users": 4})
    check_env(env.unwrapped, warn=False)
    model = PPO(
        "MultiInputPolicy",
        env,
        n_steps=64,
        batch_size=32,
        n_epochs=1,
        policy_kwargs={"net_arch": [32]},
        seed=0,
        device="cpu",
    )
    model.learn(total_timesteps=128)
    obs, _ = env.reset(seed=1)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(np.asarray(action)) and action.shape == (4 * 5,)
    _, reward, *_ = env.step(action)
    assert math.isfinite(reward)
