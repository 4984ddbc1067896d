"""Agent labels (``agents[i].name``) label tables, plots and columns: what they may hold.

Control characters (a new line would split a table row), invisible format characters, spaces
at either end and labels over 100 characters are refused at validate time, naming the field;
printable labels in any script, with punctuation such as ``|`` or ``/``, are kept as written,
and a ``|`` is escaped in ``report.md``'s tables.
"""

from __future__ import annotations

import copy
import re

import pytest
from conftest import SMALL

from simlab.errors import ScenarioError
from simlab.scenario import parse_scenario

REFUSED = {
    "new line": "mf\nv2",
    "carriage return": "mf\rv2",
    "tab": "mf\tv2",
    "NUL": "mf\x00",
    "escape": "\x1b[31mred",
    "DEL": "mf\x7f",
    "C1 next line": "mf\x85v2",
    "line separator": "mf\u2028v2",
    "zero-width space": "m\u200bf",
    "byte-order mark": "\ufeffmf",
    "leading space": " mf",
    "trailing space": "mf ",
    "no-break space at the end": "mf\u00a0",
    "only spaces": "   ",
    "101 characters": "x" * 101,
    "a very long label": "label-" * 200,
}

ACCEPTED = {
    "plain": "mf",
    "spaces inside": "mf (debiased, v2)",
    "a pipe": "pop|ularity",
    "a slash": "two-tower/isotropy",
    "dots": "..",
    "Japanese": "推薦システム",
    "accents": "modèle à base",
    "emoji": "mf 🚀",
    "100 characters": "x" * 100,
}


def _parse(name: str, index: int = 1):
    data = copy.deepcopy(SMALL)
    data["agents"] = [{"model": "popularity", "name": "first"}, {"model": "random"}]
    data["agents"][index]["name"] = name
    return parse_scenario(data)


@pytest.mark.parametrize("kind", sorted(REFUSED))
@pytest.mark.parametrize("index", [0, 1])
def test_labels_that_would_garble_tables_are_refused(kind, index):
    """One message naming the agent's field, what is allowed and the value (escaped)."""
    with pytest.raises(ScenarioError) as info:
        _parse(REFUSED[kind], index)
    message = str(info.value)
    assert message.startswith(f"agents[{index}].name: must be at most 100 printable characters")
    assert "control characters" in message and "spaces at either end" in message
    assert len(message.splitlines()) == 1, message  # the value is shown escaped


@pytest.mark.parametrize("kind", sorted(ACCEPTED))
def test_printable_labels_are_kept_as_written(kind):
    """Any script and punctuation; exactly 100 characters is the longest."""
    assert _parse(ACCEPTED[kind]).agent_labels() == ["first", ACCEPTED[kind]]


def test_an_empty_label_falls_back_to_the_model():
    """``name: ""`` (or no name) labels the agent by its model, as before."""
    assert _parse("").agent_labels() == ["first", "random"]


def test_a_pipe_in_a_label_keeps_report_tables_whole(tmp_path):
    """Every row of every table in report.md has as many cells as its header."""
    from simlab.report import build_report
    from simlab.runner import run_scenario

    data = copy.deepcopy(SMALL)
    data.update(steps=6, metrics=["engagement", "source"])
    data["content"] = dict(data["content"], phases=[{"aigc_share": 0.3}])
    data["agents"] = [{"model": "random", "name": "a|b"}, {"model": "popularity", "name": "c||"}]
    store = run_scenario(parse_scenario(data), out_dir=tmp_path / "runs")
    md = build_report(store.path, out_dir=tmp_path / "r").markdown.read_text(encoding="utf-8")
    tables = [block for block in md.split("\n\n") if block.startswith("|")]
    assert len(tables) == 3  # the summary, the pooled source bias and its escalation
    for block in tables:
        widths = {len(re.split(r"(?<!\\)\|", row)) for row in block.splitlines()}
        assert len(widths) == 1, block
    assert "| metric | a\\|b | c\\|\\| |" in md
    assert "| a\\|b | steps" in md and "vs a\\|b" in md
