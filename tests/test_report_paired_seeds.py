"""Seed counts of paired comparisons when a baseline trial failed or stopped early.

A paired difference exists only for the seeds whose baseline has a row: the report must say
how many seeds each difference rests on (not the agent's own count), warn when that is few,
and read a cumulative difference at the agent's own last step, never an earlier step the
baseline happened to reach (statistics audit B1-B3).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import rewrite_rows

from simlab.report import DERIVED_HOMOGENIZATION, build_report
from simlab.runner import run_scenario
from simlab.scenario import parse_scenario
from simlab.store import read_metrics

H = "echo/homogenization"


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """popularity, random and the oracle; 4 seeds, 10 steps, AIGC phases (pooled windows)."""
    scenario = parse_scenario(
        {
            "name": "paired-seeds",
            "steps": 10,
            "seeds": 4,
            "world": {"dim": 8, "num_topics": 4},
            "users": {"model": "logit", "num_users": 150, "drift_rate": 0.05},
            "content": {
                "model": "creators", "items_per_step": 10, "initial_items": 100,
                "phases": [{"until": 5, "aigc_share": 0.2}, {"aigc_share": 0.6}],
            },
            "platform": {"slate_size": 5, "retrain_every": 2},
            "agents": [{"model": "popularity", "name": "pop"}, {"model": "random"},
                       {"model": "oracle"}],
            "execution": {"backend": "local"},
            "output": {"checkpoint_every": 0},
        }
    )  # fmt: skip
    return run_scenario(scenario, out_dir=tmp_path_factory.mktemp("runs")).path


def _damaged(source, tmp_path, agent: str, seeds: set[int], at: int):
    """A copy whose ``agent`` trials of ``seeds`` kept only their rows before step ``at``."""
    run = tmp_path / "run"
    shutil.copytree(source, run)
    manifest = json.loads((run / "manifest.json").read_text())
    cut = {t["index"] for t in manifest["trials"] if t["agent"] == agent and t["seed"] in seeds}
    rewrite_rows(run, lambda df: df[~(df["trial"].isin(cut) & (df["step"] >= at))])
    for t in cut:
        manifest["trials"][t].update(status="failed" if at == 0 else "interrupted", steps_done=at)
    manifest["status"] = "interrupted"
    (run / "manifest.json").write_text(json.dumps(manifest))
    return run


def _last(df, agent):
    g = df[df["agent"] == agent].sort_values("step")
    return g.groupby("seed")[H].last()


@pytest.mark.parametrize("at", [0, 3, 6])  # a failed oracle trial, or one stopped early
@pytest.mark.parametrize("seeds", [{1}, {0, 2}, {3}])
def test_a_difference_to_a_stopped_baseline_counts_only_its_seeds(source, tmp_path, seeds, at):
    """The oracle's trials of ``seeds`` failed (no rows) or stopped at step ``at``."""
    run = _damaged(source, tmp_path, "oracle", seeds, at)
    rep = build_report(run, out_dir=tmp_path / "r")
    df = read_metrics(run)
    kept = [s for s in range(4) if s not in seeds]
    # by hand: the difference at each agent's last step, for the seeds whose oracle has it
    want = (_last(df, "pop") - _last(df, "oracle")).loc[kept]
    row = rep.summary.set_index("agent").loc["pop"]
    assert row["seeds"] == 4 and row[f"{DERIVED_HOMOGENIZATION} n"] == len(kept)
    assert row[DERIVED_HOMOGENIZATION] == pytest.approx(want.mean(), rel=1e-12, abs=1e-15)
    i = list(rep.summary["agent"]).index("pop")
    assert rep.cell(i, DERIVED_HOMOGENIZATION).endswith(f"({len(kept)} seeds)")
    md = (tmp_path / "r" / "report.md").read_text()
    assert f"({len(kept)} seeds)" in md
    if len(kept) < 3:  # the few-seeds note sees the paired count
        assert rep.note and f"pop ({len(kept)} seeds)" in rep.note, rep.note
    else:
        assert rep.note is None or "pop (" not in rep.note
    assert np.isfinite(want).all() and len(want) == len(kept)


def test_complete_runs_show_no_paired_count(source, tmp_path):
    """Every seed paired: no count beside the value."""
    rep = build_report(source, out_dir=tmp_path / "r")
    row = rep.summary.set_index("agent").loc["pop"]
    assert row[f"{DERIVED_HOMOGENIZATION} n"] == 4
    i = list(rep.summary["agent"]).index("pop")
    assert "seeds)" not in rep.cell(i, DERIVED_HOMOGENIZATION)


@pytest.mark.parametrize("seeds", [{0}, {1, 3}])
def test_pooled_tables_give_the_paired_seeds(source, tmp_path, capsys, seeds):
    """The baseline (the first agent) lacks seeds: each difference says it has fewer."""
    from simlab.cli import main

    run = _damaged(source, tmp_path, "pop", seeds, 0)
    assert main(["report", str(run), "--out", str(tmp_path / "r")]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    n = 4 - len(seeds)
    assert f", {n} seeds)" in printed, printed[-800:]
    md = (tmp_path / "r" / "report.md").read_text()
    section = md.split("## Source bias by window", 1)[1].split("\n## ", 1)[0]
    rows = [r for r in section.splitlines() if r.startswith("| random")]
    assert rows and all(f", {n} seeds |" in r and r.endswith("| 4 |") for r in rows), rows
