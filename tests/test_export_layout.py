"""``simlab export``: where files go, what episodes end with, which trials an error names.

Classes: the default output folder of each format (``<run>/export/<fmt>``); Minari episodes
truncated at their last step only and never terminated, for logs of one impression up to
many; a trial whose every event part sits in a folder the manifest does not know is named
with the manifest's range of trials (not the trial left without events).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_export import make_logged_run

from simlab.cli import main
from simlab.export import export_run


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory) -> Path:
    """A small run with an event log: two agents, 4 steps."""
    agents = [{"model": "random"}, {"model": "popularity"}]
    overrides = ("users.num_users=30", "platform.max_candidates=20")
    return make_logged_run(tmp_path_factory.mktemp("runs"), agents, *overrides, steps=4)


def _copy(run: Path, tmp_path: Path) -> Path:
    target = tmp_path / run.name
    shutil.copytree(run, target)
    return target


@pytest.mark.parametrize(
    ("fmt", "names"),
    [("parquet", ["events.parquet"]), ("obp", ["trial=0", "trial=1"])],
)
def test_the_default_folder_is_inside_the_run(logged_run, tmp_path, fmt, names):
    """Without ``out`` (or ``--out``) every file is written under ``<run>/export/<fmt>``."""
    run = _copy(logged_run, tmp_path)
    paths = export_run(run, fmt)
    folder = run / "export" / fmt
    assert paths and all(p.is_relative_to(folder) for p in paths)
    assert sorted(p.name for p in folder.iterdir()) == names
    shutil.rmtree(run / "export")
    assert main(["export", str(run), "--format", fmt]) == 0
    assert sorted(p.name for p in folder.iterdir()) == names


def test_minari_episodes_are_truncated_at_their_last_step_only(logged_run, tmp_path, monkeypatch):
    """Each user's episode: no termination, a truncation at its last step and nowhere else."""
    minari = pytest.importorskip("minari")
    (path, _) = export_run(logged_run, "minari", out=tmp_path)
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    data = minari.load_dataset(f"simlab/{path.name}")
    lengths = set()
    for episode in data.iterate_episodes():
        t = len(episode.rewards)
        lengths.add(t)
        assert episode.truncations.tolist() == [False] * (t - 1) + [True]
        assert not episode.terminations.any()
    assert max(lengths) > 1  # some user visited more than once: the rule is exercised


def _events(visits: list[int], k: int, f: int = 3, d: int = 2) -> pd.DataFrame:
    """One user's impressions: ``k`` slots at each step of ``visits``."""
    rows = []
    for step in visits:
        for pos in range(k):
            rows.append({
                "user_id": 4, "step": step, "position": pos, "item_id": 10 * step + pos,
                "clicked": pos == 0, "engagement": 0.5 if pos == 0 else 0.0,
                "reward": 0.5 if pos == 0 else 0.0, "propensity": 1.0,
                "user_features": np.full(f, step, np.float32),
                "item_features": np.full(d, pos, np.float32),
            })  # fmt: skip
    return pd.DataFrame(rows)


@pytest.mark.parametrize(("visits", "k"), [([3], 1), ([3], 4), ([0, 5], 1), ([1, 2, 7], 3)])
def test_episodes_of_any_length_down_to_one_impression(visits, k):
    """An episode per user from one impression on: spaces, actions, truncation, infos."""
    pytest.importorskip("minari")
    from gymnasium import spaces
    from minari.data_collector import EpisodeBuffer

    from simlab.export import _episodes

    (buffer,), obs, act = _episodes(_events(visits, k), EpisodeBuffer, spaces)
    t = len(visits)
    assert obs.shape == (3,) and act.shape == (k,)
    assert np.asarray(buffer.observations).shape == (t + 1, 3)
    assert np.asarray(buffer.actions).tolist() == [[10 * s + p for p in range(k)] for s in visits]
    assert list(buffer.truncations) == [False] * (t - 1) + [True]
    assert list(buffer.terminations) == [False] * t
    assert buffer.infos["step"] == [-1, *visits]
    assert buffer.infos["clicked_position"] == [-1] + [0] * t
    assert np.asarray(buffer.infos["item_features"]).shape == (t + 1, k, 2)


def test_a_trial_moved_whole_to_an_unknown_folder_is_named(logged_run, tmp_path, capsys):
    """Every part of trial 1 under ``trial=7``: the error names trial 7 and the known range."""
    run = _copy(logged_run, tmp_path)
    (run / "events" / "trial=1").rename(run / "events" / "trial=7")
    assert main(["export", str(run), "--format", "parquet", "--out", str(tmp_path / "x")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "events of trial 7, which the run's manifest does not have (trials 0..1)" in err, err
    assert not (tmp_path / "x" / "events.parquet").exists()
