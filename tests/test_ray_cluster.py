"""Acceptance: a scenario runs on an existing multi-node Ray cluster, shards on every node.

The cluster (a head and worker nodes on loopback with 2 CPUs each,
``ray.cluster_utils.Cluster``, which runs ``ray start`` per node) and the
``simlab run --address`` driver live in a child process, so they never meet the session's
own Ray instance. The agent serves from replicas in the shards, spread over the nodes, and
the metrics equal the local backend's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml
from conftest import SMALL, make_small
from test_ray_execution import assert_same_metrics

from simlab.runner import run_scenario
from simlab.store import open_run

SCRIPT = r"""
import json, sys
from ray.cluster_utils import Cluster

scenario, out = sys.argv[1], sys.argv[2]
cluster = Cluster(
    initialize_head=True,
    head_node_args={"num_cpus": 2, "include_dashboard": False},
)
for _ in range(int(sys.argv[3]) - 1):
    cluster.add_node(num_cpus=2)
cluster.wait_for_nodes()
try:
    from simlab.cli import main

    code = main([
        "run", scenario, "--out", out, "--run-id", "cluster", "--no-progress",
        "--address", cluster.address, "--shards", sys.argv[4],
    ])
    import ray

    ray.init(address=cluster.address, logging_level="ERROR", log_to_driver=False)
    nodes = sorted(n["NodeID"] for n in ray.nodes() if n["Alive"])
    ray.shutdown()
finally:
    cluster.shutdown()
print("RESULT " + json.dumps({"code": code, "nodes": nodes}))
"""


@pytest.mark.parametrize(("nodes", "shards", "agent"), [
    (2, 2, {"model": "popularity"}),
    (3, 3, {"model": "mf", "factors": 4, "epochs": 2}),
])  # fmt: skip
def test_run_on_a_cluster_spreads_replicas_over_nodes_with_local_metrics(
    tmp_path, nodes, shards, agent
):
    """``simlab run --address`` joins the cluster; one shard (and its replica) per node.

    The run's metrics equal the local backend's.
    """
    data = {**SMALL, "steps": 8, "agents": [agent]}
    data["execution"] = {"backend": "ray", "placement": "spread"}
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(yaml.safe_dump(data))
    script = tmp_path / "cluster.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.run(
        [sys.executable, str(script), str(scenario), str(tmp_path / "runs"), str(nodes),
         str(shards)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )  # fmt: skip
    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    assert lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT ") :])
    assert result["code"] == 0, proc.stderr[-3000:]
    assert len(result["nodes"]) == nodes
    store = open_run(tmp_path / "runs" / "cluster")
    assert store.status == "completed"
    placement = store.manifest["trials"][0]["placement"]
    assert len(placement["shards"]) == shards
    assert set(placement["shards"]) == set(result["nodes"])  # one shard on each node
    assert placement["agent"] in result["nodes"]
    assert placement["serving"] == "replicas"
    local = run_scenario(make_small("steps=8", agents=[agent]), out_dir=tmp_path / "local")
    assert_same_metrics(
        store.read_metrics(), local.read_metrics(), local.manifest["metric_columns"]
    )
