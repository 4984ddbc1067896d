"""Exports and reports are written whole or not at all.

``simlab export`` wrote ``events.parquet`` and OBP's ``bandit_feedback.npz`` / ``meta.json``
in place, and ``simlab report`` its CSV tables, ``report.md`` and figures: a Ctrl-C or a full
disk mid-write left half a file where a reader expects a whole one (or a half-overwritten
earlier export). Each is now written under a hidden temporary name and renamed over the
target (``simlab.atomic.replacing``). Each writer is made to stop half-way, by an interruption
or a full disk, on a first write (no file is left) and on a rewrite (the earlier file stays,
byte for byte); no temporary file is left either way. A Minari export made each dataset in
place and refused one that existed (``simlab export`` run twice stopped with a traceback):
each is now made in a hidden staging folder and moved over the earlier one.
"""

from __future__ import annotations

import errno
from pathlib import Path

import matplotlib.figure
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import make_small

from simlab.export import export_run
from simlab.report import build_report
from simlab.runner import run_scenario

STOPS = [KeyboardInterrupt, lambda: OSError(errno.ENOSPC, "No space left on device")]
STOP_IDS = ["interrupted", "disk-full"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A run with an event log: two agents, two seeds, 5 steps."""
    sc = make_small(
        "output.events=true", "users.num_users=40", "platform.max_candidates=30",
        steps=5, seeds=2, agents=[{"model": "random"}, {"model": "popularity"}],
    )  # fmt: skip
    return run_scenario(sc, out_dir=tmp_path_factory.mktemp("runs")).path


def _half_then(stop, real):
    """A writer that writes half of what ``real`` writes to its target, then raises."""

    def write(*args, **kwargs):
        target = args[1] if len(args) > 1 and not isinstance(args[0], Path | str) else args[0]
        if hasattr(target, "write"):  # a file object
            target.write(b"PK\x03\x04 half a file")
        else:
            Path(target).write_bytes(b"half a file")
        raise stop()

    return write


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _check(folder: Path, before: dict[str, bytes]) -> None:
    after = _files(folder)
    assert not [name for name in after if ".tmp" in name]  # no temporary file left
    assert after == before  # nothing new, nothing half-overwritten


CASES = [  # (export format or "report", module attribute patched, its name)
    ("parquet", pq, "write_table"),
    ("obp", np, "savez"),
    ("report", pd.DataFrame, "to_csv"),
    ("report", matplotlib.figure.Figure, "savefig"),
]


@pytest.mark.parametrize("stop", STOPS, ids=STOP_IDS)
@pytest.mark.parametrize("rewrite", [False, True], ids=["first", "rewrite"])
@pytest.mark.parametrize(("what", "owner", "name"), CASES, ids=[f"{c[0]}-{c[2]}" for c in CASES])
def test_a_writer_stopped_half_way_leaves_no_half_file(
    run_dir, tmp_path, monkeypatch, what, owner, name, rewrite, stop
):
    """The target is absent (first write) or the earlier one (rewrite); no temporary file."""
    out = tmp_path / "out"

    def produce():
        if what == "report":
            build_report(run_dir, out_dir=out)
        else:
            export_run(run_dir, what, out=out)

    if rewrite:
        produce()
    out.mkdir(exist_ok=True)
    before = _files(out)
    if rewrite:
        assert before  # there is an earlier export or report to keep
    real = getattr(owner, name)
    monkeypatch.setattr(owner, name, _half_then(stop, real))
    with pytest.raises((KeyboardInterrupt, OSError)):
        produce()
    monkeypatch.setattr(owner, name, real)
    if not rewrite:  # what the writer did not reach may exist whole (e.g. an earlier CSV)
        after = _files(out)
        assert not [f for f in after if ".tmp" in f]
        for path, data in after.items():
            assert data != b"half a file" and not data.startswith(b"PK\x03\x04 half"), path
    else:
        _check(out, before)
    produce()  # and the next write succeeds over what is left
    assert not [f for f in _files(out) if ".tmp" in f]


def _minari_files(out: Path) -> dict[str, bytes]:
    return {k: v for k, v in _files(out).items() if "namespace_metadata" not in k}


@pytest.mark.parametrize("stop", STOPS, ids=STOP_IDS)
def test_minari_exports_replace_an_earlier_one_and_stop_without_half_datasets(
    run_dir, tmp_path, monkeypatch, stop
):
    """A Minari export replaces an earlier one; stopped half-way, it leaves the earlier whole.

    Minari refused the existing id with a ValueError (a traceback from `simlab export` run
    twice). No staging folder is left.
    """
    import warnings

    import minari

    out = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Minari's notes on the missing env are by design
        first = export_run(run_dir, "minari", out=out)
        again = export_run(run_dir, "minari", out=out)
    assert first == again and len(first) == 4  # 2 agents x 2 seeds
    before = _minari_files(out)
    assert not [name for name in before if ".tmp" in name]
    real = minari.create_dataset_from_buffers

    def half(*args, **kwargs):
        import os

        made = Path(os.environ["MINARI_DATASETS_PATH"]) / kwargs["dataset_id"] / "data"
        made.mkdir(parents=True)
        (made / "part-0.arrow").write_bytes(b"half a file")
        raise stop()

    monkeypatch.setattr(minari, "create_dataset_from_buffers", half)
    with pytest.raises((KeyboardInterrupt, OSError)):
        export_run(run_dir, "minari", out=out)
    monkeypatch.setattr(minari, "create_dataset_from_buffers", real)
    assert _minari_files(out) == before
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(out))
    for path in first:
        data = minari.load_dataset(f"simlab/{path.name}")
        assert data.total_episodes > 0
