"""Run metadata for the Runs and Live pages: labels, durations, differing settings, progress.

Pure functions (no Streamlit). A run's display name and tags live in ``<run>/labels.json``
(written by the Runs page, read by every page), so they travel with the run directory and
are seen from any browser. :func:`differing_settings` compares resolved scenarios to find
the ``--set``/sweep values that tell selected runs apart; :func:`run_progress` and
:func:`rate_and_eta` are the Live page's counters.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = [
    "LABELS",
    "read_labels",
    "write_labels",
    "parse_tags",
    "duration",
    "format_seconds",
    "plural",
    "flatten",
    "differing_settings",
    "format_cell",
    "key_metric_cells",
    "Progress",
    "run_progress",
    "rate_and_eta",
]

LABELS = "labels.json"
"""A run directory's display name and tags, written by the dashboard's Runs page."""


# ---------------------------------------------------------------------- labels
def read_labels(path: Path) -> dict[str, Any]:
    """``{"name": str, "tags": [str]}`` from ``<run>/labels.json`` (empty when absent or bad)."""
    try:
        raw = json.loads((Path(path) / LABELS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(raw, dict):
        return {}
    tags = raw.get("tags") if isinstance(raw.get("tags"), list) else []
    name = raw.get("name") if isinstance(raw.get("name"), str) else ""
    return {"name": name, "tags": [str(t) for t in tags]}


def write_labels(path: Path, name: str, tags: list[str]) -> dict[str, Any]:
    """Store a run's display name and tags in ``<run>/labels.json`` (atomically).

    Tags are stripped, deduplicated and kept in order; empty ones are dropped.

    Raises:
        OSError: the run directory is not writable.
    """
    clean = list(dict.fromkeys(t.strip() for t in tags if t and t.strip()))
    labels = {"name": name.strip(), "tags": clean}
    target = Path(path) / LABELS
    tmp = target.with_name(f".{LABELS}.tmp")
    tmp.write_text(json.dumps(labels, indent=2), encoding="utf-8")
    tmp.replace(target)
    return labels


def parse_tags(text: str) -> list[str]:
    """Comma-separated tags as a list: stripped, empty ones dropped, duplicates removed.

    >>> parse_tags(" baseline, ,v2,baseline")
    ['baseline', 'v2']
    """
    return list(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))


# ---------------------------------------------------------------------- table cells
def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def format_seconds(seconds: float | None) -> str:
    """``42 s``, ``3 min 05 s``, ``2 h 07 min``; ``-`` for None.

    >>> [format_seconds(s) for s in (4.2, 185, 7620, None)]
    ['4 s', '3 min 05 s', '2 h 07 min', '-']
    """
    if seconds is None or seconds != seconds or seconds < 0:
        return "-"
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


def plural(n: int, word: str) -> str:
    """``1 problem``, ``2 problems``, ``1,000 trials``.

    >>> plural(1, "problem"), plural(0, "trial"), plural(1200, "step")
    ('1 problem', '0 trials', '1,200 steps')
    """
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def duration(manifest: Mapping[str, Any], status: str, now: datetime | None = None) -> str:
    """Wall time of a run: start to end, or to ``now`` while running (``-`` when unknown)."""
    start = _parse_time(manifest.get("started"))
    end = _parse_time(manifest.get("ended"))
    if start is None:
        return "-"
    if end is None:
        if status != "running":
            return "-"
        end = now or datetime.now(timezone.utc)
        return format_seconds((end - start).total_seconds()) + " so far"
    return format_seconds((end - start).total_seconds())


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """A nested scenario as ``{dotted.path: leaf}``; lists of mappings get ``[i]`` indices.

    Lists of plain values (seeds, sweep grids) stay one leaf.

    >>> flatten({"users": {"n": 5}, "agents": [{"model": "mf"}], "seeds": [0, 1]})
    {'users.n': 5, 'agents[0].model': 'mf', 'seeds': [0, 1]}
    """
    out: dict[str, Any] = {}
    if isinstance(value, Mapping):
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(value, list) and any(isinstance(v, Mapping) for v in value):
        for i, v in enumerate(value):
            out.update(flatten(v, f"{prefix}[{i}]"))
    else:
        out[prefix] = value
    return out


IGNORED_SETTINGS = ("description",)


def differing_settings(scenarios: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    """The scenario fields whose values differ between runs: ``{path: {run: value}}``.

    Args:
        scenarios: resolved scenario (``scenario.yaml``) per run id; at least two are needed.

    A field missing from a run counts as ``-``. The scenario ``name`` and ``description``
    are left out (the table shows the scenario already). Paths keep the scenario's order.
    """
    if len(scenarios) < 2:
        return {}
    flat = {run: flatten(dict(sc)) for run, sc in scenarios.items()}
    paths = list(dict.fromkeys(p for f in flat.values() for p in f))
    out: dict[str, dict[str, str]] = {}
    for path in paths:
        if path in ("name", *IGNORED_SETTINGS):
            continue
        cells = {run: format_cell(f.get(path, "-")) for run, f in flat.items()}
        if len(set(cells.values())) > 1:
            out[path] = cells
    return out


def format_cell(value: Any) -> str:
    """A scenario value as table text: floats with %g, lists in brackets, None as ``-``."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_cell(v) for v in value) + "]"
    return "-" if value is None else str(value)


def point_text(values: Mapping[str, Any]) -> str:
    """`` variant=x slate_size=5``: a sweep point's values after an agent's name.

    Each sweep column by its last dotted part, as :func:`simlab.dashboard.data.series_labels`
    names the series.
    """
    return "".join(f" {str(c).rsplit('.', 1)[-1]}={v}" for c, v in values.items())


def key_metric_cells(
    summary: pd.DataFrame, metrics: Sequence[str], sweep: Sequence[str] = ()
) -> dict[str, str]:
    """Per metric, ``agent value · agent value`` from ``simlab.store.summarize`` rows.

    With ``sweep`` columns each sweep point is its own entry (``agent variant=x value``), as
    ``simlab show`` prints them: points are different worlds, never averaged. A metric the
    run lacks gives ``-``.
    """
    out = {}
    sweep = [c for c in sweep if c in summary.columns]
    for m in metrics:
        if summary.empty or m not in summary.columns:
            out[m] = "-"
            continue
        cells = []
        for _, row in summary.iterrows():
            v = row[m]
            if v == v:  # (NaN: the agent never measured it)
                point = point_text({c: row[c] for c in sweep})
                cells.append(f"{row['agent']}{point} {v:.3g}")
        out[m] = " · ".join(cells) or "-"
    return out


# ---------------------------------------------------------------------- progress
@dataclass(frozen=True)
class Progress:
    """How far a run is: trial-steps done of the total and trials by state.

    Attributes:
        done: trial-steps with a metric row (per trial: its newest step + 1).
        total: trials x steps per trial.
        queued, running, finished: trials with no step yet, some, all of them.
        per_trial: one row per trial of the manifest: trial, agent, seed, steps done, state.
    """

    done: int
    total: int
    queued: int
    running: int
    finished: int
    per_trial: pd.DataFrame


def run_progress(
    df: pd.DataFrame, trials: list[dict[str, Any]], steps: int, live: bool = True
) -> Progress:
    """Count trial-steps and trial states from the metric rows and the manifest's trials.

    The rows are the truth (the manifest's ``steps_done`` is rewritten only at flushes). A
    run no longer written (``live`` false: interrupted, failed) has trials ``not started``
    and ``stopped`` where a live one has them ``queued`` and ``running``.
    """
    newest = df.groupby("trial")["step"].max() if len(df) else pd.Series(dtype=float)
    rows = []
    waiting, partway = ("queued", "running") if live else ("not started", "stopped")
    for i, t in enumerate(trials):
        index = int(t.get("index", i))
        done = int(newest.get(index, -1)) + 1
        state = waiting if done == 0 else "done" if done >= steps else partway
        rows.append({"trial": index, "agent": t.get("agent", "?"), "seed": t.get("seed", -1),
                     "steps done": done, "state": state})  # fmt: skip
    per_trial = pd.DataFrame(rows, columns=["trial", "agent", "seed", "steps done", "state"])
    states = per_trial["state"].value_counts()
    return Progress(
        done=int(per_trial["steps done"].clip(upper=steps).sum()),
        total=steps * len(trials),
        queued=int(states.get(waiting, 0)),
        running=int(states.get(partway, 0)),
        finished=int(states.get("done", 0)),
        per_trial=per_trial,
    )


def rate_and_eta(
    samples: list[tuple[float, int]], total: int, started: str | None = None, now: float = 0.0
) -> tuple[float | None, float | None]:
    """Trial-steps per second and seconds left, from ``(time, done)`` samples.

    The rate is taken over the samples (oldest to newest) when they span at least one
    second and show progress; otherwise since ``started`` (the manifest's ISO time) with
    ``now`` as a Unix time. ``(None, None)`` when nothing can be said yet.

    >>> rate_and_eta([(0.0, 10), (4.0, 30)], 130)
    (5.0, 20.0)
    """
    rate = None
    if len(samples) >= 2:
        (t0, d0), (t1, d1) = samples[0], samples[-1]
        if t1 - t0 >= 1.0 and d1 > d0:
            rate = (d1 - d0) / (t1 - t0)
    if rate is None and started and samples:
        try:
            begin = datetime.fromisoformat(started)
        except ValueError:
            begin = None
        if begin is not None:
            if begin.tzinfo is None:
                begin = begin.replace(tzinfo=timezone.utc)
            elapsed = now - begin.timestamp()
            if elapsed >= 1.0 and samples[-1][1] > 0:
                rate = samples[-1][1] / elapsed
    if rate is None:
        return None, None
    return rate, max(total - samples[-1][1], 0) / rate
