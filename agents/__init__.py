"""What recommends: the Agent protocol, baselines, bandits, torch models and re-rankers.

Imported as ``simlab.agents`` (the folder ``agents/`` is mapped to that name by
``pyproject.toml``). Scenarios name agents through :mod:`simlab.registry`. The torch
models (``neural``, ``slate_ts``, ``generative``) are imported on first use.
"""

from simlab.agents.bandits import (
    DiagLinUCBAgent,
    EpsilonGreedyAgent,
    LinearThompsonAgent,
    LinUCBAgent,
    ThompsonSamplingAgent,
    UCB1Agent,
)
from simlab.agents.base import Agent, ItemCounts, NoParams, random_slates, top_k
from simlab.agents.baselines import OracleAgent, PopularityAgent, RandomAgent
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
    "UCB1Agent",
    "ThompsonSamplingAgent",
    "LinUCBAgent",
    "LinearThompsonAgent",
    "DiagLinUCBAgent",
    # re-rankers
    "Reranker",
    "PopularityPenaltyReranker",
    # torch models, importable as simlab.agents.neural / .slate_ts / .generative
]
