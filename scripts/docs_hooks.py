"""MkDocs hooks of the documentation site (``hooks:`` in ``mkdocs.yml``).

The API reference documents ``simlab.agents``, ``simlab.environments`` and ``simlab.dashboard``,
which live in the top-level folders ``agents/``, ``environments/`` and ``dashboard/`` of a
source checkout (``pyproject.toml`` maps them into the package). mkdocstrings reads code
statically, so before the build this hook lays the package out as an installed wheel has it —
``build/docs-api/simlab/`` with links to ``simlab/*`` and to those three folders — and the
python handler's ``paths`` in ``mkdocs.yml`` points there. Nothing is imported.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from mkdocs.plugins import event_priority

ROOT = Path(__file__).resolve().parents[1]
LAYOUT = ROOT / "build" / "docs-api"
MAPPED = ("agents", "environments", "dashboard", "scenarios")  # package-dir of pyproject.toml


def wheel_layout(root: Path = ROOT, out: Path = LAYOUT) -> Path:
    """Build ``out/simlab`` as links to ``root/simlab/*`` plus the mapped folders.

    Returns:
        The folder to put on the handler's search path (``out``).
    """
    package = out / "simlab"
    if out.exists():
        shutil.rmtree(out)
    package.mkdir(parents=True)
    for entry in sorted((root / "simlab").iterdir()):
        if entry.name != "__pycache__":
            (package / entry.name).symlink_to(entry)
    for name in MAPPED:
        (package / name).symlink_to(root / name, target_is_directory=True)
    return out


@event_priority(100)  # before mkdocstrings creates its handlers
def on_config(config):
    """Lay out the package before mkdocstrings reads it."""
    wheel_layout()
    return config
