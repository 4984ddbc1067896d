"""The env tests again, on the newest Gymnasium 1.x (``ray[rllib]`` pins an older one here).

The ``gym-latest`` environment (``simlab extras gym-latest``) sees this environment's
packages and replaces Gymnasium with the newest 1.x; this test runs the Gymnasium env test
files there in a subprocess. It skips, with the reason, only when that environment is not
installed (CI creates it).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from simlab import extras

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent
FILES = ["test_gym_envs.py", "test_gym_info.py", "test_gym_scenarios.py", "test_sb3.py"]


@pytest.mark.skipif(
    not extras.is_ready("gym-latest"),
    reason="the newest Gymnasium's environment is not installed (simlab extras gym-latest)",
)
def test_env_tests_pass_on_the_newest_gymnasium():
    """The env, info, scenario and SB3 tests pass under the newest Gymnasium 1.x."""
    python = str(extras.python_of("gym-latest"))
    version = subprocess.run(
        [python, "-c", "import gymnasium; print(gymnasium.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert version == extras.EXTRAS["gym-latest"][0].split("==")[1]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *(str(HERE / f) for f in FILES)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )
    tail = (done.stdout + done.stderr)[-3000:]
    assert done.returncode == 0, tail
    assert " passed" in tail and " failed" not in tail
