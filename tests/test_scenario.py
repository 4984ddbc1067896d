"""Scenario loading: real files, ``--set`` overrides, defaults and YAML round trips."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml
from conftest import SMALL, make_small

from simlab import registry
from simlab.agents.neural import MatrixFactorizationAgent
from simlab.environments.users import LogitUserPopulation
from simlab.errors import ScenarioError
from simlab.scenario import (
    Scenario,
    apply_overrides,
    format_path,
    load_scenario,
    parse_scenario,
    parse_set,
)

SCENARIOS = sorted((Path(__file__).parents[1] / "scenarios").rglob("*.yaml"))
THREE_AGENTS = [{"model": "random"}, {"model": "popularity"}, {"model": "mf"}]


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_shipped_scenarios_validate(path: Path):
    """Every scenario shipped in scenarios/ loads and validates."""
    scenario = load_scenario(path)
    assert scenario.agents
    assert scenario.name


def test_shipped_scenarios_exist():
    """The quickstart scenario is among the shipped ones."""
    assert "quickstart" in [p.stem for p in SCENARIOS]


def test_quickstart_contents():
    """The quickstart's values reach the validated component params."""
    sc = load_scenario(Path(__file__).parents[1] / "scenarios" / "quickstart.yaml")
    assert sc.seeds == [0, 1, 2, 3, 4]  # at least 5: a readable first view
    assert sc.users.params.num_users == 1000
    assert [p.aigc_share for p in sc.content.params.phases] == [0.0, 0.5, 0.9]
    assert sc.agent_labels() == ["random", "popularity", "mf"]
    assert sc.agents[2].params.factors == 16


@pytest.mark.parametrize("item", ["agents[2].factors=8", "agents.2.factors=8"])
def test_set_list_item(item: str):
    """Both list-index spellings override one agent's parameter."""
    sc = make_small(item, agents=THREE_AGENTS)
    assert sc.agents[2].params.factors == 8
    assert make_small(agents=THREE_AGENTS).agents[2].params.factors == 16


def test_set_list_item_spellings_agree():
    """``agents[2].x`` and ``agents.2.x`` give the same scenario."""
    a = make_small("agents[2].factors=8", agents=THREE_AGENTS)
    b = make_small("agents.2.factors=8", agents=THREE_AGENTS)
    assert a.resolved_dict() == b.resolved_dict()


def test_set_nested_field():
    """A nested field is overridden, creating keys the file does not have."""
    assert "drift_rate" not in SMALL["users"]
    sc = make_small("users.num_users=123", "users.drift_rate=0.05", "platform.deploy_lag=2")
    assert sc.users.params.num_users == 123
    assert sc.users.params.drift_rate == 0.05
    assert sc.platform.deploy_lag == 2


def test_set_whole_list_and_mapping():
    """A value can be a whole YAML list of mappings."""
    sc = make_small("platform.rerankers=[{model: popularity-penalty, weight: 2}]")
    assert sc.platform.rerankers[0].params.weight == 2.0
    sc = make_small("content.phases=[{until: 5, aigc_share: 0.2}, {aigc_share: 0.6}]")
    assert [p.until for p in sc.content.params.phases] == [5, None]


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("a=3", 3),
        ("a=-2", -2),
        ("a=0.25", 0.25),
        ("a=1.0e-3", 0.001),
        ("a=true", True),
        ("a=false", False),
        ("a=null", None),
        ("a=[1, 2]", [1, 2]),
        ("a={b: 1}", {"b": 1}),
        ("a=hello", "hello"),
        ("a='3'", "3"),
        ("a=", ""),
        ("a.b[0]=x=y", "x=y"),
    ],
)
def test_parse_set_reads_yaml(item: str, expected):
    """Override values are parsed as YAML scalars, lists and mappings."""
    path, value = parse_set(item)
    assert path == item.partition("=")[0]
    assert value == expected
    assert type(value) is type(expected)


def test_set_values_typed_in_scenario():
    """Typed override values reach the scenario as ints, floats, bools and lists."""
    sc = make_small(
        "steps=7",
        "users.drift_rate=0.5",
        "platform.knows_source=true",
        "seeds=[3, 5]",
        "metrics=[engagement, exposure]",
        "agents[2].lr=1e-3",  # a string to YAML 1.1; the float field still reads it
        agents=THREE_AGENTS,
    )
    assert sc.agents[2].params.lr == 0.001
    assert sc.steps == 7
    assert sc.users.params.drift_rate == 0.5
    assert sc.platform.knows_source is True
    assert sc.seeds == [3, 5]
    assert sc.metrics == ["engagement", "exposure"]


def test_set_pairs_are_not_reparsed():
    """``(path, value)`` overrides are used as given, without YAML parsing."""
    sc = make_small(("name", "123"), ("steps", 4))
    assert sc.name == "123"
    assert sc.steps == 4


def test_overrides_do_not_change_input():
    """``apply_overrides`` works on a deep copy."""
    data = copy.deepcopy(SMALL)
    out = apply_overrides(data, ["users.num_users=7", "agents[0].name=r"])
    assert data == SMALL
    assert out["users"]["num_users"] == 7
    assert out["agents"][0]["name"] == "r"


def test_last_override_wins():
    """Repeated overrides of one path apply in order."""
    assert make_small("steps=4", "steps=6").steps == 6


@pytest.mark.parametrize(
    ("seeds", "expected"), [(1, [0]), (3, [0, 1, 2]), ([4, 2, 9], [4, 2, 9]), ([0], [0])]
)
def test_seeds(seeds, expected):
    """``seeds: N`` means 0..N-1; a list is kept as written."""
    assert make_small(seeds=seeds).seeds == expected


@pytest.mark.parametrize("seeds", [0, -1, True, [], [1, 1], [-1], [1.5], "3"])
def test_bad_seeds(seeds):
    """Seeds that are not a positive count or distinct non-negative ints are refused."""
    with pytest.raises(ScenarioError, match=re.escape("seeds: ")):
        make_small(seeds=seeds)


def test_defaults_filled_in():
    """The resolved scenario has every default of every section and component."""
    data = make_small().resolved_dict()
    assert data["description"] == ""
    assert data["world"]["topic_spread"] == 1.0
    assert data["platform"]["deploy_lag"] == 1
    assert data["platform"]["rerankers"] == []
    assert data["users"]["drift_rate"] == 0.0
    assert data["content"]["phases"] == [{"until": None, "aigc_share": 0.0, "ramp": 0}]
    assert data["agents"][0] == {"model": "random", "name": "random"}
    assert data["agents"][1] == {
        "model": "popularity",
        "name": "popularity",
        "signal": "clicks",
        "cumulative": False,
    }
    # every metric group that is on by default (the opt-in ones are left out)
    on = [m for m in registry.names("metrics") if registry.resolve("metrics", m).on_by_default]
    assert data["metrics"] == on and "homogenization_nn" not in on
    assert data["sweep"] == {}
    assert data["output"]["events"] is False
    assert set(data["users"]) == {"model", *LogitUserPopulation.Params.model_fields}


def test_minimal_scenario_gets_default_components():
    """Only name, steps and agents are required; users and content default."""
    sc = parse_scenario({"name": "tiny", "steps": 2, "agents": [{"model": "random"}]})
    assert sc.users.model == "logit"
    assert sc.content.model == "creators"
    assert sc.seeds == [0]
    assert sc.users.params.num_users == LogitUserPopulation.Params().num_users


@pytest.mark.parametrize(
    "scenario",
    [
        make_small(),
        make_small("users.drift_rate=0.1", agents=THREE_AGENTS, seeds=[2, 7]),
        make_small(
            "platform.rerankers=[{model: popularity-penalty}]",
            "content.phases=[{until: 10, aigc_share: 0.3}, {aigc_share: 0.7}]",
            sweep={"users.num_users": [100, 200], "agents[1].signal": ["clicks", "engagement"]},
            description="with: colons, 'quotes' and a long line " * 5,
        ),
        *[load_scenario(p) for p in SCENARIOS],
    ],
    ids=["small", "three-agents", "sweep-rerank-phases", *[p.stem for p in SCENARIOS]],
)
def test_yaml_round_trip(scenario: Scenario):
    """``to_yaml`` loads back to the same resolved scenario, and is stable."""
    text = scenario.to_yaml()
    again = parse_scenario(yaml.safe_load(text))
    assert again.resolved_dict() == scenario.resolved_dict()
    assert again.to_yaml() == text


def test_yaml_round_trip_through_file(tmp_path):
    """A resolved scenario written to a file loads back equal."""
    sc = make_small(agents=THREE_AGENTS)
    path = tmp_path / "resolved.yaml"
    path.write_text(sc.to_yaml(), encoding="utf-8")
    assert load_scenario(path).resolved_dict() == sc.resolved_dict()


def test_component_params_validated_by_class_model():
    """Each component's keys are validated by its class's own Params model."""
    sc = make_small("agents[2].factors=8", agents=THREE_AGENTS)
    agent = sc.agents[2]
    assert agent.cls is MatrixFactorizationAgent
    assert isinstance(agent.params, MatrixFactorizationAgent.Params)
    assert agent.params.factors == 8
    assert agent.params.epochs == MatrixFactorizationAgent.Params().epochs  # default
    assert agent.raw_params == {"factors": 8}
    assert isinstance(sc.users.params, LogitUserPopulation.Params)
    assert sc.users.cls is registry.resolve("users", "logit")


def test_component_params_constraints():
    """A Params constraint (mf.factors <= 1024) is enforced with the field path."""
    with pytest.raises(ScenarioError, match=re.escape("agents[2].factors: ")):
        make_small("agents[2].factors=5000", agents=THREE_AGENTS)


def test_module_class_model():
    """A 'module:Class' model name resolves to that class."""
    sc = make_small(agents=[{"model": "simlab.agents.baselines:RandomAgent", "name": "r"}])
    assert sc.agents[0].cls is registry.resolve("agents", "random")
    assert sc.resolved_dict()["agents"][0]["model"] == "simlab.agents.baselines:RandomAgent"


def test_agent_labels():
    """An agent's label is its name, or its model."""
    sc = make_small(agents=[{"model": "random", "name": "baseline"}, {"model": "popularity"}])
    assert sc.agent_labels() == ["baseline", "popularity"]


def test_every_schema_problem_reported():
    """All top-level schema problems come back together, one line each."""
    with pytest.raises(ScenarioError) as info:
        make_small("platform.slate_size=-1", "world.dimm=3", steps=0)
    lines = str(info.value).splitlines()
    assert len(lines) == 3
    assert any(line.startswith("steps: ") for line in lines)
    assert any(line.startswith("platform.slate_size: ") for line in lines)
    assert any(line.startswith("world.dimm: unknown field 'dimm'") for line in lines)


def test_every_component_problem_reported():
    """All component problems (params, model names, labels, metrics) come back together."""
    with pytest.raises(ScenarioError) as info:
        make_small(
            "users.drift_rat=1",
            "agents[1].model=popularty",
            "metrics=[engagment]",
            "content.lifetime=0",
        )
    lines = str(info.value).splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("users.drift_rat: ")
    assert lines[1].startswith("content.lifetime: ")
    assert lines[2].startswith("agents[1].model: ")
    assert lines[3].startswith("metrics[0]: ")


def test_scenario_error_is_value_error():
    """ScenarioError is a ValueError, so generic handlers catch it."""
    with pytest.raises(ValueError, match=re.escape("a scenario must be a mapping of fields")):
        parse_scenario([1, 2])


def test_format_path():
    """Paths print with dots for fields and brackets for indices."""
    assert format_path(["agents", 2, "factors"]) == "agents[2].factors"
    assert format_path(["platform", "rerankers", 0, "model"]) == "platform.rerankers[0].model"
    assert format_path([]) == "<scenario>"
    assert format_path(["sweep", 1, "[key]"]) == "sweep key 1"
    assert format_path(["variants", "a", "[key]"]) == "variants key 'a'"
    assert format_path(["platform", True]) == "platform.true"
    assert format_path(["x", False, 3]) == "x.false[3]"


@pytest.mark.parametrize(
    "item, path",
    [
        ("steps=true", "steps"),
        ("users.drift_rate=True", "users.drift_rate"),
        ("agents[1].factors=false", "agents[1].factors"),
    ],
)
def test_boolean_is_not_a_number(item: str, path: str):
    """A YAML boolean given for a number is an error naming the field, not 1 or 0."""
    agents = [{"model": "random"}, {"model": "mf"}]
    with pytest.raises(ScenarioError, match=re.escape(f"{path}: expects a number, not a boolean")):
        make_small(item, agents=agents)


def test_duplicate_yaml_key_is_an_error(tmp_path: Path):
    """A key given twice in one mapping is reported with its line instead of silently dropped."""
    path = tmp_path / "dup.yaml"
    path.write_text("name: a\nsteps: 3\nagents: [{model: random}]\nsteps: 4\n")
    with pytest.raises(
        ScenarioError,
        match=re.escape(
            "dup.yaml:4:1: YAML syntax error: duplicate key 'steps' (first set on line 2)"
        ),
    ):
        load_scenario(path)
