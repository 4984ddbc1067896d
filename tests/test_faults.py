"""Fault injection: kills at random points, concurrent writers, signals, damaged checkpoints.

Each test runs ``simlab`` as a real process where the fault needs one (a kill, a signal, two
writers) and compares the result with an uninterrupted reference run: same metric rows, same
event log, nothing lost, nothing written twice.
"""

from __future__ import annotations

import copy
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import SMALL, run_metrics

from simlab.cli import main
from simlab.runlock import RunLock
from simlab.store import open_run

STEPS = 24


def _scenario(tmp_path: Path, **changes) -> Path:
    data = copy.deepcopy(SMALL)
    data.update(steps=STEPS, **changes)
    data["users"] = {**SMALL["users"], "num_users": 1500, "drift_rate": 0.05}
    data["output"] = {"flush_seconds": 0.0, "checkpoint_every": 4, "events": True}
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _start(scenario: Path, out: Path, run_id: str, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "simlab", "run", str(scenario), "--out", str(out)]
    return subprocess.Popen(
        [*cmd, "--run-id", run_id, "--no-progress", *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait(predicate, proc: subprocess.Popen | None = None, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the process ended first: {proc.stderr.read()}")
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


def _kill(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> int:
    try:
        proc.send_signal(sig)
        return proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _rows(run: Path) -> int:
    try:
        return len(open_run(run).read_metrics())
    except Exception:  # noqa: BLE001 - a run being written may be caught mid-write
        return 0


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The scenario file and an uninterrupted run of it."""
    tmp = tmp_path_factory.mktemp("ref")
    scenario = _scenario(tmp)
    assert main(["run", str(scenario), "--out", str(tmp), "--run-id", "ref", "--no-progress"]) == 0
    return scenario, tmp / "ref"


def _events(run: Path) -> pd.DataFrame:
    df = pd.read_parquet(run / "events")
    keys = ["trial", "step", "user_id", "position"]
    df["trial"] = df["trial"].astype(int)
    return df.sort_values(keys).reset_index(drop=True)


def _same_as_reference(run: Path, ref: Path) -> None:
    assert open_run(run).status == "completed"
    pd.testing.assert_frame_equal(run_metrics(run), run_metrics(ref))
    got, want = _events(run), _events(ref)
    assert not got.duplicated(["trial", "step", "user_id", "position"]).any()
    pd.testing.assert_frame_equal(got, want)


# ---------------------------------------------------------------------- kill -9 at random points
def test_kill_at_random_points_then_resume_loses_nothing(reference, tmp_path: Path):
    """SIGKILL at seeded random moments (even before the first step); resume is identical."""
    scenario, ref = reference
    rng = random.Random(21)
    for n, at_rows in enumerate([0, rng.randint(1, 15), rng.randint(16, 2 * STEPS - 4)]):
        run = tmp_path / f"k{n}"
        proc = _start(scenario, tmp_path, f"k{n}")
        if at_rows == 0:  # as soon as the run directory has its manifest
            _wait(lambda run=run: (run / "manifest.json").exists(), proc)
        else:
            _wait(lambda run=run, k=at_rows: _rows(run) >= k, proc)
        assert _kill(proc) == -signal.SIGKILL
        assert open_run(run).status == "crashed"
        assert main(["resume", str(run), "--no-progress"]) == 0
        _same_as_reference(run, ref)
        assert not list(run.rglob(".*tmp*"))


def test_kill_between_part_and_journal_keeps_events_once(reference, tmp_path: Path):
    """Event journals and the events of the step in flight are kept once after a resume."""
    scenario, ref = reference
    data = yaml.safe_load(scenario.read_text())
    data["output"]["flush_seconds"] = 3600.0  # everything stays in the journals
    path = tmp_path / "slow.yaml"
    path.write_text(yaml.safe_dump(data))
    run = tmp_path / "j"
    proc = _start(path, tmp_path, "j")
    _wait(lambda: (run / "checkpoints" / "trial=0" / "step=8.ckpt").exists(), proc)
    _kill(proc)
    journals = list((run / "events").rglob("_journal-*.arrows"))
    assert journals, "the kill should leave event journals"
    assert main(["resume", str(run), "--no-progress"]) == 0
    assert not list((run / "events").rglob("_journal-*.arrows"))
    got = _events(run)
    assert not got.duplicated(["trial", "step", "user_id", "position"]).any()
    pd.testing.assert_frame_equal(got, _events(ref))


# ---------------------------------------------------------------------- one writer at a time
def test_second_writer_is_refused_while_the_first_holds_the_lock(reference, tmp_path, capsys):
    """A run being written is ``running`` whatever its pid says; resume is refused meanwhile."""
    scenario, _ = reference
    assert (
        main(["run", str(scenario), "--out", str(tmp_path), "--run-id", "r", "--no-progress"]) == 0
    )
    run = tmp_path / "r"
    manifest = json.loads((run / "manifest.json").read_text())
    manifest.update(status="running", pid=999_999_999, host="another-host")
    (run / "manifest.json").write_text(json.dumps(manifest))
    assert open_run(run).status == "crashed"  # no lock held: the recorded pid does not matter
    lock = RunLock(run)
    lock.acquire()
    try:
        assert open_run(run).status == "running"
        assert main(["resume", str(run), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert "the run is being written by another process (pid" in err
    finally:
        lock.release()
    assert main(["resume", str(run), "--no-progress"]) == 0


def test_concurrent_resumes_one_wins_rows_not_duplicated(reference, tmp_path: Path):
    """Two ``simlab resume`` of one crashed run at once: one runs it, the other is refused."""
    scenario, ref = reference
    run = tmp_path / "c"
    proc = _start(scenario, tmp_path, "c")
    _wait(lambda: _rows(run) >= 6, proc)
    _kill(proc)
    cmd = [sys.executable, "-m", "simlab", "resume", str(run), "--no-progress"]
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = sorted((p.wait(timeout=300), p.stderr.read()) for p in procs)
    assert [code for code, _ in results] == [0, 2], results
    # refused while the other one runs, or (if it finished within the lock's wait) as done
    assert "being written by another process" in results[1][1] or (
        "already completed" in results[1][1]
    )
    _same_as_reference(run, ref)


def test_manifest_is_written_before_heavy_imports(tmp_path: Path):
    """The first manifest write happens before torch or ray is imported, with status starting."""
    code = f"""
import sys, json
import simlab.store_write as store
seen = []
real = store.write_text  # simlab.atomic.write_text, as the run store calls it
def spy(path, text):
    if path.name == "manifest.json" and not seen:
        seen.append((json.loads(text)["status"], "torch" in sys.modules, "ray" in sys.modules))
    real(path, text)
store.write_text = spy
from simlab.cli import main
main(["run", {str(_scenario(tmp_path))!r}, "--out", {str(tmp_path)!r}, "--no-progress",
      "--set", "steps=2"])
print(json.dumps(seen[0]))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1]) == ["starting", False, False]


def test_a_run_that_dies_while_starting_can_be_resumed(reference, tmp_path, monkeypatch):
    """Ctrl-C right after the first manifest: ``interrupted``, resumable, nothing missing.

    The manifest the resumed run ends with records what a run started whole records (the
    library versions, privileged agents, metric ranges), which the interrupted start had
    not written yet.
    """
    import simlab.store_write as store

    scenario, ref = reference

    def die() -> dict:
        raise KeyboardInterrupt("killed while starting")

    monkeypatch.setattr(store, "library_versions", die)
    code = main(["run", str(scenario), "--out", str(tmp_path), "--run-id", "s", "--no-progress"])
    assert code == 130
    monkeypatch.undo()
    run = tmp_path / "s"
    assert json.loads((run / "manifest.json").read_text())["status"] == "interrupted"
    assert open_run(run).status == "interrupted"
    assert main(["resume", str(run), "--no-progress"]) == 0
    _same_as_reference(run, ref)
    manifest = json.loads((run / "manifest.json").read_text())
    whole = json.loads((ref / "manifest.json").read_text())
    for key in ("privileged_agents", "metric_ranges", "execution"):
        assert manifest[key] == whole[key], key
    assert manifest["versions"] and set(manifest["versions"]) == set(whole["versions"])


# ---------------------------------------------------------------------- signals
@pytest.mark.parametrize("backend", ["local", "ray", "workers"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signals_interrupt_on_every_backend(tmp_path: Path, backend: str, sig: int):
    """SIGTERM and SIGINT end the run ``interrupted`` with exit code 130, on Ray too.

    ``workers``: local worker processes with far more trials queued than a pipe holds (the
    queue must not wait at exit to hand them to workers that are gone).
    """
    data = copy.deepcopy(SMALL)
    data.update(steps=100_000, agents=[{"model": "random"}])
    data["output"] = {"flush_seconds": 0.2}
    data["execution"] = {"backend": backend, "shards": 1, "agent_resources": {"num_cpus": 0.5}}
    if backend == "workers":
        data["seeds"] = 600
        data["execution"] = {"backend": "local", "workers": 2}
    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump(data))
    run = tmp_path / "sig"
    proc = _start(path, tmp_path, "sig")
    _wait(lambda: _rows(run) >= 3, proc, timeout=240)
    code = _kill(proc, sig)
    stderr = proc.stderr.read()
    assert code == 130, stderr
    assert "Traceback" not in stderr
    store = open_run(run)
    assert store.status == "interrupted"
    for _, rows in store.read_metrics().groupby("trial"):
        assert rows["step"].tolist() == list(range(len(rows)))
    # no trial is left "running": the ones cut short say so, with the rows they kept
    statuses = {t["status"] for t in store.manifest["trials"] if "status" in t}
    assert "running" not in statuses and "interrupted" in statuses, statuses
