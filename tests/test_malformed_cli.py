"""Bad command lines: flags, paths and run ids. One ``error:`` line per problem, exit code 2.

Checked in-process through :func:`simlab.cli.main` (the same console and exit codes as the
command, without an interpreter start-up per case), plus one real subprocess per class to
prove stderr and the exit code of the actual program.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import SMALL

from simlab.cli import main


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid 3-step scenario file."""
    data = copy.deepcopy(SMALL)
    data["steps"] = 3
    path = tmp_path_factory.mktemp("sc") / "good.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _run(capsys, *args) -> tuple[int, list[str]]:
    try:
        code = main([str(a) for a in args])
    except SystemExit as e:  # argparse's own exit (through our parser's error())
        code = int(e.code or 0)
    err = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    return code, err


def _one_error(code: int, err: list[str], fragment: str) -> None:
    assert code == 2, err
    assert len(err) == 1, err
    assert err[0].startswith("error: "), err
    assert fragment in err[0], (fragment, err)


FLAGS = [
    (["run"], "the following arguments are required: scenario"),
    (["run", "{sc}", "--shards", "x"], "argument --shards: expects an integer, got 'x'"),
    (["run", "{sc}", "--seeds", "2.5"], "argument --seeds: expects an integer, got '2.5'"),
    (["run", "{sc}", "--backend", "spark"], "argument --backend: invalid choice: 'spark'"),
    (["run", "{sc}", "--bogus"], "unrecognized arguments: --bogus"),
    (["bogus-command"], "invalid choice: 'bogus-command'"),
    (["dashboard", "--port", "0"], "argument --port: expects 1..65,535, got 0"),
    (["dashboard", "--port", "70000"], "argument --port: expects 1..65,535, got 70000"),
    (["dashboard", "--port", "http"], "argument --port: expects an integer"),
    (["validate", "{sc}", "--seeds", "0"], "seeds: "),
    (["validate", "{sc}", "--seeds", "100000000000"], "seeds: 100000000000 seeds is more than"),
    (["run", "{sc}", "--out", "{tmp}", "--shards", "0"], "--shards: "),
    (["run", "{sc}", "--out", "{tmp}", "--shards", "5000"], "--shards: "),
    (["run", "{sc}", "--out", "{tmp}", "--address", "my-cluster"], "--address: expects `auto`"),
    (["run", "{sc}", "--out", "{tmp}", "--address", "host:99999"], "port 1..65535"),
    (["validate", "{sc}", "--set", "steps=.nan"], "steps: "),
    (["validate", "{sc}", "--set", "users.drift_rate=.inf"], "users.drift_rate: "),
    (["validate", "{sc}", "--set", "steps=1:30"], "is the base-60 number 90"),
    (["validate", "{sc}", "--set", "steps='30'"], "steps: expects an integer, not a string"),
    (["validate", "{sc}", "--set", "users=[1]"], "users: expected a mapping of fields"),
    (["run", "{sc}", "--from", "nowhere"], "--from: expects RUN@STEP"),
    (["run", "{sc}", "--from", "{tmp}/none@3"], "no such run directory"),
    (["resume", "{tmp}/none"], "no such run directory"),
    (["show", "{tmp}/none"], "no such run directory"),
    (["report", "{tmp}/none"], "no such run directory"),
    (["extras", "nope"], "nope"),
]


@pytest.mark.parametrize("args, fragment", FLAGS, ids=[" ".join(a)[:40] for a, _ in FLAGS])
def test_bad_flags(scenario: Path, tmp_path: Path, capsys, args, fragment):
    """A bad flag or value: one error line naming it and what is allowed."""
    args = [a.format(sc=scenario, tmp=tmp_path) for a in args]
    _one_error(*_run(capsys, *args), fragment)


RUN_IDS = ["../escape", "..", ".", "/etc/simlab", "a/b", "a\x00b", "-x", "x" * 300, "a b", "~me"]


@pytest.mark.parametrize("run_id", RUN_IDS, ids=[repr(r)[:20] for r in RUN_IDS])
def test_run_id_cannot_leave_out(scenario: Path, tmp_path: Path, capsys, run_id: str):
    """``..``, absolute paths, slashes, NUL bytes, overlong names: refused before running."""
    out = tmp_path / "runs"
    code, err = _run(capsys, "run", scenario, "--out", out, "--run-id", run_id, "--no-progress")
    _one_error(code, err, "--run-id")
    assert not out.exists()
    assert not (tmp_path / "escape").exists()


def test_good_run_ids_are_accepted(scenario: Path, tmp_path: Path, capsys):
    """Ordinary run ids pass (the check is not over-eager)."""
    for run_id in ("base", "fork-at-100", "exp_1.v2", "a@b+c=d"):
        code, err = _run(
            capsys, "run", scenario, "--out", tmp_path, "--run-id", run_id, "--no-progress"
        )
        assert code == 0, err
        assert (tmp_path / run_id / "manifest.json").is_file()


def _file(tmp: Path, *under: str) -> Path:
    (tmp / "f").write_text("x")
    return tmp.joinpath("f", *under)


OUTS = [
    ("a file", lambda tmp: _file(tmp), "is a file, not a folder"),
    ("under a file", lambda tmp: _file(tmp, "sub"), "cannot create run directory"),
    ("proc", lambda tmp: Path("/proc/self/simlab-runs"), "cannot create run directory"),
    ("nul", lambda tmp: "bad\x00dir", "a path cannot contain a NUL byte"),
]


@pytest.mark.parametrize("what, make, fragment", OUTS, ids=[w for w, _, _ in OUTS])
def test_output_folders_that_cannot_hold_runs(scenario, tmp_path, capsys, what, make, fragment):
    """``--out`` that is a file, under a file, or cannot be created: one clean error."""
    out = make(tmp_path)
    code, err = _run(capsys, "run", scenario, "--out", out, "--no-progress")
    _one_error(code, err, fragment)


def test_existing_run_id_is_refused_not_overwritten(scenario: Path, tmp_path: Path, capsys):
    """Running twice with one run id refuses the second and keeps the first run intact."""
    assert (
        _run(capsys, "run", scenario, "--out", tmp_path, "--run-id", "r", "--no-progress")[0] == 0
    )
    before = (tmp_path / "r" / "manifest.json").read_text()
    code, err = _run(capsys, "run", scenario, "--out", tmp_path, "--run-id", "r", "--no-progress")
    _one_error(code, err, "run directory already exists")
    assert (tmp_path / "r" / "manifest.json").read_text() == before


@pytest.mark.parametrize("command", ["run", "resume"])
def test_a_run_that_fails_before_its_first_step_shows_no_progress_lines(
    scenario: Path, tmp_path: Path, capsys, command: str
):
    """A run that fails before its first step shows its error line alone.

    A taken run id (run) or a completed run (resume): no progress line per trial (at 0/3
    or 3/3) above the error.
    """
    assert (
        _run(capsys, "run", scenario, "--out", tmp_path, "--run-id", "r", "--no-progress")[0] == 0
    )
    args = ["run", scenario, "--out", tmp_path, "--run-id", "r"]
    if command == "resume":
        args = ["resume", tmp_path / "r"]  # completed: nothing to resume
    try:
        code = main([str(a) for a in args])
    except SystemExit as e:
        code = int(e.code or 0)
    captured = capsys.readouterr()
    assert code == 2, captured
    assert "error: " in captured.err
    shown = captured.out + captured.err
    assert "0/3" not in shown and "3/3" not in shown and "trial 1/" not in shown, shown


def test_report_out_that_is_a_file(scenario: Path, tmp_path: Path, capsys):
    """``report --out`` naming a file is a clean error."""
    assert (
        _run(capsys, "run", scenario, "--out", tmp_path, "--run-id", "r", "--no-progress")[0] == 0
    )
    f = tmp_path / "file"
    f.write_text("x")
    code, err = _run(capsys, "report", tmp_path / "r", "--out", f)
    _one_error(code, err, "cannot create the report folder")
    code, err = _run(capsys, "report", tmp_path / "r", "--metrics", "engagement/ctrr")
    _one_error(code, err, "Did you mean 'engagement/ctr'?")


OUTPUT_FOLDERS = [
    ("a file", lambda tmp: _file(tmp), "File exists"),
    ("under a file", lambda tmp: _file(tmp, "sub"), "Not a directory"),
    ("deeper under a file", lambda tmp: _file(tmp, "a", "b"), "Not a directory"),
    ("proc", lambda tmp: Path("/proc/self/simlab-out"), "No such file or directory"),
    ("nul", lambda tmp: "bad\x00dir", "a path cannot contain a NUL byte"),
]


@pytest.fixture(scope="module")
def logged(scenario: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A completed run of ``scenario`` with its event log."""
    out = tmp_path_factory.mktemp("logged")
    args = ["run", str(scenario), "--out", str(out), "--run-id", "r", "--no-progress"]
    assert main([*args, "--set", "output.events=true"]) == 0
    return out / "r"


@pytest.mark.parametrize("command", ["export", "report"])
@pytest.mark.parametrize(
    "what, make, fragment", OUTPUT_FOLDERS, ids=[w for w, *_ in OUTPUT_FOLDERS]
)
def test_export_and_report_out_that_cannot_be_a_folder(
    logged, tmp_path, capsys, command, what, make, fragment
):
    """``export``/``report --out`` a file, under one, or not creatable: one clean error.

    (export's was a FileExistsError or FileNotFoundError traceback.)
    """
    out = make(tmp_path)
    extra = ["--format", "parquet"] if command == "export" else []
    code, err = _run(capsys, command, logged, *extra, "--out", out)
    _one_error(code, err, fragment)
    if "\x00" not in str(out):
        assert f"cannot create the {command} folder" in err[0] or "NUL" in err[0], err


def test_dashboard_runs_that_is_a_file(tmp_path: Path, capsys):
    """``dashboard --runs`` naming a file is refused before Streamlit starts."""
    pytest.importorskip("streamlit")
    f = tmp_path / "file"
    f.write_text("x")
    _one_error(*_run(capsys, "dashboard", "--runs", f), "is a file, not a folder")


@pytest.mark.parametrize(
    ("host", "fragment"),
    [
        ("bad host", "'bad host' does not resolve"),
        ("999.1.1.1", "'999.1.1.1' does not resolve"),
        ("", "'' does not resolve"),
        ("a" * 300, "does not resolve"),
        ("exa mple..com", "does not resolve"),
        ("192.0.2.1", "cannot serve on 192.0.2.1:8"),  # TEST-NET-1: not this machine's
    ],
)
def test_dashboard_host_it_cannot_serve_on(capsys, host, fragment):
    """A host that does not resolve or is not this machine's: one error, before Streamlit.

    (Streamlit itself ended in a ``socket.gaierror`` traceback.)
    """
    pytest.importorskip("streamlit")
    _one_error(*_run(capsys, "dashboard", "--host", host, "--port", "8765"), fragment)


def test_dashboard_port_in_use(capsys):
    """A port another program listens on: one error naming it; a free one passes the check."""
    import socket

    from simlab.cli_tools import _check_address

    pytest.importorskip("streamlit")
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        code, err = _run(capsys, "dashboard", "--port", port)
        _one_error(code, err, f"--port: {port} is already in use on 127.0.0.1")
    _check_address("127.0.0.1", port)  # free again: no error, and the probe let it go
    _check_address("127.0.0.1", port)


def test_real_process_exit_codes(scenario: Path, tmp_path: Path):
    """As a program: a bad flag, a bad run id and a bad value each exit 2 with one line."""
    cases = [
        ["run", str(scenario), "--shards", "x"],
        ["run", str(scenario), "--run-id", "../x", "--out", str(tmp_path)],
        ["validate", str(scenario), "--set", "steps=.inf"],
    ]
    for args in cases:
        proc = subprocess.run(
            [sys.executable, "-m", "simlab", *args], capture_output=True, text=True, timeout=120
        )
        lines = [x for x in proc.stderr.splitlines() if x.strip()]
        assert proc.returncode == 2, proc.stderr
        assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
        assert "Traceback" not in proc.stderr
