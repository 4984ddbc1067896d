"""What the event log records about each served slate besides the feedback.

For offline learning and off-policy evaluation a log needs the context the logging policy
saw and the probability with which it chose what it served. :func:`logged_context` takes
them from the step's observation and the agent (``B`` served users, ``K`` slots, ``f``/``d``
user/item feature dimensions):

* ``user_features`` ``(B, f)`` float32: the observable user features the agent saw;
* ``item_features`` ``(B, K, d)`` float32: the observable features of the served items;
* ``propensity`` ``(B, K)`` float64: the probability that the logging policy put the item
  in that slot, given the observation (a per-slot marginal, the position-based form that
  Open Bandit Pipeline's slate estimators take). Agents that sample report it
  (``logging_policy = "sampled"``, :meth:`~simlab.agents.base.Agent.propensities`);
  deterministic agents get 1.0; agents that sample without a closed form, and slates that
  re-rankers changed, get NaN. The platform's start-up steps (``platform.startup_steps``)
  serve uniformly random slates whatever the agent: ``1 / C`` in every slot (``C``
  candidates).

:func:`logging_policy` names which of the three a trial's propensities are; the run's
manifest records it per trial. :func:`missing_propensities` names the trials of an event
table that logged NaN (an export warns with it, :class:`PropensityWarning`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from simlab.batch import Catalog, Observation, Slates
from simlab.errors import AgentContractError
from simlab.manifest import LOGGING_POLICIES

__all__ = [
    "LoggedContext",
    "join_logged",
    "logged_context",
    "logging_policy",
    "scenario_logging_policy",
    "LOGGING_POLICIES",
    "PropensityWarning",
    "missing_propensities",
]


@dataclass(frozen=True)
class LoggedContext:
    """Context and propensities of one step's served slates (see the module docstring)."""

    user_features: np.ndarray
    item_features: np.ndarray
    propensity: np.ndarray


def join_logged(parts: list[LoggedContext]) -> LoggedContext:
    """The user shards' logged contexts (consecutive user ranges) joined in user-id order."""
    return LoggedContext(
        *(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(LoggedContext))
    )


def logging_policy(agent: Any, rerankers: list[Any]) -> str:
    """``sampled``, ``deterministic`` or ``unknown`` for ``agent`` followed by ``rerankers``."""
    if rerankers:
        return "unknown"
    kind = getattr(agent, "logging_policy", "deterministic")
    return kind if kind in LOGGING_POLICIES else "unknown"


def scenario_logging_policy(scenario: Any, agent_index: int) -> str:
    """:func:`logging_policy` of a scenario's agent, from its class (no world needed)."""
    from simlab.world_context import reranker_specs

    return logging_policy(scenario.agents[agent_index].cls, reranker_specs(scenario, agent_index))


def logged_context(
    agent: Any,
    rerankers: list[Any],
    obs: Observation,
    slates: Slates,
    catalog: Catalog,
    startup: bool = False,
) -> LoggedContext:
    """The :class:`LoggedContext` of ``slates``, served for ``obs`` (call right after acting).

    ``startup``: the platform's start-up served them (uniformly random: ``1 / C`` per slot),
    not the agent, whose propensities do not apply (and may need an ``act`` first).
    """
    b, k = slates.item_ids.shape
    kind = logging_policy(agent, rerankers)
    prop = None
    if startup:
        prop = np.full((b, k), 1.0 / max(obs.candidates.shape[1], 1))
    elif kind == "sampled" and b:
        prop = _checked(agent.propensities(obs, slates), (b, k), agent)
    if prop is None:
        prop = np.full((b, k), 1.0 if kind == "deterministic" else np.nan)
    rows = catalog.rows(slates.item_ids.ravel())
    return LoggedContext(
        user_features=np.asarray(obs.user_features, np.float32),
        item_features=np.asarray(catalog.features[rows], np.float32).reshape(
            b,
            k,
            catalog.features.shape[1],  # (-1 cannot be inferred when no user came)
        ),
        propensity=np.asarray(prop, np.float64).reshape(b, k),
    )


def _checked(prop: object, shape: tuple[int, int], agent: object) -> np.ndarray | None:
    """An agent's propensities: None, or ``(B, K)`` probabilities in ``(0, 1]``.

    A transposed array of the right size was reshaped silently, and values outside
    ``(0, 1]`` or NaN went into the event log, where off-policy estimates weigh by them.
    """
    if prop is None:
        return None
    who = f"agent {type(agent).__name__}: propensities()"
    try:
        p = np.asarray(prop, np.float64)
    except (TypeError, ValueError):
        p = None
    if p is None or p.shape != shape:
        what = f"shape {p.shape}" if p is not None else f"a {type(prop).__name__}"
        raise AgentContractError(f"{who} returned {what}, expected a {shape} array or None")
    bad = ~((p > 0) & (p <= 1 + 1e-9))  # NaN fails both comparisons
    if bad.any():
        raise AgentContractError(
            f"{who} returned {float(p[bad][0])} for a served item, expected probabilities in (0, 1]"
        )
    return p


class PropensityWarning(UserWarning):
    """An exported trial logged no propensities (NaN): importance weighting cannot use it."""


def missing_propensities(events: Any) -> str | None:
    """A note naming the trials whose impressions have NaN propensities, or None.

    ``events`` is an event table (``trial``, ``agent``, ``propensity``), as
    :mod:`simlab.export` reads it.
    """
    nan = events["propensity"].isna()
    if not nan.any():
        return None
    trials = events[nan].groupby("trial", sort=True)["agent"].first()
    named = ", ".join(f"{t} ({a})" for t, a in trials.items())
    return (
        f"trials {named} log no propensities (NaN: logging policy 'unknown', the agent "
        "samples without a closed form or re-rankers changed its slates): importance-weighted "
        "estimators (Open Bandit Pipeline's IPW, SNIPW, DR) return NaN on them; the direct "
        "method needs no propensities"
    )
