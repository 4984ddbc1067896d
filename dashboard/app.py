"""The Streamlit script of the simlab dashboard (``simlab dashboard`` runs it).

The sidebar holds the page choice (a radio labelled "Page"), the runs folder (default
``$SIMLAB_RUNS`` or ``runs``), the runs selected for Compare, Ecosystem, Users and Live (the
Runs page's row selection sets the same list), and on Compare and Live the interval over
seeds and the smoothing. The view is kept in the URL (``simlab.dashboard.state``): a copied
link opens the same page, runs, metrics and choices. Run it by hand with
``SIMLAB_RUNS=DIR streamlit run dashboard/app.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from simlab.dashboard import compare, launch, live, runs_page, state, views
from simlab.dashboard.runmeta import read_labels
from simlab.dashboard.style import agent_colors
from simlab.intervals import INTERVALS
from simlab.store import list_runs

PAGES = state.PAGES


def _interval_controls(ss) -> None:
    """Interval over seeds and smoothing (the widgets' values are read from ``ss``)."""
    ss.setdefault("interval", "se")
    st.sidebar.radio(
        "Interval over seeds", list(INTERVALS), format_func=INTERVALS.get, key="interval"
    )
    ss.setdefault("smooth-method", "off")
    method = st.sidebar.selectbox(
        "Smoothing", list(state.SMOOTH_METHODS), format_func=state.SMOOTH_METHODS.get,
        key="smooth-method", help="Applied to each seed's curve before the mean over seeds.",
    )  # fmt: skip
    if method == "ema":
        ss.setdefault("smooth-weight", 0.6)
        st.sidebar.slider("EMA weight", 0.0, 0.99, step=0.01, key="smooth-weight")
    elif method == "rolling":
        ss.setdefault("smooth-window", 5)
        st.sidebar.number_input("Window (steps)", 1, 1000, step=1, key="smooth-window")


def sidebar() -> tuple[str, views.Context, float]:
    """Draw the sidebar; return the page, the page context and the Live refresh period."""
    ss = st.session_state
    st.sidebar.title("simlab")
    ss.setdefault("page", "Runs")
    page = st.sidebar.radio("Page", PAGES, key="page")
    ss.setdefault("runs-dir", os.environ.get("SIMLAB_RUNS", "runs"))
    runs_dir = Path(st.sidebar.text_input("Runs folder", key="runs-dir"))
    try:
        runs = list_runs(runs_dir)
    except Exception as e:  # an unreadable folder (permissions, a vanished mount)
        st.error(f"Cannot list runs under {runs_dir}: {e}")
        runs = []
    if not runs_dir.is_dir():
        st.sidebar.warning(f"{runs_dir} is not a folder.")
    ids = [r.run_id for r in runs]
    labels = {r.run_id: read_labels(r.path) for r in runs if not r.problem}
    pending = ss.pop("_pending-selection", None)
    if pending is not None:
        ss["runs-selected"] = pending
    if "runs-selected" in ss:
        ss["runs-selected"] = [r for r in dict.fromkeys(ss["runs-selected"]) if r in ids]
    else:
        ss["runs-selected"] = [r.run_id for r in runs if not r.problem][:1]
    names = {r: labels.get(r, {}).get("name") for r in ids}
    chosen = st.sidebar.multiselect(
        "Runs",
        ids,
        key="runs-selected",
        format_func=lambda r: f"{names[r]} ({r})" if names[r] else r,
    )
    refresh = 3.0
    if page in ("Compare", "Live"):
        _interval_controls(ss)
    if page == "Live":
        ss.setdefault("live-refresh", 3.0)
        refresh = float(
            st.sidebar.number_input(
                "Refresh every (s)", min_value=0.5, step=0.5, key="live-refresh"
            )
        )
    by_id = {r.run_id: r for r in runs}
    ctx = views.Context(
        runs_dir=runs_dir,
        runs=runs,
        selected=[by_id[r] for r in chosen if r in by_id],
        labels=labels,
        colors=agent_colors(r.agents for r in reversed(runs)),
        interval=ss.get("interval", "se"),
        smoothing=state.smoothing_from_state(ss),
    )
    return page, ctx, refresh


def main() -> None:
    """Restore the view from the URL, render the chosen page, write the view to the URL."""
    st.set_page_config(page_title="simlab dashboard", layout="wide")
    ss = st.session_state
    state.restore_url(ss, {k: st.query_params.get_all(k) for k in st.query_params})
    state.revive(ss)
    page, ctx, refresh = sidebar()
    if page == "Runs":
        runs_page.page_runs(ctx)
    elif page == "Compare":
        compare.page_compare(ctx)
    elif page == "Ecosystem":
        views.page_ecosystem(ctx)
    elif page == "Users":
        views.page_users(ctx)
    elif page == "Live":
        live.page_live(ctx, refresh)
    else:
        launch.page_launch(ctx)
    state.keep(ss)
    state.write_url(ss, st.query_params)


main()
