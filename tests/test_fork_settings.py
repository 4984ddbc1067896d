"""Settings a checkpoint cannot continue under: refused before the fork's run directory exists.

A fork (``--from RUN@STEP``) may change settings, and a changed component is given the
checkpoint's learned state. Some changes cannot work: another user or content model (its
state means something else), another agent model under the same label, or a parameter that
sizes an agent's learned arrays (its class's ``fixed_params``). These failed deep inside a
later step (a torch size mismatch at the first retrain, numpy's "zero-dimensional arrays
cannot be concatenated" at the first content step) after the fork's directory was created
and marked failed; they are now one clear error naming the field and both values, and
nothing is written. Changes the state can follow still fork.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_small

from simlab import registry
from simlab.cli import main
from simlab.errors import ScenarioError
from simlab.runner import run_scenario

_CHANEY = (
    ("users", {"model": "chaney", "num_users": 40}),
    ("content", {"model": "chaney-items", "items_per_step": 5}),
    "platform.slate_size=0",
    "platform.exclude_consumed=true",
)

# name -> (agent spec, world overrides, the changed field, its new value)
SIZED = {
    "mf": ({"model": "mf", "factors": 4, "epochs": 1}, (), "factors", 8),
    "gru4rec": ({"model": "gru4rec", "factors": 4, "epochs": 1}, (), "factors", 2),
    "slate-ts": ({"model": "slate-ts", "factors": 4}, (), "factors", 6),
    "implicit-mf": ({"model": "implicit-mf", "factors": 4}, _CHANEY, "factors", 3),
    "implicit-mf-default": ({"model": "implicit-mf"}, _CHANEY, "factors", 5),
}


def _source(tmp_path: Path, agent: dict, world: tuple) -> Path:
    sc = make_small(*world, "output.checkpoint_every=3", "users.num_users=60", steps=6,
                    agents=[{"model": "random"}, agent])  # fmt: skip
    return run_scenario(sc, out_dir=tmp_path, run_id="src").path


def _fork_refused(tmp_path: Path, source: Path, sc, fragment: str) -> None:
    with pytest.raises(ScenarioError, match=fragment):
        run_scenario(sc, out_dir=tmp_path / "forks", run_id="fork", fork=(source, 3))
    assert not (tmp_path / "forks" / "fork").exists()  # refused before anything is written


@pytest.mark.parametrize("name", sorted(SIZED))
def test_a_parameter_that_sizes_the_learned_arrays_cannot_change(tmp_path, name):
    """mf, gru4rec, slate-ts, implicit-mf: another ``factors`` is refused naming both."""
    agent, world, field, value = SIZED[name]
    source = _source(tmp_path, agent, world)
    changed = make_small(*world, "output.checkpoint_every=3", "users.num_users=60", steps=6,
                         agents=[{"model": "random"}, {**agent, field: value}])  # fmt: skip
    was = agent.get(field, 0)
    _fork_refused(
        tmp_path, source, changed,
        rf"agents\[1\]\.{field}: a run cannot continue from a checkpoint with another {field} "
        rf"\(checkpoint: {was}, now: {value}\)",
    )  # fmt: skip


def test_the_cli_says_it_in_one_line(tmp_path, capsys):
    """``simlab run --from`` with a changed size: exit 2, one error line, no traceback."""
    agent, world, field, value = SIZED["mf"]
    source = _source(tmp_path, agent, world)
    path = tmp_path / "sc.yaml"
    path.write_text((source / "scenario.yaml").read_text())
    code = main(["run", str(path), "--from", f"{source}@3", "--out", str(tmp_path / "o"),
                 "--no-progress", "--set", f"agents[1].{field}={value}"])  # fmt: skip
    err = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert code == 2 and len(err) == 1 and err[0].startswith("error: agents[1].factors"), err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


# name -> (overrides of the fork's scenario, the error's start)
MODELS = {
    "content-model": (
        [("content", {"model": "chaney-items", "items_per_step": 10})],
        r"content\.model: a run cannot continue .* \(checkpoint: creators, now: chaney-items\)",
    ),
    "users-model": (
        [
            "world.dim=8",
            ("users", {"model": "interest-evolution", "num_users": 300}),
            ("content", {"model": "recsim-corpus"}),
        ],
        r"users\.model: a run cannot continue .* \(checkpoint: logit, now: interest-evolution\)",
    ),
    "agent-model-same-label": (
        [("agents", [{"model": "random"}, {"model": "thompson", "name": "popularity"}])],
        r"agents\[1\]\.model: agent 'popularity' is another model in the checkpoint "
        r"\(popularity, now thompson\)",
    ),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_another_model_is_refused_naming_both(tmp_path, name):
    """Another content, user or agent model (same label): one error naming both models."""
    source = run_scenario(make_small("output.checkpoint_every=3", steps=6), out_dir=tmp_path,
                          run_id="src").path  # fmt: skip
    overrides, fragment = MODELS[name]
    changed = make_small("output.checkpoint_every=3", *overrides, steps=6)
    _fork_refused(tmp_path, source, changed, fragment)


@pytest.mark.parametrize(("field", "value"), [("lr", 0.01), ("debias", "ips"), ("epochs", 2)])
def test_changes_the_learned_state_can_follow_still_fork(tmp_path, field, value):
    """The learning rate, debiasing or epochs of a sized agent may change in a fork."""
    agent = {"model": "mf", "factors": 4, "epochs": 1}
    source = _source(tmp_path, agent, ())
    changed = make_small("output.checkpoint_every=3", "users.num_users=60", steps=6,
                         agents=[{"model": "random"}, {**agent, field: value}])  # fmt: skip
    fork = run_scenario(changed, out_dir=tmp_path / "forks", fork=(source, 3))
    assert fork.manifest["status"] == "completed"


@pytest.mark.parametrize("name", registry.names("agents"))
def test_every_fixed_param_is_a_parameter_of_its_agent(name):
    """A misspelt ``fixed_params`` entry would silently check nothing."""
    cls = registry.resolve("agents", name)
    fixed = getattr(cls, "fixed_params", ())
    assert set(fixed) <= set(cls.Params.model_fields), (name, fixed)


@pytest.mark.parametrize(("was", "now"), [(0, "dim"), ("dim", 0)])
def test_a_size_spelt_differently_is_the_same_size(tmp_path, was, now):
    """implicit-mf's ``factors: 0`` is the world's dim: that value spelt out is the same size.

    Forking to it (or back) continues the checkpoint exactly, every later row equal to the
    source's.
    """
    dim = make_small().world.dim

    def agents(factors):
        return [{"model": "random"}, {"model": "implicit-mf", "factors": factors}]

    def scenario(factors):
        spelt = dim if factors == "dim" else factors
        return make_small(*_CHANEY, "output.checkpoint_every=3", "users.num_users=60",
                          steps=6, agents=agents(spelt))  # fmt: skip

    source = run_scenario(scenario(was), out_dir=tmp_path, run_id="src")
    fork = run_scenario(scenario(now), out_dir=tmp_path / "forks", fork=(source.path, 3))
    assert fork.manifest["status"] == "completed"
    a, b = (r.read_metrics().drop(columns="run_id") for r in (source, fork))
    a, b = (x.sort_values(["trial", "step"]).reset_index(drop=True) for x in (a, b))
    assert a.shape == b.shape and a.equals(b)


@pytest.mark.parametrize("changed", ["world.dim=5", "world.num_topics=4", "world.topic_spread=0.5"])
def test_another_world_section_is_refused_before_anything_is_written(tmp_path, changed):
    """The world's dimensions size every state: refused naming both sections, no directory."""
    source = run_scenario(make_small("output.checkpoint_every=3", steps=6), out_dir=tmp_path,
                          run_id="src").path  # fmt: skip
    _fork_refused(
        tmp_path, source, make_small("output.checkpoint_every=3", changed, steps=6),
        r"world: a run cannot continue from a checkpoint with another `world` section "
        r"\(checkpoint: \{.*\}, now: \{.*\}\)",
    )  # fmt: skip
