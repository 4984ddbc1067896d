"""Bad input on the command line: one clear ``error:`` line on stderr, exit code 2, no traceback.

Every file in ``tests/data/bad_scenarios/`` is a complete small scenario with exactly one
defect. ``BAD_FILES`` maps each file to the fragments its error line must contain: the
field path, what is wrong and what is allowed. The CLI runs as a real subprocess, all
cases of the module at once (a few in parallel), so stderr and exit codes are the real
ones.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from conftest import SMALL

from simlab import registry
from simlab.cli import main

BAD_DIR = Path(__file__).parent / "data" / "bad_scenarios"

AGENT_NAMES = "Allowed: " + ", ".join(registry.names("agents"))
METRIC_NAMES = "Allowed: " + ", ".join(registry.names("metrics"))
USER_MODELS = "Allowed: " + ", ".join(registry.names("users"))
TOP_FIELDS = "Allowed: name, description, steps, seeds, world, users, content, platform, agents"

BAD_FILES: dict[str, list[str]] = {
    "unknown_top_level_key.yaml": [
        "descripton: unknown field 'descripton'.",
        "Did you mean 'description'?",
        TOP_FIELDS,
    ],
    "unknown_nested_key.yaml": [
        "users.drift_rat: unknown field 'drift_rat'.",
        "Did you mean 'drift_rate'?",
        "Allowed: num_users,",
    ],
    "wrong_type.yaml": ["users.num_users: expects an integer, got 'many'"],
    "negative_size.yaml": ["users.num_users: ", "greater than 0", "got -5"],
    "zero_steps.yaml": ["steps: ", "greater than 0", "got 0"],
    "unknown_agent_model.yaml": [
        "agents[1].model: unknown agents model 'popularty'.",
        "Did you mean 'popularity'?",
        AGENT_NAMES,
    ],
    "unknown_user_model.yaml": [
        "users.model: unknown users model 'logitt'.",
        "Did you mean 'logit'?",
        USER_MODELS,
    ],
    "unknown_metric.yaml": [
        "metrics[1]: unknown metric 'exposur'.",
        "Did you mean 'exposure'?",
        METRIC_NAMES,
    ],
    "phases_out_of_order.yaml": [
        "content.phases: phases out of order",
        "phases[1].until=10 must be greater than phases[0].until=20",
    ],
    "phase_without_until_not_last.yaml": [
        "content.phases: phases[0] has no `until` but is not the last phase",
        "only the last phase may omit `until`",
    ],
    "aigc_share_above_one.yaml": [
        "content.phases[0].aigc_share: ",
        "less than or equal to 1",
        "got 1.5",
    ],
    "yaml_syntax_error.yaml": ["yaml_syntax_error.yaml:5:1: YAML syntax error"],
    "duplicate_key.yaml": [
        "duplicate_key.yaml:4:1: YAML syntax error: duplicate key 'steps' (first set on line 3)"
    ],
    "empty.yaml": ["empty.yaml: scenario file is empty"],
    "comment_only.yaml": ["comment_only.yaml: scenario file is empty"],
    "top_level_list.yaml": [
        "top_level_list.yaml: the top level must be a mapping of scenario fields",
        "got a list",
    ],
    "missing_agents.yaml": ["agents: required field is missing"],
    "empty_agents.yaml": ["agents: ", "at least 1 item", "got []"],
    "duplicate_agent_names.yaml": [
        "agents[1].name: duplicate agent label 'random'",
        "give each agent a unique name",
    ],
    "seeds_negative.yaml": [
        "seeds: ",
        "positive number of seeds N",
        "list of distinct non-negative ints",
        "got -1",
    ],
    "seeds_duplicate.yaml": ["seeds: seeds must be distinct, got [1, 1]"],
    "deploy_lag_zero.yaml": ["platform.deploy_lag: ", "greater than or equal to 1", "got 0"],
    "unknown_agent_param.yaml": [
        "agents[2].factor: unknown field 'factor'.",
        "Did you mean 'factors'?",
        "Allowed: debias, propensity_power, min_propensity, factors, epochs, lr, l2, "
        "batch_size, init_scale",
    ],
    "class_not_importable.yaml": [
        "agents[2].model: ",
        "cannot import module 'no_such_package.recs'",
    ],
    "class_missing_attribute.yaml": [
        "agents[2].model: ",
        "module 'simlab.agents.baselines' has no attribute 'NoSuchAgent'",
    ],
    "sweep_empty_list.yaml": [
        "sweep: ",
        "'users.num_users' has an empty list of values",
        "give at least one value",
    ],
    "sweep_unknown_field.yaml": [
        "sweep.users.num_userz: users.num_userz: unknown field 'num_userz'.",
        "Did you mean 'num_users'?",
    ],
    "sweep_invalid_value.yaml": [
        "sweep.platform.retrain_every=0: platform.retrain_every: ",
        "greater than 0",
        "got 0",
    ],
    "agent_without_model.yaml": ["agents[2].model: required field is missing"],
    "bad_literal.yaml": [
        "agents[1].signal: ",
        "'clicks', 'impressions' or 'engagement'",
        "got 'click'",
    ],
    "unknown_reranker.yaml": [
        "platform.rerankers[0].model: unknown rerankers model 'popularity-penalti'.",
        "Did you mean 'popularity-penalty'?",
    ],
    "section_not_mapping.yaml": ["users: expected a mapping of fields, got 'logit'"],
    "bad_name.yaml": ["name: must be at most 100 letters, digits, '_', '.' or '-'", "got 'my run'"],
    "execution_unknown_backend.yaml": ["execution.backend: ", "'ray' or 'local'", "got 'spark'"],
    "execution_bad_address.yaml": [
        "execution.address: expects `auto`, `ray://host:port` or `host:port`",
        "got 'my-cluster'",
    ],
    "execution_zero_shards.yaml": ["execution.shards: ", "greater than or equal to 1", "got 0"],
    "execution_negative_gpus.yaml": [
        "execution.agent_resources.num_gpus: ",
        "greater than or equal to 0",
        "got -1",
    ],
    "execution_unknown_key.yaml": [
        "execution.shard: unknown field 'shard'.",
        "Did you mean 'shards'?",
        "Allowed: backend, address, shards,",
    ],
}

# --set mistakes named in the brief, run through a real subprocess: extra args -> fragments.
BAD_OVERRIDES_SUBPROCESS: dict[str, tuple[list[str], list[str]]] = {
    "malformed-path": (["--set", "agents..factors=3"], ["malformed field path 'agents..factors'"]),
    "index-out-of-range": (
        ["--set", "agents[9].factors=3"],
        ["agents[9]: index out of range; 'agents' has 2 entries"],
    ),
    "fails-validation": (
        ["--set", "users.num_users=-5"],
        ["users.num_users: ", "greater than 0", "got -5"],
    ),
}

# More --set / --seeds mistakes, checked in-process through ``simlab.cli.main`` (same
# console, same exit code, no interpreter start-up per case).
BAD_OVERRIDES_IN_PROCESS: dict[str, tuple[list[str], list[str]]] = {
    "malformed-index": (
        ["--set", "agents[x].factors=3"],
        ["malformed field path 'agents[x].factors'"],
    ),
    "unbalanced-bracket": (["--set", "agents[1]]=3"], ["malformed field path 'agents[1]]'"]),
    "empty-path": (["--set", "=3"], ["malformed field path ''"]),
    "negative-index": (
        ["--set", "agents[-1].factors=3"],
        ["field path 'agents[-1].factors': list positions count from 0"],
    ),
    "negative-index-spaced": (
        ["--set", "agents[ -2 ].model=mf"],
        ["list positions count from 0 (no negative positions"],
    ),
    "no-equals": (["--set", "users"], ["--set 'users': expected path.to.field=value"]),
    "fails-validation-list-item": (
        ["--set", "agents.1.signal=click"],
        ["agents[1].signal: ", "'clicks', 'impressions' or 'engagement'"],
    ),
    "unknown-model": (
        ["--set", "agents[0].model=popularty"],
        ["agents[0].model: unknown agents model 'popularty'.", "Did you mean 'popularity'?"],
    ),
    "param-of-paramless-agent": (
        ["--set", "agents[0].factors=3"],
        ["agents[0].factors: unknown field 'factors'.", "takes no parameters"],
    ),
    "value-not-yaml": (
        ["--set", "users.num_users=[1"],
        ["--set users.num_users: value '[1' is not valid YAML", "quote it"],
    ),
    "index-into-unset-list": (
        ["--set", "content.phases[0].until=3"],
        ["content.phases: not set in the scenario", "set the whole list"],
    ),
    "list-by-name": (["--set", "agents.x=3"], ["agents.x: 'agents' is a list; use an index"]),
    "mapping-by-index": (["--set", "world[0]=3"], ["world[0]: 'world' is a mapping, not a list"]),
    "inside-a-scalar": (["--set", "steps.x=3"], ["steps.x: cannot set inside 'steps'"]),
    "zero-seeds": (["--seeds", "0"], ["seeds: ", "positive number of seeds N", "got 0"]),
}


def _simlab(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "simlab", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _parallel(commands: dict[str, list[str | Path]]) -> dict[str, subprocess.CompletedProcess]:
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        futures = {key: pool.submit(_simlab, *args) for key, args in commands.items()}
        return {key: f.result() for key, f in futures.items()}


@pytest.fixture(scope="module")
def good_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid 5-step scenario file."""
    data = copy.deepcopy(SMALL)
    data["steps"] = 5
    path = tmp_path_factory.mktemp("scenario") / "good.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def results(
    good_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, subprocess.CompletedProcess]:
    """Every error case of this module, run through the CLI once."""
    out = tmp_path_factory.mktemp("runs")
    commands: dict[str, list[str | Path]] = {
        name: ["validate", BAD_DIR / name] for name in BAD_FILES
    }
    for key, (args, _) in BAD_OVERRIDES_SUBPROCESS.items():
        commands[key] = ["validate", good_file, *args]
    commands["missing-file"] = ["validate", BAD_DIR / "no_such_file.yaml"]
    commands["run-bad-file"] = ["run", BAD_DIR / "unknown_agent_model.yaml", "--out", out]
    return _parallel(commands)


def _error_line(proc: subprocess.CompletedProcess) -> str:
    """The single stderr line of a failed command, after checking exit code and shape."""
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert proc.returncode == 2, proc.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def _check(line: str, fragments: list[str]) -> None:
    for fragment in fragments:
        assert re.search(re.escape(fragment), line), f"{fragment!r} not in {line!r}"


def test_bad_files_table_matches_folder():
    """Every bad scenario file has a row in the table, and there are at least 15."""
    on_disk = {p.name for p in BAD_DIR.glob("*.yaml")}
    assert on_disk == set(BAD_FILES)
    assert len(on_disk) >= 15


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_scenario_file(results, name: str):
    """A malformed scenario file gives one error line naming the field and what is allowed."""
    line = _error_line(results[name])
    assert name in line  # the file is named, so the user knows where to look
    _check(line, BAD_FILES[name])


@pytest.mark.parametrize("key", sorted(BAD_OVERRIDES_SUBPROCESS))
def test_bad_override(results, key: str):
    """A bad --set gives one error line naming the overridden path (subprocess)."""
    _check(_error_line(results[key]), BAD_OVERRIDES_SUBPROCESS[key][1])


@pytest.mark.parametrize("key", sorted(BAD_OVERRIDES_IN_PROCESS))
def test_bad_override_in_process(good_file, capsys, key: str):
    """A bad --set or --seeds gives exit code 2 and one error line naming the path."""
    args, fragments = BAD_OVERRIDES_IN_PROCESS[key]
    code = main(["validate", str(good_file), *args])
    captured = capsys.readouterr()
    proc = subprocess.CompletedProcess([], code, captured.out, captured.err)
    _check(_error_line(proc), fragments)


def test_missing_file(results):
    """A scenario path that does not exist is reported as not found."""
    _check(_error_line(results["missing-file"]), ["no_such_file.yaml: scenario file not found"])


def test_directory_instead_of_file(capsys):
    """A directory given as the scenario is reported as such."""
    code = main(["validate", str(BAD_DIR)])
    proc = subprocess.CompletedProcess([], code, "", capsys.readouterr().err)
    _check(_error_line(proc), ["is a directory, expected a scenario YAML file"])


def test_run_rejects_bad_scenario_before_writing(results):
    """``simlab run`` fails the same way and creates no run directory."""
    _check(_error_line(results["run-bad-file"]), ["Did you mean 'popularity'?"])
    out = Path(results["run-bad-file"].args[-1])
    assert list(out.iterdir()) == []
