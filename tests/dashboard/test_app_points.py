"""The dashboard on runs with variants, same-named runs, uneven seeds and snapshots.

Each page must show what ``simlab report`` and ``simlab show`` say for the same run: a
variant's own content phases and warm-up, sweep points never averaged together, one series
per run even when two runs share a name, the seeds each series has, and snapshots placed on
the step they follow.
"""

from __future__ import annotations

import copy
import json
import shutil

import dash_fixtures
import pytest
from dash_fixtures import (
    DASHBOARD_SCENARIO,
    drop_trials,
    figures,
    make_live_run,
    open_app,
    select_runs,
    trace_names,
)

from simlab.dashboard import data
from simlab.runner import run_scenario
from simlab.scenario import parse_scenario
from simlab.store import open_run, summarize

base_run = dash_fixtures.base_run
ramp_run = dash_fixtures.ramp_run

LATE = [{"until": 9, "aigc_share": 0.0}, {"aigc_share": 0.5}]
VARIANT_SCENARIO = copy.deepcopy(DASHBOARD_SCENARIO)
VARIANT_SCENARIO.update(
    name="dash-variants",
    variants={"base": {}, "late": {"content.phases": LATE},
              "slow": {"platform.retrain_every": 5}},
)  # fmt: skip


@pytest.fixture(scope="module")
def variant_run(tmp_path_factory) -> object:
    """Random and popularity over three variants: other phases (late), another warm-up (slow)."""
    parent = tmp_path_factory.mktemp("variants")
    return run_scenario(parse_scenario(VARIANT_SCENARIO), out_dir=parent).path


@pytest.fixture
def variant_runs(tmp_path, variant_run):
    """A runs folder holding a copy of :func:`variant_run`."""
    runs = tmp_path / "runs"
    runs.mkdir()
    shutil.copytree(variant_run, runs / variant_run.name)
    return runs


def test_each_sweep_point_has_its_own_phases(variant_run):
    """Per point the spans of its own ``content.phases``; none in common when they differ."""
    run = data.load_run(variant_run)
    base = DASHBOARD_SCENARIO["content"]["phases"]
    want = {"base": base, "late": LATE, "slow": base}
    for variant, phases in want.items():
        got = run.phases(point={"variant": variant})
        assert got == data.phase_spans(phases, run.steps), variant
    assert run.phases_differ and run.phases() == []
    assert run.phases(point={"variant": "no-such"}) == []
    assert len(run.warmups) == 2 and run.warmups[-1] == run.warmup  # slow retrains later


def test_a_run_whose_points_share_phases_keeps_them(base_run, ramp_run):
    """Without variants (or with equal phases) the run's phases are shaded as before."""
    for path in (base_run, ramp_run):
        run = data.load_run(path)
        assert not run.phases_differ
        assert run.phases() == data.phase_spans(run.scenario["content"]["phases"], run.steps)
        assert run.phases() and run.warmups == [run.warmup]


def test_compare_shades_no_phases_when_variants_differ_and_says_why(variant_runs, monkeypatch):
    """No phase rectangles over variants with other phases; a caption names both causes."""
    at = open_app(variant_runs, monkeypatch, "Compare", {"metrics": "engagement/ctr"})
    (fig,) = figures(at)
    assert dash_fixtures.phase_rects(fig) == []
    captions = " ".join(c.value for c in at.caption)
    assert "different content phases" in captions and "warm-ups differ" in captions


@pytest.mark.parametrize(("variant", "bounds"), [("base", [3.5, 7.5]), ("late", [8.5])])
def test_ecosystem_marks_the_chosen_series_own_phases(variant_runs, monkeypatch, variant, bounds):
    """The AIGC share chart of a series marks the phase starts of that series' variant."""
    at = open_app(variant_runs, monkeypatch, "Ecosystem")
    at.selectbox(key="eco-agent").set_value(f"random variant={variant}").run()
    shares = figures(at)[0]
    lines = [s["x0"] for s in shares["layout"].get("shapes", []) if s["type"] == "line"]
    assert sorted(set(lines)) == [-0.5, *bounds]  # each phase's start, in every panel
    assert len(lines) == 3 * (1 + len(bounds))


def test_runs_page_keeps_variants_apart(variant_runs, variant_run, monkeypatch):
    """A variant run's key metric cell lists each agent at each variant, as simlab show."""
    at = open_app(variant_runs, monkeypatch, "Runs")
    table = next(d.value for d in at.dataframe if "run" in d.value.columns).set_index("run")
    cell = table.loc[variant_run.name, "engagement/ctr"]
    entries = cell.split(" · ")
    assert len(entries) == 6
    run = open_run(variant_run)
    summary = summarize(run.read_metrics(), run.manifest)
    for _, row in summary.iterrows():
        assert f"{row['agent']} variant={row['variant']} {row['engagement/ctr']:.3g}" in entries


def test_two_runs_of_one_name_stay_two_series(tmp_path, base_run, monkeypatch):
    """Runs named alike by their labels are told apart by id: two lines, never one."""
    runs = tmp_path / "runs"
    ids = ["copy-a", "copy-b"]
    for run_id in ids:
        shutil.copytree(base_run, runs / run_id)
        (runs / run_id / "labels.json").write_text(json.dumps({"name": "same", "tags": []}))
    at = open_app(runs, monkeypatch, "Compare", {"metrics": "engagement/ctr"})
    select_runs(at, ids)
    at.selectbox(key="phase-layout").set_value("copy-a").run()  # one panel for both runs
    (fig,) = figures(at)
    names = [n for n in trace_names(fig) if n and "interval" not in n]
    assert sorted(names) == sorted(
        f"same ({i}): {a}" for i in ids for a in ("random", "popularity")
    )
    for name in names:  # each line is one run's steps, in order, once
        (t,) = [t for t in fig["data"] if t.get("name") == name]
        xs = dash_fixtures.values(t["x"])
        assert xs == sorted(set(xs))
    (note,) = [w.value for w in at.warning]
    assert all(f"same ({i}): random (2 seeds)" in note for i in ids)


def test_the_seeds_note_names_the_series_with_few_seeds(tmp_path, ramp_run, monkeypatch):
    """An interrupted 3-seed run whose popularity trials of seeds 1, 2 never started: only it."""
    runs = tmp_path / "runs"
    run = runs / "uneven"
    shutil.copytree(ramp_run, run)
    manifest = json.loads((run / "manifest.json").read_text())
    unstarted = {t["index"] for t in manifest["trials"] if t["agent"] == "popularity" and t["seed"]}
    drop_trials(run, unstarted)
    manifest["status"] = "interrupted"
    for i in unstarted:
        manifest["trials"][i].update(status="pending", steps_done=0)
    (run / "manifest.json").write_text(json.dumps(manifest))
    at = open_app(runs, monkeypatch, "Compare", {"metrics": "engagement/ctr"})
    (note,) = [w.value for w in at.warning]
    assert "popularity (1 seed)" in note and "oracle" not in note
    # differences to popularity exist for its one seed only: every other series says so
    # (the note counted each agent's own seeds, 3, and drew t bands from 1 pair unwarned)
    at = open_app(
        runs, monkeypatch, "Compare", {"metrics": "engagement/ctr", "baseline": "popularity"}
    )
    (note,) = [w.value for w in at.warning]
    others = {t["agent"] for t in manifest["trials"]} - {"popularity"}
    assert others and all(f"{a} (1 seed)" in note for a in others), note


def test_a_snapshot_is_the_state_after_its_steps(tmp_path, base_run, monkeypatch):
    """The Lorenz curve 'after N steps' has the Gini of the metric rows' step N - 1."""
    runs = tmp_path / "runs"
    shutil.copytree(base_run, runs / base_run.name)
    at = open_app(runs, monkeypatch, "Ecosystem")
    rows = open_run(runs / base_run.name).read_metrics()
    trials = json.loads((runs / base_run.name / "manifest.json").read_text())["trials"]
    for steps in (4, 8, 12):
        at.select_slider(key="lorenz-step").set_value(steps).run()
        lorenz = figures(at)[-1]
        assert any(f"after {steps} steps (the end of step {steps - 1}" in c.value
                   for c in at.caption)  # fmt: skip
        for t in trials:
            label = f"{t['agent']} seed {t['seed']}"
            row = rows[(rows["trial"] == t["index"]) & (rows["step"] == steps - 1)]
            want = f"{label} (Gini {float(row['exposure/gini'].iloc[0]):.3f})"
            assert want in trace_names(lorenz), (steps, want, trace_names(lorenz))


def test_lorenz_labels_name_the_variant(variant_runs, monkeypatch):
    """Lorenz curves of a variant run say which variant each trial ran."""
    at = open_app(variant_runs, monkeypatch, "Ecosystem")
    names = [n for n in trace_names(figures(at)[-1]) if n != "equality"]
    assert len(names) == len(set(names)) == 12
    assert any(n.startswith("random variant=late seed 1 (Gini") for n in names)


def test_live_follows_a_starting_run(tmp_path, base_run, monkeypatch):
    """A run still ``starting`` (a fork copying rows) is refreshed, and picked by default."""
    runs = tmp_path / "runs"
    run = make_live_run(base_run, runs / "starting-run", keep_steps=0)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["status"] = "starting"
    (run / "manifest.json").write_text(json.dumps(manifest))
    shutil.copytree(base_run, runs / base_run.name)
    at = open_app(runs, monkeypatch, "Live")
    assert at.selectbox(key="live-run").value == "starting-run"
    assert any("Refreshing every" in c.value for c in at.caption)
    assert not any("not refreshed" in c.value for c in at.caption)


def test_launch_lists_the_bundled_scenarios_of_an_installed_package(tmp_path, monkeypatch):
    """Installed from a wheel the shipped scenarios live in the package: Launch lists them."""
    from simlab.dashboard import launch

    shipped = tmp_path / "site" / "simlab" / "scenarios"
    (shipped / "experiments").mkdir(parents=True)
    for name in ("quick.yaml", "experiments/study.yaml"):
        (shipped / name).write_text("name: x\n")
    monkeypatch.setattr(launch, "bundled_root", lambda: shipped)
    monkeypatch.chdir(tmp_path)  # no ./scenarios here
    got = launch.scenario_files()
    assert [n for n, _ in got] == ["experiments/study.yaml", "quick.yaml"]
    assert all(p.is_file() and shipped in p.parents for _, p in got)
