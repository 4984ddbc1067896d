"""Mutation testing of the core modules with cosmic-ray, one module at a time.

Each module under test (``simlab/metrics/*``, ``simlab/rng.py``, the scenario's rules
(``simlab/rules.py``), the population and the statistics of reports
(``simlab/population.py``, ``intervals.py``, ``paired.py``, ``windows.py``,
``store_summary.py``), ``environments/*``, ``agents/*``) is mutated by
cosmic-ray (one small change at a time: an operator, a constant, a comparison, a removed
statement...) and the tests of that module run against every mutant (mutants inside type
annotations, which are never evaluated, and on lines marked ``# pragma: no mutate``, such as
a fast path that gives the same values as the general one, are left out as equivalent);
a mutant that no test fails "survived", which points at behaviour no test pins. A survivor
listed in ``scripts/mutation_equivalent.py`` (the exact line before and after, with the reason
no test can tell them apart) is counted as equivalent instead. The script prints, per module,
the mutants, how many the tests killed, the listed equivalents and the score
``killed / (mutants run - equivalent)`` (a mutant that times out or breaks the import counts
as killed); a listed mutant that the tests kill is reported, since the list is then wrong.

The work happens in a copy of the working tree under a temporary folder (cosmic-ray edits
files in place), with ``PYTHONPATH`` pointing at the copy, so an interrupted run never
leaves a mutated file behind. It is slow (each mutant is one test run): run it niced, with
one worker, one module at a time, and never two runs at once on a shared machine::

    nice -n 19 python scripts/mutation.py --list
    nice -n 19 python scripts/mutation.py --module simlab/rng.py
    nice -n 19 python scripts/mutation.py --module agents/bandits.py --sample 200
    nice -n 19 python scripts/mutation.py            # every module (hours)

``--sample N`` runs a seeded random sample of N mutants of each module (an estimate of the
score with its binomial standard error; the same seed and source give the same sample);
``--survivors`` prints the diff of every mutant that survived and is not listed. Needs
``pip install cosmic-ray`` (in the ``dev`` extra).
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mutation_equivalent import EQUIVALENT  # scripts/ is on sys.path when run as a script
from mutation_tests import EXTRA_TESTS

ROOT = Path(__file__).resolve().parents[1]
TARGETS = (
    "simlab/metrics",
    "simlab/rng.py",
    "simlab/rng_gamma.py",
    "simlab/population.py",
    "simlab/intervals.py",
    "simlab/paired.py",
    "simlab/windows.py",
    "simlab/store_summary.py",
    "simlab/report_result.py",
    "simlab/export.py",
    "dashboard/runmeta.py",
    "dashboard/data.py",
    "simlab/store_read.py",
    "simlab/rules.py",
    "simlab/keysets.py",
    "simlab/contract.py",
    "simlab/batch.py",
    "simlab/batch_arrays.py",
    "simlab/state.py",
    "simlab/scenario_overrides.py",
    "simlab/yaml_io.py",
    "simlab/runlock.py",
    "environments",
    "agents",
)
EXCLUDED = {
    "environments/recsim_ng": "needs RecSim NG's separate environment (simlab extras recsim-ng)",
}


def modules() -> list[str]:
    """Every module under test, as a path relative to the repository root."""
    out = []
    for target in TARGETS:
        path = ROOT / target
        files = [path] if path.is_file() else sorted(path.rglob("*.py"))
        for f in files:
            rel = f.relative_to(ROOT).as_posix()
            if f.name == "__init__.py" or any(rel.startswith(x) for x in EXCLUDED):
                continue
            out.append(rel)
    return out


def tests_of(module: str) -> list[str]:
    """The test files that pin ``module``: listed ones, else ``tests/<dir>/test_<name>.py``."""
    for key in (module, str(Path(module).parent)):
        if key in EXTRA_TESTS:
            return EXTRA_TESTS[key]
    guess = Path("tests") / Path(module).parent.name / f"test_{Path(module).stem}.py"
    return [guess.as_posix()] if (ROOT / guess).exists() else []


def _copy_tree(dest: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in files:
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


def _config(module: str, tests: list[str], timeout: float) -> str:
    test = f"{sys.executable} -m pytest -x -q -p no:cacheprovider --no-header " + " ".join(tests)
    return (
        "[cosmic-ray]\n"
        f'module-path = "{module}"\n'
        f"timeout = {timeout}\n"
        "excluded-modules = []\n"
        f'test-command = "{test}"\n\n'
        '[cosmic-ray.distributor]\nname = "local"\n'
    )


def _annotation_spans(source: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """``((row, col), (end_row, end_col))`` of every type annotation in ``source``."""
    spans = []
    for node in ast.walk(ast.parse(source)):
        notes = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = node.args
            args = [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]
            notes = [x.annotation for x in args if x is not None and x.annotation is not None]
            notes.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            notes = [node.annotation]
        for n in notes:
            if n is not None:
                spans.append(((n.lineno, n.col_offset), (n.end_lineno, n.end_col_offset)))
    return spans


def _drop_equivalent(db: Path, source: str) -> int:
    """Remove mutants inside type annotations (never evaluated: equivalent); return how many."""
    spans = _annotation_spans(source)
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT job_id, start_pos_row, start_pos_col FROM mutation_specs")
        drop = [
            (job,)
            for job, row, col in rows.fetchall()
            if any(lo <= (row, col) < hi for lo, hi in spans)
        ]
        con.executemany("DELETE FROM mutation_specs WHERE job_id = ?", drop)
        con.executemany("DELETE FROM work_items WHERE job_id = ?", drop)
    return len(drop)


def _sample(db: Path, n: int, seed: int) -> int:
    """Keep a seeded random sample of ``n`` work items in the session; return the total.

    Job ids are random, so the mutants are ordered by what they change (operator,
    occurrence, position) before sampling: the same seed and source give the same sample.
    """
    with sqlite3.connect(db) as con:
        rows = con.execute(
            "SELECT job_id, operator_name, occurrence, start_pos_row, start_pos_col "
            "FROM mutation_specs"
        ).fetchall()
        ids = [r[0] for r in sorted(rows, key=lambda r: r[1:])]
        if n and n < len(ids):
            keep = set(random.Random(seed).sample(ids, n))
            drop = [(i,) for i in ids if i not in keep]
            con.executemany("DELETE FROM mutation_specs WHERE job_id = ?", drop)
            con.executemany("DELETE FROM work_items WHERE job_id = ?", drop)
    return len(ids)


def _outcomes(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT test_outcome, COUNT(*) FROM work_results GROUP BY test_outcome")
        return {str(k).lower(): int(v) for k, v in rows}


def _changed_lines(diff: str) -> tuple[str, str]:
    """The stripped line a mutant removes and the one it adds (``""`` when none)."""
    lines = diff.splitlines()
    old = [x[1:].strip() for x in lines if x.startswith("-") and not x.startswith("---")]
    new = [x[1:].strip() for x in lines if x.startswith("+") and not x.startswith("+++")]
    return (old[0] if old else ""), (new[0] if new else "")


def classify(module: str, db: Path) -> dict[str, list[str]]:
    """Job ids of the survivors, the listed equivalents and the listed mutants that were killed."""
    listed = {(e.before, e.after) for e in EQUIVALENT.get(module, ())}
    out: dict[str, list[str]] = {"survived": [], "equivalent": [], "wrongly_listed": []}
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT job_id, test_outcome, diff FROM work_results").fetchall()
    for job, outcome, diff in rows:
        change = _changed_lines(diff or "")
        if str(outcome).lower() == "survived":
            out["equivalent" if change in listed else "survived"].append(job)
        elif change in listed:
            out["wrongly_listed"].append(" -> ".join(change))
    return out


def _survivors(workdir: Path, db: Path, keep: list[str]) -> str:
    out = subprocess.run(
        ["cr-report", "--show-diff", str(db)], cwd=workdir, capture_output=True, text=True
    ).stdout
    blocks = out.split("[job-id]")
    return "[job-id]".join(b for b in blocks if any(job in b for job in keep))


def run_module(module: str, args: argparse.Namespace) -> dict[str, object]:
    """Mutate one module in a copy of the tree; return its counts and score."""
    tests = tests_of(module)
    if not tests:
        return {"module": module, "error": "no tests mapped"}
    with tempfile.TemporaryDirectory(prefix="simlab-mutation-") as tmp:
        work = Path(tmp)
        _copy_tree(work)
        (work / "cr.toml").write_text(_config(module, tests, args.timeout))
        db = work / "session.sqlite"
        env = {**os.environ, "PYTHONPATH": str(work), "RAY_USAGE_STATS_ENABLED": "0"}
        run = {"cwd": work, "env": env, "check": True}
        start = time.monotonic()
        subprocess.run(["cosmic-ray", "init", "cr.toml", str(db)], **run, capture_output=True)
        equivalent = _drop_equivalent(db, (work / module).read_text(encoding="utf-8"))
        # lines marked `# pragma: no mutate` (a fast path equal to the general one) are skipped
        subprocess.run(["cr-filter-pragma", str(db)], **run, capture_output=True)
        total = _sample(db, args.sample, args.seed)
        subprocess.run(["cosmic-ray", "exec", "cr.toml", str(db)], **run, capture_output=True)
        counts = _outcomes(db)
        kinds = classify(module, db)
        killed = counts.get("killed", 0) + counts.get("incompetent", 0)
        ran = killed + counts.get("survived", 0)
        scored = killed + len(kinds["survived"])
        score = 100.0 * killed / scored if scored else float("nan")
        se = math.sqrt(score * (100 - score) / scored) if scored else float("nan")
        out = {
            "module": module,
            "mutants": total,
            "in_annotations": equivalent,
            "ran": ran,
            "killed": killed,
            "equivalent": len(kinds["equivalent"]),
            "survived": len(kinds["survived"]),
            "wrongly_listed": kinds["wrongly_listed"],
            "score": round(score, 1),
            "se": round(se, 1) if args.sample else 0.0,
            "seconds": round(time.monotonic() - start),
        }
        if args.survivors:
            out["survivor_diffs"] = _survivors(work, db, kinds["survived"])
        return out


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run the modules and print the table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--module", action="append", help="module path (repeatable); default all")
    p.add_argument("--list", action="store_true", help="list modules and their tests")
    p.add_argument("--sample", type=int, default=0, help="random sample of N mutants per module")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per test run")
    p.add_argument("--survivors", action="store_true", help="print the surviving mutants")
    p.add_argument("--json", help="also write the results to this JSON file")
    args = p.parse_args(argv)
    chosen = args.module or modules()
    if args.list:
        for m in chosen:
            print(f"{m}: {' '.join(tests_of(m)) or '(no tests mapped)'}")
        for m, why in EXCLUDED.items():
            print(f"{m}: excluded ({why})")
        return 0
    if shutil.which("cosmic-ray") is None:
        print("error: cosmic-ray is not installed: pip install cosmic-ray", file=sys.stderr)
        return 2
    print(f"load average {os.getloadavg()[0]:.2f}; {len(chosen)} modules", flush=True)
    head = f"{'module':42} {'mutants':>8} {'ran':>6} {'killed':>7} {'equiv.':>7} {'score %':>8}"
    print(head, flush=True)
    results = []
    for m in chosen:
        r = run_module(m, args)
        results.append(r)
        if "error" in r:
            print(f"{m:42} {r['error']}", flush=True)
            continue
        se = f" ±{r['se']}" if args.sample else ""
        print(
            f"{m:42} {r['mutants']:>8} {r['ran']:>6} {r['killed']:>7} {r['equivalent']:>7}"
            f" {r['score']:>8}{se}  ({r['seconds']} s)",
            flush=True,
        )
        for change in r["wrongly_listed"]:
            print(f"  listed as equivalent but killed (remove it from the list): {change}")
        if args.survivors and r.get("survivor_diffs"):
            print(r["survivor_diffs"])
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
