"""A lost or repeated part of the event log: found, refused by export, recomputed by resume.

Each event part records the steps it holds (steps without impressions count) and each
journal batch its step; the manifest records where a trial's log starts (``events_from``:
0, or a fork's step). :func:`simlab.events.log_problem` checks that the parts hold every step
from there to the trial's last metric row once each. ``simlab export`` refuses a run whose
log lacks or repeats a step, naming the trial and step; ``simlab resume`` drops the trial's
rows from that step on and recomputes them, so the events and rows equal the undamaged
run's. Parts of older simlab versions (no step range) are not checked.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import make_small, run_metrics

from simlab.batch import Feedback
from simlab.cli import main
from simlab.errors import RunStoreError
from simlab.events import EventsWriter, log_problem, part_steps, read_part, recover_events
from simlab.export import read_events
from simlab.manifest import LOGGING_POLICIES
from simlab.runner import resume_run, run_scenario
from simlab.store import open_run


# ------------------------------------------------------------------ log_problem by hand
def _parts(folder: Path, spans: list[tuple[int, int] | None]) -> None:
    """Event parts holding ``spans`` (None: a part of an older simlab, with no range)."""
    folder.mkdir(parents=True, exist_ok=True)
    for n, span in enumerate(spans):
        table = pa.table({"step": pa.array([], pa.int64())})
        if span is not None:
            table = table.replace_schema_metadata({b"simlab.steps": f"{span[0]} {span[1]}"})
        pq.write_table(table, folder / f"part-{n:06d}.parquet")


# name -> (part spans, start, done, expected (step, words) or None)
CASES = {
    "whole": ([(0, 2), (3, 3), (4, 9)], 0, 10, None),
    "whole-in-any-order": ([(4, 9), (0, 2), (3, 3)], 0, 10, None),
    "one-part": ([(0, 9)], 0, 10, None),
    "fork-start": ([(5, 7), (8, 9)], 5, 10, None),
    "no-steps-yet": ([], 0, 0, None),
    "fork-no-steps-yet": ([], 6, 6, None),
    "start-unknown": ([(3, 5), (6, 9)], None, 10, None),
    "older-simlab": ([(0, 2), None, (8, 9)], 0, 10, None),
    "no-parts-no-start": ([], None, 10, None),
    "lost-middle": ([(0, 2), (5, 9)], 0, 10, (3, "no events for steps 3..4 (a lost part)")),
    "lost-one-step": ([(0, 2), (4, 9)], 0, 10, (3, "no events for step 3 (a lost part)")),
    "lost-first": ([(3, 9)], 0, 10, (0, "no events for steps 0..2 (a lost part)")),
    "fork-lost-first": ([(7, 9)], 5, 10, (5, "no events for steps 5..6")),
    "lost-last": ([(0, 2), (3, 6)], 0, 10, (7, "events up to step 6 of the 10 steps")),
    "lost-all": ([], 0, 10, (0, "no events for steps 0..9 (its parts lost)")),
    "fork-lost-all": ([], 4, 10, (4, "no events for steps 4..9 (its parts lost)")),
    "twice": ([(0, 4), (0, 4), (5, 9)], 0, 10, (0, "events of step 0 twice")),
    "overlap": ([(0, 4), (3, 9)], 0, 10, (3, "events of step 3 twice")),
    "gap-then-twice": ([(0, 1), (3, 5), (3, 9)], 0, 10, (2, "no events for step 2")),
    "twice-then-gap": ([(0, 4), (2, 3), (7, 9)], 0, 10, (2, "events of step 2 twice")),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_log_problem_by_hand(tmp_path, name):
    """Gaps, repeats and overlaps at any place, from 0 or a fork's step; None when whole."""
    spans, start, done, expected = CASES[name]
    _parts(tmp_path / "trial=0", spans)
    found = log_problem(tmp_path / "trial=0", start, done)
    if expected is None:
        assert found is None
    else:
        assert found is not None and found[0] == expected[0], found
        assert expected[1] in found[1], found


# ------------------------------------------------------------------ what the writer records
def _feedback(step: int, users: int, k: int = 3) -> Feedback:
    return Feedback(
        step,
        np.arange(users, dtype=np.int64),
        np.tile(np.arange(k, dtype=np.int64), (users, 1)),
        np.zeros(users, np.int64),
        np.ones(users, np.float32),
    )


# users per step: steps with no user (no impressions) are held too
STEP_USERS = {"every-step": [2, 3, 1, 2, 4, 2], "empty-steps": [0, 2, 0, 0, 3, 0]}


@pytest.mark.parametrize("users", sorted(STEP_USERS))
@pytest.mark.parametrize("flush_every", [1, 2, 4, 100])
def test_parts_record_their_steps(tmp_path, users, flush_every):
    """However often it flushes, the parts' ranges tile the steps and hold their rows."""
    writer = EventsWriter(tmp_path, float("inf"))
    for t, b in enumerate(STEP_USERS[users]):
        writer.add(_feedback(t, b))
        if (t + 1) % flush_every == 0:
            writer.flush()
    writer.close()
    parts = sorted(tmp_path.glob("part-*.parquet"))
    spans = [part_steps(p) for p in parts]
    steps = len(STEP_USERS[users])
    assert [s for a, b in spans for s in range(a, b + 1)] == list(range(steps))
    for p, (a, b) in zip(parts, spans, strict=True):
        held = read_part(p).column("step").to_numpy()
        assert ((held >= a) & (held <= b)).all()
    assert log_problem(tmp_path, 0, steps) is None


@pytest.mark.parametrize("done", [0, 1, 3, 5, 6])
@pytest.mark.parametrize("flushed", [0, 2, 4])
def test_recover_events_keeps_the_ranges_of_the_steps_kept(tmp_path, done, flushed):
    """Folding journals and trimming parts to ``done`` leaves ranges tiling 0..done-1."""
    writer = EventsWriter(tmp_path, float("inf"))
    for t, b in enumerate(STEP_USERS["empty-steps"]):
        writer.add(_feedback(t, b))
        if t + 1 == flushed:
            writer.flush()
    writer._close_journal()  # a kill: the steps after the flush stay in the journal
    recover_events(tmp_path, done)
    assert not list(tmp_path.glob("_journal-*"))
    spans = sorted(part_steps(p) for p in tmp_path.glob("part-*.parquet"))
    assert [s for a, b in spans for s in range(a, b + 1)] == list(range(done))
    assert log_problem(tmp_path, 0, done) is None
    rows = [read_part(p).column("step").to_numpy() for p in tmp_path.glob("part-*.parquet")]
    kept = np.concatenate([np.zeros(0, np.int64), *rows])
    assert sorted(kept.tolist()) == [t for t, b in enumerate(STEP_USERS["empty-steps"][:done])
                                     for _ in range(b * 3)]  # fmt: skip


# ------------------------------------------------------------------ damaged runs
@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A completed run with events, one part per step, checkpoints every 3 steps."""
    sc = make_small(
        "output.events=true", "users.num_users=30", "output.flush_seconds=0",
        "output.checkpoint_every=3", steps=8, seeds=1,
        agents=[{"model": "random"}, {"model": "popularity"}],
    )  # fmt: skip
    return run_scenario(sc, out_dir=tmp_path_factory.mktemp("src"), run_id="src").path


def _unlink(*names: str):
    return lambda folder: [(folder / n).unlink() for n in names]


def _copy_part(name: str, to: str):
    return lambda folder: shutil.copy(folder / name, folder / to)


def _all(folder: Path) -> None:
    shutil.rmtree(folder)


# name -> (damage to trial 1's event folder, first bad step)
DAMAGES = {
    "lost-middle": (_unlink("part-000004.parquet"), 4),
    "lost-two": (_unlink("part-000002.parquet", "part-000005.parquet"), 2),
    "lost-first": (_unlink("part-000000.parquet"), 0),
    "lost-last": (_unlink("part-000007.parquet"), 7),
    "lost-folder": (_all, 0),
    "written-twice": (_copy_part("part-000003.parquet", "part-000042.parquet"), 3),
}


def _damaged(source: Path, tmp_path: Path, name: str, status: str) -> Path:
    run = tmp_path / name
    shutil.copytree(source, run)
    DAMAGES[name][0](run / "events" / "trial=1")
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["status"] = status
    (run / "manifest.json").write_text(json.dumps(manifest))
    return run


def _events(run: Path) -> pd.DataFrame:
    return read_events(run)[1]


@pytest.mark.parametrize("status", ["completed", "interrupted"])
@pytest.mark.parametrize("name", sorted(DAMAGES))
def test_export_refuses_and_resume_recomputes(source, tmp_path, capsys, name, status):
    """Export: one error naming trial, step and resume; resume: events and rows as before."""
    run = _damaged(source, tmp_path, name, status)
    step = DAMAGES[name][1]
    with pytest.raises(RunStoreError, match=rf"trial 1 \(popularity, seed 0\).* step {step}"):
        read_events(run)
    code = main(["export", str(run), "--format", "parquet", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and "trial 1 (popularity" in err and f"simlab resume {run}" in err, err
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        resume_run(run)
    said = [str(w.message) for w in seen]
    assert any("trial 1 (" in m and f"from step {step} on" in m for m in said), said
    pd.testing.assert_frame_equal(_events(run), _events(source))
    pd.testing.assert_frame_equal(run_metrics(run), run_metrics(source))
    manifest = open_run(run).manifest
    assert manifest["status"] == "completed"
    assert [t["steps_done"] for t in manifest["trials"]] == [8, 8]


def test_an_intact_completed_run_is_not_resumed(source, tmp_path, capsys):
    """Nothing to repair: resume still refuses a completed run."""
    run = tmp_path / "ok"
    shutil.copytree(source, run)
    assert open_run(run).event_problems() == {}
    assert main(["resume", str(run), "--no-progress"]) == 2
    assert "already completed" in capsys.readouterr().err


def test_parts_of_an_older_simlab_are_not_checked(source, tmp_path):
    """No step range (an older simlab's parts): a lost part cannot be told apart."""
    run = tmp_path / "old"
    shutil.copytree(source, run)
    folder = run / "events" / "trial=1"
    for p in folder.glob("part-*.parquet"):
        pq.write_table(pq.read_table(p).replace_schema_metadata(None), p)
    (folder / "part-000004.parquet").unlink()
    assert open_run(run).event_problems() == {}
    assert 4 not in set(_events(run).query("trial == 1")["step"])


@pytest.mark.parametrize("at", [3, 6])
def test_a_fork_logs_from_its_step_and_a_part_it_loses_is_found(source, tmp_path, at):
    """A fork's log starts at its step (not a gap); its own lost part is found and redone."""
    sc = make_small(
        "output.events=true", "users.num_users=30", "output.flush_seconds=0",
        "output.checkpoint_every=3", steps=8, seeds=1,
        agents=[{"model": "random"}, {"model": "popularity"}],
    )  # fmt: skip
    fork = run_scenario(sc, out_dir=tmp_path, run_id="fork", fork=(source, at)).path
    manifest = open_run(fork).manifest
    assert [t["events_from"] for t in manifest["trials"]] == [at, at]
    assert open_run(fork).event_problems() == {}
    assert sorted(set(_events(fork)["step"])) == list(range(at, 8))
    (fork / "events" / "trial=0" / "part-000000.parquet").unlink()  # step `at`
    lost = f"has no events for step {at} (a lost part)"
    assert open_run(fork).event_problems() == {0: (at, lost)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        resume_run(fork)
    source_events = _events(source)
    pd.testing.assert_frame_equal(
        _events(fork), source_events[source_events["step"] >= at].reset_index(drop=True)
    )


def test_workers_record_the_trials_facts_in_the_manifest(tmp_path):
    """``execution.workers``: each trial's logging policy and log start reach the manifest.

    (Workers changed their own copy of the manifest only: the run's lacked both.)
    """
    runs = {}
    for workers in (1, 2):
        sc = make_small(
            "output.events=true", "users.num_users=30", f"execution.workers={workers}",
            steps=3, seeds=2, agents=[{"model": "random"}, {"model": "popularity"}],
        )  # fmt: skip
        runs[workers] = run_scenario(sc, out_dir=tmp_path, run_id=f"w{workers}").path
    facts = {
        w: [(t.get("logging_policy"), t.get("events_from")) for t in open_run(r).manifest["trials"]]
        for w, r in runs.items()
    }
    assert facts[2] == facts[1]
    assert [f[1] for f in facts[2]] == [0] * 4
    assert {f[0] for f in facts[2]} <= set(LOGGING_POLICIES) and facts[2][0][0] == "sampled"


@pytest.mark.parametrize("text", [b"x y", b"3", b"", b"1 2 3", b"1.5 2"])
def test_a_malformed_step_range_is_a_corrupt_part(tmp_path, text):
    """A part whose recorded range does not read as two steps is named as corrupt."""
    folder = tmp_path / "trial=0"
    folder.mkdir()
    table = pa.table({"step": pa.array([], pa.int64())})
    pq.write_table(
        table.replace_schema_metadata({b"simlab.steps": text}), folder / "part-000000.parquet"
    )
    with pytest.raises(RunStoreError, match="corrupt event log part"):
        log_problem(folder, 0, 1)
