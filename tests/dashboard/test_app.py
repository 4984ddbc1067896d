"""AppTest tests of the Runs hub, the URL state and the Ecosystem and Users pages."""

from __future__ import annotations

import json
import shutil

import dash_fixtures
import pytest
from dash_fixtures import figures, open_app, select_runs, trace, trace_names, values

base_run = dash_fixtures.base_run
ramp_run = dash_fixtures.ramp_run
runs_dir = dash_fixtures.runs_dir
two_runs = dash_fixtures.two_runs


def table(at) -> object:
    """The Runs table indexed by run id."""
    return at.dataframe(key="runs-table").value.set_index("run")


def click_rows(at, rows: list[int]):
    """Select table rows as a click in the browser does, and rerun."""
    at.session_state["runs-table"] = {"selection": {"rows": rows, "columns": [], "cells": []}}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


# ---------------------------------------------------------------------- Runs
def test_runs_page_lists_every_run(runs_dir, base_run, monkeypatch):
    """Runs lists status, scenario, agents, seeds, steps, duration, key metrics; errors."""
    at = open_app(runs_dir, monkeypatch)
    assert at.sidebar.radio(key="page").options == [
        "Runs",
        "Compare",
        "Ecosystem",
        "Users",
        "Live",
        "Launch",
    ]
    row = table(at).loc[base_run.name]
    assert row["status"] == "completed"
    assert row["scenario"] == "dash"
    assert row["agents"] == "random, popularity"
    assert row["seeds"] == "0, 1"
    assert row["steps done"] == "48 / 48"
    assert row["duration"].endswith(" s") and row["started"]
    assert (
        row["engagement/ctr"].startswith("random 0.")
        and " · popularity 0." in row["engagement/ctr"]
    )
    assert row["exposure/gini"].count("·") == 1
    assert table(at).loc["zz-garbage-manifest", "status"] == "corrupt"
    errors = [e.value for e in at.error]
    assert len(errors) == 2 and "zz-garbage-manifest" in errors[0]
    assert "corrupt manifest" in errors[0]
    # a run whose rows cannot be read: '?' cells and its error, naming the run and the part
    assert table(at).loc["zz-half-written", "engagement/ctr"] == "?"
    assert errors[1].startswith("Run zz-half-written cannot be read: ")
    assert "part-" in errors[1] and ".parquet" in errors[1]
    # the newest readable run is selected by default, and shown selected in the table
    assert at.sidebar.multiselect(key="runs-selected").value == [base_run.name]
    ids = table(at).index.tolist()
    assert at.session_state["runs-table"]["selection"]["rows"] == [ids.index(base_run.name)]


def test_empty_runs_folder_says_so(tmp_path, monkeypatch):
    """A folder without runs shows a message on every page, not an error."""
    at = open_app(tmp_path / "nothing", monkeypatch)
    assert any("No run directories" in i.value for i in at.info)
    for page in ("Compare", "Ecosystem", "Users", "Live"):
        at.sidebar.radio(key="page").set_value(page).run()
        assert not at.exception and not at.error
        assert at.info


def test_selecting_table_rows_selects_runs_everywhere(two_runs, base_run, ramp_run, monkeypatch):
    """Clicking rows sets the sidebar's selection; the sidebar's selection shows in the table."""
    at = open_app(two_runs, monkeypatch)
    ids = table(at).index.tolist()
    assert ids == [ramp_run.name, base_run.name]  # newest first
    click_rows(at, [0, 1])
    assert at.sidebar.multiselect(key="runs-selected").value == ids
    click_rows(at, [1])
    assert at.sidebar.multiselect(key="runs-selected").value == [base_run.name]
    select_runs(at, [ramp_run.name])
    assert at.session_state["runs-table"]["selection"]["rows"] == [0]
    # a run hidden by the search stays selected while rows are clicked
    at.text_input(key="runs-search").set_value("ramp").run()
    assert table(at).index.tolist() == [ramp_run.name]
    select_runs(at, [base_run.name, ramp_run.name])
    click_rows(at, [])
    assert at.sidebar.multiselect(key="runs-selected").value == [base_run.name]
    at.sidebar.radio(key="page").set_value("Compare").run()
    assert [f["layout"]["title"]["text"].split("<")[0] for f in figures(at)][:1] == [
        "engagement/ctr"
    ]


def test_differing_settings_columns_follow_the_selection(two_runs, base_run, ramp_run, monkeypatch):
    """With two runs selected, `set:` columns show the scenario values that differ."""
    at = open_app(two_runs, monkeypatch)
    assert not [c for c in table(at).columns if c.startswith("set: ")]
    select_runs(at, [base_run.name, ramp_run.name])
    t = table(at)
    settings = [c for c in t.columns if c.startswith("set: ")]
    assert "set: steps" in settings and "set: seeds" in settings
    assert "set: name" not in settings and "set: users.num_users" not in settings
    assert t.loc[base_run.name, "set: steps"] == "12" and t.loc[ramp_run.name, "set: steps"] == "16"
    assert t.loc[ramp_run.name, "set: seeds"] == "[0, 1, 2]"
    assert t.loc[ramp_run.name, "set: content.phases[1].ramp"] == "4"
    assert t.loc[base_run.name, "set: content.phases[1].ramp"] == "0"
    assert t.loc[ramp_run.name, "set: agents[1].model"] == "oracle"


@pytest.mark.parametrize(
    ("widget", "value", "expected"),
    [
        ("runs-search", "ramp", "ramp"),
        ("runs-search", "RANDOM popularity", "base"),  # every word, any case
        ("runs-search", "oracle", "ramp"),
        ("runs-search", "nothing-like-this", None),
        ("runs-status", ["corrupt"], "corrupt"),
        ("runs-scenario", ["dash"], "base"),
    ],
)
def test_search_and_filters(runs_dir, ramp_run, base_run, monkeypatch, widget, value, expected):
    """Search matches id, scenario and agents by every word; filters by status and scenario."""
    shutil.copytree(ramp_run, runs_dir / ramp_run.name)
    at = open_app(runs_dir, monkeypatch)
    if widget == "runs-search":
        at.text_input(key=widget).set_value(value).run()
    else:
        at.multiselect(key=widget).set_value(value).run()
    shown = table(at).index.tolist()
    wanted = {
        "ramp": [ramp_run.name],
        "base": [base_run.name, "zz-half-written"],
        "corrupt": ["zz-garbage-manifest"],
        None: [],
    }[expected]
    assert sorted(shown) == sorted(wanted)
    assert not at.exception


def test_name_and_tags_are_stored_in_the_run_directory(two_runs, base_run, monkeypatch):
    """Saving a name and tags writes labels.json; every page shows the name; search finds tags."""
    at = open_app(two_runs, monkeypatch)
    at.selectbox(key="label-run").set_value(base_run.name).run()
    at.text_input(key=f"label-name-{base_run.name}").set_value("baseline world")
    at.text_input(key=f"label-tags-{base_run.name}").set_value("paper, fig-2,paper")
    at.button(key="label-save").click().run()
    assert not at.exception and not at.error
    stored = json.loads((two_runs / base_run.name / "labels.json").read_text())
    assert stored == {"name": "baseline world", "tags": ["paper", "fig-2"]}
    assert any("Saved the name and tags" in s.value for s in at.success)
    row = table(at).loc[base_run.name]
    assert (row["name"], row["tags"]) == ("baseline world", "paper, fig-2")
    at.text_input(key="runs-search").set_value("fig-2").run()
    assert table(at).index.tolist() == [base_run.name]
    # a fresh session (another browser) sees the name too, in legends and the sidebar
    ids = sorted(p.name for p in two_runs.iterdir())
    other = open_app(two_runs, monkeypatch, "Compare", {"runs": ids})
    assert "baseline world: random" in trace_names(figures(other)[0])
    options = other.sidebar.multiselect(key="runs-selected").options
    assert f"baseline world ({base_run.name})" in options


# ---------------------------------------------------------------------- URL state
def test_a_shared_url_reproduces_the_view(two_runs, base_run, ramp_run, monkeypatch):
    """Page, runs, metrics, interval, smoothing, baseline and layout come from the URL."""
    query = {
        "page": "Compare",
        "runs": [ramp_run.name, base_run.name],
        "metrics": ["exposure/gini", "engagement/ctr"],
        "interval": "sd",
        "smooth": "rolling:3",
        "baseline": "popularity",
        "layout": ramp_run.name,
        "cols": "1",
    }
    at = open_app(two_runs, monkeypatch, "Compare", query)
    assert at.sidebar.radio(key="page").value == "Compare"
    assert at.sidebar.multiselect(key="runs-selected").value == [ramp_run.name, base_run.name]
    assert at.multiselect(key="compare-metrics").value == ["exposure/gini", "engagement/ctr"]
    assert at.sidebar.radio(key="interval").value == "sd"
    assert at.sidebar.selectbox(key="smooth-method").value == "rolling"
    assert at.sidebar.number_input(key="smooth-window").value == 3
    assert at.selectbox(key="baseline").value == "popularity"
    assert at.selectbox(key="phase-layout").value == ramp_run.name
    fig = figures(at)[0]
    assert "standard deviation; rolling mean of 3 steps" in fig["layout"]["title"]["text"]
    assert sorted(trace_names(fig)) == sorted(
        [f"{ramp_run.name}: oracle", f"{ramp_run.name}: oracle interval",
         f"{base_run.name}: random", f"{base_run.name}: random interval"]
    )  # fmt: skip
    # the app writes the same view back into the URL (defaults left out)
    assert at.query_params == {k: v for k, v in query.items()}


def test_the_url_follows_every_choice(two_runs, base_run, ramp_run, monkeypatch):
    """Changing widgets rewrites the URL; values of pages not shown stay in it."""
    at = open_app(two_runs, monkeypatch, "Compare")
    assert at.query_params == {"page": "Compare", "runs": ramp_run.name,
                               "metrics": ["engagement/ctr", "exposure/gini",
                                           "source/aigc_exposure_share"]}  # fmt: skip
    at.sidebar.radio(key="interval").set_value("t").run()
    at.sidebar.selectbox(key="smooth-method").set_value("ema").run()
    at.sidebar.slider(key="smooth-weight").set_value(0.8).run()
    at.multiselect(key="compare-metrics").set_value(["exposure/coverage"]).run()
    assert at.query_params["interval"] == "t"
    assert at.query_params["smooth"] == "ema:0.8"
    assert at.query_params["metrics"] == "exposure/coverage"
    at.sidebar.radio(key="page").set_value("Runs").run()
    assert at.query_params["metrics"] == "exposure/coverage" and "page" not in at.query_params
    at.sidebar.radio(key="page").set_value("Compare").run()
    assert at.multiselect(key="compare-metrics").value == ["exposure/coverage"]
    assert at.sidebar.radio(key="interval").value == "t"


@pytest.mark.parametrize(
    "query",
    [
        {"runs": ["no-such-run"], "page": "Compare"},
        {"interval": "ci", "page": "Compare"},
        {"smooth": "ema:4", "page": "Compare"},
        {"metrics": ["no/metric"], "page": "Compare"},
        {"page": "Nowhere"},
        {"baseline": "nobody", "layout": "gone", "page": "Compare"},
    ],
)
def test_a_stale_or_hand_edited_url_falls_back_to_defaults(two_runs, monkeypatch, query):
    """Unknown runs, metrics, agents or values in the URL are dropped, never an error."""
    page = query["page"] if query["page"] != "Nowhere" else "Runs"
    at = open_app(two_runs, monkeypatch, page, query)
    assert not at.exception and not at.error
    assert at.sidebar.radio(key="page").value == page
    if "runs" in query:
        assert at.sidebar.multiselect(key="runs-selected").value == []
        assert any("Select one or more runs" in i.value for i in at.info)
    elif page == "Compare":
        assert at.sidebar.radio(key="interval").value == "se"
        assert at.sidebar.selectbox(key="smooth-method").value == "off"
        assert at.multiselect(key="compare-metrics").value == [
            "engagement/ctr",
            "exposure/gini",
            "source/aigc_exposure_share",
        ]
        assert at.selectbox(key="baseline").value == ""
        assert figures(at)


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
    assert creators["layout"]["title"]["text"].startswith("Active creators (not exited)")
    assert at.select_slider(key="lorenz-step").options == [
        "after 4 steps", "after 8 steps", "after 12 steps"
    ]  # fmt: skip
    assert at.select_slider(key="lorenz-step").value == 12
    names = trace_names(lorenz)
    assert names[0] == "equality" and len(names) == 5
    assert names[1].startswith("random seed 0 (Gini 0.")
    curve = lorenz["data"][1]
    assert values(curve["x"])[0] == 0 and values(curve["y"])[-1] == pytest.approx(1.0)
    at.select_slider(key="lorenz-step").set_value(4).run()
    assert not at.exception and len(figures(at)) == 3
    assert len(at.get("download_button")) == 3


def test_agent_colours_are_the_same_on_every_page_and_run(
    two_runs, base_run, ramp_run, monkeypatch
):
    """An agent has one colour in both runs on Compare, and in creators and Lorenz curves."""
    at = open_app(two_runs, monkeypatch, "Compare")
    select_runs(at, [base_run.name, ramp_run.name])
    fig = figures(at)[0]
    pop_base = trace(fig, f"{base_run.name}: popularity")["line"]["color"]
    pop_ramp = trace(fig, f"{ramp_run.name}: popularity")["line"]["color"]
    random = trace(fig, f"{base_run.name}: random")["line"]["color"]
    oracle = trace(fig, f"{ramp_run.name}: oracle")["line"]["color"]
    assert pop_base == pop_ramp and len({pop_base, random, oracle}) == 3
    at.sidebar.radio(key="page").set_value("Ecosystem").run()
    for run_id in (base_run.name, ramp_run.name):
        at.selectbox(key="eco-run").set_value(run_id).run()
        _, creators, lorenz = figures(at)
        assert trace(creators, "popularity: human")["line"]["color"] == pop_base
        assert trace(creators, "popularity: AIGC")["line"]["color"] == pop_base
        pops = [t for t in lorenz["data"] if t["name"].startswith("popularity seed")]
        assert pops and {t["line"]["color"] for t in pops} == {pop_base}
    oracle_lorenz = [t for t in lorenz["data"] if t["name"].startswith("oracle seed")]
    assert {t["line"]["color"] for t in oracle_lorenz} == {oracle}


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
    assert any("has no snapshots (none saved yet)" in i.value for i in at.info)
    (shares,) = figures(at)
    assert trace_names(shares) == ["human", "AIGC"]


# ---------------------------------------------------------------------- Users
def test_users_projects_interests_at_chosen_steps(runs_dir, monkeypatch):
    """The 2-D projection has one scatter per chosen snapshot step of the chosen trial."""
    at = open_app(runs_dir, monkeypatch, "Users")
    steps = at.multiselect(key="users-steps")
    assert steps.options == ["after 4 steps", "after 8 steps", "after 12 steps"]
    assert steps.value == [4, 8, 12]
    (fig,) = figures(at)
    assert trace_names(fig) == ["after 4 steps", "after 8 steps", "after 12 steps"]
    assert len(values(fig["data"][0]["x"])) == 50  # output.snapshot_users
    at.selectbox(key="users-trial").set_value(3).run()
    steps = at.multiselect(key="users-steps").set_value([12])
    at.run()
    (fig,) = figures(at)
    assert trace_names(fig) == ["after 12 steps"]
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
