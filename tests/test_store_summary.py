"""``simlab.store_summary``: the per-agent summaries every report and table starts from.

Each rule checked by hand per class of input: step means after each trial's own warm-up,
last values of cumulative measures, paired columns read where their source stops, the spread
and counts over seeds, the order of agents and sweep points, and the warm-up and stopped notes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simlab.store_summary import stopped_note, summarize, trial_warmups, warmup_note


def _rows(curves: dict[int, list[float]], agents: dict[int, str], **extra) -> pd.DataFrame:
    """Rows of ``trial -> values by step`` (seed = trial), with extra per-trial columns."""
    out = []
    for trial, values in curves.items():
        for step, v in enumerate(values):
            row = {"trial": trial, "agent": agents[trial], "seed": trial, "step": step, "m": v}
            row.update({k: f[trial] for k, f in extra.items()})
            out.append(row)
    return pd.DataFrame(out)


def _manifest(warm: dict[int, int], columns=("m",), **more) -> dict:
    """A manifest as a run directory holds it: read back from JSON (no literal strings)."""
    import json

    trials = [{"index": t, "warmup": w} for t, w in warm.items()]
    return json.loads(json.dumps({"metric_columns": list(columns), "trials": trials, **more}))


@pytest.mark.parametrize("warm", [(0, 0, 0), (2, 0, 1), (3, 3, 3), (1, 4, 0)])
def test_step_means_start_after_each_trials_own_warm_up(warm):
    """Each trial's mean over its steps from its warm-up on; then mean and sd over seeds."""
    curves = {0: [1.0, 2.0, 3.0, 4.0, 5.0], 1: [10.0, 0.0, 2.0, 4.0, 6.0], 2: [7.0] * 5}
    agents = dict.fromkeys(curves, "a")
    out = summarize(_rows(curves, agents), _manifest(dict(enumerate(warm))))
    means = [np.mean(curves[t][w:]) for t, w in enumerate(warm)]
    assert out["m"].iloc[0] == pytest.approx(np.mean(means))
    assert out["m sd"].iloc[0] == pytest.approx(np.std(means, ddof=1))
    assert out["seeds"].iloc[0] == 3 and out["steps"].iloc[0] == 5
    assert "m n" not in out.columns  # only paired columns count their seeds


def test_a_trial_without_a_warm_up_record_counts_every_step():
    """A trial record without ``warmup`` (older runs) starts its mean at step 0."""
    df = _rows({0: [2.0, 4.0]}, {0: "a"})
    manifest = {"metric_columns": ["m"], "trials": [{"index": 0}]}
    assert summarize(df, manifest)["m"].iloc[0] == 3.0
    assert trial_warmups(manifest) == {0: 0}
    # a trial the manifest does not list at all: every step too, and no warm-up note
    unlisted = {"metric_columns": ["m"], "trials": []}
    assert summarize(df, unlisted)["m"].iloc[0] == 3.0
    assert warmup_note(df.iloc[:1], unlisted) is None
    assert trial_warmups({"trials": [{"index": "3", "warmup": "2"}]}) == {3: 2}


def test_missing_values_are_left_out_of_the_step_mean():
    """NaN steps are skipped; a trial with no value after its warm-up is NaN, not 0."""
    curves = {0: [np.nan, 1.0, np.nan, 3.0], 1: [5.0, np.nan, np.nan, np.nan]}
    out = summarize(_rows(curves, {0: "a", 1: "b"}), _manifest({0: 0, 1: 1}))
    got = out.set_index("agent")["m"]
    assert got["a"] == 2.0 and np.isnan(got["b"])
    assert np.isnan(out.set_index("agent")["m sd"]["a"])  # one seed: no spread


def test_cumulative_measures_take_their_last_value_warm_up_or_not():
    """``last`` measures read each trial's last value present, even inside the warm-up."""
    curves = {0: [1.0, 2.0, np.nan], 1: [4.0, np.nan, np.nan], 2: [0.0, 6.0, 9.0]}
    manifest = _manifest({0: 1, 1: 2, 2: 0}, metric_summary={"m": "last"})
    out = summarize(_rows(curves, dict.fromkeys(curves, "a")), manifest)
    assert out["m"].iloc[0] == pytest.approx(np.mean([2.0, 4.0, 9.0]))


@pytest.mark.parametrize("columns", [("m", "d"), ("d", "m")])
def test_a_paired_column_is_read_where_its_source_ends(columns):
    """A paired cumulative column is read at its source's last value; no source, no value.

    In either order of the columns: the metrics after a paired one are summarised too.
    """
    df = pd.DataFrame(
        {
            "trial": [0, 0, 0, 1, 1, 1, 2, 2, 2],
            "agent": ["a"] * 9,
            "seed": [0, 0, 0, 1, 1, 1, 2, 2, 2],
            "step": [0, 1, 2] * 3,
            "m": [1.0, 2.0, np.nan, 3.0, 4.0, 5.0, np.nan, np.nan, np.nan],
            # the difference to a baseline that ran longer than trial 0 (so it has a step 2)
            "d": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
        }
    )
    manifest = _manifest(
        {0: 0, 1: 0, 2: 0},
        columns=columns,
        metric_summary={"m": "last", "d": "last"},
        metric_sources={"d": "m"},
    )
    out = summarize(df, manifest)
    assert out["d"].iloc[0] == pytest.approx(np.mean([0.2, 0.6]))
    assert out["d n"].iloc[0] == 2  # trial 2 has no source value: it drops out
    assert out["m"].iloc[0] == pytest.approx(np.mean([2.0, 5.0]))


def test_a_paired_mean_column_counts_the_seeds_with_a_value():
    """A paired step-mean column is averaged as any other and counts its seeds in ``n``."""
    curves = {0: [1.0, 3.0], 1: [np.nan, np.nan], 2: [2.0, np.nan]}
    df = _rows(curves, dict.fromkeys(curves, "a")).assign(src=1.0)
    out = summarize(df, _manifest({0: 0, 1: 0, 2: 0}, metric_sources={"m": "src"}))
    assert out["m"].iloc[0] == pytest.approx(np.mean([2.0, 2.0]))
    assert out["m n"].iloc[0] == 2 and out["seeds"].iloc[0] == 3


def test_rows_follow_the_agents_then_the_sweep_points_in_trial_order():
    """Agents in the order of their first trial; sweep points in the order trials ran them."""
    agents = {0: "zeta", 1: "alpha", 2: "zeta", 3: "alpha"}
    point = {0: "late", 1: "late", 2: "early", 3: "early"}
    curves = {t: [float(t), float(t) + 1] for t in agents}
    df = _rows(curves, agents, variant=point)
    out = summarize(df, _manifest(dict.fromkeys(agents, 0), sweep_columns=["variant"]))
    assert list(zip(out["agent"], out["variant"], strict=True)) == [
        ("zeta", "late"),
        ("zeta", "early"),
        ("alpha", "late"),
        ("alpha", "early"),
    ]
    assert out["m"].tolist() == [0.5, 2.5, 1.5, 3.5]
    assert out["seeds"].tolist() == [1, 1, 1, 1]
    assert list(out.columns) == ["agent", "variant", "seeds", "steps", "m", "m sd"]
    # a trial of one row keeps its sweep point
    one = summarize(
        df[df["step"] == 0], _manifest(dict.fromkeys(agents, 0), sweep_columns=["variant"])
    )
    assert one["variant"].tolist() == ["late", "early", "late", "early"]


def test_steps_is_the_shortest_trial_and_unknown_columns_are_ignored():
    """``steps``: rows of the agent's shortest trial; a listed column not stored is skipped."""
    curves = {0: [1.0, 1.0, 1.0], 1: [2.0]}
    out = summarize(_rows(curves, {0: "a", 1: "a"}), _manifest({0: 0, 1: 0}, columns=("m", "x")))
    assert out["steps"].iloc[0] == 1 and "x" not in out.columns
    empty = summarize(_rows({}, {}), _manifest({}, sweep_columns=[]))
    assert empty.empty


@pytest.mark.parametrize(
    ("last_steps", "warm", "named"),
    [
        ((4, 4), (2, 2), None),
        ((1, 4), (2, 2), "a"),
        ((1, 0), (2, 3), "a, b"),
        ((2, 4), (3, 5), "a, b"),
    ],
)
def test_the_warm_up_note_names_agents_with_nothing_after_their_warm_up(last_steps, warm, named):
    """Agents whose every row lies inside their warm-up are named with the warm-up lengths."""
    curves = {t: [1.0] * (s + 1) for t, s in enumerate(last_steps)}
    df = _rows(curves, {0: "a", 1: "b"})
    note = warmup_note(df, _manifest(dict(enumerate(warm))))
    if named is None:
        assert note is None
        return
    assert note.startswith(f"Every step of {named} is warm-up")
    within = [w for s, w in zip(last_steps, warm, strict=True) if s < w]
    assert f"the first {'/'.join(map(str, sorted(set(within))))} steps" in note


def test_the_stopped_note_names_the_short_trials_and_their_steps():
    """Trials that end before the longest are named with their last steps."""
    curves = {0: [1.0] * 10, 1: [1.0] * 4, 2: [1.0] * 7, 3: [1.0] * 10}
    df = _rows(curves, {0: "a", 1: "b", 2: "b", 3: "c"})
    note = stopped_note(df)
    assert note.startswith("2 of 4 trials (b) stopped before the longest one's last step 9")
    assert "(theirs: 3-6)" in note
    assert stopped_note(_rows({0: [1.0] * 3, 1: [2.0] * 3}, {0: "a", 1: "b"})) is None


@pytest.mark.parametrize("end", [3, 299, 1000])
def test_one_short_trial_or_several_at_one_step_read_that_step(end):
    """Short trials that all ended at one step print it once, at any step number."""
    curves = {0: [1.0] * (end + 1), 1: [1.0] * (end + 1), 2: [1.0] * (end + 20)}
    note = stopped_note(_rows(curves, {0: "a", 1: "a", 2: "b"}))
    assert f"(theirs: {end})" in note and note.startswith("2 of 3 trials (a) stopped")


@pytest.mark.parametrize("status", ["interrupted", "failed"])
def test_trials_that_all_stopped_at_one_step_are_named_from_the_manifest(status):
    """Equal ends say nothing by themselves: the manifest's stopped trials are named."""
    df = _rows({0: [1.0] * 5, 1: [1.0] * 5}, {0: "a", 1: "b"})
    manifest = {"trials": [{"index": 0, "status": "done"}, {"index": 1, "status": status}]}
    note = stopped_note(df, manifest)
    assert note.startswith("1 of 2 trials (b) stopped (interrupted or failed) at step 4")
    done = {"trials": [{"index": 0, "status": "done"}, {"index": 1, "status": "done"}]}
    assert stopped_note(df, done) is None


def _reference(df: pd.DataFrame, manifest: dict) -> pd.DataFrame:
    """The summary computed trial by trial and group by group, as the docstring states it."""
    metrics = [c for c in manifest["metric_columns"] if c in df.columns]
    kinds, sources = manifest.get("metric_summary", {}), manifest.get("metric_sources", {})
    sweep = [c for c in manifest.get("sweep_columns", []) if c in df.columns]
    warmup = trial_warmups(manifest)
    per_trial = []
    for trial, g in df.groupby("trial", sort=True):
        g = g.sort_values("step", kind="stable")
        row = {"agent": g["agent"].iloc[0], "steps": len(g), **{c: g[c].iloc[0] for c in sweep}}
        after = g["step"] >= warmup.get(int(trial), 0)
        for c in metrics:
            if kinds.get(c) == "last" and c in sources:
                at = g[sources[c]].last_valid_index()
                row[c] = np.nan if at is None else g.at[at, c]
            elif kinds.get(c) == "last":
                col = g[c].dropna()
                row[c] = col.iloc[-1] if len(col) else np.nan
            else:
                col = g.loc[after, c].dropna()
                row[c] = col.mean() if len(col) else np.nan
        per_trial.append(row)
    trials = pd.DataFrame(per_trial)
    out = []
    for key, g in trials.groupby(["agent", *sweep], sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(["agent", *sweep], key, strict=True))
        row.update(seeds=len(g), steps=int(g["steps"].min()))
        for c in metrics:
            row.update({c: g[c].mean(), f"{c} sd": g[c].std(ddof=1), f"{c} n": g[c].count()})
        out.append(row)
    return pd.DataFrame(out)


@pytest.mark.parametrize("seed", range(12))
def test_the_summary_matches_a_trial_by_trial_reference(seed):
    """Random runs: shuffled rows, NaN values, warm-ups, last and paired columns, sweeps."""
    rng = np.random.default_rng(seed)
    trials = rng.choice(np.arange(40), size=int(rng.integers(1, 12)), replace=False)
    rows = []
    for t in trials:
        agent, point = f"a{rng.integers(3)}", [None, "x", "y"][rng.integers(3)]
        for step in range(int(rng.integers(1, 9))):
            values = rng.normal(size=4)
            values[rng.random(4) < 0.3] = np.nan
            named = dict(zip(["m", "last", "src", "paired"], values, strict=True))
            rows.append({"trial": t, "agent": agent, "seed": t, "step": step, "point": point,
                         **named})  # fmt: skip
    df = pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    warm = {int(t): int(rng.integers(0, 6)) for t in trials if rng.random() < 0.8}
    manifest = _manifest(
        warm,
        columns=("m", "last", "paired", "src"),
        metric_summary={"last": "last", "paired": "last"},
        metric_sources={"paired": "src"},
        sweep_columns=["point"] if seed % 2 else [],
    )
    out = summarize(df, manifest)
    ref = _reference(df, manifest)
    ref = ref.set_index(["agent", *(["point"] if seed % 2 else [])])
    got = out.set_index(ref.index.names)
    assert sorted(got.index, key=str) == sorted(ref.index, key=str)
    for c in got.columns:
        assert np.allclose(got[c].astype(float), ref.loc[got.index, c].astype(float),
                           rtol=1e-12, atol=0, equal_nan=True), c  # fmt: skip
    shown = {c for c in ("m", "last", "src") if (ref[f"{c} n"] < ref["seeds"]).any()}
    assert {c[:-2] for c in got.columns if c.endswith(" n")} == shown | {"paired"}
