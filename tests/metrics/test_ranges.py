"""Every metric declares the range of each column, and measured values stay inside it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import SMALL, make_small

from simlab import registry
from simlab.metrics import Metric
from simlab.runner import metric_ranges, run_scenario
from simlab.store import read_metrics

METRICS = registry.names("metrics")


@pytest.mark.parametrize("name", METRICS)
def test_every_column_declares_a_valid_range(name):
    """Each registered metric class gives every column a (low, high) with low < high."""
    cls = registry.resolve("metrics", name)
    assert issubclass(cls, Metric)
    assert set(cls.ranges) == set(cls.columns), f"{name}: ranges must cover exactly its columns"
    for column in cls.columns:
        low, high = cls.value_range(column)
        for bound in (low, high):
            assert bound is None or isinstance(bound, float), (column, bound)
        if low is not None and high is not None:
            assert low < high, column


def test_undeclared_column_has_no_range():
    """The base class declares nothing: a new metric's columns are not clipped by default."""

    class Bare(Metric):
        name = "bare"
        columns = ("bare/x",)

    assert Bare.value_range("bare/x") is None
    assert Metric.ranges == {}


@pytest.fixture(scope="module")
def every_metric_run(tmp_path_factory):
    """A small run with every registered metric group, three agents, drifting users."""
    scenario = make_small(
        "users.drift_rate=0.1",
        steps=12,
        seeds=2,
        metrics=METRICS,
        agents=[{"model": "random"}, {"model": "popularity"}, {"model": "oracle"}],
        content=dict(
            SMALL["content"],
            rewrite_share=0.5,
            phases=[{"until": 4, "aigc_share": 0.0}, {"aigc_share": 0.7, "ramp": 3}],
        ),
    )
    return run_scenario(scenario, out_dir=tmp_path_factory.mktemp("ranges")).path


def test_measured_values_lie_in_the_declared_ranges(every_metric_run):
    """Every finite value of every column is within its range (up to rounding)."""
    df = read_metrics(every_metric_run)
    manifest = json.loads((every_metric_run / "manifest.json").read_text())
    ranges = manifest["metric_ranges"]
    assert set(ranges) == set(manifest["metric_columns"])
    checked = 0
    for column, (low, high) in ranges.items():
        values = df[column].to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        if low is not None:
            assert (values >= low - 1e-9).all(), (column, values.min())
        if high is not None:
            assert (values <= high + 1e-9).all(), (column, values.max())
        checked += values.size
    assert checked > 1000  # not vacuous: most columns have values


def test_manifest_ranges_match_the_classes(every_metric_run):
    """``simlab run`` writes each class's declared ranges to the manifest as lists."""
    from simlab.scenario import load_scenario

    manifest = json.loads((every_metric_run / "manifest.json").read_text())
    scenario = load_scenario(every_metric_run / "scenario.yaml")
    assert manifest["metric_ranges"] == json.loads(json.dumps(metric_ranges(scenario)))
    assert manifest["metric_ranges"]["engagement/ctr"] == [0.0, 1.0]
    assert manifest["metric_ranges"]["source/bias_log_odds"] == [None, None]
