"""Tests of the individual item fairness measures (Rampisela et al.) against hand values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simlab.metrics.item_fairness import (
    entropy,
    entropy_corrected,
    fsat,
    fsat_corrected,
    gini,
    gini_corrected,
    item_fairness,
    jain,
    jain_corrected,
    qf,
    qf_corrected,
)

CORRECTED = ("jain", "qf", "entropy", "fsat")  # 1 = fairest; gini_corrected is the reverse
LOG2_3 = math.log2(3)


def allocation(slates) -> tuple[np.ndarray, int, int]:
    """``(slates, k, m)`` of ``(m, k)`` slates of item rows, checking each list is distinct."""
    slates = np.asarray(slates)
    assert all(len(set(row)) == len(row) for row in slates.tolist())
    return slates, slates.shape[1], slates.shape[0]


def round_robin(n: int, k: int, m: int) -> np.ndarray:
    """``(m, k)`` slates where user ``u`` sees items ``u k, ..., u k + k - 1`` mod ``n``.

    Distinct per user when ``k <= n``; every item gets ``f`` or ``f + 1`` impressions.
    """
    return (np.arange(m)[:, None] * k + np.arange(k)[None, :]) % n


def counts_of(slates: np.ndarray, n: int) -> np.ndarray:
    """``(n,)`` impressions of each item in ``slates``."""
    return np.bincount(np.asarray(slates).ravel(), minlength=n)


# ----------------------------------------------------------------------------- hand values
# Allocations used below (each is feasible: the users' lists written out hold k distinct items):
#   A1 = [3, 2, 1, 0], A2 = [3, 1, 1, 1]: n=4, k=2, m=3, S=6, f=1, r=2
#        (A1 from {a,b},{a,b},{a,c}; A2 from {a,b},{a,c},{a,d})
#   B1 = [4, 2, 1, 1, 0], B2 = [3, 3, 2, 0, 0]: n=5, k=2, m=4, S=8, f=1, r=3
#        (B1 from {a,b},{a,b},{a,c},{a,d}; B2 from {a,b},{a,b},{a,c},{b,c})
#   C1 = [2, 2, 1, 1, 0 x6], C2 = [3, 1, 1, 1, 0 x6], C3 = [2, 1, 1, 1, 1, 0 x5]:
#        n=10, k=2, m=3, S=6 < n, f=0, r=6
#        (C1 from {a,b},{a,c},{b,d}; C2 from {a,b},{a,c},{a,d}; C3 from {a,b},{a,c},{d,e})
#   E2 = [3, 2, 2, 1]: n=4, k=2, m=4, S=8, f=2, r=0 (from {a,b},{a,b},{a,c},{c,d})
#   F1 = [3, 3, 2, 1, 1]: n=5, k=2, m=5, S=10, f=2, r=0
#        (from {a,b},{a,b},{a,c},{b,c},{d,e})
A1, A2 = [3, 2, 1, 0], [3, 1, 1, 1]
B1, B2 = [4, 2, 1, 1, 0], [3, 3, 2, 0, 0]
C1, C2, C3 = [2, 2, 1, 1] + [0] * 6, [3, 1, 1, 1] + [0] * 6, [2, 1, 1, 1, 1] + [0] * 5
E2, F1 = [3, 2, 2, 1], [3, 3, 2, 1, 1]

# Jain = S^2 / (n sum c^2); Jain_max = S^2 / (n (n f^2 + r (2f + 1))).
#   A: Jain_max = 36 / (4 (4 + 6)) = 9/10, k/n = 1/2.
#     A1: sum c^2 = 9+4+1 = 14, Jain = 36/56 = 9/14; corr = (9/14 - 1/2) / (9/10 - 1/2)
#         = (1/7) / (2/5) = 5/14.
#     A2: sum c^2 = 9+1+1+1 = 12, Jain = 36/48 = 3/4; corr = (1/4) / (2/5) = 5/8.
#   B: Jain_max = 64 / (5 (5 + 9)) = 32/35, k/n = 2/5.
#     B1: sum c^2 = 16+4+1+1 = 22, Jain = 64/110 = 32/55;
#         corr = (32/55 - 22/55) / (32/35 - 14/35) = (10/55) / (18/35) = 35/99.
#   C: Jain_max = 36 / (10 * 6) = 3/5, k/n = 1/5.
#     C1: sum c^2 = 10, Jain = 36/100; corr = (0.36 - 0.2) / (0.6 - 0.2) = 2/5.
#     C2: sum c^2 = 12, Jain = 36/120 = 3/10; corr = 0.1 / 0.4 = 1/4.
JAIN_CASES = [
    (A1, 2, 3, 9 / 14, 5 / 14),
    (A2, 2, 3, 3 / 4, 5 / 8),
    (B1, 2, 4, 32 / 55, 35 / 99),
    (C1, 2, 3, 0.36, 0.4),
    (C2, 2, 3, 0.3, 0.25),
]

# QF = exposed / n; corrected (exposed - k) / (n - k) if S >= n else (exposed - k) / (k (m - 1)).
#   A1: 3 exposed -> 3/4; (3 - 2) / (4 - 2) = 1/2.     A2: 4 exposed -> 1; (4 - 2) / 2 = 1.
#   B1: 4 exposed -> 4/5; (4 - 2) / (5 - 2) = 2/3.     B2: 3 exposed -> 3/5; 1/3.
#   C1: 4 exposed -> 2/5; S < n: (4 - 2) / (2 * 2) = 1/2.
#   C3: 5 exposed -> 1/2; (5 - 2) / 4 = 3/4.
QF_CASES = [
    (A1, 2, 3, 3 / 4, 1 / 2),
    (A2, 2, 3, 1.0, 1.0),
    (B1, 2, 4, 4 / 5, 2 / 3),
    (B2, 2, 4, 3 / 5, 1 / 3),
    (C1, 2, 3, 2 / 5, 1 / 2),
    (C3, 2, 3, 1 / 2, 3 / 4),
]

# Ent = -sum p log_n p, p = c / S; write L = log2(3), ln = natural log.
#   A (n=4, log_4 x = log2(x) / 2): Ent_min = log_4 2 = 1/2;
#     Ent_max: p = (1/3, 1/3, 1/6, 1/6) -> (2/3 ln 3 + 1/3 ln 6) / ln 4 = L/2 + 1/6.
#     A1: p = (1/2, 1/3, 1/6) -> (1/2 ln 2 + 1/3 ln 3 + 1/6 ln 6) / ln 4 = 1/3 + L/4;
#         corr = (L/4 - 1/6) / (L/2 - 1/3) = 1/2.
#     A2: p = (1/2, 1/6, 1/6, 1/6) -> (1/2 ln 2 + 1/2 ln 6) / ln 4 = 1/2 + L/4;
#         corr = (L/4) / (L/2 - 1/3) = 3L / (6L - 4).
#   C (n=10, S < n): Ent_min = log10 2, Ent_max = log10 S = log10 6.
#     C1: p = (1/3, 1/3, 1/6, 1/6) -> (ln 3 + ln 2 / 3) / ln 10;
#         corr = (ln 3 + ln 2 / 3 - ln 2) / (ln 6 - ln 2) = 1 - (2/3) / L.
#     C3: p = (1/3, 1/6 x4) -> (1/3 ln 3 + 2/3 ln 6) / ln 10 = (ln 3 + 2/3 ln 2) / ln 10;
#         corr = (ln 3 - 1/3 ln 2) / ln 3 = 1 - (1/3) / L.
ENTROPY_CASES = [
    (A1, 2, 3, 1 / 3 + LOG2_3 / 4, 1 / 2),
    (A2, 2, 3, 1 / 2 + LOG2_3 / 4, 3 * LOG2_3 / (6 * LOG2_3 - 4)),
    (C1, 2, 3, (math.log(3) + math.log(2) / 3) / math.log(10), 1 - (2 / 3) / LOG2_3),
    (C3, 2, 3, (math.log(3) + 2 / 3 * math.log(2)) / math.log(10), 1 - (1 / 3) / LOG2_3),
]

# Gini = sum_j (2j - n - 1) c_(j) / (n S) ascending; corr = (G - G_min) / (1 - k/n - G_min),
# G_min = (n - r) r / (n S).
#   A (weights -3, -1, 1, 3): G_min = 2 * 2 / 24 = 1/6, 1 - k/n = 1/2.
#     A1 sorted (0, 1, 2, 3): -1 + 2 + 9 = 10 -> 10/24 = 5/12; corr = (5/12 - 2/12) / (4/12) = 3/4.
#     A2 sorted (1, 1, 1, 3): -3 - 1 + 1 + 9 = 6 -> 6/24 = 1/4; corr = (1/12) / (4/12) = 1/4.
#   B (weights -4, -2, 0, 2, 4): G_min = 2 * 3 / 40 = 3/20, 1 - k/n = 12/20.
#     B1 sorted (0, 1, 1, 2, 4): -2 + 0 + 4 + 16 = 18 -> 18/40 = 9/20; corr = 6/9 = 2/3.
#   C (weights 2j - 11): G_min = 4 * 6 / 60 = 2/5, 1 - k/n = 4/5.
#     C1 top four (1, 1, 2, 2) weights (3, 5, 7, 9): 3 + 5 + 14 + 18 = 40 -> 40/60 = 2/3;
#         corr = (2/3 - 2/5) / (2/5) = 2/3.
#     C2 top four (1, 1, 1, 3): 3 + 5 + 7 + 27 = 42 -> 42/60 = 7/10; corr = (3/10) / (4/10) = 3/4.
GINI_CASES = [
    (A1, 2, 3, 5 / 12, 3 / 4),
    (A2, 2, 3, 1 / 4, 1 / 4),
    (B1, 2, 4, 9 / 20, 2 / 3),
    (C1, 2, 3, 2 / 3, 2 / 3),
    (C2, 2, 3, 7 / 10, 3 / 4),
]

# FSat = |{c >= f}| / n; corr = (FSat - k/n) / (1 - k/n) = (satisfied - k) / (n - k).
#   A1 (f=1): 3 satisfied -> 3/4; (3 - 2) / 2 = 1/2.
#   B2 (f=1): 3 satisfied -> 3/5; (3 - 2) / 3 = 1/3.
#   E2 (f=2): 3, 2, 2 satisfied -> 3/4; (3 - 2) / 2 = 1/2.
#   F1 (f=2): 3, 3, 2 satisfied -> 3/5; (3 - 2) / 3 = 1/3 (QF of F1 is 1: FSat is not coverage).
FSAT_CASES = [
    (A1, 2, 3, 3 / 4, 1 / 2),
    (B2, 2, 4, 3 / 5, 1 / 3),
    (E2, 2, 4, 3 / 4, 1 / 2),
    (F1, 2, 5, 3 / 5, 1 / 3),
]


@pytest.mark.parametrize(
    "raw, corrected, cases",
    [
        (jain, jain_corrected, JAIN_CASES),
        (qf, qf_corrected, QF_CASES),
        (entropy, entropy_corrected, ENTROPY_CASES),
        (gini, gini_corrected, GINI_CASES),
        (fsat, fsat_corrected, FSAT_CASES),
    ],
    ids=["jain", "qf", "entropy", "gini", "fsat"],
)
def test_measures_by_hand(raw, corrected, cases):
    """Raw and corrected values match the hand computations written above."""
    for counts, k, m, want_raw, want_corrected in cases:
        c = np.array(counts)
        got_raw = raw(c) if raw is gini else raw(c, k, m)
        assert got_raw == pytest.approx(want_raw, rel=1e-12), counts
        assert corrected(c, k, m) == pytest.approx(want_corrected, rel=1e-12), counts


def test_item_fairness_collects_every_measure():
    """item_fairness returns each function's value under its name, raw Gini included."""
    c = np.array(B1)
    row = item_fairness(c, 2, 4)
    funcs = {
        "jain": jain,
        "jain_corrected": jain_corrected,
        "qf": qf,
        "qf_corrected": qf_corrected,
        "entropy": entropy,
        "entropy_corrected": entropy_corrected,
        "gini_corrected": gini_corrected,
        "fsat": fsat,
        "fsat_corrected": fsat_corrected,
    }
    assert row == {"gini": gini(c), **{name: f(c, 2, 4) for name, f in funcs.items()}}


# ----------------------------------------------------------------------------- extremes


@pytest.mark.parametrize(
    "n, k, m",
    [(4, 2, 3), (5, 2, 4), (4, 2, 4), (7, 3, 5), (6, 1, 9), (10, 2, 3), (20, 4, 3), (9, 8, 2)],
)
def test_corrected_extremes_are_exact(n, k, m):
    """Fairest feasible allocation scores exactly 1 (Gini 0); the most unfair exactly 0 (Gini 1).

    The most unfair feasible allocation shows the same k items to every user; the fairest
    (round-robin) gives every item f or f + 1 impressions. FSat is NaN when S < n.
    """
    fair, _, _ = allocation(round_robin(n, k, m))
    unfair, _, _ = allocation(np.tile(np.arange(k), (m, 1)))
    fair_counts, unfair_counts = counts_of(fair, n), counts_of(unfair, n)
    f = k * m // n
    assert set(fair_counts.tolist()) <= {f, f + 1}
    best, worst = item_fairness(fair_counts, k, m), item_fairness(unfair_counts, k, m)
    for name in CORRECTED:
        if name == "fsat" and f == 0:
            assert math.isnan(best["fsat_corrected"]) and math.isnan(worst["fsat_corrected"])
            continue
        assert best[f"{name}_corrected"] == 1.0, name
        assert worst[f"{name}_corrected"] == 0.0, name
    assert best["gini_corrected"] == 0.0
    assert worst["gini_corrected"] == 1.0
    # the raw measures sit at the paper's bounds for the most unfair allocation
    assert worst["jain"] == pytest.approx(k / n)
    assert worst["qf"] == pytest.approx(k / n)
    assert worst["entropy"] == pytest.approx(math.log(k) / math.log(n))
    assert worst["gini"] == pytest.approx(1 - k / n)


def test_all_equal_exposure():
    """Every item with the same count (f, r = 0) is perfectly fair on every measure."""
    # n=4, k=2, m=4: S=8, f=2; Jain = 64 / (4 * 16) = 1, Ent = log_4 4 = 1, Gini 0, FSat 1.
    row = item_fairness(np.array([2, 2, 2, 2]), 2, 4)
    assert row == pytest.approx(
        {
            "jain": 1.0,
            "jain_corrected": 1.0,
            "qf": 1.0,
            "qf_corrected": 1.0,
            "entropy": 1.0,
            "entropy_corrected": 1.0,
            "gini": 0.0,
            "gini_corrected": 0.0,
            "fsat": 1.0,
            "fsat_corrected": 1.0,
        },
        rel=1e-12,
        abs=1e-15,
    )


def test_all_on_one_item():
    """With k = 1, every user shown the same item is feasible and maximally unfair."""
    # n=4, k=1, m=6: S=6, f=1. Jain = 36 / (4 * 36) = 1/4 = k/n, QF = 1/4, Ent = 0,
    # Gini = 3 * 6 / 24 = 3/4 = 1 - k/n, FSat = 1/4 (only the shown item has c >= 1).
    row = item_fairness(np.array([0, 6, 0, 0]), 1, 6)
    assert row == {
        "jain": 0.25,
        "jain_corrected": 0.0,
        "qf": 0.25,
        "qf_corrected": 0.0,
        "entropy": 0.0,
        "entropy_corrected": 0.0,
        "gini": 0.75,
        "gini_corrected": 1.0,
        "fsat": 0.25,
        "fsat_corrected": 0.0,
    }


# ----------------------------------------------------------------------------- degenerate


@pytest.mark.parametrize(
    "counts, k, m",
    [
        ([1, 1, 0, 0], 2, 1),  # m = 1: every allocation is both fairest and most unfair
        ([3, 3, 3], 3, 3),  # k = n: every user sees every item
        ([2, 1], 3, 1),  # k > n: no list of k distinct items exists
    ],
    ids=["one-user", "k-equals-n", "k-above-n"],
)
def test_corrected_is_nan_when_range_collapses(counts, k, m):
    """Every corrected measure is NaN when the fairest and most unfair allocations coincide."""
    row = item_fairness(np.array(counts), k, m)
    for name in (*CORRECTED, "gini"):
        assert math.isnan(row[f"{name}_corrected"]), name
    assert not math.isnan(row["jain"]) and not math.isnan(row["qf"])


@pytest.mark.parametrize("k, m", [(0, 5), (3, 0)])
def test_no_slots_is_nan(k, m):
    """Without any impressions (S = 0) every measure is NaN."""
    row = item_fairness(np.zeros(4, np.int64), k, m)
    assert all(math.isnan(v) for v in row.values())


def test_single_item_entropy_is_nan():
    """With one item the base-n logarithm is undefined, so entropy is NaN."""
    row = item_fairness(np.array([3]), 1, 3)
    assert math.isnan(row["entropy"])
    assert row["jain"] == 1.0 and row["qf"] == 1.0 and row["fsat"] == 1.0


def test_fsat_corrected_can_be_negative():
    """The paper's lower anchor k/n is not FSat's minimum over feasible allocations."""
    # n=4, k=3, m=4: S=12, f=3. Lists {a,b,c},{a,b,c},{a,b,d},{a,b,d} give c = (4, 4, 2, 2):
    # 2 items reach f, FSat = 2/4, corrected = (2/4 - 3/4) / (1 - 3/4) = -1.
    slates, k, m = allocation([[0, 1, 2], [0, 1, 2], [0, 1, 3], [0, 1, 3]])
    c = counts_of(slates, 4)
    assert c.tolist() == [4, 4, 2, 2]
    assert fsat(c, k, m) == 0.5
    assert fsat_corrected(c, k, m) == -1.0
    # the other corrected measures stay in [0, 1] on the same allocation
    row = item_fairness(c, k, m)
    assert all(0 <= row[f"{name}_corrected"] <= 1 for name in ("jain", "qf", "entropy", "gini"))


def fsat_corrected_floor(n: int, k: int, m: int) -> float:
    """Least corrected FSat over feasible allocations (f >= 1).

    ``t`` satisfied items hold at most ``m`` each and the rest at most ``f - 1``, so
    ``t m + (n - t)(f - 1) >= S`` gives ``t >= (n + r) / (m - f + 1)``.
    """
    f, r = divmod(k * m, n)
    t_min = math.ceil((n + r) / (m - f + 1))
    return (t_min - k) / (n - k)


def test_fsat_below_one_slot_per_item():
    """With S < n the maximin share is 0: raw FSat is 1 and the corrected one is NaN."""
    assert fsat(np.array(C2), 2, 3) == 1.0
    assert math.isnan(fsat_corrected(np.array(C2), 2, 3))


# ----------------------------------------------------------------------------- property


def reference_measures(c: np.ndarray, k: int, m: int) -> dict[str, float]:
    """The paper's formulas evaluated term by term in floats, for a differential check."""
    n, s = len(c), k * m
    f, r = divmod(s, n)
    log_n = lambda x: math.log(x) / math.log(n)  # noqa: E731
    j = s**2 / (n * sum(x * x for x in c))
    j_max = s**2 / (n * (n * f**2 + r * (2 * f + 1)))
    exposed = sum(x > 0 for x in c)
    ent = -sum(x / s * log_n(x / s) for x in c if x)
    fair_terms = [(n - r, f), (r, f + 1)]
    ent_max = -sum(t * (v / s) * log_n(v / s) for t, v in fair_terms if t and v)
    ent_max = ent_max if s >= n else log_n(s)
    g = sum((2 * j_ - n - 1) * x for j_, x in enumerate(sorted(c), start=1)) / (n * s)
    g_min = (n - r) * r / (n * s)
    sat = n if f == 0 else sum(x >= f for x in c)
    return {
        "jain": j,
        "jain_corrected": (j - k / n) / (j_max - k / n),
        "qf": exposed / n,
        "qf_corrected": (exposed - k) / ((n - k) if s >= n else k * (m - 1)),
        "entropy": ent,
        "entropy_corrected": (ent - log_n(k)) / (ent_max - log_n(k)),
        "gini": g,
        "gini_corrected": (g - g_min) / (1 - k / n - g_min),
        "fsat": sat / n,
        "fsat_corrected": (sat / n - k / n) / (1 - k / n),
    }


def random_allocation(rng: np.random.Generator) -> tuple[np.ndarray, int, int]:
    """Counts of m random top-k lists of distinct items, skewed by a random popularity."""
    n = int(rng.integers(3, 30))
    k = int(rng.integers(1, n))
    m = int(rng.integers(2, 40))
    popularity = rng.dirichlet(np.full(n, rng.choice([0.05, 0.5, 5.0])))
    popularity = (popularity + 1e-9) / (popularity + 1e-9).sum()
    slates = np.stack([rng.choice(n, size=k, replace=False, p=popularity) for _ in range(m)])
    return counts_of(slates, n), k, m


def test_corrected_measures_lie_in_unit_interval_and_match_reference():
    """Random feasible allocations: corrected in [0, 1], all equal to the term-by-term formula.

    FSat corrected is NaN when S < n and may go below 0, down to its feasible floor.
    """
    rng = np.random.default_rng(20240311)
    for _ in range(300):
        counts, k, m = random_allocation(rng)
        n = counts.shape[0]
        row = item_fairness(counts, k, m)
        ref = reference_measures(counts.tolist(), k, m)
        for name in (*CORRECTED, "gini"):
            value = row[f"{name}_corrected"]
            if name == "fsat" and k * m < n:
                assert math.isnan(value)
                continue
            low = min(0.0, fsat_corrected_floor(n, k, m)) if name == "fsat" else 0.0
            assert low - 1e-12 <= value <= 1 + 1e-12, (name, counts, k, m)
        for name, value in row.items():
            if name == "fsat_corrected" and k * m < n:
                continue
            assert value == pytest.approx(ref[name], rel=1e-9, abs=1e-12), (name, counts, k, m)
        assert k / n - 1e-12 <= row["jain"] <= 1 + 1e-12
        assert -1e-12 <= row["entropy"] <= 1 + 1e-12
