"""Fixtures and helpers of the dashboard tests: two small real runs, corrupt runs, AppTest.

Not a ``conftest.py``: test modules import ``conftest`` (the root one) by name, and a
second module of that name would shadow it. Each test module binds the fixtures it
needs, e.g. ``base_run = dash_fixtures.base_run``; the real run is made once per session.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import shutil
import socket
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import SMALL
from streamlit.testing.v1 import AppTest

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

# a second run: other phases (with a ramp), 3 seeds, 16 steps, popularity and the oracle
RAMP_SCENARIO: dict[str, Any] = copy.deepcopy(DASHBOARD_SCENARIO)
RAMP_SCENARIO.update(name="dash-ramp", steps=16, seeds=3)
RAMP_SCENARIO["agents"] = [{"model": "popularity"}, {"model": "oracle"}]
RAMP_SCENARIO["content"] = dict(
    SMALL["content"],
    phases=[
        {"until": 3, "aigc_share": 0.0},
        {"until": 10, "aigc_share": 0.5, "ramp": 4},
        {"aigc_share": 1.0},
    ],
)


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


@pytest.fixture(scope="session")
def ramp_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A completed run with other phases than :func:`base_run`: popularity and oracle, 3 seeds."""
    if "ramp" not in _MADE:
        parent = tmp_path_factory.mktemp("ramp")
        _MADE["ramp"] = run_scenario(parse_scenario(RAMP_SCENARIO), out_dir=parent).path
    return _MADE["ramp"]


@pytest.fixture
def two_runs(tmp_path: Path, base_run: Path, ramp_run: Path) -> Path:
    """A runs folder with copies of the two real runs (the ramp run is the newer)."""
    parent = tmp_path / "runs"
    parent.mkdir()
    shutil.copytree(base_run, parent / base_run.name)
    shutil.copytree(ramp_run, parent / ramp_run.name)
    # both may have started in the same second: make the base run a day older
    path = parent / base_run.name / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    for key in ("created", "started", "ended"):
        stamp = datetime.fromisoformat(manifest[key]) - timedelta(days=1)
        manifest[key] = stamp.isoformat(timespec="seconds")
    path.write_text(json.dumps(manifest), encoding="utf-8")
    return parent


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


def drop_trials(run: Path, trials: set[int]) -> None:
    """Remove every metric part of ``trials`` (they look queued: no step written yet)."""
    for part in (run / "metrics.parquet").glob("part-*.parquet"):
        if int(part.stem.split("-")[1]) in trials:
            part.unlink()


# ---------------------------------------------------------------------- AppTest helpers
TIMEOUT = 60


def open_app(
    runs: Path, monkeypatch: pytest.MonkeyPatch, page: str = "Runs", query: dict | None = None
) -> AppTest:
    """The app over ``runs`` (through ``SIMLAB_RUNS``), opened with ``query`` and on ``page``."""
    monkeypatch.setenv("SIMLAB_RUNS", str(runs))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.query_params.update(query or {})
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    if page != at.sidebar.radio(key="page").value:
        at.sidebar.radio(key="page").set_value(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def figures(at: AppTest) -> list[dict]:
    """The Plotly figure specs of the page's charts."""
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def values(array: list | dict) -> list:
    """A trace's array as a list (Plotly sends numpy arrays base64-encoded as ``bdata``)."""
    if isinstance(array, dict):
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()
    return list(array)


def trace_names(fig: dict) -> list[str]:
    """Names of a figure's traces."""
    return [t.get("name") for t in fig["data"]]


def trace(fig: dict, name: str) -> dict:
    """The trace called ``name``."""
    (found,) = [t for t in fig["data"] if t.get("name") == name]
    return found


def select_runs(at: AppTest, ids: list[str]) -> AppTest:
    """Select ``ids`` in the sidebar and rerun."""
    at.sidebar.multiselect(key="runs-selected").set_value(ids).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def phase_rects(fig: dict, xref: str = "x") -> list[tuple[float, float]]:
    """``(x0, x1)`` of the phase rectangles drawn on the x axis ``xref``."""
    return [
        (s["x0"], s["x1"])
        for s in fig["layout"].get("shapes", [])
        if s["type"] == "rect" and s.get("xref", "x") == xref and s.get("name") != "warm-up"
    ]


def warmup_rects(fig: dict) -> dict[str, tuple[float, float]]:
    """``{xref: (x0, x1)}`` of the warm-up rectangles of a figure."""
    return {
        s.get("xref", "x"): (s["x0"], s["x1"])
        for s in fig["layout"].get("shapes", [])
        if s["type"] == "rect" and s.get("name") == "warm-up"
    }


def phase_labels(fig: dict) -> list[str]:
    """The phase labels of a figure (annotations naming a share), in drawing order."""
    return [a["text"] for a in fig["layout"].get("annotations", []) if "%" in a["text"]]
