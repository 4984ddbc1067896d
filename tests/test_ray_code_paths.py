"""The embedded Ray instance gives its workers the driver's code folders (``init_local``).

The folders travel in the environment the instance's processes inherit while ``ray.init``
starts them (not a ``runtime_env``, which makes Ray start a fresh worker per actor); the
driver's own ``PYTHONPATH`` is restored afterwards, whatever it was and however init ended.
That workers import from those folders is tested on the session's instance, started the same
way: ``test_ray_execution``'s agent ``test_ray_execution:DuplicatingAgent`` lives in the tests
folder.
"""

from __future__ import annotations

import os
import sys

import pytest

from simlab.execution import ray_init


class _FakeRay:
    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.seen: list[tuple[str | None, dict]] = []

    def init(self, **kwargs) -> None:
        self.seen.append((os.environ.get("PYTHONPATH"), kwargs))
        if self.fail:
            raise RuntimeError("cannot start")


@pytest.mark.parametrize("fail", [False, True])
@pytest.mark.parametrize("before", [None, "", "/opt/one", f"/opt/one{os.pathsep}/opt/two"])
@pytest.mark.parametrize("paths", [[], ["/code/a"], ["/code/a", "/code/b"]])
def test_workers_get_the_code_folders_and_the_driver_keeps_its_path(
    monkeypatch, before, paths, fail
):
    """During init: the code folders first, then the driver's own entries; after: unchanged."""
    fake = _FakeRay(fail)
    monkeypatch.setattr(ray_init, "_ray", lambda: fake)
    monkeypatch.setattr(ray_init, "_code_paths", lambda: list(paths))
    if before is None:
        monkeypatch.delenv("PYTHONPATH", raising=False)
    else:
        monkeypatch.setenv("PYTHONPATH", before)
    if fail:
        with pytest.raises(RuntimeError, match="cannot start"):
            ray_init.init_local(3, 64, namespace="ns")
    else:
        ray_init.init_local(3, 64, namespace="ns")
    ((during, kwargs),) = fake.seen
    if paths:
        assert during == os.pathsep.join([*paths, *([before] if before else [])])
    else:
        assert during == before
    assert os.environ.get("PYTHONPATH") == before
    assert "runtime_env" not in kwargs
    assert kwargs["num_cpus"] == 3 and kwargs["namespace"] == "ns"
    assert kwargs["object_store_memory"] == 64 << 20


@pytest.mark.parametrize(
    ("entry", "imported_from", "kept"),
    [
        ("numpy.py", "elsewhere", False),  # would shadow the installed numpy on the workers
        ("numpy.py", "here", True),  # it is the imported numpy
        ("numpy.txt", "elsewhere", True),  # not a module
        ("never_imported_xyz.py", None, True),  # nothing to shadow
        ("numpy", "elsewhere", True),  # a folder without __init__.py
        ("numpy/__init__.py", "elsewhere", False),  # a regular package
        ("numpy/__init__.py", "here", True),
    ],
)
def test_a_folder_whose_module_would_shadow_an_imported_one_is_left_out(
    tmp_path, monkeypatch, entry, imported_from, kept
):
    """Files as well as packages: ``numpy.py`` next to the scenario must not reach the workers."""
    import types

    code = tmp_path / "code"
    target = code / entry
    if entry.endswith("/__init__.py") or "." not in entry:
        target = code / entry if entry.endswith(".py") else code / entry / "x.txt"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("")
    name = entry.split("/")[0].removesuffix(".py").removesuffix(".txt")
    if imported_from is not None:
        module = types.ModuleType(name)
        where = code / entry if imported_from == "here" else tmp_path / "site" / f"{name}.py"
        module.__file__ = str(where)
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.syspath_prepend(str(code))
    assert (str(code.resolve()) in ray_init._code_paths()) is kept


class _InterruptedRay(_FakeRay):
    """``init`` raises ``error`` partway (Ctrl-C, SIGTERM's exit, a failed start)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(fail=False)
        self.error, self.shutdowns = error, 0

    def is_initialized(self) -> bool:
        return False

    def init(self, **kwargs) -> None:
        super().init(**kwargs)
        raise self.error

    def shutdown(self) -> None:
        self.shutdowns += 1


@pytest.mark.parametrize("address", [None, "10.0.0.1:6379"])
@pytest.mark.parametrize(
    ("error", "raised"),
    [
        (KeyboardInterrupt(), KeyboardInterrupt),
        (SystemExit(15), SystemExit),
        (RuntimeError("node failed"), "ClusterError"),
        (ConnectionError("refused"), "ClusterError"),
        (ValueError("bad option"), "ClusterError"),
        (OSError("no space"), OSError),
    ],
)
def test_an_interrupted_or_failed_start_stops_what_ray_init_started(
    monkeypatch, address, error, raised
):
    """A start that ends in an exception shuts Ray down itself, then raises.

    ``run_trials`` shuts Ray down only when ``init_ray`` returned, so without this a Ctrl-C
    inside ``ray.init`` left what it had started running.
    """
    from simlab.execution.ray_population import ClusterError
    from simlab.scenario import ExecutionSection

    fake = _InterruptedRay(error)
    monkeypatch.setattr(ray_init, "_ray", lambda: fake)
    monkeypatch.setattr(ray_init, "probe_address", lambda *a: None)
    ex = ExecutionSection(backend="ray", address=address)
    with pytest.raises(ClusterError if raised == "ClusterError" else raised):
        ray_init.init_ray(ex)
    assert len(fake.seen) == 1 and fake.shutdowns == 1
