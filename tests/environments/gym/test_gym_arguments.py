"""Constructor arguments of the wrong type or value, into every env: a ValueError naming them.

Found by random API use: ``max_steps=""`` raised ``invalid literal for int()``, a string, list
or ``None`` count (``num_creators``, ``items_per_creator``, ``max_steps``) compared with an int
deep in the constructor (``TypeError: '<' not supported``), a fractional ``max_steps`` or
``platform_agent`` was silently truncated (a whole-number ``max_steps``, ``3.0``, still counts,
as it did), NaN ``platform_agent`` failed ``int()``, and a
string penalty weight failed ``math.isfinite``. Numpy integers and floats are still accepted.
The creators' env also names its agents when asked for an unknown one's space, and
``render()`` returns None (it has no render modes) instead of PettingZoo's bare
``NotImplementedError``.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from test_creators_env import SMALL
from test_gym_envs import TINY

from simlab.environments.gym import PlatformEnv, SlateRecEnv, SlateRecVectorEnv
from simlab.environments.gym.creators import CreatorsParallelEnv
from simlab.environments.gym.scenarios import finite_float, positive_int

BUILD = {
    "slate": lambda **kw: SlateRecEnv(overrides=TINY, **kw),
    "vector": lambda **kw: SlateRecVectorEnv(overrides=TINY, **{"num_envs": 2, **kw}),
    "platform": lambda **kw: PlatformEnv(overrides=TINY, **kw),
    "creators": lambda **kw: CreatorsParallelEnv(overrides=SMALL, **kw),
}
COUNTS = {  # the positive-int arguments of each env
    "slate": ["max_steps"],
    "vector": ["max_steps", "num_envs", "users_per_session"],
    "platform": ["max_steps"],
    "creators": ["max_steps", "num_creators", "items_per_creator"],
}
NOT_COUNTS = {
    "empty string": "",
    "digit string": "3",
    "fraction": 1.5,
    "numpy fraction": np.float32(2.5),
    "zero float": 0.0,
    "negative whole float": -3.0,
    "nan": math.nan,
    "inf": math.inf,
    "zero": 0,
    "negative": -2,
    "numpy zero": np.int64(0),
    "true": True,
    "false": False,
    "list": [3],
    "dict": {},
    "bytes": b"3",
    "object": object(),
}
CASES = [(env, name) for env, names in COUNTS.items() for name in names]


@pytest.mark.parametrize("value", list(NOT_COUNTS.values()), ids=list(NOT_COUNTS))
@pytest.mark.parametrize(("env", "name"), CASES, ids=[f"{e}-{n}" for e, n in CASES])
def test_a_count_that_is_not_a_positive_int_is_refused_by_name(env, name, value):
    """Every count of every env: ValueError naming the argument and the value."""
    expected = "in [1, 12]" if name == "num_creators" else "to be a positive int"
    with pytest.raises(ValueError, match=re.escape(f"Expects `{name}` {expected}")):
        BUILD[env](**{name: value})


def test_a_none_count_is_refused_where_it_has_no_default():
    """``None`` means "the scenario's" for ``max_steps`` only."""
    for name in ("num_envs", "users_per_session"):
        with pytest.raises(ValueError, match=f"`{name}` to be a positive int, actual value: None"):
            BUILD["vector"](**{name: None})
    for name in ("num_creators", "items_per_creator"):
        with pytest.raises(ValueError, match=f"`{name}` .*, actual value: None"):
            BUILD["creators"](**{name: None})
    for env in BUILD:
        assert BUILD[env](max_steps=None).max_steps == BUILD[env]().max_steps


@pytest.mark.parametrize(("env", "name"), CASES, ids=[f"{e}-{n}" for e, n in CASES])
@pytest.mark.parametrize("value", [1, 2, np.int64(2), np.int32(1), 2.0, np.float32(1.0)])
def test_int_and_whole_number_counts_are_taken(env, name, value):
    """Integers (numpy's too) are taken as ``int``; whole-number floats by ``max_steps`` only."""
    if isinstance(value, float | np.floating) and name != "max_steps":
        with pytest.raises(ValueError, match=f"`{name}`"):
            BUILD[env](**{name: value})
        return
    built = BUILD[env](**{name: value})
    stored = getattr(built, name, None)
    if stored is not None:
        assert stored == int(value) and type(stored) is int


@pytest.mark.parametrize("weight", ["homogenization_weight", "gini_weight"])
@pytest.mark.parametrize(
    "value", ["x", "", None, [1.0], True, math.nan, -math.inf, np.float32("nan"), b"1"]
)
def test_a_penalty_weight_that_is_not_a_finite_number_is_refused(weight, value):
    """``PlatformEnv``'s weights: ValueError naming the weight, not a TypeError from isfinite."""
    with pytest.raises(ValueError, match=re.escape(f"Expects `{weight}` to be a finite float")):
        PlatformEnv(overrides=TINY, **{weight: value})


def test_penalty_weights_of_numeric_types_are_taken():
    """Ints, floats and numpy numbers are taken as floats."""
    overrides = {**TINY, "metrics": ["engagement", "homogenization", "exposure"]}
    for value in (0, 2, 0.5, np.float32(0.25), np.int64(3)):
        env = PlatformEnv(overrides=overrides, homogenization_weight=value, gini_weight=value)
        assert env.weights == {"echo/homogenization": float(value), "exposure/gini": float(value)}


@pytest.mark.parametrize("agent", [1.0, 0.5, math.nan, "0", None, [0], np.float64(0.0)])
def test_a_platform_agent_that_is_neither_a_label_nor_an_index_is_refused(agent):
    """A float (even a whole one), NaN or a list is not an index; "0" is not a label."""
    two = [*SMALL, ("agents", [{"model": "popularity"}, {"model": "random"}])]
    with pytest.raises(ValueError, match="platform_agent"):
        CreatorsParallelEnv(overrides=two, platform_agent=agent)


def test_numpy_integer_platform_agent_is_an_index():
    """``np.int64(1)`` picks the second agent."""
    two = [*SMALL, ("agents", [{"model": "popularity"}, {"model": "random"}])]
    assert CreatorsParallelEnv(overrides=two, platform_agent=np.int64(1)).agent_index == 1


@pytest.mark.parametrize("agent", ["nobody", "creator_99", 0, None, ("creator_0",)])
def test_the_space_of_an_unknown_agent_names_the_agents(agent):
    """``observation_space``/``action_space`` of a stranger: a KeyError listing the agents.

    Up to three are named in full; more are the first three, an ellipsis and the last.
    """
    for n, listed in (
        (1, "creator_0"),
        (3, "creator_0, creator_1, creator_2"),
        (4, "creator_0, creator_1, creator_2, ..., creator_3"),
        (5, "creator_0, creator_1, creator_2, ..., creator_4"),
    ):
        env = CreatorsParallelEnv(overrides=SMALL, num_creators=n)
        for space in (env.observation_space, env.action_space):
            with pytest.raises(KeyError) as info:
                space(agent)
            assert info.value.args[0] == f"unknown agent {agent!r}; the agents are {listed}"
        assert env.action_space(f"creator_{n - 1}").n == env.num_topics


def test_creators_render_returns_none():
    """No render modes: ``render()`` returns None before and after reset."""
    env = CreatorsParallelEnv(overrides=SMALL)
    assert env.render() is None
    env.reset(seed=0)
    assert env.render() is None


@pytest.mark.parametrize("value", [1, 7, np.int64(3), np.uint8(4), 5.0, np.float64(2.0), 1e15])
def test_positive_int_returns_a_python_int(value):
    """The helper keeps the value and makes it an ``int``; floats only with ``whole_floats``."""
    out = positive_int("n", value, whole_floats=True)
    assert out == int(value) and type(out) is int
    if isinstance(value, float | np.floating):
        with pytest.raises(ValueError, match="`n` to be a positive int"):
            positive_int("n", value)
    else:
        assert positive_int("n", value) == out


@pytest.mark.parametrize("value", [0.0, 3, -2.5, np.float32(1.5), np.int8(-3)])
def test_finite_float_returns_a_python_float(value):
    """The helper keeps the value and makes it a ``float``."""
    out = finite_float("w", value)
    assert out == float(value) and type(out) is float


# ---------------------------------------------------------------------- what the counts do
@pytest.mark.parametrize("budget", [3, 3.0, np.int64(3)])
def test_max_steps_is_each_episodes_budget(budget):
    """``SlateRecEnv``: the third step of every episode is truncated, the first two are not."""
    env = SlateRecEnv(overrides=TINY, max_steps=budget)
    env.action_space.seed(0)
    for episode in range(2):
        env.reset(seed=episode)
        ends = [env.step(env.action_space.sample())[2:4] for _ in range(3)]
        assert ends == [(False, False), (False, False), (False, True)], episode


@pytest.mark.parametrize(
    ("num_envs", "users_per_session", "kept"),
    [(1, 1, False), (3, 1, True), (1, 3, True), (2, 2, True), (3, 3, True)],
)
def test_homogenization_is_dropped_only_for_a_one_user_world(num_envs, users_per_session, kept):
    """Pairs of users need two users: only a world of one drops the pairwise measure."""
    overrides = {**TINY, "metrics": ["engagement", "homogenization"]}
    env = SlateRecVectorEnv(
        num_envs=num_envs, users_per_session=users_per_session, overrides=overrides
    )
    assert ("homogenization" in env.scenario.metrics) is kept
    assert "engagement" in env.scenario.metrics


def test_a_spent_world_truncates_every_session_with_boolean_flags():
    """One user per session and a 2-step budget: the world is spent at step 2.

    Every session is truncated (a boolean array, as Gymnasium's vector API has it), and the
    next step restarts them all.
    """
    env = SlateRecVectorEnv(num_envs=3, users_per_session=1, overrides=TINY, max_steps=2)
    env.reset(seed=0)
    env.action_space.seed(0)
    _, _, terminated, truncated, _ = env.step(env.action_space.sample())
    assert not truncated.any() and not terminated.any()
    _, _, terminated, truncated, _ = env.step(env.action_space.sample())
    assert truncated.dtype == bool and terminated.dtype == bool
    assert truncated.tolist() == [True, True, True] and not terminated.any()
    assert env._rollover  # the spent-world path, not the budget alone


def test_the_budget_counts_from_construction_when_stepped_before_reset():
    """The raw env (no gym.make order check) serves seed 0's world from construction.

    Its first session has the same budget as the later ones.
    """
    env = SlateRecEnv(overrides=TINY, max_steps=2)
    env.action_space.seed(0)
    ends = [env.step(env.action_space.sample())[2:4] for _ in range(2)]
    assert ends == [(False, False), (False, True)]
