"""``simlab export``: each format round-trips through its own library (Parquet, Minari, OBP).

The Open Bandit Pipeline test runs in the ``obp`` environment (``simlab extras obp``: OBP's
pins cannot live beside simlab's); it skips, with the reason, only when that environment is
not installed.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import make_small

from simlab import extras
from simlab.cli import main
from simlab.export import export_run, read_events
from simlab.runner import run_scenario

ROOT = Path(__file__).resolve().parents[1]


def make_logged_run(out: Path, agents: list[dict], *overrides: str, **top) -> Path:
    """A small run of ``agents`` with an event log (``output.events``) under ``out``."""
    sc = make_small("output.events=true", *overrides, agents=agents, **top)
    return run_scenario(sc, out_dir=out).path


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory) -> Path:
    """A run with an event log: a sampling agent (random) and a deterministic one."""
    agents = [{"model": "random"}, {"model": "linucb"}]
    overrides = ("users.num_users=40", "platform.max_candidates=30")
    return make_logged_run(tmp_path_factory.mktemp("runs"), agents, *overrides, steps=5)


def test_parquet_round_trip(logged_run, tmp_path):
    """Pyarrow reads back every impression with its features, reward and propensity."""
    (path,) = export_run(logged_run, "parquet", out=tmp_path, reward="click")
    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[b"simlab"])
    assert meta["logging_policy"] == {"0": "sampled", "1": "deterministic"}
    got = table.to_pandas()
    _, events = read_events(logged_run)
    assert len(got) == len(events)
    np.testing.assert_array_equal(got["item_id"], events["item_id"])
    np.testing.assert_array_equal(got["reward"], events["clicked"].astype(float))
    np.testing.assert_array_equal(np.stack(got["user_features"]), np.stack(events["user_features"]))
    prop = got.groupby("trial")["propensity"].unique()
    assert prop[0].tolist() == [1 / 30] and prop[1].tolist() == [1.0]


def test_minari_round_trip(logged_run, tmp_path, monkeypatch):
    """minari.load_dataset reads one episode per user with actions, rewards and propensities."""
    minari = pytest.importorskip("minari")  # declared in the `rl` extra
    paths = export_run(logged_run, "minari", out=tmp_path)
    assert len(paths) == 2
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    _, events = read_events(logged_run)
    for trial, path in enumerate(paths):
        data = minari.load_dataset(f"simlab/{path.name}")
        ev = events[events["trial"] == trial]
        assert data.total_episodes == ev["user_id"].nunique()
        assert data.total_steps == ev.groupby(["user_id", "step"]).ngroups
        episode = data[0]
        first = ev[ev["user_id"] == ev["user_id"].min()]
        steps = first["step"].nunique()
        np.testing.assert_array_equal(
            episode.actions, first["item_id"].to_numpy().reshape(steps, -1)
        )
        np.testing.assert_allclose(
            episode.rewards, first["engagement"].to_numpy().reshape(steps, -1).sum(axis=1)
        )
        assert episode.observations.shape == (steps + 1, 16)
        prop = episode.infos["propensity"][1:]
        assert (prop == (1 / 30 if trial == 0 else 1.0)).all()
        assert np.isnan(episode.infos["propensity"][0]).all()


_OBP_CHECK = """
import json, sys
import numpy as np
from obp.ope import InverseProbabilityWeighting, OffPolicyEvaluation
from obp.utils import check_bandit_feedback_inputs
bf = dict(np.load(sys.argv[1]))
bf["n_rounds"], bf["n_actions"] = int(bf["n_rounds"]), int(bf["n_actions"])
check_bandit_feedback_inputs(
    context=bf["context"], action=bf["action"], reward=bf["reward"], position=bf["position"],
    pscore=bf["pscore"], action_context=bf["action_context"],
)
# a uniform evaluation policy over the A logged actions: IPW = mean(r * (1 / A) / pscore)
len_list = int(bf["position"].max()) + 1
dist = np.full((bf["n_rounds"], bf["n_actions"], len_list), 1.0 / bf["n_actions"])
ope = OffPolicyEvaluation(bandit_feedback=bf, ope_estimators=[InverseProbabilityWeighting()])
value = ope.estimate_policy_values(action_dist=dist)["ipw"]
want = float(np.mean(bf["reward"] / bf["n_actions"] / bf["pscore"]))
print(json.dumps({"ipw": float(value), "want": want, "n_actions": bf["n_actions"]}))
"""


@pytest.mark.skipif(
    not extras.is_ready("obp"),
    reason="Open Bandit Pipeline's environment is not installed (simlab extras obp)",
)
def test_obp_round_trip(logged_run, tmp_path):
    """OBP validates the bandit feedback and its IPW estimator recovers the logged value."""
    paths = export_run(logged_run, "obp", out=tmp_path)
    feedback = [p for p in paths if p.name == "bandit_feedback.npz"]
    assert len(feedback) == 2
    meta = json.loads((feedback[0].parent / "meta.json").read_text())
    assert meta["logging_policy"] == "sampled" and meta["len_list"] == 5
    done = subprocess.run(
        [str(extras.python_of("obp")), "-c", _OBP_CHECK, str(feedback[0])],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["ipw"] == pytest.approx(out["want"]) and out["want"] > 0
    bf = np.load(feedback[0])
    _, events = read_events(logged_run)
    ev = events[events["trial"] == 0]
    np.testing.assert_array_equal(bf["item_id"][bf["action"]], ev["item_id"])
    np.testing.assert_array_equal(bf["context"], np.stack(ev["user_features"]))


def test_export_errors_are_one_line(tmp_path, capsys):
    """A run without an event log, and a bad format, are usage errors (exit 2)."""
    plain = run_scenario(make_small(steps=2), out_dir=tmp_path).path
    assert main(["export", str(plain), "--format", "parquet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "output.events=true" in err
    with pytest.raises(SystemExit) as e:
        main(["export", str(plain), "--format", "csv"])
    assert e.value.code == 2 and "invalid choice: 'csv'" in capsys.readouterr().err


def test_export_command_writes_every_format(logged_run, tmp_path, capsys):
    """``simlab export RUN --format F`` prints the files it wrote."""
    for fmt in ("parquet", "obp"):
        assert main(["export", str(logged_run), "--format", fmt, "--out", str(tmp_path / fmt)]) == 0
        printed = capsys.readouterr().out.split()
        assert printed and all(Path(p).exists() for p in printed)
    df = pd.read_parquet(tmp_path / "parquet" / "events.parquet")
    assert {"propensity", "user_features", "item_features", "reward"} <= set(df.columns)


def _truncate(part: Path) -> Path:
    part.write_bytes(part.read_bytes()[:60])
    return part


def _to_folder(part: Path) -> Path:
    part.unlink()
    part.mkdir()
    return part


def _foreign(part: Path) -> Path:
    pd.DataFrame({"x": [1, 2]}).to_parquet(part)
    return part


def _garbage(part: Path) -> Path:
    part.write_bytes(b"\x00\xffnot parquet" * 50)
    return part


def _outside_trial_folder(part: Path) -> Path:
    moved = part.parent.parent / "stray" / part.name
    moved.parent.mkdir()
    part.rename(moved)
    return moved


def _unknown_trial(part: Path) -> Path:
    other = part.parent.parent / "trial=7"
    other.mkdir()
    moved = other / part.name
    part.rename(moved)
    return other


EVENT_FAULTS = {
    "truncated part": (_truncate, "corrupt event log part"),
    "part is a folder": (_to_folder, "expected a Parquet file, found a folder"),
    "foreign table": (_foreign, "not an event log part"),
    "garbage bytes": (_garbage, "corrupt event log part"),
    "outside trial=<i>": (_outside_trial_folder, "outside a `trial=<i>` folder"),
    "trial not in manifest": (_unknown_trial, "events of trial 7"),
}


@pytest.mark.parametrize("fault", list(EVENT_FAULTS))
def test_a_damaged_event_log_is_one_error_naming_the_file(logged_run, tmp_path, capsys, fault):
    """Every damaged event log exits 2 with one ``error:`` line naming the part or folder."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(logged_run, run)
    damage, fragment = EVENT_FAULTS[fault]
    named = damage(next((run / "events" / "trial=1").glob("part-*.parquet")))
    assert main(["export", str(run), "--format", "parquet", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "Traceback" not in err, err
    assert fragment in err and str(named) in err, err
    assert not (tmp_path / "x" / "events.parquet").exists()
