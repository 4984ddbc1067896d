"""Packaging: the simlab namespace maps agents/ and environments/, in a wheel and on Ray."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import numpy as np
from conftest import make_small

ROOT = Path(__file__).resolve().parents[1]
SOURCES = {
    "simlab": ROOT / "simlab",
    "simlab/agents": ROOT / "agents",
    "simlab/environments": ROOT / "environments",
    "simlab/dashboard": ROOT / "dashboard",
}


def _expected_modules() -> set[str]:
    out = set()
    for prefix, folder in SOURCES.items():
        for f in folder.rglob("*.py"):
            rel = f.relative_to(folder)
            if rel.parts[0] in ("agents", "environments", "dashboard") and prefix == "simlab":
                continue  # not a real subfolder of simlab/
            out.add(f"{prefix}/{rel.as_posix()}")
    return out


def test_imports_use_the_simlab_namespace():
    """simlab.agents and simlab.environments resolve to the top-level folders."""
    import simlab.agents
    import simlab.environments

    assert Path(simlab.agents.__file__).parent == ROOT / "agents"
    assert Path(simlab.environments.__file__).parent == ROOT / "environments"
    assert "agents" not in sys.modules or not hasattr(sys.modules["agents"], "RandomAgent")


def test_a_source_checkout_imports_without_an_install():
    """From the checkout alone on sys.path, simlab finds agents/ and environments/ beside it.

    (A Ray worker may import simlab that way: Ray puts the driver's directory on its path.)
    """
    code = (
        "import sys;"
        "sys.meta_path = [f for f in sys.meta_path if 'editable' not in repr(f).lower()];"
        f"sys.path.insert(0, {str(ROOT)!r});"
        "import simlab.environments.users as u, simlab.agents.baselines as b;"
        "print(u.__file__); print(b.__file__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    users, baselines = out.stdout.split()
    assert Path(users) == ROOT / "environments" / "users.py"
    assert Path(baselines) == ROOT / "agents" / "baselines.py"


def test_wheel_contains_every_module_and_imports(tmp_path):
    """A built wheel holds every source module under simlab/ and imports from a venv."""
    src = tmp_path / "src"
    for name in ("pyproject.toml", "README.md", "simlab", "agents", "environments", "dashboard"):
        p = ROOT / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy(p, src / name)
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "-o", str(dist), str(src)],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("simlab-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = _expected_modules() - names
    assert not missing, f"modules missing from the wheel: {sorted(missing)}"

    env = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=True).create(env)
    py = env / "bin" / "python"
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
    )
    code = (
        "import simlab, simlab.agents.baselines as b, simlab.environments.users as u;"
        "print(simlab.__file__); print(b.PopularityAgent.__module__)"
    )
    out = subprocess.run(
        [str(py), "-c", code], check=True, capture_output=True, text=True, cwd=tmp_path
    ).stdout.split()
    assert out[0].startswith(str(env)), out
    assert out[1] == "simlab.agents.baselines"


def test_ray_workers_unpickle_simlab_classes(ray_local):
    """A trained agent and a scenario travel to a Ray worker and act identically there."""
    from simlab.world import World

    ray = ray_local
    sc = make_small(steps=6)
    world = World(sc, 1, 0)  # popularity
    for t in range(6):
        world.step(t)
    world.content.step(6, None)
    catalog = world.content.catalog(False)
    active = world.users.arrivals(6)
    obs = world.platform.observe(6, active, catalog, world.users.observable_features(active))

    @ray.remote
    def act_remote(agent, obs, scenario):
        from simlab.scenario import Scenario

        assert isinstance(scenario, Scenario)
        return type(agent).__module__, agent.act(obs).item_ids

    module, remote_slates = ray.get(act_remote.remote(world.agent, obs, sc))
    assert module == "simlab.agents.baselines"
    np.testing.assert_array_equal(remote_slates, world.agent.act(obs).item_ids)
