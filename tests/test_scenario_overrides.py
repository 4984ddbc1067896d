"""``--set`` overrides (``simlab.scenario_overrides``), per class of input, exact outcomes.

Classes: field paths that parse (dots, brackets, numeric keys) and each malformed form
(empty, a leading or trailing dot or bracket, doubled dots, trailing text, negative
positions); values read as YAML, and the exact message of one that is not; setting through
mappings (missing keys created, ``null`` removing a key) and lists (each position, the
first past the end refused); each refusal naming the path down to where it failed, at any
depth; the override list's own types; the data given never changed.
"""

from __future__ import annotations

import copy

import pytest

from simlab.errors import ScenarioError
from simlab.scenario_overrides import apply_overrides, parse_set, set_path

DATA = {"steps": 5, "users": {"num_users": 10}, "agents": [{"model": "random"}, {"model": "mf"}]}


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("steps", 9, {**DATA, "steps": 9}),
        ("users.num_users", 3, {**DATA, "users": {"num_users": 3}}),
        ("agents[1].model", "x", {**DATA, "agents": [{"model": "random"}, {"model": "x"}]}),
        ("agents.1.model", "x", {**DATA, "agents": [{"model": "random"}, {"model": "x"}]}),
        ("agents[0]", {"model": "y"}, {**DATA, "agents": [{"model": "y"}, {"model": "mf"}]}),
        ("world.dim", 4, {**DATA, "world": {"dim": 4}}),
        ("a.b.c", 1, {**DATA, "a": {"b": {"c": 1}}}),
        ("users.num_users", None, {**DATA, "users": {}}),  # null: the default applies
        ("users.absent", None, DATA),
        ("agents[1]", None, {**DATA, "agents": [{"model": "random"}, None]}),
    ],
)
def test_values_land_where_the_path_says(path, value, expected):
    """Mappings get (or lose, for null) the key; lists the position; new keys nest."""
    data = copy.deepcopy(DATA)
    set_path(data, path, value)
    assert data == expected


@pytest.mark.parametrize(
    "path",
    ["", ".steps", "steps.", "users..num_users", ".", "steps]", "]steps", "agents[0]]",
     "agents[x]", "agents[0", "agents[1.5]", "a[]"],
)  # fmt: skip
def test_malformed_paths_are_refused_naming_them(path):
    """One message naming the path as given."""
    with pytest.raises(ScenarioError) as e:
        set_path(copy.deepcopy(DATA), path, 1)
    assert str(e.value) == f"--set: malformed field path '{path}'"


@pytest.mark.parametrize("path", ["agents[-1].model", "agents[ -2]", "a.b[-10]"])
def test_negative_positions_are_refused_with_the_fix(path):
    """Positions count from 0: the message says so and how to write one."""
    with pytest.raises(ScenarioError) as e:
        set_path(copy.deepcopy(DATA), path, 1)
    assert str(e.value).startswith(f"--set: field path '{path}': list positions count from 0")


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("agents.x", "agents.x: 'agents' is a list; use an index"),
        ("agents[2]", "agents[2]: index out of range; 'agents' has 2 entries"),
        ("agents[2].model", "agents[2]: index out of range; 'agents' has 2 entries"),
        ("agents[7]", "agents[7]: index out of range; 'agents' has 2 entries"),
        ("users[0]", "users[0]: 'users' is a mapping, not a list"),
        ("steps.x", "steps.x: cannot set inside 'steps', which is int 5"),
        ("agents[0].model.name", "agents[0].model.name: cannot set inside 'agents[0].model', "
         "which is str 'random'"),
        ("x.y.z[0]", "x.y.z: not set in the scenario, so it has no entries to index; set the "
         "whole list instead, e.g. x.y.z=[...]"),
        ("sweep[0]", "sweep: not set in the scenario, so it has no entries to index; set the "
         "whole list instead, e.g. sweep=[...]"),
        ("a.b.c.d.e", None),  # nothing in the way: created
        ("users.num_users.q.r", "users.num_users.q: cannot set inside 'users.num_users', "
         "which is int 10"),
        ("agents[1].model[0]", "agents[1].model[0]: cannot set inside 'agents[1].model', "
         "which is str 'mf'"),
    ],
)  # fmt: skip
def test_refusals_name_the_path_down_to_where_it_failed(path, message):
    """At any depth, the path up to the failing part, what is there and what to do."""
    data = copy.deepcopy(DATA)
    if message is None:
        set_path(data, path, 1)
        assert data["a"] == {"b": {"c": {"d": {"e": 1}}}}
        return
    with pytest.raises(ScenarioError) as e:
        set_path(data, path, 1)
    assert str(e.value) == message


@pytest.mark.parametrize(
    ("item", "path", "value"),
    [("steps=7", "steps", 7), (" steps =7", "steps", 7), ("steps=", "steps", ""),
     ("name=a=b", "name", "a=b"), ("seeds=[1, 2]", "seeds", [1, 2]),
     ("users={num_users: 3}", "users", {"num_users": 3}), ("x='7'", "x", "7"),
     ("x=null", "x", None), ("x=  ", "x", ""), ("x=true", "x", True)],
)  # fmt: skip
def test_values_are_read_as_yaml(item, path, value):
    """``path=value``: the path stripped, the value YAML (empty: the empty string)."""
    assert parse_set(item) == (path, value)


@pytest.mark.parametrize(
    ("item", "shown"),
    [
        ("steps=[1", "[1"),
        ("x={a: 1", "{a: 1"),
        ("x=" + "[" * 80, "[" * 56 + "..."),
        ("x=" + "[" * 58, "[" * 58),
    ],
)
def test_a_value_that_is_not_yaml_is_quoted_in_the_message(item, shown):
    """The value as given (cut when long), why it is not YAML and that quoting helps."""
    with pytest.raises(ScenarioError) as e:
        parse_set(item)
    path = item.partition("=")[0]
    text = str(e.value)
    assert text.startswith(f"--set {path}: value '{shown}' is not valid YAML (")
    assert text.endswith("); quote it to pass a string")


@pytest.mark.parametrize("item", ["steps", "", "agents[0].model"])
def test_an_item_without_a_value_is_refused(item):
    """No ``=``: the item and the expected form are named."""
    with pytest.raises(ScenarioError) as e:
        parse_set(item)
    assert str(e.value) == f"--set '{item}': expected path.to.field=value"


@pytest.mark.parametrize(
    "overrides",
    [["steps=3", ("users.num_users", 4)], [("agents[0].model", "mf")], []],
)
def test_apply_overrides_copies_and_applies_in_order(overrides):
    """A deep copy with every override applied; the data given is unchanged."""
    data = copy.deepcopy(DATA)
    out = apply_overrides(data, overrides)
    assert data == DATA
    expected = copy.deepcopy(DATA)
    for item in overrides:
        path, value = parse_set(item) if isinstance(item, str) else item
        set_path(expected, path, value)
    assert out == expected and out["agents"] is not data["agents"]


@pytest.mark.parametrize(
    "bad",
    [("steps",), ("steps", 1, 2), (1, 2), ["steps", 1], 5, None, b"steps=1"],
)
def test_each_override_is_a_string_or_a_path_value_pair(bad):
    """Anything else is a TypeError naming what was given."""
    with pytest.raises(TypeError) as e:
        apply_overrides(DATA, [bad])
    assert str(e.value).startswith("Expects each override to be a 'path.to.field=value' string")
    assert str(e.value).endswith(repr(bad))


@pytest.mark.parametrize("overrides", ["steps=3", b"steps=3"])
def test_a_single_string_is_not_a_list_of_overrides(overrides):
    """A bare string would be read character by character: refused, naming it."""
    with pytest.raises(TypeError) as e:
        apply_overrides(DATA, overrides)
    assert str(e.value).endswith(f"the single string {overrides!r}")


def test_a_huge_override_is_cut_in_the_message():
    """The message stops at 300 characters, whatever was given."""
    with pytest.raises(TypeError) as e:
        apply_overrides(DATA, [("x" * 1000,) * 3])
    assert len(str(e.value)) == 300
