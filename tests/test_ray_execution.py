"""Ray execution: same metrics as local with any shard count, fault recovery, streaming.

Every test here shares the session's local Ray instance (``ray_local``: 6 logical CPUs, no
dashboard, quiet); the multi-node cluster test is in ``test_ray_cluster.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import make_small

from simlab.checkpoint import checkpoint_steps
from simlab.errors import AgentContractError
from simlab.execution.ray import NAMESPACE, ClusterError, actor_name
from simlab.runner import run_scenario
from simlab.scenario import load_scenario
from simlab.store import open_run

QUICKSTART = Path(__file__).resolve().parents[1] / "scenarios" / "quickstart.yaml"


def assert_same_metrics(a: pd.DataFrame, b: pd.DataFrame, columns: list[str]) -> None:
    """Every metric the same bits (NaN where NaN), whatever the backend and shard count.

    (Sums over several user shards differed in their last bits until they were made exact:
    ``simlab.metrics.sums``.)
    """
    key = ["agent", "seed", "step"]
    a = a.sort_values(key).reset_index(drop=True)
    b = b.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a[key], b[key])
    np.testing.assert_array_equal(a["users/active"], b["users/active"])
    for c in columns:
        np.testing.assert_array_equal(a[c].to_numpy(float), b[c].to_numpy(float), err_msg=c)


@pytest.fixture(scope="module")
def quickstart_local(tmp_path_factory):
    """The quickstart scenario (one seed) run locally: the reference."""
    sc = load_scenario(QUICKSTART, ["seeds=1", "execution.backend=local"])
    return run_scenario(sc, out_dir=tmp_path_factory.mktemp("local")).read_metrics()


@pytest.mark.parametrize("shards", [1, 2, 4])
def test_quickstart_on_ray_equals_local(ray_local, quickstart_local, shards, tmp_path):
    """Acceptance: the quickstart gives the local metrics on Ray with 1, 2 and 4 shards."""
    sc = load_scenario(
        QUICKSTART, ["seeds=1", "execution.backend=ray", f"execution.shards={shards}"]
    )
    store = run_scenario(sc, out_dir=tmp_path)
    assert store.status == "completed"
    cols = store.manifest["metric_columns"]
    assert_same_metrics(store.read_metrics(), quickstart_local, cols)
    shards_used = {len(t["placement"]["shards"]) for t in store.manifest["trials"]}
    assert shards_used == {shards}


def test_privileged_per_user_candidates_rerankers_and_events_match_local(ray_local, tmp_path):
    """The oracle, per-user candidates, re-rankers and the event log match local.

    The oracle's utility fans out to the shards and per-user candidates are checked there.
    """
    over = [
        "platform.max_candidates=40",
        ("platform.rerankers", [{"model": "popularity-penalty", "weight": 1.0}]),
        "output.events=true",
        "users.drift_rate=0.05",
        "steps=12",
    ]
    agents = [{"model": "oracle"}, {"model": "thompson"}]
    local = run_scenario(make_small(*over, agents=agents), out_dir=tmp_path / "l")
    ray_sc = make_small(*over, "execution.backend=ray", "execution.shards=3", agents=agents)
    on_ray = run_scenario(ray_sc, out_dir=tmp_path / "r")
    assert_same_metrics(
        on_ray.read_metrics(), local.read_metrics(), local.manifest["metric_columns"]
    )
    ev_l = pd.read_parquet(local.path / "events").sort_values(["step", "user_id", "position"])
    ev_r = pd.read_parquet(on_ray.path / "events").sort_values(["step", "user_id", "position"])
    pd.testing.assert_frame_equal(ev_l.reset_index(drop=True), ev_r.reset_index(drop=True))
    # the event log's step ranges and start are recorded on Ray too (a lost part is found)
    assert on_ray.event_problems() == {} and local.event_problems() == {}
    assert [t["events_from"] for t in on_ray.manifest["trials"]] == [0, 0]
    (on_ray.path / "events" / "trial=1" / "part-000000.parquet").unlink()
    assert open_run(on_ray.path).event_problems()[1][0] == 0


def _killer(role: str, at: int, run_id: str):
    import ray

    done = {"killed": False}

    def on_step(trial, steps_done: int) -> None:
        if steps_done == at and not done["killed"]:
            handle = ray.get_actor(actor_name(run_id, trial.index, role, 0), namespace=NAMESPACE)
            ray.kill(handle, no_restart=True)
            done["killed"] = True

    return on_step, done


@pytest.mark.parametrize(
    ("role", "agent"),
    [
        ("shard-1", {"model": "mf", "factors": 4, "epochs": 2}),
        ("trial", {"model": "mf", "factors": 4, "epochs": 2}),
        ("shard-1", {"model": "linucb"}),  # a replica of an agent that learns every step
    ],
)
def test_a_killed_actor_is_recovered_from_the_last_checkpoint(
    ray_local, role, agent, tmp_path, capsys
):
    """Acceptance: kill a shard with its serving replica (or the actor holding the agent).

    The run restores itself from its last checkpoint and ends with the uninterrupted
    run's metrics; the new replicas get the restored model's serving state.
    """
    over = ["users.drift_rate=0.05", "output.checkpoint_every=5", "steps=20"]
    agents = [agent]
    reference = run_scenario(make_small(*over, agents=agents), out_dir=tmp_path / "ref")
    sc = make_small(*over, "execution.backend=ray", "execution.shards=2", agents=agents)
    on_step, done = _killer(role, 13, "faulty")
    store = run_scenario(sc, out_dir=tmp_path, run_id="faulty", progress=on_step)
    assert done["killed"]
    assert store.status == "completed"
    trial = store.manifest["trials"][0]
    assert trial["placement"]["serving"] == "replicas"
    assert trial["restarts"] == 1
    assert "Actor" in trial["last_restart"] or "actor" in trial["last_restart"]
    df = store.read_metrics()
    assert sorted(df["step"]) == list(range(20))  # no step lost, none written twice
    assert_same_metrics(df, reference.read_metrics(), store.manifest["metric_columns"])
    assert checkpoint_steps(store.path, 0) == [5, 10, 15]
    from simlab.cli import main

    capsys.readouterr()
    assert main(["show", str(store.path)]) == 0
    shown = capsys.readouterr().out
    assert "execution: ray embedded, 2 shards" in shown
    assert "trial 0 restored 1x after a lost actor" in shown


def test_rows_stream_to_the_store_as_steps_finish(ray_local, tmp_path):
    """A live run's rows are readable while it runs (what the dashboard follows)."""
    from simlab.store import open_run

    seen = []

    def on_step(trial, steps_done: int) -> None:
        if steps_done == 6:
            seen.append(len(open_run(tmp_path / "live").read_metrics()))

    sc = make_small("execution.backend=ray", "steps=10", agents=[{"model": "popularity"}])
    run_scenario(sc, out_dir=tmp_path, run_id="live", progress=on_step)
    assert seen == [6]


def test_model_errors_in_actors_keep_their_message(ray_local, tmp_path):
    """An agent breaking the contract inside an actor fails the run with its own error."""
    sc = make_small(
        "execution.backend=ray",
        "steps=5",
        agents=[{"model": "test_ray_execution:DuplicatingAgent"}],
    )
    with pytest.raises(AgentContractError, match="returned a slate with a duplicate item"):
        run_scenario(sc, out_dir=tmp_path, run_id="broken")
    from simlab.store import open_run

    assert open_run(tmp_path / "broken").status == "failed"


def test_a_model_error_on_ray_keeps_the_model_traceback(ray_local, tmp_path):
    """The model's frames (which the driver does not have) come chained as the cause.

    (The driver's traceback ended in simlab's own frames: no line of the model's code.)
    """
    sc = make_small(
        "execution.backend=ray", "execution.shards=2", "steps=5",
        agents=[{"model": "random"}, {"model": "test_ray_execution:RaisingAgent"}],
    )  # fmt: skip
    with pytest.raises(ValueError, match="boom in act at step 2") as info:
        run_scenario(sc, out_dir=tmp_path, run_id="raising")
    cause = info.value.__cause__
    assert type(cause).__name__ == "RemoteTraceback", repr(cause)
    text = str(cause)
    assert "(trial 1: test_ray_execution:RaisingAgent, seed 0)" in text, text
    assert "in act" in text and "raise ValueError" in text, text
    from simlab.store import open_run

    trials = open_run(tmp_path / "raising").manifest["trials"]
    assert [t["status"] for t in trials] == ["completed", "failed"]


def test_a_trial_too_big_for_the_cluster_is_a_clear_error(ray_local, tmp_path):
    """More shards than the cluster has CPUs: one line naming the settings to lower."""
    sc = make_small("execution.backend=ray", "execution.shards=9")
    with pytest.raises(ClusterError, match=r"one trial needs 11 CPU .* the Ray cluster has 6"):
        run_scenario(sc, out_dir=tmp_path)


def test_kill_the_ray_run_process_then_resume(ray_local, tmp_path):
    """Acceptance: SIGKILL ``simlab run`` on Ray, then ``simlab resume`` finishes it.

    The run joins the session's Ray instance; the resumed metrics equal an uninterrupted
    run's.
    """
    import ray
    from test_checkpoint import _scenario_file, kill_then_resume

    from simlab.store import open_run

    address = ray.get_runtime_context().gcs_address
    scenario = _scenario_file(tmp_path, steps=30)
    extra = ["--backend", "ray", "--address", address, "--shards", "2"]
    run, reference = kill_then_resume(tmp_path, scenario, extra)
    resumed, ref = open_run(run), open_run(reference)
    assert resumed.status == "completed"
    assert_same_metrics(resumed.read_metrics(), ref.read_metrics(), ref.manifest["metric_columns"])


class DuplicatingAgent:
    """Repeats its first candidate (breaks the contract)."""

    from simlab.agents.base import NoParams as Params

    def __init__(self, params, ctx) -> None:
        self.k = ctx.slate_size

    def act(self, obs):
        """The first candidate K times."""
        from simlab.batch import Slates

        ids = np.repeat(obs.candidates[:, :1], obs.slate_size, axis=1)
        return Slates(obs.user_ids, ids)

    def update(self, feedback) -> None:
        """Nothing to learn."""

    def retrain(self, log) -> None:
        """Nothing to learn."""


class RaisingAgent(DuplicatingAgent):
    """Serves at random for two steps, then raises in ``act`` (a model's own bug)."""

    def act(self, obs):
        """The first K candidates until step 2."""
        from simlab.batch import Slates

        if obs.step >= 2:
            raise ValueError(f"boom in act at step {obs.step}")
        return Slates(obs.user_ids, obs.candidates[:, : obs.slate_size])


@pytest.mark.parametrize("shards", [1, 3])
def test_chaney_world_on_ray_equals_local(ray_local, shards, tmp_path):
    """Chaney's protocol gives the local metrics on Ray.

    No repeats (consumed items kept by the shards; removed from the lists, or ranked and
    passed over by the users: ``consumed_ranked``), every candidate ranked, start-up,
    interleaving, the social graph drawn by a shard, the oracle's utility from the shards
    and nearest-neighbour pairs by the agent's representation and by true preferences.
    """
    agents = [
        {"model": "oracle", "name": "ideal", "known_items": "trained"},
        {"model": "content-filtering"},
        {"model": "social-filtering"},
    ]
    sc = load_scenario(
        Path(__file__).resolve().parents[1] / "scenarios" / "experiments" / "chaney.yaml",
        ["seeds=1", "steps=14", "users.num_users=40", ("agents", agents),
         ("variants", {"repeated": {"platform.startup_steps": 4},
                       "ranked": {"platform.startup_steps": 4, "platform.consumed_ranked": True}})],
    )  # fmt: skip
    local = run_scenario(sc, out_dir=tmp_path / "l").read_metrics()
    ray_sc = sc.model_copy(update={"execution": sc.execution.model_copy(
        update={"backend": "ray", "shards": shards})})  # fmt: skip
    store = run_scenario(ray_sc, out_dir=tmp_path / "r")
    assert store.status == "completed"
    cols = [c for c in store.manifest["metric_columns"] if c != "users/active"]
    a = store.read_metrics().sort_values(["trial", "step"]).reset_index(drop=True)
    b = local.sort_values(["trial", "step"]).reset_index(drop=True)
    for c in cols:
        np.testing.assert_allclose(a[c].to_numpy(float), b[c].to_numpy(float), rtol=1e-9, err_msg=c)


@pytest.mark.parametrize("init_file", [False, True])
def test_worker_code_paths_skip_only_folders_that_shadow_a_package(
    tmp_path, monkeypatch, init_file
):
    """Workers' code folders keep a folder whose same-named subfolder is no package.

    A plain directory cannot shadow an imported package of that name (Python prefers a
    regular package on any path entry); a regular package there could, so its folder is left
    out.
    """
    import sys
    import types

    from simlab.execution import ray_init

    code = tmp_path / "code"
    (code / "dashboard").mkdir(parents=True)
    if init_file:
        (code / "dashboard" / "__init__.py").write_text("")
    elsewhere = types.ModuleType("dashboard")
    elsewhere.__file__ = str(tmp_path / "checkout" / "dashboard" / "__init__.py")
    monkeypatch.setitem(sys.modules, "dashboard", elsewhere)
    monkeypatch.syspath_prepend(str(code))
    assert (str(code.resolve()) in ray_init._code_paths()) is not init_file
