"""Tests of the Gymnasium environments: API checks, seeding, rewards, duplicates, episode ends."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import simlab.environments.gym as simgym
from simlab.environments.gym import PlatformEnv, SlateRecEnv, SlateRecVectorEnv, dedupe_slates

TINY = {
    "users.num_users": 4,
    "users.churn_threshold": 0.0,
    "content.initial_items": 60,
    "platform.max_candidates": 8,
}
CHURNY = {"users.churn_threshold": 0.9, "users.churn_patience": 2}


def rollout(env, seed: int, steps: int) -> list:
    """Observations, rewards and infos of ``steps`` steps under a fixed action sequence."""
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(steps)]
    obs, _ = env.reset(seed=seed)
    out = [obs]
    for a in actions:
        obs, r, te, tr, info = env.step(a)
        out.append((obs, r, te, tr, info))
    return out


def same(a, b) -> bool:
    """Structural equality of nested dicts/tuples/arrays, NaN equal to NaN, None to None."""
    if a is None or b is None:
        return a is b
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype == object or b.dtype == object:  # metric columns that are None (undefined)
        pairs = zip(a.ravel(), b.ravel(), strict=True)
        return a.shape == b.shape and all(same(x, y) for x, y in pairs)
    return bool(np.array_equal(a, b, equal_nan=True))


@pytest.mark.parametrize("env_id", simgym.ENV_IDS)
def test_check_env_passes(env_id):
    """Gymnasium's check_env passes for every registered id."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*infinity.*")
        check_env(gym.make(env_id).unwrapped)


@pytest.mark.parametrize("env_id", simgym.ENV_IDS)
def test_module_id_form_makes_env(env_id):
    """The ``module:id`` form makes the same env as the plain id."""
    env = gym.make(f"simlab.environments.gym:{env_id}", max_steps=3)
    assert env.spec.id == env_id
    assert env.reset(seed=0)[0] in env.observation_space


def test_vector_entry_point_spaces_and_shapes():
    """make_vec uses the native vector env; batches have the batched spaces' shapes."""
    envs = gym.make_vec("simlab/SlateRec-v0", num_envs=6, overrides=TINY)
    assert isinstance(envs, SlateRecVectorEnv)
    single = SlateRecEnv(overrides=TINY)
    assert envs.single_observation_space == single.observation_space
    assert envs.single_action_space == single.action_space
    obs, info = envs.reset(seed=1)
    assert obs in envs.observation_space
    envs.action_space.seed(0)
    obs, rew, term, trunc, info = envs.step(envs.action_space.sample())
    assert obs in envs.observation_space
    assert rew.shape == term.shape == trunc.shape == (6,) and rew.dtype == np.float32
    assert info["metrics"]["engagement/ctr"].shape == (6,) and info["_metrics"].all()
    assert info["slate_items"].shape == (6, 5) and info["_slate_items"].all()


def test_vector_sub_env_matches_single_env():
    """A one-session vector env follows the single env's trajectory for the same seed."""
    single = rollout(SlateRecEnv(overrides=TINY), seed=5, steps=6)
    envs = SlateRecVectorEnv(1, overrides=TINY)
    envs.action_space.seed(0)
    single_env = SlateRecEnv(overrides=TINY)
    single_env.action_space.seed(0)
    obs, _ = envs.reset(seed=5)
    assert same({k: v[0] for k, v in obs.items()}, single[0])
    for step in single[1:]:
        a = single_env.action_space.sample()
        obs, rew, _, _, info = envs.step(a[None, :])
        assert same({k: v[0] for k, v in obs.items()}, step[0])
        assert rew[0] == step[1] and info["clicked"][0] == step[4]["clicked"]
        assert info["slate_items"][0].tolist() == step[4]["slate_items"].tolist()


def test_vector_sessions_keyed_by_user():
    """Session i's first observation does not depend on how many sessions run."""
    small = SlateRecVectorEnv(2, overrides=TINY).reset(seed=9)[0]
    large = SlateRecVectorEnv(7, overrides=TINY).reset(seed=9)[0]
    assert same({k: v[:2] for k, v in large.items()}, small)


@pytest.mark.parametrize("make", [SlateRecEnv, PlatformEnv], ids=["slate", "platform"])
def test_same_seed_same_trajectory(make):
    """Same seed and actions give the same observations, rewards and infos."""
    assert same(rollout(make(overrides=TINY), 3, 8), rollout(make(overrides=TINY), 3, 8))


@pytest.mark.parametrize("make", [SlateRecEnv, PlatformEnv], ids=["slate", "platform"])
def test_different_seeds_differ(make):
    """Different seeds give different worlds."""
    assert not same(rollout(make(overrides=TINY), 3, 3), rollout(make(overrides=TINY), 4, 3))


def test_reset_without_seed_continues_the_stream():
    """reset() after reset(seed) gives a new but reproducible world."""
    env = SlateRecEnv(overrides=TINY)
    first = env.reset(seed=2)[0]
    second = env.reset()[0]
    env.reset(seed=2)
    assert not same(first, second) and same(env.reset()[0], second)


def test_info_has_metric_columns():
    """The step info carries the simlab metric row (homogenization needs two users)."""
    env = SlateRecEnv(overrides=TINY)
    env.reset(seed=0)
    info = env.step(env.action_space.sample())[4]
    cols = env.unwrapped.sessions.metric_columns
    assert cols and list(info["metrics"]) == cols and "echo/homogenization" not in cols
    assert list(info["metrics_defined"]) == cols and info["metrics_defined"]["engagement/ctr"]
    p = PlatformEnv(overrides=TINY)
    p.reset(seed=0)
    assert "echo/homogenization" in p.step(p.action_space.sample())[4]["metrics"]


def test_reward_knob_click_vs_engagement():
    """reward='click' pays 1 per click; 'engagement' pays the click's engagement."""
    click = rollout(SlateRecEnv(overrides=TINY, reward="click"), 0, 30)[1:]
    engage = rollout(SlateRecEnv(overrides=TINY, reward="engagement"), 0, 30)[1:]
    for (_, rc, _, _, ic), (_, re, _, _, ie) in zip(click, engage, strict=True):
        assert ic["clicked"] == ie["clicked"]
        assert rc == float(ic["clicked"])
        assert re == pytest.approx(ie["metrics"]["engagement/mean"]) and (re > 0) == ic["clicked"]
        assert re == pytest.approx(float(ie["engagement"].sum()))
    assert any(ic["clicked"] for *_, ic in click)
    with pytest.raises(ValueError, match=r"Expects `reward` in \['click', 'engagement'\]"):
        SlateRecEnv(reward="clicks")


def test_duplicate_indices_replaced_by_lowest_unused():
    """Repeated indices become the lowest unused candidates; the served slate is distinct."""
    assert dedupe_slates(np.array([[2, 2, 2], [0, 1, 0]]), 4).tolist() == [[2, 0, 1], [0, 1, 2]]
    env = SlateRecEnv(overrides=TINY)
    env.reset(seed=0)
    cands = env.sessions.candidate_ids[0].copy()
    env.step(np.full(5, 3))
    shown = env.sessions.world.last_feedback.slates[0]
    assert shown.tolist() == cands[[3, 0, 1, 2, 4]].tolist()


def test_truncates_at_step_budget():
    """An episode without churn is truncated after max_steps."""
    env = SlateRecEnv(overrides=TINY, max_steps=4)
    env.reset(seed=0)
    ends = [env.step(env.action_space.sample())[2:4] for _ in range(4)]
    assert ends == [(False, False)] * 3 + [(False, True)]


def test_terminates_on_churn():
    """A user whose satisfaction stays low churns: terminated, not truncated."""
    env = SlateRecEnv(overrides={**TINY, **CHURNY}, max_steps=50)
    env.reset(seed=0)
    for _ in range(50):
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            break
    assert term and not trunc


def test_vector_autoreset_is_per_session():
    """One session's churn ends only that session; it restarts with a fresh user next step."""
    churn_some = {"users.churn_threshold": 0.25, "users.churn_patience": 3}
    envs = SlateRecVectorEnv(6, overrides={**TINY, **churn_some}, max_steps=50)
    envs.reset(seed=0)
    envs.action_space.seed(1)
    for _ in range(50):
        _, _, term, trunc, _ = envs.step(envs.action_space.sample())
        if term.any() and not term.all():
            break
    assert term.any() and not term.all() and not trunc.any()
    before = envs.sessions.user_ids.copy()
    steps_before = envs._steps.copy()
    obs, rew, term2, trunc2, info = envs.step(envs.action_space.sample())
    assert obs in envs.observation_space
    assert (rew[term] == 0).all() and not term2[term].any() and not trunc2[term].any()
    assert (info["slate"][term] == -1).all() and not info["served"][term].any()
    assert (envs.sessions.user_ids[term] == before[term] + 6).all()
    assert (envs.sessions.user_ids[~term] == before[~term]).all()
    assert (envs._steps[term] == 0).all() and (envs._steps[~term] == steps_before[~term] + 1).all()
    assert not envs.sessions.churned[term].any()
    assert info["served"][~term].all()


def test_vector_rolls_over_when_a_session_runs_out_of_users():
    """With one user per session, the first end truncates all; the next step restarts all."""
    envs = SlateRecVectorEnv(4, overrides=TINY, max_steps=3, users_per_session=1)
    envs.reset(seed=0)
    for _ in range(2):
        _, _, term, trunc, _ = envs.step(envs.action_space.sample())
        assert not term.any() and not trunc.any()
    _, _, term, trunc, _ = envs.step(envs.action_space.sample())
    assert trunc.all()
    first_world = envs.sessions
    _, rew, term, trunc, _ = envs.step(envs.action_space.sample())
    assert not rew.any() and not term.any() and not trunc.any()
    assert envs.sessions is not first_world and envs.sessions.t == 0


def test_platform_penalties_lower_the_reward():
    """Homogenization and Gini weights subtract their metric values from the reward."""
    plain = rollout(PlatformEnv(overrides=TINY), 1, 4)[1:]
    pen = rollout(PlatformEnv(overrides=TINY, gini_weight=0.5, homogenization_weight=2.0), 1, 4)
    for (_, r0, *_), (_, r1, _, _, info) in zip(plain, pen[1:], strict=True):
        m = info["metrics"]
        want = r0 - 0.5 * m["exposure/gini"] - 2.0 * m["echo/homogenization"]
        assert r1 == pytest.approx(want)


def test_bad_actions_rejected():
    """An out-of-range or wrongly shaped action raises ValueError naming the problem."""
    env = SlateRecEnv(overrides=TINY)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"candidate indices in \[0, 8\)"):
        env.step(np.array([0, 1, 2, 3, 8]))
    with pytest.raises(ValueError, match="Expects an action of shape"):
        env.step(np.array([0, 1]))
