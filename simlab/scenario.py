"""Scenario files: the pydantic schema, YAML loading, ``--set`` overrides and clear errors.

A scenario describes one world (users, content, platform), the agents to compare in it,
the seeds, an optional sweep grid, the metrics and where to write the run. Loading is
two-phase: the top-level schema below is validated by pydantic, then every component
section (``users``, ``content``, each agent and re-ranker) is resolved through
:mod:`simlab.registry` and its own ``Params`` model validates the remaining keys.

Every problem becomes a :class:`~simlab.errors.ScenarioError` whose lines read
``<field path>: <what is wrong>, got <value>; <what is allowed>``; unknown keys and model
names get a did-you-mean suggestion.

This module loads and validates; the model is :mod:`simlab.scenario_model` (its sections
:mod:`simlab.scenario_sections`) and ``--set`` paths :mod:`simlab.scenario_overrides`, every
public name re-exported here.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from simlab import (
    registry,
    rules,  # noqa: F401 - registers the built-in cross-field rules
)
from simlab.errors import ScenarioError
from simlab.params import StrictModel
from simlab.scenario_model import Scenario
from simlab.scenario_overrides import apply_overrides, parse_set, set_path
from simlab.scenario_sections import (
    AgentResources,
    AgentSpec,
    ComponentSpec,
    ExecutionSection,
    LearnerSection,
    MeasuresSection,
    OutputSection,
    PlatformSection,
    WorldSection,
)
from simlab.validation import (
    check_caps,
    cross_field_errors,
    format_errors,
    format_path,
    metric_errors,
    raw_component_errors,
    resolve_component,
    short,
)
from simlab.yaml_io import read_yaml_file

__all__ = [
    "ParamsModel",
    "Scenario",
    "WorldSection",
    "ComponentSpec",
    "AgentSpec",
    "PlatformSection",
    "OutputSection",
    "MeasuresSection",
    "AgentResources",
    "LearnerSection",
    "ExecutionSection",
    "SweepPoint",
    "load_scenario",
    "parse_scenario",
    "expect_scenario",
    "read_scenario_data",
    "apply_overrides",
    "parse_set",
    "set_path",
    "sweep_points",
    "format_path",
]


ParamsModel = StrictModel
"""Base class for a component's ``Params``: a pydantic model that rejects unknown keys."""


# --------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------


def _resolve_all(scenario: Scenario) -> list[str]:
    errors = resolve_component(scenario.users, "users", ["users"])
    errors += resolve_component(scenario.content, "content", ["content"])
    for i, agent in enumerate(scenario.agents):
        errors += resolve_component(agent, "agents", ["agents", i])
        for j, rr in enumerate(agent.rerankers):
            errors += resolve_component(rr, "rerankers", ["agents", i, "rerankers", j])
    for i, rr in enumerate(scenario.platform.rerankers):
        errors += resolve_component(rr, "rerankers", ["platform", "rerankers", i])
    labels = scenario.agent_labels()
    for i, label in enumerate(labels):
        if labels.index(label) != i:
            errors.append(
                f"agents[{i}].name: duplicate agent label '{label}'; give each agent a unique name"
            )
    known = registry.names("metrics")
    for i, name in enumerate(scenario.metrics):
        errors += metric_errors(i, name, known)
    return errors


def _validate(data: dict[str, Any]) -> tuple[Scenario | None, list[str]]:
    """The scenario of ``data`` (None if invalid) and every problem found in it."""
    errors = check_caps(data)
    try:
        scenario: Scenario | None = Scenario.model_validate(data)
    except ValidationError as e:
        scenario = None
        errors += format_errors(e, Scenario)
        errors += raw_component_errors(data, errors)
    if scenario is not None:
        errors += _resolve_all(scenario)
        if not errors:
            errors += cross_field_errors(scenario)
    return (scenario if not errors else None), errors


def _sweep_errors(data: dict[str, Any], sweep: dict[str, list[Any]], base: list[str]) -> list[str]:
    """Problems of the sweep: each value alone, then each point whose values are all fine."""
    errors, bad = [], set()
    plain = {k: v for k, v in data.items() if k != "sweep"}
    for key, values in sweep.items():
        per_value: list[list[str]] = []
        for value in values:
            try:
                point = apply_overrides(plain, [(key, value)])
            except ScenarioError as e:
                per_value = [[str(e)]] * len(values)
                break
            per_value.append([x for x in _validate(point)[1] if x not in base])
        # a problem of every value is the field's (an unknown path): reported once
        common = set.intersection(*(set(lines) for lines in per_value)) if per_value else set()
        errors += [f"sweep.{key}: {x}" for x in dict.fromkeys(per_value[0]) if x in common]
        for n, lines in enumerate(per_value):
            if lines:
                bad.add((key, n))
            value = short(values[n])
            errors += [f"sweep.{key}={value}: {x}" for x in lines if x not in common]
    if errors or base:
        return errors
    keys = list(sweep)
    for combo in itertools.product(*(range(len(sweep[k])) for k in keys)):
        if len(keys) < 2 or any((k, n) in bad for k, n in zip(keys, combo, strict=True)):
            continue
        values = [(k, sweep[k][n]) for k, n in zip(keys, combo, strict=True)]
        lines = _validate(apply_overrides(plain, values))[1]
        name = ", ".join(f"{k}={short(v)}" for k, v in values)
        errors += [f"sweep point {{{name}}}: {x}" for x in lines]
    return errors


def parse_scenario(
    data: Any, overrides: Iterable[str | tuple[str, Any]] = (), source: str = "<scenario>"
) -> Scenario:
    """Validate scenario data (a mapping) with overrides; raise ``ScenarioError`` on any problem.

    Every problem is reported at once, one line each: schema errors, component errors (even
    when a top-level field is missing), caps, cross-field rules and sweep points.
    """
    if not isinstance(data, Mapping):
        raise ScenarioError(
            f"{source}: a scenario must be a mapping of fields, got {type(data).__name__}"
        )
    data = apply_overrides(dict(data), overrides)
    scenario, errors = _validate(data)
    sweep = data.get("sweep")
    if isinstance(sweep, Mapping) and sweep and all(isinstance(v, list) for v in sweep.values()):
        if "sweep" in data and not any(x.startswith("sweep") for x in errors):
            errors += _sweep_errors(data, dict(sweep), errors)
    variants = data.get("variants")
    if isinstance(variants, Mapping) and not errors:
        errors += _variant_errors(data, variants)
    if errors or scenario is None:
        raise ScenarioError("\n".join(dict.fromkeys(errors)))
    return scenario


def _variant_errors(data: dict[str, Any], variants: Mapping[str, Any]) -> list[str]:
    """Problems of each variant: the scenario it gives, validated (sweep values left out)."""
    plain = {k: v for k, v in data.items() if k not in ("sweep", "variants")}
    errors = []
    for name, overrides in variants.items():
        try:
            point = apply_overrides(plain, list(dict(overrides).items()))
        except ScenarioError as e:
            errors.append(f"variants.{name}: {e}")
            continue
        errors += [f"variants.{name}: {x}" for x in _validate(point)[1]]
    return errors


def read_scenario_data(path: str | Path) -> Any:
    """The parsed YAML of a scenario file, unvalidated (see :mod:`simlab.yaml_io`)."""
    data = read_yaml_file(Path(path))
    if data is None:
        raise ScenarioError(f"{path}: scenario file is empty")
    return data


def expect_scenario(value: object) -> None:
    """Raise ``TypeError`` unless ``value`` is a :class:`Scenario` (an API argument)."""
    if not isinstance(value, Scenario):
        raise TypeError(
            "Expects `scenario` to be a Scenario (simlab.scenario.load_scenario or "
            f"parse_scenario), actual type: {type(value).__name__}"
        )


def load_scenario(path: str | Path, overrides: Iterable[str | tuple[str, Any]] = ()) -> Scenario:
    """Load, override and validate a scenario YAML file.

    Args:
        path: the YAML file.
        overrides: ``"path.to.field=value"`` strings (as given to ``--set``) or
            ``(path, value)`` pairs.

    Raises:
        ScenarioError: with one line per problem, each naming the field path.
        TypeError: ``path`` is not a path (parse a mapping with :func:`parse_scenario`).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            "Expects `path` to be a str or path of a scenario YAML file (a mapping goes to "
            f"parse_scenario), actual type: {type(path).__name__}"
        )
    path = Path(path)
    data = read_yaml_file(path)
    if data is None:
        raise ScenarioError(f"{path}: scenario file is empty")
    if not isinstance(data, Mapping):
        raise ScenarioError(
            f"{path}: the top level must be a mapping of scenario fields (name, steps, agents, "
            f"...), got a {type(data).__name__}"
        )
    try:
        return parse_scenario(data, overrides, source=str(path))
    except ScenarioError as e:
        raise ScenarioError(f"{path}: " + str(e).replace("\n", f"\n{path}: ")) from None


@dataclass(frozen=True)
class SweepPoint:
    """One point of the sweep grid: its values by field path and the scenario it gives."""

    index: int
    values: dict[str, Any]
    scenario: Scenario


def sweep_points(scenario: Scenario) -> list[SweepPoint]:
    """Every variant times the cartesian product of ``scenario.sweep`` (one point without).

    A point's ``values`` are its ``variant`` name (with variants) and its sweep values, by
    field path: the run's sweep columns (:meth:`Scenario.sweep_columns`).
    """
    if not scenario.sweep and not scenario.variants:
        return [SweepPoint(0, {}, scenario)]
    base = scenario.resolved_dict()
    base.pop("sweep", None)
    base.pop("variants", None)
    keys = list(scenario.sweep)
    variants: list[tuple[str | None, dict[str, Any]]] = list(scenario.variants.items())
    points = []
    for name, overrides in variants or [(None, {})]:
        for combo in itertools.product(*(scenario.sweep[k] for k in keys)):
            values = dict(zip(keys, combo, strict=True))
            changes = [*overrides.items(), *values.items()]
            if name is not None:
                values = {"variant": name, **values}
            points.append(SweepPoint(len(points), values, parse_scenario(base, changes)))
    return points
