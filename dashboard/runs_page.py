"""The Runs page: the hub. Every run in a table; select rows to compare; name and tag runs.

Columns: run id, name (from ``<run>/labels.json``), status, scenario, agents, seeds, the
scenario settings (``--set`` and sweep values) that differ between the selected runs, the key
metrics per agent (mean over steps, or the last step for cumulative ones, then over seeds),
trial-steps done, duration, start time and tags. A search box (run id, name,
tag, scenario, agent) and status and scenario filters narrow the table. Selecting rows
selects those runs for every page (the sidebar's list follows); runs hidden by a filter
stay selected.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import streamlit as st
import yaml

from simlab.dashboard import runmeta
from simlab.dashboard.views import Context, load
from simlab.store import RunSummary, summarize

__all__ = ["KEY_METRICS", "matches", "runs_table", "page_runs"]

KEY_METRICS = ("engagement/ctr", "exposure/gini", "source/aigc_exposure_share")
MAX_SETTING_COLUMNS = 12


def matches(run: RunSummary, query: str, labels: dict) -> bool:
    """Whether every word of ``query`` is in the run's id, name, tags, scenario or agents."""
    text = " ".join(
        [run.run_id, run.scenario, *run.agents, labels.get("name", ""), *labels.get("tags", [])]
    ).lower()
    return all(word in text for word in query.lower().split())


def _scenario(run: RunSummary) -> dict:
    try:
        sc = yaml.safe_load((run.path / "scenario.yaml").read_text(encoding="utf-8"))
    except Exception:  # a missing or damaged scenario only loses its settings columns
        return {}
    return sc if isinstance(sc, dict) else {}


def _key_metrics(run: RunSummary, unreadable: dict[str, str]) -> dict[str, str]:
    """The run's key metric cells; an unreadable run's error goes into ``unreadable``."""
    if run.problem:
        return dict.fromkeys(KEY_METRICS, "")
    try:
        loaded = load(run.path)
        summary = summarize(loaded.metrics, loaded.store.manifest)
    except Exception as e:  # an unreadable run shows its error below the table
        unreadable[run.run_id] = str(e)
        return dict.fromkeys(KEY_METRICS, "?")
    return runmeta.key_metric_cells(summary, KEY_METRICS, loaded.sweep_columns)


def runs_table(
    runs: Sequence[RunSummary],
    selected: Sequence[str],
    labels: dict,
    unreadable: dict[str, str] | None = None,
) -> pd.DataFrame:
    """The table of ``runs``: one row each, settings columns for what ``selected`` differ in.

    A run whose rows or scenario cannot be read shows ``?`` cells; its error is put in
    ``unreadable`` (run id -> message) for the page to show.
    """
    unreadable = {} if unreadable is None else unreadable
    scenarios = {r.run_id: _scenario(r) for r in runs}
    chosen = {r: scenarios[r] for r in selected if r in scenarios}
    differing = list(runmeta.differing_settings(chosen))[:MAX_SETTING_COLUMNS]
    rows = []
    for r in runs:
        lab = labels.get(r.run_id, {})
        manifest = {}
        if not r.problem:
            try:
                manifest = load(r.path).store.manifest
            except Exception:
                manifest = {}
        row = {
            "run": r.run_id,
            "name": lab.get("name", ""),
            "tags": ", ".join(lab.get("tags", [])),
            "status": r.status,
            "scenario": r.scenario,
            "agents": ", ".join(r.agents),
            "seeds": ", ".join(map(str, r.seeds)),
            "steps done": f"{r.steps_done} / {r.steps_total}",
            "duration": runmeta.duration(manifest, r.status) if manifest else "-",
            "started": r.started.replace("T", " ")[:19],
        }
        flat = runmeta.flatten(scenarios[r.run_id])
        for path in differing:
            row[f"set: {path}"] = (
                runmeta.format_cell(flat.get(path, "-")) if scenarios[r.run_id] else ""
            )
        row.update(_key_metrics(r, unreadable))
        rows.append(row)
    # what tells runs apart first: settings that differ, then key metrics, then bookkeeping
    columns = ["run", "name", "status", "scenario", "agents", "seeds",
               *(f"set: {p}" for p in differing), *KEY_METRICS, "steps done", "duration",
               "started", "tags"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def _filters(ctx: Context) -> list[RunSummary]:
    ss = st.session_state
    statuses = sorted({r.status for r in ctx.runs})
    scenarios = sorted({r.scenario for r in ctx.runs})
    ss["runs-status"] = [s for s in ss.get("runs-status", []) if s in statuses]
    ss["runs-scenario"] = [s for s in ss.get("runs-scenario", []) if s in scenarios]
    ss.setdefault("runs-search", "")
    search, status, scenario = st.columns([3, 2, 2])
    query = search.text_input(
        "Search", key="runs-search", placeholder="run id, name, tag, scenario or agent"
    )
    by_status = status.multiselect("Status", statuses, key="runs-status")
    by_scenario = scenario.multiselect("Scenario", scenarios, key="runs-scenario")
    return [
        r
        for r in ctx.runs
        if matches(r, query, ctx.labels.get(r.run_id, {}))
        and (not by_status or r.status in by_status)
        and (not by_scenario or r.scenario in by_scenario)
    ]


def _sync_selection(ids: list[str]) -> None:
    """Follow row clicks into the run selection, and show the selection as selected rows.

    The selection (``runs-selected``, the sidebar's list) is the truth. When the table's
    rows differ from what this page last wrote into it, the user clicked: the new
    selection is queued for the sidebar (drawn before this page) and the app reruns.
    """
    ss = st.session_state
    selected = list(ss.get("runs-selected", []))
    state, written = ss.get("runs-table"), ss.get("_runs-table-written")
    if state is not None and written is not None and list(written[0]) == ids:
        rows = sorted(int(i) for i in state["selection"]["rows"] if 0 <= int(i) < len(ids))
        if rows != sorted(written[1]):
            hidden = [r for r in selected if r not in ids]
            ss["_pending-selection"] = hidden + [ids[i] for i in rows]
            ss["_runs-table-written"] = (ids, rows)
            st.rerun()
    want = sorted(ids.index(r) for r in selected if r in ids)
    ss["runs-table"] = {"selection": {"rows": want, "columns": [], "cells": []}}
    ss["_runs-table-written"] = (ids, want)


def page_runs(ctx: Context) -> None:
    """The run table with search, filters, row selection, and the name and tags editor."""
    st.header("Runs")
    flash = st.session_state.pop("_runs-flash", None)
    if flash:
        st.success(flash)
    if not ctx.runs:
        st.info(f"No run directories under {ctx.runs_dir}. Start one with `simlab run` or Launch.")
        return
    visible = _filters(ctx)
    ids = [r.run_id for r in visible]
    _sync_selection(ids)
    unreadable: dict[str, str] = {}
    table = runs_table(visible, [r.run_id for r in ctx.selected], ctx.labels, unreadable)
    if not visible:
        st.info("No run matches the search and filters.")
    config = {
        "run": st.column_config.TextColumn(pinned=True),  # widths fit the content
    }
    st.dataframe(
        table,
        key="runs-table",
        on_select="rerun",
        selection_mode="multi-row",
        hide_index=True,
        column_config=config,
        width="stretch",
    )
    n_sel = len(ctx.selected)
    st.caption(
        f"{len(visible)} of {len(ctx.runs)} run{'s' if len(ctx.runs) != 1 else ''} shown, "
        f"{n_sel} selected under `{ctx.runs_dir}`. Click rows (the left edge) to select runs "
        "for Compare, Ecosystem, Users and Live. With two or more selected, `set:` columns show "
        "the scenario settings (`--set`, sweep) in which they differ; then come key metrics per "
        "agent and sweep point or variant (mean over the steps after the warm-up, or the last "
        "step for cumulative metrics, then over seeds, as `simlab show`)."
    )
    for r in ctx.runs:
        if r.problem:
            st.error(f"Run {r.run_id} is corrupt: {r.problem}")
    for run_id, problem in unreadable.items():
        st.error(f"Run {run_id} cannot be read: {problem}")
    _labels_editor(ctx)


def _labels_editor(ctx: Context) -> None:
    readable = [r for r in ctx.runs if not r.problem]
    if not readable:
        return
    ss = st.session_state
    ids = [r.run_id for r in readable]
    first = next((r.run_id for r in ctx.selected if r.run_id in ids), ids[0])
    if ss.get("label-run") not in ids:
        ss["label-run"] = first
    with st.expander("Name and tag a run", expanded=False):
        run_id = st.selectbox("Run", ids, key="label-run")
        current = ctx.labels.get(run_id, {})
        name = st.text_input("Name", current.get("name", ""), key=f"label-name-{run_id}")
        tags = st.text_input(
            "Tags (comma-separated)", ", ".join(current.get("tags", [])), key=f"label-tags-{run_id}"
        )
        st.caption(f"Stored in `{ctx.runs_dir / run_id / runmeta.LABELS}`; the run id is kept.")
        if st.button("Save name and tags", key="label-save"):
            path = readable[ids.index(run_id)].path
            try:
                runmeta.write_labels(path, name, runmeta.parse_tags(tags))
            except OSError as e:
                st.error(f"Cannot write {path / runmeta.LABELS}: {e}")
                return
            st.session_state["_runs-flash"] = f"Saved the name and tags of {run_id}."
            st.rerun()
