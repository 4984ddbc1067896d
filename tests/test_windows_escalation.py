"""``simlab report``'s escalation table and its sweep-point baselines (``--baseline COL=VAL``).

The escalation is checked against plain loops over trials on random pooled values (with
missing and partial windows), the point baseline against a by-hand pairing of seeds across
sweep points, and ``--baseline`` against every class of wrong value.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from simlab import windows as W
from simlab.cli import main
from simlab.errors import RegistryError
from simlab.report import build_report
from simlab.runner import run_scenario


def _pooled(rng, trials: int, windows: list[W.Window]) -> pd.DataFrame:
    """Random pooled rows; some (trial, window) missing, some partial, a few NaN values."""
    rows = []
    for t, w in itertools.product(range(trials), windows):
        if rng.uniform() < 0.15:
            continue  # the trial never reached this window
        value = np.nan if rng.uniform() < 0.05 else float(rng.normal(0, 2))
        rows.append({"trial": t, "window": w.name, "value": value,
                     "partial": bool(rng.uniform() < 0.2)})  # fmt: skip
    return pd.DataFrame(rows).sample(frac=1.0, random_state=int(rng.integers(1000)))


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("count", [2, 3, 5])
def test_escalation_is_last_window_minus_first_per_trial(seed, count):
    """Per trial: value(last) - value(first); both windows needed; partial if either is."""
    rng = np.random.default_rng(seed)
    windows = [W.Window(f"w{i}", 3 * i, 3 * i + 3) for i in range(count)]
    pooled = _pooled(rng, 9, windows)
    got = W.escalation(pooled, windows).set_index("trial")
    first, last = windows[0].name, windows[-1].name
    assert set(got["window"]) <= {f"{first} → {last}"}
    by = {(r.trial, r.window): r for r in pooled.itertuples(index=False)}
    for t in range(9):
        a, b = by.get((t, first)), by.get((t, last))
        assert (t in got.index) == (a is not None and b is not None)
        if t in got.index:
            want = b.value - a.value
            value = got.loc[t, "value"]
            assert (np.isnan(value) and np.isnan(want)) or value == pytest.approx(want, rel=1e-12)
            assert bool(got.loc[t, "partial"]) == (a.partial or b.partial)


@pytest.mark.parametrize("count", [0, 1])
def test_escalation_needs_two_windows(count):
    """With fewer than two windows there is nothing to escalate from: no rows."""
    windows = [W.Window("only", 0, 5)][:count]
    pooled = _pooled(np.random.default_rng(count), 4, windows) if count else pd.DataFrame(
        {"trial": [], "window": [], "value": [], "partial": []}
    )  # fmt: skip
    got = W.escalation(pooled, windows)
    assert got.empty and list(got.columns) == ["trial", "window", "value", "partial"]


@pytest.mark.parametrize("seed", range(8))
def test_point_baseline_pairs_the_same_agent_seed_and_window_at_that_point(seed):
    """``diff`` = value minus the same agent's, seed's and window's value at the base point."""
    rng = np.random.default_rng(seed)
    seeds = int(rng.integers(3, 9))
    agents, points = ["a", "b"], ["base", "p1", "p2"]
    trials = pd.DataFrame(
        [{"trial": i, "agent": a, "seed": s, "variant": v}
         for i, (a, v, s) in enumerate(itertools.product(agents, points, range(seeds)))]
    )  # fmt: skip
    windows = {"base": ["w1", "w2"], "p1": ["w1", "w2"], "p2": ["w1", "q"]}  # p2's q: no match
    per_trial = pd.concat(
        [pd.DataFrame({"trial": g["trial"], "window": w,
                       "value": rng.normal(size=len(g)) + 2 * (g["variant"] == "p1")})
         for v, g in trials.groupby("variant") for w in windows[v]]
    )  # fmt: skip
    drop = per_trial.sample(n=2, random_state=seed).index  # two trials missing a window
    per_trial = per_trial.drop(drop)
    keys = ["agent", "variant", "window"]
    out = W.summarise_over_seeds(per_trial, trials, keys, W.PointBaseline("variant", "base"))
    out = out.set_index(keys)
    mine = per_trial.merge(trials, on="trial").set_index(["agent", "variant", "window", "seed"])
    for (a, v, w), row in out.iterrows():
        diffs = [mine.loc[(a, v, w, s), "value"] - mine.loc[(a, "base", w, s), "value"]
                 for s in range(seeds)
                 if (a, v, w, s) in mine.index and (a, "base", w, s) in mine.index]  # fmt: skip
        if diffs:
            assert row["diff"] == pytest.approx(np.mean(diffs), rel=1e-9, abs=1e-12)
            assert row["diff n"] == len(diffs)
        else:
            assert np.isnan(row["diff"]) and row["diff n"] == 0
    assert (out.xs("base", level="variant")["diff"] == 0).all()
    assert np.isnan(out.loc[("a", "p2", "q"), "diff"])  # windows are matched by name
    # a baseline column the table does not have (no sweep): no differences at all
    flat = W.summarise_over_seeds(per_trial, trials, ["agent", "window"],
                                  W.PointBaseline("variant", "base"))  # fmt: skip
    assert "diff" not in flat.columns


# ---------------------------------------------------------------------------- a run


@pytest.fixture(scope="module")
def styled_run(tmp_path_factory):
    """Two agents x two variants with the same phases (their windows match), 3 seeds."""
    from conftest import make_small

    scenario = make_small(
        ("content.phases", [{"until": 7, "aigc_share": 0.1}, {"until": 11, "aigc_share": 0.5},
                            {"aigc_share": 0.9}]),
        ("variants", {"wide": {}, "narrow": {"platform.slate_size": 2}}),
        ("metrics", ["engagement", "source"]),
        ("agents", [{"model": "popularity", "name": "pop"}, {"model": "random"}]),
        ("output.checkpoint_every", 0),
        steps=16,
        seeds=3,
    )  # fmt: skip
    return run_scenario(scenario, out_dir=tmp_path_factory.mktemp("runs")).path


def test_report_escalation_and_point_baseline_match_the_window_table(styled_run, tmp_path, capsys):
    """The escalation table's values are the window table's per-trial differences, paired."""
    from simlab.scenario import load_scenario
    from simlab.store import open_run

    rep = build_report(styled_run, out_dir=tmp_path / "r", baseline="variant=wide")
    assert rep.baseline == W.PointBaseline("variant", "wide")
    run = open_run(styled_run)
    df = run.read_metrics()
    windows = W.windows_of(load_scenario(styled_run / "scenario.yaml"))
    pooled = W.pooled_bias(df, windows).merge(
        pd.DataFrame([{"trial": t["index"], "agent": t["agent"], "seed": t["seed"],
                       "variant": t["params"]["variant"]} for t in run.manifest["trials"]]),
        on="trial",
    ).set_index(["agent", "variant", "seed", "window"])["value"]  # fmt: skip
    first, last = windows[0].name, windows[-1].name
    esc = pd.read_csv(tmp_path / "r" / "source_bias_escalation.csv")
    assert set(esc["window"]) == {f"{first} → {last}"}
    for r in esc.itertuples(index=False):
        rises = [pooled[(r.agent, r.variant, s, last)] - pooled[(r.agent, r.variant, s, first)]
                 for s in range(3)]  # fmt: skip
        base = [pooled[(r.agent, "wide", s, last)] - pooled[(r.agent, "wide", s, first)]
                for s in range(3)]  # fmt: skip
        assert r.value == pytest.approx(np.mean(rises), rel=1e-9, abs=1e-12)
        assert r.diff == pytest.approx(np.mean(np.subtract(rises, base)), rel=1e-9, abs=1e-12)
    by_window = pd.read_csv(tmp_path / "r" / "source_bias_by_window.csv")
    assert (by_window[by_window["variant"] == "wide"]["diff"] == 0).all()
    md = rep.markdown.read_text(encoding="utf-8")
    assert "## Source bias escalation" in md and "`vs variant=wide`" in md
    assert "the same agent at `variant=wide`" in md
    assert main(["report", str(styled_run), "--out", str(tmp_path / "c"),
                 "--baseline", "variant=narrow"]) == 0  # fmt: skip
    printed = " ".join(capsys.readouterr().out.split())
    assert "source bias escalation" in printed and "paired diff. to variant=narrow" in printed


@pytest.mark.parametrize(
    ("baseline", "message"),
    [
        ("variant=none", "'none' is not a value of the sweep column 'variant'"),
        ("variant=", "'' is not a value of the sweep column 'variant'"),
        ("variant=Wide", "Allowed: wide, narrow"),
        ("seed=0", "is not an agent of this run, or COLUMN=VALUE of a sweep column (variant)"),
        ("platform.slate_size=2", "'platform.slate_size=2' is not an agent"),
        ("popp", "Did you mean 'pop'?"),
        ("=wide", "'=wide' is not an agent"),
        ("", "'' is not an agent"),
    ],
)
def test_a_wrong_baseline_names_what_is_allowed(styled_run, tmp_path, capsys, baseline, message):
    """Each wrong ``--baseline`` is refused naming the value and what is allowed, no report."""
    with pytest.raises(RegistryError, match="--baseline") as e:
        build_report(styled_run, out_dir=tmp_path / "r", baseline=baseline)
    assert message in str(e.value)
    assert not (tmp_path / "r").exists()  # refused before anything is written
    assert main(["report", str(styled_run), "--out", str(tmp_path / "c"),
                 "--baseline", baseline]) != 0  # fmt: skip
    assert message in " ".join(capsys.readouterr().err.split())


def test_points_whose_windows_differ_print_no_difference(tmp_path, capsys):
    """Phases at one point, quarters at the other: no pairing, so no ``(…)`` difference."""
    import pandas as pd
    from test_report import make_variant_run

    run = make_variant_run(tmp_path / "runs")
    assert main(["report", str(run), "--out", str(tmp_path / "r"), "--baseline",
                 "variant=sched"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "(-)" not in printed and "variant=adopt" in printed
    table = pd.read_csv(tmp_path / "r" / "source_bias_by_window.csv")
    assert table[table["variant"] == "adopt"]["diff"].isna().all()
    assert (table[table["variant"] == "adopt"]["diff n"] == 0).all()
    assert (table[table["variant"] == "sched"]["diff"] == 0).all()
