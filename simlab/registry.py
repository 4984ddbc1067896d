"""Names -> classes for user models, content models, agents, re-rankers and metrics.

The engine never imports a concrete model: it looks names up here. Built-in entries are
lazy ``"module:Class"`` strings, imported on first use. Third-party classes are used
either by registering them::

    from simlab import registry
    registry.register("agents", "my-agent", "my_package.recs:MyAgent")

or directly in a scenario by their import path (``model: my_package.recs:MyAgent``).
An unknown name gets a did-you-mean suggestion and the list of known names.
"""

from __future__ import annotations

import importlib
from typing import Any

from simlab.errors import RegistryError, did_you_mean

__all__ = ["KINDS", "register", "resolve", "names", "entry_point"]

KINDS = ("users", "content", "agents", "rerankers", "metrics")

_REGISTRY: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}

_BUILTINS: dict[str, dict[str, str]] = {
    "users": {
        "logit": "simlab.environments.users:LogitUserPopulation",
        "interest-evolution": "simlab.environments.interest_evolution:InterestEvolutionUsers",
        "recsim-ng": "simlab.environments.recsim_ng.population:RecSimNGUsers",
        "chaney": "simlab.environments.chaney:ChaneyUsers",
    },
    "content": {
        "creators": "simlab.environments.content:CreatorEcosystem",
        "recsim-corpus": "simlab.environments.interest_evolution:RecSimCorpus",
        "recsim-ng-corpus": "simlab.environments.recsim_ng.population:RecSimNGCorpus",
        "chaney-items": "simlab.environments.chaney:ChaneyItems",
    },
    "agents": {
        "random": "simlab.agents.baselines:RandomAgent",
        "popularity": "simlab.agents.baselines:PopularityAgent",
        "oracle": "simlab.agents.baselines:OracleAgent",
        "epsilon-greedy": "simlab.agents.bandits:EpsilonGreedyAgent",
        "ucb1": "simlab.agents.bandits:UCB1Agent",
        "thompson": "simlab.agents.bandits:ThompsonSamplingAgent",
        "linucb": "simlab.agents.bandits:LinUCBAgent",
        "linear-ts": "simlab.agents.bandits:LinearThompsonAgent",
        "diag-linucb": "simlab.agents.bandits:DiagLinUCBAgent",
        "slate-ts": "simlab.agents.slate_ts:SlateThompsonAgent",
        "mf": "simlab.agents.neural:MatrixFactorizationAgent",
        "gru4rec": "simlab.agents.neural:GRU4RecAgent",
        "two-tower": "simlab.agents.two_tower:TwoTowerAgent",
        "generative": "simlab.agents.generative:SemanticIDAgent",
        "content-filtering": "simlab.agents.content_filtering:ContentFilteringAgent",
        "implicit-mf": "simlab.agents.implicit_mf:ImplicitMFAgent",
        "social-filtering": "simlab.agents.social_filtering:SocialFilteringAgent",
    },
    "rerankers": {
        "popularity-penalty": "simlab.agents.rerank:PopularityPenaltyReranker",
        "calibration": "simlab.agents.rerank_groups:CalibrationReranker",
        "mmr": "simlab.agents.rerank:MMRReranker",
        "xquad": "simlab.agents.rerank_groups:XQuADReranker",
        "fair": "simlab.agents.rerank_groups:FairReranker",
        "exploration-floor": "simlab.agents.rerank:ExplorationFloorReranker",
        "style-removal": "simlab.agents.rerank:StyleRemovalReranker",
        "interleave-new": "simlab.agents.interleave:InterleaveNewReranker",
        "isotropy": "simlab.agents.isotropy:IsotropyReranker",
    },
    "metrics": {
        "engagement": "simlab.metrics.engagement:EngagementMetric",
        "exposure": "simlab.metrics.fairness:ExposureMetric",
        "item_fairness": "simlab.metrics.item_fairness:ItemFairnessMetric",
        "creators": "simlab.metrics.creators:CreatorMetric",
        "source": "simlab.metrics.source:SourceMetric",
        "diversity": "simlab.metrics.echo:DiversityMetric",
        "drift": "simlab.metrics.echo:InterestDriftMetric",
        "homogenization": "simlab.metrics.echo:HomogenizationMetric",
        "homogenization_nn": "simlab.metrics.homogenization_nn:NNHomogenizationMetric",
        "topics": "simlab.metrics.topics:TopicMetric",
    },
}
for _kind, _entries in _BUILTINS.items():
    _REGISTRY[_kind].update(_entries)


def _check_kind(kind: str) -> None:
    if kind not in _REGISTRY:
        raise RegistryError(
            f"unknown registry kind '{kind}'.{did_you_mean(kind, KINDS)} "
            f"Allowed: {', '.join(KINDS)}"
        )


def register(kind: str, name: str, entry_point: str | type) -> None:
    """Register ``entry_point`` (a class or ``"module:Class"``) under ``name`` in ``kind``."""
    _check_kind(kind)
    if not isinstance(name, str) or not name or ":" in name:
        raise ValueError(f"Expects a registry name without ':', actual value: {name!r}")
    if not (isinstance(entry_point, type) or (isinstance(entry_point, str) and ":" in entry_point)):
        raise ValueError(
            f"Expects entry_point as 'module:Class' or a class, actual value: {entry_point!r}"
        )
    _REGISTRY[kind][name] = entry_point


def names(kind: str) -> list[str]:
    """Sorted registered names of ``kind``."""
    _check_kind(kind)
    return sorted(_REGISTRY[kind])


def entry_point(kind: str, name: str) -> str:
    """The ``module:Class`` string of a registered name (or of a ``module:Class`` name)."""
    resolved = resolve(kind, name)
    return f"{resolved.__module__}:{resolved.__qualname__}"


def _import(path: str, kind: str, name: str) -> type:
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise RegistryError(f"{kind} '{name}': cannot import module '{module_name}' ({e})") from e
    except Exception as e:  # noqa: BLE001 - the module itself fails while it is imported
        raise RegistryError(
            f"{kind} '{name}': importing module '{module_name}' failed "
            f"({type(e).__name__}: {str(e)[:200]})"
        ) from e
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise RegistryError(
                f"{kind} '{name}': module '{module_name}' has no attribute '{attr}'"
            )
        obj = getattr(obj, part)
    if not isinstance(obj, type):
        raise RegistryError(f"{kind} '{name}': '{path}' is not a class")
    return obj


_NOUNS = {
    "users": "a user model (users.model)",
    "content": "a content model (content.model)",
    "agents": "an agent (agents[i].model)",
    "rerankers": "a re-ranker (platform.rerankers, or an agent's rerankers)",
    "metrics": "a metric group (metrics)",
}
"""What a name of each kind is, for an error that finds it under another kind."""


def resolve(kind: str, name: str) -> type:
    """Return the class registered as ``name`` in ``kind`` (or imported from ``module:Class``).

    Raises:
        RegistryError: the name is unknown (with a did-you-mean suggestion) or the import fails.
    """
    _check_kind(kind)
    if not isinstance(name, str):
        raise RegistryError(f"Expects a {kind} name as a string, actual value: {name!r}")
    entry = _REGISTRY[kind].get(name)
    if entry is None:
        if ":" in name:
            return _import(name, kind, name)
        elsewhere = [_NOUNS.get(k, k) for k in _REGISTRY if k != kind and name in _REGISTRY[k]]
        where = f" ('{name}' is {elsewhere[0]})" if elsewhere else ""
        raise RegistryError(
            f"unknown {kind} model '{name}'{where}.{did_you_mean(name, _REGISTRY[kind])} "
            f"Allowed: {', '.join(names(kind))}, or 'module:Class' for your own class"
        )
    if isinstance(entry, str):
        entry = _import(entry, kind, name)
        _REGISTRY[kind][name] = entry
    return entry
