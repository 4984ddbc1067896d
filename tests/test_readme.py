"""The documentation's examples work as written (the README is a front page; see docs/)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from conftest import make_small

from simlab.world import World

README = Path(__file__).resolve().parents[1] / "docs" / "extending.md"


@pytest.fixture
def readme_package(tmp_path, monkeypatch):
    """The "Adding a model" page's `my_package/recs.py` example, importable."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    (code,) = [b for b in blocks if "class FreshnessAgent" in b]
    pkg = tmp_path / "my_package"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "recs.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "my_package.recs:FreshnessAgent"
    for name in [m for m in sys.modules if m.startswith("my_package")]:
        del sys.modules[name]


def test_readme_custom_agent_runs_by_import_path(readme_package):
    """The example agent runs in a world by 'module:Class' and recommends fresh items."""
    sc = make_small(steps=5, agents=[{"model": readme_package, "noise": 0.0}])
    world = World(sc, 0, 0)
    for t in range(5):
        world.step(t)
    catalog = world.content.catalog(False)
    shown = world.last_feedback.slates
    ages = catalog.age[catalog.rows(shown)]
    assert ages.max() == 0, "with no noise the newest items (age 0) fill the slates"
