"""Shared fixtures: small scenarios that run in a second or two."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from simlab.scenario import Scenario, parse_scenario
from simlab.testing import record_acts  # noqa: F401 - tests import it from conftest

SMALL: dict[str, Any] = {
    "name": "small",
    "steps": 30,
    "seeds": 1,
    "world": {"dim": 16, "num_topics": 8},
    "users": {"model": "logit", "num_users": 300},
    "content": {
        "model": "creators",
        "num_human_creators": 30,
        "num_aigc_creators": 10,
        "items_per_step": 10,
        "initial_items": 200,
        "lifetime": 20,
    },
    "platform": {"slate_size": 5, "retrain_every": 3, "log_window": 6},
    "agents": [{"model": "random"}, {"model": "popularity"}],
    "output": {"flush_seconds": 0.0},
    "execution": {"backend": "local"},
}


SMALL_MODELS: dict[str, dict[str, Any]] = {
    "mf": {"factors": 4, "epochs": 2},
    "implicit-mf": {"factors": 4},
    "gru4rec": {"factors": 4, "epochs": 1},
    "two-tower": {"factors": 4, "epochs": 1},
    "generative": {
        "quantiser": {"levels": 2, "codebook_size": 8, "dedup_size": 4, "iterations": 5},
        "transformer": {"dim": 16, "layers": 1, "heads": 2, "ff_dim": 32, "max_history": 5},
        "training": {"epochs": 2, "batch_size": 128},
        "device": "cpu",
    },
}
"""Small settings of the learned agents, for tests that run every agent in a few steps."""


def make_small(*overrides: tuple[str, Any] | str, **top: Any) -> Scenario:
    """A small valid scenario; ``top`` replaces top-level keys, ``overrides`` are --set items."""
    data = copy.deepcopy(SMALL)
    data.update(top)
    return parse_scenario(data, overrides)


def scenario_errors(data: Any, *overrides: str) -> list[str]:
    """The error lines of parsing ``data`` with ``--set`` ``overrides``.

    Fails the test if it parses or raises anything but a ``ScenarioError``.
    """
    from simlab.errors import ScenarioError

    with pytest.raises(ScenarioError) as info:
        parse_scenario(data, overrides)
    return str(info.value).splitlines()


def rewrite_rows(run, change) -> None:
    """Replace a run's metric rows by ``change(rows)``, one part per trial (as a flush writes).

    For tests that damage or cut a run's rows (``change`` maps the DataFrame of every row).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from simlab.store import open_run

    store = open_run(run)
    rows = change(store.read_metrics(strict=False))
    for p in (run / "metrics.parquet").glob("*.parquet"):
        p.unlink()
    for t, g in rows.groupby("trial"):
        table = pa.Table.from_pandas(g, schema=store.schema(), preserve_index=False)
        pq.write_table(table, run / "metrics.parquet" / f"part-{t:05d}-000000.parquet")


def run_metrics(run) -> Any:
    """A run directory's metric rows: trial, step and the metric columns, in stored order."""
    from simlab.store import open_run

    store = open_run(run)
    cols = ["trial", "step", *store.manifest["metric_columns"]]
    return store.read_metrics()[cols].reset_index(drop=True)


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """Torch on one thread: on 2 shared cores, 2 threads make small models several times slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def small_scenario() -> Scenario:
    """The default small scenario (random and popularity, one seed, 30 steps)."""
    return make_small()


@pytest.fixture(scope="session")
def ray_local():
    """One small local Ray instance for the whole test session (no dashboard, quiet)."""
    import os

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    from simlab.execution.ray import init_local

    # 6 logical CPUs: a trial with 4 shards and its agent reserves 5
    init_local(num_cpus=6, object_store_mb=256)
    yield ray
    ray.shutdown()
