"""Fault injection, second half: damaged, foreign and crafted checkpoints; Ray addresses.

A damaged newest checkpoint falls back to the previous one; one of another trial is
refused; a crafted checkpoint (object arrays, pickles, unknown nodes) runs no code; a run
directory naming code outside simlab is not imported without ``--trust-code``; temporary
files of cut writes go on resume; a cluster that does not answer fails in bounded time.
"""

from __future__ import annotations

import copy
import json
import os
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import SMALL, run_metrics

from simlab.cli import main
from simlab.store import open_run

STEPS = 24


def _scenario(tmp_path: Path, **changes) -> Path:
    data = copy.deepcopy(SMALL)
    data.update(steps=STEPS, **changes)
    data["users"] = {**SMALL["users"], "num_users": 1500, "drift_rate": 0.05}
    data["output"] = {"flush_seconds": 0.0, "checkpoint_every": 4, "events": True}
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The scenario file and an uninterrupted run of it."""
    tmp = tmp_path_factory.mktemp("ref")
    scenario = _scenario(tmp)
    assert main(["run", str(scenario), "--out", str(tmp), "--run-id", "ref", "--no-progress"]) == 0
    return scenario, tmp / "ref"


# ---------------------------------------------------------------------- checkpoints
def _crashed_copy(reference, tmp_path: Path, keep_steps: int) -> Path:
    """A copy of the reference run cut back to ``keep_steps`` rows per trial, as if killed."""
    import shutil

    _, ref = reference
    run = tmp_path / "cut"
    shutil.copytree(ref, run)
    for p in (run / "metrics.parquet").glob("part-*.parquet"):
        if int(p.stem.rsplit("-", 1)[1]) >= keep_steps:
            p.unlink()
    m = json.loads((run / "manifest.json").read_text())
    m["status"] = "interrupted"
    (run / "manifest.json").write_text(json.dumps(m))
    return run


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _to_folder(path: Path) -> None:
    path.unlink()
    path.mkdir()
    (path / "x").write_text("x")


@pytest.mark.parametrize("damage", [_truncate, _to_folder], ids=["truncated", "a folder"])
def test_truncated_newest_checkpoint_falls_back_with_a_warning(reference, tmp_path, capsys, damage):
    """A damaged newest checkpoint is skipped for the previous one; the result is unchanged.

    (A checkpoint that is a folder was "no checkpoint at step 12" while the steps it listed
    held 12; it is damaged like a cut file.)
    """
    _, ref = reference
    run = _crashed_copy(reference, tmp_path, 14)
    damage(run / "checkpoints" / "trial=0" / "step=12.ckpt")
    assert main(["resume", str(run), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "warning: trial 0: corrupt checkpoint" in err
    assert "falling back to the previous checkpoint" in err
    pd.testing.assert_frame_equal(run_metrics(run), run_metrics(ref))


def test_checkpoint_of_another_trial_is_refused(reference, tmp_path, capsys):
    """A checkpoint copied from trial 1 into trial 0's folder is named and refused."""
    run = _crashed_copy(reference, tmp_path, 14)
    src = run / "checkpoints" / "trial=1" / "step=12.ckpt"
    (run / "checkpoints" / "trial=0" / "step=12.ckpt").write_bytes(src.read_bytes())
    assert main(["resume", str(run), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "step=12.ckpt: checkpoint of another trial: it records" in err
    assert "trial 1 (expected 0)" in err and "agent 'popularity' (expected 'random')" in err


def test_temporary_files_of_cut_writes_are_removed_on_resume(reference, tmp_path):
    """Leftovers of writes cut by a kill (``.<name>.tmp*``) are gone after a resume."""
    run = _crashed_copy(reference, tmp_path, 14)
    leftovers = [
        run / ".manifest.json.tmp-12345",
        run / "metrics.parquet" / ".part-00000-000099.parquet.tmp",
        run / "checkpoints" / "trial=0" / ".step=16.ckpt.tmp-777",
        run / "events" / "trial=0" / ".part-000099.parquet.tmp",
    ]
    for p in leftovers:
        p.write_bytes(b"half")
    assert main(["resume", str(run), "--no-progress"]) == 0
    assert not [p for p in leftovers if p.exists()]


# ---------------------------------------------------------------------- Ray addresses
def test_unreachable_ray_address_fails_fast_and_leaves_no_running_run(tmp_path):
    """A refused port and a port that is not Ray fail within the timeout, exit 2, run failed.

    As a real process: in this one the test session's Ray instance may already be up.
    """
    import socket
    import subprocess

    scenario = _scenario(tmp_path)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    port = listener.getsockname()[1]
    try:
        for run_id, address in (("refused", "127.0.0.1:1"), ("silent", f"127.0.0.1:{port}")):
            start = time.monotonic()
            cmd = [sys.executable, "-m", "simlab", "run", str(scenario), "--out", str(tmp_path)]
            cmd += ["--run-id", run_id, "--no-progress", "--backend", "ray"]
            cmd += ["--address", address, "--set", "execution.connect_timeout=8"]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
            # the probe gives up after connect_timeout; the rest is start-up on a busy machine
            assert time.monotonic() - start < 120
            assert proc.returncode == 2, proc.stderr
            lines = [x for x in proc.stderr.splitlines() if x.strip()]
            assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
            assert f"cannot connect to the Ray cluster at '{address}'" in lines[0]
            assert open_run(tmp_path / run_id).status == "failed"
    finally:
        listener.close()


# ---------------------------------------------------------------------- code in checkpoints
class _Payload:
    """Writes a marker file when unpickled."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "code ran"))


def _malicious_files(folder: Path, marker: Path) -> dict[str, bytes]:
    """Crafted checkpoint files, each of which would run code if unpickled."""
    import io
    import pickle
    import zipfile

    import numpy as np

    payload = pickle.dumps({"format": 2, "t": 12, "x": _Payload(str(marker))})
    out = {"raw-pickle": payload}
    meta = json.dumps(
        {
            "format": 2,
            "trial": 0,
            "step": 12,
            "run_id": "ref",
            "agent": "random",
            "seed": 0,
            "params": {},
        }
    )
    buf = io.BytesIO()
    np.save(buf, np.array([_Payload(str(marker))], dtype=object), allow_pickle=True)
    for name, tree, arrays in (
        ("object-array", '{"$dict": [["t", 12], ["x", {"$array": 0}]]}', [buf.getvalue()]),
        ("unknown-node", '{"$py": "os.system"}', []),
        ("pickle-in-json", json.dumps({"$dict": [["t", 12], ["x", payload.decode("latin1")]]}), []),
    ):
        zbuf = io.BytesIO()
        with zipfile.ZipFile(zbuf, "w") as z:
            z.writestr("meta.json", meta)
            z.writestr("tree.json", tree)
            for i, a in enumerate(arrays):
                z.writestr(f"arrays/{i}.npy", a)
        out[name] = zbuf.getvalue()
    return out


def test_a_crafted_checkpoint_runs_no_code(reference, tmp_path: Path, capsys):
    """Object arrays, pickles and unknown nodes in a checkpoint are refused; nothing runs."""
    marker = tmp_path / "pwned.txt"
    for name, blob in _malicious_files(tmp_path, marker).items():
        run = _crashed_copy(reference, tmp_path / name, 14)
        for trial in (0, 1):
            (run / "checkpoints" / f"trial={trial}" / "step=12.ckpt").write_bytes(blob)
            (run / "checkpoints" / f"trial={trial}" / "step=8.ckpt").write_bytes(blob)
            (run / "checkpoints" / f"trial={trial}" / "step=4.ckpt").unlink()
        main(["resume", str(run), "--no-progress"])
        err = capsys.readouterr().err
        assert "corrupt checkpoint" in err or "not a simlab checkpoint" in err, (name, err)
        assert not marker.exists(), name
        # a fork from it is refused the same way
        code = main(
            [
                "run",
                str(run / "scenario.yaml"),
                "--out",
                str(tmp_path / name),
                "--from",
                f"{run}@12",
                "--no-progress",
            ]
        )
        assert code == 2
        assert not marker.exists(), name


def test_legacy_pickle_checkpoints_are_not_loaded(reference, tmp_path: Path, capsys):
    """A ``step=<t>.pkl`` (simlab's old format) is never unpickled; the error says why."""
    import pickle

    marker = tmp_path / "pwned.txt"
    run = _crashed_copy(reference, tmp_path, 14)
    for p in run.glob("checkpoints/*/*.ckpt"):
        p.unlink()
    (run / "checkpoints" / "trial=0" / "step=12.pkl").write_bytes(
        pickle.dumps(_Payload(str(marker)))
    )
    code = main(
        [
            "run",
            str(run / "scenario.yaml"),
            "--out",
            str(tmp_path),
            "--from",
            f"{run}@12",
            "--no-progress",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "pickle checkpoints of an older simlab at steps [12], which are not loaded" in err
    assert not marker.exists()


def test_resume_of_a_run_naming_foreign_code_needs_trust(reference, tmp_path, capsys):
    """A run directory whose scenario names a module outside simlab is not imported blindly."""
    run = _crashed_copy(reference, tmp_path, 14)
    marker = tmp_path / "pwned.txt"
    (tmp_path / "payload_mod_xyz.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n"
        "from simlab.agents.baselines import RandomAgent as Agent\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        text = (run / "scenario.yaml").read_text()
        (run / "scenario.yaml").write_text(
            text.replace("model: random", "model: payload_mod_xyz:Agent")
        )
        assert main(["resume", str(run), "--no-progress"]) == 2
        assert "pass --trust-code" in capsys.readouterr().err
        assert not marker.exists()
    finally:
        sys.path.remove(str(tmp_path))
        os.environ.pop("SIMLAB_NOTHING", None)
