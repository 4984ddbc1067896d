"""AppTest tests of every dashboard page over a real run, corrupt runs and bad scenarios."""

from __future__ import annotations

import base64
import json
import shutil
import time
from pathlib import Path

import dash_fixtures
import numpy as np
import pytest
import yaml
from dash_fixtures import APP, DASHBOARD_SCENARIO, make_live_run, write_steps
from streamlit.testing.v1 import AppTest

from simlab import cli
from simlab.store import list_runs

base_run = dash_fixtures.base_run
runs_dir = dash_fixtures.runs_dir

TIMEOUT = 60


def open_app(runs: Path, monkeypatch: pytest.MonkeyPatch, page: str = "Runs") -> AppTest:
    """The app over ``runs`` (through ``SIMLAB_RUNS``), switched to ``page``."""
    monkeypatch.setenv("SIMLAB_RUNS", str(runs))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    if page != "Runs":
        at.sidebar.radio(key="page").set_value(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def figures(at: AppTest) -> list[dict]:
    """The Plotly figure specs of the page's charts."""
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def values(array: list | dict) -> list:
    """A trace's array as a list (Plotly sends numpy arrays base64-encoded as ``bdata``)."""
    if isinstance(array, dict):
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()
    return list(array)


def trace_names(fig: dict) -> list[str]:
    """Names of a figure's visible traces."""
    return [t.get("name") for t in fig["data"]]


def select_runs(at: AppTest, ids: list[str]) -> AppTest:
    """Select ``ids`` in the sidebar and rerun."""
    at.sidebar.multiselect(key="runs-selected").set_value(ids).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


# ---------------------------------------------------------------------- Runs
def test_runs_page_lists_every_run(runs_dir, base_run, monkeypatch):
    """Runs lists status, scenario, agents, seeds, steps done; the corrupt run says why."""
    at = open_app(runs_dir, monkeypatch)
    assert at.sidebar.radio(key="page").options == [
        "Runs",
        "Compare",
        "Ecosystem",
        "Users",
        "Live",
        "Launch",
    ]
    table = at.dataframe[0].value.set_index("run")
    row = table.loc[base_run.name]
    assert row["status"] == "completed"
    assert row["scenario"] == "dash"
    assert row["agents"] == "random, popularity"
    assert row["seeds"] == "0, 1"
    assert row["steps done"] == "48 / 48"
    assert row["started"]
    assert table.loc["zz-garbage-manifest", "status"] == "corrupt"
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "zz-garbage-manifest" in errors[0]
    assert "corrupt manifest" in errors[0]
    # the newest readable run is selected by default
    assert at.sidebar.multiselect(key="runs-selected").value == [base_run.name]


def test_empty_runs_folder_says_so(tmp_path, monkeypatch):
    """A folder without runs shows a message on every page, not an error."""
    at = open_app(tmp_path / "nothing", monkeypatch)
    assert any("No run directories" in i.value for i in at.info)
    for page in ("Compare", "Ecosystem", "Users", "Live"):
        at.sidebar.radio(key="page").set_value(page).run()
        assert not at.exception and not at.error
        assert at.info


# ---------------------------------------------------------------------- Compare
def test_compare_plots_each_metric_per_agent_with_phases(runs_dir, monkeypatch):
    """One chart per chosen metric, a line and a band per agent, three phases shaded."""
    at = open_app(runs_dir, monkeypatch, "Compare")
    metrics = at.multiselect(key="compare-metrics")
    assert "creators/active_aigc" in metrics.options
    assert metrics.value == ["engagement/ctr", "exposure/gini", "source/aigc_exposure_share"]
    metrics.set_value(["engagement/ctr"]).run()
    (fig,) = figures(at)
    assert trace_names(fig) == [
        "random 95% interval",
        "random",
        "popularity 95% interval",
        "popularity",
    ]
    assert values(fig["data"][1]["x"]) == list(range(12))
    labels = [a["text"] for a in fig["layout"]["annotations"]]
    assert labels == [
        "human-dominated (0% AIGC)",
        "coexisting (30% AIGC)",
        "AIGC-dominated (80% AIGC)",
    ]
    spans = [(s["x0"], s["x1"]) for s in fig["layout"]["shapes"]]
    assert spans == [(-0.5, 3.5), (3.5, 7.5), (7.5, 11.5)]
    assert fig["layout"]["yaxis"]["title"]["text"] == "engagement/ctr"
    (button,) = at.get("download_button")
    assert button.proto.label == "Download CSV"
    assert not at.error and not at.warning


def test_compare_with_corrupt_runs_shows_errors_not_a_crash(runs_dir, base_run, monkeypatch):
    """Selecting a garbage manifest and a half-written part gives two errors, the good run plots."""
    at = open_app(runs_dir, monkeypatch, "Compare")
    select_runs(at, [base_run.name, "zz-garbage-manifest", "zz-half-written"])
    errors = sorted(e.value for e in at.error)
    assert len(errors) == 2
    assert errors[0].startswith("Run zz-garbage-manifest cannot be read: ")
    assert "corrupt manifest" in errors[0]
    assert errors[1].startswith("Run zz-half-written cannot be read: ")
    assert "corrupt metrics part" in errors[1]
    assert len(figures(at)) == 3
    select_runs(at, ["zz-half-written"])
    assert len(at.error) == 1 and not figures(at)
    for page in ("Ecosystem", "Users"):
        at.sidebar.radio(key="page").set_value(page).run()
        assert not at.exception
        assert [e.value for e in at.error] == [errors[1]]
    at.sidebar.radio(key="page").set_value("Live").run()
    at.selectbox(key="live-run").set_value("zz-half-written").run()
    assert not at.exception
    assert "corrupt metrics part" in at.error[0].value


def test_compare_two_runs_and_a_missing_metric(runs_dir, base_run, monkeypatch):
    """Two runs give a line per run and agent; a run without a metric gets a warning."""
    other = runs_dir / "older-run"
    shutil.copytree(base_run, other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["metric_columns"].append("diversity/intra_list")
    (other / "manifest.json").write_text(json.dumps(manifest))
    at = open_app(runs_dir, monkeypatch, "Compare")
    select_runs(at, [base_run.name, "older-run"])
    at.multiselect(key="compare-metrics").set_value(["engagement/ctr", "diversity/intra_list"])
    at.run()
    names = [n for n in trace_names(figures(at)[0]) if "interval" not in n]
    assert names == [f"{base_run.name}: random", f"{base_run.name}: popularity",
                     "older-run: random", "older-run: popularity"]  # fmt: skip
    warnings = [w.value for w in at.warning]
    assert warnings == [
        f"Run {base_run.name} has no values for diversity/intra_list.",
        "Run older-run has no values for diversity/intra_list.",
    ]


# ---------------------------------------------------------------------- Ecosystem
def test_ecosystem_shares_creators_and_lorenz(runs_dir, monkeypatch):
    """Shares of production/exposure/clicks, creators by kind and a Lorenz curve per trial."""
    at = open_app(runs_dir, monkeypatch, "Ecosystem")
    shares, creators, lorenz = figures(at)
    assert [a["text"] for a in shares["layout"]["annotations"]] == [
        "share of production",
        "share of exposure",
        "share of clicks",
    ]
    assert trace_names(shares) == ["human", "AIGC"] * 3
    production = values(shares["data"][1]["y"])
    assert production[0] == 0.0 and max(production[8:]) > 0.3  # AIGC arrives with the phases
    assert trace_names(creators) == [
        "random: human",
        "random: AIGC",
        "popularity: human",
        "popularity: AIGC",
    ]
    assert at.select_slider(key="lorenz-step").options == ["4", "8", "12"]
    assert at.select_slider(key="lorenz-step").value == 12
    names = trace_names(lorenz)
    assert names[0] == "equality" and len(names) == 5
    assert names[1].startswith("random seed 0 (Gini 0.")
    curve = lorenz["data"][1]
    assert values(curve["x"])[0] == 0 and values(curve["y"])[-1] == pytest.approx(1.0)
    at.select_slider(key="lorenz-step").set_value(4).run()
    assert not at.exception and len(figures(at)) == 3
    assert len(at.get("download_button")) == 3


def test_ecosystem_without_creator_columns_or_snapshots(runs_dir, base_run, monkeypatch):
    """An older run without creator metrics or snapshots gets messages, not a crash."""
    old = runs_dir / "old-run"
    shutil.copytree(base_run, old)
    shutil.rmtree(old / "snapshots")
    manifest = json.loads((old / "manifest.json").read_text())
    manifest["metric_columns"] = ["engagement/ctr", "source/aigc_exposure_share"]
    (old / "manifest.json").write_text(json.dumps(manifest))
    at = open_app(runs_dir, monkeypatch, "Ecosystem")
    select_runs(at, ["old-run"])
    warnings = [w.value for w in at.warning]
    assert warnings == [
        "Run old-run lacks source/aigc_production_share, source/aigc_click_share.",
        "Run old-run lacks creator counts (creators/active_human, creators/active_aigc).",
    ]
    assert any("saved no snapshots" in i.value for i in at.info)
    (shares,) = figures(at)
    assert trace_names(shares) == ["human", "AIGC"]


# ---------------------------------------------------------------------- Users
def test_users_projects_interests_at_chosen_steps(runs_dir, monkeypatch):
    """The 2-D projection has one scatter per chosen snapshot step of the chosen trial."""
    at = open_app(runs_dir, monkeypatch, "Users")
    steps = at.multiselect(key="users-steps")
    assert steps.options == ["4", "8", "12"] and steps.value == [4, 8, 12]
    (fig,) = figures(at)
    assert trace_names(fig) == ["step 4", "step 8", "step 12"]
    assert len(values(fig["data"][0]["x"])) == 50  # output.snapshot_users
    at.selectbox(key="users-trial").set_value(3).run()
    steps = at.multiselect(key="users-steps").set_value([12])
    at.run()
    (fig,) = figures(at)
    assert trace_names(fig) == ["step 12"]
    # fitted on the only chosen step: the projection is centred
    assert abs(sum(values(fig["data"][0]["x"]))) < 1e-6


def test_users_without_snapshots_says_so(runs_dir, base_run, monkeypatch):
    """A run saved without snapshots explains how to get them."""
    bare = runs_dir / "bare-run"
    shutil.copytree(base_run, bare)
    shutil.rmtree(bare / "snapshots")
    at = open_app(runs_dir, monkeypatch, "Users")
    select_runs(at, ["bare-run"])
    assert any("output.snapshot_every" in i.value for i in at.info)
    assert not figures(at)


# ---------------------------------------------------------------------- Live
def test_live_shows_new_steps_as_rows_arrive(tmp_path, base_run, monkeypatch):
    """Rows written while the page is open appear on the next refresh."""
    runs = tmp_path / "runs"
    run = make_live_run(base_run, runs / "live-run", keep_steps=5)
    at = open_app(runs, monkeypatch, "Live")
    assert at.selectbox(key="live-run").value == "live-run"
    text = at.markdown[0].value
    assert "status `running`" in text and "steps done: 5 of 12" in text
    assert at.table[0].value["steps done"].tolist() == [5, 5, 5, 5]
    write_steps(run, range(5, 7))
    at.run()
    assert "steps done: 7 of 12" in at.markdown[0].value
    assert at.table[0].value["steps done"].tolist() == [7, 7, 7, 7]
    (fig,) = figures(at)
    assert values(fig["data"][1]["x"]) == list(range(7))


# ---------------------------------------------------------------------- Launch
INVALID_YAML = """\
name: broken
steps: 0
seeds: -1
agents:
  - model: popularity
"""


def test_launch_invalid_scenario_shows_simlab_validate_errors(tmp_path, monkeypatch, capsys):
    """Validation errors are exactly the lines `simlab validate` prints for the same file."""
    runs = tmp_path / "runs"
    at = open_app(runs, monkeypatch, "Launch")
    options = at.selectbox(key="launch-scenario").options
    assert options == ["echo_chamber.yaml", "quickstart.yaml", "recsim_ng.yaml"]
    editor = at.text_area(key="launch-yaml-echo_chamber.yaml")
    assert "name:" in editor.value
    editor.set_value(INVALID_YAML)
    at.button(key="launch-validate").click().run()
    assert not at.exception
    assert "not a valid scenario" in at.error[0].value
    shown = at.code[0].value.splitlines()
    saved = runs / ".launch" / "echo_chamber.yaml"
    assert saved.read_text() == INVALID_YAML
    assert cli.main(["validate", str(saved)]) != 0
    printed = [line for line in capsys.readouterr().err.splitlines() if line]
    assert shown == printed
    assert len(shown) == 2 and all(line.startswith(f"error: {saved}: ") for line in shown)
    assert "steps:" in shown[0] and "seeds:" in shown[1]


def test_launch_yaml_syntax_error(tmp_path, monkeypatch):
    """A YAML syntax error names the line, as `simlab validate` does."""
    at = open_app(tmp_path / "runs", monkeypatch, "Launch")
    at.text_area(key="launch-yaml-echo_chamber.yaml").set_value("name: [oops\n")
    at.button(key="launch-start").click().run()
    assert not at.exception and at.error
    assert "YAML syntax error" in at.code[0].value
    assert not list_runs(tmp_path / "runs")  # nothing was started


def test_launch_starts_a_run_that_appears_in_runs(tmp_path, monkeypatch):
    """A valid edited scenario starts `simlab run` in the background; Runs lists it."""
    runs = tmp_path / "runs"
    tiny = dict(DASHBOARD_SCENARIO, name="launched", steps=3, seeds=1)
    tiny["agents"] = [{"model": "random"}]
    at = open_app(runs, monkeypatch, "Launch")
    at.selectbox(key="launch-scenario").set_value("quickstart.yaml").run()
    at.text_area(key="launch-yaml-quickstart.yaml").set_value(yaml.safe_dump(tiny))
    at.button(key="launch-start").click().run()
    assert not at.exception and not at.error
    assert [s.value for s in at.success][0].startswith("valid: ")
    assert "Started `simlab run`" in at.success[1].value
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = [r for r in list_runs(runs) if r.scenario == "launched"]
        if found and found[0].status == "completed":
            break
        time.sleep(0.5)
    else:
        log = "\n".join(p.read_text() for p in (runs / ".launch").glob("*.log"))
        pytest.fail(f"the launched run did not complete in time; log:\n{log}")
    at.sidebar.radio(key="page").set_value("Runs").run()
    table = at.dataframe[0].value.set_index("run")
    assert table.loc[found[0].run_id, "status"] == "completed"
    assert table.loc[found[0].run_id, "steps done"] == "3 / 3"
