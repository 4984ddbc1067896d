"""The report's figures: one PNG per metric, drawn on matplotlib's Agg canvas (no pyplot).

Part of :mod:`simlab.report` (see its docstring for what a figure shows).
"""

from __future__ import annotations

from pathlib import Path

from simlab.atomic import replacing
from simlab.intervals import INTERVALS, aggregate
from simlab.report_result import ReportResult

__all__: list[str] = []


def _plot_metric(df, metric: str, result: ReportResult, out: Path, value_range=None) -> Path:
    """One PNG: mean over seeds per step per agent, with the chosen interval (or seed lines).

    With sweep points (or variants) each has its own panel, side by side; the warm-up
    steps (before the first retrained model serves, left out of the summaries) are shaded
    grey in each panel. Bands are clipped to ``value_range``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    sweep = result.sweep_columns
    facets = (
        [(k if isinstance(k, tuple) else (k,), g) for k, g in df.groupby(sweep, sort=False)]
        if sweep
        else [((), df)]
    )
    fig = Figure(figsize=(7 * min(len(facets), 3) ** 0.8, 4), dpi=100)
    FigureCanvasAgg(fig)
    order = list(dict.fromkeys(df["agent"]))
    colours = {a: f"C{i % 10}" for i, a in enumerate(order)}
    kind = "cumulative" if result.kinds.get(metric) == "last" else "per step"
    result.bands[metric] = aggregate(df, metric, ["agent", *sweep], result.interval, value_range)
    for n, (key, part) in enumerate(facets):
        ax = fig.add_subplot(1, len(facets), n + 1)
        stats = aggregate(part, metric, ["agent"], result.interval, value_range)
        for agent, g in sorted(
            stats.groupby("agent", sort=False), key=lambda kv: order.index(kv[0])
        ):
            steps = g["step"].to_numpy()
            label = str(agent) + (" (privileged)" if agent in result.privileged else "")
            ax.plot(steps, g["mean"], label=label, linewidth=1.5, color=colours[agent])
            if result.interval == "seeds":
                for _, trial in part[part["agent"] == agent].groupby("trial", sort=True):
                    ax.plot(trial["step"], trial[metric], color=colours[agent], lw=0.6, alpha=0.45)
            elif (g["hi"] > g["lo"]).any():
                ax.fill_between(
                    steps, g["lo"].to_numpy(dtype=float), g["hi"].to_numpy(dtype=float),
                    color=colours[agent], alpha=0.2, linewidth=0,
                )  # fmt: skip
        warm = int(part["_warmup"].max()) if "_warmup" in part else 0
        if warm > 0:
            ax.axvspan(-0.5, warm - 0.5, color="0.85", zorder=0, linewidth=0)
        where = ", ".join(f"{c}={v}" for c, v in zip(sweep, key, strict=True))
        ax.set_title(f"{where}" if where else metric, fontsize=9)
        ax.set_xlabel("step (grey: warm-up)" if warm > 0 else "step")
        ax.set_ylabel(metric)
        ax.grid(True, alpha=0.3)
        if n == 0 and len(stats):
            ax.legend(fontsize=7)
        if n == 0 and result.note:
            ax.text(0.01, 0.01, "fewer than 3 seeds: read the interval with care",
                    transform=ax.transAxes, fontsize=7, color="darkred")  # fmt: skip
    how = INTERVALS[result.interval]
    if result.smoothing.active:
        how += f"; {result.smoothing.label()}"
    fig.suptitle(f"{metric} ({kind}; mean over seeds, {how})", fontsize=10)
    fig.tight_layout()
    path = out / (metric.replace("/", "_") + ".png")
    with replacing(path) as tmp:  # whole or not at all
        fig.savefig(tmp, format="png")
    return path
