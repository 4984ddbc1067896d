"""scripts/mutation.py's bookkeeping: the equivalent-mutant list, the classification, the sample."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import mutation  # noqa: E402
from mutation_equivalent import EQUIVALENT, Equivalent  # noqa: E402

ENTRIES = [(module, e) for module, entries in EQUIVALENT.items() for e in entries]


@pytest.mark.parametrize(("module", "entry"), ENTRIES, ids=[f"{m}:{e.before}" for m, e in ENTRIES])
def test_every_listed_equivalent_names_a_line_of_its_module(module, entry):
    """A stale entry (its line edited away) fails here instead of silently matching nothing."""
    lines = {x.strip() for x in (ROOT / module).read_text(encoding="utf-8").splitlines()}
    assert module in mutation.modules()
    assert entry.before in lines, f"{module} no longer has the line {entry.before!r}"
    assert entry.after != entry.before
    assert len(entry.why) > 20


def test_the_list_holds_no_duplicates():
    """One entry per mutant."""
    for module, entries in EQUIVALENT.items():
        keys = [(e.before, e.after) for e in entries]
        assert len(keys) == len(set(keys)), module


def _diff(before: str, after: str) -> str:
    return (
        "--- mutation diff ---\n--- a/m.py\n+++ b/m.py\n@@ -1,3 +1,3 @@\n"
        f" x = 1\n-    {before}\n+    {after}\n y = 2\n"
    )


def _db(tmp_path: Path, rows: list[tuple[str, str, str]]) -> Path:
    db = tmp_path / "session.sqlite"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE work_results (job_id TEXT, test_outcome TEXT, diff TEXT)")
        con.executemany("INSERT INTO work_results VALUES (?, ?, ?)", rows)
    return db


def test_classify_separates_survivors_listed_equivalents_and_wrong_entries(tmp_path, monkeypatch):
    """Only a surviving mutant of the listed module with the listed change is equivalent."""
    listed = [Equivalent("a = b == c", "a = b is c", "a reason long enough to explain it")]
    listed.append(Equivalent("if n > 0:", "if n != 0:", "n is a size, never negative here"))
    monkeypatch.setattr(mutation, "EQUIVALENT", {"m.py": listed})
    db = _db(
        tmp_path,
        [
            ("j1", "SURVIVED", _diff("a = b == c", "a = b is c")),
            ("j2", "SURVIVED", _diff("a = b == c", "a = b != c")),
            ("j3", "KILLED", _diff("if n > 0:", "if n != 0:")),
            ("j4", "KILLED", _diff("x = 1", "x = 2")),
            ("j5", "SURVIVED", _diff("if n > 0:", "if n >= 0:")),
        ],
    )
    kinds = mutation.classify("m.py", db)
    assert kinds["equivalent"] == ["j1"]
    assert sorted(kinds["survived"]) == ["j2", "j5"]
    assert kinds["wrongly_listed"] == ["if n > 0: -> if n != 0:"]
    # another module's list does not apply
    assert mutation.classify("other.py", db)["equivalent"] == []


@pytest.mark.parametrize(
    ("diff", "expected"),
    [
        (_diff("a", "b"), ("a", "b")),
        ("--- a/m.py\n+++ b/m.py\n-    del x\n", ("del x", "")),
        ("", ("", "")),
    ],
)
def test_changed_lines_reads_the_removed_and_added_line(diff, expected):
    """The key of a mutant is its removed and added line, stripped."""
    assert mutation._changed_lines(diff) == expected


def _specs(tmp_path: Path, name: str, order: list[int]) -> Path:
    db = tmp_path / name
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE work_items (job_id TEXT)")
        con.execute(
            "CREATE TABLE mutation_specs (job_id TEXT, operator_name TEXT, occurrence INT, "
            "start_pos_row INT, start_pos_col INT)"
        )
        for i in order:  # random job ids, inserted in a different order per session
            job = f"{name}-{i}"
            con.execute("INSERT INTO work_items VALUES (?)", (job,))
            spec = (job, f"op{i % 3}", i, i, 0)
            con.execute("INSERT INTO mutation_specs VALUES (?, ?, ?, ?, ?)", spec)
    return db


def _kept(db: Path) -> set[int]:
    with sqlite3.connect(db) as con:
        return {int(r[0].rsplit("-", 1)[1]) for r in con.execute("SELECT job_id FROM work_items")}


def test_the_sample_depends_on_the_mutants_not_on_their_job_ids(tmp_path):
    """Same seed and mutants, job ids inserted in another order: the same sample."""
    a = _specs(tmp_path, "a.sqlite", list(range(50)))
    b = _specs(tmp_path, "b.sqlite", list(reversed(range(50))))
    assert mutation._sample(a, 10, seed=3) == 50
    assert mutation._sample(b, 10, seed=3) == 50
    assert _kept(a) == _kept(b)
    assert len(_kept(a)) == 10
    c = _specs(tmp_path, "c.sqlite", list(range(50)))
    mutation._sample(c, 10, seed=4)
    assert _kept(c) != _kept(a)
