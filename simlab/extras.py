"""Separate Python environments for peer simulators and libraries that cannot live beside simlab's.

RecSim NG needs an old TensorFlow stack (TF 2.15, numpy 1.26, scipy 1.10, gym 0.23) that
cannot live beside simlab's own dependencies, so it gets its own virtual environment;
simlab talks to it through a worker process that exchanges plain numpy arrays
(:mod:`simlab.environments.recsim_ng`). T-RECS gets one too, for the peer benchmarks.

Two more see simlab's own packages (``--system-site-packages``) and add or replace a few:
``gym-latest`` holds the newest Gymnasium 1.x (``ray[rllib]`` pins an older one in the main
environment) to run the Gymnasium env tests against, and ``obp`` holds Open Bandit Pipeline
(whose pins, numpy 1.23 and Python < 3.11, cannot be installed beside simlab; its code runs
on simlab's numpy and pandas) to load ``simlab export --format obp`` datasets.

``simlab extras recsim-ng`` (or :func:`ensure`) creates an environment once; it is reused
while its pinned requirements are unchanged. The environments live under
``$SIMLAB_ENVS_DIR`` (default ``~/.cache/simlab/envs``).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
import time
import venv
from collections.abc import Callable
from pathlib import Path

from simlab.errors import DependencyNotInstalled, did_you_mean

__all__ = [
    "EXTRAS",
    "NO_DEPS",
    "SYSTEM_SITE",
    "envs_dir",
    "env_dir",
    "python_of",
    "is_ready",
    "ensure",
    "require",
]

#: name -> pinned requirements. The RecSim NG pins are the set whose own test suite passes
#: (a plain ``pip install recsim-ng`` imports with errors: TFP 0.25 wants tf_keras, edward2
#: 0.0.2 breaks on scipy >= 1.11, gym >= 0.25 trips a Box shape assertion).
EXTRAS: dict[str, tuple[str, ...]] = {
    "recsim-ng": (
        "recsim-ng==0.1.2",
        "tensorflow==2.15.1",
        "tensorflow-probability==0.23.0",
        "edward2==0.0.2",
        "scipy==1.10.1",
        "numpy==1.26.4",
        "gym==0.23.1",
        "jax==0.4.23",
        "jaxlib==0.4.23",
    ),
    # trecs 0.2.1 pins pandas==1.0.5 (no wheel for Python 3.11; its sdist does not build):
    # install its dependencies at versions that work first, then trecs with --no-deps.
    "trecs": (
        "numpy==1.26.4",
        "scipy==1.11.4",
        "networkx==3.2.1",
        "tqdm==4.70.1",
        "pandas==2.1.4",
        "lenskit==0.14.4",
    ),
}

EXTRAS["gym-latest"] = ("gymnasium==1.4.0",)
# obp's own dependencies that simlab lacks; obp itself comes after, without its strict pins
EXTRAS["obp"] = ("scikit-learn==1.9.1", "seaborn==0.13.2", "tqdm==4.70.1")

#: name -> packages installed after :data:`EXTRAS` ``[name]`` with ``pip install --no-deps``
#: (and ``--ignore-requires-python`` for obp, which declares Python < 3.11 only).
NO_DEPS: dict[str, tuple[str, ...]] = {
    "trecs": ("trecs==0.2.1",),
    "obp": ("--ignore-requires-python", "obp==0.5.7"),
}

#: extras that see the main environment's packages (``--system-site-packages``).
SYSTEM_SITE = frozenset({"gym-latest", "obp"})

_MARKER = "simlab-extra.json"


def envs_dir() -> Path:
    """Folder holding the extra environments (``$SIMLAB_ENVS_DIR`` or ``~/.cache/simlab/envs``)."""
    root = os.environ.get("SIMLAB_ENVS_DIR")
    return Path(root) if root else Path.home() / ".cache" / "simlab" / "envs"


def _check_name(name: str) -> None:
    if name not in EXTRAS:
        raise DependencyNotInstalled(
            f"Unknown extra environment '{name}'; expected one of {sorted(EXTRAS)}."
            + did_you_mean(name, EXTRAS)
        )


def env_dir(name: str) -> Path:
    """The virtual environment folder of extra ``name``."""
    _check_name(name)
    return envs_dir() / name


def python_of(name: str) -> Path:
    """The Python interpreter of extra ``name`` (it may not exist yet: see :func:`is_ready`)."""
    sub = "Scripts/python.exe" if sys.platform == "win32" else "bin/python"
    return env_dir(name) / sub


def _fingerprint(name: str) -> str:
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    spec = "\n".join((version, *EXTRAS[name], "--no-deps", *NO_DEPS.get(name, ())))
    if name in SYSTEM_SITE:
        spec += "\n--system-site-packages"
    return hashlib.sha256(spec.encode()).hexdigest()[:16]


def is_ready(name: str) -> bool:
    """Whether extra ``name`` was created with the current pins and its Python exists."""
    marker = env_dir(name) / _MARKER
    if not python_of(name).exists() or not marker.exists():
        return False
    try:
        return json.loads(marker.read_text()).get("fingerprint") == _fingerprint(name)
    except (OSError, ValueError):
        return False


def ensure(name: str, *, force: bool = False, log: Callable[[str], None] | None = print) -> Path:
    """Create extra ``name`` unless it is ready; returns its Python interpreter.

    Args:
        name: one of :data:`EXTRAS`.
        force: recreate even when ready.
        log: where progress lines go (``None``: silent).

    Raises:
        DependencyNotInstalled: the name is unknown or ``pip`` failed (its output's tail
            is in the message).
    """
    say = log or (lambda _line: None)
    target = env_dir(name)
    if is_ready(name) and not force:
        say(f"{name}: ready at {target}")
        return python_of(name)
    target.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one creator at a time; the others then reuse it
        if is_ready(name) and not force:
            say(f"{name}: ready at {target}")
            return python_of(name)
        say(f"{name}: creating {target} ({len(EXTRAS[name])} pinned packages; may take minutes)")
        start = time.perf_counter()
        (target / _MARKER).unlink(missing_ok=True)
        if force or not python_of(name).exists():
            venv.EnvBuilder(
                with_pip=True,
                clear=force,
                symlinks=os.name != "nt",
                system_site_packages=name in SYSTEM_SITE,
            ).create(target)
        _pip(name, list(EXTRAS[name]))
        if NO_DEPS.get(name):
            _pip(name, ["--no-deps", *NO_DEPS[name]])
        (target / _MARKER).write_text(
            json.dumps({"fingerprint": _fingerprint(name), "requirements": list(EXTRAS[name])})
        )
    say(f"{name}: ready at {target} ({time.perf_counter() - start:.0f} s)")
    return python_of(name)


def _pip(name: str, args: list[str]) -> None:
    """``pip install -q ARGS`` in extra ``name``; a clear error with pip's output tail."""
    cmd = [str(python_of(name)), "-m", "pip", "install", "-q", *args]
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise DependencyNotInstalled(
            f"Creating the '{name}' environment failed (`{' '.join(cmd)}`):\n{tail}"
        )


def require(name: str) -> Path:
    """The Python of extra ``name``; a clear error naming the command when it is missing."""
    if not is_ready(name):
        raise DependencyNotInstalled(
            f"The '{name}' environment is not installed at {env_dir(name)}; "
            f"create it with `simlab extras {name}` (set SIMLAB_ENVS_DIR to put it elsewhere)."
        )
    return python_of(name)
