"""Packaging: simlab maps agents/, environments/ and scenarios/, in a wheel and on Ray.

The wheel test installs the built wheel in a fresh virtual environment and makes every
registered Gymnasium env from its default scenario, which must come from inside the wheel.
"""

from __future__ import annotations

import os
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
    parts = ("pyproject.toml", "README.md", "simlab", "agents", "environments", "dashboard")
    for name in (*parts, "scenarios"):
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
    yamls = {p.relative_to(ROOT).as_posix() for p in (ROOT / "scenarios").rglob("*.yaml")}
    missing = {f"simlab/{y}" for y in yamls} - names
    assert not missing, f"bundled scenarios missing from the wheel: {sorted(missing)}"

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
        "print(simlab.__file__); print(b.PopularityAgent.__module__)\n"
        # every registered env, from its default (bundled) scenario, through gym.make
        "import gymnasium as gym, simlab.environments.gym as g\n"
        "for env_id in g.ENV_IDS:\n"
        "    env = gym.make(env_id, max_steps=2)\n"
        "    env.reset(seed=0)\n"
        "    env.step(env.action_space.sample())\n"
        "    print(env_id, type(env.unwrapped).__module__)\n"
        "from simlab.bundled import scenario_path\n"
        "print(scenario_path('recsim_ng'))"
    )
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the wheel, not a tree
    out = subprocess.run(
        [str(py), "-c", code], check=True, capture_output=True, text=True, cwd=tmp_path, env=clean
    ).stdout.split()
    assert out[0].startswith(str(env)), out
    assert out[1] == "simlab.agents.baselines"
    assert out[2:6] == [
        "simlab/SlateRec-v0",
        "simlab.environments.gym.slate",
        "simlab/Platform-v0",
        "simlab.environments.gym.platform_env",
    ]
    assert out[6].startswith(str(env)) and out[6].endswith("recsim_ng.yaml"), out


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
