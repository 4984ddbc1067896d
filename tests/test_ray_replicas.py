"""Serving replicas on Ray: the agent scores its users inside the user shards.

Every agent that declares ``serving = "replica"`` gives the local backend's metrics with 1,
2 and 4 shards and the same rows, bit for bit, as the trial actor serving every user;
what comes back from the shards is O(slate) bytes per user-step whatever the candidates
and the dimension; where replicas cannot serve, the run says why and serves centrally.
Every Ray test shares the session's instance (``ray_local``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import SMALL_MODELS, make_small
from test_ray_execution import assert_same_metrics

from simlab import registry
from simlab.runner import run_scenario
from simlab.serving import SERVING_MODES, replica_blocker, serving_mode
from simlab.world import World


def _replica_agents() -> list[str]:
    names = registry.names("agents")
    return [n for n in names if serving_mode(registry.resolve("agents", n)) == "replica"]


REPLICA_AGENTS = _replica_agents()
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
    """Acceptance: local == Ray with replicas and the learner actor on 1, 2 and 4 shards.

    Every agent class that declares ``serving = "replica"`` is listed (a new one is
    covered without touching this test).
    """
    local = run_scenario(make_small(*WORLD, agents=_agent(agent)), out_dir=tmp_path / "l")
    reference = local.read_metrics()
    cols = local.manifest["metric_columns"]
    for shards in (1, 2, 4):
        sc = make_small(*WORLD, "execution.backend=ray", f"execution.shards={shards}",
                        agents=_agent(agent))  # fmt: skip
        store = run_scenario(sc, out_dir=tmp_path / f"r{shards}")
        placement = store.manifest["trials"][0]["placement"]
        assert placement["serving"] == "replicas", placement
        assert len(placement["shards"]) == shards
        # every agent that learns does so in the learner actor, from the shards' log parts
        learner = agent != "random"
        assert (placement["learning"] == "learner actor") == learner, placement
        assert (placement["learner"] is not None) == learner
        assert_same_metrics(store.read_metrics(), reference, cols)


def test_replicas_give_the_central_rows_bit_for_bit(ray_local, tmp_path):
    """With the same shards, serving from replicas changes no bit of any row.

    (The sharded metrics' partial sums differ from the local ones in the last bits whoever
    serves, hence the 1e-9 tolerance against local above.)
    """
    agents = [_agent(a)[0] for a in ("popularity", "linucb", "mf", "two-tower")]
    rows = {}
    for serving in ("replicas", "central"):
        sc = make_small(*WORLD, "execution.backend=ray", "execution.shards=3",
                        f"execution.serving={serving}", agents=agents)  # fmt: skip
        store = run_scenario(sc, out_dir=tmp_path / serving)
        assert {t["placement"]["serving"][:7] for t in store.manifest["trials"]} == {serving[:7]}
        rows[serving] = store.read_metrics().sort_values(["agent", "step"]).reset_index(drop=True)
        cols = store.manifest["metric_columns"]
    for c in cols:
        a, b = rows["replicas"][c].to_numpy(float), rows["central"][c].to_numpy(float)
        np.testing.assert_array_equal(a, b, err_msg=c)


def _events(store) -> pd.DataFrame:
    ev = pd.read_parquet(store.path / "events")
    ev["trial"] = ev["trial"].astype(int)
    return ev.sort_values(["trial", "step", "user_id", "position"]).reset_index(drop=True)


def test_replicas_log_the_events_of_local_serving(ray_local, tmp_path):
    """With ``output.events`` the shards log what the replicas served, as local serving does.

    Every replica agent (sampled, deterministic and unknown propensities), per-user
    candidates, start-up steps (``1 / C``) and 3 shards: the event tables are equal, the
    features, propensities and clicks bit for bit, and so are the metric rows' counts.
    """
    world = [*WORLD, "output.events=true", "platform.startup_steps=2"]
    agents = [_agent(a)[0] for a in REPLICA_AGENTS]
    local = run_scenario(make_small(*world, agents=agents), out_dir=tmp_path / "l")
    sc = make_small(*world, "execution.backend=ray", "execution.shards=3", agents=agents)
    store = run_scenario(sc, out_dir=tmp_path / "r")
    for trial in store.manifest["trials"]:
        assert trial["placement"]["serving"] == "replicas", trial["placement"]
    expected = _events(local)
    assert expected["propensity"].notna().any() and (expected["propensity"] < 1).any()
    pd.testing.assert_frame_equal(_events(store), expected)
    cols = local.manifest["metric_columns"]
    assert_same_metrics(store.read_metrics(), local.read_metrics(), cols)


@pytest.mark.parametrize("agent", ["linucb", "linear-ts", "diag-linucb"])
def test_online_learners_after_a_startup_give_the_local_metrics(ray_local, agent, tmp_path):
    """Start-up steps (no ``act``): the learner keeps the served profiles all the same.

    ``linucb`` and ``linear-ts`` serve from replicas (the shards send the start-up's
    ``serving_record``), ``diag-linucb`` centrally; with 2 shards each gives the local rows.
    """
    world = [*WORLD, "platform.startup_steps=3", "platform.startup_candidates=new"]
    local = run_scenario(make_small(*world, agents=_agent(agent)), out_dir=tmp_path / "l")
    sc = make_small(*world, "execution.backend=ray", "execution.shards=2", agents=_agent(agent))
    store = run_scenario(sc, out_dir=tmp_path / "r")
    serving = store.manifest["trials"][0]["placement"]["serving"]
    assert serving.startswith("central" if agent == "diag-linucb" else "replicas"), serving
    cols = local.manifest["metric_columns"]
    assert_same_metrics(store.read_metrics(), local.read_metrics(), cols)


@pytest.mark.parametrize(
    ("candidates", "serving"), [(0, "central"), (195, "central"), (20, "replicas")]
)
def test_no_repeats_give_the_local_metrics_on_any_shards(ray_local, candidates, serving, tmp_path):
    """Without repeats, replicas serve only where each user's candidates are the user's own.

    A batch's most-consumed user sets the candidates' width, so the shards serve centrally
    unless the catalog keeps every list at ``max_candidates`` (here ~200 live items and 9
    steps: 20 fits, 195 may not); either way the rows are local's.
    """
    world = [*WORLD, "platform.exclude_consumed=true", f"platform.max_candidates={candidates}"]
    _local_rows_on_shards(world, [{"model": "random"}, {"model": "popularity"}], serving, tmp_path)


def _local_rows_on_shards(world: list, agents: list, serving: str, tmp_path: Path) -> None:
    """On 2 and 3 Ray shards every trial is served as ``serving`` says, with local's rows."""
    local = run_scenario(make_small(*world, agents=agents), out_dir=tmp_path / "l")
    for shards in (2, 3):
        sc = make_small(*world, "execution.backend=ray", f"execution.shards={shards}",
                        agents=agents)  # fmt: skip
        store = run_scenario(sc, out_dir=tmp_path / f"r{shards}")
        for trial in store.manifest["trials"]:
            assert trial["placement"]["serving"].startswith(serving), trial["placement"]
        cols = local.manifest["metric_columns"]
        assert_same_metrics(store.read_metrics(), local.read_metrics(), cols)


def test_consumed_items_kept_ranked_are_served_by_replicas(ray_local, tmp_path):
    """With ``consumed_ranked`` the candidates are every live item: replicas serve them.

    The shards' users pass over what they consumed; the rows are local's on 2 and 3 shards.
    """
    world = [
        ("users", {"model": "chaney", "num_users": 30}),
        ("content", {"model": "chaney-items", "items_per_step": 6}),
        "platform.slate_size=0",
        "platform.exclude_consumed=true",
        "platform.consumed_ranked=true",
    ]
    agents = [{"model": "random"}, {"model": "popularity", "cumulative": True}]
    _local_rows_on_shards(world, agents, "replicas", tmp_path)


@pytest.mark.parametrize(
    ("overrides", "agents", "reason"),
    [
        (["execution.serving=central"], [{"model": "popularity"}], "execution.serving"),
        ([], [{"model": "oracle"}], "serves central"),
        (
            ["users.model=chaney", ("content", {"model": "chaney-items", "initial_items": 50})],
            [{"model": "social-filtering"}],
            "serves central",
        ),
        (
            [],
            [{"model": "two-tower", "history_frozen_at": 3}],
            "history_frozen_at keeps histories",
        ),
        ([], [{"model": "diag-linucb"}], "serves central"),
        (
            [("platform.rerankers", [{"model": "popularity-penalty"}])],
            [{"model": "popularity"}],
            "re-rankers",
        ),
        ([], [{"model": "mf", "rerankers": [{"model": "mmr"}]}], "re-rankers"),
        (["output.events=true"], [{"model": "linucb"}], None),  # the shards log it
        ([], [{"model": "linucb"}], None),
        ([], [{"model": "random"}], None),
        (["platform.exclude_consumed=true"], [{"model": "random"}], "exclude_consumed"),
        (
            ["platform.exclude_consumed=true", "platform.max_candidates=180"],
            [{"model": "popularity"}],
            "exclude_consumed",
        ),
        (["platform.exclude_consumed=true", "platform.max_candidates=20"], [{"model": "mf"}], None),
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


def _bytes_per_user_step(agent: str, dim: int, candidates: int, serving: str) -> dict:
    from simlab.execution.measure_drive import drive_in_process

    sc = make_small(
        f"world.dim={dim}",
        f"platform.max_candidates={candidates}",
        "content.initial_items=400",
        "platform.slate_size=5",
        "users.num_users=400",
        "execution.backend=ray",
        "execution.shards=2",
        f"execution.serving={serving}",
        agents=[{"model": agent}],
    )
    rows = drive_in_process(sc, steps=4)
    users = sum(r["users"] for r in rows)
    keys = ("to_shards", "from_shards", "to_learner")
    return {k: sum(r.get(k, 0.0) for r in rows) / users for k in keys}


@pytest.mark.parametrize(("agent", "record"), [("popularity", 0), ("linucb", 1)])
def test_replicas_move_o_slate_bytes_per_user_step(ray_local, agent, record):
    """What crosses per user-step is O(slate), not O(candidates x dim).

    Back from the shards: K item ids, the user id, click and engagement (8 K + 20 bytes),
    plus per shard the exposure counts (N,) and metric partials; linucb's learner also keeps
    the served users' profiles (d float32 each). To the shards: a few hundred bytes per
    shard per step. Serving centrally sends each user's C candidates to the shards. To the
    learner actor (linucb learns online there): the step's feedback and the profiles.
    """
    k = 5
    small = _bytes_per_user_step(agent, 8, 40, "replicas")
    big = _bytes_per_user_step(agent, 8, 200, "replicas")
    wide = _bytes_per_user_step(agent, 32, 200, "replicas")
    central = _bytes_per_user_step(agent, 8, 200, "central")
    slate = 8 * k + 20
    for b, d in ((small, 8), (big, 8), (wide, 32)):
        assert b["to_shards"] < 10, b
        assert slate <= b["from_shards"] < slate + record * 4 * d + 60, (b, d)
    assert abs(big["from_shards"] - small["from_shards"]) < 1  # candidates do not matter
    assert abs(wide["from_shards"] - big["from_shards"] - record * 4 * 24) < 4  # d: linucb only
    assert central["to_shards"] > 8 * 200  # each user's candidates
    if record:  # linucb learns online in the learner actor: the feedback and the profiles
        for b, d in ((small, 8), (big, 8), (wide, 32)):
            assert slate <= b["to_learner"] < slate + 4 * d + 60, (b, d)
        assert abs(big["to_learner"] - small["to_learner"]) < 1
