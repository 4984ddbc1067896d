"""Serving replicas on Ray: the agent scores its users inside the user shards.

Every agent that declares ``serving = "replica"`` gives the local backend's metrics with 1,
2 and 4 shards and the same rows, bit for bit, as the trial actor serving every user;
what comes back from the shards is O(slate) bytes per user-step whatever the candidates
and the dimension; where replicas cannot serve, the run says why and serves centrally.
Every Ray test shares the session's instance (``ray_local``).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_small
from test_ray_execution import assert_same_metrics

from simlab import registry
from simlab.runner import run_scenario
from simlab.serving import SERVING_MODES, replica_blocker, serving_mode
from simlab.world import World


def _replica_agents() -> list[str]:
    names = registry.names("agents")
    return [n for n in names if serving_mode(registry.resolve("agents", n)) == "replica"]


REPLICA_AGENTS = _replica_agents()
SMALL_MODELS = {"mf": {"factors": 4, "epochs": 2}, "gru4rec": {"factors": 4, "epochs": 1}}
WORLD = [
    "users.num_users=120",
    "users.drift_rate=0.05",
    "steps=9",
    "platform.max_candidates=40",
    "platform.retrain_every=2",
]


def _agent(name: str) -> list[dict]:
    return [{"model": name, **SMALL_MODELS.get(name, {})}]


def test_every_shipped_agent_declares_a_known_serving_mode():
    """Each registered agent says where it serves; the scoring agents serve from replicas."""
    modes = {n: serving_mode(registry.resolve("agents", n)) for n in registry.names("agents")}
    assert set(modes.values()) <= set(SERVING_MODES)
    for name in ("random", "popularity", "mf", "linucb", "linear-ts", "thompson"):
        assert modes[name] == "replica", name
    for name in ("oracle", "social-filtering"):  # latent truth, the social graph
        assert modes[name] == "central", name


@pytest.mark.parametrize("agent", REPLICA_AGENTS)
def test_replicas_give_the_local_metrics_with_1_2_and_4_shards(ray_local, agent, tmp_path):
    """Acceptance: local == Ray with replicas on 1, 2 and 4 shards, for each replica agent.

    With 2 shards the rows also equal, bit for bit, the trial actor serving everyone
    (the sharded metrics' partial sums differ from the local ones in the last bits
    whoever serves, hence the 1e-9 tolerance against local).
    """
    local = run_scenario(make_small(*WORLD, agents=_agent(agent)), out_dir=tmp_path / "l")
    reference = local.read_metrics()
    cols = local.manifest["metric_columns"]
    runs = {}
    for shards, serving in ((1, "replicas"), (2, "replicas"), (4, "replicas"), (2, "central")):
        sc = make_small(
            *WORLD,
            "execution.backend=ray",
            f"execution.shards={shards}",
            f"execution.serving={serving}",
            agents=_agent(agent),
        )
        store = run_scenario(sc, out_dir=tmp_path / f"{serving}{shards}")
        placement = store.manifest["trials"][0]["placement"]
        assert placement["serving"].startswith(serving), placement
        assert len(placement["shards"]) == shards
        df = store.read_metrics()
        assert_same_metrics(df, reference, cols)
        runs[(shards, serving)] = df.sort_values("step").reset_index(drop=True)
    a, b = runs[(2, "replicas")], runs[(2, "central")]
    for c in cols:
        np.testing.assert_array_equal(a[c].to_numpy(float), b[c].to_numpy(float), err_msg=c)


@pytest.mark.parametrize(
    ("overrides", "agents", "reason"),
    [
        (["execution.serving=central"], [{"model": "popularity"}], "execution.serving"),
        ([], [{"model": "oracle"}], "serves central"),
        (["users.model=chaney"], [{"model": "social-filtering"}], "serves central"),
        ([], [{"model": "diag-linucb"}], "serves central"),
        (
            [("platform.rerankers", [{"model": "popularity-penalty"}])],
            [{"model": "popularity"}],
            "re-rankers",
        ),
        ([], [{"model": "mf", "rerankers": [{"model": "mmr"}]}], "re-rankers"),
        (["output.events=true"], [{"model": "linucb"}], "event log"),
        ([], [{"model": "linucb"}], None),
        ([], [{"model": "random"}], None),
    ],
)
def test_replicas_fall_back_to_central_serving_with_a_reason(overrides, agents, reason):
    """Central state, re-rankers and the event log keep serving in the trial actor."""
    sc = make_small(*overrides, agents=agents)
    world = World(sc, 0, 0)
    why = replica_blocker(world)
    if reason is None:
        assert why is None
    else:
        assert why is not None and reason in why, why
    assert world.replicas is None  # local users: never replicas


def _bytes_per_user_step(dim: int, candidates: int, serving: str, shards: int) -> dict:
    from simlab.execution.measure import drive_in_process

    sc = make_small(
        f"world.dim={dim}",
        f"platform.max_candidates={candidates}",
        "content.initial_items=400",
        "platform.slate_size=5",
        "users.num_users=400",
        "execution.backend=ray",
        f"execution.shards={shards}",
        f"execution.serving={serving}",
        agents=[{"model": "linucb"}],
    )
    rows = drive_in_process(sc, steps=4)
    users = sum(r["users"] for r in rows)
    return {k: sum(r[k] for r in rows) / users for k in ("to_shards", "from_shards", "model")}


def test_replicas_move_o_slate_bytes_per_user_step(ray_local):
    """What crosses per user-step is O(slate), not O(candidates x dim).

    linucb's learner also keeps the served users' profiles (d floats each): the bound is
    K item ids, the user id, click and engagement, and d float32 of profile.
    """
    k = 5
    small = _bytes_per_user_step(8, 40, "replicas", 2)
    big = _bytes_per_user_step(8, 200, "replicas", 2)
    central = _bytes_per_user_step(8, 200, "central", 2)
    per_user = 8 * k + 8 + 8 + 4 + 4 * 8
    for b in (small, big):
        assert b["to_shards"] < 8, b  # a few hundred bytes per shard per step, not per user
        assert b["from_shards"] < per_user + 40, b  # + exposure (N,) and partials per shard
    assert abs(big["from_shards"] - small["from_shards"]) < 8  # candidates do not matter
    # the central path ships each user's C candidates to the shards to check the slates
    assert central["to_shards"] > 8 * 200
