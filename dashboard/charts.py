"""Plotly figures of the dashboard, built from frames that ``simlab.dashboard.data`` made.

Every figure is a plain ``plotly.graph_objects.Figure``; the pages show it with
``st.plotly_chart`` and :data:`PLOTLY_CONFIG`, whose modebar camera button downloads a PNG.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from simlab.dashboard.data import PhaseSpan

__all__ = [
    "PLOTLY_CONFIG",
    "PHASE_COLORS",
    "plotly_config",
    "metric_figure",
    "share_figure",
    "creators_figure",
    "lorenz_figure",
    "projection_figure",
]

PALETTE = qualitative.Plotly
PHASE_COLORS = {
    "human-dominated": "rgba(44, 160, 44, 0.10)",
    "coexisting": "rgba(255, 187, 0, 0.14)",
    "AIGC-dominated": "rgba(148, 103, 189, 0.14)",
}


def plotly_config(filename: str) -> dict:
    """``st.plotly_chart`` config: modebar with a PNG download named ``filename``.png."""
    return {
        "displaylogo": False,
        "toImageButtonOptions": {"format": "png", "filename": filename, "scale": 2},
    }


PLOTLY_CONFIG = plotly_config("simlab")


def _rgba(color: str, alpha: float) -> str:
    h = color.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r}, {g}, {b}, {alpha})"


def shade_phases(fig: go.Figure, spans: Sequence[PhaseSpan], row: int | None = None) -> None:
    """Shade each phase span with its colour and label it at the top."""
    for span in spans:
        kwargs = {"row": row, "col": "all"} if row is not None else {}
        fig.add_vrect(
            x0=span.start - 0.5,
            x1=span.end - 0.5,
            fillcolor=PHASE_COLORS[span.name],
            line_width=0,
            layer="below",
            annotation_text=f"{span.name} ({span.aigc_share:.0%} AIGC)",
            annotation_position="top left",
            annotation_font_size=10,
            **kwargs,
        )


def metric_figure(agg: pd.DataFrame, metric: str, spans: Sequence[PhaseSpan]) -> go.Figure:
    """One line per series (mean over seeds) with its 95% interval band and phase shading.

    Args:
        agg: from ``aggregate_over_seeds(..., by="series")``: series, step, mean, lo, hi, n.
        metric: the column name (the y-axis title).
        spans: phase spans to shade.
    """
    fig = go.Figure()
    for i, (series, g) in enumerate(agg.groupby("series", sort=False)):
        color = PALETTE[i % len(PALETTE)]
        steps = g["step"].tolist()
        if (g["hi"] > g["lo"]).any():
            fig.add_trace(
                go.Scatter(
                    x=steps + steps[::-1],
                    y=g["hi"].tolist() + g["lo"].tolist()[::-1],
                    fill="toself",
                    fillcolor=_rgba(color, 0.2),
                    line={"width": 0},
                    hoverinfo="skip",
                    legendgroup=str(series),
                    showlegend=False,
                    name=f"{series} 95% interval",
                )
            )
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=g["mean"],
                mode="lines",
                line={"color": color},
                name=str(series),
                legendgroup=str(series),
                customdata=g[["lo", "hi", "n"]].to_numpy(),
                hovertemplate="step %{x}: %{y:.4g} [%{customdata[0]:.4g}, %{customdata[1]:.4g}]"
                " over %{customdata[2]} seeds",
            )
        )
    shade_phases(fig, spans)
    fig.update_layout(
        title=f"{metric} (mean and 95% interval over seeds)",
        xaxis_title="step",
        yaxis_title=metric,
        margin={"t": 60, "b": 40},
        legend={"orientation": "h", "y": -0.2},
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


def creators_figure(creators: pd.DataFrame, spans: Sequence[PhaseSpan]) -> go.Figure:
    """Active creators by kind: per series, human solid and AIGC dashed.

    Args:
        creators: columns series, step, ``human``, ``AIGC`` (mean over seeds).
        spans: phase spans to shade.
    """
    fig = go.Figure()
    for i, (series, g) in enumerate(creators.groupby("series", sort=False)):
        color = PALETTE[i % len(PALETTE)]
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
        title="Creators with at least one live item",
        xaxis_title="step",
        yaxis_title="creators",
        margin={"t": 60, "b": 40},
    )
    return fig


def lorenz_figure(curves: Sequence[tuple[str, np.ndarray, np.ndarray, float]]) -> go.Figure:
    """Exposure Lorenz curves, one per ``(label, x, y, gini)``, plus the line of equality."""
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
                line={"color": PALETTE[i % len(PALETTE)], "shape": "linear"},
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
    """Scatter of projected user interests, one colour per snapshot step.

    Args:
        points: columns step, user_id, pc1, pc2.
    """
    fig = go.Figure()
    for i, (step, g) in enumerate(points.groupby("step", sort=True)):
        fig.add_trace(
            go.Scatter(
                x=g["pc1"],
                y=g["pc2"],
                mode="markers",
                marker={"size": 5, "opacity": 0.6, "color": PALETTE[i % len(PALETTE)]},
                name=f"step {step}",
                customdata=g["user_id"],
                hovertemplate="user %{customdata}<br>(%{x:.3f}, %{y:.3f})",
            )
        )
    fig.update_layout(
        title="User interests, PCA fitted on the earliest chosen step",
        xaxis_title="PC 1",
        yaxis_title="PC 2",
        margin={"t": 60, "b": 40},
    )
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return fig
