"""Pure data logic of the dashboard: aggregations, phases, Lorenz curves and projections.

Nothing here imports Streamlit or Plotly, so every function is unit-tested on numbers
worked out by hand. The pages (``simlab.dashboard.views``) read a run through
``simlab.store`` (:func:`load_run`), reduce it with the functions below and plot the
result with ``simlab.dashboard.charts``.

Data flow: ``RunStore.read_metrics()`` gives one row per trial x step; the Compare page
turns it into mean and a 95% interval over seeds per agent and step
(:func:`aggregate_over_seeds`); ``scenario.yaml``'s ``content.phases`` give the shaded
phase spans (:func:`phase_spans`); snapshots give the Lorenz curve (:func:`lorenz`) and
the 2-D projection of user interests (:func:`fit_pca`, :func:`project`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from simlab.errors import RunStoreError
from simlab.report import t_quantile
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
    "missing_columns",
    # aggregation
    "t_quantile",
    "aggregate_over_seeds",
    "steps_done_per_trial",
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
    """Steps ``[start, end)`` of one content phase, named by its AIGC share."""

    start: int
    end: int
    name: str
    aigc_share: float


def phase_name(aigc_share: float) -> str:
    """``human-dominated`` (share 0), ``AIGC-dominated`` (above 0.5) or ``coexisting``.

    >>> [phase_name(s) for s in (0.0, 0.3, 0.5, 0.9)]
    ['human-dominated', 'coexisting', 'coexisting', 'AIGC-dominated']
    """
    if aigc_share <= 0:
        return "human-dominated"
    return "AIGC-dominated" if aigc_share > 0.5 else "coexisting"


def phase_spans(phases: list[dict[str, Any]] | None, steps: int) -> list[PhaseSpan]:
    """The step spans of ``content.phases`` (each ``{until, aigc_share}``), cut at ``steps``.

    Phase k covers steps from the previous ``until`` (or 0) up to its own ``until``
    (exclusive; ``None`` = to the end). Empty spans are dropped.

    >>> phase_spans([{"until": 4, "aigc_share": 0.0}, {"aigc_share": 0.8}], 10)[1]
    PhaseSpan(start=4, end=10, name='AIGC-dominated', aigc_share=0.8)
    """
    spans: list[PhaseSpan] = []
    start = 0
    for phase in phases or []:
        until = phase.get("until")
        end = steps if until is None else min(int(until), steps)
        share = float(phase.get("aigc_share", 0.0))
        if end > start:
            spans.append(PhaseSpan(start, end, phase_name(share), share))
        start = max(start, end)
        if start >= steps:
            break
    return spans


# ---------------------------------------------------------------------- runs
@dataclass
class LoadedRun:
    """A run read for plotting: its store, metric rows and resolved scenario."""

    store: RunStore
    metrics: pd.DataFrame
    scenario: dict[str, Any]

    @property
    def run_id(self) -> str:
        """The run directory's name."""
        return self.store.path.name

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

    def phases(self) -> list[PhaseSpan]:
        """The content phases of the run's scenario as step spans."""
        content = self.scenario.get("content") or {}
        return phase_spans(content.get("phases"), self.steps)


def load_run(path: str | Path) -> LoadedRun:
    """Open a run directory and read its metrics and scenario.

    Raises:
        RunStoreError: a missing, corrupt or half-written run (from ``simlab.store``), or an
            unreadable ``scenario.yaml`` (the pages show the message).
    """
    store = open_run(path)
    metrics = store.read_metrics()
    scenario_file = store.path / "scenario.yaml"
    scenario = {}
    if scenario_file.is_file():
        try:
            scenario = yaml.safe_load(scenario_file.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, OSError, UnicodeDecodeError, RecursionError) as e:
            raise RunStoreError(f"{scenario_file}: unreadable scenario ({e})") from None
    if not isinstance(scenario, dict):
        scenario = {}
    return LoadedRun(store, metrics, scenario)


def series_labels(df: pd.DataFrame, sweep_columns: list[str], run_prefix: str = "") -> pd.Series:
    """One label per row naming its series: ``[run: ]agent[ (sweep=value, ...)]``."""
    labels = df["agent"].astype(str)
    for col in sweep_columns:
        labels = labels + f" {col.rsplit('.', 1)[-1]}=" + df[col].astype(str)
    return (run_prefix + labels) if run_prefix else labels


def missing_columns(df: pd.DataFrame, wanted: list[str]) -> list[str]:
    """The ``wanted`` columns that ``df`` lacks or holds only NaN in."""
    return [c for c in wanted if c not in df.columns or df[c].isna().all()]


# ---------------------------------------------------------------------- aggregation
def aggregate_over_seeds(df: pd.DataFrame, metric: str, by: str = "series") -> pd.DataFrame:
    """Mean and a 95% interval over seeds of ``metric`` per ``by`` group and step.

    The interval is the Student-t confidence interval of the mean,
    ``mean ± t(n-1) * sd / sqrt(n)`` with the sample sd (ddof=1) over the ``n`` seeds that
    have a value at that step; with one seed it collapses to the mean. NaN values are
    left out.

    Returns:
        One row per (``by``, step) with columns ``by``, ``step``, ``mean``, ``lo``, ``hi``
        and ``n`` (seeds counted), in the order the groups first appear.
    """
    cols = [by, "step", "mean", "lo", "hi", "n"]
    if df.empty or metric not in df.columns:
        return pd.DataFrame(columns=cols)
    values = df[[by, "step", metric]].dropna(subset=[metric])
    grouped = values.groupby([by, "step"], sort=False)[metric]
    out = grouped.agg(mean="mean", sd="std", n="count").reset_index()
    half = [
        0.0 if n < 2 else t_quantile(int(n) - 1) * sd / math.sqrt(n)
        for sd, n in zip(out["sd"], out["n"], strict=True)
    ]
    out["lo"] = out["mean"] - half
    out["hi"] = out["mean"] + half
    order = {k: i for i, k in enumerate(dict.fromkeys(df[by]))}
    out = out.sort_values([by, "step"], key=lambda s: s.map(order) if s.name == by else s)
    return out[cols].reset_index(drop=True)


def steps_done_per_trial(df: pd.DataFrame) -> pd.DataFrame:
    """Per trial: agent, seed and steps done (newest step + 1) from the metric rows."""
    cols = ["trial", "agent", "seed", "steps done"]
    if df.empty:
        return pd.DataFrame(columns=cols)
    out = df.groupby("trial", sort=True).agg(
        agent=("agent", "first"), seed=("seed", "first"), last=("step", "max")
    )
    out["steps done"] = out["last"].astype(int) + 1
    return out.reset_index()[cols]


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
