"""The platform log partitioned by user shard, and its checkpoint forms.

With the Ray learner (:mod:`simlab.execution.ray_learner`) each user shard keeps the
feedback part of the platform's log for its own users (:class:`ShardLog`): ``log_window``
steps of ``(user ids, slates, clicks, engagement)`` and, per retrain due, the snapshot of
that window. The platform in the trial actor keeps only what is small and central: each
logged step's number, the items shown and their features (content, not users).

A checkpoint holds the platform's log in one of two forms:

- **whole** (the local backend, or Ray without the learner): ``log`` is a list of
  ``{"feedback", "shown", "features"}`` per step, ``pending`` a list of ``(at, Log fields)``;
- **partitioned** (Ray with the learner): ``log`` is a list of ``{"step", "shown",
  "features"}``, ``pending`` a list of ``(at, {"central": [those entries]})`` and ``shards``
  one :meth:`ShardLog.state_dict` per shard with its user range: each shard's part holds its
  users' log window and pending snapshots.

:func:`whole_form` and :func:`partitioned_form` read either form, so a run continues from a
checkpoint whatever backend or shard count took it (the partitions are joined per step in
user-id order, or split at the new shards' bounds), and the log the agent retrains on is the
same array for array.
"""

from __future__ import annotations

from collections import deque
from dataclasses import fields
from typing import Any

import numpy as np

from simlab.batch import PAD, Feedback, Log

__all__ = [
    "ShardLog",
    "latest_features",
    "join_steps",
    "split_feedback",
    "feedback_state",
    "whole_form",
    "partitioned_form",
]


def latest_features(window: list) -> tuple[np.ndarray, np.ndarray]:
    """``(sorted ids, features)`` of the items of a log window, each item's latest features."""
    ids = np.concatenate([s for _, s, _ in window])
    feats = np.concatenate([x for _, _, x in window])
    uniq, first = np.unique(ids[::-1], return_index=True)  # the last occurrence of each
    return uniq, feats[::-1][first]


def feedback_state(f: Feedback) -> dict[str, Any]:
    """A step's feedback as a dict of its fields (the checkpoint form)."""
    return {k.name: getattr(f, k.name) for k in fields(f)}


class ShardLog:
    """One user shard's part of the platform log: its users' feedback of recent steps.

    Args:
        section: the scenario's ``platform`` section (``log_window``, the retrain schedule).
    """

    def __init__(self, section: Any) -> None:
        self.section = section
        self.window: deque[Feedback] = deque(maxlen=section.log_window)
        self.pending: dict[int, list[Feedback]] = {}  # deploy step -> the window snapshot

    def record(self, feedback: Feedback) -> None:
        """Log this shard's users' feedback of one step; snapshot it if a retrain is due."""
        self.window.append(feedback)
        t = feedback.step
        if self.section.retrain_due(t):
            self.pending[t + self.section.deploy_lag] = list(self.window)

    def take(self, at: int) -> list[Feedback]:
        """The snapshot whose model serves from step ``at`` (handed to the learner once)."""
        return self.pending.pop(at)

    def state_dict(self) -> dict[str, Any]:
        """The window and the pending snapshots, as arrays."""
        return {
            "log": [feedback_state(f) for f in self.window],
            "pending": [
                (at, [feedback_state(f) for f in snap]) for at, snap in self.pending.items()
            ],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.window.clear()
        self.window.extend(Feedback(**f) for f in state["log"])
        self.pending = {int(at): [Feedback(**f) for f in snap] for at, snap in state["pending"]}


def join_steps(parts: list[list[Feedback]]) -> list[Feedback]:
    """Per step, the shards' feedback joined in user-id order (shards in id order).

    ``parts[k]`` is shard ``k``'s list of steps; every shard logged the same steps. Slates
    of different widths (``slate_size: 0``) are ``PAD``-padded to the widest.
    """
    out = []
    for steps in zip(*parts, strict=True):
        width = max(f.slates.shape[1] for f in steps)
        slates = [
            np.pad(f.slates, ((0, 0), (0, width - f.slates.shape[1])), constant_values=PAD)
            if f.slates.shape[1] < width
            else f.slates
            for f in steps
        ]
        out.append(
            Feedback(
                step=steps[0].step,
                user_ids=np.concatenate([f.user_ids for f in steps]),
                slates=np.concatenate(slates),
                clicked_pos=np.concatenate([f.clicked_pos for f in steps]),
                engagement=np.concatenate([f.engagement for f in steps]),
            )
        )
    return out


def split_feedback(f: Feedback, bounds: list[tuple[int, int]]) -> list[Feedback]:
    """A step's feedback cut at the shards' user ranges ``bounds`` (increasing user ids)."""
    cuts = np.searchsorted(f.user_ids, [lo for lo, _ in bounds[1:]])
    edges = [0, *cuts.tolist(), f.user_ids.shape[0]]
    return [
        Feedback(f.step, f.user_ids[a:b], f.slates[a:b], f.clicked_pos[a:b], f.engagement[a:b])
        for a, b in zip(edges[:-1], edges[1:], strict=True)
    ]


def _log_steps(log: Log) -> list[Feedback]:
    """A joined :class:`Log`'s rows as one feedback per logged step."""
    step = np.asarray(log.step)
    if step.size == 0:
        return []
    starts = np.flatnonzero(np.r_[True, step[1:] != step[:-1]])
    edges = [*starts.tolist(), step.shape[0]]
    return [
        Feedback(
            int(step[a]),
            log.user_ids[a:b],
            log.slates[a:b],
            log.clicked_pos[a:b],
            log.engagement[a:b],
        )
        for a, b in zip(edges[:-1], edges[1:], strict=True)
    ]


def _central(entry: dict[str, Any], step: int) -> tuple[int, np.ndarray, np.ndarray]:
    return (step, entry["shown"], entry["features"])


def _whole_steps(state: dict[str, Any]) -> tuple[list, list]:
    """``(per-step feedback of the window, [(at, per-step feedback)])`` of either form."""
    if "shards" not in state:
        log = [Feedback(**e["feedback"]) for e in state["log"]]
        pending = [(int(at), _log_steps(Log(**snap))) for at, snap in state["pending"]]
        return log, pending
    shards = state["shards"]
    log = join_steps([[Feedback(**f) for f in s["log"]] for s in shards])
    per_shard = [{int(at): snap for at, snap in s["pending"]} for s in shards]
    pending = [
        (int(at), join_steps([[Feedback(**f) for f in p[int(at)]] for p in per_shard]))
        for at, _ in state["pending"]
    ]
    return log, pending


def whole_form(state: dict[str, Any]) -> tuple[list, list[tuple[int, Log]]]:
    """The platform's ``(log window, pending retrains)`` as the local platform keeps them.

    Args:
        state: a checkpoint's ``platform`` part, in either form.

    Returns:
        ``([(feedback, shown, features)] per step, [(at, Log)])``.
    """
    steps, pending = _whole_steps(state)
    log = [(f, e["shown"], e["features"]) for f, e in zip(steps, state["log"], strict=True)]
    out = []
    for (at, snap), (_, entry) in zip(pending, state["pending"], strict=True):
        if "shards" not in state:
            out.append((at, Log(**entry)))
            continue
        ids, feats = latest_features([_central(e, -1) for e in entry["central"]])
        joined = Log.of_steps(snap, ids, feats)
        out.append((at, Log(*(getattr(joined, k.name) for k in fields(Log)))))
    return log, out


def partitioned_form(
    state: dict[str, Any], bounds: list[tuple[int, int]]
) -> tuple[list, list, list[dict[str, Any]]]:
    """The platform's log split for shards with user ranges ``bounds``.

    Args:
        state: a checkpoint's ``platform`` part, in either form.
        bounds: the user range of each shard.

    Returns:
        ``(central window [(step, shown, features)], pending [(at, central window)], one
        :meth:`ShardLog.state_dict` per shard)``.
    """
    shards = state.get("shards")
    same = shards is not None and [(s["lo"], s["hi"]) for s in shards] == list(bounds)
    if same:  # taken with these shards: each part goes back to its shard as it is
        parts = [{"log": s["log"], "pending": s["pending"]} for s in shards]
    else:
        steps, pending = _whole_steps(state)
        parts = [{"log": [], "pending": []} for _ in bounds]
        for f in steps:
            for part, piece in zip(parts, split_feedback(f, bounds), strict=True):
                part["log"].append(feedback_state(piece))
        for at, snap in pending:
            cut = [split_feedback(f, bounds) for f in snap]
            for k, part in enumerate(parts):
                part["pending"].append((at, [feedback_state(c[k]) for c in cut]))
    if "shards" in state:
        central = [_central(e, int(e["step"])) for e in state["log"]]
        waits = [(int(at), [_central(e, int(e["step"])) for e in p["central"]]) for at, p in
                 state["pending"]]  # fmt: skip
    else:
        central = [_central(e, int(e["feedback"]["step"])) for e in state["log"]]
        # a joined snapshot's item table is its latest features: one central entry holds it
        waits = [(int(at), [(-1, snap["feature_ids"], snap["features"])]) for at, snap in
                 state["pending"]]  # fmt: skip
    for part, (lo, hi) in zip(parts, bounds, strict=True):
        part["lo"], part["hi"] = lo, hi
    return central, waits, parts
