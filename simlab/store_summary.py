"""Summaries of a run's metrics: per agent and sweep point, over steps then over seeds.

Part of :mod:`simlab.store`, which re-exports :func:`summarize`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["summarize", "trial_warmups", "warmup_note", "stopped_note"]


def trial_warmups(manifest: dict[str, Any]) -> dict[int, int]:
    """Each trial's warm-up steps (``warmup`` in its manifest record; 0 when absent)."""
    return {int(t["index"]): int(t.get("warmup", 0)) for t in manifest.get("trials", [])}


def summarize(df, manifest: dict[str, Any]):
    """Per agent (and sweep point): each metric summarised over steps, then over seeds.

    A metric's step summary is its mean over the steps after the trial's warm-up (the steps
    before its first retrained model serves, ``warmup`` in the manifest's trial records), or
    its last value for cumulative measures (``metric_summary`` in the manifest says which).
    Returns a DataFrame with one row per (agent, sweep point) and, per metric, ``<metric>``
    (mean over seeds) and ``<metric> sd`` (standard deviation over seeds).

    A paired column (``metric_sources`` in ``manifest`` maps it to its source metric: a
    difference to a baseline agent, NaN where the baseline has no row) also gets
    ``<metric> n``, the seeds it has a value for; a cumulative one is read at the step of
    its source's last value, so a seed whose baseline stopped earlier drops out instead of
    contributing an earlier step's difference. Any other metric gets ``<metric> n`` when
    some row has a seed without a value (its mean and sd are over the seeds with one).
    """
    import pandas as pd

    metrics = [c for c in manifest["metric_columns"] if c in df.columns]
    kinds = manifest.get("metric_summary", {})
    sweep = [c for c in manifest.get("sweep_columns", []) if c in df.columns]
    if df.empty:
        return pd.DataFrame(columns=["agent", *sweep, "seeds", "steps", *metrics])
    sources = manifest.get("metric_sources", {})
    trials = _per_trial(df, metrics, kinds, sweep, trial_warmups(manifest), sources)
    order = list(dict.fromkeys(trials["agent"]))
    keys = ["agent", *sweep]
    grouped = trials.groupby(keys, sort=False, dropna=False)
    res = grouped.size().rename("seeds").to_frame()
    res["steps"] = grouped["steps"].min().astype(int)
    values = grouped[metrics]
    stats = {"": values.mean(), " sd": values.std(ddof=1), " n": values.count()}  # sd: ddof 1
    cols = {f"{c}{suffix}": frame[c] for c in metrics for suffix, frame in stats.items()}
    res = pd.concat([res, pd.DataFrame(cols, index=res.index)], axis=1).reset_index()
    # seed counts only where they say something: paired columns, and seeds without a value
    full = [c for c in metrics if c not in sources and (res[f"{c} n"] == res["seeds"]).all()]
    res = res.drop(columns=[f"{c} n" for c in full])
    # agents, then sweep points, in the scenario's order (the trials' order)
    res["_o"] = res["agent"].map(order.index)
    keys = ["_o"]
    for i, c in enumerate(sweep):
        seen = list(dict.fromkeys(trials.sort_values("trial")[c]))
        res[f"_s{i}"] = res[c].map({v: j for j, v in enumerate(seen)})
        keys.append(f"_s{i}")
    res = res.sort_values(keys, kind="stable")
    return res.drop(columns=keys).reset_index(drop=True)


def _per_trial(df, metrics, kinds, sweep, warmup, sources):
    """One row per trial: its agent, seed, sweep values, steps and each metric's step summary.

    A ``mean`` metric: the mean of its values from the trial's warm-up on (NaN left out); a
    ``last`` one: its last value, or with a source its value at the source's last value.
    """
    import pandas as pd

    df = df.sort_values(["trial", "step"], kind="stable")
    rows = df.drop_duplicates("trial").set_index("trial")  # each trial's first step
    out = rows[["agent", "seed"]].copy()
    out["steps"] = df.groupby("trial").size()
    for c in sweep:
        out[c] = rows[c]
    cumulative = {c for c in metrics if kinds.get(c) == "last"}
    last = [c for c in metrics if c in cumulative and c not in sources]
    mean = [c for c in metrics if c not in cumulative]
    after = df["step"].to_numpy() >= df["trial"].map(warmup).fillna(0).to_numpy()
    summary = {}
    if mean:
        summary.update(df.loc[after].groupby("trial")[mean].mean().reindex(out.index).items())
    if last:  # the last value that is not NaN
        summary.update(df.groupby("trial")[last].last().items())
    for c in metrics:
        if c in cumulative and c in sources:  # at the step of the source's last value
            at = df[df[sources[c]].notna()].groupby("trial").tail(1).set_index("trial")[c]
            summary[c] = at.reindex(out.index)
    trials = pd.DataFrame({c: summary[c] for c in metrics}, index=out.index)
    return pd.concat([out, trials], axis=1).reset_index()


def warmup_note(df, manifest: dict[str, Any]) -> str | None:
    """A note naming the agents whose rows are all warm-up (their step means are empty).

    The warm-up of a trial (``warmup`` in the manifest's trial records) is the steps before
    its first retrained model serves; a run no longer than it has nothing to average.
    """
    if df.empty:
        return None
    warmup = trial_warmups(manifest)
    last = df.groupby("trial")["step"].max()
    within = [int(t) for t, s in last.items() if s < warmup.get(int(t), 0)]
    if not within:
        return None
    agents = list(dict.fromkeys(df.loc[df["trial"].isin(within), "agent"]))
    steps = sorted({warmup[t] for t in within})
    return (
        f"Every step of {', '.join(map(str, agents))} is warm-up (the first "
        f"{'/'.join(map(str, steps))} steps, before the first retrained model serves: "
        "platform.retrain_every - 1 + deploy_lag, or startup_steps - 1 + deploy_lag), so "
        "their means over steps are empty (-); run more steps than that."
    )


def stopped_note(df, manifest: dict | None = None) -> str | None:
    """A note on trials whose rows end before the run's longest trial's (a stopped run).

    Their step means and pooled windows cover the steps they ran, which differ from the
    other trials'; ``simlab resume`` runs them to the end. When every trial stopped at the
    same step, the ``manifest``'s interrupted or failed trials are named instead.
    """
    if df.empty:
        return None
    last = df.groupby("trial")["step"].max()
    end = int(last.max())
    short = last[last < end]
    agent = df.drop_duplicates("trial").set_index("trial")["agent"]
    if short.empty:
        trials = (manifest or {}).get("trials", [])
        stopped = last[last.index.isin(
            [t["index"] for t in trials if t.get("status") in ("interrupted", "failed")]
        )]  # fmt: skip
        if stopped.empty:
            return None
        names = ", ".join(map(str, dict.fromkeys(agent.loc[stopped.index])))
        return (
            f"{len(stopped)} of {len(last)} trials ({names}) stopped (interrupted or failed) "
            f"at step {end}, before the run's end: their means, windows and tipping points "
            "cover the steps they ran; `simlab resume` runs them to the end."
        )
    names = ", ".join(map(str, dict.fromkeys(agent.loc[short.index])))
    lo, hi = int(short.min()), int(short.max())
    return (
        f"{len(short)} of {len(last)} trials ({names}) stopped before the longest one's last "
        f"step {end} (theirs: {lo if lo == hi else f'{lo}-{hi}'}): their means and windows "
        "cover the steps they ran; `simlab resume` runs them to the end."
    )
