"""The ``simlab`` command end to end: validate, run, runs and show on a tiny scenario."""

from __future__ import annotations

import copy
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import SMALL

from simlab.cli import build_parser, main
from simlab.scenario import load_scenario, parse_scenario

AGENTS = [{"model": "random"}, {"model": "popularity"}, {"model": "mf", "factors": 4}]


def _simlab(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    cmd = [sys.executable, "-m", "simlab", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small scenario file with three agents (steps are cut with --set)."""
    data = copy.deepcopy(SMALL)
    data["agents"] = AGENTS
    path = tmp_path_factory.mktemp("cli") / "tiny.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def cli_run(scenario_file: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    """``simlab run`` with --set steps=3 and --seeds 2, and its run directory."""
    out = scenario_file.parent / "runs"
    proc = _simlab(
        "run", scenario_file, "--set", "steps=3", "--seeds", "2", "--out", out, "--run-id", "tiny"
    )
    return proc, out / "tiny"


def test_validate_prints_resolved_scenario(scenario_file: Path):
    """``simlab validate`` exits 0 and prints the resolved scenario as loadable YAML."""
    proc = _simlab("validate", scenario_file, "--set", "users.drift_rate=0.1")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    body, _, last = proc.stdout.rstrip("\n").rpartition("\n")
    assert last.startswith("valid: ") and "(3 trials x 30 steps)" in last
    printed = parse_scenario(yaml.safe_load(body))
    expected = load_scenario(scenario_file, ["users.drift_rate=0.1"])
    assert printed.resolved_dict() == expected.resolved_dict()
    assert "topic_spread: 1.0" in body  # a default the file does not set


def test_validate_quiet(scenario_file: Path, capsys):
    """``--quiet`` prints only the verdict line."""
    assert main(["validate", str(scenario_file), "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("valid: ")


def test_validate_long_lines_not_wrapped(scenario_file: Path, capsys):
    """Long values are printed on one line, so the YAML still parses."""
    text = "n" * 150
    assert main(["validate", str(scenario_file), "--set", f"description={text}"]) == 0
    body = capsys.readouterr().out.rstrip("\n").rpartition("\n")[0]
    assert yaml.safe_load(body)["description"] == text


def test_run_exits_zero_with_summary(cli_run):
    """``simlab run`` on a tiny scenario exits 0 and prints a summary naming each agent."""
    proc, run_dir = cli_run
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "3 agents x 2 seeds, 3 steps" in proc.stdout
    table = proc.stdout[proc.stdout.index("summary") :]
    for agent in ("random", "popularity", "mf"):
        assert agent in table
    assert "engagement/ctr" in table
    assert f"run directory: {run_dir}" in proc.stdout


def test_run_seeds_option(cli_run):
    """``--seeds 2`` gives seeds 0 and 1 for every agent."""
    _, run_dir = cli_run
    m = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    assert m["status"] == "completed"
    assert m["seeds"] == [0, 1]
    assert len(m["trials"]) == 3 * 2
    assert all(t["steps_done"] == 3 for t in m["trials"])
    assert load_scenario(run_dir / "scenario.yaml").steps == 3


def test_runs_lists_completed_run(cli_run):
    """``simlab runs --dir`` lists the run as completed with its progress."""
    _, run_dir = cli_run
    proc = _simlab("runs", "--dir", run_dir.parent)
    assert proc.returncode == 0, proc.stderr
    (row,) = [line for line in proc.stdout.splitlines() if "tiny" in line]
    assert "completed" in row
    assert "random, popularity, mf" in row
    assert "18/18" in row


def test_show_prints_summary(cli_run, capsys):
    """``simlab show`` prints the status and the summary table."""
    _, run_dir = cli_run
    assert main(["show", "tiny", "--dir", str(run_dir.parent)]) == 0
    out = capsys.readouterr().out
    assert "status: completed" in out
    assert "trials: 6, steps done: 18" in out
    for agent in ("random", "popularity", "mf"):
        assert agent in out[out.index("summary") :]


def test_show_subprocess(cli_run):
    """``simlab show`` works as a command on a run directory path."""
    _, run_dir = cli_run
    proc = _simlab("show", run_dir)
    assert proc.returncode == 0, proc.stderr
    assert "status: completed" in proc.stdout
    assert "summary" in proc.stdout


def test_runs_empty_dir(tmp_path: Path, capsys):
    """``simlab runs`` on a folder without runs says so."""
    assert main(["runs", "--dir", str(tmp_path)]) == 0
    assert "no run directories" in capsys.readouterr().out


def test_parser_requires_command():
    """The parser knows the four commands and needs one."""
    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args([])
    for cmd in ("run x.yaml", "validate x.yaml", "runs", "show r"):
        assert parser.parse_args(cmd.split()).command == cmd.split()[0]


def test_run_with_too_few_items_for_a_slate_is_a_usage_error(tmp_path, capsys):
    """A catalog smaller than the slate is refused at validate time: one line, exit code 2."""
    from simlab.cli import main

    quickstart = Path(__file__).resolve().parents[1] / "scenarios" / "quickstart.yaml"
    code = main(
        [
            "run",
            str(quickstart),
            "--set",
            "content.initial_items=0",
            "--set",
            "platform.slate_size=30",
            "--seeds",
            "1",
            "--out",
            str(tmp_path),
            "--no-progress",
            "--backend",
            "local",
        ]
    )
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2
    assert len(err) == 1
    assert err[0].startswith(f"error: {quickstart}: platform.slate_size: 30 is more than the 20 ")
    assert "items live at some step of the run" in err[0]
    assert list(tmp_path.iterdir()) == []  # refused before any run directory exists


def test_execution_flags_override_the_scenario(scenario_file: Path):
    """``--backend``, ``--address`` and ``--shards`` land in ``execution``."""
    from simlab.cli import _load

    args = build_parser().parse_args(
        ["run", str(scenario_file), "--backend", "ray", "--address", "auto", "--shards", "3"]
    )
    sc = _load(args)
    assert (sc.execution.backend, sc.execution.address, sc.execution.shards) == ("ray", "auto", 3)


BAD_FLAGS = [
    (["--shards", "0"], "error: --shards: Input should be greater than or equal to 1, got 0"),
    (["--shards", "5000"], "error: --shards: Input should be less than or equal to 4096"),
    (["--seeds", "0"], "error: --seeds: expects a positive number of seeds"),
    (["--backend", "ray", "--address", "foo"], "error: --address: expects `auto`"),
    (["--backend", "ray", "--address", "h:0"], "error: --address: expects `auto`"),
    # Ray's flags on a scenario that runs locally did nothing, silently
    (["--shards", "2"], "error: --shards: applies to the Ray backend, but "),
    (["--address", "auto"], "error: --address: applies to the Ray backend, but "),
    (["--backend", "local", "--shards", "3"], "error: --shards: applies to the Ray backend"),
]


# validate takes --seeds, not the execution flags
BAD_FLAG_CASES = [("run", f, m) for f, m in BAD_FLAGS] + [
    ("validate", f, m) for f, m in BAD_FLAGS if f[0] == "--seeds"
]


@pytest.mark.parametrize(
    ("command", "flags", "fragment"),
    BAD_FLAG_CASES,
    ids=[f"{c} {' '.join(f)}" for c, f, _ in BAD_FLAG_CASES],
)
def test_a_bad_flag_is_named_as_the_flag(scenario_file, tmp_path, capsys, command, flags, fragment):
    """A flag's value is the flag's fault, not the scenario file's; exit 2, one line."""
    extra = ["--out", str(tmp_path), "--no-progress"] if command == "run" else []
    code = main([command, str(scenario_file), *flags, *extra])
    err = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert code == 2 and len(err) == 1 and err[0].startswith(fragment), err
    assert not list(tmp_path.iterdir())


def test_fork_and_resume_from_the_command_line(scenario_file: Path, tmp_path: Path, capsys):
    """``run --from RUN@STEP`` forks; ``resume`` continues a stopped run; bad input exits 2."""
    out = tmp_path / "runs"
    common = ["--out", str(out), "--no-progress", "--set", "output.checkpoint_every=4"]
    assert main(["run", str(scenario_file), "--set", "steps=8", "--run-id", "a", *common]) == 0
    fork = ["run", str(scenario_file), "--set", "steps=8", "--run-id", "b", "--from"]
    assert main([*fork, f"{out / 'a'}@4", *common]) == 0
    assert "forked from" in capsys.readouterr().out
    forked = json.loads((out / "b" / "manifest.json").read_text())
    assert forked["forked_from"]["step"] == 4 and forked["status"] == "completed"
    # a missing checkpoint and a malformed --from are one clear line each
    assert main([*fork[:-2], "c", "--from", f"{out / 'a'}@3", *common]) == 2
    assert "no checkpoint at step 3; checkpoints exist at steps [4]" in capsys.readouterr().err
    assert main([*fork[:-2], "d", "--from", "nowhere", *common]) == 2
    assert "expects RUN@STEP" in capsys.readouterr().err
    # resume: a completed run is refused; an interrupted one finishes
    assert main(["resume", str(out / "a"), "--no-progress"]) == 2
    assert "already completed" in capsys.readouterr().err
    manifest = json.loads((out / "a" / "manifest.json").read_text())
    manifest["status"] = "interrupted"
    (out / "a" / "manifest.json").write_text(json.dumps(manifest))
    assert main(["resume", "a", "--dir", str(out), "--no-progress"]) == 0
    assert "simlab resume a (interrupted)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("agents", "seeds", "points"),
    [(2, 3, 1), (3, 8, 1), (6, 400, 2), (30, 1, 1), (5, 10, 30), (1, 25, 1)],
)
def test_progress_lines_stay_few_for_many_trials(monkeypatch, agents, seeds, points):
    """Up to 24 trials: a line each; more: a line per agent and point; too many: one line."""
    from types import SimpleNamespace

    from rich.console import Console
    from rich.progress import Progress

    from simlab import cli

    held = []

    def fake_progress(disable, out):
        held.append(Progress(console=Console(file=io.StringIO()), disable=True))
        return held[-1]

    monkeypatch.setattr(cli, "_progress", fake_progress)
    trials = [
        SimpleNamespace(info=SimpleNamespace(index=i, agent=f"a{a}", seed=s,
                                             params={"variant": f"v{p}"} if points > 1 else {}))
        for i, (a, s, p) in enumerate(
            (a, s, p) for p in range(points) for a in range(agents) for s in range(seeds)
        )
    ]  # fmt: skip
    done = {0: 4}

    def start(on_step):
        for t in trials:
            for k in range(done.get(t.info.index, 0) + 1, 11):
                on_step(SimpleNamespace(index=t.info.index), k)
        return "store"

    assert cli._run_with_progress(trials, 10, True, None, start, done) == "store"
    tasks = held[0].tasks
    expected = len(trials) if len(trials) <= cli.MAX_PROGRESS_LINES else agents * points
    expected = expected if expected <= cli.MAX_PROGRESS_LINES else 1
    assert len(tasks) == expected
    assert sum(t.total for t in tasks) == 10 * len(trials)
    assert all(t.completed == t.total for t in tasks)  # resumed steps counted once


def test_progress_lines_say_how_long_is_left(monkeypatch):
    """Each line gives elapsed time and the time left at its recent rate.

    A resumed trial's earlier steps do not count as speed; ``-:--:--`` before the first step.
    """
    from types import SimpleNamespace

    from rich.console import Console

    from simlab import cli

    clock = [100.0]
    held = []
    real = cli._progress

    def timed_progress(disable, out):
        held.append(real(False, Console(file=io.StringIO(), width=160)))
        held[-1].get_time = lambda: clock[0]
        return held[-1]

    monkeypatch.setattr(cli, "_progress", timed_progress)
    trials = [SimpleNamespace(info=SimpleNamespace(index=0, agent="mf", seed=0, params={}))]
    lines = []

    def start(on_step):
        progress = held[0]
        lines.append(_rendered(progress))
        for k in range(41, 61):  # 40 steps were done before this (a resume): 2 s per step
            clock[0] += 2.0
            on_step(SimpleNamespace(index=0), k)
            if k in (50, 60):
                lines.append(_rendered(progress))
        return "store"

    assert cli._run_with_progress(trials, 100, False, None, start, {0: 40}) == "store"
    assert "40/100" in lines[0] and "left -:--:--" in lines[0]
    assert "50/100" in lines[1] and "left 0:01:40" in lines[1]  # 50 steps at 2 s
    assert "60/100" in lines[2] and "left 0:01:20" in lines[2]


def _rendered(progress) -> str:
    from rich.console import Console

    console = Console(file=io.StringIO(), width=160)
    console.print(progress.make_tasks_table(progress.tasks))
    return console.file.getvalue()
