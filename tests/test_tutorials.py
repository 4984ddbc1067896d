"""The tutorials of the documentation site run as written (docs/tutorials/*.md).

Each page's fenced code blocks run in order, in a fresh folder: a ``python`` block whose first
line is ``# file: NAME`` is saved as that file; every other ``python`` block runs in one
namespace shared by the page; each line of a ``bash`` block must be a ``simlab ...`` or
``python -m simlab ...`` command, run in-process through ``simlab.cli.main`` (with the folder
on the import path, as ``python -m`` puts it) and expected to exit 0.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest

from simlab.cli import main as simlab_main

TUTORIALS = Path(__file__).resolve().parents[1] / "docs" / "tutorials"
BLOCK = re.compile(r"^```(python|bash)\n(.*?)^```", re.S | re.M)
FILE = re.compile(r"# file: (\S+)\n")


def blocks(text: str) -> list[tuple[str, str]]:
    """The page's ``(language, code)`` blocks, in order."""
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(text)]


def simlab_commands(code: str) -> list[list[str]]:
    """The argument lists of a bash block's ``simlab`` commands; anything else is an error."""
    out = []
    for line in code.splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        if words[0] == "simlab":
            out.append(words[1:])
        elif words[:3] == ["python", "-m", "simlab"]:
            out.append(words[3:])
        else:
            raise ValueError(f"a tutorial's bash line must run simlab: {line!r}")
    return out


def run_page(text: str, folder: Path, name: str) -> None:
    """Run every block of a tutorial page in ``folder`` (the current directory)."""
    namespace: dict = {"__name__": f"tutorial_{name}"}
    for i, (lang, code) in enumerate(blocks(text)):
        where = f"{name}, block {i + 1} ({lang})"
        if lang == "python" and (m := FILE.match(code)):
            (folder / m.group(1)).write_text(code, encoding="utf-8")
        elif lang == "python":
            exec(compile(code, where, "exec"), namespace)  # noqa: S102 - the page's own code
        else:
            for args in simlab_commands(code):
                rc = simlab_main(args)
                assert rc == 0, f"{where}: simlab {shlex.join(args)} exited {rc}"


@pytest.fixture
def tutorial_folder(tmp_path, monkeypatch):
    """An empty current directory on the import path; the modules it defines are dropped."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for mod in set(sys.modules) - before:
        if getattr(sys.modules[mod], "__file__", None) and str(tmp_path) in (
            sys.modules[mod].__file__ or ""
        ):
            del sys.modules[mod]


PAGES = sorted(TUTORIALS.glob("*.md"))


def test_the_three_tutorials_exist():
    """The issue's three tutorials are pages, each with code to run."""
    names = {p.stem for p in PAGES}
    assert {"echo-chamber", "custom-agent", "ppo-slaterec"} <= names
    for page in PAGES:
        assert blocks(page.read_text(encoding="utf-8")), f"{page.name} has no code block"


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_tutorial_runs(page, tutorial_folder):
    """Every block of the page runs, in order, without an error."""
    run_page(page.read_text(encoding="utf-8"), tutorial_folder, page.stem)


BAD_PAGES = {
    "python raises": "```python\nx = 1\n```\n\n```python\nassert x == 2, 'x is 1'\n```\n",
    "unknown scenario": "```bash\nsimlab validate missing.yaml\n```\n",
    "bad flag value": "```bash\nsimlab run nowhere.yaml --backend moon\n```\n",
    "a bash line that is not simlab": "```bash\nrm -rf runs\n```\n",
    "a file block then a failing import": (
        "```python\n# file: mod_a.py\nVALUE = 1\n```\n\n```python\nfrom mod_a import OTHER\n```\n"
    ),
}


@pytest.mark.parametrize("text", BAD_PAGES.values(), ids=list(BAD_PAGES))
def test_a_failing_block_fails_the_page(text, tutorial_folder):
    """The runner is not vacuous: a block that fails (or cannot be run) fails the page."""
    with pytest.raises((AssertionError, ValueError, ImportError, SystemExit)):
        run_page(text, tutorial_folder, "bad")


def test_file_blocks_are_saved_not_run(tutorial_folder):
    """A ``# file:`` block becomes an importable module; the blocks after it can use it."""
    run_page(
        "```python\n# file: mod_b.py\nVALUE = 41\n```\n\n"
        "```python\nimport mod_b\nassert mod_b.VALUE + 1 == 42\n```\n",
        tutorial_folder,
        "ok",
    )
    assert (tutorial_folder / "mod_b.py").read_text().startswith("# file: mod_b.py")
