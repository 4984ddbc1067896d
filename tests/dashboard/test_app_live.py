"""AppTest tests of the Live and Launch pages."""

from __future__ import annotations

import json
import time
from pathlib import Path

import dash_fixtures
import pytest
import yaml
from dash_fixtures import (
    DASHBOARD_SCENARIO,
    drop_trials,
    figures,
    make_live_run,
    open_app,
    values,
    write_steps,
)

from simlab import cli
from simlab.dashboard.launch import scenario_files
from simlab.store import list_runs

base_run = dash_fixtures.base_run
runs_dir = dash_fixtures.runs_dir

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def status_line(at) -> str:
    """The Live page's progress line."""
    (line,) = [m.value for m in at.markdown if "trial-steps done" in m.value]
    return line


def trials_table(at):
    """The Live page's table of trials."""
    return next(d.value for d in at.dataframe if "state" in d.value.columns)


# ---------------------------------------------------------------------- Live
def test_live_counts_trial_steps_and_follows_new_rows(tmp_path, base_run, monkeypatch):
    """Trial-steps are summed over trials; rows written while the page is open appear."""
    runs = tmp_path / "runs"
    run = make_live_run(base_run, runs / "live-run", keep_steps=5)
    at = open_app(runs, monkeypatch, "Live")
    assert at.selectbox(key="live-run").value == "live-run"
    line = status_line(at)
    assert "status `running`" in line and "**20 of 48 trial-steps done** (42%)" in line
    assert "0 queued, 4 running, 0 done" in line
    trials = trials_table(at)
    assert trials["steps done"].tolist() == [5, 5, 5, 5]
    assert trials["state"].tolist() == ["running"] * 4
    assert any("Refreshing every 3 s" in c.value for c in at.caption)
    assert [w.value for w in at.warning][0].startswith("Fewer than 3 seeds: live-run (2 seeds)")
    time.sleep(1.1)  # the rate is measured between refreshes at least a second apart
    write_steps(run, range(5, 7))
    at.run()
    line = status_line(at)
    assert "**28 of 48 trial-steps done**" in line
    assert "trial-steps/s, about" in line and " left" in line
    assert trials_table(at)["steps done"].tolist() == [7, 7, 7, 7]
    (fig,) = figures(at)
    assert values(fig["data"][1]["x"]) == list(range(7))


def test_live_shows_queued_trials(tmp_path, base_run, monkeypatch):
    """Trials with no row yet are queued; the count of trial-steps covers only written ones."""
    runs = tmp_path / "runs"
    run = make_live_run(base_run, runs / "live-run", keep_steps=3)
    drop_trials(run, {2, 3})
    at = open_app(runs, monkeypatch, "Live")
    line = status_line(at)
    assert "**6 of 48 trial-steps done**" in line
    assert "2 queued, 2 running, 0 done" in line
    states = trials_table(at)["state"].tolist()
    assert states == ["running", "running", "queued", "queued"]


def test_a_finished_run_is_not_refreshed(tmp_path, base_run, monkeypatch):
    """A completed run shows its totals and says it is not refreshed; so does a run that ends."""
    runs = tmp_path / "runs"
    run = make_live_run(base_run, runs / "live-run", keep_steps=5)
    at = open_app(runs, monkeypatch, "Live")
    assert any("Refreshing every" in c.value for c in at.caption)
    write_steps(run, range(5, 12))
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["status"] = "completed"
    (run / "manifest.json").write_text(json.dumps(manifest))
    at.run()
    assert not at.exception
    assert any("completed: its final state, not refreshed" in c.value for c in at.caption)
    assert not any("Refreshing every" in c.value for c in at.caption)
    line = status_line(at)
    assert "**48 of 48 trial-steps done** (100%)" in line
    assert "0 not started, 0 stopped, 4 done" in line  # no longer written: nothing queued
    assert "trial-steps/s" not in line


def test_live_metric_list(runs_dir, base_run, monkeypatch):
    """Metrics are picked from the run's own metric columns, one chart each."""
    at = open_app(runs_dir, monkeypatch, "Live")
    metrics = at.multiselect(key="live-metrics")
    assert metrics.value == ["engagement/ctr"]
    manifest = json.loads((base_run / "manifest.json").read_text())
    assert metrics.options == manifest["metric_columns"]
    metrics.set_value(["exposure/gini", "creators/active_aigc"]).run()
    titles = [f["layout"]["title"]["text"].split("<br>")[0] for f in figures(at)]
    assert titles == ["exposure/gini", "creators/active_aigc"]
    assert at.query_params["live_metrics"] == ["exposure/gini", "creators/active_aigc"]


# ---------------------------------------------------------------------- Launch
INVALID_YAML = """\
name: broken
steps: 0
seeds: -1
agents:
  - model: popularity
"""


def test_launch_offers_every_scenario_under_scenarios(tmp_path, monkeypatch):
    """Every YAML under scenarios/, experiments/ included, by its path relative to it."""
    at = open_app(tmp_path / "runs", monkeypatch, "Launch")
    options = at.selectbox(key="launch-scenario").options
    shipped = sorted(p.relative_to(SCENARIOS).as_posix() for p in SCENARIOS.rglob("*.yaml"))
    assert options == shipped
    assert "experiments/homogenization.yaml" in options
    assert at.selectbox(key="launch-scenario").value == "quickstart.yaml"
    assert [n for n, _ in scenario_files()] == shipped
    at.selectbox(key="launch-scenario").set_value("experiments/homogenization.yaml").run()
    text = at.text_area(key="launch-yaml-experiments/homogenization.yaml").value
    assert text == (SCENARIOS / "experiments" / "homogenization.yaml").read_text()


@pytest.mark.parametrize(
    ("text", "problems"),
    [(INVALID_YAML, "2 problems"), (INVALID_YAML.replace("seeds: -1", "seeds: 1"), "1 problem")],
)
def test_launch_invalid_scenario_shows_simlab_validate_errors(
    tmp_path, monkeypatch, capsys, text, problems
):
    """Errors are exactly `simlab validate`'s lines, wrapped; the file is named after `name`."""
    runs = tmp_path / "runs"
    at = open_app(runs, monkeypatch, "Launch")
    at.text_area(key="launch-yaml-quickstart.yaml").set_value(text).run()
    saved = runs / ".launch" / "broken.yaml"
    assert any(f"`{saved}`" in c.value for c in at.caption)
    at.button(key="launch-validate").click().run()
    assert not at.exception
    assert at.error[0].value == f"broken.yaml is not a valid scenario ({problems}):"
    assert at.code[0].proto.wrap_lines
    shown = at.code[0].value.splitlines()
    assert saved.read_text() == text
    assert cli.main(["validate", str(saved)]) != 0
    printed = [line for line in capsys.readouterr().err.splitlines() if line]
    assert shown == printed
    assert all(line.startswith(f"error: {saved}: ") for line in shown)


def test_launch_yaml_syntax_error(tmp_path, monkeypatch):
    """A YAML syntax error names the line, as `simlab validate` does; nothing starts."""
    at = open_app(tmp_path / "runs", monkeypatch, "Launch")
    at.text_area(key="launch-yaml-quickstart.yaml").set_value("name: [oops\n")
    at.button(key="launch-start").click().run()
    assert not at.exception and at.error
    assert "(1 problem)" in at.error[0].value
    assert "YAML syntax error" in at.code[0].value
    assert (tmp_path / "runs" / ".launch" / "quickstart.yaml").exists()  # the template's name
    assert not list_runs(tmp_path / "runs")


def test_launch_starts_a_run_links_it_tails_its_log_and_reaps_it(tmp_path, monkeypatch):
    """A valid scenario starts `simlab run`; its files carry the scenario's name; no zombie."""
    runs = tmp_path / "runs"
    tiny = dict(DASHBOARD_SCENARIO, name="launched", steps=3, seeds=1)
    tiny["agents"] = [{"model": "random"}]
    at = open_app(runs, monkeypatch, "Launch")
    at.text_area(key="launch-yaml-quickstart.yaml").set_value(yaml.safe_dump(tiny))
    at.button(key="launch-start").click().run()
    assert not at.exception and not at.error
    assert [s.value for s in at.success][0] == (
        f"valid: {runs / '.launch' / 'launched.yaml'} (1 trial x 3 steps)"
    )
    (launch,) = at.session_state["launched"]
    assert f"writing run `{launch.run_id}`" in at.success[1].value
    assert launch.run_id.startswith("launched-") and launch.log.name.startswith("launched-")
    pid = launch.proc.pid
    link = next(m.value for m in at.markdown if f"pid {pid}" in m.value)
    assert f"(?page=Live&live={launch.run_id}&runs={launch.run_id})" in link
    assert f"(?page=Compare&runs={launch.run_id})" in link
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and launch.proc.poll() is None:
        time.sleep(0.3)
    assert launch.proc.returncode == 0, launch.log.read_text()
    (run,) = list_runs(runs)
    assert run.run_id == launch.run_id and run.status == "completed"
    at.run()
    text = next(m.value for m in at.markdown if f"pid {pid}" in m.value)
    assert ": finished." in text
    tail = at.code[-1].value
    assert "run directory:" in tail and launch.run_id in tail
    # reaped: a zombie would keep its /proc entry until the parent waits for it
    assert not Path(f"/proc/{pid}").exists()
    at.sidebar.radio(key="page").set_value("Runs").run()
    table = at.dataframe(key="runs-table").value.set_index("run")
    assert table.loc[launch.run_id, "status"] == "completed"
    assert table.loc[launch.run_id, "steps done"] == "3 / 3"
