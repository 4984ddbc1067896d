"""A run stopped at the edges of its life resumes to exactly the run it would have been.

Classes of fault (each compared with an uninterrupted reference, rows and event log):
stopped while it is created (before its folders, before its library versions), a fork
stopped before it copied its parent's rows or midway through them, a completed run that
lost the last part of a trial, a trial asked to continue past its rows, and the worker
processes of a killed run (they must not write on alone while a resume may be writing).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from test_faults import _events, _scenario, _wait

from simlab.cli import main
from simlab.store import open_run

PENALTY = "platform.rerankers=[{model: popularity-penalty, weight: 2.0}]"
FORK_STEP = 12


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """The scenario, an uninterrupted run and an uninterrupted fork of it at FORK_STEP."""
    tmp = tmp_path_factory.mktemp("lifecycle")
    scenario = _scenario(tmp)
    assert main(["run", str(scenario), "--out", str(tmp), "--run-id", "ref", "--no-progress"]) == 0
    fork = ["--from", f"{tmp / 'ref'}@{FORK_STEP}", "--set", PENALTY]
    assert main(["run", str(scenario), "--out", str(tmp), "--run-id", "fork", "--no-progress",
                 *fork]) == 0  # fmt: skip
    return {"scenario": scenario, "ref": tmp / "ref", "fork": tmp / "fork", "args": fork}


def _same(run: Path, ref: Path) -> None:
    """``run`` completed with exactly ``ref``'s rows and events, none twice."""
    assert open_run(run).status == "completed"
    keep = [c for c in pd.read_parquet(ref / "metrics.parquet").columns if c != "run_id"]
    got = open_run(run).read_metrics()[keep].reset_index(drop=True)
    want = open_run(ref).read_metrics()[keep].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want)
    pd.testing.assert_frame_equal(_events(run), _events(ref))


# ---------------------------------------------------------------------- stopped while created
@pytest.mark.parametrize("lost", [["metrics.parquet"], ["metrics.journal"],
                                  ["metrics.parquet", "metrics.journal"]])  # fmt: skip
def test_a_run_stopped_as_it_was_created_resumes(runs, tmp_path, monkeypatch, lost):
    """Stopped before its folders (killed in create, or the folders lost): resume makes them."""
    import simlab.store_write as store_write

    def die() -> dict:
        raise KeyboardInterrupt("stopped while starting")

    monkeypatch.setattr(store_write, "library_versions", die)
    args = ["run", str(runs["scenario"]), "--out", str(tmp_path), "--run-id", "s", "--no-progress"]
    assert main(args) == 130
    monkeypatch.undo()
    for name in lost:
        shutil.rmtree(tmp_path / "s" / name)
    assert main(["resume", str(tmp_path / "s"), "--no-progress"]) == 0
    _same(tmp_path / "s", runs["ref"])


# ---------------------------------------------------------------------- forks stopped early
def test_a_fork_stopped_before_it_copied_resumes_as_the_fork(runs, tmp_path, monkeypatch):
    """The first manifest says it is a fork: resume copies the parent's rows and forks."""
    import simlab.runner as runner

    def die(*args, **kwargs):
        raise KeyboardInterrupt("stopped before the copy")

    monkeypatch.setattr(runner, "fork_load", die)
    args = ["run", str(runs["scenario"]), "--out", str(tmp_path), "--run-id", "f",
            "--no-progress", *runs["args"]]  # fmt: skip
    assert main(args) == 130
    monkeypatch.undo()
    manifest = json.loads((tmp_path / "f" / "manifest.json").read_text())
    assert manifest["forked_from"]["step"] == FORK_STEP and manifest["status"] == "interrupted"
    assert main(["resume", str(tmp_path / "f"), "--no-progress"]) == 0
    _same(tmp_path / "f", runs["fork"])


@pytest.mark.parametrize("stop_at", [1, 5, FORK_STEP, FORK_STEP + 3, 2 * FORK_STEP - 1])
def test_a_fork_stopped_while_copying_resumes_without_a_hole(runs, tmp_path, monkeypatch, stop_at):
    """A fork stopped at its ``stop_at``-th copied row resumes without a hole.

    (2 trials x FORK_STEP rows are copied.) Resume copies the rest, then continues from the
    parent's checkpoint: nothing missing, nothing twice.
    """
    from simlab.rows import MetricsWriter

    calls = [0]
    add = MetricsWriter.add

    def counting(self, step, metrics):
        calls[0] += 1
        if calls[0] == stop_at:
            raise KeyboardInterrupt("stopped while copying")
        return add(self, step, metrics)

    monkeypatch.setattr(MetricsWriter, "add", counting)
    args = ["run", str(runs["scenario"]), "--out", str(tmp_path), "--run-id", "f",
            "--no-progress", *runs["args"]]  # fmt: skip
    assert main(args) == 130
    monkeypatch.undo()
    assert main(["resume", str(tmp_path / "f"), "--no-progress"]) == 0
    _same(tmp_path / "f", runs["fork"])


# ---------------------------------------------------------------------- lost last parts
@pytest.mark.parametrize("trial", [0, 1])
def test_a_completed_run_that_lost_a_trials_last_part_is_refused_then_repaired(
    runs, tmp_path, capsys, trial
):
    """Fewer rows than the manifest records: show refuses naming it; resume recomputes."""
    run = tmp_path / "r"
    shutil.copytree(runs["ref"], run)
    parts = sorted((run / "metrics.parquet").glob(f"part-{trial:05d}-*.parquet"))
    kept = len(pd.concat(pd.read_parquet(p) for p in parts[:-1]))
    parts[-1].unlink()
    assert main(["show", str(run)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"trial {trial} " in err and f"has rows for {kept} of the 24 steps" in err
    assert main(["resume", str(run), "--no-progress"]) == 0
    _same(run, runs["ref"])


def test_a_trial_never_continues_past_its_rows(runs, tmp_path):
    """A world ahead of the rows on disk would leave a hole: refused, naming the steps."""
    from simlab.errors import RunStoreError
    from simlab.execution.trial_loop import _run_world
    from simlab.scenario import load_scenario
    from simlab.trials import plan_trials
    from simlab.world import World

    run = tmp_path / "r"
    shutil.copytree(runs["ref"], run)
    store = open_run(run)
    store.manifest["trials"][0]["steps_done"] = 3
    trial = plan_trials(load_scenario(run / "scenario.yaml"))[0]
    world = World(trial.scenario, trial.agent_index, trial.info.seed)
    for t in range(5):
        world.step(t)
    with pytest.raises(RunStoreError, match="continue at step 5 with rows only up to step 2"):
        _run_world(trial, world, store, None)


# ---------------------------------------------------------------------- orphaned workers
def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_the_workers_of_a_killed_run_stop_with_it(tmp_path):
    """SIGKILL of ``simlab run`` (workers: 2): its workers exit at once, writing nothing more.

    Its lock died with it, so a ``simlab resume`` may start writing the same trials: workers
    writing on alone would repeat steps.
    """
    scenario = _scenario(tmp_path, execution={"backend": "local", "workers": 2})
    assert "steps: 24\n" in scenario.read_text()
    scenario.write_text(scenario.read_text().replace("steps: 24\n", "steps: 5000\n"))
    run = tmp_path / "w"
    proc = subprocess.Popen(
        [sys.executable, "-m", "simlab", "run", str(scenario), "--out", str(tmp_path),
         "--run-id", "w", "--no-progress"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip

    def parts() -> list[Path]:
        return sorted((run / "metrics.parquet").glob("part-*.parquet"))

    try:
        _wait(lambda: {p.name[5:10] for p in parts()} == {"00000", "00001"}, proc)
        workers = [p for p in _children(proc.pid) if _alive(p)]
        assert len(workers) >= 2
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 3  # (their trials would run for a minute more)
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    orphans = [p for p in workers if _alive(p)]
    for p in orphans:  # (not left running by a failing test)
        os.kill(p, signal.SIGKILL)
    assert not orphans, "workers ran on after their run was killed"
    written = parts()
    time.sleep(0.5)
    assert parts() == written  # nothing written any more
    assert open_run(run).status == "crashed"  # and `simlab resume` may now take it over
