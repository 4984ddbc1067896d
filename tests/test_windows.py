"""Pooled measures of ``simlab report``: windows, warm-up exclusion, pooling, tipping, intervals.

Each function is checked against an independent construction (per-step labels, plain loops
over trials, scipy's t quantile) over grids of inputs, not against quoted examples.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from conftest import make_small
from scipy import stats

from simlab import windows as W
from simlab.store import summarize
from simlab.world import World

# ---------------------------------------------------------------------------- windows


def _phases(untils: list[int | None], ramps: list[int]) -> list[dict]:
    shares = [0.1, 0.5, 0.85, 0.3][: len(untils)]
    return [
        {"aigc_share": s, "until": u, "ramp": r}
        for s, u, r in zip(shares, untils, ramps, strict=True)
    ]


PHASE_GRID = [
    # (steps, untils, ramps, retrain_every, deploy_lag, startup_steps)
    (30, [10, 20, None], [0, 0, 0], 3, 1, 0),
    (30, [10, 20, None], [0, 4, 2], 5, 1, 0),
    (30, [10, 20, None], [0, 4, 2], 5, 3, 0),
    (40, [12, None], [0, 6], 2, 2, 0),
    (40, [5, 25, None], [0, 3, 0], 4, 1, 0),  # the warm-up covers phase 1 entirely
    (25, [10, 20, None], [0, 2, 2], 1, 1, 10),  # a start-up (Chaney-style)
    (60, [10, 30, 45, None], [0, 5, 5, 5], 5, 1, 0),
    (30, [10, 50, None], [0, 2, 0], 3, 1, 0),  # an ``until`` past the end of the run
    (30, [10, 20, 25], [0, 0, 0], 3, 1, 0),  # the last phase's ``until`` before the end
    (40, [12, 30], [0, 6], 2, 2, 0),  # ... which still runs to the end of the run
    (30, [10, 20, 60], [0, 4, 2], 5, 1, 0),  # ... or after it
]


def _scenario(steps, phases, every, lag, startup):
    return make_small(
        ("content.phases", phases),
        ("platform.retrain_every", every),
        ("platform.deploy_lag", lag),
        ("platform.startup_steps", startup),
        steps=steps,
    )


def _labels(steps, untils, ramps, warm):
    """Per step: the index of the phase whose window it belongs to (-1: ramp or warm-up)."""
    out, start = [], 0
    ends = [steps if u is None or i == len(untils) - 1 else min(u, steps)
            for i, u in enumerate(untils)]  # fmt: skip
    for s in range(steps):
        phase = next(i for i, e in enumerate(ends) if s < e)
        start = 0 if phase == 0 else ends[phase - 1]
        out.append(phase if s >= warm and s >= start + ramps[phase] else -1)
    return out


@pytest.mark.parametrize(("steps", "untils", "ramps", "every", "lag", "startup"), PHASE_GRID)
def test_phase_windows_leave_out_ramps_and_warm_up(steps, untils, ramps, every, lag, startup):
    """Each window holds exactly its phase's steps after the ramp and after the warm-up."""
    sc = _scenario(steps, _phases(untils, ramps), every, lag, startup)
    warm = sc.platform.warmup_steps()
    labels = _labels(steps, untils, ramps, warm)
    windows = W.windows_of(sc)
    got = {}
    for w in windows:
        assert w.start >= warm and w.end <= steps and w.start < w.end
        phase = int(w.name.split()[1]) - 1
        got[phase] = set(range(w.start, w.end))
    expected = {p: {s for s, lab in enumerate(labels) if lab == p} for p in set(labels) - {-1}}
    assert got == expected
    # in step order, disjoint
    assert all(a.end <= b.start for a, b in itertools.pairwise(windows))


@pytest.mark.parametrize(
    ("steps", "every", "lag", "startup"),
    [(30, 3, 1, 0), (90, 5, 1, 0), (17, 2, 2, 0), (100, 1, 1, 10), (12, 4, 3, 0), (41, 5, 1, 0)],
)
def test_without_phases_windows_are_quarters_after_warm_up(steps, every, lag, startup):
    """No phases (adoption, Chaney's items): four near-equal windows covering warm-up..end."""
    sc = _scenario(steps, None, every, lag, startup)
    warm = sc.platform.warmup_steps()
    windows = W.windows_of(sc)
    covered = [s for w in windows for s in range(w.start, w.end)]
    assert covered == list(range(warm, steps))
    assert len(windows) == min(4, steps - warm)
    sizes = [w.end - w.start for w in windows]
    assert max(sizes) - min(sizes) <= 1
    assert all(w.name == f"steps {w.start}-{w.end - 1}" for w in windows)


@pytest.mark.parametrize(
    ("every", "lag", "startup"),
    [(1, 1, 0), (3, 1, 0), (5, 1, 0), (3, 2, 0), (4, 3, 0), (1, 1, 4), (2, 1, 6), (3, 2, 5)],
)
def test_warm_up_is_the_step_the_first_retrained_model_serves(every, lag, startup):
    """``warmup_steps`` equals the step at which the World first hands the agent a model."""
    sc = make_small(
        ("platform.retrain_every", every),
        ("platform.deploy_lag", lag),
        ("platform.startup_steps", startup),
        agents=[{"model": "popularity"}],
        steps=16,
    )
    world = World(sc, 0, 1)
    seen: list[int] = []
    inner = world.agent.retrain

    def spy(log):
        seen.append(world.t)
        return inner(log)

    world.agent.retrain = spy
    for t in range(16):
        world.step(t)
    assert seen, "no retrain in 16 steps"
    assert seen[0] == sc.platform.warmup_steps()


# ---------------------------------------------------------------------------- pooling


def _counts(rng, trials: int, steps: int) -> pd.DataFrame:
    rows = []
    for trial in range(trials):
        for step in range(steps):
            rows.append(
                {
                    "trial": trial,
                    "step": step,
                    "source/aigc_impressions": int(rng.integers(0, 40)),
                    "source/human_impressions": int(rng.integers(0, 40)),
                    "source/aigc_live": int(rng.integers(0, 30)),
                    "source/human_live": int(rng.integers(1, 30)),
                }
            )
    return pd.DataFrame(rows).sample(frac=1.0, random_state=int(rng.integers(1000)))


@pytest.mark.parametrize("seed", range(6))
def test_pooled_bias_is_the_log_odds_of_summed_counts(seed):
    """Per trial and window: log((A+.5)/(H+.5)) - log((a+.5)/(h+.5)) of the window's sums."""
    rng = np.random.default_rng(seed)
    df = _counts(rng, trials=3, steps=20)
    windows = [W.Window("a", 0, 7), W.Window("b", 7, 13), W.Window("c", 15, 20)]
    got = W.pooled_bias(df, windows)
    assert len(got) == 3 * len(windows)
    for w in windows:
        for trial in range(3):
            sums = [0, 0, 0, 0]
            for r in df.itertuples(index=False):
                if r.trial == trial and w.start <= r.step < w.end:
                    sums = [s + v for s, v in zip(sums, r[2:], strict=True)]
            a, h, la, lh = sums
            expected = np.log((a + 0.5) / (h + 0.5)) - np.log((la + 0.5) / (lh + 0.5))
            (value,) = got[(got["trial"] == trial) & (got["window"] == w.name)]["value"]
            assert value == pytest.approx(expected, rel=1e-12)


def test_pooled_bias_is_undefined_without_aigc_in_the_catalog_or_anything_shown():
    """No live AIGC (nothing to compare with) or nothing shown: NaN, not a number."""
    df = pd.DataFrame(
        {"trial": [0, 0, 1, 1], "step": [0, 1, 0, 1],
         "source/aigc_impressions": [3, 2, 0, 0], "source/human_impressions": [5, 1, 0, 0],
         "source/aigc_live": [0, 0, 4, 4], "source/human_live": [9, 9, 9, 9]}
    )  # fmt: skip
    got = W.pooled_bias(df, [W.Window("all", 0, 2)])
    assert got["value"].isna().all()


@pytest.mark.parametrize("seed", range(6))
def test_pooled_bias_marks_trials_that_stopped_inside_a_window(seed):
    """``partial``: the trial has rows for only some of the window's steps (pooled over them)."""
    rng = np.random.default_rng(seed)
    df = _counts(rng, trials=5, steps=20)
    ends = {t: int(rng.integers(1, 21)) for t in range(5)}  # the trial's rows: steps < end
    ends[0] = 20  # one finished trial
    df = df[df["step"] < df["trial"].map(ends)]
    windows = [W.Window("a", 0, 7), W.Window("b", 7, 13), W.Window("c", 15, 20)]
    got = W.pooled_bias(df, windows).set_index(["trial", "window"])
    for w in windows:
        for t, end in ends.items():
            ran = len(set(range(w.start, w.end)) & set(range(end)))
            assert ((t, w.name) in got.index) == (ran > 0)  # no row: not in the window at all
            if ran:
                assert bool(got.loc[(t, w.name), "partial"]) == (ran < w.end - w.start)
    assert not got.loc[0, "partial"].any()
    empty = W.pooled_bias(df, [])
    assert list(empty.columns) == ["trial", "window", "value", "partial"] and empty.empty


# ---------------------------------------------------------------------------- tipping


@pytest.mark.parametrize("seed", range(8))
def test_tipping_point_is_the_first_step_past_half_after_warm_up(seed):
    """Crossings inside the warm-up are ignored; a trial that never tips reads the run length."""
    rng = np.random.default_rng(seed)
    steps, trials = 30, 5
    warm = {t: int(rng.integers(0, 8)) for t in range(trials)}
    share = rng.uniform(0.0, 1.0, (trials, steps)) ** 3  # mostly below one half
    share[0, :] = 0.2  # never tips
    share[1, : warm[1]] = 0.9  # above one half during the warm-up only
    share[1, warm[1] :] = 0.1
    df = pd.DataFrame(
        {"trial": np.repeat(np.arange(trials), steps), "step": np.tile(np.arange(steps), trials),
         W.SHARE: share.ravel()}
    )  # fmt: skip
    got = W.tipping_points(df.sample(frac=1.0, random_state=seed), steps, warm).set_index("trial")
    for t in range(trials):
        after = [s for s in range(warm[t], steps) if share[t, s] > 0.5]
        assert bool(got.loc[t, "tipped"]) == bool(after)
        assert got.loc[t, "value"] == (after[0] if after else steps)
    assert not got.loc[0, "tipped"] and not got.loc[1, "tipped"]
    assert not got["partial"].any()


@pytest.mark.parametrize("seed", range(8))
def test_a_trial_that_stopped_before_tipping_counts_its_own_steps(seed):
    """Stopped before ``steps`` without tipping: censored at its own end and ``partial``."""
    rng = np.random.default_rng(seed)
    steps, trials = 30, 6
    share = rng.uniform(0.0, 1.0, (trials, steps)) ** 4
    ends = rng.integers(1, steps + 1, trials)
    df = pd.DataFrame(
        {"trial": np.repeat(np.arange(trials), steps), "step": np.tile(np.arange(steps), trials),
         W.SHARE: share.ravel()}
    )  # fmt: skip
    df = df[df["step"] < ends[df["trial"]]]
    got = W.tipping_points(df, steps, dict.fromkeys(range(trials), 2)).set_index("trial")
    for t in range(trials):
        after = [s for s in range(2, ends[t]) if share[t, s] > 0.5]
        assert got.loc[t, "value"] == (after[0] if after else ends[t])
        assert bool(got.loc[t, "tipped"]) == bool(after)
        assert bool(got.loc[t, "partial"]) == (not after and ends[t] < steps)
    out = W.summarise_over_seeds(
        got.reset_index(), pd.DataFrame({"trial": range(trials), "agent": "a", "seed": 0}),
        ["agent"], None,
    )  # fmt: skip
    assert out.loc[0, "partial"] == got["partial"].sum()
    assert out.loc[0, "tipped"] == got["tipped"].sum()


# ---------------------------------------------------------------------------- intervals


@pytest.mark.parametrize("seed", range(6))
def test_summary_is_mean_with_paired_t_interval_by_hand(seed):
    """Mean ± t(n-1)·sd/√n per agent and window; ``diff`` pairs each seed with the baseline's."""
    rng = np.random.default_rng(seed)
    seeds = int(rng.integers(3, 12))
    agents = ["base", "x", "y"]
    trials = pd.DataFrame(
        [{"trial": i, "agent": a, "seed": s}
         for i, (a, s) in enumerate(itertools.product(agents, range(seeds)))]
    )  # fmt: skip
    per_trial = pd.concat(
        [pd.DataFrame({"trial": trials["trial"], "window": w,
                       "value": rng.normal(size=len(trials)) + 3 * (trials["agent"] == "x")})
         for w in ("w1", "w2")]
    )  # fmt: skip
    per_trial.loc[per_trial.sample(n=1, random_state=seed).index, "value"] = np.nan
    out = W.summarise_over_seeds(per_trial, trials, ["agent", "window"], "base").set_index(
        ["agent", "window"]
    )
    for a, w in itertools.product(agents, ("w1", "w2")):
        mine = per_trial.merge(trials, on="trial")
        v = mine[(mine.agent == a) & (mine.window == w)].set_index("seed")["value"]
        b = mine[(mine.agent == "base") & (mine.window == w)].set_index("seed")["value"]
        for name, x in (("value", v), ("diff", v - b)):
            x = x.dropna().to_numpy()
            n = len(x)
            # simlab tabulates t to 4 decimals
            half = stats.t.ppf(0.975, n - 1) * x.std(ddof=1) / np.sqrt(n)
            assert out.loc[(a, w), name] == pytest.approx(x.mean(), rel=1e-9, abs=1e-12)
            assert out.loc[(a, w), f"{name} ±"] == pytest.approx(
                half, rel=1e-4
            )  # t table: 4 decimals
            assert out.loc[(a, w), f"{name} n"] == n
    # the baseline's paired differences are all exactly zero
    assert (out.xs("base")["diff"] == 0).all() and (out.xs("base")["diff ±"] == 0).all()


# ---------------------------------------------------------------------------- run summaries


@pytest.mark.parametrize("warmups", [(0, 0), (3, 0), (5, 9), (19, 1)])
def test_run_summary_leaves_out_each_trials_warm_up(warmups):
    """Mean metrics average only the steps after the trial's warm-up; ``last`` ones keep the end."""
    rng = np.random.default_rng(sum(warmups))
    steps = 20
    frames = []
    for trial, warm in enumerate(warmups):
        value = rng.normal(size=steps)
        value[:warm] = 1e6  # what a warm-up would contribute if it were counted
        frames.append(pd.DataFrame({"trial": trial, "agent": "a", "seed": trial,
                                    "step": np.arange(steps), "m": value,
                                    "c": np.cumsum(np.ones(steps))}))  # fmt: skip
    df = pd.concat(frames, ignore_index=True)
    manifest = {
        "metric_columns": ["m", "c"],
        "metric_summary": {"c": "last"},
        "trials": [{"index": i, "warmup": w} for i, w in enumerate(warmups)],
    }
    (row,) = summarize(df, manifest).to_dict("records")
    per_trial = [f["m"].to_numpy()[w:].mean() for f, w in zip(frames, warmups, strict=True)]
    assert row["m"] == pytest.approx(np.mean(per_trial), rel=1e-12)
    assert row["m sd"] == pytest.approx(np.std(per_trial, ddof=1), rel=1e-12)  # sample sd
    assert row["c"] == steps
    (one,) = summarize(df[df["trial"] == 0], manifest).to_dict("records")
    assert one["seeds"] == 1 and np.isnan(one["m sd"])  # one seed: no spread to show


@pytest.mark.parametrize(
    "sweep",
    [
        {"platform.retrain_every": [1, 3]},
        {"platform.log_window": [2, 5], "measures.every": [1, 2]},
        {"users.num_users": [30, 40]},
    ],
)
def test_pooled_tables_of_a_sweep_over_dotted_fields(tmp_path, sweep):
    """Swept fields are dotted paths (no Python names): each point gets its own rows."""
    from conftest import make_small

    from simlab.runner import run_scenario
    from simlab.store import open_run
    from simlab.windows import window_tables

    sc = make_small(("sweep", sweep), ("content.phases", [{"aigc_share": 0.5}]),
                    "users.num_users=40", "steps=12", seeds=2,
                    metrics=["engagement", "source"])  # fmt: skip
    store = run_scenario(sc, out_dir=tmp_path, run_id="sweep")
    run = open_run(store.path)
    cols = list(sweep)
    tables = window_tables(run.read_metrics(), run.path, run.manifest, cols, "random")
    table = tables["source bias by window"]
    points = {tuple(v) for v in table[cols].itertuples(index=False)}
    want = {(a,) for a in sweep[cols[0]]} if len(cols) == 1 else {
        (a, b) for a in sweep[cols[0]] for b in sweep[cols[1]]
    }  # fmt: skip
    assert points == want
    assert (table["value n"] == 2).all()  # both seeds of each agent at each point
