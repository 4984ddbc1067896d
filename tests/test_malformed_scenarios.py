"""Malformed scenarios, one class of bad input per test, many cases each.

Every case must end in a :class:`~simlab.errors.ScenarioError` whose lines name the field
path, the value and what is allowed; none may raise anything else, hang or allocate the
world. The number fields are enumerated from every registered component's ``Params`` (and
the top-level sections), so a field added later is covered without a new case here.
"""

from __future__ import annotations

import copy
import math
import time
import typing
from typing import Any

import annotated_types as at
import pytest
from conftest import SMALL
from conftest import scenario_errors as _errors
from pydantic import BaseModel

from simlab import registry
from simlab.params import is_number_annotation
from simlab.scenario import Scenario
from simlab.validation import MAX_SEEDS, MAX_SWEEP_VALUES, MAX_TRIALS

SLOTS = {"users": ["users"], "content": ["content"], "agents": ["agents", 0]}
SLOTS["rerankers"] = ["platform", "rerankers", 0]
SKIP_SECTIONS = {"users", "content", "agents", "sweep", "seeds", "metrics"}


def _base() -> dict[str, Any]:
    return copy.deepcopy(SMALL)


def _fields(model: type[BaseModel], prefix: list) -> list[tuple[list, Any]]:
    """``(path, FieldInfo)`` of every number field of ``model`` and its nested sections."""
    out = []
    for name, info in model.model_fields.items():
        ann = info.annotation
        nested = [a for a in (ann, *typing.get_args(ann)) if isinstance(a, type)]
        sub = next((a for a in nested if issubclass(a, BaseModel)), None)
        if is_number_annotation(ann):
            out.append(([*prefix, name], info))
        elif sub is not None and typing.get_origin(ann) is None:
            out += _fields(sub, [*prefix, name])
    return out


def _number_fields() -> list[tuple[str, list, Any]]:
    """Every number field: of the top-level sections, and of every registered component."""
    out = []
    for name, info in Scenario.model_fields.items():
        if name in SKIP_SECTIONS:
            continue
        if is_number_annotation(info.annotation):
            out.append(("scenario", [name], info))
        sub = info.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            out += [("scenario", p, i) for p, i in _fields(sub, [name])]
    for kind, slot in SLOTS.items():
        for model in registry.names(kind):
            params = registry.resolve(kind, model).Params
            out += [(f"{kind}:{model}", [*slot, *p], i) for p, i in _fields(params, [])]
    return out


NUMBER_FIELDS = _number_fields()


def _put(data: dict[str, Any], owner: str, path: list, value: Any) -> str:
    """Set ``path`` to ``value`` in ``data`` with the owning component in its slot."""
    if owner != "scenario":
        kind, model = owner.split(":")
        if kind == "agents":
            data["agents"] = [{"model": model}]
        elif kind == "rerankers":
            data["platform"]["rerankers"] = [{"model": model}]
        else:
            data[kind] = {"model": model}
    node = data
    for part in path[:-1]:
        node = node[part] if isinstance(part, int) else node.setdefault(part, {})
    node[path[-1]] = value
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def _ids(cases):
    return [f"{owner}:{'.'.join(map(str, path))}" for owner, path, _ in cases]


def test_every_registered_component_has_number_fields_enumerated():
    """The enumeration really covers the components (a guard against an empty parametrize)."""
    owners = {owner for owner, _, _ in NUMBER_FIELDS}
    assert len(NUMBER_FIELDS) > 100
    for kind in SLOTS:
        for model in registry.names(kind):
            params = registry.resolve(kind, model).Params
            if _fields(params, []):
                assert f"{kind}:{model}" in owners


# ---------------------------------------------------------------------- NaN and infinities
@pytest.mark.parametrize("owner, path, info", NUMBER_FIELDS, ids=_ids(NUMBER_FIELDS))
def test_non_finite_numbers_are_refused_in_every_number_field(owner, path, info):
    """NaN, inf and -inf in any number field: an error naming the field and the value."""
    for value in (math.nan, math.inf, -math.inf):
        data = _base()
        where = _put(data, owner, path, value)
        lines = _errors(data)
        mine = [x for x in lines if x.startswith(f"{where}: ")]
        assert mine, (where, lines)
        assert any(repr(value) in x or "finite" in x for x in mine), mine


# ---------------------------------------------------------------------- strings for numbers
@pytest.mark.parametrize("owner, path, info", NUMBER_FIELDS, ids=_ids(NUMBER_FIELDS))
def test_strings_are_refused_in_every_number_field(owner, path, info):
    """A quoted number or a word in a number field: refused, never converted."""
    for value, hint in (("5", "remove the quotes"), ("many", "got 'many'")):
        data = _base()
        where = _put(data, owner, path, value)
        mine = [x for x in _errors(data) if x.startswith(f"{where}: ")]
        assert mine and "not a string" in mine[0] or "expects a" in mine[0], mine
        assert hint in mine[0], mine


# ---------------------------------------------------------------------- out of range
def _outside(info) -> list[float]:
    """Values just outside a field's declared bounds."""
    out = []
    for m in info.metadata:
        if isinstance(m, at.Gt):
            out += [m.gt, m.gt - 1]
        elif isinstance(m, at.Ge):
            out.append(m.ge - 1 if info.annotation in (int, int | None) else m.ge - 0.5)
        elif isinstance(m, at.Lt):
            out.append(m.lt)
        elif isinstance(m, at.Le):
            out.append(m.le + 1 if info.annotation in (int, int | None) else m.le + 0.5)
    return out


BOUNDED = [c for c in NUMBER_FIELDS if _outside(c[2])]


@pytest.mark.parametrize("owner, path, info", BOUNDED, ids=_ids(BOUNDED))
def test_sizes_and_probabilities_out_of_range_are_refused(owner, path, info):
    """Zero or negative sizes, probabilities above 1, every bound of every field."""
    for value in _outside(info):
        data = _base()
        where = _put(data, owner, path, value)
        mine = [x for x in _errors(data) if x.startswith(f"{where}: ")]
        assert mine, (where, value)
        assert f"got {value!r}" in mine[0] or repr(value) in mine[0], mine


def test_bounded_fields_include_sizes_and_probabilities():
    """The range cases cover the usual kinds: sizes (> 0) and probabilities (<= 1)."""
    names = {".".join(map(str, p)) for _, p, _ in BOUNDED}
    assert {"users.num_users", "users.return_prob", "steps", "platform.slate_size"} <= names
    assert len(BOUNDED) > 80


# ---------------------------------------------------------------------- lists for maps
SHAPES = [
    ({"users": ["logit"]}, "users: expected a mapping of fields, got ['logit']"),
    ({"world": [16, 8]}, "world: expected a mapping of fields"),
    ({"platform": 5}, "platform: expected a mapping of fields, got 5"),
    ({"execution": "local"}, "execution: expected a mapping of fields, got 'local'"),
    ({"output": [{"dir": "x"}]}, "output: expected a mapping of fields"),
    ({"measures": True}, "measures: expected a mapping of fields, got True"),
    ({"sweep": [["steps", [1, 2]]]}, "sweep: "),
    ({"agents": {"model": "random"}}, "agents: "),
    ({"metrics": "engagement"}, "metrics: "),
    ({"seeds": {"a": 1}}, "seeds: "),
    ({"content": {"model": "creators", "phases": {"aigc_share": 0.5}}}, "content.phases: "),
    ({"agents": [["random"]]}, "agents[0]: expected a mapping of fields"),
    ({"agents": ["random"]}, "agents[0]: expected a mapping of fields, got 'random'"),
    ({"name": ["a"]}, "name: "),
    ({"steps": [5]}, "steps: "),
    ({"platform": {"rerankers": {"model": "mmr"}}}, "platform.rerankers: "),
]


@pytest.mark.parametrize("change, fragment", SHAPES, ids=[str(c)[:40] for c, _ in SHAPES])
def test_wrong_container_shapes_are_refused(change, fragment):
    """A list where a mapping belongs (and the reverse) names the field and what it got."""
    data = {**_base(), **change}
    assert any(x.startswith(fragment) for x in _errors(data)), _errors(data)


# ---------------------------------------------------------------------- keys that are not strings
# where a key goes -> (how to put {key: 5} there, the path the error names)
KEY_PLACES = {
    "top": (lambda d, bad: {**d, **bad}, "<scenario>"),
    "world": (lambda d, bad: {**d, "world": {**d.get("world", {}), **bad}}, "world"),
    "users": (lambda d, bad: {**d, "users": {**d["users"], **bad}}, "users"),
    "content": (lambda d, bad: {**d, "content": {**d["content"], **bad}}, "content"),
    "platform": (lambda d, bad: {**d, "platform": {**d.get("platform", {}), **bad}}, "platform"),
    "measures": (lambda d, bad: {**d, "measures": bad}, "measures"),
    "output": (lambda d, bad: {**d, "output": bad}, "output"),
    "execution": (lambda d, bad: {**d, "execution": bad}, "execution"),
    "agent": (lambda d, bad: {**d, "agents": [{"model": "random", **bad}]}, "agents[0]"),
    "reranker": (
        lambda d, bad: {**d, "platform": {"rerankers": [{"model": "mmr", **bad}]}},
        "platform.rerankers[0]",
    ),
    "sweep": (lambda d, bad: {**d, "sweep": {k: [1, 2] for k in bad}}, "sweep"),
    "variants": (lambda d, bad: {**d, "variants": {k: {} for k in bad}}, "variants"),
}


@pytest.mark.parametrize("key", [True, False, None, 3, 1.5], ids=repr)
@pytest.mark.parametrize("place", sorted(KEY_PLACES))
def test_a_key_that_is_not_a_string_is_named_as_a_key(place, key):
    """A ``true:``, ``null:`` or ``3:`` key is shown as written and the user told to quote it.

    YAML reads those keys as other types; pydantic's location turns ``True`` into ``1``.
    """
    put, where = KEY_PLACES[place]
    errors = _errors(put(_base(), {key: 5}))
    expected = f"{where}: a key must be a string, got {key!r} (YAML reads an unquoted"
    assert any(x.startswith(expected) and "quote the key" in x for x in errors), errors


# ---------------------------------------------------------------------- sizes that cannot fit
HUGE = [
    ("users.num_users=1000000000", "users.num_users: the run needs about"),
    ("content.initial_items=20000000000", "content: the run needs about"),
    (("users.num_users", 10_000_000), "GiB of memory"),
    ("measures.pairwise_pairs=1000000000000", "GiB of memory"),
    ("content.num_human_creators=1000000000000", "content: the run needs about"),
    ("content.num_aigc_creators=4611686018427387904", "content: the run needs about"),
    ("content.creators_per_step=100000000000", "content: the run needs about"),
    # the field that makes the run too big is the one named (not users.num_users)
    ("world.num_topics=100000000", "world.num_topics: the run needs about"),
    ("platform.history_length=100000000", "platform.history_length: the run needs about"),
    ("platform.log_window=100000000", "platform.log_window: the run needs about"),
]


@pytest.mark.parametrize("override, fragment", HUGE, ids=[str(o)[:30] for o, _ in HUGE])
def test_worlds_that_cannot_fit_are_refused_before_allocating(override, fragment):
    """The estimate and the machine's memory are named; nothing is allocated (it is fast)."""
    data = _base()
    extra = []
    if override == ("users.num_users", 10_000_000):
        extra = ["world.dim=4096", "platform.max_candidates=100"]
    if "pairwise" in str(override):
        extra = ["users.num_users=50000000"]
    start = time.monotonic()
    lines = _errors(data, override, *extra)
    assert time.monotonic() - start < 10
    assert any(fragment in x and "this machine has" in x for x in lines), lines
    assert all(len(x) < 600 for x in lines)


def test_seed_and_sweep_caps_are_checked_before_building():
    """Seeds, sweep values and grids over the caps are refused at once, naming the cap."""
    cases = [
        ({"seeds": 10**12}, f"seeds: 1000000000000 seeds is more than the {MAX_SEEDS:,}"),
        ({"seeds": list(range(MAX_SEEDS + 1))}, "seeds: 10,001 seeds is more than"),
        ({"sweep": {"users.drift_rate": [0.1] * (MAX_SWEEP_VALUES + 1)}}, "1,001 values"),
        (
            {
                "sweep": {
                    f"users.{k}": [0.1, 0.2, 0.3, 0.4]
                    for k in (
                        "drift_rate",
                        "fatigue_weight",
                        "engagement_noise",
                        "feature_noise",
                        "quality_weight",
                        "interest_weight",
                        "source_preference",
                    )
                }
            },
            f"more than the {MAX_TRIALS:,} allowed in one run",
        ),
        ({"seeds": 2**63}, "seeds: "),
        ({"seeds": [2**63]}, "below 2**63"),
    ]
    for change, fragment in cases:
        start = time.monotonic()
        lines = _errors({**_base(), **change})
        assert time.monotonic() - start < 10, change
        assert any(fragment in x for x in lines), (fragment, lines)


def test_huge_values_are_never_echoed_in_full():
    """A megabyte-long value is cut in the message."""
    for change in ({"name": "x" * 10**6}, {"steps": "9" * 10**5}, {"descripton": "y" * 10**6}):
        lines = _errors({**_base(), **change})
        assert lines and all(len(x) < 1000 for x in lines), [len(x) for x in lines]


# ---------------------------------------------------------------------- all errors at once
def test_every_problem_is_reported_at_once():
    """A missing top-level field does not hide component, metric or agent errors."""
    data = _base()
    del data["steps"]
    data["users"] = {"model": "logit", "drift_rat": 0.1}
    data["agents"] = [{"model": "popularty"}, {"model": "mf", "factor": 3}]
    data["metrics"] = ["engagement", "exposur"]
    data["platform"]["rerankers"] = [{"model": "mmr", "lambda_": 2}]
    lines = _errors(data)
    for fragment in (
        "steps: required field is missing",
        "users.drift_rat: unknown field 'drift_rat'. Did you mean 'drift_rate'?",
        "agents[0].model: unknown agents model 'popularty'. Did you mean 'popularity'?",
        "agents[1].factor: unknown field 'factor'. Did you mean 'factors'?",
        "metrics[1]: unknown metric 'exposur'. Did you mean 'exposure'?",
        "platform.rerankers[0].lambda_: unknown field",
    ):
        assert any(x.startswith(fragment) for x in lines), (fragment, lines)
    assert len(lines) == len(set(lines))


def test_every_bad_sweep_value_is_reported_with_its_point():
    """Each bad sweep value and each bad combination is named; good ones are not."""
    data = _base()
    data["sweep"] = {"platform.retrain_every": [0, 5, -1], "users.num_userz": [1, 2]}
    lines = _errors(data)
    bad = "sweep.platform.retrain_every={}: platform.retrain_every: "
    assert any(x.startswith(bad.format(0)) for x in lines), lines
    assert any(x.startswith(bad.format(-1)) for x in lines), lines
    assert not any(x.startswith("sweep.platform.retrain_every=5") for x in lines)
    assert sum(x.startswith("sweep.users.num_userz: ") for x in lines) == 1, lines


@pytest.mark.parametrize(
    ("value", "shows_value"),
    [
        ([{"a": 1}, {"a": 2}], False),  # a list of sections: the message names the entries
        ([{"a": 1}], False),
        ({"a": 1}, False),  # one section
        ([1, 2], True),  # a list of plain values: the value is shown
        ([{"a": 1}, 3], True),
        ([], True),
        ("abc", True),
    ],
)
def test_a_check_across_sections_is_not_followed_by_their_contents(value, shows_value):
    """A value error on a section, or on a list of sections, is reported without its input."""
    from pydantic import BaseModel, ValidationError, field_validator

    from simlab.validation import format_errors

    class Holder(BaseModel):
        entries: object

        @field_validator("entries")
        @classmethod
        def _refuse(cls, v: object) -> object:
            raise ValueError("entries[1] is wrong")

    with pytest.raises(ValidationError) as e:
        Holder(entries=value)
    (line,) = format_errors(e.value, Holder, ["section"])
    assert line.startswith("section.entries: entries[1] is wrong")
    assert (", got" in line) is shows_value, line
