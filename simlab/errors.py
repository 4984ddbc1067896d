"""All exceptions raised by simlab, in one place.

Every error a user can cause (a bad scenario, an unknown model name, a corrupt run
directory) is a :class:`SimlabError`; the CLI turns those into one clear line and exit
code 2 instead of a traceback. So are the OS errors of a disk or folder that refuses a file
operation (:data:`DISK_ERRNOS`: full, over quota, read-only, ...): :func:`disk_failure` finds
one behind an exception, and the runner and the CLI report it with its reason and file.
"""

from __future__ import annotations

import difflib
import errno
import os
from collections.abc import Iterable

__all__ = [
    "SimlabError",
    "ScenarioError",
    "RegistryError",
    "RunStoreError",
    "AgentContractError",
    "DependencyNotInstalled",
    "PeerSimulatorError",
    "SimlabWarning",
    "RemoteTraceback",
    "did_you_mean",
    "DISK_ERRNOS",
    "disk_failure",
    "describe_disk_failure",
]


class SimlabError(Exception):
    """Base class of every error simlab raises on purpose."""


class RemoteTraceback(Exception):
    """The traceback of an exception raised in another process (a worker, a Ray actor).

    Chained as that exception's ``__cause__`` where it is raised again, so a traceback
    printed here ends in the frames where it happened.
    """

    def __str__(self) -> str:
        return "\n" + self.args[0]


class ScenarioError(SimlabError, ValueError):
    """Raised when a scenario file or an override is missing, malformed or invalid."""


class RegistryError(SimlabError, KeyError):
    """Raised when a model, agent, re-ranker or metric name is not registered."""

    def __str__(self) -> str:
        # KeyError quotes its message; keep it readable.
        return str(self.args[0]) if self.args else ""


class RunStoreError(SimlabError):
    """Raised when a run directory is missing, corrupt or half-written."""


class AgentContractError(SimlabError, RuntimeError):
    """Raised when an agent returns slates that break the protocol (shape, duplicates, items)."""


class ModelContractError(SimlabError, RuntimeError):
    """Raised when a user or content model returns data that breaks its protocol."""


class DependencyNotInstalled(SimlabError, ImportError):
    """Raised when an optional dependency is needed but not installed; names the install command."""


class PeerSimulatorError(SimlabError, RuntimeError):
    """Raised when a peer simulator's worker (RecSim NG) fails a request, crashes or hangs."""


class SimlabWarning(UserWarning):
    """Warned when simlab goes on past a problem (a damaged checkpoint skipped, a YAML surprise)."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest choice, or an empty string.

    >>> did_you_mean("popularty", ["random", "popularity"])
    " Did you mean 'popularity'?"
    """
    matches = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.6)
    return f" Did you mean '{matches[0]}'?" if matches else ""


DISK_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO, errno.EACCES, errno.EPERM}
)
"""OS errors that mean the disk or the folder refused a file operation (full, over quota,
read-only, failing, or not ours): reported to the user as such, not as a bug."""


def disk_failure(exc: BaseException) -> OSError | None:
    """The :class:`OSError` with one of :data:`DISK_ERRNOS` behind ``exc``, or ``None``.

    Looks at ``exc``, its causes and contexts (a write that failed again while cleaning up
    after the first) and a Ray task error's ``cause``; a worker process's error arrives
    as the OSError itself.
    """
    todo: list[object] = [exc]
    seen: set[int] = set()
    while todo:
        e = todo.pop()
        if not isinstance(e, BaseException) or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in DISK_ERRNOS:
            return e
        todo += [getattr(e, "cause", None), e.__context__, e.__cause__]
    return None


def describe_disk_failure(e: OSError) -> str:
    """``"No space left on device (errno 28) at /path"``: the reason, the code and the file."""
    where = f" at {e.filename}" if e.filename else ""
    return f"{os.strerror(e.errno or 0)} (errno {e.errno}){where}"
