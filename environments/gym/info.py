"""``info`` dictionaries and text rendering of the Gymnasium environments.

Every env returns the same ``info`` keys at ``reset`` and at every ``step`` (what Minari's
``DataCollector(record_infos=True)`` and SlateQ-style learners need); for one session
(``K`` slate size):

* ``served`` (bool): this step's slate was shown (False at reset, and when the user did not
  visit);
* ``visiting`` (bool): the user visits at the next step, so the next action is served;
* ``slate`` ``(K,)`` int64: the candidate indices actually served, after repeats were
  replaced (-1 when nothing was served);
* ``slate_items`` ``(K,)`` int64: the item ids actually served (-1 when nothing was);
* ``clicked`` (bool) and ``clicked_position`` (int, -1 for no click): the user's choice;
* ``engagement`` ``(K,)`` float32: engagement per slot (0 except the clicked slot);
* ``metrics`` (``group/name`` -> float): the step's simlab metric row, 0.0 where undefined,
  and ``metrics_defined`` (``group/name`` -> bool) saying which are defined (NaN would break
  Gymnasium's determinism checks, ``None`` Minari's fixed info structure).

The vector env stacks these per session (``(N, ...)`` arrays, a ``_key`` mask beside each
key, as ``gymnasium.vector.SyncVectorEnv`` does); ``simlab/Platform-v0`` holds the per-user
ones as ``(U, ...)`` arrays.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .sessions import StepResult, WorldSessions

__all__ = ["session_infos", "stack_vector_info", "render_sessions", "RENDER_MODES"]

RENDER_MODES = ["ansi", "human"]
"""``ansi`` returns the text view; ``human`` prints it."""


def _metric_dicts(
    columns: list[str], row: dict[str, float] | None
) -> tuple[dict[str, float], dict[str, bool]]:
    """``(values, defined)``: NaN or missing values become 0.0 and ``defined=False``."""
    values, defined = {}, {}
    for c in columns:
        v = float("nan") if row is None else float(row.get(c, float("nan")))
        ok = not math.isnan(v)
        values[c], defined[c] = (v if ok else 0.0), ok
    return values, defined


def session_infos(sessions: WorldSessions, result: StepResult | None) -> dict[str, Any]:
    """The info of every session as ``(N, ...)`` arrays (``result=None``: the reset info).

    Metric values are plain floats (the row is the world's, shared by every session).
    """
    n, k = sessions.num_sessions, sessions.slate_size
    values, defined = _metric_dicts(
        sessions.metric_columns, None if result is None else result.metrics
    )
    if result is None:
        result = StepResult(
            served=np.zeros(n, bool),
            slate=np.full((n, k), -1, np.int64),
            slate_items=np.full((n, k), -1, np.int64),
            clicked_position=np.full(n, -1, np.int64),
            engagement=np.zeros((n, k), np.float32),
            metrics={},
        )
    return {
        "served": result.served.copy(),
        "visiting": sessions.served.copy(),
        "slate": result.slate,
        "slate_items": result.slate_items,
        "clicked": result.clicked,
        "clicked_position": result.clicked_position,
        "engagement": result.engagement,
        "metrics": values,
        "metrics_defined": defined,
    }


def single_info(batch: dict[str, Any], i: int = 0) -> dict[str, Any]:
    """Session ``i``'s info from :func:`session_infos` (scalars as Python values)."""
    out: dict[str, Any] = {}
    for key, v in batch.items():
        if isinstance(v, dict):
            out[key] = dict(v)
        else:
            x = v[i]  # a numpy scalar of an (N,) array, an array of an (N, ...) one
            out[key] = x.copy() if isinstance(x, np.ndarray) else x.item()
    return out


def stack_vector_info(batch: dict[str, Any], rows: np.ndarray | None = None) -> dict[str, Any]:
    """A vector env's info: every key ``(N, ...)`` plus its ``_key`` mask (SyncVectorEnv's layout).

    Args:
        batch: :func:`session_infos` of the step.
        rows: ``(N,)`` bool, sessions restarting at this step (next-step autoreset): their
            info is a reset info, so their metrics are blanked (0.0, undefined) as a freshly
            reset single env reports none; their slate fields already say "not served".
    """
    n = len(batch["served"])
    out: dict[str, Any] = {}
    mask = np.ones(n, bool)
    for key, v in batch.items():
        if isinstance(v, dict):
            nested: dict[str, Any] = {}
            for col, x in v.items():
                arr = np.full(n, x)
                if rows is not None and rows.any():
                    arr[rows] = 0  # 0.0 in "metrics", False in "metrics_defined"
                nested[col], nested["_" + col] = arr, mask.copy()
            out[key] = nested
        else:
            out[key] = v
        out["_" + key] = mask.copy()
    return out


def render_sessions(
    sessions: WorldSessions, result: StepResult | None, rows: list[int], title: str
) -> str:
    """A text view of the last served slates and choices of sessions ``rows``.

    Each slot shows the candidate index, the item id, the feature match ``<user, item>``
    of the observable features (what a policy can see), the click and its engagement.
    """
    lines = [f"{title} · step {sessions.t}"]
    feats = sessions._items.table
    for i in rows:
        uid = int(sessions.user_ids[i])
        nxt = "visits next step" if sessions.served[i] else "away next step"
        if result is None or not result.served[i]:
            lines.append(f"  session {i} (user {uid}): no slate served yet · {nxt}")
            continue
        pos = int(result.clicked_position[i])
        choice = f"clicked slot {pos}" if pos >= 0 else "no click"
        lines.append(f"  session {i} (user {uid}): {choice} · {nxt}")
        lines.append("    slot  cand   item   match  click  engagement")
        user = sessions.obs["user"][i]
        for s, c in enumerate(result.slate[i]):
            item = result.slate_items[i, s]
            match = float(user @ feats[item]) if user.size == feats.shape[1] else float("nan")
            mark = "  *  " if s == pos else "     "
            eng = f"{result.engagement[i, s]:.3f}" if s == pos else ""
            lines.append(f"    {s:>4}  {c:>4}  {item:>5}  {match:>6.2f}  {mark}  {eng}")
    return "\n".join(lines)
