"""Plotly figures of the dashboard, built from frames that ``simlab.dashboard.data`` made.

Every figure is a plain ``plotly.graph_objects.Figure``; the pages show it with
``st.plotly_chart`` and :func:`plotly_config`, whose modebar camera button downloads a PNG.
A metric chart is one or several :class:`Panel` s (one per run when runs are faceted), each
with its own phase shading; colours and line styles come from ``simlab.dashboard.style``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from simlab.dashboard.data import PhaseSpan
from simlab.dashboard.style import PALETTE, phase_color, rgba

__all__ = [
    "Panel",
    "plotly_config",
    "shade_phases",
    "metric_figure",
    "share_figure",
    "creators_figure",
    "lorenz_figure",
    "projection_figure",
]

Style = tuple[str, str]
"""``(colour, dash)`` of one series."""


def plotly_config(filename: str) -> dict:
    """``st.plotly_chart`` config: modebar with a PNG download named ``filename``.png."""
    return {
        "displaylogo": False,
        "toImageButtonOptions": {"format": "png", "filename": filename, "scale": 2},
    }


@dataclass
class Panel:
    """One panel of a metric chart.

    Attributes:
        title: the panel's title (the run, when runs are faceted; else empty).
        agg: ``simlab.intervals.aggregate`` rows with ``series``: step, mean, lo, hi, n.
        spans: the phase spans shaded behind it.
        seeds: per-trial rows (``series``, ``trial``, ``seed``, ``step``, ``value``) to draw
            every seed's line, or None.
        warmup: steps before the first retrained model serves, shaded grey (0: none).
    """

    title: str
    agg: pd.DataFrame
    spans: Sequence[PhaseSpan]
    seeds: pd.DataFrame | None = None
    warmup: int = 0


def shade_warmup(fig: go.Figure, warmup: int, row: int | None = None) -> None:
    """Shade the warm-up steps (before the first retrained model serves) grey, labelled."""
    if warmup <= 0:
        return
    where = {"row": row, "col": 1} if row is not None else {}
    fig.add_vrect(
        x0=-0.5, x1=warmup - 0.5, fillcolor="rgba(120,120,120,0.22)", line_width=0, name="warm-up",
        layer="below", annotation_text="warm-up", annotation_position="bottom left",
        annotation_font_size=10, **where,
    )  # fmt: skip


def shade_phases(fig: go.Figure, spans: Sequence[PhaseSpan], row: int | None = None) -> None:
    """Shade each phase by its AIGC share, draw ramps step by step, mark the boundaries.

    A ramp's steps get the colour of the share at each step; a dotted line marks the start
    of every phase but the first; each phase is labelled at its top left.
    """
    where = {"row": row, "col": 1} if row is not None else {}
    for span in spans:
        ramp_end = min(span.start + span.ramp, span.end)
        pieces = [(s, s + 1, span.share_at(s)) for s in range(span.start, ramp_end)]
        if ramp_end < span.end:
            pieces.append((ramp_end, span.end, span.aigc_share))
        for k, (x0, x1, share) in enumerate(pieces):
            label = (
                {}
                if k
                else {
                    "annotation_text": span.label,
                    "annotation_position": "top left",
                    "annotation_font_size": 10,
                }
            )
            fig.add_vrect(
                x0=x0 - 0.5,
                x1=x1 - 0.5,
                fillcolor=phase_color(share),
                line_width=0,
                layer="below",
                **label,
                **where,
            )
        if span.start > 0:
            fig.add_vline(
                x=span.start - 0.5, line_dash="dot", line_color="grey", line_width=1, **where
            )


def _band(g: pd.DataFrame, series: str, color: str) -> go.Scatter:
    steps = g["step"].tolist()
    return go.Scatter(
        x=steps + steps[::-1],
        y=g["hi"].tolist() + g["lo"].tolist()[::-1],
        fill="toself",
        fillcolor=rgba(color, 0.18),
        line={"width": 0},
        hoverinfo="skip",
        legendgroup=series,
        showlegend=False,
        name=f"{series} interval",
    )


def metric_figure(
    panels: Sequence[Panel],
    metric: str,
    styles: Mapping[str, Style],
    how: str,
    y_title: str | None = None,
) -> go.Figure:
    """One line per series (mean over seeds) with its interval band or seed lines, per panel.

    Args:
        panels: one per facet (one panel: a plain chart).
        metric: the metric (the chart title).
        styles: ``(colour, dash)`` per series.
        how: what the band is, e.g. ``±1 standard error`` (the subtitle).
        y_title: the y-axis title (default: ``metric``).
    """
    rows = len(panels)
    if rows > 1:
        fig = make_subplots(
            rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.14 / rows + 0.04,
            subplot_titles=[p.title for p in panels],
        )  # fmt: skip
    else:
        fig = go.Figure()
    in_legend: set[str] = set()
    for r, panel in enumerate(panels, start=1):
        where = {"row": r, "col": 1} if rows > 1 else {}
        for series, g in panel.agg.groupby("series", sort=False):
            series = str(series)
            color, dash = styles.get(series, (PALETTE[0], "solid"))
            if (g["hi"] > g["lo"]).any():
                fig.add_trace(_band(g, series, color), **where)
            if panel.seeds is not None:
                mine = panel.seeds[panel.seeds["series"] == series]
                for (_, seed), t in mine.groupby(["trial", "seed"], sort=True):
                    fig.add_trace(
                        go.Scatter(
                            x=t["step"], y=t["value"], mode="lines", legendgroup=series,
                            line={"color": color, "dash": dash, "width": 0.8}, opacity=0.45,
                            showlegend=False, name=f"{series} seed {seed}",
                            hovertemplate=f"seed {seed}, step %{{x}}: %{{y:.4g}}<extra></extra>",
                        ),
                        **where,
                    )  # fmt: skip
            fig.add_trace(
                go.Scatter(
                    x=g["step"],
                    y=g["mean"],
                    mode="lines",
                    line={"color": color, "dash": dash, "width": 2},
                    name=series,
                    legendgroup=series,
                    showlegend=series not in in_legend,
                    customdata=g[["lo", "hi", "n"]].to_numpy(),
                    hovertemplate="step %{x}: %{y:.4g} [%{customdata[0]:.4g}, "
                    "%{customdata[1]:.4g}] over %{customdata[2]} seeds",
                ),
                **where,
            )
            in_legend.add(series)
        shade_phases(fig, panel.spans, r if rows > 1 else None)
        shade_warmup(fig, panel.warmup, r if rows > 1 else None)
    fig.update_xaxes(title_text="step", row=rows if rows > 1 else None)
    fig.update_yaxes(title_text=y_title or metric)
    fig.update_layout(
        title={"text": f"{metric}<br><sup>mean over seeds, {how}</sup>"},
        height=max(340, 230 * rows + 120) + 22 * len(in_legend),
        margin={"t": 70 if rows == 1 else 95, "b": 40, "l": 60, "r": 20},
        legend={"orientation": "h", "y": -0.12 if rows == 1 else -0.06, "yanchor": "top"},
    )
    return fig


def share_figure(shares: pd.DataFrame, spans: Sequence[PhaseSpan]) -> go.Figure:
    """AIGC vs human share of production, exposure and clicks: three stacked-area panels.

    Args:
        shares: columns step, ``production``, ``exposure``, ``clicks`` (AIGC shares in [0, 1],
            NaN where undefined); human share is ``1 - AIGC``.
        spans: phase spans to shade.
    """
    kinds = [k for k in ("production", "exposure", "clicks") if k in shares.columns]
    fig = make_subplots(rows=1, cols=max(len(kinds), 1), shared_yaxes=True,
                        subplot_titles=[f"share of {k}" for k in kinds])  # fmt: skip
    for col, kind in enumerate(kinds, start=1):
        aigc = shares[kind]
        for name, values, color in (
            ("human", 1 - aigc, "#2ca02c"),
            ("AIGC", aigc, "#9467bd"),
        ):
            fig.add_trace(
                go.Scatter(
                    x=shares["step"],
                    y=values,
                    stackgroup=f"s{col}",
                    name=name,
                    line={"color": color, "width": 1},
                    legendgroup=name,
                    showlegend=col == 1,
                ),
                row=1,
                col=col,
            )
    fig.update_yaxes(range=[0, 1])
    fig.update_xaxes(title_text="step")
    for span in spans:
        fig.add_vline(x=span.start - 0.5, line_dash="dot", line_color="grey", opacity=0.6)
    fig.update_layout(margin={"t": 60, "b": 40}, title="AIGC vs human share (mean over seeds)")
    return fig


def creators_figure(
    creators: pd.DataFrame, spans: Sequence[PhaseSpan], colors: Mapping[str, str]
) -> go.Figure:
    """Active creators (not exited) by kind: per series, human solid and AIGC dashed.

    Args:
        creators: columns series, step, ``human``, ``AIGC`` (mean over seeds).
        spans: phase spans to shade.
        colors: colour per series (its agent's).
    """
    fig = go.Figure()
    for i, (series, g) in enumerate(creators.groupby("series", sort=False)):
        color = colors.get(str(series), PALETTE[i % len(PALETTE)])
        for kind, dash in (("human", "solid"), ("AIGC", "dash")):
            if kind in g:
                fig.add_trace(
                    go.Scatter(
                        x=g["step"],
                        y=g[kind],
                        mode="lines",
                        line={"color": color, "dash": dash},
                        name=f"{series}: {kind}",
                    )
                )
    shade_phases(fig, spans)
    fig.update_layout(
        title="Active creators (not exited), by kind; mean over seeds",
        xaxis_title="step",
        yaxis_title="creators",
        margin={"t": 60, "b": 40},
    )
    return fig


def lorenz_figure(
    curves: Sequence[tuple[str, np.ndarray, np.ndarray, float]],
    colors: Sequence[str] | None = None,
) -> go.Figure:
    """Exposure Lorenz curves, one per ``(label, x, y, gini)``, plus the line of equality.

    ``colors`` gives each curve's colour (its agent's); by default the palette in order.
    """
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[0, 1], y=[0, 1], mode="lines", name="equality",
            line={"color": "grey", "dash": "dot"},
        )
    )  # fmt: skip
    for i, (label, x, y, g) in enumerate(curves):
        fig.add_trace(
            go.Scatter(
                x=x,
                y=y,
                mode="lines",
                line={"color": colors[i] if colors else PALETTE[i % len(PALETTE)]},
                name=f"{label} (Gini {g:.3f})",
            )
        )
    fig.update_layout(
        title="Exposure Lorenz curve",
        xaxis_title="cumulative share of items (fewest impressions first)",
        yaxis_title="cumulative share of impressions",
        xaxis={"range": [0, 1]},
        yaxis={"range": [0, 1]},
        margin={"t": 60, "b": 40},
    )
    return fig


def projection_figure(points: pd.DataFrame) -> go.Figure:
    """Scatter of projected user interests, one colour per snapshot.

    Args:
        points: columns step (the snapshot's steps done), user_id, pc1, pc2.
    """
    fig = go.Figure()
    for i, (step, g) in enumerate(points.groupby("step", sort=True)):
        fig.add_trace(
            go.Scatter(
                x=g["pc1"],
                y=g["pc2"],
                mode="markers",
                marker={"size": 5, "opacity": 0.6, "color": PALETTE[i % len(PALETTE)]},
                name=f"after {step} steps",
                customdata=g["user_id"],
                hovertemplate="user %{customdata}<br>(%{x:.3f}, %{y:.3f})",
            )
        )
    fig.update_layout(
        title="User interests, PCA fitted on the earliest chosen snapshot",
        xaxis_title="PC 1",
        yaxis_title="PC 2",
        margin={"t": 60, "b": 40},
    )
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return fig
