"""``simlab export`` refuses a run whose events are not all in Parquet yet.

A run's events go to a journal each step and to Parquet on each flush; a run killed
between the two (or still running) has journaled events that Parquet readers do not see.
Export read only the Parquet parts: a crashed run exported with whole trials missing, and a
run whose events were all journaled was said to have "no event log". It now refuses such a
run naming the trials and ``simlab resume``, or a run still being written; after a resume
(which folds the journals in) the export is whole.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from conftest import make_small

from simlab.cli import main
from simlab.errors import RunStoreError
from simlab.events import read_part
from simlab.export import export_run, read_events
from simlab.runlock import RunLock
from simlab.runner import run_scenario


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A completed run with an event log (two trials)."""
    sc = make_small("output.events=true", "users.num_users=30", steps=4,
                    agents=[{"model": "random"}, {"model": "popularity"}])  # fmt: skip
    return run_scenario(sc, out_dir=tmp_path_factory.mktemp("runs")).path


def _copy(run: Path, tmp_path: Path) -> Path:
    out = tmp_path / run.name
    shutil.copytree(run, out)
    return out


def _journal_from_parts(run: Path, trial: int, drop_parts: bool) -> None:
    """Turn trial ``trial``'s Parquet events into a journal, as a kill before a flush leaves."""
    folder = run / "events" / f"trial={trial}"
    parts = sorted(folder.glob("*.parquet"))
    table = pa.concat_tables([read_part(p) for p in parts])
    with pa.OSFile(str(folder / "_journal-000009.arrows"), "wb") as sink:
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
    if drop_parts:
        for p in parts:
            p.unlink()


def _crashed(run: Path) -> None:
    manifest = json.loads((run / "manifest.json").read_text())
    manifest.update(status="running", pid=999_999_999, host="another-host")
    (run / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("fmt", ["parquet", "obp", "minari"])
@pytest.mark.parametrize(("trials", "drop_parts"), [((1,), True), ((0, 1), True), ((0,), False)])
def test_journaled_events_are_refused_naming_the_trials_and_resume(
    finished, tmp_path, fmt, trials, drop_parts
):
    """Journals left by a kill: an error naming the trials and `simlab resume`, no output."""
    run = _copy(finished, tmp_path)
    _crashed(run)
    for trial in trials:
        _journal_from_parts(run, trial, drop_parts)
    with pytest.raises(RunStoreError) as e:
        export_run(run, fmt, out=tmp_path / "out")
    text = str(e.value)
    assert f"trial(s) {', '.join(map(str, trials))}" in text
    assert "the run is crashed" in text and f"simlab resume {run}" in text
    assert "output.events=true" not in text  # it has an event log: the journals
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_the_cli_exits_2_with_the_message(finished, tmp_path, capsys):
    """The command line prints the message, no traceback, and exits 2."""
    run = _copy(finished, tmp_path)
    _crashed(run)
    _journal_from_parts(run, 0, drop_parts=True)
    assert main(["export", str(run), "--format", "parquet", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "still in their journals" in err and "Traceback" not in err


def test_a_run_being_written_is_refused(finished, tmp_path):
    """A live writer holds the run's lock: export waits for the run to end."""
    run = _copy(finished, tmp_path)
    _crashed(run)
    lock = RunLock(run)
    lock.acquire()
    try:
        with pytest.raises(RunStoreError, match="the run is still running; export it when"):
            read_events(run)
    finally:
        lock.release()


def test_after_a_resume_the_export_is_whole(finished, tmp_path):
    """Resume folds the journals into Parquet: the export equals the finished run's."""
    run = _copy(finished, tmp_path)
    _crashed(run)
    _journal_from_parts(run, 1, drop_parts=True)
    assert main(["resume", str(run), "--no-progress"]) == 0
    _, got = read_events(run)
    _, want = read_events(finished)
    assert len(got) == len(want) > 0
    assert (got["item_id"].to_numpy() == want["item_id"].to_numpy()).all()


# ---------------------------------------------------------------------- Minari's one action shape
@pytest.fixture(scope="module")
def every_candidate(tmp_path_factory) -> Path:
    """Chaney's users ranking every candidate: 4 new items a step, one consumed per user."""
    sc = make_small(
        ("users", {"model": "chaney", "num_users": 12}),
        ("content", {"model": "chaney-items", "items_per_step": 4}),
        "platform.slate_size=0", "platform.exclude_consumed=true", "output.events=true",
        steps=4, agents=[{"model": "random"}, {"model": "popularity"}],
    )  # fmt: skip
    return run_scenario(sc, out_dir=tmp_path_factory.mktemp("runs")).path


def test_minari_refuses_slates_of_varying_length_writing_nothing(every_candidate, tmp_path):
    """One action shape per dataset: a clear error before any dataset is written."""
    with pytest.raises(RunStoreError, match=r"the slates of trial 0 hold from 4 to 13 items") as e:
        export_run(every_candidate, "minari", out=tmp_path / "m")
    assert "export this run as parquet or obp" in str(e.value)
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").rglob("*"))
    for fmt in ("parquet", "obp"):  # they take any length
        assert export_run(every_candidate, fmt, out=tmp_path / fmt)


def test_minari_episodes_name_their_user_and_bound_actions_by_the_ids(
    finished, tmp_path, monkeypatch
):
    """Infos carry the user id; the action space's (inclusive) bound is the largest item id."""
    minari = pytest.importorskip("minari")
    paths = export_run(finished, "minari", out=tmp_path)
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    _, events = read_events(finished)
    for trial, path in enumerate(paths):
        data = minari.load_dataset(f"simlab/{path.name}")
        ev = events[events["trial"] == trial]
        assert data.action_space.high.max() == ev["item_id"].max()
        users = sorted(ev["user_id"].unique())
        for episode, user in zip(data.iterate_episodes(), users, strict=True):
            assert set(np.asarray(episode.infos["user_id"]).tolist()) == {user}
