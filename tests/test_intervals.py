"""Unit tests of ``simlab.intervals`` against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from simlab import intervals
from simlab.intervals import Smoothing


def _rows(values: dict[str, list[list[float]]]) -> pd.DataFrame:
    """Rows series x seed x step from ``{series: [[seed 0's steps], [seed 1's steps], ...]}``."""
    out = []
    trial = 0
    for series, seeds in values.items():
        for seed, curve in enumerate(seeds):
            for step, v in enumerate(curve):
                out.append({"series": series, "trial": trial, "seed": seed, "step": step, "m": v})
            trial += 1
    return pd.DataFrame(out)


# ---------------------------------------------------------------------- intervals
@pytest.mark.parametrize(
    ("kind", "half"),
    [
        ("se", 1.0),  # sd 2 over 4 seeds: 2 / sqrt(4)
        ("sd", 2.0),
        ("t", 3.1824 * 2 / 2),  # t(0.975, 3) = 3.1824
        ("seeds", 0.0),
    ],
)
def test_interval_half_widths_by_hand(kind, half):
    """Four seeds ``[0, 2, 4, 2] * sqrt(1.5)``: sample sd exactly 2 (squares 12, / 3 = 4)."""
    k = math.sqrt(1.5)
    df = _rows({"a": [[0.0], [2 * k], [4 * k], [2 * k]]})
    row = intervals.aggregate(df, "m", ["series"], kind).iloc[0]
    assert row["sd"] == pytest.approx(2.0)
    assert row["n"] == 4
    assert row["mean"] == pytest.approx(2 * k)
    assert row["hi"] - row["mean"] == pytest.approx(half, abs=1e-4)
    assert row["mean"] - row["lo"] == pytest.approx(half, abs=1e-4)


def test_two_seeds_student_t_is_wide_and_standard_error_is_not():
    """Two seeds 1 and 3: sd sqrt(2); se = 1; t(0.975, 1) * se = 12.7062."""
    df = _rows({"a": [[1.0], [3.0]]})
    se = intervals.aggregate(df, "m", ["series"], "se").iloc[0]
    t = intervals.aggregate(df, "m", ["series"], "t").iloc[0]
    assert (se["lo"], se["hi"]) == pytest.approx((1.0, 3.0))
    assert (t["lo"], t["hi"]) == pytest.approx((2 - 12.7062, 2 + 12.7062))


def test_clipping_to_declared_ranges():
    """Band edges are clipped to the range; an open side or no range leaves them alone."""
    df = _rows({"a": [[0.1], [0.9]]})  # mean 0.5, sd 0.566, t half-width 5.08
    for value_range, expected in [
        ((0.0, 1.0), (0.0, 1.0)),
        ((0.0, None), (0.0, 0.5 + 12.7062 * 0.4)),
        ((None, 1.0), (0.5 - 12.7062 * 0.4, 1.0)),
        (None, (0.5 - 12.7062 * 0.4, 0.5 + 12.7062 * 0.4)),
        ((None, None), (0.5 - 12.7062 * 0.4, 0.5 + 12.7062 * 0.4)),
    ]:
        row = intervals.aggregate(df, "m", ["series"], "t", value_range).iloc[0]
        assert (row["lo"], row["hi"]) == pytest.approx(expected, abs=1e-3), value_range
    lo, hi = intervals.clip_band(np.array([-1.0, 0.2]), np.array([0.5, 3.0]), (0.0, 1.0))
    assert lo.tolist() == [0.0, 0.2] and hi.tolist() == [0.5, 1.0]


def test_one_seed_or_nan_collapse_the_band_and_order_is_kept():
    """One value at a step (the other NaN) gives lo = hi = mean; groups keep first order."""
    df = pd.DataFrame(
        {
            "series": ["b", "b", "a", "a", "b", "b"],
            "step": [0, 0, 0, 0, 1, 1],
            "m": [1.0, 3.0, 5.0, float("nan"), 2.0, 2.0],
        }
    )
    out = intervals.aggregate(df, "m", ["series"], "se")
    assert out[["series", "step"]].values.tolist() == [["b", 0], ["b", 1], ["a", 0]]
    assert out.iloc[2][["mean", "lo", "hi", "n"]].tolist() == [5.0, 5.0, 5.0, 1]
    assert out.iloc[1][["lo", "hi"]].tolist() == [2.0, 2.0]  # sd 0
    assert intervals.aggregate(df, "absent", ["series"]).empty
    assert intervals.aggregate(df.assign(m=float("nan")), "m", ["series"]).empty


def test_unknown_interval_is_named():
    """An unknown interval kind names the field and the allowed values."""
    with pytest.raises(ValueError, match=r"--interval: unknown interval 'ci'. Allowed: se, sd"):
        intervals.check_interval("ci", "--interval")
    with pytest.raises(ValueError, match="unknown interval"):
        intervals.aggregate(_rows({"a": [[1.0]]}), "m", ["series"], "95")


def test_t_quantile_table():
    """Known quantiles of Student's t at 0.975."""
    assert intervals.t_quantile(1) == pytest.approx(12.7062)
    assert intervals.t_quantile(10) == pytest.approx(2.2281)
    assert intervals.t_quantile(40) == pytest.approx(2.021, abs=1e-3)
    assert intervals.t_quantile(1000) == pytest.approx(1.962, abs=1e-3)
    assert math.isnan(intervals.t_quantile(0))


def test_few_seeds_note():
    """Series with fewer than 3 seeds are named, with a reason fitting the interval."""
    assert intervals.few_seeds_note({"a": 3, "b": 10}) is None
    note = intervals.few_seeds_note({"a": 2, "b": 5, "c": 1}, "t")
    assert "a (2 seeds)" in note and "c (1 seed)" in note and "b (" not in note
    assert "12.7" in note
    assert "single draw" in intervals.few_seeds_note({"a": 2}, "seeds")
    for kind in ("se", "sd", "t"):  # one seed: no spread, no band (said), two: a band
        assert "no band is drawn" in intervals.few_seeds_note({"a": 1, "b": 2}, kind)
        assert "no band" not in intervals.few_seeds_note({"a": 2}, kind)
    assert "no band" not in intervals.few_seeds_note({"a": 1}, "seeds")


# ---------------------------------------------------------------------- smoothing
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, Smoothing()),
        ("off", Smoothing()),
        (" OFF ", Smoothing()),
        ("ema", Smoothing("ema", 0.6)),
        ("ema:0.9", Smoothing("ema", 0.9)),
        ("ema:0", Smoothing("ema", 0.0)),
        ("rolling", Smoothing("rolling", 5.0)),
        ("rolling:12", Smoothing("rolling", 12.0)),
    ],
)
def test_smoothing_specs_parse_and_print_back(text, expected):
    """Valid specs parse; their text form parses to the same smoothing."""
    got = Smoothing.parse(text)
    assert got == expected
    assert Smoothing.parse(str(got)) == got


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ema:1", "EMA weight 1 is outside"),
        ("ema:-0.1", "outside"),
        ("ema:nan", "outside"),
        ("ema:x", "'x' in 'ema:x' is not a number"),
        ("rolling:0", "rolling window 0 is not a whole number"),
        ("rolling:2.5", "not a whole number"),
        ("rolling:inf", "not a whole number"),
        ("gauss", "unknown smoothing 'gauss'"),
        ("off:3", "takes no value"),
    ],
)
def test_bad_smoothing_specs_are_named(text, message):
    """Every malformed spec gives one message naming the field, the value and the choices."""
    with pytest.raises(ValueError, match=message) as err:
        Smoothing.parse(text, "--smooth")
    assert str(err.value).startswith("--smooth: ")


def test_ema_by_hand_debiased_and_nan_skipped():
    """Weight 0.5 over [2, 4, NaN, 8]: 2, (4 + 1) / 1.5, NaN, (8 + 2 + 0.5) / 1.75."""
    out = intervals.smooth_values(np.array([2.0, 4.0, np.nan, 8.0]), Smoothing("ema", 0.5))
    assert out[0] == pytest.approx(2.0)
    assert out[1] == pytest.approx((4 + 0.5 * 2) / 1.5)
    assert math.isnan(out[2])
    assert out[3] == pytest.approx((8 + 0.5 * 4 + 0.25 * 2) / 1.75)


def test_rolling_by_hand():
    """Window 3 over [3, 6, 9, 0, NaN, 3]: trailing means of the values present."""
    out = intervals.smooth_values(
        np.array([3.0, 6.0, 9.0, 0.0, np.nan, 3.0]), Smoothing("rolling", 3)
    )
    assert out[:4].tolist() == pytest.approx([3.0, 4.5, 6.0, 5.0])
    assert math.isnan(out[4])
    assert out[5] == pytest.approx(1.5)  # mean of 0 and 3 (NaN left out)


def test_smooth_frame_smooths_each_trial_on_its_own():
    """Two trials interleaved and out of order: each is smoothed along its own steps."""
    df = pd.DataFrame(
        {"trial": [1, 0, 0, 1, 0, 1], "step": [0, 1, 0, 1, 2, 2], "m": [10, 2, 0, 20, 4, 30.0]}
    )
    out = intervals.smooth_frame(df, ["m"], Smoothing("rolling", 2), by=["trial"])
    got = out.set_index(["trial", "step"])["m"].sort_index().tolist()
    assert got == pytest.approx([0.0, 1.0, 3.0, 10.0, 15.0, 25.0])
    assert out.index.tolist() == df.index.tolist()  # rows stay where they were
    assert intervals.smooth_frame(df, ["m"], Smoothing()) is df


# ---------------------------------------------------------------------- differences
def test_paired_difference_pairs_by_seed_and_step():
    """Each agent minus the baseline at the same seed and step; unpaired rows get NaN."""
    df = pd.DataFrame(
        {
            "agent": ["base", "base", "x", "x", "x", "y"],
            "seed": [0, 1, 0, 1, 2, 1],
            "step": [0, 0, 0, 0, 0, 0],
            "m": [1.0, 5.0, 4.0, 6.0, 9.0, 2.0],
        }
    )
    out = intervals.paired_difference(df, ["m"], "base", ["seed", "step"])
    assert out["agent"].tolist() == ["x", "x", "x", "y"]
    assert out["m"].tolist()[:2] == [3.0, 1.0] and math.isnan(out["m"].iloc[2])
    assert out["m"].iloc[3] == -3.0
    with pytest.raises(ValueError, match="no rows of agent 'z'"):
        intervals.paired_difference(df, ["m"], "z")
    with pytest.raises(ValueError, match="several rows of .base. share step"):
        intervals.paired_difference(df, ["m"], "base", ["step"])


def test_difference_range():
    """A difference of two values in [lo, hi] lies in [lo - hi, hi - lo]."""
    assert intervals.difference_range((0.0, 1.0)) == (-1.0, 1.0)
    assert intervals.difference_range((0.0, None)) is None
    assert intervals.difference_range(None) is None


def test_metric_ranges_from_manifest_or_registry():
    """The manifest's ranges win; old manifests fall back on the registered metric classes."""
    stored = {"metric_columns": ["a/x"], "metric_ranges": {"a/x": [0, None], "bad": [2, 1]}}
    assert intervals.metric_ranges(stored) == {"a/x": (0.0, None)}
    old = {"metric_columns": ["engagement/ctr", "source/bias_log_odds", "users/active"]}
    assert intervals.metric_ranges(old) == {
        "engagement/ctr": (0.0, 1.0),
        "source/bias_log_odds": (None, None),
        "users/active": (0.0, None),
    }
