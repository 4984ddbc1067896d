"""Snapshots: a sample of users' latent interests and the items' exposure every N steps.

Every ``output.snapshot_every`` steps a trial writes ``snapshots/trial=<i>/step=<t>.npz``
(``t`` = steps done) holding, for a fixed sample of ``output.snapshot_users`` users (evenly
spaced ids, the same in every trial of the run so agents can be compared):

- ``user_ids`` ``(n,)`` and ``interests`` ``(n, d)`` float32: their current latent interests;
- ``exposure`` ``(N,)`` int64: impressions of each live item at the last step;
- ``item_source`` ``(N,)`` int8 (0 human, 1 AIGC) and ``item_creator`` ``(N,)`` int64.

The dashboard projects the interests to 2-D (how the population clusters as the loop runs)
and draws the exposure Lorenz curve. Files are written to a temporary name and renamed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from simlab.atomic import replacing
from simlab.errors import RunStoreError

if TYPE_CHECKING:
    from simlab.world import World

__all__ = [
    "due_snapshot",
    "sample_users",
    "capture_snapshot",
    "write_snapshot",
    "read_snapshot",
    "snapshot_steps",
]

SNAPSHOTS = "snapshots"


def sample_users(num_users: int, size: int) -> np.ndarray:
    """``min(size, num_users)`` evenly spaced user ids (deterministic, no randomness)."""
    n = min(size, num_users)
    if n <= 0:
        return np.zeros(0, np.int64)
    return np.unique(np.linspace(0, num_users - 1, n).round().astype(np.int64))


def capture_snapshot(world: World, size: int) -> dict[str, np.ndarray]:
    """The snapshot arrays of ``world`` right after a step."""
    ids = sample_users(world.context.num_users, size)
    step = world._content  # the finished step's content: its rows match the exposure counts
    if step is None or world.last_exposure_counts is None:
        raise RuntimeError("a snapshot is taken after a step")
    return {
        "user_ids": ids,
        "interests": np.asarray(world.population.sample_interests(ids), np.float32),
        "exposure": np.asarray(world.last_exposure_counts, np.int64),
        "item_source": np.asarray(step.items.source, np.int8),
        "item_creator": np.asarray(step.items.creator, np.int64),
    }


def due_snapshot(output: Any, done: int) -> bool:
    """Whether a snapshot is due after ``done`` steps (every ``snapshot_every`` steps)."""
    every = output.snapshot_every
    return bool(every) and done % every == 0


def _folder(run_path: Path, trial: int) -> Path:
    return Path(run_path) / SNAPSHOTS / f"trial={trial}"


def write_snapshot(run_path: Path, trial: int, step: int, arrays: dict[str, np.ndarray]) -> Path:
    """Write one snapshot atomically."""
    folder = _folder(run_path, trial)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step={step}.npz"
    with replacing(path, folder / f".step={step}.tmp-{os.getpid()}.npz") as tmp:
        np.savez(tmp, **arrays)
    return path


def snapshot_steps(run_path: Path, trial: int) -> list[int]:
    """Steps at which ``trial`` has a snapshot, increasing."""
    from simlab.checkpoint import steps_in

    return steps_in(_folder(run_path, trial), ".npz")


def read_snapshot(run_path: Path, trial: int, step: int) -> dict[str, np.ndarray]:
    """Load a snapshot; ``RunStoreError`` naming the steps that exist when it is missing."""
    path = _folder(run_path, trial) / f"step={step}.npz"
    if not path.exists():
        raise RunStoreError(
            f"{run_path}: trial {trial} has no snapshot at step {step}; snapshots exist at "
            f"steps {snapshot_steps(run_path, trial) or 'none (output.snapshot_every was 0)'}"
        )
    try:
        with np.load(path) as f:
            return {k: f[k] for k in f.files}
    except Exception as e:  # a damaged zip raises several types
        raise RunStoreError(f"{path}: corrupt snapshot ({type(e).__name__}: {e})") from None
