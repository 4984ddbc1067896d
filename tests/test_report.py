"""Tests of ``simlab.report`` and ``simlab report`` on a small real run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from simlab.cli import main
from simlab.errors import RegistryError, RunStoreError, SimlabError
from simlab.report import DERIVED_HOMOGENIZATION, build_report, t_quantile
from simlab.runner import run_scenario
from simlab.scenario import parse_scenario

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A real run: popularity and the oracle, 2 seeds, 200 users, 8 steps."""
    scenario = parse_scenario(
        {
            "name": "report-test",
            "steps": 8,
            "seeds": 2,
            "world": {"dim": 8, "num_topics": 4},
            "users": {"model": "logit", "num_users": 200, "drift_rate": 0.05},
            "content": {
                "model": "creators",
                "items_per_step": 10,
                "initial_items": 100,
                "phases": [{"until": 4, "aigc_share": 0.0}, {"aigc_share": 0.5}],
            },
            "platform": {"slate_size": 5, "retrain_every": 2},
            "agents": [{"model": "popularity", "name": "pop"}, {"model": "oracle"}],
            "execution": {"backend": "local"},
            "output": {"checkpoint_every": 0},
        }
    )
    store = run_scenario(scenario, out_dir=tmp_path_factory.mktemp("runs"))
    return store.path


def _last_homogenization(df, agent: str) -> np.ndarray:
    """Per seed (sorted), the agent's homogenization at its last step."""
    g = df[df["agent"] == agent].sort_values(["seed", "step"])
    return g.groupby("seed")["echo/homogenization"].last().to_numpy()


def test_derived_oracle_column_is_difference_of_means(run_dir, tmp_path):
    """The derived column equals mean(agent) - mean(oracle) of last-step homogenization."""
    from simlab.store import read_metrics

    rep = build_report(run_dir, out_dir=tmp_path)
    assert rep.oracle == "oracle"
    assert DERIVED_HOMOGENIZATION in rep.metrics
    df = read_metrics(run_dir)
    pop, orc = _last_homogenization(df, "pop"), _last_homogenization(df, "oracle")
    row = rep.summary.set_index("agent")
    assert row.loc["pop", DERIVED_HOMOGENIZATION] == pytest.approx(pop.mean() - orc.mean())
    assert row.loc["pop", f"{DERIVED_HOMOGENIZATION} sd"] == pytest.approx((pop - orc).std(ddof=1))
    assert row.loc["oracle", DERIVED_HOMOGENIZATION] == 0.0
    assert row.loc["pop", "seeds"] == 2
    assert pop.mean() != orc.mean()  # the check is not vacuous


def test_figures_are_png_files(run_dir, tmp_path):
    """One valid, non-empty PNG per reported metric, plus report.md and summary.csv."""
    rep = build_report(run_dir, out_dir=tmp_path)
    assert "engagement/ctr" in rep.metrics and "source/bias_ratio" in rep.metrics
    assert len(rep.figures) == len(rep.metrics)
    for path in rep.figures:
        data = path.read_bytes()
        assert data[:8] == PNG_SIGNATURE and len(data) > 1000, path
    assert (tmp_path / "engagement_ctr.png") in rep.figures
    md = rep.markdown.read_text(encoding="utf-8")
    assert "oracle (privileged)" in md and "](engagement_ctr.png)" in md
    assert rep.csv.read_text(encoding="utf-8").startswith("agent,")


def test_default_folder_and_metric_selection(run_dir):
    """Without --out the report goes to <run>/report; --metrics picks and orders columns."""
    rep = build_report(run_dir, metrics=["exposure/gini", "echo/homogenization"])
    assert rep.out_dir == run_dir / "report"
    assert rep.metrics == ["exposure/gini", "echo/homogenization", DERIVED_HOMOGENIZATION]
    assert sorted(p.name for p in (run_dir / "report").glob("*.png")) == [
        "echo_homogenization.png",
        "echo_homogenization_vs_oracle.png",
        "exposure_gini.png",
    ]


def test_unknown_metric_is_named(run_dir, tmp_path):
    """An unknown metric raises RegistryError with a suggestion."""
    with pytest.raises(RegistryError, match="Did you mean 'engagement/ctr'"):
        build_report(run_dir, out_dir=tmp_path, metrics=["engagement/ctrr"])


def test_corrupt_run_raises(tmp_path):
    """A corrupt manifest or a missing directory raises RunStoreError."""
    bad = tmp_path / "bad-run"
    bad.mkdir()
    (bad / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(RunStoreError, match="corrupt manifest"):
        build_report(bad)
    with pytest.raises(RunStoreError, match="no such run directory"):
        build_report(tmp_path / "missing")


def test_t_quantile():
    """t(0.975) matches tables at small and large degrees of freedom."""
    assert t_quantile(1) == pytest.approx(12.706, abs=1e-3)
    assert t_quantile(30) == pytest.approx(2.042, abs=1e-3)
    assert t_quantile(40) == pytest.approx(2.021, abs=1e-3)
    assert t_quantile(120) == pytest.approx(1.980, abs=1e-3)
    assert np.isnan(t_quantile(0))


def test_cli_report_exit_codes(run_dir, tmp_path, capsys):
    """`simlab report` prints the table and exits 0; a corrupt run exits 2 with one line."""
    out = tmp_path / "rep"
    assert main(["report", run_dir.name, "--dir", str(run_dir.parent), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert DERIVED_HOMOGENIZATION in text and "oracle (privileged)" in text
    assert (out / "report.md").exists()
    bad = tmp_path / "bad-run"
    bad.mkdir()
    (bad / "manifest.json").write_text(json.dumps({"run_id": "x"}), encoding="utf-8")
    assert main(["report", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "corrupt manifest" in err and "Traceback" not in err
    assert main(["report", run_dir.name, "--dir", str(run_dir.parent), "--metrics", "nope"]) == 2


# ---------------------------------------------------------------------- intervals and smoothing
def _by_hand(run_dir, metric: str, agent: str):
    """Per step: mean, sample sd and seeds of ``metric`` for ``agent``."""
    from simlab.store import read_metrics

    df = read_metrics(run_dir)
    g = df[df["agent"] == agent].groupby("step")[metric]
    return g.mean().to_numpy(), g.std().to_numpy(), g.count().to_numpy()


@pytest.mark.parametrize(
    ("interval", "factor"),
    [("se", lambda n: 1 / np.sqrt(n)), ("sd", lambda n: np.ones_like(n, dtype=float)),
     ("t", lambda n: np.array([t_quantile(int(k) - 1) for k in n]) / np.sqrt(n))],
)  # fmt: skip
def test_figure_bands_follow_the_interval_and_are_clipped(run_dir, tmp_path, interval, factor):
    """The plotted band is mean ± the chosen half-width, clipped to the share's [0, 1]."""
    metric = "source/aigc_exposure_share"
    rep = build_report(run_dir, out_dir=tmp_path, metrics=[metric], interval=interval)
    band = rep.bands[metric]
    oracle = band[band["agent"] == "oracle"]
    mean, sd, n = _by_hand(run_dir, metric, "oracle")
    half = sd * factor(n)
    np.testing.assert_allclose(oracle["mean"], mean, atol=1e-12)
    np.testing.assert_allclose(oracle["lo"], np.maximum(mean - half, 0.0), atol=1e-12)
    np.testing.assert_allclose(oracle["hi"], np.minimum(mean + half, 1.0), atol=1e-12)
    if interval == "t":
        assert (mean + half > 1.0).any() or (mean - half < 0.0).any()  # clipping did happen
    md = rep.markdown.read_text(encoding="utf-8")
    assert {"se": "±1 standard error", "sd": "±1 standard deviation",
            "t": "95% Student-t interval"}[interval] in md  # fmt: skip


def test_every_seed_interval_and_smoothing(run_dir, tmp_path):
    """'seeds' plots no band; smoothing averages each seed's smoothed curve."""
    from simlab.store import read_metrics

    metric = "engagement/ctr"
    rep = build_report(run_dir, out_dir=tmp_path, metrics=[metric], interval="seeds",
                       smooth="rolling:3")  # fmt: skip
    pop = rep.bands[metric][rep.bands[metric]["agent"] == "pop"]
    assert (pop["lo"] == pop["mean"]).all() and (pop["hi"] == pop["mean"]).all()
    df = read_metrics(run_dir)
    df = df[df["agent"] == "pop"].sort_values(["seed", "step"])
    rolled = df.groupby("seed")[metric].transform(lambda s: s.rolling(3, min_periods=1).mean())
    np.testing.assert_allclose(pop["mean"], rolled.groupby(df["step"]).mean(), atol=1e-12)
    assert "rolling mean of 3 steps" in rep.markdown.read_text(encoding="utf-8")
    # the summary table is never smoothed
    plain = build_report(run_dir, out_dir=tmp_path / "plain", metrics=[metric])
    assert rep.summary[metric].tolist() == plain.summary[metric].tolist()


def test_few_seeds_are_flagged(run_dir, tmp_path):
    """Two seeds: a note in the result and report.md naming every series."""
    rep = build_report(run_dir, out_dir=tmp_path, metrics=["engagement/ctr"])
    assert rep.note and "pop (2 seeds)" in rep.note and "oracle (privileged) (2 seeds)" in rep.note
    assert f"**Note.** {rep.note}" in rep.markdown.read_text(encoding="utf-8")


def test_bad_interval_and_smoothing_are_usage_errors(run_dir, tmp_path, capsys):
    """One `error:` line per bad flag, exit 2, nothing written."""
    args = ["report", str(run_dir), "--out", str(tmp_path / "r"), "--interval", "ci",
            "--smooth", "ema:1.5"]  # fmt: skip
    assert main(args) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line]
    assert err == [
        "error: --interval: unknown interval 'ci'. Allowed: se, sd, t, seeds (standard error, "
        "standard deviation, Student t, every seed's line)",
        "error: --smooth: EMA weight 1.5 is outside [0, 1). Allowed: off, ema[:WEIGHT] with "
        "0 <= WEIGHT < 1, or rolling[:WINDOW] with WINDOW >= 1",
    ]
    assert not (tmp_path / "r").exists()
    with pytest.raises(SimlabError, match="smooth: unknown smoothing 'gauss'"):
        build_report(run_dir, out_dir=tmp_path, smooth="gauss")
    assert main(["report", str(run_dir), "--out", str(tmp_path / "ok"), "--interval", "t",
                 "--smooth", "ema:0.5"]) == 0  # fmt: skip
    assert "note: Fewer than 3 seeds" in capsys.readouterr().out


# ---------------------------------------------------------------------- variants, pooled tables
@pytest.fixture(scope="module")
def variant_run(tmp_path_factory):
    """Two agents x two variants (a phase schedule; creators adopting AIGC), 3 seeds."""
    return make_variant_run(tmp_path_factory.mktemp("runs"))


def make_variant_run(out):
    """The run of :func:`variant_run` under ``out``; returns its path."""
    from conftest import make_small

    scenario = make_small(
        ("content.phases", [{"until": 6, "aigc_share": 0.1}, {"aigc_share": 0.6, "ramp": 2}]),
        ("content.adoption", {"baseline_share": 0.4, "sensitivity": 2.0, "revise_rate": 0.3}),
        ("variants", {"sched": {}, "adopt": {"content.production": "adoption",
                                             "content.phases": None}}),
        ("metrics", ["engagement", "source", "creators"]),
        ("agents", [{"model": "popularity", "name": "pop"}, {"model": "random"}]),
        ("output.checkpoint_every", 0),
        steps=14,
        seeds=3,
    )  # fmt: skip
    return run_scenario(scenario, out_dir=out).path


def test_report_has_a_table_per_variant_and_pooled_tables(variant_run, tmp_path, capsys):
    """One summary table per sweep point (agents as columns); pooled windows per point."""
    import pandas as pd

    rep = build_report(variant_run, out_dir=tmp_path / "r", baseline="random")
    md = rep.markdown.read_text(encoding="utf-8")
    for point in ("variant=sched", "variant=adopt"):
        section = md.split(f"### {point}\n\n", 1)[1]
        header = section.splitlines()[0]
        assert header == "| metric | pop | random |"
    assert [g[0] for g in rep.groups()] == ["variant=sched", "variant=adopt"]
    bias = pd.read_csv(tmp_path / "r" / "source_bias_by_window.csv")
    windows = {v: list(dict.fromkeys(g["window"])) for v, g in bias.groupby("variant")}
    warm = 3  # retrain_every 3, deploy_lag 1: the first model serves at step 3
    assert windows["sched"] == ["phase 1 (AIGC 0.1)", "phase 2 (AIGC 0.6)"]
    # without phases: quarters of the steps after the warm-up, in order, covering them all
    spans = [tuple(int(x) for x in w.split()[1].split("-")) for w in windows["adopt"]]
    assert len(spans) == 4
    assert [s for a, b in spans for s in range(a, b + 1)] == list(range(warm, 14))
    assert (bias[bias["agent"] == "random"]["diff"] == 0).all()
    tips = pd.read_csv(tmp_path / "r" / "tipping_point.csv")
    assert set(tips["variant"]) == {"adopt"} and set(tips["agent"]) == {"pop", "random"}
    assert ((tips["value"] >= warm) & (tips["value"] <= 14)).all()
    assert "counts as the run's length" in md and "lower bound" in md
    assert (
        main(["report", str(variant_run), "--out", str(tmp_path / "c"), "--baseline", "random"])
        == 0
    )
    out = capsys.readouterr().out
    assert out.count("variant=sched") >= 2 and out.count("variant=adopt") >= 3
    assert "tipping point" in out and "/3" in out


def _short_run(tmp_path, steps: int, retrain_every: int, deploy_lag: int, seeds: int):
    scenario = parse_scenario(
        {
            "name": "short",
            "steps": steps,
            "seeds": seeds,
            "world": {"dim": 4, "num_topics": 4},
            "users": {"model": "logit", "num_users": 40},
            "content": {"model": "creators", "items_per_step": 5, "initial_items": 30},
            "platform": {"slate_size": 3, "retrain_every": retrain_every, "deploy_lag": deploy_lag},
            "metrics": ["engagement", "source"],
            "agents": [{"model": "popularity"}, {"model": "random"}],
            "execution": {"backend": "local"},
            "output": {"checkpoint_every": 0},
        }
    )
    return run_scenario(scenario, out_dir=tmp_path / f"s{steps}-{retrain_every}-{deploy_lag}")


@pytest.mark.parametrize(
    ("steps", "retrain_every", "deploy_lag", "seeds"),
    [(1, 1, 1, 1), (2, 2, 1, 2), (3, 2, 2, 1), (5, 5, 1, 3), (5, 3, 3, 2), (6, 5, 1, 2)],
)
def test_a_run_within_its_warmup_reports_with_a_note(
    tmp_path, capsys, steps, retrain_every, deploy_lag, seeds
):
    """A run no longer than its warm-up reports, with a note on its empty step means.

    The warm-up is ``retrain_every - 1 + deploy_lag`` steps: ``show`` and ``report`` still
    work, the pooled window table is left out and a note says why the means are empty; a
    run one step longer has neither the note nor NaNs.
    """
    store = _short_run(tmp_path, steps, retrain_every, deploy_lag, seeds)
    within = steps <= retrain_every - 1 + deploy_lag
    rep = build_report(store.path, out_dir=tmp_path / "rep")
    assert ("source bias by window" in rep.tables) == (not within)
    assert (rep.warmup_note is not None) == within
    means = rep.summary["engagement/ctr"].to_numpy(float)
    assert np.isnan(means).all() == within and np.isfinite(means).all() == (not within)
    markdown = rep.markdown.read_text()
    assert ("is warm-up" in markdown) == within
    for command in (["show", str(store.path)], ["report", str(store.path)]):
        assert main(command) == 0
        out = capsys.readouterr().out
        assert ("note: Every step of popularity, random is warm-up" in out) == within, out


def test_report_table_is_the_show_table_after_the_warmup(run_dir, tmp_path):
    """The report's step means leave out the warm-up, as ``simlab show`` (summarize) does."""
    from simlab.store import open_run, read_metrics, summarize

    store = open_run(run_dir)
    assert {t["warmup"] for t in store.manifest["trials"]} == {2}
    rep = build_report(run_dir, out_dir=tmp_path)
    shown = summarize(read_metrics(run_dir), store.manifest).set_index("agent")
    table = rep.summary.set_index("agent")
    df = read_metrics(run_dir)
    for metric in rep.metrics:
        if metric in shown.columns:
            np.testing.assert_array_equal(table[metric], shown[metric].loc[table.index], metric)
    # and it differs from the mean over every step for a per-step metric
    every = df.groupby(["agent", "seed"])["engagement/ctr"].mean().groupby("agent").mean()
    assert not np.allclose(table["engagement/ctr"], every.loc[table.index])
