"""Train RLlib PPO on ``simlab/SlateRec-v0`` and compare it with a random slate policy.

Run::

    python examples/train_ppo_slaterec.py            # about 3 minutes on 2 cores
    python examples/train_ppo_slaterec.py --minutes 1 --eval-episodes 10

The env is named by the ``"module:id"`` form, so RLlib's env runners import
``simlab.environments.gym`` (which registers the ids) themselves; no ``tune.register_env``
is needed. The ``MultiDiscrete`` slate is a product of ``K`` categorical heads over the ``C``
candidates.

The default model (``--model scorer``) is a small two-tower RLModule that scores each
candidate from the user's and the candidate's features and uses those scores as the logits
of every slot; ``--model mlp`` is RLlib's default MLP over the flattened observation.

After training, the learned policy (greedy, see :func:`learned_policy`) and a uniform
random policy play the same evaluation episodes (the same env seeds, hence the same worlds
and users); the script prints each one's mean episode reward (clicks per 20-step session by
default), plus a feature-match heuristic (candidates ranked by the dot product of their
observable features with the user's) as a reference point.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np

from simlab.rng import Stream

ENV_ID = "simlab.environments.gym:simlab/SlateRec-v0"
Policy = Callable[[dict[str, np.ndarray], int], np.ndarray]


# ---------------------------------------------------------------- model (RLlib RLModule)
def slate_scorer_module_class():
    """A two-tower RLModule: one score per candidate, shared by every slot's head.

    ``score_c = <user_tower(user, mean history), item_tower(candidate_c)>``; each of the ``K``
    slot heads of the ``MultiDiscrete`` action gets the same ``C`` scores as logits. A plain
    MLP over the flattened observation would have to learn this product candidate by
    candidate; the two towers share it across candidates.
    """
    import torch
    from ray.rllib.core.columns import Columns
    from ray.rllib.core.distribution.torch.torch_distribution import TorchMultiCategorical
    from ray.rllib.core.rl_module.apis import ValueFunctionAPI
    from ray.rllib.core.rl_module.torch import TorchRLModule
    from torch import nn

    class SlateScorerModule(TorchRLModule, ValueFunctionAPI):
        """Two-tower candidate scorer with a value head on the user tower's input."""

        def setup(self) -> None:
            obs, nvec = self.observation_space, self.action_space.nvec
            dim, width = obs["user"].shape[0], self.model_config.get("embed_dim", 32)
            self.num_slots, self.num_candidates = len(nvec), int(nvec[0])
            self.user_tower = nn.Sequential(nn.Linear(2 * dim, 64), nn.Tanh(), nn.Linear(64, width))
            self.item_tower = nn.Sequential(
                nn.Linear(obs["candidates"].shape[1], 64), nn.Tanh(), nn.Linear(64, width)
            )
            self.value_head = nn.Sequential(nn.Linear(2 * dim, 64), nn.Tanh(), nn.Linear(64, 1))
            self.action_dist_cls = TorchMultiCategorical.get_partial_dist_cls(
                space=self.action_space, input_lens=list(nvec)
            )

        def _user(self, batch) -> torch.Tensor:
            obs = batch[Columns.OBS]
            return torch.cat([obs["user"], obs["history"].mean(dim=1)], dim=-1)

        def _forward(self, batch, **kwargs):
            u = self.user_tower(self._user(batch))  # (B, e)
            c = self.item_tower(batch[Columns.OBS]["candidates"])  # (B, C, e)
            scores = torch.einsum("bce,be->bc", c, u)  # (B, C)
            return {Columns.ACTION_DIST_INPUTS: scores.repeat(1, self.num_slots)}

        def compute_values(self, batch, embeddings=None):
            return self.value_head(self._user(batch)).squeeze(-1)

    return SlateScorerModule


# ---------------------------------------------------------------- training (RLlib)
def ppo_config(env_config: dict, seed: int, model: str, batch_size: int = 2000, lr: float = 1e-3):
    """PPO on the new API stack: local sampling, the two-tower scorer or a default MLP."""
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.connectors.env_to_module import FlattenObservations
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    if model == "scorer":
        runners = {}
        module = {
            "rl_module_spec": RLModuleSpec(
                module_class=slate_scorer_module_class(), model_config={"embed_dim": 32}
            )
        }
    else:  # the default MLP takes flat observations; the env's are a Dict
        runners = {"env_to_module_connector": lambda env, spaces, device: FlattenObservations()}
        module = {"model_config": DefaultModelConfig(fcnet_hiddens=[128, 128])}
    return (
        PPOConfig()
        .environment(ENV_ID, env_config=env_config)
        .framework("torch")
        .env_runners(num_env_runners=0, num_envs_per_env_runner=4, **runners)
        .learners(num_learners=0)
        .training(
            train_batch_size_per_learner=batch_size,
            minibatch_size=min(250, batch_size),
            num_epochs=6,
            lr=lr,
            entropy_coeff=0.003,
        )
        .rl_module(**module)
        .debugging(log_level="ERROR", seed=seed)
    )


def train(env_config: dict, minutes: float, seed: int, model: str, lr: float):
    """Train until ``minutes`` have passed; return the algorithm and its return curve."""
    from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, EPISODE_RETURN_MEAN

    algo = ppo_config(env_config, seed, model, lr=lr).build_algo()
    curve, start = [], time.monotonic()
    while time.monotonic() - start < 60 * minutes:
        result = algo.train()
        ret = result[ENV_RUNNER_RESULTS].get(EPISODE_RETURN_MEAN, float("nan"))
        curve.append(ret)
        print(f"iter {len(curve):3d}  {time.monotonic() - start:6.1f}s  train return {ret:.3f}")
    return algo, curve


# ---------------------------------------------------------------- policies
def learned_policy(algo, observation_space: gym.Space, model: str) -> Policy:
    """Greedy policy of the trained RLModule.

    The scorer's slate is its ``K`` highest-scoring distinct candidates; the MLP's is the
    argmax candidate of each slot's head (repeats are resolved by the env).
    """
    import torch
    from ray.rllib.utils.numpy import flatten_inputs_to_1d_tensor
    from ray.rllib.utils.spaces.space_utils import get_base_struct_from_space

    module = algo.get_module()
    struct = get_base_struct_from_space(observation_space)

    def act(obs: dict[str, np.ndarray], step: int) -> np.ndarray:
        if model == "scorer":
            inputs = {k: torch.as_tensor(v[None]) for k, v in obs.items()}
        else:
            flat = flatten_inputs_to_1d_tensor(obs, spaces_struct=struct, batch_axis=False)
            inputs = torch.as_tensor(flat[None], dtype=torch.float32)
        with torch.no_grad():
            out = module.forward_inference({"obs": inputs})
        num_candidates = obs["candidates"].shape[0]
        logits = out["action_dist_inputs"][0].numpy().reshape(-1, num_candidates)
        if model == "scorer":
            return np.argsort(-logits[0], kind="stable")[: logits.shape[0]]
        return logits.argmax(axis=1)

    return act


def random_policy(slate_size: int, num_candidates: int, seed: int) -> Policy:
    """Uniform random candidate indices per slot, drawn through ``simlab.rng``."""
    stream = Stream(seed, "examples/random_policy")

    def act(obs: dict[str, np.ndarray], step: int) -> np.ndarray:
        return stream.integers(np.arange(slate_size), step, num_candidates)

    return act


def feature_match_policy(slate_size: int) -> Policy:
    """The candidates whose observable features best match the user's (a reference)."""

    def act(obs: dict[str, np.ndarray], step: int) -> np.ndarray:
        return np.argsort(-(obs["candidates"] @ obs["user"]))[:slate_size]

    return act


# ---------------------------------------------------------------- evaluation
def evaluate(policy: Policy, env_config: dict, seeds: list[int]) -> float:
    """Mean episode reward of ``policy`` over one episode per env seed."""
    env = gym.make(ENV_ID, **env_config)
    totals, step = [], 0
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy(obs, step))
            total += float(reward)
            step += 1
            done = terminated or truncated
        totals.append(total)
    return float(np.mean(totals))


# ---------------------------------------------------------------- main
def main() -> None:
    """Train, evaluate and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="Training wall-clock budget.")
    parser.add_argument("--eval-episodes", type=int, default=50, help="Evaluation episodes.")
    parser.add_argument("--max-steps", type=int, default=20, help="Steps per session.")
    parser.add_argument("--reward", default="click", choices=["click", "engagement"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate.")
    parser.add_argument(
        "--model", default="scorer", choices=["scorer", "mlp"], help="Two-tower scorer or MLP."
    )
    args = parser.parse_args()

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level="ERROR",
        configure_logging=False,
    )
    env_config = {"max_steps": args.max_steps, "reward": args.reward}
    probe = gym.make(ENV_ID, **env_config)
    slate_size = len(probe.action_space.nvec)
    num_candidates = int(probe.action_space.nvec[0])
    try:
        algo, curve = train(env_config, args.minutes, args.seed, args.model, args.lr)
        seeds = list(range(10_000, 10_000 + args.eval_episodes))
        figures = {
            "PPO (greedy)": evaluate(
                learned_policy(algo, probe.observation_space, args.model), env_config, seeds
            ),
            "random": evaluate(
                random_policy(slate_size, num_candidates, args.seed), env_config, seeds
            ),
            "feature match": evaluate(feature_match_policy(slate_size), env_config, seeds),
        }
        algo.stop()
    finally:
        ray.shutdown()
    print(
        f"\n{len(curve)} PPO iterations; mean {args.reward} reward per {args.max_steps}-step "
        f"session over {len(seeds)} evaluation seeds:"
    )
    for name, value in figures.items():
        print(f"  {name:14s} {value:.3f}")


if __name__ == "__main__":
    main()
