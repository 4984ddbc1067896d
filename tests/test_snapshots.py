"""Snapshots of sampled users' interests and item exposure (for the dashboard)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_small

from simlab.errors import RunStoreError
from simlab.runner import run_scenario
from simlab.snapshots import read_snapshot, sample_users, snapshot_steps


def test_sample_is_evenly_spaced_and_bounded():
    """The sample is deterministic, spans the population and never exceeds it."""
    np.testing.assert_array_equal(sample_users(10, 3), [0, 4, 9])  # 4.5 rounds to even
    np.testing.assert_array_equal(sample_users(3, 10), [0, 1, 2])
    assert sample_users(5, 0).size == 0


def test_runs_write_snapshots_every_n_steps(tmp_path):
    """Snapshots at every N steps (the last step included) with consistent arrays."""
    sc = make_small(
        "output.snapshot_every=4",
        "output.snapshot_users=50",
        "users.drift_rate=0.2",
        ("content.phases", [{"until": 4, "aigc_share": 0.0}, {"aigc_share": 0.6}]),
        steps=12,
    )
    store = run_scenario(sc, out_dir=tmp_path)
    rows = store.read_metrics()
    k = sc.platform.slate_size
    for trial in range(2):
        assert snapshot_steps(store.path, trial) == [4, 8, 12]
        first, last = (read_snapshot(store.path, trial, s) for s in (4, 12))
        assert first["user_ids"].shape == (50,) and first["interests"].shape == (50, 16)
        # impressions at the snapshot's last step = served users x K
        active = rows[(rows["trial"] == trial) & (rows["step"] == 11)]["users/active"].item()
        assert last["exposure"].sum() == active * k
        n = last["exposure"].shape[0]
        assert last["item_source"].shape == last["item_creator"].shape == (n,)
        assert last["item_source"][last["exposure"] > 0].size > 0
        assert not np.array_equal(first["interests"], last["interests"])  # drift shows
    with pytest.raises(
        RunStoreError, match=r"no snapshot at step 5; snapshots exist at steps \[4, 8, 12\]"
    ):
        read_snapshot(store.path, 0, 5)


def test_snapshots_on_ray_equal_local(ray_local, tmp_path):
    """Snapshots gathered from shard actors equal the local ones."""
    over = ["output.snapshot_every=3", "users.drift_rate=0.2", "steps=6"]
    local = run_scenario(make_small(*over), out_dir=tmp_path / "l")
    ray = run_scenario(
        make_small(*over, "execution.backend=ray", "execution.shards=2"), out_dir=tmp_path / "r"
    )
    for trial in range(2):
        assert snapshot_steps(ray.path, trial) == [3, 6]
        for step in (3, 6):
            a, b = read_snapshot(local.path, trial, step), read_snapshot(ray.path, trial, step)
            for key in a:
                np.testing.assert_array_equal(a[key], b[key], err_msg=key)
