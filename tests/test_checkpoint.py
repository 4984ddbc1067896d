"""Checkpoints, resume and fork (local backend; the Ray versions are in test_ray_execution).

A world restored from a checkpoint continues exactly like the uninterrupted world; a fork
under unchanged settings reproduces the original from the fork step on, and under changed
settings keeps the steps before it and then departs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import SMALL, make_small

from simlab.checkpoint import checkpoint_meta, checkpoint_steps, read_checkpoint, write_checkpoint
from simlab.cli import main
from simlab.errors import RunStoreError, ScenarioError
from simlab.runner import parse_fork, resume_run, run_scenario
from simlab.world import World

METRICS = ["engagement/ctr", "exposure/gini", "echo/homogenization", "echo/interest_drift"]


def _rows(world: World, steps: range) -> list[dict[str, float]]:
    return [world.step(t) for t in steps]


@pytest.mark.parametrize(
    "agent",
    [
        {"model": "popularity"},
        {"model": "oracle"},
        {"model": "thompson"},
        {"model": "linucb"},
        {"model": "mf", "factors": 4, "epochs": 2},
        {"model": "gru4rec", "factors": 8, "epochs": 1},
    ],
    ids=lambda a: a["model"],
)
def test_restored_world_continues_exactly(agent, tmp_path):
    """Checkpoint after 9 steps, write and read the file, restore: steps 9.. are identical."""
    sc = make_small(
        "users.drift_rate=0.05",
        "users.fatigue_weight=0.5",
        "users.churn_threshold=0.3",
        agents=[agent],
        steps=18,
    )
    straight = World(sc, 0, 3)
    expected = _rows(straight, range(18))
    first = World(sc, 0, 3)
    _rows(first, range(9))
    meta = checkpoint_meta("r", 0, "a", 3, {}, 9)
    write_checkpoint(tmp_path, 0, 9, first.checkpoint(), meta)
    state = read_checkpoint(tmp_path, 0, 9)
    again = World(sc, 0, 3)
    again.restore(state)
    assert again.t == 9
    got = _rows(again, range(9, 18))
    np.testing.assert_equal(got, expected[9:])  # NaN (undefined) equals NaN


def test_checkpoint_files_are_atomic_and_listed(tmp_path):
    """Checkpoints are listed by step; a missing step names the steps that exist."""
    for t in (10, 5):
        write_checkpoint(
            tmp_path, 0, t, {"format": 2, "t": t}, checkpoint_meta("r", 0, "a", 0, {}, t)
        )
    (tmp_path / "checkpoints" / "trial=0" / ".step=15.ckpt.tmp-1").write_bytes(b"half")
    assert checkpoint_steps(tmp_path, 0) == [5, 10]
    assert read_checkpoint(tmp_path, 0, 10)["t"] == 10
    with pytest.raises(
        RunStoreError, match=r"no checkpoint at step 7; checkpoints exist at steps \[5, 10\]"
    ):
        read_checkpoint(tmp_path, 0, 7)
    (tmp_path / "checkpoints" / "trial=0" / "step=5.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(RunStoreError, match="corrupt checkpoint"):
        read_checkpoint(tmp_path, 0, 5)


def test_run_writes_checkpoints_every_c_steps_and_prunes(tmp_path):
    """Checkpoints come every C steps; ``keep_checkpoints`` keeps the newest ones."""
    sc = make_small("output.checkpoint_every=4", "output.keep_checkpoints=2", steps=15)
    store = run_scenario(sc, out_dir=tmp_path)
    for trial in range(2):
        assert checkpoint_steps(store.path, trial) == [8, 12]
    sc = make_small("output.checkpoint_every=0", steps=6)
    store = run_scenario(sc, out_dir=tmp_path)
    assert not (store.path / "checkpoints").exists()


def _metrics(store) -> pd.DataFrame:
    df = store.read_metrics()
    return df.set_index(["agent", "seed", "step"])[METRICS].sort_index()


def test_fork_unchanged_reproduces_and_changed_departs(tmp_path):
    """A fork at t with no change equals the original from t on.

    With a re-ranker switched on, steps before t are identical and later ones differ.
    """
    base = make_small("output.checkpoint_every=10", "users.drift_rate=0.05", steps=30)
    original = run_scenario(base, out_dir=tmp_path, run_id="orig")
    ref = _metrics(original)

    same = run_scenario(base, out_dir=tmp_path, run_id="same", fork=(original.path, 10))
    assert same.manifest["forked_from"]["step"] == 10
    pd.testing.assert_frame_equal(_metrics(same), ref)

    changed_sc = make_small(
        "output.checkpoint_every=10",
        "users.drift_rate=0.05",
        ("platform.rerankers", [{"model": "popularity-penalty", "weight": 2.0}]),
        steps=30,
    )
    changed = run_scenario(changed_sc, out_dir=tmp_path, run_id="changed", fork=(original.path, 10))
    got = _metrics(changed)
    before = got.index.get_level_values("step") < 10
    pd.testing.assert_frame_equal(got[before], ref[before])
    after = got[~before]
    assert not np.allclose(after["exposure/gini"], ref[~before]["exposure/gini"])


def test_fork_transfers_learned_state_to_a_changed_agent(tmp_path):
    """Switching MF to IPS debiasing at the fork step rebuilds the agent with its learned state."""
    mf = {"model": "mf", "factors": 4, "epochs": 2}
    base = make_small("output.checkpoint_every=6", agents=[mf], steps=12)
    original = run_scenario(base, out_dir=tmp_path, run_id="orig")
    debiased = make_small("output.checkpoint_every=6", agents=[{**mf, "debias": "ips"}], steps=12)
    fork = run_scenario(debiased, out_dir=tmp_path, run_id="ips", fork=(original.path, 6))
    assert fork.status == "completed"
    assert sorted(fork.read_metrics()["step"]) == list(range(12))


def test_fork_errors_name_the_problem(tmp_path):
    """Unknown fork step, an agent the source lacks, a changed population: clear errors."""
    base = make_small("output.checkpoint_every=5", steps=10)
    original = run_scenario(base, out_dir=tmp_path, run_id="orig")
    with pytest.raises(
        RunStoreError, match=r"no checkpoint at step 3; checkpoints exist at steps \[5\]"
    ):
        run_scenario(base, out_dir=tmp_path, fork=(original.path, 3))
    other = make_small("output.checkpoint_every=5", agents=[{"model": "oracle"}], steps=10)
    with pytest.raises(RunStoreError, match="no trial of agent 'oracle' with seed 0"):
        run_scenario(other, out_dir=tmp_path, fork=(original.path, 5))
    bigger = make_small("output.checkpoint_every=5", "users.num_users=400", steps=10)
    with pytest.raises(ScenarioError, match="users: the checkpoint's user state does not fit"):
        run_scenario(bigger, out_dir=tmp_path, fork=(original.path, 5))
    with pytest.raises(RunStoreError, match="expects RUN@STEP"):
        parse_fork("runs/x")
    assert parse_fork("runs/a@b@12") == ("runs/a@b", 12)


def test_resume_refuses_completed_runs_and_other_settings(tmp_path):
    """Resume continues stopped runs only, and changes execution settings only."""
    store = run_scenario(make_small(steps=4), out_dir=tmp_path, run_id="done")
    with pytest.raises(RunStoreError, match="already completed"):
        resume_run(store.path)
    store.manifest["status"] = "interrupted"
    store.save_manifest()
    with pytest.raises(RunStoreError, match="only execution.\\* settings may change"):
        resume_run(store.path, ["users.drift_rate=0.5"])


def _scenario_file(tmp_path: Path, **changes) -> Path:
    data = {**SMALL, **changes}
    data["users"] = {**SMALL["users"], "num_users": 1500, "drift_rate": 0.05}
    data["output"] = {"flush_seconds": 0.0, "checkpoint_every": 5}
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _wait_for(predicate, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the run")
        time.sleep(0.05)


def kill_then_resume(tmp_path: Path, scenario: Path, extra: list[str]) -> tuple[Path, Path]:
    """Start ``simlab run`` as a process, SIGKILL it after a checkpoint, then resume it."""
    out = tmp_path / "runs"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "simlab", "run", str(scenario), "--out", str(out)]
    proc = subprocess.Popen(
        [*cmd, "--run-id", "killed", "--no-progress", *extra],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    run = out / "killed"
    try:
        _wait_for(lambda: (run / "checkpoints" / "trial=0" / "step=10.ckpt").exists())
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert main(["show", str(run)]) == 0  # readable, reported as crashed
    code = main(["resume", str(run), "--no-progress", *extra])
    assert code == 0
    reference = tmp_path / "reference"
    assert (
        main(
            [
                "run",
                str(scenario),
                "--out",
                str(reference),
                "--run-id",
                "ref",
                "--no-progress",
                *extra,
            ]
        )
        == 0
    )
    return run, reference / "ref"


def test_kill_the_run_process_then_resume_gives_the_same_metrics(tmp_path):
    """SIGKILL ``simlab run`` mid-run; ``simlab resume`` finishes with identical metrics."""
    from simlab.store import open_run

    scenario = _scenario_file(tmp_path, steps=40)
    run, reference = kill_then_resume(tmp_path, scenario, ["--backend", "local"])
    resumed, ref = open_run(run), open_run(reference)
    assert resumed.status == "completed"
    assert resumed.manifest["resumed"]
    a, b = resumed.read_metrics(), ref.read_metrics()
    assert len(a) == len(b) == 2 * 40
    cols = resumed.manifest["metric_columns"]
    pd.testing.assert_frame_equal(a[["trial", "step", *cols]], b[["trial", "step", *cols]])


RERANKERS = [
    {"model": m}
    for m in ("popularity-penalty", "mmr", "exploration-floor", "calibration", "xquad", "fair")
]


def _every_agent() -> list[dict]:
    from simlab import registry

    extra = {"mf": {"factors": 4, "epochs": 1}, "gru4rec": {"factors": 8, "epochs": 1}}
    return [{"model": m, **extra.get(m, {})} for m in registry.names("agents")]


def _chaney_world(*extra):
    """Chaney's users and items with no repeat consumption, every candidate ranked."""
    return (
        ("users", {"model": "chaney", "num_users": 60}),
        ("content", {"model": "chaney-items", "items_per_step": 8, "initial_items": 20}),
        "platform.exclude_consumed=true",
        *extra,
    )


@pytest.mark.parametrize("agent", _every_agent(), ids=lambda a: a["model"])
def test_every_component_continues_exactly_from_a_data_only_checkpoint(agent, tmp_path):
    """Every registered agent, with every re-ranker and metric on, restores bit for bit.

    The checkpoint goes through the file (JSON and .npy only), so a component whose state
    is incomplete, or is not data, fails here. Agents that recommend from the users' social
    graph run in Chaney's world (the only users with one).
    """
    from simlab import registry

    if getattr(registry.resolve("agents", agent["model"]), "needs_social_graph", False):
        world = _chaney_world(("platform.rerankers", RERANKERS[:3]))
    else:
        world = (
            "users.drift_rate=0.05",
            "users.fatigue_weight=0.5",
            "users.churn_threshold=0.3",
            ("content.phases", [{"aigc_share": 0.5}]),
            ("platform.rerankers", RERANKERS),
        )
    sc = make_small(*world, agents=[agent], steps=12)
    straight = World(sc, 0, 3)
    expected = _rows(straight, range(12))
    first = World(sc, 0, 3)
    _rows(first, range(7))
    write_checkpoint(tmp_path, 0, 7, first.checkpoint(), checkpoint_meta("r", 0, "a", 3, {}, 7))
    again = World(sc, 0, 3)
    again.restore(read_checkpoint(tmp_path, 0, 7))
    np.testing.assert_equal(_rows(again, range(7, 12)), expected[7:])


@pytest.mark.parametrize(
    "users, content",
    [
        ({"model": "interest-evolution", "num_users": 200}, {"model": "recsim-corpus"}),
        ({"model": "logit", "num_users": 200}, {"model": "creators", "rewrite_share": 0.5}),
    ],
    ids=["interest-evolution", "creators-rewrites"],
)
def test_other_world_models_continue_exactly(users, content, tmp_path):
    """The other user and content models restore bit for bit too."""
    sc = make_small(
        "world.dim=8",
        ("users", users),
        (
            "content",
            {
                **content,
                **({"phases": [{"aigc_share": 0.5}]} if "rewrite_share" in content else {}),
            },
        ),
        agents=[{"model": "popularity"}],
        steps=10,
    )
    expected = _rows(World(sc, 0, 1), range(10))
    first = World(sc, 0, 1)
    _rows(first, range(5))
    write_checkpoint(tmp_path, 0, 5, first.checkpoint(), checkpoint_meta("r", 0, "a", 1, {}, 5))
    again = World(sc, 0, 1)
    again.restore(read_checkpoint(tmp_path, 0, 5))
    np.testing.assert_equal(_rows(again, range(5, 10)), expected[5:])


def test_state_that_is_not_data_is_refused_when_written(tmp_path):
    """A component whose state holds an object fails at write time, naming the path."""
    from simlab.state import StateFormatError

    class Thing:
        pass

    with pytest.raises(StateFormatError, match=r"state\.agent\.model\.w: a .*Thing cannot be"):
        write_checkpoint(
            tmp_path,
            0,
            1,
            {"agent": {"model": {"w": Thing()}}},
            checkpoint_meta("r", 0, "a", 0, {}, 1),
        )
    assert not list((tmp_path / "checkpoints" / "trial=0").iterdir())


@pytest.mark.parametrize("slate", [0, 6])
def test_chaney_protocol_continues_exactly(slate, tmp_path):
    """Chaney's protocol resumes bit for bit.

    No repeat consumption (consumed items per user), every candidate or a fixed slate,
    start-up, interleaving, Chaney's recommenders and nearest-neighbour pairs.
    """
    agents = [
        {"model": "oracle", "known_items": "trained"},
        {"model": "content-filtering"},
        {"model": "implicit-mf", "warm_start": True, "iterations": 3},
        {"model": "social-filtering"},
        {"model": "popularity", "cumulative": True},
    ]
    sc = make_small(
        *_chaney_world(
            f"platform.slate_size={slate}",
            "platform.startup_steps=3",
            "platform.startup_candidates=new",
            "platform.retrain_every=1",
            "platform.log_window=3",
            ("platform.rerankers", [{"model": "interleave-new"}]),
        ),
        agents=agents,
        metrics=["engagement", "homogenization", "homogenization_nn"],
        steps=12,
    )
    for a in range(len(agents)):
        expected = _rows(World(sc, a, 2), range(12))
        first = World(sc, a, 2)
        _rows(first, range(7))
        folder = tmp_path / str(a)
        write_checkpoint(folder, 0, 7, first.checkpoint(), checkpoint_meta("r", 0, "a", 2, {}, 7))
        again = World(sc, a, 2)
        again.restore(read_checkpoint(folder, 0, 7))
        np.testing.assert_equal(_rows(again, range(7, 12)), expected[7:])
