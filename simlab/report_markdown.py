"""The report's ``report.md``: a table per sweep point, the pooled tables and the figures.

Part of :mod:`simlab.report`.
"""

from __future__ import annotations

from simlab.intervals import INTERVALS
from simlab.report_result import DERIVED, ReportResult, format_mean_sd, paired_seeds
from simlab.store import RunStore
from simlab.windows import PointBaseline

__all__: list[str] = []


def _markdown(result: ReportResult, store: RunStore) -> str:
    """``report.md``: the run, a table per sweep point (metrics as rows) and the figures."""
    lines = [
        f"# Report of run `{store.run_id}`",
        "",
        f"Scenario `{store.manifest.get('scenario')}`, status {store.status}. Each cell: the "
        "metric's mean over steps (or its last step, marked *), then "
        f"{result.table_label()}. "
        f"Figures: mean over seeds with {INTERVALS[result.interval]}"
        + (f", {result.smoothing.label()}" if result.smoothing.active else "")
        + ", bands clipped to each metric's range.",
        "",
        *([f"**Note.** {result.warmup_note}", ""] if result.warmup_note else []),
        *([f"**Note.** {result.stopped_note}", ""] if result.stopped_note else []),
        *([f"**Note.** {result.note}", ""] if result.note else []),
    ]
    for point, rows in result.groups():
        if point:
            lines += [f"### {point}", ""]
        lines += [
            "| metric | " + " | ".join(_cell(result.agent_label(i)) for i in rows) + " |",
            "|---|" + "---:|" * len(rows),
            "| seeds | "
            + " | ".join(str(int(result.summary["seeds"].iloc[i])) for i in rows)
            + " |",
            "| steps | "
            + " | ".join(str(int(result.summary["steps"].iloc[i])) for i in rows)
            + " |",
        ]
        for m in result.metrics:
            name = m + ("*" if result.kinds.get(m) == "last" else "")
            lines.append(f"| {name} | " + " | ".join(result.cell(i, m) for i in rows) + " |")
        lines.append("")
    for d in DERIVED:
        if result.oracle and d.name in result.metrics:
            o = f"`{result.oracle}`'s"
            what = (
                f"`{d.metric}` minus {o}"
                if d.kind == "difference"
                else f"(`{d.metric}` minus {o}) / {o}"
            )
            lines += ["", f"`{d.name}`: {what}, at the same seed, sweep point and step."]
    lines += _table_lines(result)
    lines += ["", "## Figures", ""]
    lines += [f"![{m}]({p.name})" for m, p in zip(result.metrics, result.figures, strict=True)]
    return "\n".join(lines) + "\n"


def _cell(value) -> str:
    """``value`` as a table cell's text: a ``|`` in an agent's label would end the cell."""
    return str(value).replace("|", "\\|")


_PARTIAL = (
    " `partial`: trials that stopped early (an interrupted run), pooled over the steps they "
    "ran (`simlab resume` runs them to the end)."
)


_HOW = {
    "source bias by window": "Per trial pooled over the window (summed counts, then the log odds)",
    "source bias escalation": "Per trial the last window's pooled log odds minus the first "
    "window's (a trial without rows in both is left out)",
    "tipping point": "Per trial, the first step after the warm-up at which the AIGC share of "
    "active creators exceeds 1/2; a trial that never tips counts as the run's length (so the "
    "mean is a lower bound when not all tipped; `tipped` counts those that did)",
}
"""How each pooled table's per-trial value is made (its paragraph in ``report.md``)."""


def _versus(baseline) -> str:
    """What the ``vs`` column subtracts: an agent's value or the same agent's at a point."""
    if isinstance(baseline, PointBaseline):
        return (
            f"the paired difference to the same agent at `{baseline}` (same seed and window; "
            "windows are matched by name)"
        )
    return "the paired difference (same seed)"


def _table_lines(result: ReportResult) -> list[str]:
    """Markdown of the pooled tables: value and difference to the baseline, ± 95% t."""
    lines: list[str] = []
    for name, table in result.tables.items():
        keys = [c for c in ("agent", *result.sweep_columns, "window") if c in table.columns]
        extra = ["tipped"] if "tipped" in table.columns else []
        partial = "partial" in table.columns and bool(table["partial"].gt(0).any())
        extra += ["partial"] if partial else []
        lines += [
            "",
            f"## {name[0].upper() + name[1:]}",
            "",
            f"{_HOW.get(name, _HOW['tipping point'])}, then mean ± 95% Student-t half-width "
            f"over seeds; `vs {result.baseline}`: {_versus(result.baseline)}."
            + (_PARTIAL if partial else ""),
            "",
            "| "
            + " | ".join([*keys, "value", _cell(f"vs {result.baseline}"), "seeds", *extra])
            + " |",
            "|" + "---|" * len(keys) + "---:|---:|---:|" + "---:|" * len(extra),
        ]
        for _, r in table.iterrows():
            diff = format_mean_sd(r.get("diff", float("nan")), r.get("diff ±", float("nan")))
            diff += paired_seeds(r) if diff != "-" else ""
            cells = [_cell(r[k]) for k in keys]
            cells += [format_mean_sd(r["value"], r["value ±"]), diff, str(int(r["value n"]))]
            cells += [str(int(r[e])) for e in extra]
            lines.append("| " + " | ".join(cells) + " |")
    return lines
