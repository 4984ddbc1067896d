"""What recommends: the Agent protocol, baselines, bandits, torch models and re-rankers.

Imported as ``simlab.agents`` (the folder ``agents/`` is mapped to that name by
``pyproject.toml``). Scenarios name agents through :mod:`simlab.registry`.
"""

from simlab.agents.bandits import EpsilonGreedyAgent
from simlab.agents.base import Agent, ItemCounts, NoParams, random_slates, top_k
from simlab.agents.baselines import OracleAgent, PopularityAgent, RandomAgent
from simlab.agents.neural import MatrixFactorizationAgent
from simlab.agents.rerank import PopularityPenaltyReranker, Reranker

__all__ = [
    # protocol and helpers
    "Agent",
    "NoParams",
    "top_k",
    "random_slates",
    "ItemCounts",
    # baselines
    "RandomAgent",
    "PopularityAgent",
    "OracleAgent",
    # bandits
    "EpsilonGreedyAgent",
    # torch models
    "MatrixFactorizationAgent",
    # re-rankers
    "Reranker",
    "PopularityPenaltyReranker",
]
