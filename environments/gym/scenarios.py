"""The scenario behind a Gymnasium env: any file, bundled name or mapping, any registered model.

:func:`build_scenario` resolves what an env's ``scenario``/``scenario_data``/``overrides``
arguments name:

* nothing: the bundled ``quickstart`` scenario shrunk by :data:`GYM_DEFAULTS` (a small,
  fast world in which every user visits every step and unhappy users churn);
* ``scenario``: a YAML path or a bundled name (``"recsim_ng"``, ``"experiments/homogenization"``,
  see :func:`simlab.bundled.bundled_names`), used as written;
* ``scenario_data`` (or a mapping given as ``scenario``): an inline scenario mapping, used
  as written.

The caller's ``overrides`` then apply. A default (one of :data:`GYM_DEFAULTS`) or a key the
base scenario sets for its own model is applied only when the model finally chosen accepts
it: ``overrides={"users": {"model": "interest-evolution"}}`` or ``{"users.model":
"interest-evolution"}`` on the default scenario drops the logit-only keys
(``return_prob``, ``drift_rate``, ...) instead of failing on them. Keys the caller sets
explicitly are always applied, so a typo in them is still an error naming the field.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from simlab import registry
from simlab.bundled import scenario_path
from simlab.errors import RegistryError, ScenarioError
from simlab.scenario import (
    Scenario,
    apply_overrides,
    parse_scenario,
    parse_set,
    read_scenario_data,
)

__all__ = [
    "DEFAULT_SCENARIO",
    "GYM_DEFAULTS",
    "Overrides",
    "build_scenario",
    "finite_float",
    "fixed_candidates",
    "is_int",
    "override_pairs",
    "positive_int",
    "step_budget",
]

DEFAULT_SCENARIO = "quickstart"
"""The bundled scenario used when neither ``scenario`` nor ``scenario_data`` is given."""

GYM_DEFAULTS: dict[str, Any] = {
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
"""Small-world overrides of the default scenario, applied before the caller's ``overrides``.

Every user visits every step (``return_prob: 1``), so an env step is one visit, and a user
whose satisfaction (a moving average of engagement) stays under 0.1 for 8 visits in a row
churns (``terminated``). A default whose model does not take it is skipped.
"""

Overrides = Mapping[str, Any] | Iterable[str | tuple[str, Any]] | None

_SECTIONS = {"users": "logit", "content": "creators"}
"""Component sections whose keys depend on the model, with the schema's default model."""


def override_pairs(overrides: Overrides) -> list[tuple[str, Any]]:
    """Overrides as ``(path, value)`` pairs (from a mapping, ``"path=value"`` strings or pairs)."""
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        items: list[Any] = list(overrides.items())
    elif isinstance(overrides, str):
        items = [overrides]
    else:
        items = list(overrides)
    pairs = []
    for item in items:
        if isinstance(item, str):
            pairs.append(parse_set(item))
        elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            pairs.append(item)
        else:
            raise TypeError(
                "Expects `overrides` to be a mapping, 'path=value' strings or (path, value) "
                f"pairs, actual item: {item!r}"
            )
    return pairs


def _accepted(section: str, model: Any) -> set[str] | None:
    """Keys the ``model`` of ``section`` accepts (``None``: unknown model, keep everything)."""
    if not isinstance(model, str):
        return None
    try:
        cls = registry.resolve(section, model)
    except RegistryError:
        return None  # parse_scenario reports the unknown model, naming the field
    params = getattr(cls, "Params", None)
    return None if params is None else {"model", *params.model_fields}


def _explicit_keys(pairs: list[tuple[str, Any]], section: str) -> set[str]:
    """Keys of ``section`` that the caller's overrides set by name."""
    keys: set[str] = set()
    for path, value in pairs:
        head, _, rest = path.partition(".")
        if head != section:
            continue
        if rest:
            keys.add(rest.split(".")[0].split("[")[0])
        elif isinstance(value, Mapping):
            keys.update(value)
    return keys


def _applicable(
    base: dict[str, Any], defaults: list[tuple[str, Any]], overrides: list[tuple[str, Any]]
) -> dict[str, Any]:
    """``base`` with the defaults and overrides, minus inherited keys the models reject."""
    final = apply_overrides(base, overrides)
    keep = []
    for path, value in defaults:
        section = path.split(".")[0]
        if section in _SECTIONS:
            spec = final.get(section) or {}
            accepted = _accepted(section, spec.get("model", _SECTIONS[section]))
            if accepted is not None and path.split(".")[1] not in accepted:
                continue
        keep.append((path, value))
    data = apply_overrides(base, [*keep, *overrides])
    for section, default_model in _SECTIONS.items():
        spec = data.get(section)
        if not isinstance(spec, dict):
            continue
        model = spec.get("model", default_model)
        base_spec = base.get(section) or {}
        if model == base_spec.get("model", default_model):
            continue  # same model: the scenario's own keys are its own business
        accepted = _accepted(section, model)
        if accepted is None:
            continue
        explicit = _explicit_keys(overrides, section)
        for key in [k for k in spec if k not in accepted and k not in explicit]:
            del spec[key]
    return data


def build_scenario(
    scenario: str | Path | None = None,
    scenario_data: Mapping[str, Any] | None = None,
    overrides: Overrides = None,
    forced: Overrides = None,
    defaults: Overrides = None,
) -> Scenario:
    """The scenario of a gym env (see the module docstring for the order of the layers).

    Args:
        scenario: a scenario YAML path or a bundled scenario name (default: the bundled
            ``quickstart`` with :data:`GYM_DEFAULTS`); a mapping is taken as
            ``scenario_data``.
        scenario_data: an inline scenario mapping instead of a file.
        overrides: the caller's ``{"path.to.field": value}``, ``"path=value"`` strings or
            pairs.
        forced: overrides the env itself needs (population size), applied last.
        defaults: extra defaults of the env for the default scenario (before ``overrides``).

    Raises:
        ValueError: if both ``scenario`` and ``scenario_data`` are given.
        TypeError: ``scenario`` of another type (a number, a list, ...).
        ScenarioError: on any invalid field, naming its path (and the file).
    """
    if scenario is not None and scenario_data is not None:
        raise ValueError("Expects at most one of `scenario` and `scenario_data`, got both")
    if isinstance(scenario, Mapping):  # inline data, as `scenario_data` (and the creators env)
        scenario, scenario_data = None, scenario
    elif not isinstance(scenario, str | os.PathLike | None):
        raise TypeError(
            "Expects `scenario` to be a YAML path, a bundled scenario name or a mapping of "
            f"scenario fields, actual type: {type(scenario).__name__}"
        )
    pairs = override_pairs(overrides)
    # the scenario's agents are not used (the policy serves), so a cheap placeholder replaces
    # them: the world still needs one to build, and it never learns or retrains anything
    tail = [("agents", [{"model": "random"}]), *override_pairs(forced)]
    source = "<scenario_data>"
    if scenario_data is not None:
        if not isinstance(scenario_data, Mapping):
            raise TypeError(
                "Expects `scenario_data` to be a mapping of scenario fields, actual type: "
                f"{type(scenario_data).__name__}"
            )
        base, gym_defaults = copy.deepcopy(dict(scenario_data)), []
    else:
        path = scenario_path(DEFAULT_SCENARIO if scenario is None else scenario)
        source = str(path)
        base = read_scenario_data(path)
        if not isinstance(base, Mapping):
            raise ScenarioError(f"{path}: the top level must be a mapping of scenario fields")
        gym_defaults = []
        if scenario is None:
            gym_defaults = [*GYM_DEFAULTS.items(), *override_pairs(defaults)]
    data = _applicable(dict(base), gym_defaults, pairs)
    try:
        built = parse_scenario(data, tail, source=source)
    except ScenarioError as e:
        if source.startswith("<"):
            raise
        raise ScenarioError(f"{source}: " + str(e).replace("\n", f"\n{source}: ")) from None
    chosen = {path for path, _ in pairs}
    # a default number of candidates may exceed a small catalog (one that starts empty)
    default_candidates = bool(gym_defaults) and "platform.max_candidates" not in chosen
    return fixed_candidates(fixed_slate(built), default_candidates=default_candidates)


def fixed_slate(scenario: Scenario) -> Scenario:
    """``scenario`` with a fixed slate: ``slate_size: 0`` becomes the gym default (warned).

    The action space needs one length; ``slate_size: 0`` (every candidate) has none.
    """
    if scenario.platform.slate_size:
        return scenario
    k = GYM_DEFAULTS["platform.slate_size"]
    gym.logger.warn(
        f"platform.slate_size is 0 (every candidate, ranked) but the envs' action spaces need "
        f"a fixed slate: using {k}; pass overrides={{'platform.slate_size': K}} to choose"
    )
    platform = scenario.platform.model_copy(update={"slate_size": k})
    return scenario.model_copy(update={"platform": platform})


def fixed_candidates(
    scenario: Scenario, probe_steps: int = 3, default_candidates: bool = False
) -> Scenario:
    """``scenario`` with a fixed number of candidates per user, as the envs' spaces need.

    ``platform.max_candidates: 0`` means every live item. That is kept when the catalog's
    size does not change over the first ``probe_steps`` steps of the content model (a static
    corpus such as RecSim's); otherwise ``max_candidates`` becomes
    ``GYM_DEFAULTS["platform.max_candidates"]`` (at most the smallest catalog seen), with a
    warning naming the override that chooses another number. A number of candidates that
    is the gym default (``default_candidates``), not the caller's, is lowered the same way
    when a catalog is smaller (one that starts with few items).

    Raises:
        ValueError: if ``probe_steps`` is below 1.
    """
    if probe_steps < 1:
        raise ValueError(f"Expects `probe_steps` to be at least 1, actual value: {probe_steps}")
    chosen = scenario.platform.max_candidates
    if chosen and not default_candidates:
        return scenario
    from simlab.world import WorldContext

    ctx = WorldContext.from_scenario(scenario, scenario.seeds[0])
    content = scenario.content.cls(scenario.content.params, ctx)
    sizes = []
    try:
        for t in range(probe_steps):
            content.step(t, None)
            sizes.append(content.catalog(scenario.platform.knows_source).num_items)
    finally:
        close = getattr(content, "close", None)
        if callable(close):
            close()
    # a number of candidates fits the smallest catalog; every live item needs a static one
    if (chosen <= min(sizes)) if chosen else (max(sizes) == min(sizes)):
        return scenario
    num = min(chosen or GYM_DEFAULTS["platform.max_candidates"], min(sizes))
    what = f"{chosen} (the gym default)" if chosen else "0 (every live item)"
    gym.logger.warn(
        f"platform.max_candidates is {what}, but the catalog has "
        f"{' -> '.join(map(str, sizes))} items over the first steps and the envs need a fixed "
        f"number of candidates: using {num} per user; pass "
        "overrides={'platform.max_candidates': N} to choose"
    )
    platform = scenario.platform.model_copy(update={"max_candidates": num})
    return scenario.model_copy(update={"platform": platform})


def is_int(value: object) -> bool:
    """Whether ``value`` is an int or a numpy int (a bool is not)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def positive_int(name: str, value: object, whole_floats: bool = False) -> int:
    """``value`` as a positive int (a numpy int too, not a bool), or a ValueError naming it.

    ``whole_floats`` also takes ``3.0`` (a step budget does, as actions do); fractions, NaN,
    strings and the rest never count.
    """
    floating = isinstance(value, (float, np.floating))
    whole = whole_floats and floating and math.isfinite(value) and value % 1 == 0
    if not (is_int(value) or whole) or value < 1:
        raise ValueError(f"Expects `{name}` to be a positive int, actual value: {value!r}")
    return int(value)


def step_budget(max_steps: object, scenario: Scenario) -> int:
    """An episode's step budget: ``max_steps`` (a positive int, ``3.0`` too), else ``steps``."""
    budget = scenario.steps if max_steps is None else max_steps
    return positive_int("max_steps", budget, whole_floats=True)


def finite_float(name: str, value: object) -> float:
    """``value`` as a finite float (ints and numpy numbers too, not a bool), or a ValueError."""
    number = isinstance(value, (int, float, np.integer, np.floating))
    if isinstance(value, bool) or not number or not math.isfinite(value):
        raise ValueError(f"Expects `{name}` to be a finite float, actual value: {value!r}")
    return float(value)
