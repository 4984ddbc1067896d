"""``simlab.rules``: each cross-field rule, refused and accepted, per class of scenario.

The catalog-size bound is checked against the catalogs a content model actually serves; the
other rules by the message they give (field, value, what is allowed) and by the scenarios
just inside them that they must accept.
"""

from __future__ import annotations

import copy
import itertools

import pytest
from conftest import SMALL, make_small, scenario_errors

from simlab import rules
from simlab.scenario import parse_scenario
from simlab.world import World


def _errors(*overrides, **top) -> list[str]:
    """The error lines of a small scenario with ``overrides``; fails if it parses."""
    return scenario_errors({**copy.deepcopy(SMALL), **top}, *overrides)


def _parses(*overrides, **top) -> None:
    data = copy.deepcopy(SMALL)
    data.update(top)
    parse_scenario(data, overrides)


CHANEY = {
    "users": {"model": "chaney", "num_users": 20},
    "content": {"model": "chaney-items", "items_per_step": 5, "initial_items": 20},
}


# ---------------------------------------------------------------------- live items
GRID = [
    (n, per, life, steps)
    for n, per, life, steps in itertools.product([7, 20, 45], [0, 1, 3], [1, 2, 5, 9], [1, 4, 12])
    if n + per > 0
]


@pytest.mark.parametrize(("n", "per", "life", "steps"), GRID)
def test_min_live_items_is_the_smallest_catalog_the_content_model_serves(n, per, life, steps):
    """The bound equals the fewest live items of the real catalog over the run's steps."""
    if _bound(n, per, life, steps) < 1:  # no item live at some step: refused by the rule
        fields = [f"content.initial_items={n}", f"content.items_per_step={per}"]
        lines = _errors(*fields, f"content.lifetime={life}", "platform.slate_size=1", steps=steps)
        assert any("is more than the 0 items live at some step" in x for x in lines), lines
        return
    sc = make_small(
        f"content.initial_items={n}",
        f"content.items_per_step={per}",
        f"content.lifetime={life}",
        "platform.slate_size=1",
        "users.num_users=5",
        steps=steps,
        agents=[{"model": "random"}],
    )
    world = World(sc, 0, 0)
    sizes = [world.step_content(t).catalog.num_items for t in range(steps)]
    assert rules.min_live_items(sc.content, steps) == min(sizes)


def _bound(n: int, per: int, life: int, steps: int) -> int:
    """min_live_items of the creators model's fields, without a scenario."""
    from types import SimpleNamespace

    params = SimpleNamespace(initial_items=n, items_per_step=per, lifetime=life)
    return rules.min_live_items(SimpleNamespace(cls=object, params=params), steps)


def test_min_live_items_asks_the_content_model_or_its_fixed_corpus():
    """A model's own hook wins, then ``num_docs``; without the usual fields it is unknown."""
    from types import SimpleNamespace

    class Hooked:
        @staticmethod
        def min_live_items(params, steps):
            return steps * 2

    assert rules.min_live_items(SimpleNamespace(cls=Hooked, params=None), 7) == 14
    docs = SimpleNamespace(cls=object, params=SimpleNamespace(num_docs=33))
    assert rules.min_live_items(docs, 5) == 33
    forever = SimpleNamespace(initial_items=10, items_per_step=3, lifetime=0)  # never retire
    assert rules.min_live_items(SimpleNamespace(cls=object, params=forever), 9) == 13
    other = SimpleNamespace(cls=object, params=SimpleNamespace(initial_items=5))
    assert rules.min_live_items(other, 5) is None


# ---------------------------------------------------------------------- slates of every candidate
def test_every_candidate_ranked_needs_users_who_take_any_slate_length():
    """``slate_size: 0`` with users who expect ``slate_size`` items is refused by name."""
    lines = _errors("platform.slate_size=0")
    assert any(
        x.startswith("platform.slate_size: 0 (every candidate, ranked) needs a user model")
        and "users.model 'logit' expects exactly slate_size items" in x
        for x in lines
    ), lines
    _parses("platform.slate_size=0", **CHANEY)


@pytest.mark.parametrize("depth", [1, 7, 30])
def test_a_rerank_depth_with_every_candidate_ranked_is_refused(depth):
    """A re-rank depth has no effect when agents rank every candidate: said, with its value."""
    lines = _errors("platform.slate_size=0", f"platform.rerank_depth={depth}", **CHANEY)
    assert lines == [
        f"platform.rerank_depth: {depth} has no effect with slate_size 0 (agents rank every "
        "candidate); set it to 0"
    ]
    _parses("platform.slate_size=0", "platform.rerank_depth=0", **CHANEY)


# ---------------------------------------------------------------------- start-up of new items
@pytest.mark.parametrize("per", [0, 1, 4])
def test_a_start_up_of_all_items_needs_no_new_items(per):
    """``startup_candidates: all`` serves the whole catalog: any publishing rate is fine."""
    _parses(
        "platform.startup_steps=3",
        "platform.startup_candidates=all",
        f"content.items_per_step={per}",
        "content.lifetime=40",  # the initial items outlive the run
    )


def test_a_start_up_of_new_items_needs_a_slate_of_them_each_step():
    """Fewer new items than a slate: refused; exactly a slate's worth: accepted."""
    lines = _errors(
        "platform.startup_steps=2", "platform.startup_candidates=new", "content.items_per_step=4"
    )
    assert any("publishes 4 per step, fewer than slate_size 5" in x for x in lines), lines
    _parses(
        "platform.startup_steps=2", "platform.startup_candidates=new", "content.items_per_step=5"
    )
    _parses(
        "platform.startup_steps=0", "platform.startup_candidates=new", "content.items_per_step=1"
    )


# ---------------------------------------------------------------------- consumed items ranked
def test_consumed_items_ranked_need_no_repeats_and_users_who_pass_over_them():
    """Each missing condition is named with what to set."""
    lines = _errors("platform.consumed_ranked=true")
    assert lines[0].startswith(
        "platform.consumed_ranked: true keeps consumed items ranked under no repeat consumption"
    )
    lines = _errors("platform.consumed_ranked=true", "platform.exclude_consumed=true")
    assert any(
        "users.model 'logit' cannot (use `chaney`" in x for x in lines
    ), lines  # fmt: skip
    _parses(
        "platform.consumed_ranked=true",
        "platform.exclude_consumed=true",
        "platform.slate_size=0",
        **CHANEY,
    )


# ---------------------------------------------------------------------- what users need
def test_users_that_need_item_attributes_need_content_that_publishes_them():
    """Chaney's users with another content model: refused, naming both models."""
    lines = _errors(users={"model": "chaney", "num_users": 20}, platform={"slate_size": 0})
    assert any(
        x.startswith("content.model: users.model 'chaney' needs items with")
        and "content.model 'creators' does not publish (use `chaney-items`)" in x
        for x in lines
    ), lines


@pytest.mark.parametrize("index", [0, 1])
def test_social_filtering_needs_users_with_a_social_graph(index):
    """The agent is named at its own index; users with a graph are accepted."""
    agents = [{"model": "random"}]
    agents.insert(index, {"model": "social-filtering"})
    lines = _errors(agents=agents)
    assert any(
        x.startswith(f"agents[{index}].model: 'social-filtering' recommends from the users'")
        for x in lines
    ), lines
    _parses("platform.slate_size=0", **CHANEY, agents=agents)


# ---------------------------------------------------------------------- GPUs
def test_a_learner_gpu_without_a_learner_actor_is_refused():
    """GPUs for a learner that does not exist (``actor: false``) are named."""
    lines = _errors("execution.learner.num_gpus=1", "execution.learner.actor=false")
    assert any(
        x.startswith("execution.learner.num_gpus: 1 GPU for a learner actor, but") for x in lines
    )
    _parses("execution.learner.num_gpus=0", "execution.learner.actor=false")


def test_a_learner_gpu_on_a_machine_without_cuda(monkeypatch):
    """Refused for the embedded Ray instance; a cluster's GPUs are not this machine's."""
    monkeypatch.setattr(rules, "cuda_available", lambda: False)
    gpu = ["execution.backend=ray", "execution.learner.actor=true", "execution.learner.num_gpus=1"]
    lines = _errors(*gpu)
    assert any(
        x.startswith("execution.learner.num_gpus: 1 GPU asked for, but this machine") for x in lines
    )
    _parses(*gpu, "execution.address=auto")
    # run locally, Ray's GPU settings are unused: nothing to refuse
    _parses("execution.backend=local", "execution.agent_resources.num_gpus=1")
    local = ["execution.backend=local", *gpu[1:]]  # run locally, Ray's GPUs are unused
    _parses(*local)
    monkeypatch.setattr(rules, "cuda_available", lambda: True)
    _parses(*gpu)


def test_cuda_available_follows_torch(monkeypatch):
    """Without torch: no CUDA (and torch is not imported); with it: what torch says."""
    import importlib.util

    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert rules.cuda_available() is True
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert rules.cuda_available() is False
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert rules.cuda_available() is False


# ---------------------------------------------------------------------- memory
def test_memory_counts_every_trial_that_runs_at_once(monkeypatch):
    """A machine that holds one trial but not two: refused only when two run side by side."""
    from simlab.memory import MEMORY_VARIABLE, estimate

    two = ["execution.backend=ray", "execution.max_parallel_trials=2"]
    one_trial = estimate(make_small(*two)).total
    monkeypatch.setenv(MEMORY_VARIABLE, str(int(one_trial * 1.5)))
    lines = _errors(*two)  # 2 agents x 1 seed
    assert any("x 2 trials at once" in x for x in lines), lines
    lines = _errors(*two, agents=[{"model": "random"}], seeds=2)  # 1 agent x 2 seeds
    assert any("x 2 trials at once" in x for x in lines), lines
    _parses(*two, agents=[{"model": "random"}])  # 1 agent x 1 seed
    _parses(*two, "execution.max_parallel_trials=1")


# ---------------------------------------------------------------------- components' own rules
@pytest.mark.parametrize("where", ["agent", "platform"])
def test_a_re_rankers_own_rule_is_named_at_its_path(monkeypatch, where):
    """A component's ``check_scenario`` lines are prefixed with its path in the scenario."""
    from simlab.agents.rerank import MMRReranker

    def check(cls, params, scenario):
        return ["lambda too sharp for this world", "platform.slate_size: too small for me"]

    monkeypatch.setattr(MMRReranker, "check_scenario", classmethod(check), raising=False)
    if where == "agent":
        lines = _errors(
            agents=[{"model": "random"}, {"model": "popularity", "rerankers": [{"model": "mmr"}]}]
        )
        path = "agents[1].rerankers[0]"
    else:
        lines = _errors(("platform.rerankers", [{"model": "calibration"}, {"model": "mmr"}]))
        path = "platform.rerankers[1]"
    assert f"{path}: lambda too sharp for this world" in lines, lines
    assert "platform.slate_size: too small for me" in lines  # names a field: as it is


@pytest.mark.parametrize(
    ("depth", "ok"), [(4, False), (1, False), (5, True), (8, True), (300, True)]
)
def test_a_rerank_depth_below_the_slate_is_refused_and_any_other_accepted(depth, ok):
    """Re-rankers need at least the slate's items: a deeper list is fine, a shallower not."""
    fields = [f"platform.rerank_depth={depth}", "platform.slate_size=5"]
    if ok:
        _parses(*fields)
    else:
        assert _errors(*fields)[0].startswith(f"platform.rerank_depth: {depth} is less than")


@pytest.mark.parametrize(("weight", "ok"), [(0.0, True), (0.5, False), (2.0, False)])
def test_source_debiasing_needs_rewrites_only_when_on(weight, ok):
    """A debiasing weight of 0 needs nothing; a positive one a content model with rewrites."""
    agents = [{"model": "random"}, {"model": "two-tower", "source_debias": weight}]
    fields = ["platform.slate_size=0", "platform.retrain_every=3"]
    if ok:
        _parses(*fields, **CHANEY, agents=agents)
    else:
        lines = _errors(*fields, **CHANEY, agents=agents)
        assert any(
            x.startswith(f"agents[1].source_debias: {weight:g} needs the content") for x in lines
        )
