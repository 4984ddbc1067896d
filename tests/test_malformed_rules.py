"""Malformed scenarios, second part: rules across fields and class paths (YAML: elsewhere).

Like ``test_malformed_scenarios.py``: every case must end in a ``ScenarioError`` whose lines
name the field path, the value and what is allowed, and nothing else may be raised.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest
from conftest import SMALL
from conftest import scenario_errors as _errors

from simlab.errors import ScenarioError
from simlab.scenario import load_scenario, parse_scenario
from simlab.validation import foreign_code


def _base() -> dict[str, Any]:
    return copy.deepcopy(SMALL)


# ---------------------------------------------------------------------- cross-field rules
CROSS = [
    (
        ["platform.max_candidates=3", "platform.slate_size=5"],
        "platform.slate_size: 5 is more than the 3 candidates per user (platform.max_candidates)",
    ),
    (
        ["content.initial_items=3", "content.items_per_step=3", "platform.slate_size=7"],
        "platform.slate_size: 7 is more than the 6 items live",
    ),
    (
        ["content.initial_items=200", "content.items_per_step=0", "content.lifetime=20"],
        "platform.slate_size: 5 is more than the 0 items live at some step",
    ),
    (
        [
            "platform.rerank_depth=3",
            "platform.slate_size=5",
            ("platform.rerankers", [{"model": "mmr"}]),
        ],
        "platform.rerank_depth: 3 is less than platform.slate_size=5",
    ),
    (
        ["platform.startup_steps=2", "platform.startup_candidates=new", "content.items_per_step=3"],
        "platform.startup_candidates: 'new' serves the items published at each start-up step, "
        "but content.model 'creators' publishes 3 per step, fewer than slate_size 5; use "
        "startup_candidates: all or publish more (content.items_per_step)",
    ),
    (
        [
            ("users", {"model": "interest-evolution"}),
            ("content", {"model": "recsim-corpus"}),
            "world.num_topics=16",
            "platform.startup_steps=1",
            "platform.startup_candidates=new",
        ],
        "platform.startup_candidates: 'new' serves the items published at each start-up step, "
        "but content.model 'recsim-corpus' publishes 0 per step, fewer than slate_size 5; use "
        "startup_candidates: all\n",
    ),
    (
        ["users.num_users=4", "execution.backend=ray", "execution.shards=6"],
        "execution.shards: 6 is more than the 4 users (users.num_users); each shard holds one",
    ),
    (
        ["users.num_users=1", "execution.backend=ray", "execution.shards=2"],
        "execution.shards: 2 is more than the 1 users",
    ),
]


@pytest.mark.parametrize("overrides, fragment", CROSS, ids=[f[:30] for _, f in CROSS])
def test_cross_field_rules_at_validate_time(overrides, fragment):
    """Slate vs candidates and catalog, re-rank depth vs slate: refused before any run."""
    lines = _errors(_base(), *overrides)
    assert any((x + "\n").startswith(fragment) for x in lines), lines


def test_cross_field_rules_accept_what_fits():
    """The same fields within their limits pass (the rules are not over-eager)."""
    parse_scenario(_base(), ["platform.max_candidates=5", "platform.slate_size=5"])
    parse_scenario(_base(), ["platform.rerank_depth=5", "platform.slate_size=5"])
    parse_scenario(_base(), ["content.initial_items=5", "content.items_per_step=5"])
    startup = ["platform.startup_steps=3", "platform.startup_candidates=new"]
    parse_scenario(_base(), [*startup, "content.items_per_step=5"])  # = slate_size
    parse_scenario(_base(), [*startup[:1], "content.items_per_step=0", "content.lifetime=40"])
    ray = ["execution.backend=ray", "users.num_users=4"]
    parse_scenario(_base(), [*ray, "execution.shards=4"])  # one user per shard
    parse_scenario(_base(), ["users.num_users=4", "execution.shards=6"])  # (local: unused)


def test_a_sweep_point_that_breaks_a_rule_is_named():
    """Each value alone is fine; one combination is not, and the error names it."""
    data = _base()
    data["sweep"] = {"platform.slate_size": [3, 8], "platform.max_candidates": [5, 10]}
    lines = _errors(data)
    assert lines == [
        "sweep point {platform.slate_size=8, platform.max_candidates=5}: platform.slate_size: "
        "8 is more than the 5 candidates per user (platform.max_candidates); raise "
        "max_candidates (0 = every live item) or lower slate_size"
    ]


def test_gpu_asked_for_without_cuda(monkeypatch):
    """A GPU for the embedded Ray instance, or device: cuda, on a machine without CUDA."""
    from simlab import rules

    monkeypatch.setattr(rules, "cuda_available", lambda: False)
    lines = _errors(_base(), "execution.backend=ray", "execution.agent_resources.num_gpus=1")
    assert any(x.startswith("execution.agent_resources.num_gpus: 1 GPU asked for") for x in lines)
    data = _base()
    data["agents"] = [{"model": "generative", "device": "cuda"}]
    lines = _errors(data)
    assert any(x.startswith("agents[0].device: 'cuda' but torch finds no CUDA") for x in lines)
    # on a cluster the GPUs are not this machine's: no error
    parse_scenario(
        _base(),
        ["execution.backend=ray", "execution.address=auto", "execution.agent_resources.num_gpus=1"],
    )


# ---------------------------------------------------------------------- module:Class entries
CLASS_PATHS = [
    ("agents", ":RandomAgent", "malformed class path"),
    ("agents", "simlab.agents.baselines:", "malformed class path"),
    ("agents", "a:b:c", "malformed class path"),
    ("agents", "1bad.mod:X", "malformed class path"),
    ("agents", "simlab..agents:X", "malformed class path"),
    ("agents", "my mod:X", "malformed class path"),
    ("agents", "../../etc:Passwd", "malformed class path"),
    ("agents", "no_such_package_xyz.recs:Agent", "cannot import module 'no_such_package_xyz.recs'"),
    ("agents", "simlab.agents.baselines:NoSuch", "has no attribute 'NoSuch'"),
    ("agents", "os.path:join", "is not a class"),
    (
        "agents",
        "simlab.environments.users:LogitUserPopulation",
        "is not an agent: it lacks act(); it looks like a user model",
    ),
    (
        "agents",
        "simlab.agents.rerank:MMRReranker",
        "is not an agent: it lacks act(); it looks like a re-ranker",
    ),
    ("agents", "simlab.agents.base:Agent", "is not an agent: it lacks act()"),
    (
        "rerankers",
        "simlab.agents.baselines:PopularityAgent",
        "is not a re-ranker: it lacks rerank(); it looks like an agent",
    ),
    ("users", "simlab.agents.baselines:RandomAgent", "is not a user model"),
    ("content", "simlab.environments.users:LogitUserPopulation", "is not a content model"),
    (
        "users",
        "simlab.environments.content:CreatorEcosystem",
        "is not a user model: it lacks arrivals(), respond(), observable_features(), "
        "interests(); it looks like a content model",
    ),
]


@pytest.mark.parametrize("kind, path, fragment", CLASS_PATHS, ids=[p for _, p, _ in CLASS_PATHS])
def test_class_paths_are_checked_against_their_kind(kind, path, fragment):
    """Malformed, missing or wrong-kind classes are refused at validate time."""
    data = _base()
    if kind == "agents":
        data["agents"] = [{"model": path}]
        where = "agents[0].model"
    elif kind == "rerankers":
        data["platform"]["rerankers"] = [{"model": path}]
        where = "platform.rerankers[0].model"
    else:
        data[kind] = {"model": path}
        where = f"{kind}.model"
    lines = _errors(data)
    mine = [x for x in lines if x.startswith(f"{where}: ")]
    assert mine and fragment in mine[0], lines


def test_metric_class_paths_are_checked():
    """A ``module:Class`` metric is imported (the user asked) and must be a metric."""
    data = _base()
    data["metrics"] = ["engagement", "simlab.agents.baselines:RandomAgent", "x:"]
    lines = _errors(data)
    assert any(x.startswith("metrics[1]: ") and "is not a metric" in x for x in lines), lines
    assert any(x.startswith("metrics[2]: malformed class path") for x in lines), lines
    data["metrics"] = ["simlab.metrics.engagement:EngagementMetric"]
    parse_scenario(data)


def test_a_module_that_fails_on_import_is_a_clean_error(tmp_path, monkeypatch):
    """A user module raising (not ImportError) while imported gives one error line."""
    (tmp_path / "broken_recs_mod.py").write_text("raise ValueError('boom at import')\n")
    (tmp_path / "syntax_recs_mod.py").write_text("def f(:\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for module, fragment in (("broken_recs_mod", "boom at import"), ("syntax_recs_mod", "Syntax")):
        data = _base()
        data["agents"] = [{"model": f"{module}:Agent"}]
        lines = _errors(data)
        assert any(x.startswith("agents[0].model: ") and fragment in x for x in lines), lines


def test_foreign_code_is_not_imported_when_not_trusted(tmp_path, monkeypatch):
    """With foreign_code(False) a module outside simlab is refused before it is imported."""
    marker = tmp_path / "imported.txt"
    (tmp_path / "evil_recs_mod.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\nclass Agent:\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    data = _base()
    data["agents"] = [{"model": "evil_recs_mod:Agent"}]
    with foreign_code(False):
        lines = _errors(data)
    assert any("pass --trust-code" in x for x in lines), lines
    assert not marker.exists()


def test_strings_for_numbers_in_yaml_and_set(tmp_path):
    """Quoted numbers from a file and from --set are refused; plain ones pass."""
    path = tmp_path / "q.yaml"
    path.write_text(_yaml({**_base(), "steps": "30"}))
    with pytest.raises(ScenarioError, match=r"steps: expects an integer, not a string"):
        load_scenario(path)
    with pytest.raises(ScenarioError, match=r"users.num_users: expects an integer, not a string"):
        load_scenario(path, ["steps=30", "users.num_users='300'"])
    assert load_scenario(path, ["steps=30"]).steps == 30


def _yaml(data: dict[str, Any]) -> str:
    """``data`` as YAML text."""
    import yaml

    return yaml.safe_dump(data, sort_keys=False)


def test_validation_takes_no_time_for_valid_scenarios():
    """The checks do not slow a normal scenario down (well under a second)."""
    start = time.monotonic()
    for _ in range(20):
        parse_scenario(_base())
    assert (time.monotonic() - start) / 20 < 0.5


def test_saved_scenarios_round_trip_through_the_strict_loader(tmp_path):
    """A resolved scenario written by simlab loads back unchanged (no YAML 1.1 trap)."""
    sc = parse_scenario(_base(), ["users.drift_rate=1e-5", "description=no"])
    path = tmp_path / "saved.yaml"
    path.write_text(sc.to_yaml())
    again = load_scenario(path)
    assert again.resolved_dict() == sc.resolved_dict()
    assert again.description == "no"


COMPONENT_RULES = [
    (
        [("users", {"model": "interest-evolution"}), ("content", {"model": "recsim-corpus"})],
        "content.model: document features and interests live in R^num_topics, so world.dim "
        "must equal world.num_topics; got world.dim=16, world.num_topics=8",
    ),
    (
        [("users", {"model": "interest-evolution"}), "world.num_topics=16"],
        "users.model: 'interest-evolution' users consume documents with a `length`",
    ),
    (
        [
            ("content", {"model": "recsim-corpus"}),
            "world.num_topics=16",
            ("agents", [{"model": "mf", "source_debias": 1.0}]),
        ],
        "agents[0].source_debias: 1 needs the content model's rewrite function",
    ),
]


@pytest.mark.parametrize("overrides, fragment", COMPONENT_RULES, ids=["dims", "length", "rewrite"])
def test_component_rules_at_validate_time(overrides, fragment):
    """Rules that components declare (``check_scenario``) run at validate time."""
    lines = _errors(_base(), *overrides)
    assert any(x.startswith(fragment) for x in lines), lines


def test_lists_that_would_give_meaningless_runs_are_refused():
    """No metric at all, a metric twice, a sweep value twice: refused, not run."""
    cases = [
        ({"metrics": []}, "metrics: List should have at least 1 item"),
        ({"metrics": ["engagement", "exposure", "engagement"]}, "listed twice: engagement"),
        ({"sweep": {"users.num_users": [100, 100]}}, "lists 100 more than once"),
    ]
    for change, fragment in cases:
        lines = _errors({**_base(), **change})
        assert any(fragment in x for x in lines), (fragment, lines)
