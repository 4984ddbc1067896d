"""RecSim NG interoperability: RecSim NG's interest-evolution users and corpus in simlab.

RecSim NG runs in its own Python environment (``simlab extras recsim-ng`` creates it) and in
a worker process (:mod:`.worker`) that exchanges plain numpy arrays with simlab
(:mod:`.bridge`). The components (:mod:`.population`) are registered as
``users.model: recsim-ng`` and ``content.model: recsim-ng-corpus``; they need the
environment only when built, and say what to run when it is missing.

Importing this package imports neither TensorFlow nor RecSim NG.
"""

from __future__ import annotations

from .bridge import RecSimNGError, Session, WorkerProcess, close_shared, shared_worker
from .population import RecSimNGCorpus, RecSimNGUsers

__all__ = [
    # components (registry: users `recsim-ng`, content `recsim-ng-corpus`)
    "RecSimNGUsers",
    "RecSimNGCorpus",
    # the bridge to the worker process
    "WorkerProcess",
    "Session",
    "RecSimNGError",
    "shared_worker",
    "close_shared",
]
