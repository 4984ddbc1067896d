"""A fork under unchanged settings continues every re-ranker's learned state.

The run directory's scenario.yaml holds every default, while the scenario a fork is given
holds only what its author wrote (``{model: xquad}``); the two name the same settings, so a
re-ranker with state (exposure counts, amortized attention) must continue from the
checkpoint, not start fresh: the fork then equals the original from the fork step on.
"""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import make_small

from simlab import registry
from simlab.runner import run_scenario

WORLD = ["output.checkpoint_every=4", "users.num_users=120", "platform.knows_source=true"]


@pytest.mark.parametrize("where", ["platform", "agent"])
@pytest.mark.parametrize("reranker", registry.names("rerankers"))
def test_an_unchanged_fork_continues_every_reranker(tmp_path, reranker, where):
    """Original and fork (same scenario as written) give the same rows, bit for bit."""
    rr = [{"model": reranker}]
    agent = {"model": "popularity"}
    if where == "agent":
        sc = make_small(*WORLD, agents=[{**agent, "rerankers": rr}], steps=10)
    else:
        sc = make_small(*WORLD, ("platform.rerankers", rr), agents=[agent], steps=10)
    original = run_scenario(sc, out_dir=tmp_path, run_id="orig")
    fork = run_scenario(sc, out_dir=tmp_path, run_id="fork", fork=(original.path, 4))
    cols = original.manifest["metric_columns"]
    a = original.read_metrics().sort_values(["trial", "step"]).reset_index(drop=True)
    b = fork.read_metrics().sort_values(["trial", "step"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(a[cols], b[cols])
