"""The whole scenario file: the :class:`Scenario` model (re-exported by :mod:`simlab.scenario`).

Its sections are in :mod:`simlab.scenario_sections`; loading, validation with every
problem at once and the sweep grid are in :mod:`simlab.scenario`.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from pydantic import Field, field_validator

from simlab import registry
from simlab.params import StrictModel
from simlab.scenario_sections import (
    AgentSpec,
    ComponentSpec,
    ExecutionSection,
    MeasuresSection,
    OutputSection,
    PlatformSection,
    WorldSection,
)
from simlab.validation import MAX_SEEDS

__all__ = ["Scenario"]


_NOT_SWEPT = ("sweep", "seeds", "name", "output", "execution", "steps")
"""Top-level fields a sweep or a variant may not change (every trial runs ``steps``)."""


def _default_metrics() -> list[str]:
    names = registry.names("metrics")
    return [n for n in names if getattr(registry.resolve("metrics", n), "on_by_default", True)]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _sweep_kind(key: str, value: Any) -> str:
    """``bool``, ``number`` or ``string``: what a sweep value is (it names a point in the rows)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"sweep parameter '{key}' lists {value!r}; give a finite number")
        return "number"
    if isinstance(value, str):
        return "string"
    what = "null (the default)" if value is None else f"a {type(value).__name__} ({_short(value)})"
    raise ValueError(
        f"sweep parameter '{key}' lists {what}; sweep values must be numbers, strings or "
        "booleans, since they name the points in the rows. To compare settings that are "
        "lists, mappings or defaults, name them as variants, e.g. "
        f"variants: {{a: {{{key}: ...}}, b: {{{key}: ...}}}}"
    )


class Scenario(StrictModel):
    """A whole scenario file."""

    name: str = Field(description="Scenario name; prefixes run ids.")
    description: str = Field("", description="Free text.")
    steps: int = Field(gt=0, le=10_000_000, description="Steps per trial.")
    seeds: list[int] = Field(
        default_factory=lambda: [0],
        description="Seeds: an int N (seeds 0..N-1) or an explicit list of non-negative ints.",
    )
    world: WorldSection = Field(
        default_factory=WorldSection, description="Latent space shared by users and content."
    )
    users: ComponentSpec = Field(
        default_factory=lambda: ComponentSpec(model="logit"),
        description="User model: `model` (a registered name) plus its parameters.",
    )
    content: ComponentSpec = Field(
        default_factory=lambda: ComponentSpec(model="creators"),
        description="Content model: `model` plus its parameters.",
    )
    platform: PlatformSection = Field(
        default_factory=PlatformSection, description="Retrieval, serving, log, retraining."
    )
    agents: list[AgentSpec] = Field(
        min_length=1,
        description="Agents to compare: each `model` plus its parameters and an optional "
        "`name` (label in metrics, default the model name; unique, at most 100 printable "
        "characters, no spaces at either end).",
    )
    metrics: list[str] = Field(
        default_factory=_default_metrics, min_length=1, description="Metric groups."
    )
    measures: MeasuresSection = Field(
        default_factory=MeasuresSection,
        description="Cadence and sample size of the expensive (pairwise) measures.",
    )
    sweep: dict[str, list[Any]] = Field(
        default_factory=dict,
        description="Grid: field path -> list of values (cartesian product); the values of one "
        "path are distinct numbers, strings or booleans, one kind per path (they name the points "
        "in the rows); settings that are lists or mappings are compared as `variants`.",
    )
    variants: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Named variants of the world, each a mapping of field path -> value "
        "(e.g. `repeated: {platform.startup_steps: 10, platform.retrain_every: 1}`; `{}` = the "
        "scenario as written; a `null` value removes a field, so its default applies); every "
        "variant runs every agent, seed and sweep point, with a `variant` column in the rows. "
        "Neither a variant nor a sweep changes `steps`, `seeds`, `name`, `output` or `execution`.",
    )
    output: OutputSection = Field(
        default_factory=OutputSection, description="Where and what the run writes."
    )
    execution: ExecutionSection = Field(
        default_factory=ExecutionSection,
        description="Backend (Ray or local), cluster address, shards and resources.",
    )

    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", v):
            raise ValueError(
                "must be at most 100 letters, digits, '_', '.' or '-' (it prefixes run ids)"
            )
        return v

    @field_validator("seeds", mode="before")
    @classmethod
    def _check_seeds(cls, v: Any) -> Any:
        if isinstance(v, bool):
            raise ValueError("expects a positive int N or a list of non-negative ints")
        if isinstance(v, int):
            if v > MAX_SEEDS:
                raise ValueError(f"expects at most {MAX_SEEDS:,} seeds")
            if v <= 0:
                raise ValueError(
                    "expects a positive number of seeds N (seeds 0..N-1) or a list of distinct "
                    "non-negative ints"
                )
            return list(range(v))
        if isinstance(v, list):
            if not v:
                raise ValueError("expects at least one seed")
            if any(isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < 2**63 for s in v):
                raise ValueError("expects a list of non-negative ints below 2**63")
            if len(set(v)) != len(v):
                raise ValueError("seeds must be distinct")
            return v
        raise ValueError("expects a positive int N or a list of non-negative ints")

    @field_validator("metrics")
    @classmethod
    def _check_metrics(cls, v: list[str]) -> list[str]:
        twice = sorted({m for m in v if v.count(m) > 1})
        if twice:
            raise ValueError(f"each metric group at most once; listed twice: {', '.join(twice)}")
        return v

    @field_validator("sweep")
    @classmethod
    def _check_sweep(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in v.items():
            if not values:
                raise ValueError(
                    f"sweep parameter '{key}' has an empty list of values; give at least one value"
                )
            if key.split(".")[0].split("[")[0] in _NOT_SWEPT + ("variants",):
                more = " (every trial runs the scenario's steps)" if key == "steps" else ""
                raise ValueError(f"sweep parameter '{key}' cannot be swept{more}")
            kinds = {_sweep_kind(key, x) for x in values}
            if len(kinds) > 1:
                raise ValueError(
                    f"sweep parameter '{key}' mixes {' and '.join(sorted(kinds))} values "
                    f"({_short(values)}); give every value as one kind (e.g. true/false for a "
                    "switch)"
                )
            seen = [float(x) if kinds == {"number"} else x for x in values]
            twice = [repr(x) for i, x in enumerate(values) if seen[i] in seen[:i]]
            if twice:
                raise ValueError(
                    f"sweep parameter '{key}' lists {', '.join(twice)[:60]} more than once; "
                    "each value makes one point"
                )
        return v

    @field_validator("variants")
    @classmethod
    def _check_variants(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name, overrides in v.items():
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
                raise ValueError(f"variant name {name!r} must be letters, digits, '_', '.' or '-'")
            for key in overrides:
                if key.split(".")[0].split("[")[0] in _NOT_SWEPT + ("variants",):
                    raise ValueError(f"variant '{name}': '{key}' cannot be changed by a variant")
        return v

    def sweep_columns(self) -> list[str]:
        """The columns that identify a sweep point: ``variant`` (with variants), sweep paths."""
        return (["variant"] if self.variants else []) + list(self.sweep)

    def agent_labels(self) -> list[str]:
        """Labels of the agents, in order."""
        return [a.label for a in self.agents]

    def resolved_dict(self) -> dict[str, Any]:
        """The fully resolved scenario (every default filled in) as plain data."""
        data = self.model_dump(mode="json", exclude={"users", "content", "agents", "platform"})
        platform = self.platform.model_dump(mode="json", exclude={"rerankers"})
        platform["rerankers"] = [r.resolved() for r in self.platform.rerankers]
        out = {
            "name": data.pop("name"),
            "description": data.pop("description"),
            "steps": data.pop("steps"),
            "seeds": data.pop("seeds"),
            "world": data.pop("world"),
            "users": self.users.resolved(),
            "content": self.content.resolved(),
            "platform": platform,
            "agents": [a.resolved() for a in self.agents],
        }
        out.update(data)
        return out

    def to_yaml(self) -> str:
        """The resolved scenario as YAML (loads back to an equal scenario)."""
        return yaml.safe_dump(self.resolved_dict(), sort_keys=False)
