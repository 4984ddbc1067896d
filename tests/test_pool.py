"""Local trials on several processes (execution.workers) and the threads of each process."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import make_small

from simlab.execution.pool import task_batches, worker_count
from simlab.execution.threads import ThreadLimit
from simlab.runner import run_scenario
from simlab.trials import plan_trials


def _metrics(store) -> pd.DataFrame:
    df = store.read_metrics().drop(columns=["run_id"])
    return df.sort_values(["trial", "step"]).reset_index(drop=True)


def test_workers_give_the_same_rows_as_one_process(tmp_path):
    """Two processes and one give identical rows, every trial completed, progress reported."""
    sc = make_small("seeds=3", "steps=12", "platform.max_candidates=40", agents=[
        {"model": "random"}, {"model": "popularity"}, {"model": "mf", "factors": 4},
    ])  # fmt: skip
    one = run_scenario(sc, out_dir=tmp_path / "one")
    seen: dict[int, int] = {}
    two = run_scenario(
        sc.model_copy(update={"execution": sc.execution.model_copy(update={"workers": 2})}),
        out_dir=tmp_path / "two",
        progress=lambda info, steps: seen.__setitem__(info.index, steps),
    )
    pd.testing.assert_frame_equal(_metrics(one), _metrics(two))
    assert two.status == "completed"
    assert [t["status"] for t in two.manifest["trials"]] == ["completed"] * 9
    assert seen == {i: 12 for i in range(9)}


def test_workers_taking_whole_seeds_give_the_same_rows_as_one_process(tmp_path):
    """With enough seeds each worker takes a whole seed at a time: rows are unchanged."""
    sc = make_small("seeds=8", "steps=6", "platform.max_candidates=40", agents=[
        {"model": "random"}, {"model": "popularity"},
    ])  # fmt: skip
    assert len(task_batches(plan_trials(sc), 2)) == 8  # the whole-seed path
    one = run_scenario(sc, out_dir=tmp_path / "one")
    two = run_scenario(
        sc.model_copy(update={"execution": sc.execution.model_copy(update={"workers": 2})}),
        out_dir=tmp_path / "two",
    )
    pd.testing.assert_frame_equal(_metrics(one), _metrics(two))
    assert [t["status"] for t in two.manifest["trials"]] == ["completed"] * 16


@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("seeds", [1, 3, 4, 7, 8, 12, 13])
@pytest.mark.parametrize("agents", [1, 3])
def test_task_batches_take_whole_seeds_only_when_every_worker_gets_four(workers, seeds, agents):
    """Every trial once, seed by seed; batches are whole seeds iff seeds >= 4 x workers."""
    labelled = [{"model": "random", "name": f"r{i}"} for i in range(agents)]
    sc = make_small(f"seeds={seeds}", agents=labelled)
    trials = plan_trials(sc)
    batches = task_batches(trials, workers)
    flat = [t.info.index for b in batches for t in b]
    assert sorted(flat) == sorted(t.info.index for t in trials)
    order = [(t.info.seed, t.info.point, t.info.index) for b in batches for t in b]
    assert order == sorted(order)
    if seeds >= 4 * workers:
        assert len(batches) == seeds
        assert all(len({t.info.seed for t in b}) == 1 and len(b) == agents for b in batches)
    else:
        assert all(len(b) == 1 for b in batches)


def test_a_failing_trial_in_a_worker_fails_the_run_with_its_message(tmp_path):
    """A model error in a worker process stops the run, marked failed, with the error."""
    sc = make_small(
        "seeds=2", "execution.workers=2",
        agents=[{"model": "tests_pool_helpers:Broken"}],
    )  # fmt: skip
    with pytest.raises(ValueError, match="broken on purpose"):
        run_scenario(sc, out_dir=tmp_path)
    run = next(tmp_path.iterdir())
    assert '"status": "failed"' in (run / "manifest.json").read_text()


@pytest.mark.parametrize(
    ("workers", "trials", "expected"), [(1, 9, 1), (3, 9, 3), (8, 2, 2), (0, 100, None)]
)
def test_worker_count(workers, trials, expected):
    """0 means one per CPU; never more processes than trials."""
    import os

    want = expected if expected is not None else min(os.cpu_count() or 1, trials)
    assert worker_count(workers, trials) == want


def test_thread_limit_sets_and_restores_blas_and_torch_threads():
    """Inside the block numeric libraries use the limit; outside, what they had."""
    import torch
    from threadpoolctl import threadpool_info

    outside = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        blas_before = [p["num_threads"] for p in threadpool_info()]
        with ThreadLimit(1):
            assert torch.get_num_threads() == 1
            assert all(p["num_threads"] == 1 for p in threadpool_info())
            np.ones((50, 50)) @ np.ones((50, 50))
        assert torch.get_num_threads() == 2
        assert [p["num_threads"] for p in threadpool_info()] == blas_before
        with ThreadLimit(0):  # 0: the libraries' own setting
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(outside)


@pytest.mark.parametrize("threads,env", [(1, None), (1, "3"), (0, None), (0, "2")])
def test_a_library_imported_inside_the_limit_starts_limited(threads, env):
    """Torch imported lazily inside ThreadLimit (an agent's first step) gets its threads.

    The thread variables are as before once the block ends.
    """
    import os
    import subprocess
    import sys

    code = (
        "import os\n"
        "from simlab.execution.threads import ThreadLimit\n"
        "before = os.environ.get('OMP_NUM_THREADS')\n"
        f"with ThreadLimit({threads}):\n"
        "    import torch\n"
        "    inside = torch.get_num_threads()\n"
        "print(inside, before == os.environ.get('OMP_NUM_THREADS'))\n"
    )
    child = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        child.pop(var, None)
    if env is not None:
        child["OMP_NUM_THREADS"] = env
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=child, check=True
    ).stdout.split()
    expected = threads if threads else (int(env) if env else None)
    if expected is not None:
        assert int(out[0]) == expected
    assert out[1] == "True"


def test_an_unguarded_script_gets_the_fix_not_a_run_per_worker(tmp_path):
    """A script that starts a run at import, with workers, stops with the guard to add."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "unguarded.py"
    runs = tmp_path / "runs"
    script.write_text(
        "from conftest import make_small\n"
        "from simlab.runner import run_scenario\n"
        f"run_scenario(make_small('seeds=2', 'execution.workers=2'), out_dir={str(runs)!r})\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.returncode != 0
    assert 'if __name__ == "__main__":' in out.stderr
    assert len(list(runs.iterdir())) == 1  # the parent's run only


def test_a_worker_that_dies_fails_the_run_with_its_exit_code(tmp_path):
    """A worker process killed mid-trial stops the run (no hang), naming the exit code."""
    from simlab.execution.pool import WorkerFailure

    sc = make_small("seeds=2", "execution.workers=2", agents=[{"model": "tests_pool_helpers:Dies"}])
    with pytest.raises(WorkerFailure, match="exited with code 3"):
        run_scenario(sc, out_dir=tmp_path)


def test_workers_of_a_killed_run_stop(tmp_path):
    """SIGKILL of the run's process: its workers stop too instead of running on alone."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    script = tmp_path / "run.py"
    script.write_text(
        "from conftest import make_small\n"
        "from simlab.runner import run_scenario\n"
        "if __name__ == '__main__':\n"
        "    sc = make_small('seeds=40', 'steps=200', 'execution.workers=2')\n"
        f"    run_scenario(sc, out_dir={str(tmp_path / 'runs')!r})\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    proc = subprocess.Popen([sys.executable, str(script)], env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(tmp_path.glob("runs/*/metrics.journal/*")):
        time.sleep(0.5)
    children = subprocess.run(
        ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True
    ).stdout.split()
    assert len(children) >= 2  # the workers (and the queue's helper)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(4)  # a worker notices within a second of finishing its step or waiting
    alive = [
        c
        for c in children
        if Path(f"/proc/{c}").exists()
        and "zombie" not in Path(f"/proc/{c}/status").read_text().lower()
    ]
    deadline = time.monotonic() + 60
    while alive and time.monotonic() < deadline:
        time.sleep(1)
        alive = [c for c in alive if Path(f"/proc/{c}").exists()]
    assert not alive, f"workers still running after their run was killed: {alive}"
