"""A retrain that diverges (non-finite parameters) stops the run with a clear error.

Found by setting each unbounded training knob of the learned agents to 1e30 and 1e308: the
run finished without a word while the model's parameters were inf/NaN, so every score was NaN
and the slates were whatever numpy's NaN order gave (the metrics looked plausible). Now each
learned agent checks its parameters after every retrain (``check_trained``) and the run stops
with a ScenarioError naming the agent's model, the retrain, the parameters and the settings.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from conftest import SMALL, SMALL_MODELS

from simlab.agents.neural_train import check_trained
from simlab.errors import ScenarioError
from simlab.scenario import parse_scenario
from simlab.world import World

# model -> {cause: the agent's settings that make its first retrain diverge}; learning rates
# and initial scales are bounded since (10 and 100: tests/test_numeric_extremes.py), and
# within those bounds they do not diverge here
_GENERATIVE = SMALL_MODELS["generative"]["training"]
DIVERGING = {
    "mf": {"l2": {"l2": 1e308}, "debias": {"source_debias": 1e300}},
    "gru4rec": {"l2": {"l2": 1e308}},
    "two-tower": {"l2": {"l2": 1e308}, "debias": {"source_debias": 1e300}},
    "slate-ts": {"l2": {"l2": 1e308}, "prior": {"prior_std": 1e-300}},
    "generative": {"decay": {"training": {**_GENERATIVE, "weight_decay": 1e30}}},
}
CASES = [(model, cause) for model, causes in DIVERGING.items() for cause in causes]


def _run(model: str, settings: dict, steps: int = 4):
    data = copy.deepcopy(SMALL)
    data.update(steps=steps)
    data["platform"]["retrain_every"] = 2
    data["agents"] = [{"model": model, **SMALL_MODELS.get(model, {}), **settings}]
    world = World(parse_scenario(data), 0, 0)
    return [world.step(t) for t in range(steps)]


@pytest.mark.parametrize(("model", "cause"), CASES, ids=[f"{m}-{c}" for m, c in CASES])
def test_a_diverged_retrain_stops_the_run_naming_the_agent_and_its_settings(model, cause):
    """The first retrain's non-finite parameters raise at once, with what to change."""
    settings = DIVERGING[model][cause]
    with pytest.raises(ScenarioError) as info:
        _run(model, settings)
    text = str(info.value)
    assert text.startswith(f"agents: {model}'s training diverged at retrain 1: its parameters ")
    assert "are not finite (inf or NaN)" in text and "lower the learning rate" in text
    knob, value = next(iter(settings.items()))
    if knob == "training":
        knob, value = "weight_decay", value["weight_decay"]
    assert f"{knob}={value!r}" in text


@pytest.mark.parametrize("model", list(DIVERGING))
def test_the_default_settings_train_without_complaint(model):
    """The same world with the agent's own (small) settings: two retrains, no error."""
    rows = _run(model, {}, steps=6)
    assert len(rows) == 6


def test_the_cli_marks_the_run_failed_with_the_message(tmp_path):
    """``simlab run``: exit 2, one error line, and the run directory says why it failed."""
    import yaml

    from simlab.cli import main
    from simlab.store import open_run

    data = copy.deepcopy(SMALL)
    data.update(steps=4)
    data["platform"]["retrain_every"] = 2
    data["agents"] = [{"model": "mf", **SMALL_MODELS["mf"], "l2": 1e308}]
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    args = ["run", str(path), "--out", str(tmp_path), "--run-id", "r", "--no-progress"]
    assert main(args) == 2
    store = open_run(tmp_path / "r")
    assert store.status == "failed"
    assert "mf's training diverged at retrain 1" in store.manifest["error"]


class _Params:
    lr = 0.5
    l2 = 1e-4


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64])
def test_check_trained_names_every_non_finite_array(bad, dtype):
    """Each non-finite float (or complex) array is named; finite and integer ones are not."""
    good = np.ones((3, 2), dtype)
    broken = good.copy()
    broken[1, 1] = bad
    fitted = {"P": good, "Q": broken, "ids": np.arange(4), "b": broken[0].copy()}
    with pytest.raises(ScenarioError) as info:
        check_trained("mf", fitted, _Params(), retrain=2)
    text = str(info.value)
    assert "at retrain 3: its parameters Q are not finite" in text
    assert "settings are lr=0.5, l2=0.0001:" in text


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_check_trained_reads_torch_tensors_where_they_are(bad):
    """Torch parameters (the generative agent's) are checked as tensors, integers skipped."""
    import torch

    good = torch.nn.Parameter(torch.ones(3, 2))
    broken = torch.nn.Parameter(torch.ones(3, 2))
    with torch.no_grad():
        broken[2, 0] = bad
    fitted = {"embed": good, "head": broken, "ids": torch.arange(3)}
    with pytest.raises(ScenarioError, match=r"at retrain 1: its parameters head are not finite"):
        check_trained("generative", fitted, _Params(), retrain=0)
    check_trained("generative", {"embed": good, "ids": torch.arange(3)}, _Params(), retrain=0)


def test_check_trained_accepts_finite_parameters_and_shortens_long_lists():
    """Finite parameters pass; more than four bad ones are named as the first four and a count."""
    check_trained("mf", {"P": np.zeros(3), "n": np.array([2**62])}, _Params(), 0)
    fitted = {f"w{i}": np.array([np.nan]) for i in range(7)}
    with pytest.raises(ScenarioError, match=r"its parameters w0, w1, w2, w3 and 3 more are not"):
        check_trained("generative", fitted, object(), 0)
    with pytest.raises(ScenarioError, match=r"its settings are : lower"):
        check_trained("generative", fitted, object(), 0)
