"""RLlib (new API stack) trains PPO on ``simlab/SlateRec-v0`` for two tiny iterations.

The env is named by the ``"module:id"`` form, ``"simlab.environments.gym:simlab/SlateRec-v0"``:
Gymnasium imports ``simlab.environments.gym`` (which registers the ids) inside whichever
process builds the env, so RLlib's env runners need no ``tune.register_env`` call.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import ray.rllib  # noqa: F401 - declared in the `rl` extra; fail loudly if missing

ENV_ID = "simlab.environments.gym:simlab/SlateRec-v0"


def tiny_ppo_config(env_config: dict, env_id: str = ENV_ID, **runners):
    """A PPO config small enough for one CPU: local sampling, 200-step batches, 32 units."""
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.connectors.env_to_module import FlattenObservations
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    return (
        PPOConfig()
        .environment(env_id, env_config=env_config)
        .framework("torch")
        .env_runners(
            num_env_runners=0,
            num_envs_per_env_runner=runners.pop("num_envs_per_env_runner", 1),
            **runners,
            # the default RLModule takes flat observations; the env's are a Dict
            env_to_module_connector=lambda env, spaces, device: FlattenObservations(),
        )
        .learners(num_learners=0)
        .training(train_batch_size_per_learner=200, minibatch_size=100, num_epochs=2)
        .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=[32]))
        .reporting(min_sample_timesteps_per_iteration=0)
        .debugging(log_level="ERROR", seed=0)
    )


@pytest.mark.slow
def test_rllib_ppo_two_iterations(ray_local):
    """Two PPO iterations run, sample the env and report finite episode returns."""
    from ray.rllib.utils.metrics import (
        ENV_RUNNER_RESULTS,
        EPISODE_RETURN_MEAN,
        NUM_ENV_STEPS_SAMPLED_LIFETIME,
    )

    algo = tiny_ppo_config({"max_steps": 20, "reward": "click"}).build_algo()
    try:
        results = [algo.train() for _ in range(2)]
    finally:
        algo.stop()
    last = results[-1][ENV_RUNNER_RESULTS]
    assert last[NUM_ENV_STEPS_SAMPLED_LIFETIME] >= 400
    assert math.isfinite(last[EPISODE_RETURN_MEAN])
    assert 0.0 <= last[EPISODE_RETURN_MEAN] <= 20.0


@pytest.mark.slow
def test_example_scorer_module_trains_and_acts(ray_local):
    """The example's two-tower RLModule trains one tiny iteration and serves valid slates."""
    import importlib.util
    from pathlib import Path

    import gymnasium as gym

    path = Path(__file__).resolve().parents[3] / "examples" / "train_ppo_slaterec.py"
    spec = importlib.util.spec_from_file_location("train_ppo_slaterec", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    env_config = {"max_steps": 10, "reward": "click"}
    algo = example.ppo_config(env_config, seed=0, model="scorer", batch_size=100).build_algo()
    try:
        algo.train()
        env = gym.make(ENV_ID, **env_config)
        policy = example.learned_policy(algo, env.observation_space, "scorer")
        reward = example.evaluate(policy, env_config, seeds=[1])
        obs, _ = env.reset(seed=1)
        slate = policy(obs, 0)
    finally:
        algo.stop()
    assert env.action_space.contains(slate) and len(set(slate.tolist())) == len(slate)
    assert math.isfinite(reward)


@pytest.mark.slow
def test_rllib_ppo_trains_platform_env(ray_local):
    """PPO trains on ``simlab/Platform-v0`` (flat MultiDiscrete action over all users)."""
    from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME

    env_id = "simlab.environments.gym:simlab/Platform-v0"
    config = {"max_steps": 10, "reward": "click", "overrides": {"users.num_users": 4}}
    algo = tiny_ppo_config(config, env_id).build_algo()
    try:
        results = [algo.train() for _ in range(2)]
    finally:
        algo.stop()
    last = results[-1][ENV_RUNNER_RESULTS]
    assert last[NUM_ENV_STEPS_SAMPLED_LIFETIME] >= 400
    assert 0.0 <= last["episode_return_mean"] <= 10.0


@pytest.mark.slow
def test_rllib_uses_the_native_vector_env(ray_local):
    """``gym_env_vectorize_mode="vector_entry_point"`` samples the natively batched env."""
    from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME

    from simlab.environments.gym import SlateRecVectorEnv

    config = tiny_ppo_config(
        {"max_steps": 10, "reward": "click"},
        num_envs_per_env_runner=8,
        gym_env_vectorize_mode="vector_entry_point",
    )
    algo = config.build_algo()
    try:
        env = algo.env_runner.env.unwrapped
        assert isinstance(env, SlateRecVectorEnv) and env.num_envs == 8
        result = algo.train()
    finally:
        algo.stop()
    runners = result[ENV_RUNNER_RESULTS]
    assert runners[NUM_ENV_STEPS_SAMPLED_LIFETIME] >= 200
    assert math.isfinite(runners["episode_return_mean"])


@pytest.mark.slow
def test_multi_agent_creators_example_trains(ray_local):
    """The creators' multi-agent example trains one iteration and evaluates both policies."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[3] / "examples" / "train_creators_rllib.py"
    spec = importlib.util.spec_from_file_location("train_creators_rllib", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    example.register_creators_env()
    env_config = {"num_creators": 2, "max_steps": 10}
    algo = example.ppo_config(env_config).build_algo()
    try:
        result = algo.train()
        learned = example.evaluate(algo, env_config, seeds=[1], learned=True)
        random = example.evaluate(algo, env_config, seeds=[1], learned=False)
    finally:
        algo.stop()
    assert result["env_runners"]["num_env_steps_sampled_lifetime"] >= 400
    assert set(result["env_runners"]["agent_episode_returns_mean"]) == {"creator_0", "creator_1"}
    assert learned >= 0 and random >= 0 and np.isfinite(learned + random)
