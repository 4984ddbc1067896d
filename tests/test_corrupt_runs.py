"""Corrupt run directories, for every command that reads one.

One completed run (checkpoints, snapshots and the event log on) is copied and damaged in one
way per case. ``show``, ``report`` and ``resume`` must exit 0 or 2 (2 with ``error:`` lines
naming the damaged file), never 1 or a traceback; ``runs`` lists every directory, the damaged
ones as ``corrupt``; the dashboard's loader raises ``RunStoreError`` only.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import make_small

from simlab.cli import main
from simlab.errors import RunStoreError
from simlab.runner import run_scenario
from simlab.store import RunStore, list_runs


def _manifest(run: Path) -> dict:
    return json.loads((run / "manifest.json").read_text(encoding="utf-8"))


def _edit(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        m = _manifest(run)
        change(m)
        (run / "manifest.json").write_text(json.dumps(m), encoding="utf-8")

    return damage


def _write(name: str, text: str | bytes) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        p = run / name
        if p.is_dir():
            shutil.rmtree(p)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(text if isinstance(text, bytes) else text.encode())

    return damage


def _dir_instead(name: str) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        p = run / name
        if p.is_file():
            p.unlink()
        elif p.is_dir():
            shutil.rmtree(p)
        p.mkdir(parents=True)

    return damage


def _journal(line: str) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        row = {"run_id": "done", "trial": 0, "agent": "random", "seed": 0, "step": 99}
        text = json.dumps(row) + "\n" + line + "\n" + json.dumps({**row, "step": 100}) + "\n"
        (run / "metrics.journal" / "part-00000-000099.jsonl").write_text(text)

    return damage


def _truncate_part(run: Path) -> None:
    part = sorted((run / "metrics.parquet").glob("part-*.parquet"))[0]
    part.write_bytes(part.read_bytes()[:50])


def _set(key: str, value) -> Callable[[Path], None]:
    return _edit(lambda m: m.__setitem__(key, value))


def _set_trial(key: str, value) -> Callable[[Path], None]:
    return _edit(lambda m: m["trials"][0].__setitem__(key, value))


def _unlink(name: str) -> Callable[[Path], None]:
    return lambda run: (run / name).unlink()


def _garbage_checkpoints(run: Path) -> None:
    """Damage every checkpoint, and drop trial 0's rows from step 5 on (so it resumes)."""
    for p in run.glob("checkpoints/*/*.ckpt"):
        p.write_bytes(b"PK\x03\x04junk")
    for p in (run / "metrics.parquet").glob("part-00000-*.parquet"):
        if int(p.stem.rsplit("-", 1)[1]) >= 5:
            p.unlink()


MANIFEST = "manifest.json"
# name -> (damage, fragment of the error, whether `runs` lists it as corrupt)
CASES: dict[str, tuple[Callable[[Path], None], str, bool]] = {
    "manifest-invalid-json": (_write(MANIFEST, '{"run_id": '), "corrupt manifest (", True),
    "manifest-empty": (_write(MANIFEST, ""), "corrupt manifest (", True),
    "manifest-binary": (_write(MANIFEST, b"\xff\xfe\x00\x01"), "corrupt manifest (", True),
    "manifest-deep": (_write(MANIFEST, "[" * 100000 + "]" * 100000), "corrupt manifest", True),
    "manifest-list": (_write(MANIFEST, "[1, 2]"), "expected a JSON object", True),
    "manifest-is-dir": (_dir_instead(MANIFEST), "expected a file, found a folder", True),
    "no-manifest": (_unlink(MANIFEST), "not a run directory (no manifest.json)", True),
    "missing-trials": (_edit(lambda m: m.pop("trials")), "missing trials", True),
    "missing-status": (_edit(lambda m: m.pop("status")), "missing status", True),
    "trials-not-list": (_set("trials", "four"), "malformed trials (expected a list", True),
    "trial-not-dict": (_set("trials", [1, 2]), "malformed trials[0] (expected a mapping", True),
    "steps-done-str": (_set_trial("steps_done", "x"), "malformed trials[0].steps_done", True),
    "steps-done-negative": (_set_trial("steps_done", -3), "trials[0].steps_done", True),
    "trial-index-wrong": (_set_trial("index", 7), "trials[0].index (expected 0, got 7)", True),
    "trial-agent-int": (_set_trial("agent", 5), "malformed trials[0].agent", True),
    "trial-status-unknown": (_set_trial("status", "done"), "malformed trials[0].status", True),
    "trial-policy-unknown": (
        _set_trial("logging_policy", "completed"),
        "malformed trials[0].logging_policy (expected one of 'sampled'",
        True,
    ),
    "trial-policy-null": (_set_trial("logging_policy", None), "trials[0].logging_policy", True),
    "summary-kind-unknown": (
        _edit(lambda m: m["metric_summary"].__setitem__("engagement/ctr", "median")),
        "malformed metric_summary.engagement/ctr (expected one of 'mean' or 'last'",
        True,
    ),
    "sweep-column-unknown": (
        _set("sweep_columns", ["nope"]),
        "malformed trials[0].params (no value of sweep column 'nope')",
        True,
    ),
    "metric-column-twice": (
        _edit(lambda m: m["metric_columns"].append(m["metric_columns"][0])),
        "names two columns of the metrics table",
        True,
    ),
    "metric-column-is-id": (
        _edit(lambda m: m["metric_columns"].append("step")),
        "malformed sweep_columns/metric_columns ('step' names two columns",
        True,
    ),
    "status-int": (_set("status", 5), "malformed status", True),
    "status-unknown": (_set("status", "bogus"), "malformed status", True),
    "metric-columns-ints": (_set("metric_columns", [1, 2]), "malformed metric_columns[0]", True),
    "run-id-int": (_set("run_id", 42), "malformed run_id (expected a string", True),
    "sweep-columns-str": (_set("sweep_columns", "x"), "malformed sweep_columns", True),
    "pid-str": (_set("pid", "1234"), "malformed pid", True),
    "forked-bad": (_set("forked_from", {"run": 1}), "malformed forked_from", True),
    "metrics-is-file": (_write("metrics.parquet", "x"), "expected a folder, found a file", True),
    "journal-is-file": (_write("metrics.journal", "x"), "expected a folder, found a file", True),
    "events-is-file": (_write("events", "x"), "events: expected a folder, found a file", True),
    "snapshots-is-file": (_write("snapshots", "x"), "expected a folder, found a file", True),
    "checkpoints-is-file": (_write("checkpoints", "x"), "expected a folder, found a file", True),
    "scenario-is-dir": (_dir_instead("scenario.yaml"), "expected a file, found a folder", True),
    "part-is-dir": (
        _dir_instead("metrics.parquet/part-00000-000099.parquet"),
        "expected a Parquet file, found a folder",
        False,
    ),
    "truncated-part": (_truncate_part, "corrupt metrics part (", False),
    "journal-list-line": (_journal("[1, 2]"), "not a metric row (expected a JSON object", False),
    "journal-number-line": (_journal("7"), "not a metric row (expected a JSON object", False),
    "journal-bad-types": (
        _journal('{"run_id": "done", "trial": 0, "agent": "random", "seed": 0, "step": "x"}'),
        "not a metric row (step should be int",
        False,
    ),
    "journal-cut-middle": (_journal('{"run_id": "do'), "corrupt journal line (not JSON)", False),
    "journal-wrong-metric": (
        _journal(
            '{"run_id": "done", "trial": 0, "agent": "random", "seed": 0, "step": 7, '
            '"engagement/ctr": "high"}'
        ),
        "a journal row does not fit the metrics table",
        False,
    ),
}
# what `simlab resume` alone reads (show/report/runs do not): its own cases
RESUME_ONLY: dict[str, tuple[Callable[[Path], None], str]] = {
    "no-scenario": (_unlink("scenario.yaml"), "scenario file not found"),
    "scenario-bad-yaml": (_write("scenario.yaml", "name: [x\n"), "YAML syntax error"),
    "scenario-other-agents": (
        lambda run: (run / "scenario.yaml").write_text(
            (run / "scenario.yaml").read_text().replace("name: popularity", "name: pop2")
        ),
        "manifest trials do not match its scenario.yaml",
    ),
    "checkpoint-garbage": (lambda run: _garbage_checkpoints(run), "corrupt checkpoint"),
}


@pytest.fixture(scope="module")
def completed(tmp_path_factory: pytest.TempPathFactory) -> RunStore:
    """A finished run with checkpoints, snapshots and events, marked interrupted."""
    sc = make_small(
        "output.checkpoint_every=3", "output.snapshot_every=3", "output.events=true", steps=7
    )
    store = run_scenario(sc, out_dir=tmp_path_factory.mktemp("src"), run_id="done")
    return store


@pytest.fixture(scope="module")
def damaged(completed: RunStore, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One damaged copy of the completed run per case, plus a good one, in one folder."""
    parent = tmp_path_factory.mktemp("damaged")
    shutil.copytree(completed.path, parent / "good")
    for name, (damage, *_rest) in {**CASES, **RESUME_ONLY}.items():
        shutil.copytree(completed.path, parent / name)
        if name in RESUME_ONLY or not CASES[name][2]:
            _edit(lambda m: m.__setitem__("status", "interrupted"))(parent / name)
        damage(parent / name)
    return parent


def _run(capsys, *args) -> tuple[int, list[str]]:
    code = main([str(a) for a in args])
    err = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    return code, err


def test_there_are_many_cases_per_command():
    """The suite covers at least 30 kinds of damage."""
    assert len(CASES) + len(RESUME_ONLY) >= 30


@pytest.mark.parametrize("name", sorted(CASES))
def test_show_report_resume_refuse_a_damaged_run_cleanly(damaged: Path, capsys, name: str):
    """Every reading command exits 2 with error lines naming the damage, never a traceback."""
    fragment = CASES[name][1]
    run = damaged / name
    for command in (
        ["show", run],
        ["report", run, "--out", run.parent / f"rep-{name}"],
        ["resume", run, "--no-progress", "--backend", "local"],
    ):
        code, err = _run(capsys, *command)
        assert code == 2, (command[0], err)
        assert err and all(x.startswith("error: ") for x in err), (command[0], err)
        assert any(fragment in x for x in err), (command[0], fragment, err)


@pytest.mark.parametrize("name", sorted(RESUME_ONLY))
def test_resume_refuses_a_damaged_scenario_or_checkpoints(damaged: Path, capsys, name: str):
    """What only resume reads (scenario.yaml, checkpoints) is checked as well."""
    run = damaged / name
    code, err = _run(capsys, "resume", run, "--no-progress", "--backend", "local")
    if name == "checkpoint-garbage":
        # every checkpoint is damaged: resume warns, falls back to step 0 and completes
        assert code == 0, err
        assert any(x.startswith("warning: ") and "corrupt checkpoint" in x for x in err), err
        return
    assert code == 2, err
    assert any(RESUME_ONLY[name][1] in x for x in err), err
    assert _run(capsys, "show", run)[0] == 0  # show does not need the scenario


def test_runs_lists_every_directory_and_marks_the_damaged_ones(damaged: Path, capsys):
    """``simlab runs`` never fails on a damaged run: it lists it as corrupt with the reason."""
    listed = {r.path.name: r for r in list_runs(damaged)}
    for name, (_, fragment, corrupt) in CASES.items():
        if corrupt:
            assert listed[name].status == "corrupt", name
            assert fragment in (listed[name].problem or ""), (name, listed[name].problem)
        else:
            assert listed[name].status != "corrupt", name
    assert listed["good"].status == "completed"
    code, err = _run(capsys, "runs", "--dir", damaged)
    assert code == 0 and not err


def test_dashboard_loader_raises_only_run_store_errors(damaged: Path):
    """The dashboard's loader turns every damage into a RunStoreError (shown on the page)."""
    from simlab.dashboard.data import load_run

    for name in sorted({*CASES, *RESUME_ONLY}):
        try:
            load_run(damaged / name)
        except RunStoreError as e:
            assert str(e)
    load_run(damaged / "good")


def test_runs_on_a_file_or_missing_folder(tmp_path: Path, capsys):
    """``--dir`` that is a file is an error; a missing folder lists nothing."""
    f = tmp_path / "file"
    f.write_text("x")
    code, err = _run(capsys, "runs", "--dir", f)
    assert code == 2 and "is a file, not a folder of run directories" in err[0]
    assert _run(capsys, "runs", "--dir", tmp_path / "none")[0] == 0
    code, err = _run(capsys, "show", f)
    assert code == 2 and "is a file, not a run directory" in err[0]
