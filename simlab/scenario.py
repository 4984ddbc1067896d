"""Scenario files: the pydantic schema, YAML loading, ``--set`` overrides and clear errors.

A scenario describes one world (users, content, platform), the agents to compare in it,
the seeds, an optional sweep grid, the metrics and where to write the run. Loading is
two-phase: the top-level schema below is validated by pydantic, then every component
section (``users``, ``content``, each agent and re-ranker) is resolved through
:mod:`simlab.registry` and its own ``Params`` model validates the remaining keys.

Every problem becomes a :class:`~simlab.errors.ScenarioError` whose lines read
``<field path>: <what is wrong>, got <value>; <what is allowed>``; unknown keys and model
names get a did-you-mean suggestion.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
)

from simlab import (
    registry,
    rules,  # noqa: F401 - registers the built-in cross-field rules
)
from simlab.errors import ScenarioError
from simlab.params import StrictModel
from simlab.validation import (
    MAX_SEEDS,
    check_caps,
    cross_field_errors,
    format_errors,
    format_path,
    metric_errors,
    raw_component_errors,
    resolve_component,
    short,
)
from simlab.yaml_io import load_yaml, read_yaml_file

__all__ = [
    "ParamsModel",
    "Scenario",
    "WorldSection",
    "ComponentSpec",
    "AgentSpec",
    "PlatformSection",
    "OutputSection",
    "SweepPoint",
    "load_scenario",
    "parse_scenario",
    "read_scenario_data",
    "apply_overrides",
    "parse_set",
    "format_path",
]


ParamsModel = StrictModel
"""Base class for a component's ``Params``: a pydantic model that rejects unknown keys."""


class WorldSection(StrictModel):
    """The latent space shared by users and content."""

    dim: int = Field(32, gt=0, le=4096, description="Dimension d of interest and item vectors.")
    num_topics: int = Field(16, gt=0, description="Number of latent topics (cluster centres).")
    topic_spread: float = Field(
        1.0, gt=0, description="Scale of topic centres; larger = more separated topics."
    )


class ComponentSpec(BaseModel):
    """A pluggable component: ``model`` names a registry entry, other keys are its params."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(description="Registered name, or 'module:Class' for your own class.")
    _params: BaseModel | None = PrivateAttr(default=None)
    _cls: type | None = PrivateAttr(default=None)

    @property
    def raw_params(self) -> dict[str, Any]:
        """The keys other than ``model`` as written in the scenario."""
        return dict(self.model_extra or {})

    @property
    def params(self) -> BaseModel:
        """The validated params (after :func:`parse_scenario` resolved the component)."""
        if self._params is None:
            raise RuntimeError(f"component '{self.model}' has not been resolved")
        return self._params

    @property
    def cls(self) -> type:
        """The resolved class."""
        if self._cls is None:
            raise RuntimeError(f"component '{self.model}' has not been resolved")
        return self._cls

    def resolved(self) -> dict[str, Any]:
        """``{"model": ..., **params with defaults}`` for the resolved scenario file."""
        out: dict[str, Any] = {"model": self.model}
        out.update(self.params.model_dump(mode="json"))
        return out


class AgentSpec(ComponentSpec):
    """One agent to compare; ``name`` labels it in metrics (defaults to ``model``)."""

    name: str | None = Field(None, description="Label in metrics and summaries.")
    rerankers: list[ComponentSpec] = Field(
        default_factory=list,
        description="Interventions for this agent only, applied in order after "
        "`platform.rerankers` (e.g. `[{model: calibration}, {model: fair, protected: aigc}]`).",
    )

    @property
    def label(self) -> str:
        """The agent's label: ``name`` or ``model``."""
        return self.name or self.model

    def resolved(self) -> dict[str, Any]:
        """Like :meth:`ComponentSpec.resolved`, with the label and its re-rankers."""
        out = super().resolved()
        out = {"model": out.pop("model"), "name": self.label, **out}
        if self.rerankers:
            out["rerankers"] = [r.resolved() for r in self.rerankers]
        return out


class PlatformSection(StrictModel):
    """Retrieval, serving, logging and the retrain schedule."""

    slate_size: int = Field(
        10,
        ge=0,
        description="K, items per slate; 0 = every candidate, ranked (as in Chaney et al., "
        "where users see the whole ranked catalog; the user model must accept slates of any "
        "length, as `chaney` does).",
    )
    max_candidates: int = Field(
        0,
        ge=0,
        description="Candidates per user; 0 = every live item. When the catalog is larger, "
        "each user gets a cheap random pre-selection of this many live items.",
    )
    history_length: int = Field(20, gt=0, description="H, clicked items per user in observations.")
    retrain_every: int = Field(5, gt=0, description="R, steps between retrains.")
    deploy_lag: int = Field(
        1, ge=1, description="D, a model retrained at the end of step t serves from step t + D."
    )
    log_window: int = Field(10, gt=0, description="Steps of impressions kept in the log.")
    knows_source: bool = Field(
        False, description="Whether agents see each item's source label (human/AIGC)."
    )
    rerankers: list[ComponentSpec] = Field(
        default_factory=list, description="Interventions applied in order after the agent."
    )
    rerank_depth: int = Field(
        0, ge=0, description="Items the agent ranks before re-ranking; 0 = 3 * slate_size."
    )
    exclude_consumed: bool = Field(
        False,
        description="No repeat consumption: an item a user clicked is never among that "
        "user's candidates again (each user shard keeps its users' consumed items).",
    )
    startup_steps: int = Field(
        0,
        ge=0,
        description="Start-up steps: the platform serves uniformly random rankings of "
        "`startup_candidates` (agents learn from their feedback but do not rank) and the "
        "first retrain comes after them; retrains then follow every `retrain_every` steps.",
    )
    startup_candidates: Literal["all", "new"] = Field(
        "all",
        description="Candidates during start-up: `all` (the usual retrieval) or `new` (only "
        "the items published at the step, as Chaney et al.'s start-up shows each step's new "
        "items in random order).",
    )

    def retrain_due(self, t: int) -> bool:
        """Whether the log is snapshotted for a retrain at the end of step ``t``."""
        done = t + 1 - self.startup_steps
        return done >= 0 and done % self.retrain_every == 0

    def warmup_steps(self) -> int:
        """Steps before the first retrained model serves (excluded from summaries).

        The first snapshot is taken at the end of step ``startup_steps - 1`` (with a
        start-up) or ``retrain_every - 1``, and its model serves ``deploy_lag`` steps later.
        """
        first = self.startup_steps - 1 if self.startup_steps else self.retrain_every - 1
        return first + self.deploy_lag


class MeasuresSection(StrictModel):
    """How often and on how much the expensive measures are computed."""

    every: int = Field(
        1,
        gt=0,
        le=1_000_000,
        description="Steps between the expensive population-wide measures (metric groups "
        "that declare themselves cadenced: `topics`); their columns are NaN on the steps "
        "between, and step 0 and the run's last step are always measured. Per-step "
        "measures (engagement, exposure, source, creators, ...) stay exact every step.",
    )
    pairwise_every: int = Field(
        1,
        gt=0,
        description="Steps between pairwise measures (echo/homogenization); NaN on the "
        "steps between.",
    )
    pairwise_pairs: int = Field(
        2000,
        gt=0,
        description="User pairs in the deterministic sample of pairwise measures.",
    )


class OutputSection(StrictModel):
    """Where and what the run writes."""

    dir: str = Field("runs", description="Parent folder of run directories.")
    events: bool = Field(False, description="Also write the impression/response event log.")
    flush_seconds: float = Field(
        2.0, ge=0, description="Seconds between Parquet flushes of buffered metric rows."
    )
    checkpoint_every: int = Field(
        25,
        ge=0,
        description="Steps between checkpoints of each trial's world (0 = none); used by "
        "`simlab resume`, fault recovery and `--from RUN@STEP` forks.",
    )
    keep_checkpoints: int = Field(
        0, ge=0, description="Newest checkpoints kept per trial (0 = all, so any can be forked)."
    )
    snapshot_every: int = Field(
        10,
        ge=0,
        description="Steps between snapshots of sampled users' interests and item exposure "
        "(for the dashboard's Users and Lorenz views; 0 = none).",
    )
    snapshot_users: int = Field(
        500, gt=0, description="Users in each snapshot (evenly spaced ids, the same every time)."
    )


class AgentResources(StrictModel):
    """Ray resources of the trial actor that holds the agent."""

    num_cpus: float = Field(
        1.0, ge=0, le=1024, description="CPUs reserved for the actor that holds the agent."
    )
    num_gpus: float = Field(
        0.0,
        ge=0,
        le=64,
        description="GPUs for the actor that holds the agent (1 puts a GPU model such as "
        "`generative` on a GPU worker).",
    )


class ExecutionSection(StrictModel):
    """Where the trials run: in this process, or on Ray (embedded instance or a cluster)."""

    backend: Literal["ray", "local"] = Field(
        "ray",
        description="`ray` (user shard actors plus a trial actor holding the agent; an "
        "embedded local Ray instance unless `address` is given) or `local` (everything in "
        "this process).",
    )
    address: str | None = Field(
        None,
        description="Ray cluster to join: `auto` (the cluster this machine belongs to), "
        "`ray://host:port` (Ray Client) or `host:port` (a head node's GCS); none starts an "
        "embedded local instance.",
    )
    shards: int = Field(1, ge=1, le=4096, description="User shards (actors) per world.")
    shard_cpus: float = Field(
        1.0, gt=0, le=1024, description="CPUs reserved for each user shard actor."
    )
    agent_resources: AgentResources = Field(
        default_factory=AgentResources,
        description="Ray resources of the trial actor that holds the agent (every trial).",
    )
    serving: Literal["replicas", "central"] = Field(
        "replicas",
        description="On Ray, where slates are chosen: `replicas` (an agent that declares "
        "`serving = 'replica'` scores its users inside each user shard, on model state "
        "published through the object store once per retrain, and only slates come back) "
        "or `central` (the trial actor serves every user). Falls back to `central` for "
        "agents that need central state, with re-rankers and with `output.events`.",
    )
    placement: Literal["pack", "spread"] = Field(
        "pack",
        description="How a trial's actors are placed on a cluster: `pack` onto as few nodes "
        "as possible (arrays pass without network copies), or `spread` over nodes (for "
        "populations larger than one node's memory).",
    )
    max_parallel_trials: int = Field(
        0,
        ge=0,
        le=100_000,
        description="Trials running at once; 0 = as many as the cluster's CPUs allow.",
    )
    workers: int = Field(
        1,
        ge=0,
        le=1024,
        description="Local backend: processes running trials side by side (0 = one per CPU); "
        "every trial's rows are the same whatever the number.",
    )
    threads: int = Field(
        1,
        ge=0,
        le=1024,
        description="BLAS and torch threads per trial process (0 = the libraries' default). "
        "One thread per process, and more processes for more cores, avoids spinning thread "
        "pools that slow numeric code down several times on a busy machine.",
    )
    max_restarts: int = Field(
        3,
        ge=0,
        le=1000,
        description="Times a trial is restored from its last checkpoint after a lost actor "
        "before the run fails.",
    )
    object_store_mb: int = Field(
        0,
        ge=0,
        le=1 << 22,
        description="Object store size of the embedded Ray instance in MiB (0 = 30% of "
        "memory, capped at 2 GiB).",
    )
    connect_timeout: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="Seconds to wait for the Ray cluster at `address` to answer before the "
        "run fails (exit code 2).",
    )

    @field_validator("address")
    @classmethod
    def _check_address(cls, v: str | None) -> str | None:
        if v is None or v == "auto":
            return v
        m = re.fullmatch(r"(ray://)?[A-Za-z0-9_.\-\[\]:]+:(\d{1,5})", v)
        if m and 0 < int(m.group(2)) < 65536:
            return v
        raise ValueError("expects `auto`, `ray://host:port` or `host:port` (port 1..65535)")


_NOT_SWEPT = ("sweep", "seeds", "name", "output", "execution")
"""Top-level fields a sweep or a variant may not change."""


def _default_metrics() -> list[str]:
    names = registry.names("metrics")
    return [n for n in names if getattr(registry.resolve("metrics", n), "on_by_default", True)]


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
        "`name` (label in metrics, default the model name).",
    )
    metrics: list[str] = Field(
        default_factory=_default_metrics, min_length=1, description="Metric groups."
    )
    measures: MeasuresSection = Field(
        default_factory=MeasuresSection,
        description="Cadence and sample size of the expensive (pairwise) measures.",
    )
    sweep: dict[str, list[Any]] = Field(
        default_factory=dict, description="Grid: field path -> list of values (cartesian product)."
    )
    variants: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Named variants of the world, each a mapping of field path -> value "
        "(e.g. `repeated: {platform.startup_steps: 10, platform.retrain_every: 1}`; `{}` = the "
        "scenario as written; a `null` value removes a field, so its default applies); every "
        "variant runs every agent, seed and sweep point, with a `variant` column in the rows.",
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
            seen = [repr(x) for x in values]
            twice = sorted({x for x in seen if seen.count(x) > 1})
            if twice:
                raise ValueError(
                    f"sweep parameter '{key}' lists {', '.join(twice)[:60]} more than once; "
                    "each value makes one point"
                )
            if key.split(".")[0].split("[")[0] in _NOT_SWEPT + ("variants",):
                raise ValueError(f"sweep parameter '{key}' cannot be swept")
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


# --------------------------------------------------------------------------------------
# Paths and overrides
# --------------------------------------------------------------------------------------

_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _parse_path(path: str) -> list[str | int]:
    """``"agents[2].factors"`` or ``"agents.2.factors"`` -> ``["agents", 2, "factors"]``."""
    if not path or path.startswith(".") or path.endswith(".") or ".." in path:
        raise ScenarioError(f"--set: malformed field path '{path}'")
    tokens: list[str | int] = []
    pos = 0
    for m in _TOKEN.finditer(path):
        gap = path[pos : m.start()]
        if gap not in ("", "."):
            raise ScenarioError(f"--set: malformed field path '{path}'")
        name, index = m.group(1), m.group(2)
        tokens.append(int(index) if index is not None else (int(name) if name.isdigit() else name))
        pos = m.end()
    if pos != len(path):
        raise ScenarioError(f"--set: malformed field path '{path}'")
    return tokens


def parse_set(item: str) -> tuple[str, Any]:
    """Parse one ``path.to.field=value`` override; the value is read as YAML."""
    if "=" not in item:
        raise ScenarioError(f"--set '{item}': expected path.to.field=value")
    path, _, text = item.partition("=")
    path = path.strip()
    try:
        value = load_yaml(text, "value") if text.strip() else ""
    except ScenarioError as e:
        problem = str(e).removeprefix("value").lstrip(":0123456789 ")
        raise ScenarioError(
            f"--set {path}: value '{short(text)[1:-1]}' is not valid YAML ({problem}); "
            "quote it to pass a string"
        ) from None
    _parse_path(path)
    return path, value


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set ``path`` in nested ``data`` (dicts and lists), creating missing mapping keys.

    A ``None`` value (YAML ``null``) for a mapping key removes the key, so the field's
    default applies (every field whose default is not ``None`` rejects ``None`` anyway).
    """
    tokens = _parse_path(path)
    node: Any = data
    for i, tok in enumerate(tokens):
        last = i == len(tokens) - 1
        where = format_path(tokens[: i + 1])
        if isinstance(node, list):
            if not isinstance(tok, int):
                raise ScenarioError(f"{where}: '{format_path(tokens[:i])}' is a list; use an index")
            if not -len(node) <= tok < len(node):
                raise ScenarioError(
                    f"{where}: index out of range; '{format_path(tokens[:i])}' has "
                    f"{len(node)} entries"
                )
        elif isinstance(node, dict):
            if isinstance(tok, int):
                raise ScenarioError(
                    f"{where}: '{format_path(tokens[:i])}' is a mapping, not a list"
                )
            if not last and tok not in node:
                if isinstance(tokens[i + 1], int):
                    raise ScenarioError(
                        f"{where}: not set in the scenario, so it has no entries to index; "
                        f"set the whole list instead, e.g. {where}=[...]"
                    )
                node[tok] = {}
        else:
            raise ScenarioError(
                f"{where}: cannot set inside '{format_path(tokens[:i])}', which is "
                f"{type(node).__name__} {node!r}"
            )
        if last and value is None and isinstance(node, dict):
            node.pop(tok, None)  # null removes the field: its default applies
        elif last:
            node[tok] = value
        else:
            node = node[tok]


def apply_overrides(data: dict[str, Any], overrides: Iterable[str | tuple[str, Any]]) -> dict:
    """Return a deep copy of ``data`` with ``--set`` overrides applied."""
    out = copy.deepcopy(data)
    for item in overrides:
        path, value = parse_set(item) if isinstance(item, str) else item
        set_path(out, path, value)
    return out


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


def load_scenario(path: str | Path, overrides: Iterable[str | tuple[str, Any]] = ()) -> Scenario:
    """Load, override and validate a scenario YAML file.

    Args:
        path: the YAML file.
        overrides: ``"path.to.field=value"`` strings (as given to ``--set``) or
            ``(path, value)`` pairs.

    Raises:
        ScenarioError: with one line per problem, each naming the field path.
    """
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
