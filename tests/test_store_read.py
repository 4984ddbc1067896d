"""``simlab.store_read`` per class of damage: what a run directory's reader finds and says.

Classes: the steps of a trial on disk (Parquet parts, parts recovered from journals, journals
not yet folded in; a missing or repeated step ends the count); completed trials with fewer
rows than their manifest records (and trials that are not completed, or hold more rows);
the message naming up to three damaged trials and counting the rest; journal rows whose
metrics are null fold in as NaN; a started run whose writer's pid is gone reads as crashed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import make_small

from simlab.manifest import JOURNAL, METRICS
from simlab.runner import run_scenario
from simlab.store import open_run

STEPS = 5


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A completed run: two agents x 2 seeds (4 trials) x 5 steps, a part per trial-step."""
    return run_scenario(make_small(steps=STEPS, seeds=2), out_dir=tmp_path_factory.mktemp("r")).path


@pytest.fixture
def run(source, tmp_path) -> Path:
    """A copy of :func:`source` to damage."""
    target = tmp_path / source.name
    shutil.copytree(source, target)
    return target


def _parts(run: Path, trial: int) -> list[Path]:
    return sorted((run / METRICS).glob(f"part-{trial:05d}-*.parquet"))


def _to_journal(part: Path, run: Path) -> None:
    """Move a Parquet part's rows into a journal of the same name (a flush not yet made)."""
    rows = pq.read_table(part).to_pylist()
    journal = run / JOURNAL / f"{part.stem}.jsonl"
    journal.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    part.unlink()


def test_a_whole_trial_has_all_its_steps_on_disk(run):
    """Every trial of a completed run: all of its steps."""
    store = open_run(run)
    assert [store.steps_on_disk(t) for t in range(4)] == [STEPS] * 4
    assert store.steps_on_disk(9) == 0  # a trial with no rows at all


@pytest.mark.parametrize("lost", [0, 1, 3, 4])
def test_a_lost_part_ends_the_count_at_its_step(run, lost):
    """A trial's step ``k`` lost: steps 0 .. k-1 are on disk, whatever comes after."""
    _parts(run, 1)[lost].unlink()
    assert open_run(run).steps_on_disk(1) == lost
    assert open_run(run).steps_on_disk(0) == STEPS


@pytest.mark.parametrize("copied", [0, 2, 4])
def test_a_part_written_twice_ends_the_count_at_its_step(run, copied):
    """A step repeated (a part copied under another name): the count stops before it."""
    part = _parts(run, 2)[copied]
    shutil.copy(part, part.with_name(part.stem[:-6] + "999999.parquet"))
    assert open_run(run).steps_on_disk(2) == copied + 1


@pytest.mark.parametrize("moved", [[4], [2, 3, 4], [0]])
def test_steps_still_in_journals_count(run, moved):
    """Parts not yet flushed from their journals are on disk too."""
    parts = _parts(run, 3)
    for k in moved:
        _to_journal(parts[k], run)
    assert open_run(run).steps_on_disk(3) == STEPS


def test_a_journal_already_flushed_is_not_counted_twice(run):
    """A journal whose part exists (removed late after the flush) adds no steps."""
    part = _parts(run, 0)[2]
    rows = pq.read_table(part).to_pylist()
    (run / JOURNAL / f"{part.stem}.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8"
    )
    assert open_run(run).steps_on_disk(0) == STEPS


def test_recovered_parts_count_for_their_trial_only(run):
    """Journals folded into ``part-recovered-*``: their rows count for the trial they hold."""
    for trial, k in ((1, 4), (1, 3), (2, 4)):
        _to_journal(_parts(run, trial)[k], run)  # (the later part first)
    store = open_run(run)
    assert store.recover() > 0
    assert list((run / METRICS).glob("part-recovered-*.parquet"))
    assert not list((run / JOURNAL).glob("*.jsonl"))
    assert [store.steps_on_disk(t) for t in range(4)] == [STEPS] * 4


def _completed(run: Path, **changes) -> None:
    """Rewrite the manifest's trial records with ``changes`` (trial -> fields)."""
    path = run / "manifest.json"
    manifest = json.loads(path.read_text())
    for t, fields in changes.items():
        manifest["trials"][int(t[1:])].update(fields)
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize("kept", [0, 1, 4])
def test_a_completed_trial_with_fewer_rows_than_recorded_is_short(run, kept):
    """Its rows are counted against ``steps_done``; the message says both."""
    for part in _parts(run, 2)[kept:]:
        part.unlink()
    store = open_run(run)
    short = store.short_trials(store.read_metrics(strict=False))
    assert short == {2: (kept, f"has rows for {kept} of the {STEPS} steps its manifest records")}


@pytest.mark.parametrize(
    "record",
    [
        {"status": "running"},  # not completed: its rows are still coming
        {"status": "interrupted"},
        {"steps_done": 3},  # more rows than recorded: not short (a repeat is found elsewhere)
        {"steps_done": STEPS},
    ],
)
def test_only_completed_trials_missing_rows_are_short(run, record):
    """Trials that are not completed, or hold at least the recorded rows, are not short."""
    _completed(run, t1=record)
    store = open_run(run)
    assert store.short_trials(store.read_metrics(strict=False)) == {}


def test_a_record_without_steps_done_is_never_short(run):
    """An old record without ``steps_done`` (nothing recorded) is not reported."""
    path = run / "manifest.json"
    manifest = json.loads(path.read_text())
    del manifest["trials"][0]["steps_done"]
    path.write_text(json.dumps(manifest))
    store = open_run(run)
    assert store.short_trials(store.read_metrics(strict=False)) == {}


@pytest.mark.parametrize(("damaged", "more"), [(1, ""), (3, ""), (4, "; and 1 more trials")])
def test_the_message_names_three_trials_and_counts_the_rest(run, damaged, more):
    """Up to three damaged trials by agent and seed; the others counted."""
    store = open_run(run)
    message = store._damage_message({t: (0, "lost") for t in range(damaged)})
    named = [f"trial {t} (" for t in range(4) if f"trial {t} (" in message]
    assert len(named) == min(damaged, 3)
    assert message.split(" (a metrics part")[0].endswith(f"lost{more}")
    assert f"simlab resume {run}" in message


def test_null_metrics_in_a_journal_fold_in_as_nan(run):
    """A journal row with a null metric: NaN in the recovered part (never an Arrow null)."""
    part = _parts(run, 0)[4]
    rows = pq.read_table(part).to_pylist()
    column = open_run(run).manifest["metric_columns"][0]
    for r in rows:
        r[column] = None
    (run / JOURNAL / f"{part.stem}.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8"
    )
    part.unlink()
    assert open_run(run).recover() == len(rows)
    (recovered,) = (run / METRICS).glob("part-recovered-*.parquet")
    values = pq.read_table(recovered)[column]
    assert values.null_count == 0
    assert all(v != v for v in values.to_pylist())  # NaN


def _started_by(run: Path, pid: int) -> None:
    """Mark the run as started by ``pid`` on this host, with no lock file (an older run)."""
    import socket

    (run / ".lock").unlink(missing_ok=True)
    for lock in run.glob("*.lock"):
        lock.unlink()
    path = run / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest.update(status="running", host=socket.gethostname(), pid=pid)
    path.write_text(json.dumps(manifest))


def test_a_started_run_whose_writer_is_gone_is_crashed(run):
    """Without a lock file: the recorded pid decides, dead -> crashed, alive -> running."""
    from simlab.runlock import is_locked

    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    _started_by(run, int(done.stdout))  # that process has exited
    assert is_locked(run) is None
    assert open_run(run).status == "crashed"
    _started_by(run, os.getpid())
    assert open_run(run).status == "running"
