"""AppTest tests of the Compare page: intervals, smoothing, multi-run views, differences, grid."""

from __future__ import annotations

import json
import shutil

import dash_fixtures
import numpy as np
import pandas as pd
import pytest
from dash_fixtures import (
    figures,
    open_app,
    phase_labels,
    phase_rects,
    select_runs,
    trace,
    trace_names,
    values,
    warmup_rects,
)

from simlab.intervals import t_quantile
from simlab.store import read_metrics

base_run = dash_fixtures.base_run
ramp_run = dash_fixtures.ramp_run
runs_dir = dash_fixtures.runs_dir
two_runs = dash_fixtures.two_runs


def compare(folder, monkeypatch, metrics: list[str], **query) -> object:
    """Compare over the runs in ``folder`` with ``metrics`` and URL values ``query``."""
    return open_app(
        folder, monkeypatch, "Compare", {"page": "Compare", "metrics": metrics, **query}
    )


def by_hand(run, metric: str, agent: str) -> pd.DataFrame:
    """Per step: mean, sample sd and seeds of ``metric`` for ``agent`` from the stored rows."""
    df = read_metrics(run)
    g = df[df["agent"] == agent].groupby("step")[metric]
    return pd.DataFrame({"mean": g.mean(), "sd": g.std(), "n": g.count()})


def band(fig: dict, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(lo, hi)`` per step of a band trace (drawn hi forward, lo backward)."""
    y = np.array(values(trace(fig, f"{name} interval")["y"]), dtype=float)
    half = len(y) // 2
    return y[half:][::-1], y[:half]


# ---------------------------------------------------------------------- intervals
@pytest.mark.parametrize(
    ("interval", "factor"),
    [("se", lambda n: 1 / np.sqrt(n)), ("sd", lambda n: 1.0),
     ("t", lambda n: np.array([t_quantile(int(k) - 1) for k in n]) / np.sqrt(n))],
)  # fmt: skip
def test_interval_choice_sets_the_band_clipped_to_the_range(
    runs_dir, base_run, monkeypatch, interval, factor
):
    """Standard error (default), sd and t bands match the rows by hand, clipped to [0, 1]."""
    metric = "source/aigc_exposure_share"
    query = {} if interval == "se" else {"interval": interval}
    at = compare(runs_dir, monkeypatch, [metric], **query)
    assert at.sidebar.radio(key="interval").value == interval
    (fig,) = figures(at)
    ref = by_hand(base_run, metric, "random")
    half = ref["sd"].to_numpy() * factor(ref["n"].to_numpy())
    lo, hi = band(fig, "random")
    np.testing.assert_allclose(lo, np.maximum(ref["mean"] - half, 0.0), atol=1e-12)
    np.testing.assert_allclose(hi, np.minimum(ref["mean"] + half, 1.0), atol=1e-12)
    np.testing.assert_allclose(values(trace(fig, "random")["y"]), ref["mean"], atol=1e-12)
    if interval == "t":  # the clipping is not vacuous: the raw t band leaves [0, 1]
        assert (ref["mean"] - half < 0).any()
    title = fig["layout"]["title"]["text"]
    assert {"se": "±1 standard error", "sd": "±1 standard deviation",
            "t": "95% Student-t interval"}[interval] in title  # fmt: skip


def test_every_seed_line(runs_dir, base_run, monkeypatch):
    """'every seed's line' draws each seed's own curve and no band."""
    at = compare(runs_dir, monkeypatch, ["engagement/ctr"], interval="seeds")
    (fig,) = figures(at)
    names = trace_names(fig)
    assert not [n for n in names if n.endswith("interval")]
    assert names == ["random seed 0", "random seed 1", "random",
                     "popularity seed 0", "popularity seed 1", "popularity"]  # fmt: skip
    df = read_metrics(base_run)
    seed1 = df[(df["agent"] == "popularity") & (df["seed"] == 1)].sort_values("step")
    np.testing.assert_allclose(
        values(trace(fig, "popularity seed 1")["y"]), seed1["engagement/ctr"]
    )


def test_few_seeds_note_only_below_three(two_runs, base_run, ramp_run, monkeypatch):
    """Series with 2 seeds get a visible note naming them; those of a 3-seed run do not."""
    at = compare(two_runs, monkeypatch, ["engagement/ctr"], runs=[base_run.name])
    (note,) = [w.value for w in at.warning]
    assert "Fewer than 3 seeds" in note
    assert "random (2 seeds)" in note and "popularity (2 seeds)" in note
    select_runs(at, [ramp_run.name])
    assert not at.warning
    select_runs(at, [ramp_run.name, base_run.name])
    (note,) = [w.value for w in at.warning]
    assert f"{base_run.name}: random (2 seeds)" in note and ramp_run.name not in note


# ---------------------------------------------------------------------- smoothing
@pytest.mark.parametrize(
    ("spec", "smooth"),
    [
        ("rolling:3", lambda s: s.rolling(3, min_periods=1).mean()),
        ("ema:0.5", lambda s: s.ewm(alpha=0.5, adjust=True).mean()),
    ],
)
def test_smoothing_each_seed_before_the_mean(runs_dir, base_run, monkeypatch, spec, smooth):
    """The line is the mean over seeds of each seed's smoothed curve; off by default."""
    metric = "engagement/ctr"
    at = compare(runs_dir, monkeypatch, [metric])
    assert at.sidebar.selectbox(key="smooth-method").value == "off"
    at = compare(runs_dir, monkeypatch, [metric], smooth=spec)
    df = read_metrics(base_run)
    df = df[df["agent"] == "popularity"].sort_values(["seed", "step"])
    smoothed = df.groupby("seed")[metric].transform(smooth)
    expected = smoothed.groupby(df["step"]).mean()
    (fig,) = figures(at)
    np.testing.assert_allclose(values(trace(fig, "popularity")["y"]), expected, atol=1e-12)
    assert not np.allclose(expected, df.groupby("step")[metric].mean())  # it did smooth


def test_smoothing_widgets(runs_dir, monkeypatch):
    """Choosing EMA or rolling shows its parameter and changes the chart's subtitle."""
    at = compare(runs_dir, monkeypatch, ["engagement/ctr"])
    at.sidebar.selectbox(key="smooth-method").set_value("rolling").run()
    at.sidebar.number_input(key="smooth-window").set_value(4).run()
    assert "rolling mean of 4 steps" in figures(at)[0]["layout"]["title"]["text"]
    at.sidebar.selectbox(key="smooth-method").set_value("ema").run()
    assert at.sidebar.slider(key="smooth-weight").value == pytest.approx(0.6)
    assert "EMA, weight 0.6" in figures(at)[0]["layout"]["title"]["text"]


# ---------------------------------------------------------------------- several runs
BASE_SPANS = [(-0.5, 3.5), (3.5, 7.5), (7.5, 11.5)]
# the ramp run: 0-2 human, 3-9 a 4-step ramp to 50% (one rect per ramp step), 10-15 100%
RAMP_SPANS = [(-0.5, 2.5), (2.5, 3.5), (3.5, 4.5), (4.5, 5.5), (5.5, 6.5), (6.5, 9.5),
              (9.5, 15.5)]  # fmt: skip


def test_two_runs_each_with_its_own_phases(two_runs, base_run, ramp_run, monkeypatch):
    """Default layout: one panel per run, each shaded with its own phases, ramps drawn."""
    at = compare(two_runs, monkeypatch, ["engagement/ctr"], runs=[base_run.name, ramp_run.name])
    (fig,) = figures(at)
    assert phase_rects(fig, "x") == BASE_SPANS
    assert phase_rects(fig, "x2") == RAMP_SPANS
    assert phase_labels(fig) == [
        "human-dominated 0%", "coexisting 30%", "AIGC-dominated 80%",
        "human-dominated 0%", "coexisting 50% (ramp 4)", "AIGC-dominated 100%",
    ]  # fmt: skip
    rects = [
        s for s in fig["layout"]["shapes"] if s["type"] == "rect" and s.get("name") != "warm-up"
    ]
    fills = [s["fillcolor"] for s in rects if s["xref"] == "x2"]
    # the ramp climbs 0.125, 0.25, 0.375, 0.5 (its last step has the phase's share): 6 shades
    assert len(fills) == 7 and len(set(fills)) == 6 and fills[4] == fills[5]
    base_fills = [s["fillcolor"] for s in rects if s["xref"] == "x"]
    assert len(set(base_fills)) == 3
    boundaries = sorted(s["x0"] for s in fig["layout"]["shapes"] if s["type"] == "line")
    assert boundaries == [2.5, 3.5, 7.5, 9.5]
    titles = [
        a["text"]
        for a in fig["layout"]["annotations"]
        if "%" not in a["text"] and a["text"] != "warm-up"
    ]
    assert titles == [base_run.name, ramp_run.name]
    # one dash per run, one colour per agent
    assert trace(fig, f"{base_run.name}: popularity")["line"]["dash"] == "solid"
    assert trace(fig, f"{ramp_run.name}: popularity")["line"]["dash"] == "dash"
    assert trace(fig, f"{ramp_run.name}: oracle")["xaxis"] == "x2"
    assert values(trace(fig, f"{ramp_run.name}: oracle")["x"]) == list(range(16))


@pytest.mark.parametrize("warmups", [(3, 0), (0, 5), (2, 7)])
def test_warm_up_steps_are_shaded_per_run(two_runs, base_run, ramp_run, monkeypatch, warmups):
    """Each run's panel shades its own warm-up (before the first retrained model serves)."""
    for run, warm in zip((base_run, ramp_run), warmups, strict=True):
        path = two_runs / run.name / "manifest.json"
        manifest = json.loads(path.read_text(encoding="utf-8"))
        for t in manifest["trials"]:
            t["warmup"] = warm
        path.write_text(json.dumps(manifest), encoding="utf-8")
    at = compare(two_runs, monkeypatch, ["engagement/ctr"], runs=[base_run.name, ramp_run.name])
    (fig,) = figures(at)
    expected = {
        xref: (-0.5, warm - 0.5) for xref, warm in zip(("x", "x2"), warmups, strict=True) if warm
    }
    assert warmup_rects(fig) == expected
    labels = [a["text"] for a in fig["layout"]["annotations"] if a["text"] == "warm-up"]
    assert len(labels) == len(expected)


@pytest.mark.parametrize(("reference", "spans"), [("ramp", RAMP_SPANS), ("base", None)])
def test_one_panel_with_a_chosen_phase_reference(
    two_runs, base_run, ramp_run, monkeypatch, reference, spans
):
    """Overlaying the runs shades the reference run's phases over every step shown."""
    ref = {"ramp": ramp_run, "base": base_run}[reference]
    at = compare(two_runs, monkeypatch, ["engagement/ctr"], runs=[base_run.name, ramp_run.name])
    at.selectbox(key="phase-layout").set_value(ref.name).run()
    (fig,) = figures(at)
    assert "xaxis2" not in fig["layout"]
    # the base run's last phase reaches the end of the longer run (16 steps), not step 12
    assert phase_rects(fig) == (spans or [(-0.5, 3.5), (3.5, 7.5), (7.5, 15.5)])
    assert len([n for n in trace_names(fig) if not n.endswith("interval")]) == 4


def test_difference_to_a_baseline_paired_by_seed(runs_dir, base_run, monkeypatch):
    """Popularity minus random, per seed and step, then mean and interval over seeds."""
    metric = "engagement/ctr"
    at = compare(runs_dir, monkeypatch, [metric])
    assert at.selectbox(key="baseline").options == ["(none: plain values)", "random", "popularity"]
    at.selectbox(key="baseline").set_value("random").run()
    (fig,) = figures(at)
    assert trace_names(fig) == ["popularity interval", "popularity"]
    df = read_metrics(base_run).set_index(["agent", "seed", "step"])[metric]
    diff = (df["popularity"] - df["random"]).groupby(level="step")
    np.testing.assert_allclose(values(trace(fig, "popularity")["y"]), diff.mean(), atol=1e-12)
    lo, hi = band(fig, "popularity")
    half = diff.std() / np.sqrt(2)
    np.testing.assert_allclose(hi, np.minimum(diff.mean() + half, 1.0), atol=1e-12)
    np.testing.assert_allclose(lo, np.maximum(diff.mean() - half, -1.0), atol=1e-12)
    assert fig["layout"]["yaxis"]["title"]["text"] == f"{metric} − random"
    assert any("paired by seed and step" in c.value for c in at.caption)
    assert at.query_params["baseline"] == "random"


def test_difference_across_runs_uses_the_agents_they_share(
    two_runs, base_run, ramp_run, monkeypatch
):
    """Only agents of every selected run are offered; each run differs within itself."""
    at = compare(two_runs, monkeypatch, ["engagement/ctr"], runs=[base_run.name, ramp_run.name])
    assert at.selectbox(key="baseline").options == ["(none: plain values)", "popularity"]
    at.selectbox(key="baseline").set_value("popularity").run()
    (fig,) = figures(at)
    means = [n for n in trace_names(fig) if not n.endswith("interval")]
    assert means == [f"{base_run.name}: random", f"{ramp_run.name}: oracle"]


def test_two_runs_and_a_missing_metric(runs_dir, base_run, monkeypatch):
    """Two runs give a line per run and agent; a run without a metric gets a warning.

    ``older-run`` has the column, never measured (NaN); the other run lacks it altogether.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from simlab.store import open_run

    other = runs_dir / "older-run"
    shutil.copytree(base_run, other)
    rows = open_run(other).read_metrics().assign(**{"diversity/intra_list": float("nan")})
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["metric_columns"].append("diversity/intra_list")
    (other / "manifest.json").write_text(json.dumps(manifest))
    schema = open_run(other).schema()
    for part in (other / "metrics.parquet").glob("*.parquet"):
        part.unlink()
    for t, g in rows.groupby("trial"):  # one part per trial, the column in every part
        table = pa.Table.from_pandas(g, schema=schema, preserve_index=False)
        pq.write_table(table, other / "metrics.parquet" / f"part-{t:05d}-000000.parquet")
    at = compare(runs_dir, monkeypatch, ["engagement/ctr", "diversity/intra_list"],
                 runs=[base_run.name, "older-run"])  # fmt: skip
    names = [n for n in trace_names(figures(at)[0]) if "interval" not in n]
    assert names == [f"{base_run.name}: random", f"{base_run.name}: popularity",
                     "older-run: random", "older-run: popularity"]  # fmt: skip
    warnings = [w.value for w in at.warning if "no values" in w.value]
    assert warnings == [
        f"Run {base_run.name} has no values for diversity/intra_list.",
        "Run older-run has no values for diversity/intra_list.",
    ]


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


# ---------------------------------------------------------------------- grid
def test_metrics_grid_grouped_by_prefix(runs_dir, base_run, monkeypatch):
    """All metrics: one collapsible group per prefix, in page order, charts in columns."""
    at = open_app(runs_dir, monkeypatch, "Compare")
    assert [e.label for e in at.expander] == ["engagement (1 metric)", "exposure (1 metric)",
                                              "source (1 metric)"]  # fmt: skip
    at.button(key="metrics-all").click().run()
    labels = [e.label for e in at.expander]
    assert labels == [
        "engagement (2 metrics)",
        "echo (1 metric)",
        "exposure (2 metrics)",
        "source (14 metrics)",
        "creators (5 metrics)",
        "users (1 metric)",
    ]
    # source/llm_ratio is NaN throughout (no rewrites): a warning instead of an empty chart
    assert len(figures(at)) == 24
    assert [w.value for w in at.warning if "no values" in w.value] == [
        f"Run {base_run.name} has no values for source/llm_ratio."
    ]
    source = at.expander[3]
    assert len(source.get("plotly_chart")) == 13
    assert len(source.columns) == 2  # two charts per row by default
    at.selectbox(key="grid-cols").set_value("3").run()
    assert len(at.expander[3].columns) == 3
    at.button(key="metrics-key").click().run()
    assert at.multiselect(key="compare-metrics").value == [
        "engagement/ctr", "exposure/gini", "source/aigc_exposure_share"]  # fmt: skip
