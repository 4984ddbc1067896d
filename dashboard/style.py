"""Colours and line styles of the dashboard, stable across runs and pages.

- One colour per agent label, assigned in the order agents first appear over every run in
  the runs folder, oldest run first (:func:`agent_colors`): an agent keeps its colour on
  every page and whichever runs are selected, and a new run only adds colours.
- One line style per run, in the order the runs are shown (:data:`RUN_DASHES`).
- Sweep points of one agent get lighter shades of its colour (:func:`shade`).
- Content phases are coloured by their AIGC share on a green (human) to purple (AIGC)
  scale (:func:`phase_color`), so two phases with different shares never look alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from plotly.colors import qualitative

__all__ = ["PALETTE", "RUN_DASHES", "agent_colors", "run_dash", "shade", "rgba", "phase_color"]

PALETTE: tuple[str, ...] = (
    *qualitative.Plotly,
    "#8C564B",
    "#E377C2",
    "#7F7F7F",
    "#BCBD22",
    "#17BECF",
    "#393B79",
    "#637939",
    "#8C6D31",
    "#843C39",
    "#7B4173",
)
"""Agent colours: Plotly's ten, then ten more distinct ones; beyond twenty they repeat."""

RUN_DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")

# AIGC share 0 -> green, 0.5 -> amber, 1 -> purple
_PHASE_STOPS = ((0.0, (44, 160, 44)), (0.5, (255, 170, 0)), (1.0, (148, 103, 189)))


def agent_colors(agents_by_run: Iterable[Sequence[str]]) -> dict[str, str]:
    """Colour per agent label, in order of first appearance.

    Args:
        agents_by_run: each run's agent labels, oldest run first.

    >>> agent_colors([["random", "mf"], ["mf", "oracle"]])["oracle"] == PALETTE[2]
    True
    """
    order = list(dict.fromkeys(a for agents in agents_by_run for a in agents))
    return {a: PALETTE[i % len(PALETTE)] for i, a in enumerate(order)}


def run_dash(index: int) -> str:
    """The line style of the ``index``-th shown run."""
    return RUN_DASHES[index % len(RUN_DASHES)]


def _rgb(color: str) -> tuple[int, int, int]:
    h = color.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def shade(color: str, variant: int) -> str:
    """``color`` lightened towards white for the ``variant``-th sweep point (0: itself)."""
    if variant <= 0:
        return color
    mix = min(0.18 * variant, 0.7)
    r, g, b = (round(c + (255 - c) * mix) for c in _rgb(color))
    return f"#{r:02x}{g:02x}{b:02x}"


def rgba(color: str, alpha: float) -> str:
    """``#rrggbb`` as ``rgba(r, g, b, alpha)``."""
    r, g, b = _rgb(color)
    return f"rgba({r}, {g}, {b}, {alpha})"


def phase_color(aigc_share: float, alpha: float = 0.16) -> str:
    """Fill colour of a phase with this AIGC share (green 0, amber 0.5, purple 1).

    >>> phase_color(0.0) != phase_color(0.3) != phase_color(0.5)
    True
    """
    s = min(max(float(aigc_share), 0.0), 1.0)
    for (s0, c0), (s1, c1) in zip(_PHASE_STOPS, _PHASE_STOPS[1:], strict=False):
        if s <= s1:
            f = (s - s0) / (s1 - s0)
            r, g, b = (round(a + (b - a) * f) for a, b in zip(c0, c1, strict=True))
            return f"rgba({r}, {g}, {b}, {alpha})"
    r, g, b = _PHASE_STOPS[-1][1]
    return f"rgba({r}, {g}, {b}, {alpha})"
