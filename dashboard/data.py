"""Pure data logic of the dashboard: phases, runs, metric frames, progress, Lorenz, PCA.

Nothing here imports Streamlit or Plotly, so every function is unit-tested on numbers
worked out by hand. The pages read a run through ``simlab.store`` (:func:`load_run`),
reduce it with the functions below and plot the result with ``simlab.dashboard.charts``.

Data flow of a metric chart: ``RunStore.read_metrics()`` gives one row per trial x step;
:func:`metric_frame` stacks the selected runs (tagging each row with its run and series),
smooths each trial's curve and, on request, turns every agent's rows into differences to
a baseline agent paired by run, seed, sweep point and step; ``simlab.intervals.aggregate``
then gives the mean and the chosen interval over seeds, clipped to the metric's range.
``scenario.yaml``'s ``content.phases`` give the shaded phase spans (:func:`phase_spans`); snapshots
give the Lorenz curve (:func:`lorenz`) and the 2-D projection of user interests
(:func:`fit_pca`, :func:`project`). Run metadata (labels, progress) is in ``runmeta``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from simlab import intervals
from simlab.dashboard import runmeta
from simlab.errors import RunStoreError, SimlabError
from simlab.store import RunStore, open_run

__all__ = [
    # phases
    "PhaseSpan",
    "phase_name",
    "phase_spans",
    # runs
    "LoadedRun",
    "load_run",
    "series_labels",
    "display_names",
    "seeds_per_series",
    "missing_columns",
    "metric_frame",
    # exposure and users
    "lorenz",
    "gini",
    "fit_pca",
    "project",
]

KEY_COLUMNS = ("run_id", "trial", "agent", "seed", "step")


# ---------------------------------------------------------------------- phases
@dataclass(frozen=True)
class PhaseSpan:
    """Steps ``[start, end)`` of one content phase.

    ``ramp`` steps from ``start`` move the AIGC share linearly from ``from_share`` (the
    previous phase's) to ``aigc_share``, as the content model does.
    """

    start: int
    end: int
    name: str
    aigc_share: float
    index: int = 0
    ramp: int = 0
    from_share: float = 0.0

    @property
    def label(self) -> str:
        """``coexisting 30%`` (distinct for distinct shares), with the ramp when there is one."""
        text = f"{self.name} {self.aigc_share:.0%}"
        return text + (f" (ramp {self.ramp})" if self.ramp else "")

    def share_at(self, step: int) -> float:
        """The AIGC share of new items at ``step`` inside this span (the ramp included)."""
        if not self.ramp:
            return self.aigc_share
        frac = min(1.0, (step - self.start + 1) / self.ramp)
        return self.from_share + (self.aigc_share - self.from_share) * frac


def phase_name(aigc_share: float) -> str:
    """``human-dominated`` (share 0), ``AIGC-dominated`` (above 0.5) or ``coexisting``.

    >>> [phase_name(s) for s in (0.0, 0.3, 0.5, 0.9)]
    ['human-dominated', 'coexisting', 'coexisting', 'AIGC-dominated']
    """
    if aigc_share <= 0:
        return "human-dominated"
    return "AIGC-dominated" if aigc_share > 0.5 else "coexisting"


def phase_spans(phases: list[dict[str, Any]] | None, steps: int) -> list[PhaseSpan]:
    """The step spans of ``content.phases`` (each ``{until, aigc_share, ramp}``) over ``steps``.

    Phase k covers steps from the previous ``until`` (or 0) up to its own ``until``
    (exclusive). The last phase lasts to the end whatever its ``until`` says, as in the
    content model. Empty spans are dropped; a ramp may run past its span's end.

    >>> phase_spans([{"until": 4, "aigc_share": 0.0}, {"aigc_share": 0.8}], 10)[1].label
    'AIGC-dominated 80%'
    """
    spans: list[PhaseSpan] = []
    phases = [p for p in phases or [] if isinstance(p, dict)]
    start, previous = 0, 0.0
    for k, phase in enumerate(phases):
        until = phase.get("until")
        last = k == len(phases) - 1
        end = steps if until is None or last else min(int(until), steps)
        share = float(phase.get("aigc_share", 0.0))
        ramp = int(phase.get("ramp") or 0) if k else 0
        if end > start:
            spans.append(PhaseSpan(start, end, phase_name(share), share, k, ramp, previous))
        start, previous = max(start, end), share
        if start >= steps:
            break
    return spans


# ---------------------------------------------------------------------- runs
@dataclass
class LoadedRun:
    """A run read for plotting: its store, metric rows, resolved scenario and labels."""

    store: RunStore
    metrics: pd.DataFrame
    scenario: dict[str, Any]
    labels: dict[str, Any]

    @property
    def run_id(self) -> str:
        """The run directory's name."""
        return self.store.path.name

    @property
    def label(self) -> str:
        """The display name given on the Runs page, else the run id."""
        return str(self.labels.get("name") or self.run_id)

    @property
    def steps(self) -> int:
        """Steps per trial from the scenario (or the rows so far when it lacks them)."""
        steps = self.scenario.get("steps")
        if isinstance(steps, int) and steps > 0:
            return steps
        return int(self.metrics["step"].max()) + 1 if len(self.metrics) else 0

    @property
    def metric_columns(self) -> list[str]:
        """Metric columns the manifest declares and the rows hold."""
        return [c for c in self.store.manifest["metric_columns"] if c in self.metrics.columns]

    @property
    def sweep_columns(self) -> list[str]:
        """Sweep parameter columns of the rows."""
        return [c for c in self.store.manifest.get("sweep_columns", []) if c in self.metrics]

    @property
    def ranges(self) -> dict[str, intervals.ValueRange]:
        """Declared value ranges of the metric columns (see ``simlab.intervals``)."""
        return intervals.metric_ranges(self.store.manifest)

    @property
    def warmup(self) -> int:
        """Steps before the first retrained model serves (the longest over the run's trials).

        Summaries leave them out; charts shade them. 0 for runs written before trials
        recorded it.
        """
        trials = self.store.manifest.get("trials") or []
        return max((int(t.get("warmup", 0) or 0) for t in trials), default=0)

    @property
    def warmups(self) -> list[int]:
        """The distinct warm-ups of the run's trials, sorted (variants may differ: Chaney's)."""
        trials = self.store.manifest.get("trials") or []
        return sorted({int(t.get("warmup", 0) or 0) for t in trials})

    @cached_property
    def point_phases(self) -> list[tuple[dict[str, Any], list[dict[str, Any]] | None]]:
        """``(sweep values, content.phases)`` of each sweep point (None: no schedule).

        Each point's own scenario, its variant's and sweep's changes applied, as ``simlab
        report`` resolves it; the top-level phases alone when the scenario no longer loads.
        """
        top = (self.scenario.get("content") or {}).get("phases")
        try:
            from simlab.scenario import load_scenario, sweep_points

            points = sweep_points(load_scenario(self.store.path / "scenario.yaml"))
        except (SimlabError, OSError, ValueError):
            return [({}, top)]
        out = []
        for point in points:
            params = point.scenario.content.params
            phases = getattr(params, "phases", None)
            scheduled = getattr(params, "production", "schedule") == "schedule"
            raw = [ph.model_dump() for ph in phases] if phases and scheduled else None
            out.append((dict(point.values), raw))
        return out

    @property
    def phases_differ(self) -> bool:
        """Whether the run's sweep points (variants) have different content phases."""
        return len({json.dumps(p, sort_keys=True, default=str) for _, p in self.point_phases}) > 1

    def phases(
        self, steps: int | None = None, point: dict[str, Any] | None = None
    ) -> list[PhaseSpan]:
        """The content phases as spans over ``steps`` (default: the run's own).

        Those of the sweep point whose sweep values are ``point``; without ``point``, those
        every point shares (none when they differ: :attr:`phases_differ`).
        """
        steps = self.steps if steps is None else steps
        if point is not None:
            for values, raw in self.point_phases:
                if all(str(values.get(c)) == str(v) for c, v in point.items()):
                    return phase_spans(raw, steps)
            return []
        return [] if self.phases_differ else phase_spans(self.point_phases[0][1], steps)


def load_run(path: str | Path) -> LoadedRun:
    """Open a run directory and read its metrics, scenario and labels.

    The rows' ``run_id`` is set to the directory's name (a copied run keeps the original
    id in its rows), so runs are told apart by folder, as everywhere in the dashboard.

    Raises:
        RunStoreError: a missing, corrupt or half-written run (from ``simlab.store``), or an
            unreadable ``scenario.yaml`` (the pages show the message).
    """
    store = open_run(path)
    metrics = store.read_metrics()
    metrics["run_id"] = store.path.name
    scenario_file = store.path / "scenario.yaml"
    scenario = {}
    if scenario_file.is_file():
        try:
            scenario = yaml.safe_load(scenario_file.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, OSError, UnicodeDecodeError, RecursionError) as e:
            raise RunStoreError(f"{scenario_file}: unreadable scenario ({e})") from None
    if not isinstance(scenario, dict):
        scenario = {}
    return LoadedRun(store, metrics, scenario, runmeta.read_labels(store.path))


def series_labels(df: pd.DataFrame, sweep_columns: list[str], run_prefix: str = "") -> pd.Series:
    """One label per row naming its series: ``[run: ]agent[ (sweep=value, ...)]``."""
    labels = df["agent"].astype(str)
    for col in sweep_columns:
        labels = labels + f" {col.rsplit('.', 1)[-1]}=" + df[col].astype(str)
    return (run_prefix + labels) if run_prefix else labels


def display_names(runs: list[LoadedRun]) -> dict[str, str]:
    """Run id -> the name its series carry: its label, with the id when two labels collide."""
    counts = pd.Series([r.label for r in runs]).value_counts()
    return {r.run_id: r.label if counts[r.label] == 1 else f"{r.label} ({r.run_id})" for r in runs}


def seeds_per_series(runs: list[LoadedRun]) -> dict[str, int]:
    """Seeds with rows per series, named as :func:`metric_frame` names them (few-seeds note)."""
    names, out = display_names(runs), {}
    for run in runs:
        df = run.metrics
        if not df.empty:
            prefix = f"{names[run.run_id]}: " if len(runs) > 1 else ""
            labels = series_labels(df, run.sweep_columns, prefix)
            out.update(df["seed"].groupby(labels).nunique().astype(int).to_dict())
    return out


def missing_columns(df: pd.DataFrame, wanted: list[str]) -> list[str]:
    """The ``wanted`` columns that ``df`` lacks or holds only NaN in."""
    return [c for c in wanted if c not in df.columns or df[c].isna().all()]


def metric_frame(
    runs: list[LoadedRun],
    metrics: list[str],
    smoothing: intervals.Smoothing | None = None,
    baseline: str | None = None,
) -> pd.DataFrame:
    """The selected runs' rows, ready for ``simlab.intervals.aggregate``.

    Every row gets ``run_id`` (its folder), ``series`` (``[run: ]agent[ sweep=value]``, the
    run named by :func:`display_names` when several runs are shown) and ``variant`` (the
    sweep point's rank within its agent, 0 without a sweep). Each trial's curve is smoothed;
    with a ``baseline`` agent every other agent's values become differences to the
    baseline's at the same run, seed, sweep point and step, and the baseline's own rows are
    dropped (a run without the baseline agent contributes nothing).
    """
    frames, names = [], display_names(runs)
    for run in runs:
        df = run.metrics
        cols = [c for c in metrics if c in df.columns]
        keep = [*KEY_COLUMNS, *run.sweep_columns, *cols]
        df = df[[c for c in dict.fromkeys(keep) if c in df.columns]].copy()
        df = intervals.smooth_frame(df, cols, smoothing or intervals.Smoothing(), by=["trial"])
        if baseline is not None:
            if baseline not in set(df["agent"]):
                continue
            keys = ["seed", *run.sweep_columns, "step"]
            df = intervals.paired_difference(df, cols, baseline, keys)
        prefix = f"{names[run.run_id]}: " if len(runs) > 1 else ""
        df["series"] = series_labels(df, run.sweep_columns, prefix)
        df["variant"] = 0
        if run.sweep_columns:  # rank of the sweep point within its agent: a shade per point
            point = df[run.sweep_columns].astype(str).agg("|".join, axis=1)
            df["variant"] = point.groupby(df["agent"]).transform(
                lambda s: pd.factorize(s, sort=True)[0]
            )
        frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# ---------------------------------------------------------------------- exposure and users
def lorenz(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Lorenz curve of exposure counts: cumulative share of items vs of impressions.

    Items are sorted by count ascending; the curve starts at (0, 0) and ends at (1, 1).
    With no impressions at all it is the line of equality.

    Args:
        counts: ``(num_items,)`` impressions per item.

    Returns:
        ``(x, y)``, each ``(num_items + 1,)``.

    >>> x, y = lorenz(np.array([0, 0, 4]))
    >>> x.round(3).tolist(), y.tolist()
    ([0.0, 0.333, 0.667, 1.0], [0.0, 0.0, 0.0, 1.0])
    """
    c = np.sort(np.asarray(counts, dtype=np.float64).ravel())
    n = c.shape[0]
    x = np.arange(n + 1, dtype=np.float64) / max(n, 1)
    total = c.sum()
    if total <= 0:
        return x, x.copy()
    y = np.concatenate([[0.0], np.cumsum(c) / total])
    return x, y


def gini(counts: np.ndarray) -> float:
    """Gini of exposure counts, ``Σ_j (2j − N − 1) c_(j) / (N Σ c)`` (NaN with no impressions).

    The same formula as the ``exposure/gini`` metric.

    >>> round(gini(np.array([0, 0, 4])), 4), gini(np.array([2, 2]))
    (0.6667, 0.0)
    """
    c = np.sort(np.asarray(counts, dtype=np.float64).ravel())
    n, total = c.shape[0], c.sum()
    if n == 0 or total <= 0:
        return float("nan")
    j = np.arange(1, n + 1)
    return float(((2 * j - n - 1) * c).sum() / (n * total))


def fit_pca(x: np.ndarray, components: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Principal axes of ``x`` by SVD of the centred data (no scikit-learn).

    Each axis's sign is fixed so that its largest-magnitude loading is positive, so the
    same data always gives the same picture.

    Args:
        x: ``(num_users, dim)`` interest vectors.
        components: number of axes kept (at most ``dim``).

    Returns:
        ``(mean, axes)``: ``(dim,)`` and ``(components, dim)``; pass them to :func:`project`.
    """
    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(axis=0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    axes = vt[:components]
    if axes.shape[0] < components:  # fewer samples than axes: pad with zero axes
        axes = np.vstack([axes, np.zeros((components - axes.shape[0], x.shape[1]))])
    signs = np.sign(axes[np.arange(axes.shape[0]), np.abs(axes).argmax(axis=1)])
    signs[signs == 0] = 1.0
    return mean, axes * signs[:, None]


def project(x: np.ndarray, mean: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """Coordinates ``(num_users, components)`` of ``x`` on axes from :func:`fit_pca`."""
    return (np.asarray(x, dtype=np.float64) - mean) @ axes.T
