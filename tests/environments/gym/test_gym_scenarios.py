"""The envs are built from any scenario (file, bundled name, mapping) and any registered model."""

from __future__ import annotations

import re
import warnings

import gymnasium as gym
import numpy as np
import pytest

import simlab.environments.gym  # noqa: F401 - registers the ids
from simlab import extras, registry
from simlab.bundled import bundled_names, scenario_path
from simlab.environments.gym import GYM_DEFAULTS, SlateRecEnv, build_scenario
from simlab.errors import ScenarioError

NEEDS_WORKER = {"recsim-ng", "recsim-ng-corpus"}  # run by RecSim NG in its own environment


def _steps(env, n: int = 3) -> None:
    env.action_space.seed(0)
    env.reset(seed=0)
    for _ in range(n):
        obs, reward, *_ = env.step(env.action_space.sample())
        assert obs in env.observation_space and np.isfinite(reward)


@pytest.mark.parametrize("name", bundled_names())
@pytest.mark.parametrize("env_id", ["simlab/SlateRec-v0", "simlab/Platform-v0"])
def test_every_bundled_scenario_makes_each_env(name, env_id):
    """Each bundled scenario, named without a path, makes both envs, which step."""
    if name == "recsim_ng" and not extras.is_ready("recsim-ng"):
        pytest.skip("RecSim NG's environment is not installed (simlab extras recsim-ng)")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*max_candidates is 0.*")
        env = gym.make(env_id, scenario=name, overrides={"users.num_users": 6}, max_steps=3)
    _steps(env.unwrapped)


def _model_pairs():
    """Every user model on RecSim's corpus, and every content model with logit users.

    (RecSim's interest-evolution users need documents with a length, so they do not run on
    the ``creators`` catalog, and Chaney's users need items with attributes: those pairings
    are scenario errors by design; such users get a content model that fits them.)
    """
    users = [m for m in registry.names("users") if m not in NEEDS_WORKER]
    content = [m for m in registry.names("content") if m not in NEEDS_WORKER]

    def corpus_for(user_model: str) -> str:  # a content model publishing what the users need
        needs = getattr(registry.resolve("users", user_model), "content_needs", None)
        if needs is None:
            return "recsim-corpus"
        return next(
            c for c in content if needs in getattr(registry.resolve("content", c), "provides", ())
        )

    pairs = [(u, corpus_for(u)) for u in users] + [("logit", c) for c in content]
    return sorted(set(pairs))


@pytest.mark.parametrize(("users", "content"), _model_pairs())
def test_any_registered_model_on_the_default_scenario(users, content):
    """Switching models drops the defaults the new model does not take instead of failing."""
    over = {"users.model": users, "content": {"model": content}, "world.dim": 8}
    env = SlateRecEnv(overrides=over, max_steps=3)
    sc = env.scenario
    assert sc.users.model == users and sc.content.model == content
    users_params = type(sc.users.params).model_fields
    if "return_prob" in users_params:  # a gym default, kept where the model takes it
        assert sc.users.params.return_prob == GYM_DEFAULTS["users.return_prob"]
    _steps(env)


def test_explicit_keys_are_still_checked():
    """A key the caller sets by name is applied even if the model rejects it: a clear error."""
    over = {"users.model": "interest-evolution", "users.drift_rate": 0.1, "world.dim": 8}
    with pytest.raises(ScenarioError, match=re.escape("users.drift_rate: unknown field")):
        SlateRecEnv(overrides=over)
    with pytest.raises(ScenarioError, match="users.return_prb: unknown field.*return_prob"):
        SlateRecEnv(overrides={"users.return_prb": 0.5})


def test_an_explicit_scenario_is_used_as_written(tmp_path):
    """A scenario file gets no gym defaults; only the population and the agent are the env's."""
    sc = build_scenario("echo_chamber", forced={"users.num_users": 1})
    written = build_scenario(scenario_path("echo_chamber"))
    assert sc.world == written.world and sc.platform == written.platform
    assert sc.users.params.num_users == 1 and [a.model for a in sc.agents] == ["random"]
    assert sc.platform.slate_size != GYM_DEFAULTS["platform.slate_size"]


def test_unknown_scenario_name_suggests_the_closest():
    """A name that is neither a file nor bundled lists the bundled ones."""
    with pytest.raises(ScenarioError, match="Did you mean 'quickstart'.*Bundled: echo_chamber"):
        SlateRecEnv(scenario="quikstart")


def test_every_live_item_is_a_candidate_when_the_catalog_is_static():
    """``max_candidates: 0`` keeps every item of a static corpus as the candidates."""
    over = {
        "users.model": "interest-evolution",
        "content": {"model": "recsim-corpus", "num_docs": 30},
        "world.dim": 8,
        "platform.max_candidates": 0,
    }
    env = SlateRecEnv(overrides=over, max_steps=3)
    assert env.action_space.nvec.tolist() == [30] * 5
    _steps(env)


def test_a_growing_catalog_gets_a_fixed_number_of_candidates():
    """``max_candidates: 0`` with a changing catalog becomes 20, with a warning naming the fix."""
    with pytest.warns(UserWarning, match=re.escape("overrides={'platform.max_candidates': N}")):
        env = SlateRecEnv(scenario="experiments/homogenization", max_steps=3)
    assert env.action_space.nvec.tolist() == [20] * env.scenario.platform.slate_size
    _steps(env)


def test_a_mapping_given_as_scenario_is_inline_data():
    """``scenario=dict`` builds exactly what ``scenario_data=dict`` builds, for every env."""
    data = {
        "name": "inline",
        "steps": 7,
        "users": {"model": "logit", "num_users": 5},
        "content": {"model": "creators", "initial_items": 40},
        "platform": {"slate_size": 3, "max_candidates": 10},
        "agents": [{"model": "random"}],
    }
    as_scenario = build_scenario(scenario=data)
    assert as_scenario == build_scenario(scenario_data=data)
    assert (as_scenario.steps, as_scenario.platform.slate_size) == (7, 3)
    with pytest.raises(ValueError, match="at most one of"):
        build_scenario(scenario=data, scenario_data=data)
    for env_id in ("simlab/SlateRec-v0", "simlab/Platform-v0"):
        env = gym.make(env_id, scenario=data)
        obs, _ = env.reset(seed=0)
        assert env.unwrapped.scenario.platform.slate_size == 3
        env.close()


@pytest.mark.parametrize("bad", [3, 2.5, ["quickstart"], ("a",), b"quickstart", object()])
def test_a_scenario_of_another_type_is_a_type_error_naming_the_allowed(bad):
    """Not a path, a bundled name or a mapping: a TypeError, not a failure deep inside."""
    with pytest.raises(TypeError, match=r"YAML path, a bundled scenario name or a mapping.*"):
        build_scenario(scenario=bad)
    with pytest.raises(TypeError, match=type(bad).__name__):
        gym.make("simlab/SlateRec-v0", scenario=bad)


def test_a_section_left_out_does_not_stop_the_others_being_fitted():
    """No ``users`` mapping: the content switch still drops the creators-only keys."""
    data = {
        "name": "x",
        "steps": 3,
        "world": {"dim": 4, "num_topics": 4},
        "content": {"model": "creators", "initial_items": 40, "num_human_creators": 7},
        "agents": [{"model": "random"}],
    }
    sc = build_scenario(scenario_data=data, overrides={"content.model": "recsim-corpus"})
    assert sc.content.model == "recsim-corpus"
    assert sc.users.model == "logit"
