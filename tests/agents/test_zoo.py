"""Every registered agent keeps the contract and runs by name from the quickstart YAML."""

from __future__ import annotations

from pathlib import Path

import pytest

from simlab import registry
from simlab.runner import run_scenario
from simlab.scenario import load_scenario
from simlab.testing import check_agent

QUICKSTART = Path(__file__).resolve().parents[2] / "scenarios" / "quickstart.yaml"
# small settings for agents whose defaults are sized for real runs
TOY = {
    "generative": {
        "quantiser": {"levels": 2, "codebook_size": 8, "dedup_size": 4, "iterations": 5},
        "transformer": {"dim": 16, "layers": 1, "heads": 2, "ff_dim": 32, "max_history": 5},
        "training": {"epochs": 2, "batch_size": 128},
        "device": "cpu",
    },
}


def _spec(name: str) -> dict:
    return {"model": name, **TOY.get(name, {})}


@pytest.mark.parametrize("name", registry.names("agents"))
def test_agent_passes_check_agent(name):
    """The agent passes simlab.testing.check_agent."""
    check_agent(_spec(name))


# agents that need users with a social network run in Chaney et al.'s users and items
WORLDS = {
    "social-filtering": [
        ("users", {"model": "chaney", "num_users": 300}),
        ("content", {"model": "chaney-items", "initial_items": 200}),
    ],
}


@pytest.mark.parametrize("name", registry.names("agents"))
def test_agent_runs_in_quickstart_by_name(name, tmp_path):
    """The quickstart scenario runs with the agent named in YAML and produces finite CTR."""
    sc = load_scenario(
        QUICKSTART,
        [
            "users.num_users=300",
            *WORLDS.get(name, []),
            "steps=8",
            "seeds=1",
            "execution.backend=local",
            ("agents", [_spec(name)]),
        ],
    )
    store = run_scenario(sc, out_dir=tmp_path)
    df = store.read_metrics()
    assert store.status == "completed"
    assert len(df) == 8 and df["engagement/ctr"].between(0, 1).all()
