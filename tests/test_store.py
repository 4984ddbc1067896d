"""Run directories: what a run writes, partial runs read back, corrupt directories.

Runs killed or stopped by a signal, and failed trials, are in ``test_stopped_runs.py``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest
from conftest import make_small

from simlab.errors import RunStoreError
from simlab.runner import metric_columns, run_scenario
from simlab.scenario import load_scenario
from simlab.store import ID_COLUMNS, RunStore, TrialInfo, list_runs, open_run, read_metrics

STEPS = 6
AIGC = (("content.phases", [{"aigc_share": 0.5}]), "content.rewrite_share=0.5")


@pytest.fixture(scope="module")
def completed(tmp_path_factory: pytest.TempPathFactory) -> RunStore:
    """A finished run: two agents x two seeds x STEPS steps.

    AIGC and rewrites are on, so every source measure is defined.
    """
    sc = make_small(*AIGC, steps=STEPS, seeds=2)
    return run_scenario(sc, out_dir=tmp_path_factory.mktemp("runs"), run_id="done")


def test_run_directory_layout(completed: RunStore):
    """A run writes the resolved scenario, the manifest and the metrics dataset."""
    assert completed.path.name == "done"
    assert (completed.path / "scenario.yaml").is_file()
    assert (completed.path / "manifest.json").is_file()
    assert list((completed.path / "metrics.parquet").glob("part-*.parquet"))
    assert list((completed.path / "metrics.journal").iterdir()) == []
    assert not (completed.path / "events").exists()


def test_scenario_yaml_loads_back(completed: RunStore):
    """scenario.yaml is the fully resolved scenario and validates again."""
    sc = load_scenario(completed.path / "scenario.yaml")
    assert sc.resolved_dict() == make_small(*AIGC, steps=STEPS, seeds=2).resolved_dict()


def test_manifest(completed: RunStore):
    """The manifest records status, versions, seeds, agents and every trial's progress."""
    m = json.loads((completed.path / "manifest.json").read_text(encoding="utf-8"))
    assert m["status"] == "completed"
    assert m["run_id"] == "done"
    assert m["scenario"] == "small"
    assert m["ended"] is not None and m["error"] is None
    assert {"simlab", "python", "numpy", "pandas", "pyarrow", "pydantic"} <= set(m["versions"])
    assert m["seeds"] == [0, 1]
    assert m["agents"] == ["random", "popularity"]
    assert m["metric_columns"] == metric_columns(make_small())
    assert m["sweep_columns"] == []
    assert [(t["agent"], t["seed"]) for t in m["trials"]] == [
        ("random", 0),
        ("random", 1),
        ("popularity", 0),
        ("popularity", 1),
    ]
    assert all(t["status"] == "completed" and t["steps_done"] == STEPS for t in m["trials"])
    assert open_run(completed.path).status == "completed"


def test_metrics_parquet(completed: RunStore):
    """metrics.parquet has the id columns and one column per metric, one row per step."""
    df = pd.read_parquet(completed.path / "metrics.parquet")
    metrics = completed.manifest["metric_columns"]
    assert list(df.columns) == [*ID_COLUMNS, *metrics]
    assert len(df) == 4 * STEPS
    assert set(df["run_id"]) == {"done"}
    for trial, g in df.groupby("trial"):
        assert sorted(g["step"]) == list(range(STEPS))
        t = completed.manifest["trials"][trial]
        assert set(g["agent"]) == {t["agent"]} and set(g["seed"]) == {t["seed"]}
    assert df[metrics].notna().any().all()


def test_read_metrics_matches_parquet(completed: RunStore):
    """``read_metrics`` returns the same rows as pandas, sorted by trial and step."""
    df = read_metrics(completed.path)
    assert list(df[["trial", "step"]].itertuples(index=False, name=None)) == [
        (t, s) for t in range(4) for s in range(STEPS)
    ]
    direct = pd.read_parquet(completed.path / "metrics.parquet")
    direct = direct.sort_values(["trial", "step"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(df, direct, check_dtype=False)


def test_events_log(tmp_path: Path):
    """With output.events the log has one row per impression, one click per clicking user."""
    sc = make_small("output.events=true", steps=4)
    store = run_scenario(sc, out_dir=tmp_path)
    events = ds.dataset(store.path / "events", partitioning="hive").to_table().to_pandas()
    assert len(pd.read_parquet(store.path / "events")) == len(events)
    k = sc.platform.slate_size
    assert {"trial", "step", "user_id", "position", "item_id", "clicked", "engagement"} <= set(
        events.columns
    )
    per_user = events.groupby(["trial", "step", "user_id"])
    assert (per_user.size() == k).all()
    assert per_user["position"].agg(lambda pos: sorted(pos) == list(range(k))).all()
    assert (per_user["item_id"].nunique() == k).all()
    assert per_user["clicked"].sum().max() == 1
    assert (events.loc[~events["clicked"], "engagement"] == 0).all()
    # the log agrees with the metrics: served users and click-through rate per step
    metrics = store.read_metrics().set_index(["trial", "step"])
    users = per_user.size().groupby(["trial", "step"]).size()
    clicks = per_user["clicked"].sum().groupby(["trial", "step"]).sum()
    assert sorted(users.index) == sorted(metrics.index)
    assert (users == metrics.loc[users.index, "users/active"]).all()
    ctr = clicks / users
    assert ctr.to_numpy() == pytest.approx(metrics.loc[ctr.index, "engagement/ctr"].to_numpy())


def test_sweep_run_has_sweep_column(tmp_path: Path):
    """A sweep run has one column per swept field, and the points really differ."""
    sc = make_small(sweep={"users.num_users": [50, 200]}, agents=[{"model": "random"}], steps=3)
    store = run_scenario(sc, out_dir=tmp_path)
    assert store.manifest["sweep_columns"] == ["users.num_users"]
    df = pd.read_parquet(store.path / "metrics.parquet")
    assert list(df.columns[: len(ID_COLUMNS) + 1]) == [*ID_COLUMNS, "users.num_users"]
    assert len(df) == 2 * 3
    assert sorted(set(df["users.num_users"])) == [50, 200]
    assert [t["params"] for t in store.manifest["trials"]] == [
        {"users.num_users": 50},
        {"users.num_users": 200},
    ]
    assert (df.loc[df["users.num_users"] == 50, "users/active"] <= 50).all()
    assert (df.loc[df["users.num_users"] == 200, "users/active"] > 50).any()


# ---------------------------------------------------------------------- partial runs
def _writer_store(tmp_path: Path) -> tuple[RunStore, TrialInfo]:
    trial = TrialInfo(0, "random", 0, 0, {})
    store = RunStore.create(tmp_path, "unit", "name: unit\n", [trial], ["m"], run_id="partial")
    return store, trial


def test_journal_and_parts_merge_and_recover(tmp_path: Path):
    """Rows in Parquet parts and in the journal merge without gaps; recover folds them."""
    store, trial = _writer_store(tmp_path)
    writer = store.metrics_writer(trial, flush_seconds=1e9)
    for t in range(3):
        writer.add(t, {"m": float(t)})
    writer.flush()
    for t in range(3, 7):
        writer.add(t, {"m": float("nan") if t == 5 else float(t)})
    # no close: the process "dies" here, with rows 3..6 only in the journal
    df = open_run(store.path).read_metrics()
    assert df["step"].tolist() == list(range(7))
    assert df["m"].isna().tolist() == [t == 5 for t in range(7)]
    assert store.recover() == 4
    assert list((store.path / "metrics.journal").iterdir()) == []
    direct = pd.read_parquet(store.path / "metrics.parquet").sort_values("step")
    assert direct["step"].tolist() == list(range(7))
    assert store.recover() == 0  # idempotent


def test_journal_of_flushed_part_not_double_counted(tmp_path: Path):
    """A journal left behind next to its own Parquet part is not read twice."""
    store, trial = _writer_store(tmp_path)
    writer = store.metrics_writer(trial, flush_seconds=1e9)
    for t in range(3):
        writer.add(t, {"m": 1.0})
    journal = next((store.path / "metrics.journal").iterdir())
    saved = journal.read_text(encoding="utf-8")
    writer.flush()
    journal.write_text(saved, encoding="utf-8")  # killed between part write and unlink
    assert open_run(store.path).read_metrics()["step"].tolist() == [0, 1, 2]
    assert store.recover() == 0


def test_cut_journal_line_ignored(tmp_path: Path):
    """A journal line cut by a kill is dropped; the rows before it are kept."""
    store, trial = _writer_store(tmp_path)
    writer = store.metrics_writer(trial, flush_seconds=1e9)
    for t in range(4):
        writer.add(t, {"m": 1.0})
    writer._journal.write('{"run_id": "partial", "tri')
    writer._journal.flush()
    assert open_run(store.path).read_metrics()["step"].tolist() == [0, 1, 2, 3]


# ---------------------------------------------------------------------- corrupt runs
def _corrupt_manifest_json(run: Path) -> None:
    (run / "manifest.json").write_text('{"run_id": "x", "status": ', encoding="utf-8")


def _manifest_missing_keys(run: Path) -> None:
    m = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    del m["trials"], m["metric_columns"]
    (run / "manifest.json").write_text(json.dumps(m), encoding="utf-8")


def _manifest_bad_trials(run: Path) -> None:
    m = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    m["trials"] = "four"
    (run / "manifest.json").write_text(json.dumps(m), encoding="utf-8")


def _manifest_not_object(run: Path) -> None:
    (run / "manifest.json").write_text("[1, 2]", encoding="utf-8")


def _no_manifest(run: Path) -> None:
    (run / "manifest.json").unlink()


def _truncated_part(run: Path) -> None:
    part = sorted((run / "metrics.parquet").glob("part-*.parquet"))[0]
    part.write_bytes(part.read_bytes()[:100])


CORRUPTIONS = {
    "manifest-invalid-json": (_corrupt_manifest_json, "manifest.json: corrupt manifest ("),
    "manifest-missing-keys": (
        _manifest_missing_keys,
        "manifest.json: corrupt manifest, missing trials, metric_columns",
    ),
    "manifest-bad-trials": (
        _manifest_bad_trials,
        "manifest.json: corrupt manifest, malformed trials (expected a list, got 'four')",
    ),
    "manifest-not-object": (_manifest_not_object, "corrupt manifest, expected a JSON object"),
    "no-manifest": (_no_manifest, "not a run directory (no manifest.json)"),
    "truncated-part": (_truncated_part, ": corrupt metrics part ("),
}


@pytest.fixture(scope="module")
def corrupt_runs(completed: RunStore, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with one damaged copy of the completed run per corruption, plus a good one."""
    parent = tmp_path_factory.mktemp("corrupt")
    shutil.copytree(completed.path, parent / "good")
    for name, (damage, _) in CORRUPTIONS.items():
        shutil.copytree(completed.path, parent / name)
        damage(parent / name)
    return parent


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_corrupt_run_raises_run_store_error(corrupt_runs: Path, name: str):
    """A damaged run directory gives RunStoreError with a clear message, not a crash."""
    fragment = CORRUPTIONS[name][1]
    with pytest.raises(RunStoreError, match=re.escape(fragment)):
        read_metrics(corrupt_runs / name)


def test_missing_run_directory(tmp_path: Path):
    """Opening a path that does not exist says so."""
    with pytest.raises(RunStoreError, match=re.escape("no-such-run: no such run directory")):
        open_run(tmp_path / "no-such-run")


def test_open_run_by_id_under_runs_dir(completed: RunStore):
    """A run id is looked up under ``runs_dir``."""
    assert open_run("done", runs_dir=completed.path.parent).path == completed.path


def _simlab(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "400"}
    cmd = [sys.executable, "-m", "simlab", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)


def test_show_corrupt_run_is_one_line(corrupt_runs: Path):
    """``simlab show`` on damaged runs exits 2 with one error line and no traceback."""
    for name in ("manifest-invalid-json", "truncated-part"):
        proc = _simlab("show", corrupt_runs / name)
        assert "Traceback" not in proc.stderr
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, proc.stderr
        assert proc.returncode == 2
        assert re.search(re.escape(CORRUPTIONS[name][1]), lines[0])


def test_show_corrupt_run_in_process(corrupt_runs: Path, capsys):
    """Every corruption gives exit code 2 and one error line from ``simlab show``."""
    from simlab.cli import main

    for name, (_, fragment) in CORRUPTIONS.items():
        assert main(["show", str(corrupt_runs / name)]) == 2
        lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(lines) == 1, lines
        assert lines[0].startswith("error: ") and fragment in lines[0]


def test_runs_lists_corrupt_directories(corrupt_runs: Path):
    """``simlab runs`` lists damaged directories as corrupt instead of crashing."""
    runs = {r.path.name: r for r in list_runs(corrupt_runs)}
    assert runs["good"].status == "completed"
    assert runs["truncated-part"].status == "completed"  # the manifest itself is fine
    for name in CORRUPTIONS:
        if name.startswith(("manifest", "no-manifest")):
            assert runs[name].status == "corrupt"
            assert CORRUPTIONS[name][1] in (runs[name].problem or "")
    proc = _simlab("runs", "--dir", corrupt_runs)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    rows = [line.split("│")[1:3] for line in proc.stdout.splitlines() if line.startswith("│")]
    status = {}
    for run_id, state in rows:
        if run_id.strip():  # a long problem text wraps onto continuation lines
            status.setdefault(run_id.strip(), []).append(state.strip())
    # runs are listed by folder name (what `simlab show` accepts), not the manifest's run id
    assert status.pop("good") == ["completed"]
    assert status.pop("truncated-part") == ["completed"]
    assert status == {
        name: ["corrupt"] for name in CORRUPTIONS if name.startswith(("manifest", "no-manifest"))
    }


@pytest.mark.parametrize(
    ("agent", "kind"),
    [
        ({"model": "random"}, "sampled"),
        ({"model": "epsilon-greedy", "epsilon": 0.3}, "sampled"),
        ({"model": "mf", "factors": 4}, "sampled"),
        ({"model": "popularity"}, "sampled"),  # equal counts in a random order
        ({"model": "ucb1"}, "sampled"),  # never-shown items in a random order
        ({"model": "linucb"}, "deterministic"),
        ({"model": "thompson"}, "unknown"),
        (
            {"model": "random", "rerankers": [{"model": "popularity-penalty", "weight": 1.0}]},
            "unknown",
        ),
    ],
    ids=["random", "eps-greedy", "mf", "popularity", "ucb1", "linucb", "thompson", "re-ranked"],
)
def test_events_log_features_and_propensities(tmp_path: Path, agent, kind):
    """The log keeps the context features and the logging policy's slot propensities."""
    from simlab.world import World

    sc = make_small("output.events=true", "platform.max_candidates=40", steps=8, agents=[agent])
    store = run_scenario(sc, out_dir=tmp_path)
    assert store.manifest["trials"][0]["logging_policy"] == kind
    ev = pd.read_parquet(store.path / "events")
    prop = ev["propensity"].to_numpy()
    c, eps = 40, agent.get("epsilon", 0.0)
    if kind == "deterministic":
        assert (prop == 1.0).all()
    elif kind == "unknown":
        assert np.isnan(prop).all()
    elif agent["model"] == "epsilon-greedy":  # (1 - eps) q + eps / C, q = 0, 1 or 1 / g
        q = (prop - eps / c) / (1 - eps)
        assert q.min() > -1e-12 and q.max() < 1 + 1e-12 and (q > 0.5).any()
        g = 1 / q[q > 1e-12]
        np.testing.assert_allclose(g, np.round(g), rtol=1e-9)
    elif agent["model"] in ("popularity", "ucb1"):  # 1 / g for a group of g tied candidates
        g = 1 / prop
        np.testing.assert_allclose(g, np.round(g), rtol=1e-9)
        assert g.max() <= c and (prop == 1 / c).any() and (prop > 1 / c).any()
    elif agent["model"] == "mf":  # random before the first retrain, top-K after
        per_step = ev.groupby("step")["propensity"].agg(["min", "max"])
        assert (per_step["min"] == per_step["max"]).all()
        values = per_step["min"].to_numpy()
        switch = int(np.argmax(values == 1.0))
        assert 0 < switch and (values[:switch] == 1 / c).all() and (values[switch:] == 1).all()
    else:
        assert (prop == 1 / c).all()
    world = World(sc, 0, sc.seeds[0])
    users = np.stack(ev["user_features"].to_numpy())
    want = world.users.observable_features(ev["user_id"].to_numpy())
    np.testing.assert_allclose(users, want, rtol=1e-6)
    items = np.stack(ev["item_features"].to_numpy())
    assert items.shape == (len(ev), sc.world.dim)
    first = ev.groupby("item_id").head(1).index  # an item's features never change
    lookup = dict(zip(ev.loc[first, "item_id"], items[first], strict=True))
    np.testing.assert_array_equal(items, np.stack([lookup[i] for i in ev["item_id"]]))
