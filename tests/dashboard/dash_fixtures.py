"""Fixtures of the dashboard tests: one small real run, a corrupt run, a half-written run.

Not a ``conftest.py``: test modules import ``conftest`` (the root one) by name, and a
second module of that name would shadow it. Each test module binds the fixtures it
needs, e.g. ``base_run = dash_fixtures.base_run``; the real run is made once per session.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest
from conftest import SMALL

from simlab.runlock import RunLock
from simlab.runner import run_scenario
from simlab.scenario import parse_scenario
from simlab.store import TrialInfo, open_run

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"

DASHBOARD_SCENARIO: dict[str, Any] = copy.deepcopy(SMALL)
DASHBOARD_SCENARIO.update(
    name="dash",
    steps=12,
    seeds=2,
    metrics=["engagement", "exposure", "source", "creators", "drift"],
)
DASHBOARD_SCENARIO["users"] = {"model": "logit", "num_users": 120}
DASHBOARD_SCENARIO["content"] = dict(
    SMALL["content"],
    phases=[
        {"until": 4, "aigc_share": 0.0},
        {"until": 8, "aigc_share": 0.3},
        {"aigc_share": 0.8},
    ],
)
DASHBOARD_SCENARIO["output"] = {"flush_seconds": 0.0, "snapshot_every": 4, "snapshot_users": 50}


_MADE: dict[str, Path] = {}


@pytest.fixture(scope="session")
def base_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A completed real run: random and popularity, 2 seeds, 12 steps, snapshots every 4.

    Tests copy it before changing anything; it is made once for all test modules.
    """
    if "base" not in _MADE:
        parent = tmp_path_factory.mktemp("base")
        _MADE["base"] = run_scenario(parse_scenario(DASHBOARD_SCENARIO), out_dir=parent).path
    return _MADE["base"]


def _add_corrupt_runs(parent: Path, source: Path) -> None:
    """A folder with a garbage manifest and a copy of ``source`` with a half-written part."""
    bad = parent / "zz-garbage-manifest"
    bad.mkdir()
    (bad / "manifest.json").write_text("{not json", encoding="utf-8")
    half = parent / "zz-half-written"
    shutil.copytree(source, half)
    part = sorted((half / "metrics.parquet").glob("part-*.parquet"))[0]
    part.write_bytes(part.read_bytes()[:40])
    manifest = json.loads((half / "manifest.json").read_text(encoding="utf-8"))
    manifest["started"] = "0000"  # listed last, so never the default selection
    (half / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


@pytest.fixture
def runs_dir(tmp_path: Path, base_run: Path) -> Path:
    """A runs folder holding a copy of the real run plus two corrupt run directories."""
    parent = tmp_path / "runs"
    parent.mkdir()
    shutil.copytree(base_run, parent / base_run.name)
    _add_corrupt_runs(parent, base_run)
    return parent


_LIVE_LOCKS: list[RunLock] = []
"""Locks held for the live runs of the test session (released when the process ends)."""


def make_live_run(source: Path, dest: Path, keep_steps: int) -> Path:
    """Copy ``source`` to ``dest`` as a ``running`` run holding only its first ``keep_steps``.

    With ``flush_seconds: 0`` every step of a trial is its own Parquet part
    ``part-<trial>-<step>``, so dropping the later parts rewinds the run.
    """
    shutil.copytree(source, dest)
    for part in (dest / "metrics.parquet").glob("part-*.parquet"):
        if int(part.stem.rsplit("-", 1)[1]) >= keep_steps:
            part.unlink()
    shutil.rmtree(dest / "snapshots", ignore_errors=True)
    manifest = json.loads((dest / "manifest.json").read_text(encoding="utf-8"))
    manifest.update(status="running", pid=os.getpid(), host=socket.gethostname())
    manifest["started"] = "9999"  # newest, so the default selection
    for trial in manifest["trials"]:
        trial.update(status="running", steps_done=keep_steps)
    (dest / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    # a live run's writer holds the directory's lock (that, not the pid, says "running")
    lock = RunLock(dest)
    lock.acquire()
    _LIVE_LOCKS.append(lock)
    return dest


def write_steps(run: Path, steps: range) -> None:
    """Append metric rows for ``steps`` to every trial of ``run``, as ``simlab run`` would."""
    store = open_run(run)
    for t in store.manifest["trials"]:
        info = TrialInfo(t["index"], t["agent"], t["seed"], t["point"], t["params"])
        writer = store.metrics_writer(info, 0.0)
        for step in steps:
            writer.add(step, {c: 0.5 for c in store.manifest["metric_columns"]})
        writer.close()
