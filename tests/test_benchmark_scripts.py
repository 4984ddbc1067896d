"""benchmarks/grid.py and benchmarks/roofline.py: their cells, skips and floor arithmetic.

The figures themselves come from running the scripts (never timed here).
"""

from __future__ import annotations

import importlib.util
import sys
from argparse import Namespace
from pathlib import Path

import pytest

from simlab import registry

_BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", _BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


grid = _load("grid")
roofline = _load("roofline")


@pytest.mark.parametrize("agent", ["popularity", "mf", "linucb"])
def test_grid_cell_runs_a_world_and_reports_rate_and_memory(agent):
    """One small cell: a positive rate and the process's peak memory."""
    rec = grid.worker({"agent": agent, "users": 200, "candidates": 40, "steps": 2, "warmup": 1})
    assert rec["rate"] > 0 and rec["peak_mb"] > 0


def test_an_in_process_cell_leaves_the_thread_settings_as_they_were():
    """The worker limits threads as `simlab run` does and restores them when it returns."""
    import os

    import torch

    keys = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    before = ({k: os.environ.get(k) for k in keys}, torch.get_num_threads())
    grid.worker({"agent": "mf", "users": 100, "candidates": 30, "steps": 1, "warmup": 1})
    assert ({k: os.environ.get(k) for k in keys}, torch.get_num_threads()) == before


@pytest.mark.parametrize("users,cands,max_gb", [(100_000, 10_000, 2.0), (10_000, 10_000, 0.1)])
def test_grid_skips_cells_whose_scores_do_not_fit(users, cands, max_gb):
    """A cell over --max-gb is skipped with its size named, without starting a process."""
    args = Namespace(max_gb=max_gb, steps=1, warmup=0, timeout=1.0)
    rec = grid.run_cell("mf", users, cands, args)
    assert "skip" in rec and "GB > --max-gb" in rec["skip"]


def test_grid_catalog_holds_the_requested_candidates():
    """The cell's world has exactly `candidates` live items, none retiring."""
    sc = grid.scenario("popularity", 300, 70, 5)
    p = sc.content.params
    assert (p.initial_items, p.items_per_step) == (70, 0) and p.lifetime >= 10**6


def test_roofline_workloads_are_shipped_agents_or_the_port():
    """Every workload names a registered agent (or the benchmark's recsim-cf port)."""
    for name, spec in roofline.WORKLOADS.items():
        assert name == "recsim-cf" or name in registry.names("agents"), name
        assert spec["work"].get("flops", 0) > 0 and spec["world"] in ("reference", "equal-work")


@pytest.mark.parametrize("scale", [1.0, 2.0, 10.0])
def test_roofline_floor_adds_each_kind_of_work_at_its_rate(scale):
    """Floor seconds = flops/gemm + bytes/copy + exps, scores and draws times their cost."""
    rates = {"gemm": 1e11, "copy": 2e10, "exp": 1e-9, "topk": 3e-9, "draw": 4e-9}
    work = {"flops": 2e5 * scale, "bytes": 4e3, "exps": 500.0, "topk": 1000.0, "draws": 7.0}
    want = 2e5 * scale / 1e11 + 4e3 / 2e10 + 500e-9 + 3000e-9 + 28e-9
    assert roofline.floor_seconds(work, rates) == pytest.approx(want, rel=1e-12)
    assert roofline.floor_seconds({}, rates) == 0.0


def test_grid_median_cell_interleaves_the_other_checkout_and_keeps_medians(monkeypatch):
    """Runs alternate this/other per repeat; the medians are kept; skips are passed on."""
    calls = []
    rates = {None: iter([3.0, 1.0, 2.0]), "old": iter([5.0, 4.0, 6.0])}

    def fake(agent, users, cands, args, tree=None):
        calls.append(tree)
        return {"rate": next(rates[tree]), "peak_mb": 1.0}

    monkeypatch.setattr(grid, "run_cell", fake)
    rec = grid.median_cell("mf", 10, 10, Namespace(repeats=3, against="old"))
    assert calls == [None, "old"] * 3
    assert (rec["rate"], rec["other_rate"]) == (2.0, 5.0)
    monkeypatch.setattr(grid, "run_cell", lambda *a, **k: {"skip": "over 1 s"})
    assert grid.median_cell("mf", 10, 10, Namespace(repeats=2, against=None)) == {
        "skip": "over 1 s"
    }


def test_grid_runs_a_cell_in_another_checkout():
    """``--against`` runs the other checkout's worker (here this one) in a fresh process."""
    args = Namespace(max_gb=2.0, steps=1, warmup=1, timeout=120.0)
    rec = grid.run_cell("popularity", 100, 30, args, Path(grid.__file__).resolve().parents[1])
    assert rec["rate"] > 0 and rec["peak_mb"] > 0
