"""Measures pooled over windows of a run: source bias per phase, its escalation, tipping.

Per-step log odds near saturation are heavy-tailed (a step that shows a handful of human
items reads a huge value), so ``simlab report`` also *pools*: per trial and window it sums
the impression and live-item counts of the window's steps (``source/aigc_impressions``,
``source/human_impressions``, ``source/aigc_live``, ``source/human_live``) and takes the log
odds of the sums (:func:`simlab.metrics.source.log_odds_ratio`). Then, per agent and sweep
point (or variant), the mean over seeds with a 95% Student-t interval, and the paired
difference to a baseline agent (the same seed's value subtracted first).

**Windows** come from the sweep point's own scenario: each phase of ``content.phases`` from
the end of its ramp to its ``until`` (the last to the end of the run), with the warm-up
steps (before the first retrained model serves) left out. Content without phases
(``production: adoption``, Chaney's items) is cut into quarters after the warm-up.

**Escalation**: per trial, the last window's pooled log odds minus the first window's (of
the same trial, so the seed's own level cancels), then the mean over seeds with its t
interval and paired difference as above. A trial that has no rows in either window (it
stopped early) is left out of the cell's seeds; one pooled partially in either is ``partial``.

**Baselines** are an agent (the same seed, sweep point and window of that agent) or a sweep
point (:class:`PointBaseline`: the same agent, seed and window at the point where a sweep
column, e.g. ``variant``, has a given value; the windows are matched by name, so points
whose windows differ get no difference).

**Tipping point** (with ``creators/aigc_share``, the AIGC share of the active creators, which
production follows under ``production: adoption``): the first step after the warm-up at
which it exceeds 1/2; a trial that never tips counts as the run's length (a lower bound), and
the table says how many tipped.

**Stopped trials** (an interrupted run, before ``simlab resume``): a trial with rows for only
part of a window is pooled over the steps it has, and one that stopped before tipping counts
as the steps it ran; the tables count such cells in ``partial``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from simlab.intervals import t_quantile
from simlab.metrics.source import log_odds_ratio
from simlab.store_summary import trial_warmups

__all__ = [
    "Window",
    "PointBaseline",
    "windows_of",
    "pooled_bias",
    "escalation",
    "tipping_points",
    "summarise_over_seeds",
    "window_tables",
]

COUNTS = (
    "source/aigc_impressions",
    "source/human_impressions",
    "source/aigc_live",
    "source/human_live",
)
"""The count columns pooled per window."""

SHARE = "creators/aigc_share"


@dataclass(frozen=True)
class Window:
    """A named range of steps ``[start, end)``."""

    name: str
    start: int
    end: int


@dataclass(frozen=True)
class PointBaseline:
    """The same agent's value at the sweep point where ``column`` equals ``value``."""

    column: str
    value: Any

    def __str__(self) -> str:
        return f"{self.column}={self.value}"

    def holds(self, point: dict[str, Any]) -> bool:
        """Whether the sweep point ``point`` (column -> value) is this baseline's point."""
        return self.column in point and point[self.column] == self.value


def windows_of(scenario: Any) -> list[Window]:
    """The windows of one sweep point's scenario (see the module docstring)."""
    steps = int(scenario.steps)
    warm = scenario.platform.warmup_steps()
    params = scenario.content.params
    phases = getattr(params, "phases", None)
    if phases and getattr(params, "production", "schedule") == "schedule" and len(phases) > 1:
        out, start = [], 0
        for i, ph in enumerate(phases):
            end = steps if ph.until is None or i == len(phases) - 1 else min(ph.until, steps)
            lo = max(start + ph.ramp, warm)
            if lo < end:
                out.append(Window(f"phase {i + 1} (AIGC {ph.aigc_share:g})", lo, end))
            start = end
        if out:
            return out
    edges = np.linspace(warm, steps, 5).round().astype(int)
    return [
        Window(f"steps {a}-{b - 1}", int(a), int(b))
        for a, b in zip(edges[:-1], edges[1:], strict=True)
        if b > a
    ]


def pooled_bias(df, windows: Sequence[Window]):
    """Per trial and window: the log odds of the window's summed counts (a DataFrame).

    ``partial`` marks a trial that has rows for only some of the window's steps (it stopped
    inside the window): its value pools the steps it has.
    """
    import pandas as pd

    rows = []
    for w in windows:
        part = df[(df["step"] >= w.start) & (df["step"] < w.end)]
        by_trial = part.groupby("trial")
        sums = by_trial[list(COUNTS)].sum()
        value = log_odds_ratio(*(sums[c].to_numpy() for c in COUNTS))
        steps = by_trial["step"].nunique().to_numpy()  # the same trials, in the same order
        rows.append(
            pd.DataFrame(
                {
                    "trial": sums.index,
                    "window": w.name,
                    "value": value,
                    "partial": steps < w.end - w.start,
                }
            )
        )
    if not rows:  # no window (a run within its warm-up)
        return _no_rows()
    return pd.concat(rows, ignore_index=True)


def _no_rows():
    """An empty per-trial table (``trial``, ``window``, ``value``, ``partial``)."""
    import pandas as pd

    return pd.DataFrame({"trial": [], "window": [], "value": [], "partial": []})


def escalation(pooled, windows: Sequence[Window]):
    """Per trial: its last window's pooled value minus its first's (see the module doc).

    ``pooled`` is :func:`pooled_bias` over ``windows``; the rows' ``window`` reads
    ``"<first> → <last>"``. Empty with fewer than two windows.
    """
    import pandas as pd

    if len(windows) < 2:
        return _no_rows()
    first, last = (pooled[pooled["window"] == w.name] for w in (windows[0], windows[-1]))
    both = first.merge(last, on="trial", how="inner", suffixes=("_a", "_b"))
    return pd.DataFrame(
        {
            "trial": both["trial"].to_numpy(),
            "window": f"{windows[0].name} → {windows[-1].name}",
            "value": (both["value_b"] - both["value_a"]).to_numpy(),
            "partial": (both["partial_a"] | both["partial_b"]).to_numpy(bool),
        }
    )


def tipping_points(df, steps: int, warmup: dict[int, int]):
    """Per trial: the first step after the warm-up with an AIGC creator share above 1/2.

    Returns a DataFrame with ``trial``, ``value`` (that step; if it never tips, the number of
    steps it ran: ``steps``, or fewer for a trial that stopped early), ``tipped`` and
    ``partial`` (it stopped before ``steps`` without tipping: censored at its own end).
    """
    import pandas as pd

    after = df[df["step"] >= df["trial"].map(warmup).fillna(0)]
    over = after[after[SHARE] > 0.5].groupby("trial")["step"].min()
    ran = df.groupby("trial")["step"].max() + 1
    first = over.reindex(ran.index)
    return pd.DataFrame(
        {
            "trial": ran.index.to_numpy(),
            "value": first.fillna(ran).to_numpy(),
            "tipped": first.notna().to_numpy(),
            "partial": (first.isna() & (ran < steps)).to_numpy(),
        }
    )


def summarise_over_seeds(
    per_trial, trials, keys: Sequence[str], baseline: str | PointBaseline | None
):
    """Mean, 95% t interval and paired difference to ``baseline`` per group of ``keys``.

    Args:
        per_trial: rows with ``trial``, ``value`` (and any extra key such as ``window``).
        trials: the run's trials (``trial``, ``agent``, ``seed`` and the sweep columns).
        keys: grouping columns (``agent``, the sweep columns, ``window``).
        baseline: the agent, or the sweep point (:class:`PointBaseline`), whose same-seed
            value is subtracted for ``diff`` (None: none).
    """
    import pandas as pd

    merged = per_trial.merge(trials, on="trial")
    base = None  # the baseline's rows: the same agent at a sweep point, or an agent's
    if isinstance(baseline, PointBaseline):
        if baseline.column in keys:
            on = [k for k in keys if k != baseline.column] + ["seed"]
            base = merged[merged[baseline.column] == baseline.value][[*on, "value"]]
    elif baseline is not None and baseline in set(merged["agent"]):
        on = [*(k for k in keys if k != "agent"), "seed"]
        base = merged[merged["agent"] == baseline][[*on, "value"]]
    if base is not None:
        merged = merged.merge(base.rename(columns={"value": "_base"}), on=on, how="left")
        merged["_diff"] = merged["value"] - merged["_base"]
    out = []
    for key, g in merged.groupby(list(keys), sort=False, dropna=False):
        row = dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True))
        row.update(_mean_ci(g["value"], "value"))
        if "_diff" in g:
            row.update(_mean_ci(g["_diff"], "diff"))
        for flag in ("tipped", "partial"):
            if flag in g:
                row[flag] = int(g[flag].sum())
        out.append(row)
    return pd.DataFrame(out)


def _mean_ci(values, name: str) -> dict[str, float]:
    x = np.asarray(values, float)
    x = x[np.isfinite(x)]
    n = x.shape[0]
    half = t_quantile(n - 1) * x.std(ddof=1) / np.sqrt(n) if n > 1 else float("nan")
    return {name: float(x.mean()) if n else float("nan"), f"{name} ±": float(half), f"{name} n": n}


def windows_by_point(points: Sequence[Any], sweep: Sequence[str]) -> dict[tuple, list[Window]]:
    """Windows per sweep point (``simlab.scenario.sweep_points``; key: its sweep values)."""
    return {tuple(p.values.get(c) for c in sweep): windows_of(p.scenario) for p in points}


def window_tables(
    df,
    run_path: Path,
    manifest: dict,
    sweep: Sequence[str],
    baseline: str | PointBaseline | None,
):
    """The report's pooled tables of a run: ``{name: DataFrame}`` (empty when not measured).

    ``source bias by window``: per agent, sweep point and window, the pooled log odds
    (``value``) and its paired difference to ``baseline`` (``diff``), each with a 95% t
    interval (``±``) over the seeds (``n``). ``source bias escalation``: the same for each
    trial's last window minus its first (points with at least two windows). ``tipping
    point``: per agent and sweep point with adoption, the mean tipping step (censored at the
    run's length) and how many tipped.
    """
    import pandas as pd

    from simlab.scenario import load_scenario, sweep_points

    scenario = load_scenario(Path(run_path) / "scenario.yaml")
    points = sweep_points(scenario)  # each point validated once, for windows and adoption
    tables: dict[str, Any] = {}
    trials = pd.DataFrame(
        [{"trial": t["index"], "agent": t["agent"], "seed": t["seed"], **t.get("params", {})}
         for t in manifest["trials"]]
    )  # fmt: skip
    keys = ["agent", *sweep]
    by_point = windows_by_point(points, sweep)
    # (records, not itertuples: swept fields such as `platform.retrain_every` are no names)
    point_of = {
        int(r["trial"]): tuple(r.get(c) for c in sweep) for r in trials.to_dict("records")
    } if sweep else {}  # fmt: skip
    if all(c in df.columns for c in COUNTS):
        parts, rises = [], []
        for point, windows in by_point.items():
            mine = [t for t, p in point_of.items() if p == point] if sweep else None
            part = df if mine is None else df[df["trial"].isin(mine)]
            parts.append(pooled_bias(part, windows))
            rises.append(escalation(parts[-1], windows))
        pooled = pd.concat(parts, ignore_index=True)
        rise = pd.concat(rises, ignore_index=True)
        if len(pooled):  # else every step is warm-up: no window to pool
            tables["source bias by window"] = summarise_over_seeds(
                pooled, trials, [*keys, "window"], baseline
            )
        if len(rise):
            tables["source bias escalation"] = summarise_over_seeds(
                rise, trials, [*keys, "window"], baseline
            )
    if SHARE in df.columns:
        adoption = _adoption_points(points, sweep)
        if adoption:
            warm = trial_warmups(manifest)
            mine = [t for t, p in point_of.items() if p in adoption] if sweep else None
            part = df if mine is None else df[df["trial"].isin(mine)]
            # a trial that stopped before the scenario's last step is partial, even when
            # every trial stopped at the same step
            tips = tipping_points(part, scenario.steps, warm)
            tables["tipping point"] = summarise_over_seeds(tips, trials, keys, baseline)
    return tables


def _adoption_points(points: Sequence[Any], sweep: Sequence[str]) -> set[tuple]:
    """The sweep points whose content production is ``adoption``."""
    return {
        tuple(p.values.get(c) for c in sweep)
        for p in points
        if getattr(p.scenario.content.params, "production", None) == "adoption"
    }
