"""simlab.allocator: freed memory kept for reuse in processes that run worlds.

Each case runs in a fresh interpreter (the setting is per process and cannot be undone):

* the fault probe (eight 4 MiB arrays allocated and freed, 50 times) faults pages in again
  every round without the setting and almost never with it;
* the opt-outs (``SIMLAB_KEEP_FREED_MEMORY=0``, the process's own ``MALLOC_*`` thresholds)
  leave glibc's own behaviour, and the call says so;
* building a World sets it.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="the setting exists only with glibc",
)

PROBE = """
import resource, sys, numpy as np
{setup}
def rounds(n):
    for _ in range(n):
        arrs = [np.ones(1 << 19) for _ in range(8)]
        del arrs
rounds(3)
r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
rounds(50)
print(result, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0)
"""

CALL = "from simlab.allocator import keep_freed_memory\nresult = keep_freed_memory()"
WORLD = (
    "from simlab.allocator import keep_freed_memory, _applied\n"
    "from simlab.testing import tiny_scenario\n"
    "from simlab.world import World\n"
    "import os\n"
    "before = os.getpid() in _applied\n"
    "World(tiny_scenario({'model': 'random'}), 0, 0)\n"
    "result = (not before) and _applied[os.getpid()]"
)


def _probe(setup: str, **env: str) -> tuple[str, int]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "SIMLAB_KEEP"))}
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(setup=setup)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return out[0], int(out[1])


def test_freed_arrays_are_reused_instead_of_faulted_in_again():
    """Without the setting every round faults its 32 MiB in (~8,000 pages); with it, ~none."""
    off_result, off_faults = _probe(CALL, SIMLAB_KEEP_FREED_MEMORY="0")
    on_result, on_faults = _probe(CALL)
    assert (off_result, on_result) == ("False", "True")
    assert off_faults > 50 * 4000  # half the pages of every round, at least
    assert on_faults < off_faults / 50


@pytest.mark.parametrize(
    "env",
    [
        {"SIMLAB_KEEP_FREED_MEMORY": "0"},
        {"SIMLAB_KEEP_FREED_MEMORY": " 0 "},
        {"MALLOC_TRIM_THRESHOLD_": "1000000"},
        {"MALLOC_MMAP_THRESHOLD_": "131072"},
    ],
)
def test_the_process_own_choice_wins(env):
    """An opt-out or the process's own glibc thresholds: nothing is set, faults as glibc's."""
    result, faults = _probe(CALL, **env)
    assert result == "False"
    assert faults > 50 * 4000


@pytest.mark.parametrize("value", ["1", "yes", ""])
def test_other_values_of_the_switch_keep_it_on(value):
    """Only ``0`` turns it off."""
    result, faults = _probe(CALL, SIMLAB_KEEP_FREED_MEMORY=value)
    assert result == "True"
    assert faults < 50 * 100


def test_building_a_world_sets_it_once_per_process():
    """World() applies it (a process running worlds needs no call of its own)."""
    result, faults = _probe(WORLD)
    assert result == "True"
    assert faults < 50 * 100
