"""Runs that end early: killed or signalled runs read back, and failed or stopped trials.

A SIGKILLed run reads as crashed and keeps every finished step; a SIGTERMed one closes as
interrupted, its trial too. A trial that fails says so: the failure is a world's own (without
repeat consumption a small static catalog runs out for some user, a ``ScenarioError`` at a step
no rule can foresee, since it depends on the clicks). The run ends ``failed`` with the error;
the failing trial is ``failed`` with the rows it kept (never ``running``), and the rows on disk
are the steps before the failure.
"""

from __future__ import annotations

import copy
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import SMALL

from simlab.errors import ScenarioError
from simlab.runner import run_scenario
from simlab.scenario import parse_scenario
from simlab.store import list_runs, open_run, read_metrics


# ---------------------------------------------------------------------- killed runs
def _long_scenario(tmp_path: Path, workers: int = 0) -> Path:
    data = copy.deepcopy(SMALL)
    data.update(steps=1_000_000, agents=[{"model": "random"}])
    data["output"] = {"flush_seconds": 0.3}
    if workers:  # one trial per worker process
        data.update(seeds=workers)
        data["execution"] = {"backend": "local", "workers": workers}
    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _journal_rows(run_dir: Path) -> int:
    return sum(
        p.read_text(encoding="utf-8").count("\n")
        for p in (run_dir / "metrics.journal").glob("*.jsonl")
    )


def _start_and_signal(tmp_path: Path, sig: signal.Signals, workers: int = 0):
    """Run a long scenario, wait for Parquet and journal rows, send ``sig``; return dir, code."""
    out = tmp_path / "runs"
    proc = subprocess.Popen(
        [sys.executable, "-m", "simlab", "run", str(_long_scenario(tmp_path, workers))]
        + ["--out", str(out), "--run-id", "long", "--no-progress"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    run_dir = out / "long"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            parts = list((run_dir / "metrics.parquet").glob("part-*.parquet"))
            journals = run_dir.joinpath("metrics.journal").is_dir() and _journal_rows(run_dir)
            if len({p.name[:10] for p in parts}) >= max(workers, 1) and journals:
                break  # each trial has flushed a part (names part-TTTTT-...) and rows follow
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.05)
        else:
            pytest.fail("the run wrote no rows within 60 s")
        proc.send_signal(sig)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in (proc.stderr.read() if proc.stderr else "")
    return run_dir, code


def _assert_no_gaps(df: pd.DataFrame) -> None:
    assert len(df) > 0
    assert set(df["trial"]) == {0}
    assert df["step"].tolist() == list(range(len(df)))


def test_sigkill_leaves_crashed_run_with_rows(tmp_path: Path):
    """A SIGKILLed run reads as crashed, keeps every finished step and can be recovered."""
    run_dir, code = _start_and_signal(tmp_path, signal.SIGKILL)
    assert code == -signal.SIGKILL
    run = open_run(run_dir)
    assert run.status == "crashed"
    assert run.manifest["status"] == "running"
    df = read_metrics(run_dir)
    _assert_no_gaps(df)
    assert len(df) >= run.manifest["trials"][0]["steps_done"]
    run.recover()
    assert list((run_dir / "metrics.journal").glob("*.jsonl")) == []
    direct = pd.read_parquet(run_dir / "metrics.parquet").sort_values("step")
    pd.testing.assert_frame_equal(direct.reset_index(drop=True), df, check_dtype=False)
    pd.testing.assert_frame_equal(read_metrics(run_dir), df)
    assert [r.status for r in list_runs(run_dir.parent)] == ["crashed"]


def test_sigterm_gives_interrupted_run_with_rows(tmp_path: Path):
    """A SIGTERMed run closes cleanly as interrupted, its rows all in Parquet."""
    run_dir, code = _start_and_signal(tmp_path, signal.SIGTERM)
    assert code == 130
    run = open_run(run_dir)
    assert run.status == "interrupted"
    assert run.manifest["error"]
    df = read_metrics(run_dir)
    _assert_no_gaps(df)
    assert list((run_dir / "metrics.journal").glob("*.jsonl")) == []
    direct = pd.read_parquet(run_dir / "metrics.parquet").sort_values("step")
    assert direct["step"].tolist() == df["step"].tolist()
    trial = run.manifest["trials"][0]
    assert trial["status"] == "interrupted"  # stopped mid-trial, and says so
    assert trial["steps_done"] == len(df)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_worker_trial_records_the_steps_it_left_on_disk(tmp_path: Path, sig):
    """Each interrupted trial of worker processes records every step it kept on disk.

    Workers are stopped without flushing: their rows since the last flush are in the journal,
    and the manifest counted only flushed steps (`simlab runs` said 0/N with thousands of
    steps on disk).
    """
    run_dir, code = _start_and_signal(tmp_path, sig, workers=2)
    assert code == 130
    run = open_run(run_dir)
    assert run.status == "interrupted"
    df = read_metrics(run_dir)
    for trial in run.manifest["trials"]:
        steps = df.loc[df["trial"] == trial["index"], "step"].tolist()
        assert steps == list(range(len(steps))) and steps
        assert trial["status"] == "interrupted"
        assert trial["steps_done"] == len(steps)
    assert [r.steps_done for r in list_runs(run_dir.parent)] == [len(df)]  # `simlab runs`
    assert _journal_rows(run_dir) > 0  # rows the last count of a worker did not include


# ---------------------------------------------------------------------- failed trials


def _running_out(backend: str, seeds: int) -> dict:
    data = copy.deepcopy(SMALL)
    data.update(steps=40, seeds=seeds, agents=[{"model": "random"}])
    data["users"] = {"model": "logit", "num_users": 60}
    data["content"] = {"model": "creators", "initial_items": 6, "items_per_step": 0,
                       "lifetime": 1000}  # fmt: skip
    data["platform"] = {"slate_size": 2, "exclude_consumed": True, "retrain_every": 3}
    data["execution"] = {"backend": "local"}
    if backend == "workers":
        data["execution"] = {"backend": "local", "workers": 2}
    elif backend == "ray":
        data["execution"] = {"backend": "ray", "shards": 1,
                             "agent_resources": {"num_cpus": 0.5}}  # fmt: skip
    return data


@pytest.mark.parametrize(("backend", "seeds"), [("local", 1), ("local", 3), ("workers", 4)])
def test_a_failing_trial_is_marked_failed_with_its_rows(tmp_path, backend, seeds):
    """The first trial to fail is ``failed``; no trial is left ``running``."""
    _check(tmp_path, backend, seeds)


def test_a_failing_trial_on_ray_is_marked_failed(ray_local, tmp_path):
    """The same on Ray: the trial actor's error ends the trial ``failed``."""
    _check(tmp_path, "ray", 2)


def _check(tmp_path, backend: str, seeds: int) -> None:
    sc = parse_scenario(_running_out(backend, seeds))
    with pytest.raises(ScenarioError, match="platform.exclude_consumed: at step"):
        run_scenario(sc, out_dir=tmp_path, run_id="out")
    store = open_run(tmp_path / "out")
    assert store.status == "failed" and "exclude_consumed" in store.manifest["error"]
    trials = store.manifest["trials"]
    statuses = [t.get("status") for t in trials]
    assert "running" not in statuses and "failed" in statuses, statuses
    rows = store.read_metrics()
    for t in trials:
        steps = rows.loc[rows["trial"] == t["index"], "step"].tolist()
        assert steps == list(range(len(steps)))  # the steps before the stop, once each
        if t.get("status") == "failed":  # its own last word: the rows it kept
            assert 0 <= t["steps_done"] == len(steps) < sc.steps
        elif t.get("status") == "interrupted":  # stopped with the run: the rows it kept
            assert t["steps_done"] == len(steps) < sc.steps
