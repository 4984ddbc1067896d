"""Metric rows that lost or repeat a step: refused by the readers, repaired by ``resume``.

A trial's rows must be steps 0, 1, 2, ... once each. A lost Parquet part leaves a gap (rows
after a missing step); a part written twice repeats steps; a part from another run brings
rows of a trial the manifest does not list. ``show``, ``report``, the dashboard's loader and
``--from`` refuse such a run with a message naming the trial and the step (a silent gap or
repeat would change every mean); ``simlab resume`` drops the trial's rows from its first bad
step on and recomputes them, bit for bit the rows of the undamaged run, even for a run
marked completed. A run still being written is not refused (its parts and journal are read
while they move).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import make_small, rewrite_rows, run_metrics

from simlab.cli import main
from simlab.errors import RunStoreError
from simlab.runlock import RunLock
from simlab.runner import run_scenario
from simlab.store import open_run
from simlab.store_read import step_problems


# ------------------------------------------------------------------ step_problems by hand
def _rows(steps: dict[int, list[int]]) -> pd.DataFrame:
    return pd.DataFrame(
        [(t, s) for t, ss in steps.items() for s in ss], columns=["trial", "step"]
    ).sample(frac=1.0, random_state=0)  # any row order


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ({0: [0, 1, 2], 1: [0, 1]}, {}),
        ({0: []}, {}),
        ({0: [0, 1, 3]}, {0: (2, "has no rows for step 2 but rows after it")}),
        ({0: [1, 2]}, {0: (0, "has no rows for step 0 but rows after it")}),
        ({0: [0, 4, 5]}, {0: (1, "has no rows for step 1-3 but rows after it")}),
        ({0: [0, 1, 1, 2]}, {0: (1, "has step 1 twice")}),
        ({0: [0, 0]}, {0: (0, "has step 0 twice")}),
        ({0: [0, 1, 2, 2, 2]}, {0: (2, "has step 2 twice")}),
        ({0: [0, 1, 1, 3]}, {0: (1, "has step 1 twice")}),  # the first problem decides
        ({0: [-1, 0, 1]}, {0: (0, "has a row for step -1")}),
        ({3: [0, 2], 0: [0, 1], 7: [0, 0]}, {3: (1, "has no rows for step 1 but rows after it"),
                                            7: (0, "has step 0 twice")}),
    ],
)  # fmt: skip
def test_step_problems_by_hand(steps, expected):
    """The first bad step of each damaged trial, and what is wrong there."""
    df = _rows(steps)
    assert step_problems(df if len(df) else pd.DataFrame(columns=["trial", "step"])) == expected


# ------------------------------------------------------------------------ damaged runs
@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A completed run: two agents x two seeds, 8 steps, checkpoints every 3 steps."""
    sc = make_small("output.checkpoint_every=3", steps=8, seeds=2)
    return run_scenario(sc, out_dir=tmp_path_factory.mktemp("src"), run_id="src").path


def _drop(trial: int, steps: set[int]):
    return lambda df: df[~((df["trial"] == trial) & df["step"].isin(steps))]


def _repeat(trial: int, steps: set[int]):
    return lambda df: pd.concat([df, df[(df["trial"] == trial) & df["step"].isin(steps)]])


# name -> (damage, trial, first bad step)
DAMAGES = {
    "lost-middle": (_drop(0, {4}), 0, 4),
    "lost-first": (_drop(2, {0}), 2, 0),
    "lost-several": (_drop(3, {2, 3, 5}), 3, 2),
    "lost-two-trials": (lambda df: _drop(1, {6})(_drop(2, {1})(df)), 1, 6),
    "repeat-one": (_repeat(1, {3}), 1, 3),
    "repeat-tail": (_repeat(0, {5, 6, 7}), 0, 5),
    "repeat-first": (_repeat(3, {0}), 3, 0),
    "repeat-whole-trial": (_repeat(2, set(range(8))), 2, 0),
    "lost-and-repeat": (lambda df: _repeat(0, {2})(_drop(0, {5})(df)), 0, 2),
}


def _damaged(source: Path, tmp_path: Path, name: str, status: str) -> Path:
    run = tmp_path / name
    shutil.copytree(source, run)
    rewrite_rows(run, DAMAGES[name][0])
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["status"] = status
    (run / "manifest.json").write_text(json.dumps(manifest))
    return run


def _run(capsys, *args) -> tuple[int, list[str]]:
    code = main([str(a) for a in args])
    return code, [x for x in capsys.readouterr().err.splitlines() if x.strip()]


@pytest.mark.parametrize("status", ["completed", "interrupted", "failed"])
@pytest.mark.parametrize("name", sorted(DAMAGES))
def test_readers_refuse_and_resume_recomputes(source, tmp_path, capsys, name, status):
    """show/report/the dashboard refuse, naming trial and step; resume repairs exactly."""
    from simlab.dashboard.data import load_run

    run = _damaged(source, tmp_path, name, status)
    _, trial, step = DAMAGES[name]
    for command in (["show", run], ["report", run, "--out", tmp_path / "rep"]):
        code, err = _run(capsys, *command)
        assert code == 2, (command[0], err)
        assert any(f"trial {trial} (" in x and f"step {step}" in x for x in err), err
        assert any(f"simlab resume {run}" in x for x in err), err
    with pytest.raises(RunStoreError, match=f"trial {trial} "):
        load_run(run)
    code, err = _run(capsys, "resume", run, "--no-progress", "--backend", "local")
    assert code == 0, err
    assert any(
        x.startswith("warning: ") and f"trial {trial} " in x and f"from step {step} on" in x
        for x in err
    ), err
    pd.testing.assert_frame_equal(run_metrics(run), run_metrics(source))
    assert open_run(run).manifest["status"] == "completed"
    assert [t["steps_done"] for t in open_run(run).manifest["trials"]] == [8] * 4
    assert _run(capsys, "show", run)[0] == 0


def test_an_intact_completed_run_is_still_not_resumed(source, tmp_path, capsys):
    """Resume repairs a completed run only when its rows are damaged."""
    run = tmp_path / "ok"
    shutil.copytree(source, run)
    code, err = _run(capsys, "resume", run, "--no-progress", "--backend", "local")
    assert code == 2 and "already completed; nothing to resume" in err[0]


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda df: pd.concat([df, df[df["trial"] == 0].assign(trial=9)]), "trial 9 (random"),
        (lambda df: pd.concat([df, df[df["trial"] == 0].assign(trial=-1)]), "trial -1 ("),
        (lambda df: df.assign(agent="other"), "(other, seed 0), the manifest's is random"),
        (lambda df: df.assign(seed=df["seed"] + 5), "seed 5), the manifest's is random, seed 0"),
    ],
)
def test_rows_of_a_trial_the_manifest_does_not_list_are_refused(
    source, tmp_path, capsys, change, fragment
):
    """A part from another run: every reader refuses it, resume included."""
    run = tmp_path / "foreign"
    shutil.copytree(source, run)
    rewrite_rows(run, change)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["status"] = "interrupted"
    (run / "manifest.json").write_text(json.dumps(manifest))
    for command in (
        ["show", run],
        ["report", run, "--out", tmp_path / "rep"],
        ["resume", run, "--no-progress", "--backend", "local"],
    ):
        code, err = _run(capsys, *command)
        assert code == 2, (command[0], err)
        assert any(fragment in x and "another run" in x for x in err), (command[0], err)


@pytest.mark.parametrize("name", ["lost-middle", "repeat-one", "lost-first"])
def test_a_fork_refuses_a_damaged_source_and_takes_the_repaired_one(source, tmp_path, capsys, name):
    """``--from`` copies the rows before the fork step: a damaged source is refused."""
    run = _damaged(source, tmp_path, name, "interrupted")
    scenario = run / "scenario.yaml"
    argv = ["run", scenario, "--from", f"{run}@6", "--out", tmp_path / "forks", "--no-progress"]
    code, err = _run(capsys, *argv[:-1], "--run-id", "f1", "--no-progress")
    assert code == 2 and any("simlab resume" in x for x in err), err
    assert _run(capsys, "resume", run, "--no-progress", "--backend", "local")[0] == 0
    code, err = _run(capsys, *argv[:-1], "--run-id", "f2", "--no-progress")
    assert code == 0, err
    pd.testing.assert_frame_equal(run_metrics(tmp_path / "forks" / "f2"), run_metrics(source))


def test_a_run_being_written_is_read_as_it_is(source, tmp_path):
    """While a writer holds the run, a gap may be a part between rename and journal: no error."""
    run = _damaged(source, tmp_path, "lost-middle", "running")
    lock = RunLock(run)
    lock.acquire()
    try:
        rows = open_run(run).read_metrics()
        assert len(rows) == 8 * 4 - 1
    finally:
        lock.release()
    with pytest.raises(RunStoreError, match="has no rows for step 4"):
        open_run(run).read_metrics()  # the writer is gone: a crashed run is checked


@pytest.mark.parametrize(
    ("key", "column"),
    [("metric_columns", "engagement/not_measured"), ("sweep_columns", "platform.slate_size"),
     ("metric_columns", "source/made_up")],
)  # fmt: skip
def test_a_manifest_column_no_part_holds_is_refused_naming_the_part(
    source, tmp_path, capsys, key, column
):
    """A column of the manifest that the parts lack is not read as all-NaN: refused, named."""
    run = tmp_path / "r"
    shutil.copytree(source, run)
    manifest = json.loads((run / "manifest.json").read_text())
    assert column not in manifest[key]
    manifest[key] = [*manifest[key], column]
    if key == "sweep_columns":
        for t in manifest["trials"]:
            t["params"][column] = 5
    (run / "manifest.json").write_text(json.dumps(manifest))
    for command in (["show", str(run)], ["report", str(run), "--out", str(tmp_path / "rep")]):
        code, err = _run(capsys, *command)
        assert code == 2, (command, err)
        assert "part-" in err[0] and f"lacks the column(s) {column}" in err[0], err
