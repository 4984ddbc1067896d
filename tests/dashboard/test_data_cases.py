"""``simlab.dashboard.data`` per class of input: phases, a loaded run's counts, series, PCA.

Classes: ramped shares step by step (a first ramp from 0); phase schedules with empty,
clipped and unreadable phases; a run's steps from the scenario or its rows, its warm-ups
with records missing, its sweep points' schedules (a schedule, none, and a scenario that no
longer loads); series named with and without a run prefix; sweep points ranked per agent;
principal axes of data with fewer samples than axes.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml

from simlab.dashboard import data


@pytest.mark.parametrize(
    ("span", "shares"),
    [
        (data.PhaseSpan(10, 20, "x", 0.6, 1, 4, 0.2), [0.3, 0.4, 0.5, 0.6, 0.6, 0.6]),
        (data.PhaseSpan(10, 20, "x", 0.6, 1, 2), [0.3, 0.6, 0.6, 0.6, 0.6, 0.6]),  # from 0
        (data.PhaseSpan(10, 20, "x", 0.0, 1, 5, 1.0), [0.8, 0.6, 0.4, 0.2, 0.0, 0.0]),
        (data.PhaseSpan(10, 20, "x", 0.7, 1, 0, 0.1), [0.7] * 6),  # no ramp: a step change
    ],
)
def test_ramped_shares_move_linearly_from_the_previous_share(span, shares):
    """Step ``start + i`` of a ramp of ``r`` steps is ``(i + 1) / r`` of the way, then flat."""
    got = [span.share_at(step) for step in range(10, 16)]
    assert got == pytest.approx(shares)


def test_labels_name_the_share_and_the_ramp():
    """``name share%`` and ``(ramp r)`` only with a ramp."""
    assert data.PhaseSpan(0, 5, "coexisting", 0.3).label == "coexisting 30%"
    assert data.PhaseSpan(5, 9, "AIGC-dominated", 0.75, 1, 3).label == "AIGC-dominated 75% (ramp 3)"


@pytest.mark.parametrize(
    ("phases", "steps", "spans"),
    [
        # a phase ending where the previous one did is empty: dropped, its share still passed on
        ([{"until": 5, "aigc_share": 0.0}, {"until": 5, "aigc_share": 0.5},
          {"aigc_share": 1.0, "ramp": 2}], 10,
         [(0, 5, 0.0, 0, 0.0), (5, 10, 1.0, 2, 0.5)]),
        # the first phase's ramp is ignored (nothing to ramp from); until past the end clipped
        ([{"until": 30, "aigc_share": 0.4, "ramp": 3}, {"aigc_share": 0.9}], 12,
         [(0, 12, 0.4, 0, 0.0)]),
        ([{"until": 3, "aigc_share": 0.1}, "junk", {"aigc_share": 0.2, "ramp": None}], 6,
         [(0, 3, 0.1, 0, 0.0), (3, 6, 0.2, 0, 0.1)]),
        (None, 8, []),
        ([], 8, []),
        ([{"aigc_share": 0.3}], 0, []),  # no steps: no span
    ],
)  # fmt: skip
def test_phase_spans_of_unusual_schedules(phases, steps, spans):
    """Spans ``(start, end, share, ramp, from_share)``: empty ones dropped, ends clipped."""
    got = data.phase_spans(phases, steps)
    assert [(s.start, s.end, s.aigc_share, s.ramp, s.from_share) for s in got] == spans


def _run(tmp_path, scenario: dict, rows: pd.DataFrame, trials=None, **manifest) -> data.LoadedRun:
    """A loaded run over ``rows`` whose directory holds ``scenario`` as its scenario.yaml."""
    (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(scenario, sort_keys=False))
    manifest = {"metric_columns": ["m"], "trials": trials, **manifest}
    store = SimpleNamespace(path=tmp_path, manifest=manifest)
    return data.LoadedRun(store, rows, scenario, {})


ROWS = pd.DataFrame({"trial": [0, 0, 0], "agent": "a", "seed": 0, "step": [0, 1, 6], "m": 1.0})


@pytest.mark.parametrize(
    ("steps", "rows", "expected"),
    [(12, ROWS, 12), (0, ROWS, 7), (None, ROWS, 7), ("12", ROWS, 7), (-3, ROWS, 7),
     (None, ROWS.iloc[:0], 0), (1, ROWS, 1)],
)  # fmt: skip
def test_steps_come_from_the_scenario_or_the_rows(tmp_path, steps, rows, expected):
    """A positive integer ``steps`` is the run's; anything else: the rows' newest step + 1."""
    scenario = {} if steps is None else {"steps": steps}
    assert _run(tmp_path, scenario, rows).steps == expected


@pytest.mark.parametrize(
    ("trials", "warmup", "warmups"),
    [
        ([{"warmup": 4}, {"warmup": 2}, {"warmup": 4}], 4, [2, 4]),
        ([{"warmup": 3}, {}], 3, [0, 3]),  # a record without a warm-up: 0
        ([{"warmup": None}, {"warmup": 1}], 1, [0, 1]),
        ([{}], 0, [0]),
        ([], 0, []),
        (None, 0, []),
    ],
)
def test_warm_ups_of_the_trials(tmp_path, trials, warmup, warmups):
    """The longest warm-up and the distinct ones; records without one count as 0."""
    run = _run(tmp_path, {}, ROWS, trials)
    assert (run.warmup, run.warmups) == (warmup, warmups)


SCHEDULE = [{"until": 4, "aigc_share": 0.0}, {"aigc_share": 0.5, "ramp": 2}]


def _scenario(**top) -> dict:
    return {
        "name": "points",
        "steps": 10,
        "users": {"model": "logit", "num_users": 20},
        "content": {"model": "creators", "initial_items": 40, "phases": SCHEDULE},
        "agents": [{"model": "random"}],
        **top,
    }


def test_sweep_points_with_a_schedule_and_without_one(tmp_path):
    """A variant with adoption has no schedule; the phases differ; each point's own spans."""
    variants = {"sched": {}, "adopt": {"content.production": "adoption", "content.phases": None}}
    run = _run(tmp_path, _scenario(variants=variants), ROWS, [])
    points = run.point_phases
    assert [p for p, _ in points] == [{"variant": "sched"}, {"variant": "adopt"}]
    assert [ph["aigc_share"] for ph in points[0][1]] == [0.0, 0.5] and points[1][1] is None
    assert run.phases_differ and run.phases() == []  # no spans shared by every point
    spans = run.phases(point={"variant": "sched"})
    assert [(s.start, s.end, s.ramp) for s in spans] == [(0, 4, 0), (4, 10, 2)]
    assert run.phases(point={"variant": "adopt"}) == []
    assert run.phases(point={"variant": "other"}) == []


def test_points_sharing_a_schedule_share_its_spans(tmp_path):
    """Variants that do not touch the phases: the same spans with or without a point."""
    variants = {"a": {"platform.slate_size": 3}, "b": {"platform.slate_size": 4}}
    run = _run(tmp_path, _scenario(variants=variants), ROWS, [])
    assert not run.phases_differ
    shared = [(s.start, s.end) for s in run.phases()]
    assert shared == [(0, 4), (4, 10)]
    assert [(s.start, s.end) for s in run.phases(point={"variant": "b"})] == shared
    assert [(s.start, s.end) for s in run.phases(steps=6)] == [(0, 4), (4, 6)]


def test_a_scenario_that_no_longer_loads_falls_back_to_its_top_level_phases(tmp_path):
    """An invalid scenario.yaml: one point, the raw top-level phases."""
    scenario = _scenario(users={"model": "no-such-model"})
    run = _run(tmp_path, scenario, ROWS, [])
    assert run.point_phases == [({}, SCHEDULE)]
    assert [(s.start, s.end) for s in run.phases()] == [(0, 4), (4, 10)]


def _frame_run(tmp_path, name: str, label: str, rows: pd.DataFrame, sweep=()) -> data.LoadedRun:
    folder = tmp_path / name
    folder.mkdir()
    manifest = {"metric_columns": ["m"], "sweep_columns": list(sweep), "trials": []}
    store = SimpleNamespace(path=folder, manifest=manifest)
    return data.LoadedRun(store, rows, {}, {"name": label})


def _rows(agents_points: list[tuple[str, str]], seeds=(0, 1)) -> pd.DataFrame:
    out = []
    for trial, (agent, point) in enumerate(agents_points):
        for seed in seeds:
            out.append({"run_id": "x", "trial": 10 * trial + seed, "agent": agent,
                        "seed": seed, "step": 0, "variant_col": point, "m": 1.0})  # fmt: skip
    return pd.DataFrame(out)


def test_series_of_one_run_carry_no_prefix_and_of_several_their_names(tmp_path):
    """One run: ``agent``; two runs: ``name: agent``; seeds counted per series."""
    one = _frame_run(tmp_path, "r1", "first", _rows([("pop", "p")]))
    two = _frame_run(tmp_path, "r2", "second", _rows([("pop", "p")], seeds=(0, 1, 2)))
    assert data.seeds_per_series([one]) == {"pop": 2}
    assert data.seeds_per_series([one, two]) == {"first: pop": 2, "second: pop": 3}
    frame = data.metric_frame([one, two], ["m"])
    assert sorted(set(frame["series"])) == ["first: pop", "second: pop"]
    assert set(data.metric_frame([one], ["m"])["series"]) == {"pop"}


def test_sweep_points_are_ranked_within_each_agent(tmp_path):
    """``variant`` is the rank of the point among the agent's own points (sorted); 0 without."""
    rows = _rows([("pop", "z"), ("pop", "a"), ("rnd", "m"), ("pop", "m")])
    run = _frame_run(tmp_path, "r", "run", rows, sweep=["variant_col"])
    frame = data.metric_frame([run], ["m"])
    ranks = frame.groupby(["agent", "variant_col"])["variant"].unique()
    assert {k: list(v) for k, v in ranks.items()} == {
        ("pop", "a"): [0], ("pop", "m"): [1], ("pop", "z"): [2], ("rnd", "m"): [0],
    }  # fmt: skip
    assert set(frame["series"]) == {"pop variant_col=z", "pop variant_col=a",
                                    "pop variant_col=m", "rnd variant_col=m"}  # fmt: skip
    plain = _frame_run(tmp_path, "p", "plain", _rows([("pop", "z"), ("rnd", "a")]))
    assert set(data.metric_frame([plain], ["m"])["variant"]) == {0}


@pytest.mark.parametrize(("samples", "dim", "components"), [(1, 3, 2), (2, 4, 3), (3, 5, 2)])
def test_principal_axes_of_few_samples_are_padded_with_zero_axes(samples, dim, components):
    """Fewer samples than axes: the missing axes are zero; the real ones unit and orthogonal."""
    x = np.random.default_rng(samples).normal(size=(samples, dim))
    mean, axes = data.fit_pca(x, components)
    assert axes.shape == (components, dim)
    norms = np.linalg.norm(axes, axis=1)
    real = min(samples - 1 if samples > 1 else 0, components)
    assert np.allclose(norms[:real], 1.0)
    assert np.allclose(axes[samples:], 0.0)
    assert data.project(x, mean, axes).shape == (samples, components)


@pytest.mark.parametrize(("counts", "value"), [([], None), ([0, 0], None), ([5], 0.0)])
def test_gini_of_empty_and_single_item_exposure(counts, value):
    """No items or no impressions: NaN; one item: 0."""
    g = data.gini(np.array(counts))
    assert np.isnan(g) if value is None else g == value


def test_a_runs_ranges_are_its_manifests(tmp_path):
    """The declared ranges of the metric columns, as bounds pairs."""
    run = _frame_run(tmp_path, "r", "run", ROWS)
    run.store.manifest["metric_ranges"] = {"m": [0.0, 1.0], "g": [None, 2]}
    assert run.ranges == {"m": (0.0, 1.0), "g": (None, 2.0)}


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A real run directory: one agent, 2 steps."""
    from conftest import make_small

    from simlab.runner import run_scenario

    return run_scenario(make_small(steps=2), out_dir=tmp_path_factory.mktemp("runs")).path


def test_load_run_reads_rows_scenario_and_labels(small_run, tmp_path):
    """Rows named by the folder, the scenario as written, the Runs page's labels."""
    import shutil

    copy = tmp_path / "copied"
    shutil.copytree(small_run, copy)
    (copy / "labels.json").write_text('{"name": "mine", "tags": ["a"]}')
    run = data.load_run(copy)
    assert set(run.metrics["run_id"]) == {"copied"} and run.label == "mine"
    assert run.scenario["steps"] == 2 and run.steps == 2


@pytest.mark.parametrize(
    ("text", "scenario"), [("- a\n- b\n", {}), ("", {}), ("steps: 3\n", {"steps": 3})]
)
def test_a_scenario_that_is_no_mapping_reads_as_empty(small_run, tmp_path, text, scenario):
    """A list or an empty file in scenario.yaml: no settings, the rows still load."""
    import shutil

    copy = tmp_path / "r"
    shutil.copytree(small_run, copy)
    (copy / "scenario.yaml").write_text(text)
    run = data.load_run(copy)
    assert run.scenario == scenario and len(run.metrics)


def test_an_unreadable_scenario_is_a_run_store_error(small_run, tmp_path):
    """Bytes that are not YAML: one error naming the file."""
    import shutil

    from simlab.errors import RunStoreError

    copy = tmp_path / "r"
    shutil.copytree(small_run, copy)
    (copy / "scenario.yaml").write_text("steps: [unclosed\n")
    with pytest.raises(RunStoreError, match="scenario.yaml: unreadable scenario"):
        data.load_run(copy)
