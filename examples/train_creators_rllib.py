"""Multi-agent RLlib PPO on the strategic creators' env (PettingZoo ``ParallelEnv``).

Run::

    python examples/train_creators_rllib.py              # about 2 minutes on 2 cores
    python examples/train_creators_rllib.py --iterations 3 --creators 2

Each of ``--creators`` human creators of a simlab world picks a topic every step and is
rewarded by the impressions its items get from a fixed popularity recommender
(:class:`simlab.environments.gym.creators.CreatorsParallelEnv`). RLlib's
``ParallelPettingZooEnv`` turns the env into a ``MultiAgentEnv``; all creators share one PPO
policy (``--independent`` gives each its own). After training, the learned policy and
creators that keep a random topic play the same evaluation episodes (same seeds), and the
script prints the mean exposure per creator and step of each.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np

ENV_NAME = "simlab-creators"


def register_creators_env() -> None:
    """Register ``simlab-creators`` with RLlib: the PettingZoo env as a ``MultiAgentEnv``."""
    from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv
    from ray.tune.registry import register_env

    from simlab.environments.gym.creators import CreatorsParallelEnv

    register_env(ENV_NAME, lambda cfg: ParallelPettingZooEnv(CreatorsParallelEnv(**cfg)))


def ppo_config(env_config: dict[str, Any], seed: int = 0, independent: bool = False):
    """A multi-agent PPO config: one shared policy for all creators (or one each)."""
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    agents = [f"creator_{i}" for i in range(env_config.get("num_creators", 4))]
    policies = set(agents) if independent else {"creator"}

    def mapping(agent_id, *args, **kwargs):
        return agent_id if independent else "creator"

    return (
        PPOConfig()
        .environment(ENV_NAME, env_config=env_config)
        .framework("torch")
        .env_runners(num_env_runners=0, num_envs_per_env_runner=1)
        .learners(num_learners=0)
        .multi_agent(policies=policies, policy_mapping_fn=mapping)
        .training(train_batch_size_per_learner=400, minibatch_size=100, num_epochs=3, lr=3e-4)
        .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=[32, 32]))
        .reporting(min_sample_timesteps_per_iteration=0)
        .debugging(log_level="ERROR", seed=seed)
    )


def evaluate(algo, env_config: dict[str, Any], seeds: list[int], learned: bool) -> float:
    """Mean exposure per creator and step over episodes of ``seeds``.

    ``learned``: the creators act greedily under the trained policy; otherwise each picks a
    uniformly random topic every step (a ``simlab.rng`` stream, so the same in every run).
    """
    import torch
    from ray.rllib.core.columns import Columns

    from simlab.environments.gym.creators import CreatorsParallelEnv
    from simlab.rng import Stream

    env = CreatorsParallelEnv(**env_config)
    draws = Stream(0, "example/creators/random-topic")
    total, count = 0.0, 0
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        t = 0
        while env.agents:
            if learned:
                actions = {}
                for agent, o in obs.items():
                    module = algo.get_module(algo.config.policy_mapping_fn(agent, None))
                    out = module.forward_inference({Columns.OBS: torch.as_tensor(o[None])})
                    actions[agent] = int(out[Columns.ACTION_DIST_INPUTS][0].argmax())
            else:
                u = draws.uniform(np.arange(len(env.agents)), seed * 10_000 + t)
                actions = {a: int(x * env.num_topics) for a, x in zip(env.agents, u, strict=True)}
            obs, rewards, *_ = env.step(actions)
            total += sum(rewards.values())
            count += len(rewards)
            t += 1
    return total / max(count, 1)


def main() -> None:
    """Train, then compare the learned and the random creators on the same worlds."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=15)
    ap.add_argument("--creators", type=int, default=4)
    ap.add_argument("--steps", type=int, default=25, help="steps per episode")
    ap.add_argument("--independent", action="store_true", help="one policy per creator")
    ap.add_argument("--eval-episodes", type=int, default=5)
    args = ap.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    register_creators_env()
    env_config = {"num_creators": args.creators, "max_steps": args.steps}
    algo = ppo_config(env_config, independent=args.independent).build_algo()
    start = time.perf_counter()
    for i in range(args.iterations):
        res = algo.train()["env_runners"]
        print(f"iteration {i + 1}: mean episode return {res['episode_return_mean']:.1f}")
    seeds = list(range(1000, 1000 + args.eval_episodes))
    learned = evaluate(algo, env_config, seeds, learned=True)
    random = evaluate(algo, env_config, seeds, learned=False)
    print(f"trained in {time.perf_counter() - start:.0f} s")
    print(f"exposure per creator-step: PPO {learned:.2f}, random topics {random:.2f}")
    algo.stop()
    ray.shutdown()


if __name__ == "__main__":
    main()
