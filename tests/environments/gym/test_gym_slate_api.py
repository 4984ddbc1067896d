"""The SlateRec envs' API edges: argument checks, keyword-only reset, budgets, human render."""

from __future__ import annotations

import numpy as np
import pytest

from simlab.environments.gym import PlatformEnv, SlateRecEnv, SlateRecVectorEnv

TINY = {
    "users.num_users": 4,
    "users.churn_threshold": 0.0,
    "content.initial_items": 60,
    "platform.max_candidates": 8,
}


@pytest.mark.parametrize("name", ["num_envs", "users_per_session"])
@pytest.mark.parametrize("bad", [2.5, 1.0, "3", True, False, None, 0, -1, np.float64(2.0)])
def test_vector_counts_must_be_positive_ints(name, bad):
    """``num_envs`` and ``users_per_session`` reject every non-int or non-positive value."""
    with pytest.raises(ValueError, match=rf"Expects `{name}` to be a positive int, actual value"):
        SlateRecVectorEnv(**{name: bad}, overrides=TINY)


@pytest.mark.parametrize("good", [1, 2, np.int64(2)])
def test_vector_counts_accept_numpy_ints(good):
    """A numpy integer is a valid count, as a Python int is."""
    assert SlateRecVectorEnv(good, overrides=TINY).num_envs == int(good)


@pytest.mark.parametrize(
    "make",
    [lambda: SlateRecEnv(overrides=TINY), lambda: SlateRecVectorEnv(2, overrides=TINY)],
    ids=["single", "vector"],
)
def test_reset_takes_keyword_arguments_only(make):
    """``reset(seed)`` positionally is a TypeError, as in gymnasium's API (``reset(*, seed)``)."""
    env = make()
    with pytest.raises(TypeError):
        env.reset(3)
    env.reset(seed=3)  # the keyword form works


@pytest.mark.parametrize("budget", [1, 2, 3])
def test_single_env_stays_truncated_past_its_budget(budget):
    """Every step at or after ``max_steps`` is truncated (a caller that keeps stepping)."""
    env = SlateRecEnv(overrides=TINY, max_steps=budget)
    env.reset(seed=0)
    env.action_space.seed(0)
    ends = [env.step(env.action_space.sample())[3] for _ in range(budget + 3)]
    assert ends == [False] * (budget - 1) + [True] * 4


def test_vector_env_steps_the_seed_0_world_before_any_reset():
    """Stepping before ``reset`` serves the world built at construction: seed 0's world."""
    fresh = SlateRecVectorEnv(3, overrides=TINY)
    reset = SlateRecVectorEnv(3, overrides=TINY)
    reset.reset(seed=0)
    rng = np.random.default_rng(1)
    for _ in range(3):
        act = rng.integers(0, 8, size=(3, 5))
        a, b = fresh.step(act), reset.step(act)
        assert np.array_equal(a[1], b[1]) and a[1].dtype == np.float32
        assert np.array_equal(a[4]["slate_items"], b[4]["slate_items"])
        assert a[4]["served"].any() and (a[4]["slate_items"][a[4]["served"]] >= 0).all()


def test_single_user_env_drops_only_homogenization():
    """A one-user env measures every metric group of the scenario but the pairwise one."""
    full = PlatformEnv(overrides=TINY).scenario.metrics
    assert "homogenization" in full
    single = SlateRecEnv(overrides=TINY).scenario.metrics
    assert single == [m for m in full if m != "homogenization"]
    after = [m for m in full if m > "homogenization"]  # groups sorting after it are kept too
    assert after and all(m in single for m in after)
    # a vector env of several users keeps it
    assert "homogenization" in SlateRecVectorEnv(2, overrides=TINY).scenario.metrics


@pytest.mark.parametrize(
    ("make", "title"),
    [
        (lambda: SlateRecEnv(overrides=TINY, render_mode="human"), "simlab/SlateRec-v0 ·"),
        (
            lambda: SlateRecVectorEnv(2, overrides=TINY, render_mode="human"),
            "simlab/SlateRec-v0 vector x2 ·",
        ),
        (lambda: PlatformEnv(overrides=TINY, render_mode="human"), "simlab/Platform-v0 ·"),
    ],
    ids=["single", "vector", "platform"],
)
def test_human_render_prints_the_view_and_returns_none(make, title, capsys):
    """``render_mode="human"`` prints the text view (what ``ansi`` returns) and returns None."""
    env = make()
    env.reset(seed=0)
    env.action_space.seed(0)
    env.step(env.action_space.sample())
    assert env.render() is None
    printed = capsys.readouterr().out
    assert printed.startswith(title) and "session 0 (user 0)" in printed
    env.render_mode = "ansi"
    assert env.render() + "\n" == printed
    assert capsys.readouterr().out == ""
