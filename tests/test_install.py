"""The README's two commands: its install command covers every import the test command needs.

A newcomer runs exactly the README's "Two commands" section; CI (`.ci/run`) runs the same two
commands plus only what a fresh machine lacks outside pip (Debian's chromium, RecSim NG's separate
environment). These tests read the README, `pyproject.toml` and the sources themselves, so a new
import in a test or a module without its requirement in the installed extras fails here.
"""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
# what the test command imports: the suite, the packages it tests, and the scripts it runs
SCANNED = ("tests", "simlab", "agents", "environments", "dashboard", "scripts")
# modules that run only inside a separate environment made by `simlab extras NAME`, never in the
# test process (the RecSim NG worker); the test checks they are imported nowhere else
SEPARATE_ENVIRONMENTS = {
    "recsim_ng": "environments/recsim_ng",
    "tensorflow": "environments/recsim_ng",
    "tensorflow_probability": "environments/recsim_ng",
    "edward2": "environments/recsim_ng",
    "gym": "environments/recsim_ng",
}


def _two_commands() -> list[str]:
    """The shell lines of the README's "Two commands" section, in order."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Two commands", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    return [line.strip() for b in blocks for line in b.splitlines() if line.strip()]


def _readme_extras() -> set[str]:
    (install,) = [c for c in _two_commands() if "pip install -e" in c]
    (extras,) = re.findall(r'pip install -e "\.\[([^\]]*)\]"', install)
    return {x.strip() for x in extras.split(",")}


def _project_requirements(extras: set[str]) -> list[Requirement]:
    """The project's requirements with `extras` on, from pyproject.toml (`simlab[...]` expanded)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    optional = project["optional-dependencies"]
    unknown = extras - set(optional)
    assert not unknown, f"README installs extras pyproject.toml does not define: {sorted(unknown)}"
    reqs, todo, seen = [Requirement(r) for r in project["dependencies"]], list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for line in optional[extra]:
            req = Requirement(line)
            if canonicalize_name(req.name) == "simlab":
                todo.extend(req.extras)
            else:
                reqs.append(req)
    return reqs


def _closure(reqs: list[Requirement]) -> set[str]:
    """Every installed distribution that `reqs` pull in, following installed metadata."""
    out: set[str] = set()
    todo = [(r, frozenset(r.extras)) for r in reqs]
    while todo:
        req, extras = todo.pop()
        name = canonicalize_name(req.name)
        key = (name, extras)
        if key in out:
            continue
        out.add(key)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # the "imports are installed" test reports it
        for line in dist.requires or []:
            sub = Requirement(line)
            envs = [{"extra": e} for e in extras] or [{"extra": ""}]
            if sub.marker is None or any(sub.marker.evaluate(env) for env in envs):
                todo.append((sub, frozenset(sub.extras)))
    return {name for name, _ in out}


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level module name -> the files (relative paths) that import it, outside the stdlib."""
    local = {p.stem for d in SCANNED for p in (ROOT / d).rglob("*.py")}
    local |= {p.name for d in SCANNED for p in (ROOT / d).rglob("*") if p.is_dir()}
    found: dict[str, set[str]] = {}
    for folder in SCANNED:
        for path in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top in sys.stdlib_module_names or top in local or top == "simlab":
                        continue
                    found.setdefault(top, set()).add(path.relative_to(ROOT).as_posix())
    return found


def test_ci_runs_exactly_the_readme_commands():
    """`.ci/run` runs each of the README's two commands verbatim, in the README's order."""
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    commands = _two_commands()
    assert len(commands) == 2, commands
    positions = [ci.index(c) if c in ci else -1 for c in commands]
    assert -1 not in positions, f".ci/run lacks the README command(s): {commands}"
    assert positions == sorted(positions)
    installs = [line for line in ci if "pip install" in line and not line.startswith("#")]
    assert installs == [commands[0]], (
        "CI must install with the README's command only (the rest of .ci/run installs what pip "
        f"cannot: the browser, RecSim NG's environment); found {installs}"
    )


def test_readme_extras_cover_every_import_of_the_suite():
    """Each third-party module the test command imports comes from a distribution installed."""
    provided = _closure(_project_requirements(_readme_extras()))
    by_module = metadata.packages_distributions()
    missing = []
    for module, files in sorted(_third_party_imports().items()):
        if module in SEPARATE_ENVIRONMENTS:
            continue
        dists = {canonicalize_name(d) for d in by_module.get(module, [])}
        if not dists & provided:
            where = ", ".join(sorted(files)[:3])
            source = sorted(dists) or "no installed distribution"
            missing.append(f"{module} (from {source}; {where})")
    assert not missing, "imports not covered by the README's install command: " + "; ".join(missing)


def test_tools_the_test_command_runs_are_installed_by_the_readme():
    """The test command's `ruff`, `pytest`, `pytest-xdist` and the wheel test's `build`."""
    provided = _closure(_project_requirements(_readme_extras()))
    assert {"ruff", "pytest", "pytest-xdist", "build"} <= provided


def test_separate_environment_modules_stay_in_their_folder():
    """Modules of a `simlab extras` environment are imported only by the code that runs in it."""
    for module, files in _third_party_imports().items():
        if module in SEPARATE_ENVIRONMENTS:
            outside = [f for f in files if not f.startswith(SEPARATE_ENVIRONMENTS[module])]
            assert not outside, f"{module} imported outside its environment: {outside}"


@pytest.mark.parametrize("extras", [{"dev"}, {"dev", "rl"}])
def test_a_smaller_install_is_detected(extras):
    """The check is not vacuous: the README's old `.[dev,rl]` misses streamlit and playwright."""
    provided = _closure(_project_requirements(extras))
    needed = {canonicalize_name(d) for d in metadata.packages_distributions()["streamlit"]}
    assert not needed & provided
