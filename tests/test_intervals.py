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
    """Known quantiles of Student's t at 0.975 (printed tables, 4 decimals)."""
    assert intervals.t_quantile(1) == pytest.approx(12.7062, abs=1e-4)
    assert intervals.t_quantile(10) == pytest.approx(2.2281, abs=1e-4)
    assert intervals.t_quantile(40) == pytest.approx(2.0211, abs=1e-4)
    assert intervals.t_quantile(1000) == pytest.approx(1.9623, abs=1e-4)
    for df in (0, -1, -30):
        assert math.isnan(intervals.t_quantile(df))


def test_t_quantile_is_the_inverse_of_the_t_distribution_at_every_df():
    """t(0.975, df) at every df 1..400 and far out: its CDF gives back 0.975."""
    from scipy import stats

    dfs = [*range(1, 401), 1_000, 10**4, 10**6]
    got = np.array([intervals.t_quantile(df) for df in dfs])
    np.testing.assert_allclose(stats.t.cdf(got, dfs), 0.975, rtol=0, atol=1e-12)
    assert (np.diff(got) < 0).all()  # narrower with every degree of freedom
    assert got[-1] == pytest.approx(1.959964, abs=1e-5)  # the normal's 97.5% point


@pytest.mark.parametrize("n", [2, 3, 5, 31, 400])
def test_t_half_widths_take_n_minus_1_degrees_of_freedom(n):
    """The ``t`` band of n seeds is t(0.975, n - 1) standard errors, for each n."""
    half = intervals.half_width(np.array([3.0]), np.array([n]), "t")
    assert half[0] == pytest.approx(intervals.t_quantile(n - 1) * 3.0 / math.sqrt(n), rel=1e-12)


@pytest.mark.parametrize("kind", ["se", "sd", "t"])
def test_a_non_finite_spread_or_one_seed_gives_no_band(kind):
    """No band (0) where the spread is infinite or NaN, or fewer than two seeds have a value."""
    import warnings

    sd = np.array([np.inf, np.nan, 2.0, 2.0, 2.0, -np.inf])
    n = np.array([5, 5, 1, 0, 4, 3])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        half = intervals.half_width(sd, n, "".join(kind))  # as read from a command line
    assert half[[0, 1, 2, 3, 5]].tolist() == [0.0] * 5
    expected = {"se": 1.0, "sd": 2.0, "t": intervals.t_quantile(3)}[kind]
    assert half[4] == pytest.approx(expected)


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
    # the kind as read from a command line or a URL: an equal string, not the literal itself
    read = "".join(["se", "eds"])
    assert "no band" not in intervals.few_seeds_note({"a": 1}, read)


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


@pytest.mark.parametrize("text", ["ema:0.5", "EMA:0.5", " ema:0.50 "])
def test_a_parsed_ema_smooths_as_its_weight_says(text):
    """An EMA read from a spec (a URL, ``--smooth``) is the EMA of that weight, by hand."""
    out = intervals.smooth_values(np.array([2.0, 4.0, 8.0]), Smoothing.parse(text))
    assert out.tolist() == pytest.approx([2.0, 5.0 / 1.5, 10.5 / 1.75])


@pytest.mark.parametrize("w", [0.2, 0.8, 0.95])
def test_ema_weight_is_the_weight_of_the_past(w):
    """Weight w over [0, 1, 1]: s_t = w s_(t-1) + (1 - w) x_t, divided by 1 - w^k."""
    out = intervals.smooth_values(np.array([0.0, 1.0, 1.0]), Smoothing("ema", w))
    raw = [0.0, 1 - w, w * (1 - w) + (1 - w)]
    assert out.tolist() == pytest.approx([r / (1 - w**k) for k, r in enumerate(raw, start=1)])


@pytest.mark.parametrize(("text", "active"), [("ema:0", False), ("rolling:1", False),
                                              ("ema:0.1", True), ("rolling:2", True)])  # fmt: skip
def test_a_smoothing_that_changes_nothing_says_so(text, active):
    """EMA weight 0 and a rolling window of 1 leave a curve as it is: labelled no smoothing."""
    smoothing = Smoothing.parse(text)
    assert smoothing.active is active
    assert (smoothing.label() == "no smoothing") is not active
    values = np.array([1.0, 5.0, 2.0])
    assert (intervals.smooth_values(values, smoothing).tolist() == values.tolist()) is not active


@pytest.mark.parametrize("window", [0, 0.5, 1])
def test_a_rolling_window_of_at_most_one_step_is_no_smoothing(window):
    """Made directly (not parsed), a window below 2 steps still changes nothing."""
    assert not Smoothing("rolling", window).active


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
    # a curve whose run is missing (NaN key) is still one curve, smoothed as the others
    runs = df.assign(run=[None, "x", "x", None, "x", None])
    out = intervals.smooth_frame(runs, ["m"], Smoothing("rolling", 2), by=["run", "trial"])
    assert out.set_index(["trial", "step"])["m"].sort_index().tolist() == pytest.approx(got)


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
    assert intervals.difference_range((2.0, 5.0)) == (-3.0, 3.0)
    assert intervals.difference_range((-4.0, -1.0)) == (-3.0, 3.0)
    assert intervals.difference_range((0.0, None)) is None
    assert intervals.difference_range(None) is None


def test_metric_ranges_from_manifest_or_registry():
    """The manifest's ranges win; old manifests fall back on the registered metric classes."""
    stored = {"metric_columns": ["a/x"], "metric_ranges": {"a/x": [0, None], "bad": [2, 1]}}
    assert intervals.metric_ranges(stored) == {"a/x": (0.0, None)}
    malformed = {
        "nan low": [float("nan"), 1.0],
        "nan high": [0.0, float("nan")],
        "nan both": [float("nan"), float("nan")],
        "reversed": [1.0, 0.0],
        "short": [0.0],
        "long": [0.0, 1.0, 2.0],
        "text": ["a", 1.0],
        "a dict": {"lo": 0, "hi": 1},
        "a number": 1.0,
        "nested": [[0.0], 1.0],
    }
    fine = {"open": [None, None], "above": [None, 2], "equal": [1, 1], "inf": [0, float("inf")]}
    ranges = intervals.metric_ranges({"metric_ranges": {**malformed, **fine}})
    assert ranges == {
        "open": (None, None),
        "above": (None, 2.0),
        "equal": (1.0, 1.0),
        "inf": (0.0, float("inf")),
    }
    old = {"metric_columns": ["engagement/ctr", "source/bias_log_odds", "users/active"]}
    assert intervals.metric_ranges(old) == {
        "engagement/ctr": (0.0, 1.0),
        "source/bias_log_odds": (None, None),
        "users/active": (0.0, None),
    }


def test_series_with_a_missing_key_are_aggregated_as_their_own_series():
    """Rows whose ``by`` value is missing (runs without a sweep column) are one series."""
    df = pd.DataFrame(
        {
            "variant": ["a", "a", None, None, "a", None],
            "seed": [0, 1, 0, 1, 0, 0],
            "step": [0, 0, 0, 0, 1, 1],
            "m": [1.0, 3.0, 10.0, 20.0, 5.0, 7.0],
        }
    )
    out = intervals.aggregate(df, "m", ["variant"], "sd")
    assert out["variant"].tolist()[:2] == ["a", "a"] and out["variant"].isna().tolist()[2:] == [
        True,
        True,
    ]
    assert out["mean"].tolist() == [2.0, 5.0, 15.0, 7.0]
    assert out["n"].tolist() == [2, 1, 2, 1]
