"""The reference experiments (scenarios/experiments/) at a reduced size: their stated directions.

Each scenario is loaded with ``--set``-style overrides (a few hundred users, tens of steps,
local backend, 5 seeds) and run. A direction holds "beyond seed noise" when the mean of the
per-seed paired differences (agents paired by seed, which share users and content) exceeds
``MARGIN`` standard errors of those differences.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from simlab.runner import run_scenario
from simlab.scenario import load_scenario

EXPERIMENTS = Path(__file__).resolve().parents[1] / "scenarios" / "experiments"
MARGIN = 2.0
SMALL = [("seeds", 5), ("execution.backend", "local"), ("output.checkpoint_every", 0)]


def _run(name: str, overrides: list[tuple[str, object]], tmp_path: Path) -> pd.DataFrame:
    """Run ``scenarios/experiments/<name>.yaml`` with overrides; its metric rows."""
    scenario = load_scenario(EXPERIMENTS / f"{name}.yaml", [*SMALL, *overrides])
    assert len(scenario.seeds) >= 5
    return run_scenario(scenario, out_dir=tmp_path).read_metrics()


def _per_seed(df: pd.DataFrame, agent: str, metric: str, how: str, lo: int = 0, hi: int = 10**9):
    """Per seed (indexed by seed): the metric's mean over steps in [lo, hi), or its last value."""
    g = df[(df["agent"] == agent) & (df["step"] >= lo) & (df["step"] < hi)].sort_values("step")
    by = g.groupby("seed")[metric]
    return by.last() if how == "last" else by.mean()


def _beyond_noise(diff: pd.Series, label: str) -> tuple[float, float]:
    """Assert ``mean(diff) > MARGIN * se(diff)``; return (mean, se)."""
    d = diff.dropna().to_numpy(dtype=float)
    assert d.size >= 5, f"{label}: only {d.size} seeds"
    mean, se = float(d.mean()), float(d.std(ddof=1) / np.sqrt(d.size))
    print(f"{label}: mean diff {mean:.4g}, se {se:.3g}, z {mean / se if se else float('inf'):.1f}")
    assert mean > MARGIN * se, f"{label}: mean diff {mean:.4g} <= {MARGIN} x se {se:.3g}"
    return mean, se


def test_homogenization_mf_vs_oracle_and_random(tmp_path):
    """Retrained MF homogenizes more than the oracle and random, with lower user utility."""
    df = _run("homogenization", [("users.num_users", 300), ("steps", 30)], tmp_path)
    h = {a: _per_seed(df, a, "echo/homogenization", "last") for a in ("mf", "oracle", "random")}
    _beyond_noise(h["mf"] - h["oracle"], "homogenization mf - oracle")
    _beyond_noise(h["mf"] - h["random"], "homogenization mf - random")
    # engagement/mean: realised engagement per served user, the users' utility proxy
    u = {a: _per_seed(df, a, "engagement/mean", "mean") for a in ("mf", "oracle")}
    _beyond_noise(u["oracle"] - u["mf"], "user utility oracle - mf")


def test_source_bias_escalation_and_debiasing(tmp_path):
    """A two-tower agent over-exposes AIGC in the human-dominated phase, more with each retrain.

    Both source debiasers (the invariance term and the style-removal re-ranker) bring the
    bias ratio back toward 1 there, and in every phase they undo the per-user source echo
    chamber (users who clicked AIGC shown AIGC, the others human: source/user_polarization),
    at a small click-through cost. (Across phases the aggregate gap does not grow: from the
    coexisting phase on, the plain agent's AIGC exposure share falls below the production
    share -- polarized users hit a ceiling of all-AIGC slates, the others lose AIGC.)
    """
    phases = [
        {"until": 20, "aigc_share": 0.1},
        {"until": 40, "aigc_share": 0.5, "ramp": 5},
        {"aigc_share": 0.85, "ramp": 5},
    ]
    overrides = [("users.num_users", 500), ("steps", 60), ("content.phases", phases)]
    df = _run("source_bias", overrides, tmp_path)
    exp, prod = "source/aigc_exposure_share", "source/aigc_production_share"
    plain, debiased = "two-tower", ("two-tower-invariance", "two-tower-style-removed")

    def gap(agent: str, lo: int, hi: int) -> pd.Series:
        return _per_seed(df, agent, exp, "mean", lo, hi) - _per_seed(
            df, agent, prod, "mean", lo, hi
        )

    # first retraining rounds (steps 0-9) vs later rounds (10-19) of the human-dominated phase
    _beyond_noise(gap(plain, 10, 20), "two-tower exposure - production share, steps 10-19")
    _beyond_noise(gap(plain, 10, 20) - gap(plain, 0, 10), "two-tower gap growth over rounds")
    ratio = {a: _per_seed(df, a, "source/bias_ratio", "mean", 10, 20) for a in (plain, *debiased)}
    off = {a: np.abs(np.log(r)) for a, r in ratio.items()}
    ctr = {a: _per_seed(df, a, "engagement/ctr", "mean") for a in (plain, *debiased)}
    pol = "source/user_polarization"
    for a in debiased:
        _beyond_noise(off[plain] - off[a], f"|log bias ratio| two-tower - {a}, steps 10-19")
        # the per-user source echo chamber, in every phase
        for lo, hi in ((5, 20), (25, 40), (45, 60)):
            diff = _per_seed(df, plain, pol, "mean", lo, hi) - _per_seed(df, a, pol, "mean", lo, hi)
            _beyond_noise(diff, f"user polarization two-tower - {a}, steps {lo}-{hi - 1}")
        cost = float((ctr[plain] - ctr[a]).mean())
        print(f"click-through cost of {a} (whole run): {cost:.4f}")
        assert cost < 0.03


def test_in_slate_thompson_vs_greedy(tmp_path):
    """In-slate TS keeps more diversity and coverage than greedy at no worse click-through."""
    df = _run("ts_exploration", [("users.num_users", 300), ("steps", 30)], tmp_path)
    ts, gr = "ts-in-slate", "ts-greedy"
    for metric in ("diversity/intra_list", "exposure/coverage"):
        diff = _per_seed(df, ts, metric, "mean") - _per_seed(df, gr, metric, "mean")
        _beyond_noise(diff, f"{metric} in-slate - greedy")
    # equal or better: the CTR difference is not negative beyond seed noise
    d = _per_seed(df, ts, "engagement/ctr", "mean") - _per_seed(df, gr, "engagement/ctr", "mean")
    se = float(d.std(ddof=1) / np.sqrt(len(d)))
    print(f"ctr in-slate - greedy: mean diff {d.mean():.4g}, se {se:.3g}")
    assert d.mean() > -MARGIN * se


def test_style_is_what_biases_a_content_based_agent(tmp_path):
    """Style magnitude 0 (and no rewrites): hybrid MF shows no source bias.

    Its AIGC exposure share stays within seed noise of the production share; with style
    it exceeds it. (Hybrid MF reads item features through a learned map; the two-tower
    agent's gap at this size is too noisy from seed to seed to tell: with style its sign
    is set by the first retrains.)
    """
    base = [("users.num_users", 300), ("steps", 20), ("content.phases", [{"aigc_share": 0.3}])]
    base += [("content.rewrite_share", 0.0), ("content.num_aigc_creators", 40)]
    base.append(("agents", [{"model": "mf", "factors": 16}]))
    exp, prod = "source/aigc_exposure_share", "source/aigc_production_share"
    gaps = {}
    for style in (0.0, 1.0):
        df = _run("source_bias", [*base, ("content.style_magnitude", style)], tmp_path / str(style))
        gaps[style] = _per_seed(df, "mf", exp, "mean", 5, 20) - _per_seed(
            df, "mf", prod, "mean", 5, 20
        )
    d = gaps[0.0].to_numpy(float)
    mean, se = float(d.mean()), float(d.std(ddof=1) / np.sqrt(d.size))
    print(f"no style: gap {mean:.4g}, se {se:.3g}")
    assert abs(mean) <= MARGIN * se + 0.01, f"no style, yet a gap of {mean:.3g} (se {se:.3g})"
    _beyond_noise(gaps[1.0], "style 1.0: exposure share - production share")
    _beyond_noise(gaps[1.0] - gaps[0.0], "gap with style - gap without")
