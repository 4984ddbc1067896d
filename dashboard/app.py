"""The Streamlit script of the simlab dashboard (``simlab dashboard`` runs it).

The sidebar holds the page choice (a radio labelled "Page"), the runs folder (default
``$SIMLAB_RUNS`` or ``runs``) and the runs selected for Compare, Ecosystem and Users.
Run it by hand with ``SIMLAB_RUNS=DIR streamlit run dashboard/app.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from simlab.dashboard import live, views
from simlab.store import list_runs

PAGES = ("Runs", "Compare", "Ecosystem", "Users", "Live", "Launch")


def sidebar() -> tuple[str, views.Context, float]:
    """Draw the sidebar; return the page, the page context and the Live refresh period."""
    st.sidebar.title("simlab")
    page = st.sidebar.radio("Page", PAGES, key="page")
    default_dir = os.environ.get("SIMLAB_RUNS", "runs")
    runs_dir = Path(st.sidebar.text_input("Runs folder", default_dir, key="runs-dir"))
    try:
        runs = list_runs(runs_dir)
    except Exception as e:  # an unreadable folder (permissions, a vanished mount)
        st.error(f"Cannot list runs under {runs_dir}: {e}")
        runs = []
    if not runs_dir.is_dir():
        st.sidebar.warning(f"{runs_dir} is not a folder.")
    ids = [r.run_id for r in runs]
    readable = [r.run_id for r in runs if not r.problem]
    chosen = st.sidebar.multiselect("Runs", ids, default=readable[:1], key="runs-selected")
    refresh = 3.0
    if page == "Live":
        refresh = float(
            st.sidebar.number_input(
                "Refresh every (s)", min_value=0.5, value=3.0, step=0.5, key="live-refresh"
            )
        )
    selected = [r for r in runs if r.run_id in chosen]
    return page, views.Context(runs_dir, runs, selected), refresh


def main() -> None:
    """Render the chosen page."""
    st.set_page_config(page_title="simlab dashboard", layout="wide")
    page, ctx, refresh = sidebar()
    if page == "Runs":
        views.page_runs(ctx)
    elif page == "Compare":
        views.page_compare(ctx)
    elif page == "Ecosystem":
        views.page_ecosystem(ctx)
    elif page == "Users":
        views.page_users(ctx)
    elif page == "Live":
        live.page_live(ctx, refresh)
    else:
        live.page_launch(ctx)


main()
