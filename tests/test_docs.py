"""The documentation site builds strictly, and its generated parts match the code.

``mkdocs build --strict`` fails on a broken link, a broken anchor, a page missing from the
navigation or an API page whose module cannot be read. The architecture page must name every
module, and its import map must be what ``scripts/import_layers.py`` derives from the sources;
the scenario reference page must be what ``scripts/scenario_reference.py`` generates.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
ARCHITECTURE = DOCS / "architecture.md"
SOURCE_FOLDERS = ("simlab", "agents", "environments", "dashboard")


def _script(name: str):
    """Import ``scripts/<name>.py`` as a module."""
    spec = importlib.util.spec_from_file_location(f"_docs_{name}", ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _mkdocs(config: Path, site: Path) -> subprocess.CompletedProcess:
    # no -q: mkdocs counts warnings for --strict only at the log levels it prints
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The whole site, built with ``mkdocs build --strict`` as the README's checks run it."""
    out = tmp_path_factory.mktemp("site")
    done = _mkdocs(ROOT / "mkdocs.yml", out)
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}\n{done.stderr}"
    return out


def test_site_builds_with_every_page(site):
    """Each page of the navigation is built; the API reference has the modules' members."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))

    def pages(nav):
        for entry in nav:
            value = next(iter(entry.values())) if isinstance(entry, dict) else entry
            if isinstance(value, list):
                yield from pages(value)
            else:
                yield value

    listed = list(pages(config["nav"]))
    assert len(listed) >= 25
    for page in listed:
        html = site / page.removesuffix(".md").removesuffix("index") / "index.html"
        if page == "index.md":
            html = site / "index.html"
        assert html.is_file(), f"{page} was not built"
    api = (site / "api" / "agents" / "index.html").read_text(encoding="utf-8")
    for member in ("simlab.agents.RandomAgent", "simlab.agents.Agent.act", "simlab.agents.top_k"):
        assert f'id="{member}"' in api, member
    batch = (site / "api" / "batch" / "index.html").read_text(encoding="utf-8")
    assert 'id="simlab.batch.Observation"' in batch


BROKEN = {
    "a link to a missing page": "[gone](no-such-page.md)",
    "a link to a missing anchor": "[gone](concepts.md#no-such-heading)",
    "a missing image": "![gone](no-such-picture.png)",
}


@pytest.mark.parametrize("link", BROKEN.values(), ids=list(BROKEN))
def test_a_broken_link_fails_the_build(link, tmp_path):
    """The site's settings (strict, link and anchor checks) turn a broken link into a failure."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text(f"# Home\n\nSee {link}.\n", encoding="utf-8")
    (docs / "concepts.md").write_text("# Concepts\n\n## The loop\n", encoding="utf-8")
    config = tmp_path / "mkdocs.yml"
    config.write_text(
        f"INHERIT: {ROOT / 'mkdocs.yml'}\ndocs_dir: {docs}\n"
        "nav: [index.md, concepts.md]\nplugins: [search]\nhooks: []\n",
        encoding="utf-8",
    )
    done = _mkdocs(config, tmp_path / "site")
    assert done.returncode != 0, "a broken link was accepted"
    good = link.split("](")[0] + "](concepts.md#the-loop)"
    (docs / "index.md").write_text(f"# Home\n\nSee {good}.\n", encoding="utf-8")
    if not link.startswith("!"):  # the same page with the link mended builds
        assert _mkdocs(config, tmp_path / "site").returncode == 0


def _hand_written_map() -> str:
    """The architecture page without its generated import map."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    layers = _script("import_layers")
    head, _, rest = text.partition(layers.START)
    return head + rest.partition(layers.END)[2]


def test_every_module_is_on_the_architecture_map():
    """Every module file of the four source folders is named by path on the hand-written map."""
    page = _hand_written_map()
    files = [
        p.relative_to(ROOT).as_posix() for d in SOURCE_FOLDERS for p in (ROOT / d).rglob("*.py")
    ]
    assert len(files) > 100
    missing = sorted(f for f in files if f"`{f}`" not in page)
    assert not missing, f"docs/architecture.md does not place these modules: {missing}"
    named = {m for m in page.split("`") if m.endswith(".py") and "/" in m}
    gone = sorted(
        m for m in named if not (ROOT / m).is_file() and m.split("/")[0] in SOURCE_FOLDERS
    )
    assert not gone, f"docs/architecture.md names modules that do not exist: {gone}"


def test_architecture_import_map_is_current():
    """The page's generated tables are what the sources' imports give today."""
    layers = _script("import_layers")
    text = ARCHITECTURE.read_text(encoding="utf-8")
    block = text.partition(layers.START)[2].partition(layers.END)[0]
    assert block == "\n" + layers.tables(), "run: python scripts/import_layers.py --write"


def test_import_map_sees_imports_of_every_kind(tmp_path):
    """Module-level, first-use and annotation-only imports are told apart; cycles are found."""
    layers = _script("import_layers")
    pkg = tmp_path / "simlab"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from simlab import b\n")
    (pkg / "b.py").write_text("def f():\n    from simlab.c import x\n")
    (pkg / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from simlab.a import y\n"
    )
    (pkg / "d.py").write_text("from . import a\nfrom .b import f\n")
    for folder in ("agents", "environments", "dashboard"):
        (tmp_path / folder).mkdir()
    g = layers.graph(tmp_path)
    assert g["simlab.a"] == {"simlab.b": layers.NOW}
    assert g["simlab.b"] == {"simlab.c": layers.LATER}
    assert g["simlab.c"] == {"simlab.a": layers.TYPES}
    assert g["simlab.d"] == {"simlab.a": layers.NOW, "simlab.b": layers.NOW}
    assert layers.cycles(g, layers.NOW) == []
    assert layers.cycles(g, layers.LATER) == []
    assert layers.cycles(g, layers.TYPES) == [["simlab.a", "simlab.b", "simlab.c"]]
    lv = layers.levels(g)
    assert lv["simlab.c"] == 0 and lv["simlab.b"] == 1 and lv["simlab.a"] == 2
    assert lv["simlab.d"] == 3


def test_scenario_reference_page_is_current_and_checked(tmp_path, monkeypatch):
    """The docs page equals the generated reference, and a stale copy is reported."""
    ref = _script("scenario_reference")
    text = ref.reference()
    for path, (now, new) in ref.generated(text).items():
        assert now == new, f"{path.name} is stale: python scripts/scenario_reference.py --write"
    stale = tmp_path / "scenario-reference.md"
    stale.write_text(ref.docs_page(text).replace("| `steps` |", "| `stepz` |"), encoding="utf-8")
    monkeypatch.setattr(ref, "DOCS_PAGE", stale)
    readme = tmp_path / "README.md"  # a README without the section: only the page is checked
    readme.write_text("# simlab\n", encoding="utf-8")
    monkeypatch.setattr(ref, "README", readme)
    (now, new), *_ = ref.generated(text).values()
    assert now != new
    monkeypatch.setattr(sys, "argv", ["scenario_reference.py", "--check"])
    assert ref.main() == 1
    monkeypatch.setattr(sys, "argv", ["scenario_reference.py", "--write"])
    assert ref.main() == 0 and stale.read_text(encoding="utf-8") == ref.docs_page(text)


def test_wheel_layout_maps_the_source_folders(tmp_path):
    """The API reference reads simlab.agents & co. from links laid out as in a wheel."""
    hooks = _script("docs_hooks")
    out = hooks.wheel_layout(ROOT, tmp_path / "layout")
    package = out / "simlab"
    for name in ("agents", "environments", "dashboard"):
        assert (package / name).resolve() == ROOT / name
    assert (package / "world.py").resolve() == ROOT / "simlab" / "world.py"
    assert not (package / "__pycache__").exists()
