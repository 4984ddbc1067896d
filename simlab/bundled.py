"""Scenario files shipped with simlab: `scenarios/` in a checkout, `simlab.scenarios` installed.

A bundled scenario is named by its path under ``scenarios/`` without ``.yaml``:
``quickstart``, ``recsim_ng``, ``experiments/homogenization``. :func:`scenario_path` turns
a path or such a name into a file, through :mod:`importlib.resources`, so the names work
from a wheel install as well as from the source tree.

>>> "quickstart" in bundled_names()
True
>>> scenario_path("quickstart").name
'quickstart.yaml'
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from simlab.errors import ScenarioError, did_you_mean

__all__ = ["bundled_names", "bundled_root", "scenario_path"]

_PACKAGE = "simlab.scenarios"


def bundled_root() -> Path:
    """The folder of the bundled scenarios (a real folder: wheels install unzipped)."""
    return Path(str(resources.files(_PACKAGE)))


def bundled_names() -> list[str]:
    """Names of the bundled scenarios, sorted (``experiments/...`` included)."""
    root = bundled_root()
    return sorted(p.relative_to(root).with_suffix("").as_posix() for p in root.rglob("*.yaml"))


def scenario_path(scenario: str | Path) -> Path:
    """The YAML file of ``scenario``: an existing path, or the name of a bundled scenario.

    Args:
        scenario: a path to a YAML file, or a bundled name such as ``"quickstart"`` (a
            trailing ``.yaml`` and a leading ``scenarios/`` are accepted).

    Raises:
        ScenarioError: neither a file nor a bundled name; the message lists the names and
            suggests the closest one.
    """
    path = Path(scenario)
    if path.is_file():
        return path
    name = path.as_posix().removesuffix(".yaml").removeprefix("scenarios/")
    candidate = bundled_root() / f"{name}.yaml"
    if candidate.is_file():
        return candidate
    names = bundled_names()
    raise ScenarioError(
        f"scenario: '{scenario}' is neither a scenario file nor a bundled scenario."
        f"{did_you_mean(name, names)} Bundled: {', '.join(names)}"
    )
