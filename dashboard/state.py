"""The dashboard's state in the URL (``st.query_params``) and across pages.

Every choice that defines a view — the page, the selected runs, the metrics, the interval
and smoothing, the baseline agent, the phase layout, the Live run — is a widget whose value
lives in ``st.session_state`` under a key of :data:`PARAMS`. At the end of each script run
:func:`write_url` mirrors those values into the URL (defaults left out), so a copied link
reproduces the view; on a session's first run :func:`restore_url` puts the URL's values
back into session state before any widget is drawn (the pages then drop values that no
longer exist, e.g. a deleted run).

Streamlit forgets the state of a widget that a run did not draw (Compare's metrics while
the Runs page is shown); :func:`keep` and :func:`revive` carry those values over, so a
page shows the same choices when you come back to it and the URL always holds them all.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from simlab.intervals import DEFAULT_INTERVAL, INTERVALS, Smoothing

__all__ = [
    "Param",
    "PARAMS",
    "SMOOTH_KEYS",
    "parse_query",
    "to_query",
    "restore_url",
    "write_url",
    "keep",
    "revive",
    "smoothing_from_state",
    "set_smoothing_state",
]


@dataclass(frozen=True)
class Param:
    """A URL parameter backed by a session-state key.

    Attributes:
        name: the query parameter.
        key: the session-state (widget) key.
        many: a list (repeated parameter) rather than one value.
        default: the value left out of the URL.
        choices: the allowed values, when they are fixed.
    """

    name: str
    key: str
    many: bool = False
    default: Any = None
    choices: tuple[str, ...] | None = None


PAGES = ("Runs", "Compare", "Ecosystem", "Users", "Live", "Launch")

PARAMS: tuple[Param, ...] = (
    Param("page", "page", default="Runs", choices=PAGES),
    Param("runs", "runs-selected", many=True, default=()),
    Param("metrics", "compare-metrics", many=True, default=()),
    Param("interval", "interval", default=DEFAULT_INTERVAL, choices=tuple(INTERVALS)),
    Param("smooth", "smooth", default="off"),
    Param("baseline", "baseline", default=""),
    Param("layout", "phase-layout", default="facet"),
    Param("cols", "grid-cols", default="2", choices=("1", "2", "3")),
    Param("live", "live-run", default=""),
    Param("live_metrics", "live-metrics", many=True, default=()),
    Param("q", "runs-search", default=""),
)
"""The URL's parameters, in the order they are written."""

SMOOTH_KEYS = ("smooth-method", "smooth-weight", "smooth-window")
"""The smoothing widgets; the URL holds them as one ``smooth`` spec (``ema:0.6``)."""
SMOOTH_METHODS = {"off": "off", "ema": "EMA", "rolling": "rolling mean"}


def parse_query(query: Mapping[str, Any]) -> dict[str, Any]:
    """Session-state values from URL parameters; unknown or invalid ones are dropped.

    Args:
        query: parameter -> a string, or a list of strings for repeated parameters.

    >>> parse_query({"page": "Compare", "runs": ["a", "b"], "interval": "nope"})
    {'page': 'Compare', 'runs-selected': ['a', 'b']}
    """
    out: dict[str, Any] = {}
    for p in PARAMS:
        if p.name not in query:
            continue
        raw = query[p.name]
        values = [str(v) for v in (raw if isinstance(raw, (list, tuple)) else [raw])]
        if p.many:
            out[p.key] = [v for v in values if v]
            continue
        value = values[-1] if values else ""
        if p.choices is not None and value not in p.choices:
            continue
        if p.name == "smooth":
            try:
                value = str(Smoothing.parse(value))
            except ValueError:
                continue
        out[p.key] = value
    return out


def to_query(state: Mapping[str, Any]) -> dict[str, str | list[str]]:
    """URL parameters of the state's non-default values, in :data:`PARAMS` order."""
    out: dict[str, str | list[str]] = {}
    for p in PARAMS:
        if p.key not in state or state[p.key] is None:
            continue
        value = state[p.key]
        if p.many:
            items = [str(v) for v in value]
            if items and tuple(items) != tuple(p.default):
                out[p.name] = items
        elif str(value) != str(p.default):
            out[p.name] = str(value)
    return out


def restore_url(state: MutableMapping[str, Any], query: Mapping[str, Any]) -> None:
    """On a session's first run, put the URL's values into session state (then never again)."""
    if state.get("_url-restored"):
        return
    state["_url-restored"] = True
    values = parse_query(query)
    for key, value in values.items():
        state[key] = value
        state[f"_keep-{key}"] = value
    if "smooth" in values:
        set_smoothing_state(state, Smoothing.parse(values["smooth"]))


def write_url(state: MutableMapping[str, Any], query: MutableMapping[str, Any]) -> None:
    """Make the URL hold the current view, sending it only when it changes.

    The URL the browser sent with this run can be older than the last one this session
    sent (a click made while the previous run was still finishing), so the view is sent
    whenever it differs from either.
    """
    wanted = to_query({p.key: _kept(state, p.key) for p in PARAMS if _kept(state, p.key)})
    current = {k: query.get_all(k) if hasattr(query, "get_all") else query[k] for k in query}
    normal = {k: v if isinstance(v, list) else [v] for k, v in wanted.items()}
    current = {k: v if isinstance(v, list) else [v] for k, v in current.items()}
    if normal != current or state.get("_url-sent") != normal:
        if hasattr(query, "from_dict"):
            query.from_dict(wanted)  # one message to the browser
        else:
            query.clear()
            query.update(wanted)
        state["_url-sent"] = normal


def _kept(state: Mapping[str, Any], key: str) -> Any:
    return state[key] if key in state else state.get(f"_keep-{key}")


KEPT_KEYS = (
    tuple(p.key for p in PARAMS if p.key != "smooth")
    + SMOOTH_KEYS
    + (
        "runs-status",
        "runs-scenario",
    )
)
"""Widget keys whose values survive pages that do not draw them."""


def keep(state: MutableMapping[str, Any]) -> None:
    """At the end of a run: remember every kept widget's value (and the smoothing spec)."""
    for key in KEPT_KEYS:
        if key in state:
            state[f"_keep-{key}"] = state[key]
    state["smooth"] = str(smoothing_from_state(state))


def revive(state: MutableMapping[str, Any]) -> None:
    """At the start of a run: give back the values of widgets the last run did not draw."""
    for key in KEPT_KEYS:
        if key not in state and f"_keep-{key}" in state:
            state[key] = state[f"_keep-{key}"]


def smoothing_from_state(state: Mapping[str, Any]) -> Smoothing:
    """The smoothing the widgets (or their kept values) describe."""
    method = _kept(state, "smooth-method") or "off"
    if method == "ema":
        return Smoothing("ema", float(_kept(state, "smooth-weight") or Smoothing.DEFAULTS["ema"]))
    if method == "rolling":
        window = int(_kept(state, "smooth-window") or Smoothing.DEFAULTS["rolling"])
        return Smoothing("rolling", float(window))
    return Smoothing()


def set_smoothing_state(state: MutableMapping[str, Any], smoothing: Smoothing) -> None:
    """Set the smoothing widgets (and their kept values) to ``smoothing``."""
    values = {"smooth-method": smoothing.method}
    if smoothing.method == "ema":
        values["smooth-weight"] = float(smoothing.value)
    elif smoothing.method == "rolling":
        values["smooth-window"] = int(smoothing.value)
    for key, value in values.items():
        state[key] = value
        state[f"_keep-{key}"] = value
