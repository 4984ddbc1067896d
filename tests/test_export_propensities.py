"""An export whose trials logged no propensities (NaN) says so, naming exactly those trials.

Agents that sample without a closed form (``thompson``, ``linear-ts``, ``slate-ts``) and
re-ranked slates log NaN propensities; Open Bandit Pipeline's importance-weighted estimators
then return NaN without a word. Every format warns (:class:`PropensityWarning`) and ``simlab
export`` prints the note after the paths it wrote.
"""

from __future__ import annotations

import json
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
from test_export import make_logged_run

from simlab import extras
from simlab.cli import main
from simlab.export import FORMATS, PropensityWarning, export_run, read_events
from simlab.logged import missing_propensities

AGENTS = [
    {"model": "random"},  # sampled: 1/C
    {"model": "linucb"},  # deterministic: 1.0
    {"model": "thompson", "name": "th"},  # unknown: NaN after the start-up
    {"model": "popularity", "name": "pop-mmr", "rerankers": [{"model": "mmr", "lam": 0.5}]},
]
NAN_AGENTS = {"th", "pop-mmr"}


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory) -> Path:
    """Sampled, deterministic and NaN-logging agents, 2 seeds, a start-up step (1/C)."""
    overrides = ("users.num_users=30", "platform.max_candidates=20", "platform.startup_steps=1")
    return make_logged_run(tmp_path_factory.mktemp("runs"), AGENTS, *overrides, steps=4, seeds=2)


def _nan_trials(run: Path) -> list[int]:
    trials = json.loads((run / "manifest.json").read_text())["trials"]
    return sorted(t["index"] for t in trials if t["agent"] in NAN_AGENTS)


def _named(message: str) -> set[int]:
    """The trial numbers a note names (``trials 2 (th), 3 (pop-mmr) log ...``)."""
    listed = message.split(" log no propensities")[0].removeprefix("trials ")
    return {int(part.split(" (")[0]) for part in listed.split(", ")}


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_warns_naming_exactly_the_trials_without_propensities(
    mixed_run, tmp_path, fmt
):
    """The warning names each NaN trial once, with its agent, and no other trial."""
    with pytest.warns(PropensityWarning) as caught:
        paths = export_run(mixed_run, fmt, out=tmp_path / fmt)
    assert paths and all(p.exists() for p in paths)  # written whole, then the warning
    (w,) = [c for c in caught if issubclass(c.category, PropensityWarning)]
    message = str(w.message)
    assert _named(message) == set(_nan_trials(mixed_run))
    for agent in NAN_AGENTS:
        assert f"({agent})" in message
    assert "(random)" not in message and "(linucb)" not in message
    assert "IPW" in message and "direct method" in message


@pytest.mark.parametrize("keep", [["random"], ["linucb"], ["random", "linucb"]])
def test_no_warning_when_every_trial_has_propensities(mixed_run, keep):
    """Trials with propensities only (even when other trials lack them): no note."""
    _, events = read_events(mixed_run)
    assert missing_propensities(events[events["agent"].isin(keep)]) is None
    mixed = events[events["agent"].isin([*keep, "th"])]
    assert missing_propensities(mixed) is not None


@pytest.mark.parametrize("seed", range(6))
def test_the_note_names_trials_with_any_nan_impression(seed):
    """A trial is named when any of its impressions is NaN, in trial order, once."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    n = 60
    events = pd.DataFrame(
        {"trial": rng.integers(0, 8, n), "agent": "a",
         "propensity": np.where(rng.uniform(size=n) < 0.1, np.nan, rng.uniform(0.1, 1, n))}
    )  # fmt: skip
    events["agent"] = "agent" + events["trial"].astype(str)
    want = sorted(set(events.loc[events["propensity"].isna(), "trial"]))
    note = missing_propensities(events)
    if not want:
        assert note is None
        return
    assert _named(note) == set(want)
    listed = note.split(" log no")[0].removeprefix("trials ").split(", ")
    assert [int(p.split(" (")[0]) for p in listed] == want  # in order, once each
    assert all(f"{t} (agent{t})" in note for t in want)


def test_the_command_prints_the_note_after_the_paths(mixed_run, tmp_path, capsys):
    """``simlab export`` exits 0, lists the files, then one ``note:`` naming the trials."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", PropensityWarning)  # the command must catch its own
        code = main(["export", str(mixed_run), "--format", "obp", "--out", str(tmp_path)])
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    notes = [i for i, line in enumerate(lines) if line.startswith("note: ")]
    assert len(notes) == 1 and notes[0] > 0
    assert all(Path(line).exists() for line in lines[: notes[0]])
    note = " ".join(" ".join(lines[notes[0] :]).split()).removeprefix("note: ")
    assert _named(note) == set(_nan_trials(mixed_run))


def test_other_warnings_pass_through_the_command(monkeypatch, tmp_path, capsys):
    """The command prints its own warning as a note and lets any other warning go on."""
    import simlab.export as export

    def fake(*args, **kwargs):
        warnings.warn("another library's warning", UserWarning, stacklevel=1)
        warnings.warn("trials 7 (x) log no propensities", PropensityWarning, stacklevel=1)
        return [tmp_path]

    monkeypatch.setattr(export, "export_run", fake)
    with pytest.warns(UserWarning, match="another library's warning"):
        assert main(["export", "anything", "--format", "obp"]) == 0
    out = capsys.readouterr().out
    assert "note: trials 7 (x) log no propensities" in out
    assert "another library" not in out


_OBP_NAN = """
import json, sys
import numpy as np
from obp.ope import DirectMethod, InverseProbabilityWeighting, OffPolicyEvaluation
bf = dict(np.load(sys.argv[1]))
bf["n_rounds"], bf["n_actions"] = int(bf["n_rounds"]), int(bf["n_actions"])
len_list = int(bf["position"].max()) + 1
dist = np.full((bf["n_rounds"], bf["n_actions"], len_list), 1.0 / bf["n_actions"])
ope = OffPolicyEvaluation(bandit_feedback=bf,
                          ope_estimators=[InverseProbabilityWeighting(), DirectMethod()])
reward = np.full((bf["n_rounds"], bf["n_actions"], len_list), 0.5)
values = ope.estimate_policy_values(action_dist=dist, estimated_rewards_by_reg_model=reward)
print(json.dumps({k: float(v) for k, v in values.items()}))
"""


@pytest.mark.skipif(
    not extras.is_ready("obp"),
    reason="Open Bandit Pipeline's environment is not installed (simlab extras obp)",
)
def test_what_the_note_says_holds_in_open_bandit_pipeline(mixed_run, tmp_path):
    """On a named trial OBP's IPW reads NaN and the direct method a number; else both numbers."""
    with pytest.warns(PropensityWarning):
        paths = export_run(mixed_run, "obp", out=tmp_path)
    named = set(_nan_trials(mixed_run))
    for path in (p for p in paths if p.name == "bandit_feedback.npz"):
        trial = int(path.parent.name.split("=")[1])
        done = subprocess.run(
            [str(extras.python_of("obp")), "-c", _OBP_NAN, str(path)],
            capture_output=True, text=True, cwd=tmp_path,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        got = json.loads(done.stdout.strip().splitlines()[-1])
        assert np.isnan(got["ipw"]) == (trial in named), (trial, got)
        assert got["dm"] == pytest.approx(0.5)
