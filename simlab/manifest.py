"""Checks of a run directory read from disk: the manifest's schema and the folder layout.

A run directory may come from another machine, another version, a crash or a careless
edit. :func:`check_manifest` validates ``manifest.json`` against the schema every command
relies on (types, required keys, trial records in order) and :func:`check_layout` checks
that what should be a folder is a folder and what should be a file is a file, so a damaged
directory is refused with one line per problem naming the file, never a traceback from
deep inside ``show``, ``resume``, ``report``, ``runs`` or the dashboard.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

__all__ = [
    "STATUSES",
    "MANIFEST",
    "SCENARIO",
    "METRICS",
    "JOURNAL",
    "EVENTS",
    "ID_COLUMNS",
    "LOGGING_POLICIES",
    "check_manifest",
    "check_layout",
]

MANIFEST = "manifest.json"
SCENARIO = "scenario.yaml"
METRICS = "metrics.parquet"
JOURNAL = "metrics.journal"
EVENTS = "events"
STATUSES = ("starting", "running", "completed", "failed", "interrupted")
TRIAL_STATUSES = ("pending", "running", "completed", "failed", "interrupted")
ID_COLUMNS = ("run_id", "trial", "agent", "seed", "step")  # the metrics table's id columns
SUMMARIES = ("mean", "last")  # how a metric is summarised over steps
_STARTUP = "; the platform's start-up steps, random slates, log 1/C"
LOGGING_POLICIES = {
    "sampled": "the agent samples its slates and reports their probabilities" + _STARTUP,
    "deterministic": "the agent is deterministic given its observation: propensity 1.0" + _STARTUP,
    "unknown": "the agent samples without a closed-form probability, or re-rankers changed "
    "its slates: propensity NaN" + _STARTUP,
}
"""Kinds of logged propensities, with what each means (a trial's ``logging_policy``)."""


class _Record(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class _Trial(_Record):
    index: StrictInt = Field(ge=0)
    agent: StrictStr
    seed: StrictInt = Field(ge=0)
    point: StrictInt = Field(0, ge=0)
    params: dict[str, Any] = Field(default_factory=dict)
    status: Literal[TRIAL_STATUSES] = "pending"  # type: ignore[valid-type]
    logging_policy: Literal[tuple(LOGGING_POLICIES)] = "unknown"  # type: ignore[valid-type]
    steps_done: StrictInt = Field(0, ge=0)
    restarts: StrictInt = Field(0, ge=0)
    warmup: StrictInt = Field(0, ge=0)
    events_from: StrictInt | None = Field(None, ge=0)  # the step its event log starts at


class _Fork(_Record):
    run: StrictStr
    step: StrictInt = Field(ge=0)


class _Manifest(_Record):
    run_id: StrictStr
    status: Literal[STATUSES]  # type: ignore[valid-type]
    trials: list[_Trial]
    metric_columns: list[StrictStr]
    sweep_columns: list[StrictStr] = Field(default_factory=list)
    metric_summary: dict[StrictStr, Literal[SUMMARIES]] = Field(default_factory=dict)  # type: ignore[valid-type]
    agents: list[StrictStr] = Field(default_factory=list)
    seeds: list[StrictInt] = Field(default_factory=list)
    privileged_agents: list[StrictStr] = Field(default_factory=list)
    scenario: StrictStr | None = None
    created: StrictStr | None = None
    started: StrictStr | None = None
    ended: StrictStr | None = None
    error: StrictStr | None = None
    pid: StrictInt | None = None
    host: StrictStr | None = None
    versions: dict[StrictStr, StrictStr] = Field(default_factory=dict)
    execution: dict[str, Any] | None = None
    forked_from: _Fork | None = None
    resumed: list[StrictStr] = Field(default_factory=list)


_EXPECTED = {
    "int_type": "an int",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "greater_than_equal": "a non-negative number",
}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _where(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (("." if out else "") + str(part))
    return out


def check_manifest(manifest: Any) -> list[str]:
    """Problems of a parsed ``manifest.json``, as ``missing K`` or ``malformed K (...)``."""
    if not isinstance(manifest, dict):
        return [f"expected a JSON object, got {type(manifest).__name__}"]
    try:
        _Manifest.model_validate(manifest)
    except ValidationError as err:
        missing, malformed = [], []
        for e in err.errors():
            where = _where(e["loc"])
            if e["type"] == "missing":
                missing.append(where)
            else:
                want = _EXPECTED.get(e["type"], e["msg"].lower())
                if e["type"] == "literal_error":
                    want = f"one of {e['ctx']['expected']}"
                malformed.append(f"{where} (expected {want}, got {_short(e.get('input'))})")
        out = [f"missing {', '.join(missing)}"] if missing else []
        return out + [f"malformed {m}" for m in malformed]
    out = []
    sweep = manifest.get("sweep_columns", [])
    for i, t in enumerate(manifest["trials"]):
        if t["index"] != i:
            out.append(f"malformed trials[{i}].index (expected {i}, got {t['index']})")
        lacking = [c for c in sweep if c not in t.get("params", {})]
        if lacking:
            out.append(f"malformed trials[{i}].params (no value of sweep column {lacking[0]!r})")
    counts = Counter([*ID_COLUMNS, *sweep, *manifest["metric_columns"]])
    repeated = sorted(c for c, n in counts.items() if n > 1)  # (linear: a damaged list is long)
    if repeated:
        out.append(
            f"malformed sweep_columns/metric_columns ({repeated[0]!r} names two columns of "
            "the metrics table)"
        )
    return out


def check_layout(run: Path) -> list[str]:
    """Problems of a run directory's layout: files where folders belong, or the reverse."""
    out = []
    for name in (METRICS, JOURNAL, EVENTS, "checkpoints", "snapshots"):
        p = run / name
        if p.exists() and not p.is_dir():
            out.append(f"{p}: expected a folder, found a file")
    p = run / SCENARIO
    if p.exists() and not p.is_file():
        out.append(f"{p}: expected a file, found a folder")
    return out
