"""Starting Ray for a run: connect or start an embedded instance, and size trials to fit.

Part of :mod:`simlab.execution.ray` (see its docstring for how trials run), which
re-exports the public names.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import numpy as np

from simlab.execution.connect import probe_address
from simlab.execution.ray_actors import NAMESPACE, ClusterError
from simlab.execution.ray_population import _ray
from simlab.signals import reinstall as reinstall_signal_handlers

if TYPE_CHECKING:
    from simlab.scenario import ExecutionSection

__all__ = ["init_ray", "init_local", "trial_demand", "local_instance_options"]


def trial_demand(ex: ExecutionSection) -> dict[str, float]:
    """Ray resources one trial reserves (its shards and its agent)."""
    gpus = ex.agent_resources.num_gpus
    out = {"CPU": ex.trial_cpus()}
    if ex.learner.actor:  # reserved whether or not the trial's agent ends up using it
        lr = ex.learner
        out["CPU"] += lr.bundle().get("CPU", 0.0) - lr.num_cpus  # an empty bundle's token CPU
        gpus += lr.num_gpus
    if gpus:
        out["GPU"] = gpus
    return out


def _code_paths() -> list[str]:
    """The driver's code folders for workers.

    Those are the ``sys.path`` entries outside the Python installation, minus any that would
    shadow an already imported package (a source checkout of simlab next to an installed
    simlab, say).
    """
    installed = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    out = []
    for entry in sys.path:
        path = os.path.realpath(entry or ".")
        if not os.path.isdir(path) or any(path.startswith(i) for i in installed):
            continue
        if any(_shadows(path, name) for name in os.listdir(path)):
            continue
        out.append(path)
    return list(dict.fromkeys(out))


def _shadows(path: str, name: str) -> bool:
    """Whether ``path/name`` is a module or regular package other than the imported ``name``.

    A folder without ``__init__.py`` cannot shadow one: Python prefers a regular package on
    any later path entry to a namespace portion (a test folder named ``dashboard``, say). A
    file ``numpy.py`` can: on the workers' ``PYTHONPATH`` it comes before the installed numpy.
    """
    stem, suffix = os.path.splitext(name)
    if suffix == ".py":
        mine = os.path.join(path, name)
    elif os.path.isfile(os.path.join(path, name, "__init__.py")):
        stem, mine = name, os.path.join(path, name) + os.sep
    else:
        return False
    module = sys.modules.get(stem)
    where = getattr(module, "__file__", None)
    if module is None or where is None:
        return False
    return not os.path.realpath(where).startswith(mine)


def local_instance_options(num_cpus: int, object_store_mb: int = 0) -> dict[str, Any]:
    """``ray.init`` keywords for a quiet embedded instance (see :func:`init_local`).

    No dashboard, no worker logs on the console, a modest object store.
    """
    return {
        "num_cpus": num_cpus,
        "include_dashboard": False,
        "object_store_memory": (object_store_mb or _default_store_mb()) * 1024 * 1024,
        "log_to_driver": False,
        "logging_level": "ERROR",
        "configure_logging": False,
    }


def init_local(num_cpus: int, object_store_mb: int = 0, **kwargs: Any) -> None:
    """Start a quiet embedded Ray instance (runs, tests, benchmarks).

    :func:`local_instance_options`, plus the driver's own code folders (those outside the
    Python installation: the working directory, a test folder) on the workers'
    ``PYTHONPATH``, so ``model: my_module:MyAgent`` classes import in actors as they do here.
    The folders reach the workers through the environment the instance's processes inherit
    (set while ``ray.init`` starts them, then restored), not a ``runtime_env``: with one,
    Ray cannot hand an actor a worker it started ahead of time and starts a new one for it
    (measured: about 1 s more to start 1 or 4 actors on the 2-core machine).
    """
    paths = _code_paths()
    before = os.environ.get("PYTHONPATH")
    if paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([*paths, *([before] if before else [])])
    try:
        _ray().init(**local_instance_options(num_cpus, object_store_mb), **kwargs)
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before


def init_ray(ex: ExecutionSection) -> bool:
    """Connect to Ray as ``ex`` says; return True when this call started it.

    An existing connection (``ray.init`` done by the caller, e.g. a test session) is used as
    it is. Without ``address`` an embedded local instance starts quietly: no dashboard, no
    worker logs on the console, a modest object store, at least as many logical CPUs as one
    trial reserves (a trial's actors take turns within a step, so a small machine can still
    run one trial with several shards).
    """
    ray = _ray()
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if ex.address is not None:
        probe_address(ex.address, ex.connect_timeout, ClusterError)
    try:
        if ex.address is not None:
            ray.init(
                address=ex.address,
                namespace=NAMESPACE,
                log_to_driver=False,
                logging_level="ERROR",
                configure_logging=False,
            )
        else:
            # an embedded instance is private to this process: no token needed
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")
            cpus = max(os.cpu_count() or 1, int(np.ceil(trial_demand(ex)["CPU"])))
            init_local(cpus, ex.object_store_mb, namespace=NAMESPACE)
    except (ConnectionError, RuntimeError, ValueError) as e:
        ray.shutdown()  # whatever the failed start left running (a no-op when nothing)
        where = f"the Ray cluster at {ex.address!r}" if ex.address else "a local Ray instance"
        raise ClusterError(f"execution.address: cannot connect to {where} ({e})") from None
    except BaseException:
        # Ctrl-C or SIGTERM inside ray.init: the processes it had started are stopped here,
        # since the caller's shutdown runs only when this returned
        ray.shutdown()
        raise
    finally:
        # ray.init replaces the SIGTERM handler with one that exits with status 15
        reinstall_signal_handlers()
    return True


def _default_store_mb() -> int:
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        total = 8 << 30
    return int(min(2048, max(256, 0.3 * total / (1 << 20))))


def _check_capacity(ex: ExecutionSection) -> int:
    """How many trials fit at once; a clear error when not even one does."""
    ray = _ray()
    have = ray.cluster_resources()
    need = trial_demand(ex)
    gpus = need.get("GPU", 0.0)
    lr = ex.learner
    learner = f" + learner {lr.num_cpus:g} CPU" if lr.actor else ""
    for res, amount in need.items():
        if have.get(res, 0.0) + 1e-9 < amount:
            raise ClusterError(
                f"execution: one trial needs {amount:g} {res} ({ex.shards} shards x "
                f"{ex.shard_cpus:g} CPU + agent {ex.agent_resources.num_cpus:g} CPU{learner}"
                f"{f', {gpus:g} GPU' if gpus else ''}) but the Ray cluster has "
                f"{have.get(res, 0.0):g}; lower execution.shards, execution.shard_cpus, "
                "execution.agent_resources or execution.learner, or add nodes"
            )
    fits = min(int(have.get(res, 0.0) // amount) for res, amount in need.items() if amount > 0)
    return max(1, fits)
