"""How a gym env's scenario is layered: defaults, the caller's overrides, model switches, fixes.

Fast checks of :func:`~simlab.environments.gym.scenarios.build_scenario` and its helpers on
scenario objects only (no env is stepped); ``test_gym_scenarios.py`` steps the envs of every
bundled scenario and registered model.
"""

from __future__ import annotations

import re
import warnings

import pytest

from simlab.environments.gym.scenarios import (
    DEFAULT_SCENARIO,
    GYM_DEFAULTS,
    build_scenario,
    fixed_candidates,
    fixed_slate,
    override_pairs,
)
from simlab.errors import ScenarioError
from simlab.scenario import parse_scenario

SMALL = {"content.initial_items": 12, "content.items_per_step": 3}
"""A default world whose catalog starts at 15 items and grows by 3 a step (15, 18, 21)."""

RECSIM = {"content.model": "recsim-corpus", "world.dim": 8}
"""RecSim's corpus, which interest-evolution users need, in the 8 topics they need."""

WRITTEN = {"world.dim": 32, "users.num_users": 1000, "platform.slate_size": 10}
"""What the bundled quickstart file itself sets, where the gym defaults set another value."""


def _field(sc, path: str):
    section, name = path.split(".")
    node = getattr(sc, section)
    return getattr(getattr(node, "params", node), name)


def _quiet_build(*args, **kwargs):
    """``build_scenario`` and the warnings it gave (as text)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sc = build_scenario(*args, **kwargs)
    return sc, [str(w.message) for w in caught]


# -- override_pairs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "want"),
    [
        (None, []),
        ({}, []),
        ([], []),
        (
            {"users.num_users": 7, "world": {"dim": 4}},
            [("users.num_users", 7), ("world", {"dim": 4})],
        ),
        ("users.num_users=7", [("users.num_users", 7)]),
        (["world.dim=4", ("steps", 3)], [("world.dim", 4), ("steps", 3)]),
        ((x for x in ["steps=2", "seeds=1"]), [("steps", 2), ("seeds", 1)]),
        ([("platform.slate_size", "3")], [("platform.slate_size", "3")]),
    ],
    ids=["none", "empty-map", "empty-list", "mapping", "one-string", "mixed", "iterator", "pair"],
)
def test_override_pairs_accepts_every_documented_form(given, want):
    """A mapping, one ``"path=value"`` string, or an iterable of strings and pairs."""
    assert override_pairs(given) == want


@pytest.mark.parametrize(
    "item",
    [3, None, ("steps",), ("steps", 1, 2), (1, 2), (None, 2), ["steps", 1], {"steps": 1}, b"a=1"],
)
def test_override_pairs_refuses_other_items(item):
    """Anything but a string or a ``(str, value)`` pair is a TypeError naming the item."""
    with pytest.raises(TypeError, match=re.escape(f"actual item: {item!r}")):
        override_pairs([("steps", 1), item])


# -- the gym defaults -------------------------------------------------------------------------


def test_the_default_scenario_is_quickstart_shrunk_by_the_gym_defaults():
    """Without a scenario every documented gym default is applied to the quickstart file."""
    assert DEFAULT_SCENARIO == "quickstart"
    want = {
        "world.dim": 16,
        "world.num_topics": 8,
        "users.return_prob": 1.0,
        "users.return_spread": 0.0,
        "users.churn_threshold": 0.1,
        "users.churn_patience": 8,
        "content.initial_items": 200,
        "content.items_per_step": 4,
        "content.lifetime": 50,
        "platform.slate_size": 5,
        "platform.max_candidates": 20,
        "platform.history_length": 10,
    }
    assert GYM_DEFAULTS == want
    sc, warned = _quiet_build()
    assert not warned  # 20 candidates fit its catalog of 200
    for path, value in want.items():
        assert _field(sc, path) == value, path
    assert sc.users.model == "logit" and sc.users.params.drift_rate == 0.02  # the file's own
    assert [a.model for a in sc.agents] == ["random"]


@pytest.mark.parametrize("named", ["quickstart", DEFAULT_SCENARIO])
def test_a_named_scenario_gets_no_defaults(named):
    """The same file named explicitly is used as written, with neither kind of default."""
    sc = build_scenario(named, defaults={"users.num_users": 7})
    for path, value in WRITTEN.items():
        assert _field(sc, path) == value, path


def test_env_defaults_sit_between_the_gym_defaults_and_the_overrides():
    """``defaults`` beat the gym defaults, ``overrides`` beat both, ``forced`` beats all."""
    d = {"users.num_users": 7, "world.dim": 6}
    assert _field(build_scenario(defaults=d), "users.num_users") == 7
    assert _field(build_scenario(defaults=d), "world.dim") == 6
    sc = build_scenario(overrides={"users.num_users": 3}, defaults=d)
    assert _field(sc, "users.num_users") == 3 and _field(sc, "world.dim") == 6
    sc = build_scenario(overrides={"users.num_users": 3}, defaults=d, forced=["users.num_users=1"])
    assert _field(sc, "users.num_users") == 1
    users = {"model": "logit", "num_users": 9}
    data = {"name": "x", "steps": 4, "users": users, "agents": [{"model": "popularity"}]}
    sc = build_scenario(scenario_data=data, defaults=d, forced={"users.num_users": 2})
    assert _field(sc, "users.num_users") == 2 and sc.world.dim != 6
    assert [a.model for a in sc.agents] == ["random"]


# -- switching models -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "over",
    [
        {"users.model": "interest-evolution", **RECSIM},
        {"users": {"model": "interest-evolution"}, **RECSIM},
        ["users.model=interest-evolution", "content.model=recsim-corpus", "world.dim=8"],
    ],
    ids=["path", "section", "string"],
)
def test_switching_the_user_model_drops_what_it_does_not_take(over):
    """The logit-only defaults and the file's logit keys are dropped, not reported."""
    sc = build_scenario(overrides=over)
    assert sc.users.model == "interest-evolution"
    assert sc.users.params.num_users == 1000  # the file's own key the new model takes
    fresh = type(sc.users.params)(num_users=1000)
    assert sc.users.params == fresh  # nothing else but the model's own defaults
    assert sc.world.num_topics == 8 and sc.platform.slate_size == 5  # other sections keep theirs


def test_switching_content_keeps_the_defaults_the_new_model_takes():
    """Chaney's items take ``initial_items``, ``items_per_step`` and ``lifetime``: kept."""
    sc, _ = _quiet_build(overrides={"content.model": "chaney-items", "users.model": "chaney"})
    p = sc.content.params
    assert (p.initial_items, p.items_per_step, p.lifetime) == (200, 4, 50)
    sc = build_scenario(overrides={"content.model": "recsim-corpus", "world.dim": 8})
    fresh = type(sc.content.params)()
    assert sc.content.params == fresh  # creators' phases and the catalog defaults dropped


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"users.model": "interest-evolution", "users.drift_rate": 0.1, **RECSIM}, "drift_rate"),
        ({"users": {"model": "interest-evolution", "drift_rate": 0.1}, **RECSIM}, "drift_rate"),
        ({"users.model": "interest-evolution", "users.return_prob": 1, **RECSIM}, "return_prob"),
        ({"content.phases[0].until": 5, **RECSIM}, "content.phases"),
        ({"content.lifetime": 5, **RECSIM}, "content.lifetime"),
        ({"users.model": "bogus"}, "users.model: unknown users model 'bogus'"),
        ({"users.model": 3}, "users.model: Input should be a valid string, got 3"),
        ({"users.model": ["logit"]}, "users.model: Input should be a valid string"),
        ({"content.model": None}, "content.model: required field is missing"),
    ],
)
def test_keys_the_caller_names_are_always_checked(over, field):
    """A key set by name (path, section mapping or list item) is kept and reported if wrong."""
    with pytest.raises(ScenarioError, match=re.escape(field)):
        build_scenario(overrides=over)


def test_an_unknown_model_is_the_only_error_reported():
    """An unknown user model is named alone: the other section's switch is still cleaned."""
    with pytest.raises(ScenarioError) as err:
        build_scenario(overrides={"users.model": "bogus", **RECSIM})
    assert len(str(err.value).splitlines()) == 1 and "users.model" in str(err.value)


def test_a_key_of_the_same_name_in_another_section_is_not_explicit():
    """``execution.threads`` does not keep a stale ``users.threads`` of the old model."""
    data = {
        "name": "x",
        "steps": 3,
        "users": {"model": "recsim-ng", "num_users": 2, "threads": 2},
        "content": {"model": "creators", "initial_items": 30},
        "platform": {"slate_size": 5, "max_candidates": 10},
        "agents": [{"model": "random"}],
    }
    sc = build_scenario(
        scenario_data=data, overrides={"users.model": "logit", "execution.threads": 1}
    )
    assert sc.users.model == "logit" and sc.users.params.num_users == 2
    assert sc.execution.threads == 1


def test_a_scenario_keeps_its_own_keys_when_its_model_is_unchanged():
    """Only a model switch drops keys: an unknown key under the same model is an error."""
    users = {"model": "logit", "bogus": 1}
    data = {"name": "x", "steps": 3, "users": users, "content": {"model": "creators"}}
    with pytest.raises(ScenarioError, match=r"users\.bogus: unknown field"):
        build_scenario(scenario_data=data)
    # the same model named again (a string parsed anew, not the file's own object)
    with pytest.raises(ScenarioError, match=r"users\.bogus: unknown field"):
        build_scenario(scenario_data=data, overrides=["users.model=logit"])


def test_inline_data_keeps_its_number_of_candidates():
    """Only the gym default is fitted to a small catalog, never a scenario's own number."""
    data = {
        "name": "x",
        "steps": 3,
        "users": {"model": "logit", "num_users": 2},
        "content": {"model": "creators", "initial_items": 12, "items_per_step": 3},
        "platform": {"slate_size": 5, "max_candidates": 20},
        "agents": [{"model": "random"}],
    }
    sc, warned = _quiet_build(scenario_data=data)
    assert sc.platform.max_candidates == 20 and not warned


# -- bad arguments and error messages ---------------------------------------------------------


def test_a_scenario_and_scenario_data_together_are_refused():
    """Naming a file and giving inline data is ambiguous: a ValueError."""
    with pytest.raises(ValueError, match="at most one of `scenario` and `scenario_data`"):
        build_scenario("quickstart", {"name": "x"})
    build_scenario(None, None)  # neither is the default scenario


@pytest.mark.parametrize("bad", [["name: x"], "name: x", 3])
def test_scenario_data_must_be_a_mapping(bad):
    """Inline data that is not a mapping is a TypeError naming its type."""
    with pytest.raises(
        TypeError, match=f"mapping of scenario fields, actual type: {type(bad).__name__}"
    ):
        build_scenario(scenario_data=bad)


def test_a_file_whose_top_level_is_not_a_mapping_is_refused(tmp_path):
    """A YAML list at the top level is a ScenarioError naming the file."""
    path = tmp_path / "listed.yaml"
    path.write_text("- name: x\n- steps: 3\n")
    with pytest.raises(ScenarioError, match=re.escape(f"{path}: the top level must be a mapping")):
        build_scenario(path)


def test_every_problem_of_a_file_names_the_file(tmp_path):
    """Each line of a file's errors starts with its path; inline data's lines name no file."""
    text = "name: x\nsteps: 0\nusers: {model: logit, num_users: 2, bogus: 1}\n"
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as err:
        build_scenario(path)
    lines = str(err.value).splitlines()
    assert len(lines) >= 2 and all(line.startswith(f"{path}: ") for line in lines)
    assert any("users.bogus" in line for line in lines) and any("steps" in line for line in lines)
    data = {"name": "x", "steps": 0, "users": {"model": "logit", "num_users": 2, "bogus": 1}}
    with pytest.raises(ScenarioError) as err:
        build_scenario(scenario_data=data)
    inline = str(err.value).splitlines()
    assert [f"{path}: {line}" for line in inline] == lines


# -- a fixed slate and a fixed number of candidates --------------------------------------------


@pytest.mark.parametrize("k", [1, 3, 10])
def test_a_fixed_slate_size_is_kept(k):
    """A scenario with a slate size is returned as it is, without a warning."""
    sc, warned = _quiet_build(overrides={"platform.slate_size": k})
    assert sc.platform.slate_size == k and not warned
    assert fixed_slate(sc) is sc


def test_slate_size_zero_becomes_the_gym_default_with_a_warning():
    """``slate_size: 0`` (every candidate) gets the default 5, and a warning naming the fix."""
    chaney = {"users.model": "chaney", "content.model": "chaney-items"}  # takes any length
    sc, warned = _quiet_build(overrides={**chaney, "platform.slate_size": 0})
    assert sc.platform.slate_size == 5 and sc.platform.max_candidates == 20
    assert len(warned) == 1 and "platform.slate_size is 0" in warned[0]
    assert "using 5; pass overrides={'platform.slate_size': K}" in warned[0]


@pytest.mark.parametrize(("initial", "per_step"), [(12, 3), (7, 1), (14, 2)])
def test_the_default_candidates_shrink_to_a_small_growing_catalog(initial, per_step):
    """The gym default of 20 candidates becomes the smallest catalog of the first 3 steps."""
    sizes = [initial + per_step * (t + 1) for t in range(3)]
    over = {"content.initial_items": initial, "content.items_per_step": per_step}
    sc, warned = _quiet_build(overrides=over)
    assert sc.platform.max_candidates == sizes[0]
    assert len(warned) == 1 and "max_candidates is 20 (the gym default)" in warned[0]
    assert f"catalog has {' -> '.join(map(str, sizes))} items" in warned[0]
    assert f"using {sizes[0]} per user" in warned[0]


@pytest.mark.parametrize("chosen", [20, 30])
def test_chosen_candidates_are_kept_even_over_a_small_catalog(chosen):
    """A number of candidates the caller sets is theirs (the env reports it if too many)."""
    sc, warned = _quiet_build(overrides={**SMALL, "platform.max_candidates": chosen})
    assert sc.platform.max_candidates == chosen and not warned
    assert fixed_candidates(sc) is sc


@pytest.mark.parametrize(("initial", "per_step", "kept"), [(17, 3, True), (16, 3, False)])
def test_the_default_candidates_fit_a_catalog_of_exactly_twenty(initial, per_step, kept):
    """Twenty candidates are kept while the smallest catalog has at least 20 items."""
    sc, warned = _quiet_build(
        overrides={"content.initial_items": initial, "content.items_per_step": per_step}
    )
    assert sc.platform.max_candidates == (20 if kept else 19) and bool(warned) != kept


def test_every_item_of_a_changing_catalog_becomes_a_fixed_number():
    """``max_candidates: 0`` over a growing catalog: at most 20, at most the smallest one."""
    sc, warned = _quiet_build(overrides={**SMALL, "platform.max_candidates": 0})
    assert sc.platform.max_candidates == 15
    assert "max_candidates is 0 (every live item)" in warned[0]
    assert "15 -> 18 -> 21 items" in warned[0]
    sc, warned = _quiet_build(overrides={"content.initial_items": 60, "platform.max_candidates": 0})
    assert sc.platform.max_candidates == 20 and "is 0 (every live item)" in warned[0]


@pytest.mark.parametrize("docs", [30, 300])
def test_every_item_of_a_static_catalog_stays_every_item(docs):
    """A corpus whose size never changes keeps ``max_candidates: 0`` (every live item)."""
    over = {**RECSIM, "users.model": "interest-evolution", "platform.max_candidates": 0}
    sc, warned = _quiet_build(overrides={**over, "content.num_docs": docs})
    assert sc.platform.max_candidates == 0 and not warned


@pytest.mark.parametrize("bad", [0, -1])
def test_the_catalog_is_probed_for_at_least_one_step(bad):
    """No probe step would leave no catalog size to compare: a ValueError naming the value."""
    sc = build_scenario()
    with pytest.raises(ValueError, match=rf"`probe_steps` to be at least 1, actual value: {bad}"):
        fixed_candidates(sc, probe_steps=bad)


@pytest.mark.parametrize("probe", [1, 2, 4])
def test_the_catalog_is_probed_for_the_given_number_of_steps(probe):
    """``probe_steps`` catalog sizes are compared (and listed in the warning)."""
    data = {
        "name": "x",
        "steps": 3,
        "users": {"model": "logit", "num_users": 2},
        "content": {"model": "creators", "initial_items": 30, "items_per_step": 2},
        "platform": {"max_candidates": 0},
        "agents": [{"model": "random"}],
    }
    sc = parse_scenario(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fixed_candidates(sc, probe_steps=probe)
    sizes = [30 + 2 * (t + 1) for t in range(probe)]
    if probe == 1:  # one size: the catalog looks static
        assert out is sc and not caught
    else:
        assert out.platform.max_candidates == 20
        assert f"catalog has {' -> '.join(map(str, sizes))} items" in str(caught[0].message)


def test_env_defaults_apply_only_to_the_models_that_take_them():
    """A default is applied under the model finally chosen if it takes it, else skipped."""
    d = {"users.max_user_affinity": 5.0, "users.churn_patience": 3}
    logit = build_scenario(defaults=d)
    assert logit.users.params.churn_patience == 3  # logit has no max_user_affinity
    over = {"users.model": "interest-evolution", **RECSIM}
    evolving = build_scenario(overrides=over, defaults=d)
    assert evolving.users.params.max_user_affinity == 5.0


@pytest.mark.parametrize(("section", "model"), [("users", "logit"), ("content", "creators")])
def test_removing_a_whole_section_gives_the_schema_default(section, model):
    """``users: null`` removes the section (and the defaults in it): the schema's default."""
    sc = build_scenario(overrides={section: None})
    spec = getattr(sc, section)
    assert spec.model == model and spec.params == type(spec.params)()
