"""Intervals over seeds, smoothing and range clipping, shared by the dashboard and the report.

A run has one row per trial x step; a trial is an agent (and sweep point) at one seed. To
plot a metric over time, :func:`smooth_frame` optionally smooths each trial's curve
(:class:`Smoothing`: an exponential moving average or a trailing rolling mean, off by
default), then :func:`aggregate` takes, per series and step, the mean over seeds and an
interval around it:

- ``se`` (the default): ``mean ± sd / sqrt(n)``, one standard error of the mean;
- ``sd``: ``mean ± sd``, the spread of the seeds themselves;
- ``t``: ``mean ± t(0.975, n - 1) · sd / sqrt(n)``, the 95% Student-t interval of the mean,
  which is very wide for few seeds (``t(0.975, 1) = 12.7``);
- ``seeds``: no band; every seed's own line is drawn instead.

``sd`` is the sample standard deviation (ddof 1) over the ``n`` seeds with a value at that
step (NaN values are left out); with one seed every band collapses to the mean. Band edges
are clipped to the metric's declared range (:attr:`simlab.metrics.Metric.ranges`, written
to a run's ``manifest.json`` as ``metric_ranges``); a metric without a declared range is
not clipped. :func:`few_seeds_note` is the warning shown when a series has fewer than
:data:`MIN_SEEDS` seeds.

:func:`paired_difference` turns rows into differences to a baseline agent, paired by seed
and step (common random numbers make the pairing meaningful), before aggregation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from simlab.paired import Paired, add_paired

__all__ = [
    "INTERVALS",
    "DEFAULT_INTERVAL",
    "MIN_SEEDS",
    "ValueRange",
    "Smoothing",
    "t_quantile",
    "half_width",
    "clip_band",
    "smooth_values",
    "smooth_frame",
    "aggregate",
    "check_interval",
    "check_kind",
    "paired_difference",
    "difference_range",
    "metric_ranges",
    "few_seeds_note",
]

INTERVALS: dict[str, str] = {
    "se": "±1 standard error",
    "sd": "±1 standard deviation",
    "t": "95% Student-t interval",
    "seeds": "every seed's line",
}
"""Interval kinds and their labels, in the order the controls offer them."""

DEFAULT_INTERVAL = "se"
MIN_SEEDS = 3
"""Below this many seeds a series' interval is flagged as unreliable."""

ValueRange = tuple[float | None, float | None]
"""``(low, high)`` bounds of a metric's values; ``None`` on a side means unbounded."""


def t_quantile(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom (NaN for ``df < 1``).

    >>> round(t_quantile(4), 3), round(t_quantile(1000), 3)
    (2.776, 1.962)
    """
    return float(_t975(np.asarray(df, dtype=np.float64)))


def _t975(df: np.ndarray) -> np.ndarray:
    """:func:`t_quantile` of every element (scipy's inverse t CDF; NaN where ``df < 1``)."""
    from scipy.special import stdtrit  # only reports and the dashboard need it

    return np.where(df >= 1, stdtrit(np.maximum(df, 1.0), 0.975), np.nan)


def check_interval(kind: str, where: str = "interval") -> str:
    """``kind`` if it is one of :data:`INTERVALS`, else ValueError naming ``where``."""
    return check_kind(
        kind, INTERVALS, where, "interval",
        "standard error, standard deviation, Student t, every seed's line",
    )  # fmt: skip


def check_kind(kind: str, allowed: Iterable[str], where: str, noun: str, gloss: str) -> str:
    """``kind`` if it is among ``allowed``, else a ValueError.

    The message names ``where`` (the field or flag), the ``noun`` (``"interval"``), the value
    and the allowed kinds, glossed by ``gloss``.
    """
    allowed = list(allowed)
    if kind not in allowed:
        raise ValueError(
            f"{where}: unknown {noun} {kind!r}. Allowed: {', '.join(allowed)} ({gloss})"
        )
    return kind


# ---------------------------------------------------------------------- smoothing
@dataclass(frozen=True)
class Smoothing:
    """How each trial's curve is smoothed over steps before the mean over seeds.

    Attributes:
        method: ``"off"``, ``"ema"`` (exponential moving average, debiased as TensorBoard's:
            ``s_t = w s_(t-1) + (1 - w) x_t`` divided by ``1 - w^k`` after ``k`` values) or
            ``"rolling"`` (mean of the trailing ``window`` steps).
        value: the EMA weight ``w`` in ``[0, 1)`` or the rolling window in steps (>= 1).
    """

    method: str = "off"
    value: float = 0.0

    DEFAULTS = {"ema": 0.6, "rolling": 5}

    @classmethod
    def parse(cls, text: str | None, where: str = "smoothing") -> Smoothing:
        """``off``, ``ema[:WEIGHT]`` or ``rolling[:WINDOW]`` (as in URLs and ``--smooth``).

        Raises:
            ValueError: a message naming ``where``, the value and what is allowed.
        """
        allowed = "off, ema[:WEIGHT] with 0 <= WEIGHT < 1, or rolling[:WINDOW] with WINDOW >= 1"
        raw = (text or "off").strip().lower()
        method, _, arg = raw.partition(":")
        if method in ("", "off", "none"):
            if arg:
                raise ValueError(f"{where}: '{text}' takes no value. Allowed: {allowed}")
            return cls()
        if method not in cls.DEFAULTS:
            raise ValueError(f"{where}: unknown smoothing '{text}'. Allowed: {allowed}")
        try:
            value = float(arg) if arg else float(cls.DEFAULTS[method])
        except ValueError:
            msg = f"{where}: '{arg}' in '{text}' is not a number. Allowed: {allowed}"
            raise ValueError(msg) from None
        if method == "ema" and not 0.0 <= value < 1.0:
            raise ValueError(f"{where}: EMA weight {value:g} is outside [0, 1). Allowed: {allowed}")
        if method == "rolling" and not (1 <= value < 1e6 and value == int(value)):
            raise ValueError(f"{where}: rolling window {value:g} is not a whole number >= 1")
        return cls(method, value)

    @property
    def active(self) -> bool:
        """Whether this smoothing changes anything."""
        return not (
            self.method == "off"
            or (self.method == "ema" and self.value == 0)
            or (self.method == "rolling" and self.value <= 1)
        )

    def __str__(self) -> str:
        if self.method == "off":
            return "off"
        return f"{self.method}:{int(self.value) if self.method == 'rolling' else self.value:g}"

    def label(self) -> str:
        """A human description, e.g. ``EMA, weight 0.6`` or ``rolling mean of 5 steps``."""
        if not self.active:
            return "no smoothing"
        if self.method == "ema":
            return f"EMA, weight {self.value:g}"
        return f"rolling mean of {int(self.value)} steps"


def smooth_values(values: np.ndarray, smoothing: Smoothing) -> np.ndarray:
    """Smooth one curve given in step order; NaN points stay NaN and are skipped.

    Args:
        values: ``(steps,)`` one trial's values, ordered by step.
        smoothing: the method.

    Returns:
        ``(steps,)`` float64.

    >>> smooth_values(np.array([0.0, 1.0, np.nan, 1.0]), Smoothing("rolling", 2)).tolist()
    [0.0, 0.5, nan, 1.0]
    """
    x = pd.Series(np.asarray(values, dtype=np.float64))
    if not smoothing.active:
        return x.to_numpy()
    if smoothing.method == "ema":
        out = x.ewm(alpha=1.0 - smoothing.value, adjust=True, ignore_na=True).mean()
    else:
        out = x.rolling(int(smoothing.value), min_periods=1).mean()
    return out.where(x.notna()).to_numpy()


def smooth_frame(
    df: pd.DataFrame,
    columns: Sequence[str],
    smoothing: Smoothing,
    by: Sequence[str] = ("trial",),
) -> pd.DataFrame:
    """A copy of ``df`` with ``columns`` smoothed along ``step`` within each ``by`` group.

    Each trial is smoothed on its own (``by`` should name one curve: add ``run_id`` when
    rows of several runs are mixed), before any mean over seeds.
    """
    cols = [c for c in columns if c in df.columns]
    if not smoothing.active or df.empty or not cols:
        return df
    if not df.index.is_unique:
        df = df.reset_index(drop=True)
    ordered = df.sort_values([*by, "step"], kind="stable")
    smoothed = ordered.groupby(list(by), sort=False, dropna=False)[cols].transform(
        lambda s: smooth_values(s.to_numpy(), smoothing)
    )
    out = df.copy()
    out[cols] = smoothed  # aligned on the index: each row gets its own smoothed value
    return out


# ---------------------------------------------------------------------- intervals
def half_width(sd: np.ndarray, n: np.ndarray, kind: str) -> np.ndarray:
    """Half-widths of the interval ``kind`` from per-step sd (ddof 1) and seed counts.

    Zero where fewer than two seeds have a value (no spread to show) and for ``seeds``.

    >>> half_width(np.array([2.0, 2.0]), np.array([4, 1]), "se").tolist()
    [1.0, 0.0]
    """
    check_interval(kind)
    sd = np.asarray(sd, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    ok = (n >= 2) & np.isfinite(sd)
    root = np.sqrt(np.maximum(n, 1.0))
    if kind == "se":
        half = sd / root
    elif kind == "sd":
        half = sd
    elif kind == "t":
        half = _t975(n - 1) * sd / root
    else:
        half = np.zeros_like(sd)
    return np.where(ok, half, 0.0)


def clip_band(
    lo: np.ndarray, hi: np.ndarray, value_range: ValueRange | None
) -> tuple[np.ndarray, np.ndarray]:
    """Clip band edges to ``value_range`` (``None`` or ``None`` bounds: left as they are)."""
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    low, high = value_range or (None, None)
    if low is not None:
        lo, hi = np.maximum(lo, low), np.maximum(hi, low)
    if high is not None:
        lo, hi = np.minimum(lo, high), np.minimum(hi, high)
    return lo, hi


def aggregate(
    df: pd.DataFrame,
    metric: str,
    by: Sequence[str] = ("series",),
    interval: str = DEFAULT_INTERVAL,
    value_range: ValueRange | None = None,
) -> pd.DataFrame:
    """Mean over seeds and an interval of ``metric`` per ``by`` group and step.

    Returns:
        One row per (``by`` group, step), groups in order of first appearance and steps
        ascending, with columns ``*by``, ``step``, ``mean``, ``lo``, ``hi``, ``sd`` and ``n``
        (seeds with a value). ``lo``/``hi`` are ``mean ± half_width`` clipped to
        ``value_range``.
    """
    check_interval(interval)
    by = list(by)
    cols = [*by, "step", "mean", "lo", "hi", "sd", "n"]
    if df.empty or metric not in df.columns:
        return pd.DataFrame(columns=cols)
    values = df[[*by, "step", metric]].dropna(subset=[metric])
    if values.empty:
        return pd.DataFrame(columns=cols)
    out = values.groupby([*by, "step"], sort=False, dropna=False)[metric].agg(
        mean="mean", sd="std", n="count"
    )
    out = out.reset_index()
    half = half_width(out["sd"].to_numpy(), out["n"].to_numpy(), interval)
    mean = out["mean"].to_numpy(dtype=np.float64)
    out["lo"], out["hi"] = clip_band(mean - half, mean + half, value_range)
    first = values.drop_duplicates(by)[by].reset_index(drop=True)
    first["_order"] = np.arange(len(first))
    out = out.merge(first, on=by, how="left", sort=False)
    out = out.sort_values(["_order", "step"], kind="stable")
    return out[cols].reset_index(drop=True)


def few_seeds_note(seeds: Mapping[str, int], interval: str = DEFAULT_INTERVAL) -> str | None:
    """A warning naming the series with fewer than :data:`MIN_SEEDS` seeds, or None.

    ``seeds``: seeds per series (or per run); ``interval``: the interval in use (the note
    says what so few seeds mean for it, and that one seed draws no band).
    """
    few = {k: v for k, v in seeds.items() if v < MIN_SEEDS}
    if not few:
        return None
    names = ", ".join(f"{k} ({v} seed{'s' if v != 1 else ''})" for k, v in few.items())
    n = min(few.values())
    what = {
        "se": "a standard error from so few seeds is itself very uncertain",
        "sd": "a standard deviation from so few seeds is itself very uncertain",
        "t": f"the Student-t interval is very wide (t = {t_quantile(max(n, 2) - 1):.1f} "
        f"with {max(n, 2)} seeds)",
        "seeds": "each line is a single draw",
    }[interval]
    if n < 2 and interval != "seeds":  # one seed has no spread: no band is drawn for it
        what = "one seed has no spread, so no band is drawn for it; " + what
    return (
        f"Fewer than {MIN_SEEDS} seeds: {names}; {what}. Run more seeds "
        "(`--seeds 5`) before reading differences."
    )


# ---------------------------------------------------------------------- differences
def paired_difference(
    df: pd.DataFrame,
    columns: Sequence[str],
    baseline: str,
    keys: Sequence[str] = ("seed", "step"),
    by: str = "agent",
) -> pd.DataFrame:
    """Rows of every ``by`` value but ``baseline``, each column minus the baseline's value.

    Rows are paired on ``keys`` (seed and step, plus the run and sweep values when rows
    mix them): common random numbers give each agent of a seed the same world, so the
    difference removes the seed's luck. A row without a baseline partner gets NaN.

    Raises:
        ValueError: ``baseline`` has no rows, or several rows share the same keys.
    """
    if not (df[by] == baseline).any():
        raise ValueError(f"baseline: no rows of {by} '{baseline}'")
    cols = [c for c in columns if c in df.columns]
    others = (df[by] != baseline).to_numpy()
    out = add_paired(df, baseline, [Paired(c, c) for c in cols], keys, by).loc[others]
    out.index = df.index[others]
    return out


def difference_range(value_range: ValueRange | None) -> ValueRange | None:
    """The range of a difference of two values in ``value_range``: ``(lo - hi, hi - lo)``."""
    if value_range is None or value_range[0] is None or value_range[1] is None:
        return None
    low, high = value_range
    return (low - high, high - low)


def metric_ranges(manifest: Mapping[str, Any]) -> dict[str, ValueRange]:
    """Declared value ranges of a run's metric columns.

    From the manifest's ``metric_ranges`` (written by ``simlab run``); for runs written
    before it existed, from the registered metric classes whose columns the run has.
    Columns without a declared range are absent (never clipped).
    """
    columns = list(manifest.get("metric_columns", []))
    stored = manifest.get("metric_ranges")
    if isinstance(stored, Mapping):
        return {c: _as_range(v) for c, v in stored.items() if _as_range(v) is not None}
    from simlab import registry

    out: dict[str, ValueRange] = {}
    for name in registry.names("metrics"):
        try:
            cls = registry.resolve("metrics", name)
        except Exception:  # a third-party entry that no longer imports: skip it
            continue
        for c, r in getattr(cls, "ranges", {}).items():
            if c in columns and _as_range(r) is not None:
                out[c] = _as_range(r)
    return out


def _as_range(value: Any) -> ValueRange | None:
    """``[lo, hi]`` (JSON) or a tuple as a ValueRange; None when malformed."""
    if not isinstance(value, (list, tuple)):
        return None
    try:
        low, high = (None if v is None else float(v) for v in value)
    except (TypeError, ValueError):  # not two numbers (or None)
        return None
    if low is not None and high is not None and low > high:
        return None
    if low is not None and math.isnan(low) or high is not None and math.isnan(high):
        return None
    return (low, high)
