"""Acceptance: a scenario runs on an existing two-node Ray cluster, shards on both nodes.

The cluster (a head and a worker node on loopback, ``ray.cluster_utils.Cluster``) and the
``simlab run --address`` driver live in a child process, so they never meet the session's
own Ray instance.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml
from conftest import SMALL

SCRIPT = r"""
import json, sys
from ray.cluster_utils import Cluster

scenario, out = sys.argv[1], sys.argv[2]
cluster = Cluster(
    initialize_head=True,
    head_node_args={"num_cpus": 2, "include_dashboard": False},
)
cluster.add_node(num_cpus=2)
cluster.wait_for_nodes()
try:
    from simlab.cli import main

    code = main([
        "run", scenario, "--out", out, "--run-id", "cluster", "--no-progress",
        "--address", cluster.address, "--shards", "2",
    ])
    import ray

    ray.init(address=cluster.address, logging_level="ERROR", log_to_driver=False)
    nodes = sorted(n["NodeID"] for n in ray.nodes() if n["Alive"])
    ray.shutdown()
finally:
    cluster.shutdown()
print("RESULT " + json.dumps({"code": code, "nodes": nodes}))
"""


def test_run_on_a_two_node_cluster_places_shards_on_both_nodes(tmp_path):
    """``simlab run --address`` joins the cluster; the two shards sit on different nodes."""
    data = {**SMALL, "steps": 8, "agents": [{"model": "popularity"}]}
    data["execution"] = {"backend": "ray", "placement": "spread"}
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(yaml.safe_dump(data))
    script = tmp_path / "cluster.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.run(
        [sys.executable, str(script), str(scenario), str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    assert lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT ") :])
    assert result["code"] == 0, proc.stderr[-3000:]
    assert len(result["nodes"]) == 2
    manifest = json.loads((tmp_path / "runs" / "cluster" / "manifest.json").read_text())
    assert manifest["status"] == "completed"
    placement = manifest["trials"][0]["placement"]
    assert len(placement["shards"]) == 2
    assert set(placement["shards"]) == set(result["nodes"])  # one shard on each node
    assert placement["agent"] in result["nodes"]
