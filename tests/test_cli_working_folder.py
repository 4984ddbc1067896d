"""`model: my_module:MyAgent` imports `my_module` from the working folder (the `simlab` script).

``python -m simlab`` has the working folder on ``sys.path``; the installed ``simlab`` script
used to have only its own folder there, so a project's own agent next to its scenario could
not be imported. The folder is appended (it never shadows an installed package) and, on Ray,
reaches the workers with the driver's other code folders.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import SMALL

from simlab import cli

AGENT = (
    "from simlab.agents.baselines import PopularityAgent\n\n\n"
    "class LocalAgent(PopularityAgent):\n"
    "    '''Popularity, defined in the working folder.'''\n"
)


def _script() -> str:
    found = shutil.which("simlab", path=str(Path(sys.executable).parent)) or shutil.which("simlab")
    assert found, "the simlab script is installed with the package"
    return found


def _folder(tmp_path: Path, **scenario) -> Path:
    (tmp_path / "local_agents.py").write_text(AGENT)
    data = copy.deepcopy(SMALL)
    data.update(steps=3, agents=[{"model": "local_agents:LocalAgent"}], **scenario)
    data["users"] = dict(data["users"], num_users=60)
    (tmp_path / "sc.yaml").write_text(yaml.safe_dump(data))
    return tmp_path


def _simlab(folder: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["RAY_AUTH_MODE"] = "disabled"
    return subprocess.run(
        [_script(), *args], cwd=folder, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("shadow", [None, "yaml.py", "numpy.py", "json"])
def test_the_script_imports_a_module_of_the_working_folder(tmp_path, shadow):
    """``simlab validate`` finds it; a file named like an installed package does not shadow it."""
    folder = _folder(tmp_path)
    if shadow == "json":
        (folder / "json").mkdir()
        (folder / "json" / "__init__.py").write_text("raise ImportError('shadowed')\n")
    elif shadow:
        (folder / shadow).write_text("raise ImportError('shadowed')\n")
    proc = _simlab(folder, "validate", "sc.yaml")
    assert proc.returncode == 0, proc.stderr
    assert "valid: sc.yaml (1 trials x 3 steps)" in proc.stdout


def test_the_script_runs_a_working_folder_agent_on_ray(tmp_path):
    """On Ray the module imports in the trial and shard actors too."""
    folder = _folder(tmp_path)
    proc = _simlab(folder, "run", "sc.yaml", "--backend", "ray", "--out", "runs", "--run-id", "r")
    assert proc.returncode == 0, proc.stderr[-2000:]
    from simlab.store import open_run

    store = open_run(folder / "runs" / "r")
    assert store.status == "completed" and len(store.read_metrics()) == 3
    assert store.manifest["trials"][0]["placement"]["serving"] == "replicas"


def test_the_folder_is_appended_once(tmp_path, monkeypatch):
    """Appended after the installed packages, not twice, and not when already there."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", ["/nowhere", *sys.path])
    start = list(sys.path)
    cli._working_folder_importable()
    assert sys.path == [*start, str(tmp_path)]
    cli._working_folder_importable()
    assert sys.path == [*start, str(tmp_path)]
    monkeypatch.setattr(sys, "path", ["", *start])  # `python -c`: "" is the working folder
    cli._working_folder_importable()
    assert sys.path == ["", *start]


def test_a_removed_working_folder_is_left_alone(tmp_path, monkeypatch):
    """A working folder deleted under the process: nothing appended, no error."""
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    monkeypatch.setattr(sys, "path", list(sys.path))
    start = list(sys.path)
    cli._working_folder_importable()
    assert sys.path == start
