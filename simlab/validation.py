"""Scenario checks beyond one field: components, protocols, caps and cross-field rules.

:func:`simlab.scenario.parse_scenario` validates the schema with pydantic and then calls the
checks here, collecting every problem before it reports (a missing top-level field does not
hide an unknown agent model):

- **components**: each ``model`` is resolved in :mod:`simlab.registry` (a ``module:Class``
  path is checked for form before anything is imported), its ``Params`` validate the other
  keys, and the class is checked against the protocol of its kind (:data:`PROTOCOLS`), so
  a user model given as an agent, or an agent as a re-ranker, is refused at validate time;
- **caps** (:data:`MAX_SEEDS`, :data:`MAX_SWEEP_VALUES`, :data:`MAX_TRIALS`) are checked on
  the raw data, before a seed list or a sweep grid is built;
- **cross-field rules** (:func:`rule`; slate size against the candidates per user and the
  catalog, re-rank depth against the slate, a GPU asked for where there is none) run on the
  validated scenario and on every sweep point.

Every line reads ``<field path>: <what is wrong>, got <value>; <what is allowed>``.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from simlab import registry
from simlab.errors import RegistryError, did_you_mean

__all__ = [
    "MAX_SEEDS",
    "MAX_SWEEP_VALUES",
    "MAX_TRIALS",
    "PROTOCOLS",
    "format_path",
    "format_errors",
    "short",
    "check_caps",
    "check_protocol",
    "resolve_component",
    "resolve_kind",
    "foreign_code",
    "raw_component_errors",
    "rule",
    "cross_field_errors",
]

MAX_SEEDS = 10_000
"""Most seeds in one scenario (an int N or a list)."""
MAX_SWEEP_VALUES = 1_000
"""Most values of one swept field."""
MAX_TRIALS = 10_000
"""Most trials (agents x seeds x sweep points) in one run."""

_CLASS_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


# ---------------------------------------------------------------------- formatting
def short(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters (a huge value is never echoed in full)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_path(loc: Sequence[str | int]) -> str:
    """``("agents", 2, "factors")`` -> ``"agents[2].factors"``.

    A mapping's key that failed as a key (pydantic's ``"[key]"``) is named as one:
    ``("sweep", 1, "[key]")`` -> ``"sweep key 1"``; a YAML ``true:`` key is ``true``, not ``[1]``.
    """
    if len(loc) >= 2 and loc[-1] == "[key]":
        return f"{format_path(loc[:-2])} key {loc[-2]!r}"
    out = ""
    for part in loc:
        if isinstance(part, bool):
            out += ("." if out else "") + str(part).lower()
        elif isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "<scenario>"


def _model_at(model: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The pydantic model class that owns the last element of ``loc``."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(part)
        if field is None:
            return None
        ann = field.annotation
        args = getattr(ann, "__args__", ())
        current = next(
            (a for a in (ann, *args) if isinstance(a, type) and issubclass(a, BaseModel)), None
        )
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _allowed_fields(model: type[BaseModel] | None) -> list[str]:
    if model is None:
        return []
    return [n for n, f in model.model_fields.items() if not f.exclude]


def _is_section(value: Any) -> bool:
    """Whether ``value`` is a mapping of fields or a non-empty list of such mappings."""
    if isinstance(value, list):
        return bool(value) and all(isinstance(v, Mapping) for v in value)
    return isinstance(value, Mapping)


def format_errors(
    err: ValidationError, model: type[BaseModel], prefix: Sequence[str | int] = ()
) -> list[str]:
    """One line per pydantic error: the field path, what is wrong, the value, what is allowed."""
    lines = []
    for e in err.errors():
        loc = [p for p in e["loc"] if p not in ("function-after", "function-before")]
        path = format_path([*prefix, *loc])
        kind = e["type"]
        msg = e["msg"].removeprefix("Value error, ")
        if kind == "extra_forbidden":
            allowed = _allowed_fields(_model_at(model, loc))
            name = str(loc[-1])
            if allowed:
                hint = f"{did_you_mean(name, allowed)} Allowed: {', '.join(allowed)}"
            else:
                hint = " This component takes no parameters."
            lines.append(f"{path}: unknown field '{short(name)[1:-1]}'.{hint}")
        elif kind == "invalid_key" or loc[-1:] == ["[key]"]:
            # loc ends with the key as pydantic coerced it (True reads 1), then "[key]"
            where = loc[:-2] if loc[-1] == "[key]" else loc[:-1]
            lines.append(
                f"{format_path([*prefix, *where])}: a key must be a string, got "
                f"{short(e.get('input'))} (YAML reads an unquoted true, false, null or number as "
                "another type: quote the key)"
            )
        elif kind == "missing":
            lines.append(f"{path}: required field is missing")
        elif kind in ("model_type", "model_attributes_type", "dict_type"):
            lines.append(f"{path}: expected a mapping of fields, got {short(e.get('input'))}")
        elif kind == "finite_number":
            lines.append(f"{path}: expects a finite number, got {short(e.get('input'))}")
        elif kind == "value_error" and _is_section(e.get("input")):
            # A check across a whole section (or a list of them, such as content.phases):
            # the message names the fields; the section's full contents would only bury it.
            lines.append(f"{path}: {msg}")
        else:
            got = "; got" if ", got" in msg else ", got"  # pydantic's text may say "got" already
            lines.append(f"{path}: {msg}{got} {short(e.get('input'))}")
    return lines


# ---------------------------------------------------------------------- caps
def _count(values: Any) -> int:
    return len(values) if isinstance(values, list) else 1


def check_caps(data: dict[str, Any]) -> list[str]:
    """Seeds, sweep values and trials over their caps, checked before anything is built.

    An offending ``seeds`` or ``sweep`` is replaced in ``data`` by a small stand-in, so the
    schema check that follows still reports every other problem.
    """
    errors = []
    seeds = data.get("seeds")
    if isinstance(seeds, int) and not isinstance(seeds, bool) and seeds > MAX_SEEDS:
        errors.append(f"seeds: {seeds} seeds is more than the {MAX_SEEDS:,} allowed")
        data["seeds"] = 1
    elif isinstance(seeds, list) and len(seeds) > MAX_SEEDS:
        errors.append(f"seeds: {len(seeds):,} seeds is more than the {MAX_SEEDS:,} allowed")
        data["seeds"] = 1
    sweep = data.get("sweep")
    if isinstance(sweep, Mapping):
        for key, values in sweep.items():
            if isinstance(values, list) and len(values) > MAX_SWEEP_VALUES:
                errors.append(
                    f"sweep.{short(key)[1:-1]}: {len(values):,} values is more than the "
                    f"{MAX_SWEEP_VALUES:,} allowed for one field"
                )
        if errors:
            data["sweep"] = {}
        points = math.prod(_count(v) for v in sweep.values()) if not errors else 1
        agents = data.get("agents")
        n_seeds = _count(data.get("seeds")) if not isinstance(seeds, int) else max(seeds, 1)
        trials = points * max(_count(agents), 1) * n_seeds
        if trials > MAX_TRIALS:
            errors.append(
                f"sweep: {points:,} sweep points x {_count(agents)} agents x {n_seeds} seeds = "
                f"{trials:,} trials, more than the {MAX_TRIALS:,} allowed in one run; sweep "
                "fewer values or split the grid over several runs"
            )
            data["sweep"] = {}
    return errors


# ---------------------------------------------------------------------- protocols
PROTOCOLS: dict[str, tuple[str, tuple[str, ...]]] = {
    "users": ("a user model", ("arrivals", "respond", "observable_features", "interests")),
    "content": ("a content model", ("step", "catalog", "latent", "new_item_sources")),
    "agents": ("an agent", ("act",)),
    "rerankers": ("a re-ranker", ("rerank",)),
    "metrics": ("a metric", ("observe", "columns")),
}
"""Per registry kind: what it is called and the attributes its classes must have."""


def _missing_members(cls: type, members: tuple[str, ...]) -> list[str]:
    out = []
    for name in members:
        owner = next((b for b in cls.__mro__ if name in vars(b)), None)
        # a base class's hook that raises NotImplementedError is not an implementation
        if owner is None or (
            owner.__module__.startswith("simlab") and owner.__name__ in ("Agent", "Reranker")
        ):
            out.append(name)
    return out


def check_protocol(cls: type, kind: str) -> str | None:
    """Why ``cls`` is not of ``kind`` (naming what it lacks and what it looks like), or None."""
    what, members = PROTOCOLS[kind]
    missing = _missing_members(cls, members)
    if not missing:
        return None
    looks = [
        PROTOCOLS[k][0]
        for k in PROTOCOLS
        if k != kind and not _missing_members(cls, PROTOCOLS[k][1])
    ]
    hint = f"; it looks like {' or '.join(looks)}" if looks else ""
    lacking = ", ".join(f"{m}()" if m != "columns" else m for m in missing)
    return f"{cls.__module__}:{cls.__qualname__} is not {what}: it lacks {lacking}{hint}"


def _check_class_path(name: str) -> str | None:
    if ":" in name and not _CLASS_PATH.match(name):
        return (
            f"malformed class path {short(name)}; expected 'package.module:ClassName' "
            "(dotted module, one ':', a class name)"
        )
    return None


_foreign_code = contextvars.ContextVar("simlab_foreign_code", default=True)


@contextlib.contextmanager
def foreign_code(allowed: bool) -> Iterator[None]:
    """Whether ``module:Class`` entries outside simlab may be imported within the block.

    A run directory's ``scenario.yaml`` may come from someone else: importing a module it
    names runs that module's code, so ``simlab resume`` and ``--from`` load it with
    ``foreign_code(False)`` unless the user passes ``--trust-code``.
    """
    token = _foreign_code.set(allowed)
    try:
        yield
    finally:
        _foreign_code.reset(token)


def resolve_kind(kind: str, name: Any) -> type:
    """``registry.resolve`` with the path's form checked first and the protocol after.

    Raises:
        RegistryError: unknown name, malformed or unimportable path, or a class of another
            kind.
    """
    if isinstance(name, str):
        problem = _check_class_path(name)
        if problem:
            raise RegistryError(problem)
        foreign = ":" in name and not name.startswith("simlab.")
        if foreign and name not in registry.names(kind) and not _foreign_code.get():
            raise RegistryError(
                f"{short(name)} names code outside simlab in a run directory's scenario; "
                "importing it would run that code, so pass --trust-code if you trust "
                "where the run directory came from"
            )
    cls = registry.resolve(kind, name)
    problem = check_protocol(cls, kind)
    if problem:
        raise RegistryError(problem)
    return cls


def resolve_component(spec: Any, kind: str, loc: list[str | int]) -> list[str]:
    """Resolve ``spec.model``, validate its params and keep both on ``spec``; error lines."""
    try:
        cls = resolve_kind(kind, spec.model)
    except RegistryError as e:
        return [f"{format_path([*loc, 'model'])}: {e}"]
    params_model = getattr(cls, "Params", None)
    if params_model is None:
        return [f"{format_path([*loc, 'model'])}: class {cls.__name__} declares no Params model"]
    try:
        spec._params = params_model.model_validate(spec.raw_params)
    except ValidationError as e:
        return format_errors(e, params_model, loc)
    spec._cls = cls
    return []


class _Raw:
    """A component entry of scenario data that did not pass the schema (for its errors)."""

    def __init__(self, data: Mapping[str, Any], skip: tuple[str, ...]) -> None:
        self.model = data.get("model")
        self.raw_params = {k: v for k, v in data.items() if k != "model" and k not in skip}
        self._params = self._cls = None


def _raw_entries(data: Mapping[str, Any]):
    """``(kind, loc, entry, skip)`` for every component entry in raw scenario data."""
    for kind in ("users", "content"):
        if isinstance(data.get(kind), Mapping):
            yield kind, [kind], data[kind], ()
    agents = data.get("agents")
    for i, agent in enumerate(agents if isinstance(agents, list) else []):
        if isinstance(agent, Mapping):
            yield "agents", ["agents", i], agent, ("name", "rerankers")
            rr = agent.get("rerankers")
            for j, r in enumerate(rr if isinstance(rr, list) else []):
                if isinstance(r, Mapping):
                    yield "rerankers", ["agents", i, "rerankers", j], r, ()
    platform = data.get("platform")
    rr = platform.get("rerankers") if isinstance(platform, Mapping) else None
    for j, r in enumerate(rr if isinstance(rr, list) else []):
        if isinstance(r, Mapping):
            yield "rerankers", ["platform", "rerankers", j], r, ()


def raw_component_errors(data: Mapping[str, Any], reported: list[str]) -> list[str]:
    """Errors of the components of data whose schema check failed elsewhere.

    Components whose path already has an error in ``reported`` are skipped.
    """
    out = []
    for kind, loc, entry, skip in _raw_entries(data):
        where = format_path(loc)
        if not isinstance(entry.get("model"), str):
            continue  # the schema check reported the missing or non-string model
        if any(line == where or line.startswith((f"{where}:", f"{where}.")) for line in reported):
            continue
        out += resolve_component(_Raw(entry, skip), kind, loc)
    metrics = data.get("metrics")
    known = registry.names("metrics")
    for i, name in enumerate(metrics if isinstance(metrics, list) else []):
        if isinstance(name, str):
            out += metric_errors(i, name, known)
    return out


def metric_errors(i: int, name: str, known: list[str]) -> list[str]:
    """The problem of ``metrics[i]``: an unknown name, or a ``module:Class`` that is not one."""
    if name in known:
        return []
    if ":" in name:
        try:
            resolve_kind("metrics", name)
        except RegistryError as e:
            return [f"metrics[{i}]: {e}"]
        return []
    return [
        f"metrics[{i}]: unknown metric '{short(name)[1:-1]}'.{did_you_mean(name, known)} "
        f"Allowed: {', '.join(known)}, or 'module:Class' for your own metric"
    ]


# ---------------------------------------------------------------------- cross-field rules
Rule = Callable[[Any], list[str]]
_RULES: list[Rule] = []


def rule(fn: Rule) -> Rule:
    """Register a cross-field rule: ``fn(scenario) -> error lines`` (run at validate time)."""
    _RULES.append(fn)
    return fn


def cross_field_errors(scenario: Any) -> list[str]:
    """Every registered rule's errors for a validated scenario (components resolved)."""
    out = []
    for fn in _RULES:
        out += fn(scenario)
    return out
