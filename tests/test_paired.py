"""``simlab.paired.add_paired``: each row against the baseline agent's at the same keys.

Hand-computed per class of input: differences and relative differences, the baseline's own
rows, a baseline with no row at a key (a stopped seed), a zero or negative baseline, rows
paired only on every key (sweep values included), row order kept, the input left as given.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simlab.paired import Paired, add_paired

KEYS = ["seed", "step"]


def _frame(rows):
    return pd.DataFrame(rows, columns=["agent", "seed", "step", "u", "j"])


@pytest.fixture
def df():
    """Two agents, two seeds, steps 1-2 (seed 1 has step 1 only)."""
    return _frame(
        [
            ("ideal", 0, 1, 2.0, 0.5),
            ("mf", 0, 1, 1.5, 0.75),
            ("ideal", 0, 2, 4.0, 0.25),
            ("mf", 0, 2, 1.0, 0.5),
            ("ideal", 1, 1, 8.0, 0.125),
            ("mf", 1, 1, 10.0, 0.0),
        ]
    )


def test_differences_are_each_rows_value_minus_the_baselines_at_its_keys(df):
    """The agent's u minus ideal's at the same seed and step; ideal's own rows get 0."""
    out = add_paired(df, "ideal", [Paired("u", "du"), Paired("j", "dj")], KEYS)
    assert out["du"].tolist() == [0.0, -0.5, 0.0, -3.0, 0.0, 2.0]
    assert out["dj"].tolist() == [0.0, 0.25, 0.0, 0.25, 0.0, -0.125]
    # the source columns are kept as they were, and no helper column is left behind
    assert list(out.columns) == ["agent", "seed", "step", "u", "j", "du", "dj"]
    assert out["u"].tolist() == df["u"].tolist()


def test_relative_differences_divide_by_the_baseline(df):
    """(x - x_ideal) / x_ideal: 1.5 against 2 is -0.25, 10 against 8 is +0.25."""
    out = add_paired(df, "ideal", [Paired("u", "ru", "relative")], KEYS)
    np.testing.assert_allclose(out["ru"], [0.0, -0.25, 0.0, -0.75, 0.0, 0.25])


def test_a_difference_and_a_relative_of_one_metric_side_by_side(df):
    """Two derived columns of one source column are both added, each by its own rule."""
    derived = [Paired("u", "du"), Paired("u", "ru", "relative")]
    out = add_paired(df, "ideal", derived, KEYS)
    assert out["du"].tolist() == [0.0, -0.5, 0.0, -3.0, 0.0, 2.0]
    np.testing.assert_allclose(out["ru"], [0.0, -0.25, 0.0, -0.75, 0.0, 0.25])


@pytest.mark.parametrize("zero", [0.0, -0.0])
def test_a_zero_baseline_gives_nan_relative_but_a_finite_difference(zero):
    """A ratio to a zero baseline is undefined (NaN), never infinite."""
    df = _frame([("ideal", 0, 1, zero, 0.0), ("mf", 0, 1, 3.0, 1.0)])
    out = add_paired(df, "ideal", [Paired("u", "ru", "relative"), Paired("u", "du")], KEYS)
    assert np.isnan(out["ru"]).all()  # the baseline's own 0/0 too
    assert out["du"].tolist() == [0.0, 3.0]


def test_a_negative_baseline_keeps_the_sign_of_the_ratio():
    """(-3 - -2) / -2 = 0.5: the ratio is taken as written, not of magnitudes."""
    df = _frame([("ideal", 0, 1, -2.0, 0.0), ("mf", 0, 1, -3.0, 0.0)])
    out = add_paired(df, "ideal", [Paired("u", "ru", "relative")], KEYS)
    assert out["ru"].tolist() == [-0.0, 0.5]


def test_rows_without_a_baseline_row_at_their_keys_get_nan(df):
    """Where the baseline stopped (or never ran a seed), the difference is NaN, not 0."""
    # the baseline stopped after step 1 of seed 0 and never ran seed 1
    partial = df.drop(index=[2, 4])
    out = add_paired(partial, "ideal", [Paired("u", "du"), Paired("u", "ru", "relative")], KEYS)
    assert out["agent"].tolist() == ["ideal", "mf", "mf", "mf"]
    assert out["du"].tolist()[:2] == [0.0, -0.5]
    assert np.isnan(out["du"].tolist()[2:]).all()
    assert np.isnan(out["ru"].tolist()[2:]).all()


def test_rows_pair_on_every_key_not_on_the_seed_and_step_alone():
    """An agent at variant b is paired with ideal at variant b, not with a."""
    df = pd.DataFrame(
        {
            "agent": ["ideal", "ideal", "mf", "mf"],
            "seed": [0, 0, 0, 0],
            "variant": ["a", "b", "b", "a"],
            "step": [1, 1, 1, 1],
            "u": [1.0, 10.0, 7.0, 4.0],
        }
    )
    out = add_paired(df, "ideal", [Paired("u", "du")], ["seed", "variant", "step"])
    assert out["du"].tolist() == [0.0, 0.0, -3.0, 3.0]


def test_the_rows_keep_their_order_and_the_input_is_left_as_given(df):
    """Shuffled rows come back in their order, each with its own difference."""
    shuffled = df.sample(frac=1.0, random_state=3)
    before = shuffled.copy()
    out = add_paired(shuffled, "ideal", [Paired("u", "du")], KEYS)
    pd.testing.assert_frame_equal(shuffled, before)
    assert out[["agent", "seed", "step", "u"]].values.tolist() == (
        shuffled[["agent", "seed", "step", "u"]].values.tolist()
    )
    expected = {("ideal", 0, 1): 0.0, ("mf", 0, 1): -0.5, ("ideal", 0, 2): 0.0}
    expected |= {("mf", 0, 2): -3.0, ("ideal", 1, 1): 0.0, ("mf", 1, 1): 2.0}
    got = {(a, s, t): d for a, s, t, d in out[["agent", "seed", "step", "du"]].values}
    assert got == expected


def test_a_nan_value_gives_a_nan_difference_only_in_its_own_row(df):
    """A missing value of mf or of the baseline spoils only the rows it pairs."""
    df.loc[1, "u"] = np.nan  # mf's value at seed 0, step 1
    df.loc[2, "u"] = np.nan  # the baseline's value at seed 0, step 2
    out = add_paired(df, "ideal", [Paired("u", "du")], KEYS)
    du = out["du"].tolist()
    assert np.isnan(du[1]) and np.isnan(du[2]) and np.isnan(du[3])
    assert [du[0], du[4], du[5]] == [0.0, 0.0, 2.0]


@pytest.mark.parametrize("kind", ["ratio", "Relative", "", "diff"])
def test_an_unknown_kind_is_named_with_the_allowed_ones(kind):
    """A misspelt kind is refused at once (it was taken as a difference)."""
    with pytest.raises(ValueError, match=f"unknown kind '{kind}'. Allowed: difference, relative"):
        Paired("u", "du", kind)


def test_a_derived_column_is_a_fixed_value():
    """The report's derived columns are shared constants: none can be changed in place."""
    import dataclasses

    d = Paired("u", "du", "relative")
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.kind = "difference"
    assert {d, Paired("u", "du", "relative")} == {d}  # hashable, equal by value


def test_agents_named_before_or_after_the_baseline_are_paired_alike():
    """Only the baseline's rows are the reference, whatever the other agents are called."""
    df = pd.DataFrame(
        {
            "agent": ["content", "ideal", "random", "another"],
            "seed": [0, 0, 0, 0],
            "step": [1, 1, 1, 1],
            "u": [1.0, 4.0, 6.0, 5.0],
        }
    )
    out = add_paired(df, "ideal", [Paired("u", "du")], KEYS)
    assert out["agent"].tolist() == df["agent"].tolist()
    assert out["du"].tolist() == [-3.0, 0.0, 2.0, 1.0]


def test_a_baseline_with_several_rows_at_one_key_is_refused(df):
    """Pairing on too few keys (the sweep column left out) would multiply rows: refused."""
    two_points = pd.concat([df.assign(variant="a"), df.assign(variant="b")], ignore_index=True)
    with pytest.raises(ValueError, match="several rows of 'ideal' share seed, step"):
        add_paired(two_points, "ideal", [Paired("u", "du")], KEYS)
    out = add_paired(two_points, "ideal", [Paired("u", "du")], ["seed", "variant", "step"])
    assert len(out) == len(two_points)
