"""``simlab report`` and ``simlab show`` on a run whose trials stopped at different steps.

An interrupted run: windows an agent never reached, and the note naming the stopped trials.
"""

from __future__ import annotations

import json

import pytest
from conftest import rewrite_rows
from test_report import make_variant_run

from simlab.cli import main


@pytest.fixture(scope="module")
def variant_run(tmp_path_factory):
    """test_report's run of two agents x two variants, 3 seeds, 14 steps."""
    return make_variant_run(tmp_path_factory.mktemp("runs"))


def _stop_trials(run, trials: set[int], at: int) -> None:
    """Leave ``trials`` with their rows before step ``at`` only, as a run stopped early does."""
    rewrite_rows(run, lambda df: df[~(df["trial"].isin(trials) & (df["step"] >= at))])
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["status"] = "interrupted"
    for t in trials:
        manifest["trials"][t].update(status="interrupted", steps_done=at)
    (run / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("agent", "seeds", "at"),
    [("random", {0}, 9), ("random", {0, 1, 2}, 9), ("pop", {0, 1, 2}, 5), ("pop", {2}, 12),
     ("random", {1, 2}, 4), ("pop", {0, 1, 2}, 12)],
)  # fmt: skip
def test_a_run_whose_trials_stopped_at_different_steps_reports(
    variant_run, tmp_path, capsys, agent, seeds, at
):
    """Trials that stopped at different steps: an unreached window is left out and ``-``.

    An interrupted run's trials may end at different steps: a window an agent never reached
    is left out of its rows and printed ``-``; the other agents' values (not their
    differences to a stopped baseline) are the full run's.
    """
    import shutil

    import pandas as pd

    run = tmp_path / "run"
    shutil.copytree(variant_run, run)
    trials = json.loads((run / "manifest.json").read_text())["trials"]
    stopped = {t["index"] for t in trials if t["agent"] == agent and t["seed"] in seeds}
    _stop_trials(run, stopped, at)
    assert main(["report", str(run), "--out", str(tmp_path / "r")]) == 0
    printed = capsys.readouterr().out
    main(["report", str(variant_run), "--out", str(tmp_path / "full")])
    capsys.readouterr()
    got = pd.read_csv(tmp_path / "r" / "source_bias_by_window.csv")
    full = pd.read_csv(tmp_path / "full" / "source_bias_by_window.csv")
    keys = ["agent", "variant", "window"]
    cols = [*keys, "value", "value ±", "value n"]  # (their diffs are to the stopped baseline)
    other = full[full["agent"] != agent][cols].reset_index(drop=True)
    pd.testing.assert_frame_equal(got[got["agent"] != agent][cols].reset_index(drop=True), other)
    starts = {w: int(w.split()[1].split("-")[0]) for w in full["window"] if w.startswith("steps")}
    sched = {"phase 1 (AIGC 0.1)": 3, "phase 2 (AIGC 0.6)": 8}  # first step after the ramp
    mine = got[got["agent"] == agent].set_index(keys[1:])
    missing = 0
    for (variant, window), _row in full[full["agent"] == agent].set_index(keys[1:]).iterrows():
        reached = {**starts, **sched}[window] < at or len(seeds) < 3
        assert ((variant, window) in mine.index) == reached, (variant, window)
        missing += not reached
    assert len(full) - len(got) == missing
    assert printed.count(" - ") >= missing
    # a window the stopped trials entered but did not finish counts them in `partial`
    spans = {"phase 1 (AIGC 0.1)": (3, 6), "phase 2 (AIGC 0.6)": (8, 14)}
    spans |= {w: (a, int(w.split("-")[1]) + 1) for w, a in starts.items()}
    want = {k: len(seeds) * (spans[k[1]][0] < at < spans[k[1]][1]) for k in mine.index}
    assert mine["partial"].to_dict() == want
    assert (got[got["agent"] != agent]["partial"] == 0).all()
    assert (full["partial"] == 0).all()
    cut = sum(v > 0 for v in want.values())
    tips = pd.read_csv(tmp_path / "r" / "tipping_point.csv")  # stopped before tipping: partial
    assert (tips[tips["agent"] != agent]["partial"] == 0).all()
    # escalation (last window minus first): a stopped trial counts once it reached the last
    # window, and is then partial there (it stopped before the run's end)
    esc = pd.read_csv(tmp_path / "r" / "source_bias_escalation.csv").set_index(keys[:2])
    cut_esc = 0
    for variant, last in (("sched", 8), ("adopt", max(starts.values()))):
        kept = 3 - len(seeds) * (last >= at)
        assert ((agent, variant) in esc.index) == (kept > 0)
        if kept:
            assert esc.loc[(agent, variant), "value n"] == kept
            assert esc.loc[(agent, variant), "partial"] == len(seeds) * (last < at)
            cut_esc += last < at
    assert (esc[esc.index.get_level_values("agent") != agent]["partial"] == 0).all()
    flagged = " ".join(printed.split()).count(" partial]")
    assert flagged == cut + cut_esc + (tips["partial"] > 0).sum(), printed
    md = (tmp_path / "r" / "report.md").read_text()
    section = md.split("## Source bias by window", 1)[1].split("\n## ", 1)[0]
    assert ("| seeds | partial |" in section) == (cut > 0)
    assert ("`partial`: trials that stopped early" in section) == (cut > 0)
    assert "partial" not in (tmp_path / "full" / "report.md").read_text()
    # a note names the stopped trials, in the report and in `simlab show`; none for the full run
    note = f"{len(stopped)} of 12 trials ({agent}) stopped before the longest one's last step 13"
    assert note in " ".join(printed.split()), printed[-600:]
    assert f"(theirs: {at - 1})" in " ".join(printed.split())
    assert note in (tmp_path / "r" / "report.md").read_text()
    assert main(["show", str(run)]) == 0
    assert note in " ".join(capsys.readouterr().out.split())
    assert "stopped before" not in (tmp_path / "full" / "report.md").read_text()


@pytest.mark.parametrize("at", [4, 7, 10, 13])
def test_a_run_whose_trials_all_stopped_at_one_step_says_so(variant_run, tmp_path, capsys, at):
    """Every trial interrupted at one step: the note names them, untipped trials are partial.

    No trial is longer than the others, yet the run stopped before its end. (The tipping
    point was censored at the rows' last step, not the scenario's, so no trial was partial,
    and the note compared trials only with each other.)
    """
    import shutil

    import pandas as pd

    run = tmp_path / "run"
    shutil.copytree(variant_run, run)
    _stop_trials(run, set(range(12)), at)
    assert main(["report", str(run), "--out", str(tmp_path / "r")]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    note = (
        f"12 of 12 trials (pop, random) stopped (interrupted or failed) at step {at - 1}, "
        "before the run's end"
    )
    assert note in printed, printed[-600:]
    assert note in " ".join((tmp_path / "r" / "report.md").read_text().split())
    assert main(["show", str(run)]) == 0
    assert note in " ".join(capsys.readouterr().out.split())
    tips = pd.read_csv(tmp_path / "r" / "tipping_point.csv")
    assert (tips["partial"] == tips["value n"] - tips["tipped"]).all(), tips
    assert tips["partial"].sum() > 0 or tips["tipped"].sum() == tips["value n"].sum()
