"""The built-in cross-field rules of a scenario, checked at validate time.

Each rule gets a validated scenario (components resolved) and returns error lines naming
the field, its value, the other field it conflicts with and what is allowed. They run on
the scenario and on every sweep point, so a point that makes an invalid world is named. A
new rule is a function decorated with :func:`simlab.validation.rule`.

Components join in with two optional classmethods: ``check_scenario(params, scenario) ->
list[str]`` (their own rules, e.g. RecSim's models need ``world.dim == world.num_topics``; a
line that does not start with a top-level field is prefixed with the component's path), and
for content models ``min_live_items(params, steps) -> int`` (the fewest items live at any
step; without it the catalog size comes from the usual fields: ``num_docs``, or
``initial_items``, ``items_per_step`` and ``lifetime``), ``new_items_per_step(params) ->
int`` (the fewest items published at a step; without it ``items_per_step``) and
``topic_count(params, scenario) -> int`` (how many topic ids its items use; without it
``world.num_topics``).
"""

from __future__ import annotations

import importlib.util
from typing import Any

from simlab.memory import memory_errors
from simlab.validation import rule

__all__ = ["min_live_items", "new_items_per_step", "topic_count", "cuda_available"]


def min_live_items(content: Any, steps: int) -> int | None:
    """The fewest items live at any of ``steps`` steps, when the content model says."""
    hook = getattr(content.cls, "min_live_items", None)
    if callable(hook):
        return int(hook(content.params, steps))
    p = content.params
    if getattr(p, "num_docs", None) is not None:
        return int(p.num_docs)
    if not all(hasattr(p, k) for k in ("initial_items", "items_per_step", "lifetime")):
        return None
    n, per, life = int(p.initial_items), int(p.items_per_step), int(p.lifetime)
    if life <= 0:  # 0 = items never retire: the catalog only grows
        return n + per
    q, r = divmod(n, life)

    def live(t: int) -> int:
        # initial items have ages 0..life-1 at step -1; the one of age a retires at life-1-a
        m = life - 2 - t
        initial = (m + 1) * q + min(m + 1, r) if m >= 0 else 0
        return initial + per * min(t + 1, life)

    # Up to step life-1 both terms are concave in t (the initial items retire q, then q + 1,
    # per step, the oldest first; the new ones grow, then level off), and from it on the
    # count is constant (every initial item gone, per*life new ones live): the fewest are
    # at the first or the last step.
    return min(live(0), live(steps - 1))


@rule
def _slate_fits(scenario: Any) -> list[str]:
    plat = scenario.platform
    k = plat.slate_size
    if not k:  # 0 = every candidate (where the schema allows it)
        return []
    out = []
    if plat.max_candidates and k > plat.max_candidates:
        out.append(
            f"platform.slate_size: {k} is more than the {plat.max_candidates} candidates per "
            f"user (platform.max_candidates); raise max_candidates (0 = every live item) or "
            "lower slate_size"
        )
    live = min_live_items(scenario.content, scenario.steps)
    if live is not None and k > live:
        out.append(
            f"platform.slate_size: {k} is more than the {live} items live at some step of the "
            f"run (content model '{scenario.content.model}'); lower slate_size or grow the "
            "catalog (e.g. content.initial_items, content.items_per_step, content.lifetime)"
        )
    return out


def topic_count(content: Any, scenario: Any) -> int:
    """How many topic ids the content model's items use (``world.num_topics`` unless it says)."""
    hook = getattr(content.cls, "topic_count", None)
    if callable(hook):
        return int(hook(content.params, scenario))
    return int(scenario.world.num_topics)


def new_items_per_step(content: Any) -> int | None:
    """The fewest items a content model publishes at a step, when it says (or None)."""
    hook = getattr(content.cls, "new_items_per_step", None)
    if callable(hook):
        return int(hook(content.params))
    per = getattr(content.params, "items_per_step", None)
    return None if per is None else int(per)


@rule
def _startup_new_items(scenario: Any) -> list[str]:
    """A start-up of the step's new items needs a slate's worth published at every step."""
    plat = scenario.platform
    if not plat.startup_steps or plat.startup_candidates != "new":
        return []
    per, need = new_items_per_step(scenario.content), max(plat.slate_size, 1)
    if per is None or per >= need:
        return []
    what = f"slate_size {plat.slate_size}" if plat.slate_size else "one"
    more = " or publish more (content.items_per_step)"
    return [
        f"platform.startup_candidates: 'new' serves the items published at each start-up step, "
        f"but content.model '{scenario.content.model}' publishes {per} per step, fewer than "
        f"{what}; use startup_candidates: all"
        + (more if hasattr(scenario.content.params, "items_per_step") else "")
    ]


@rule
def _rerank_depth(scenario: Any) -> list[str]:
    plat = scenario.platform
    depth, k = plat.rerank_depth, plat.slate_size
    if depth and k and depth < k:
        return [
            f"platform.rerank_depth: {depth} is less than platform.slate_size={k}; re-rankers "
            f"need at least the slate's {k} ranked items (0 = 3 * slate_size)"
        ]
    return []


def cuda_available() -> bool:
    """Whether torch sees a CUDA device (imports torch: called only when a GPU is asked for)."""
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


@rule
def _gpu_present(scenario: Any) -> list[str]:
    out = []
    ex = scenario.execution
    gpus = ex.agent_resources.num_gpus
    # an embedded Ray instance has the GPUs of this machine; a cluster's are not known here
    if gpus and ex.backend == "ray" and ex.address is None and not cuda_available():
        out.append(
            f"execution.agent_resources.num_gpus: {gpus:g} GPU asked for, but this machine has "
            "no CUDA device for the embedded Ray instance; set it to 0 (agents then run on "
            "CPU) or give execution.address of a cluster with GPUs"
        )
    lg = ex.learner.num_gpus if ex.learner.actor else 0
    if lg and ex.backend == "ray" and ex.address is None and not cuda_available():
        out.append(
            f"execution.learner.num_gpus: {lg:g} GPU asked for, but this machine has no CUDA "
            "device for the embedded Ray instance; set it to 0 or give execution.address of "
            "a cluster with GPUs"
        )
    if ex.learner.num_gpus and not ex.learner.actor:
        out.append(
            f"execution.learner.num_gpus: {ex.learner.num_gpus:g} GPU for a learner actor, but "
            "execution.learner.actor is false (the agent then learns in the trial actor: "
            "use execution.agent_resources.num_gpus)"
        )
    for i, agent in enumerate(scenario.agents):
        if getattr(agent.params, "device", None) == "cuda" and not cuda_available():
            out.append(
                f"agents[{i}].device: 'cuda' but torch finds no CUDA device; use 'auto' (CUDA "
                "when available, else CPU) or 'cpu'"
            )
    return out


def _components(scenario: Any):
    """``(path, spec)`` of every component of a resolved scenario."""
    yield "users", scenario.users
    yield "content", scenario.content
    for i, agent in enumerate(scenario.agents):
        yield f"agents[{i}]", agent
        for j, rr in enumerate(agent.rerankers):
            yield f"agents[{i}].rerankers[{j}]", rr
    for j, rr in enumerate(scenario.platform.rerankers):
        yield f"platform.rerankers[{j}]", rr


@rule
def _component_rules(scenario: Any) -> list[str]:
    """Each component's own rule: a classmethod ``check_scenario(params, scenario)``."""
    sections = tuple(type(scenario).model_fields)
    out = []
    for path, spec in _components(scenario):
        hook = getattr(spec.cls, "check_scenario", None)
        if callable(hook):
            for line in hook(spec.params, scenario):
                # a line that names no top-level field is about the component itself
                head = line.split(":", 1)[0].split(".", 1)[0].split("[", 1)[0]
                out.append(line if head in sections else f"{path}: {line}")
    return out


@rule
def _rewrites_available(scenario: Any) -> list[str]:
    """Source debiasing by rewrites needs a content model with a rewrite function."""
    if hasattr(scenario.content.cls, "rewrite_features"):
        return []
    return [
        f"agents[{i}].source_debias: {a.params.source_debias:g} needs the content model's "
        f"rewrite function, which content.model '{scenario.content.model}' lacks; use "
        "content.model: creators or set source_debias: 0"
        for i, a in enumerate(scenario.agents)
        if getattr(a.params, "source_debias", None)  # a weight >= 0: on when not 0
    ]


@rule
def _memory(scenario: Any) -> list[str]:
    from simlab.validation import MAX_TRIALS

    trials = len(scenario.agents) * len(scenario.seeds)
    return memory_errors(scenario, min(trials, MAX_TRIALS))


@rule
def _users_accept_the_slate(scenario: Any) -> list[str]:
    """``slate_size: 0`` (every candidate) needs users who accept slates of any length."""
    plat, users = scenario.platform, scenario.users
    if plat.slate_size or getattr(users.cls, "any_slate_size", False):
        return []
    return [
        f"platform.slate_size: 0 (every candidate, ranked) needs a user model that accepts "
        f"slates of any length, such as `chaney`; users.model '{users.model}' expects exactly "
        "slate_size items"
    ]


@rule
def _consumed_ranked(scenario: Any) -> list[str]:
    """Consumed items kept in the ranking need no repeats and users who pass over them."""
    plat, users = scenario.platform, scenario.users
    if not plat.consumed_ranked:
        return []
    if not plat.exclude_consumed:
        return [
            "platform.consumed_ranked: true keeps consumed items ranked under no repeat "
            "consumption; set platform.exclude_consumed: true (or consumed_ranked: false)"
        ]
    if not getattr(users.cls, "passes_over_consumed", False):
        return [
            f"platform.consumed_ranked: true needs users who pass over the consumed items of "
            f"their list; users.model '{users.model}' cannot (use `chaney`, or set "
            "consumed_ranked: false to remove consumed items from the candidates)"
        ]
    return []


@rule
def _rerank_depth_of_every_candidate(scenario: Any) -> list[str]:
    plat = scenario.platform
    if plat.slate_size == 0 and plat.rerank_depth:
        return [
            f"platform.rerank_depth: {plat.rerank_depth} has no effect with slate_size 0 (agents "
            "rank every candidate); set it to 0"
        ]
    return []


@rule
def _content_the_users_need(scenario: Any) -> list[str]:
    """A user model may need items with something only some content models publish."""
    users, content = scenario.users, scenario.content
    needs = getattr(users.cls, "content_needs", None)
    if needs and needs not in getattr(content.cls, "provides", ()):
        return [
            f"content.model: users.model '{users.model}' needs items with {needs}, which "
            f"content.model '{content.model}' does not publish (use `chaney-items`)"
        ]
    return []


@rule
def _social_graph(scenario: Any) -> list[str]:
    """Agents that recommend from the users' social graph need users that have one."""
    users = scenario.users
    wanting = [
        (i, a) for i, a in enumerate(scenario.agents) if getattr(a.cls, "needs_social_graph", False)
    ]
    if not wanting:
        return []
    if not hasattr(users.cls, "social_graph"):
        return [
            f"agents[{i}].model: '{a.model}' recommends from the users' social graph, which "
            f"users.model '{users.model}' does not have; use a user model with a social graph, "
            "such as `chaney`"
            for i, a in wanting
        ]
    graph = getattr(users.params, "social_graph", None)
    try:
        if graph is not None:  # the graph is drawn: can it be, for these users?
            graph.check_size(users.params.num_users, scenario.world.dim)
    except ValueError as e:
        return [f"users.social_graph: {e}"]
    return []


@rule
def _shards_have_users(scenario: Any) -> list[str]:
    """Each Ray user shard holds one user at least (an empty shard's CPUs would idle)."""
    ex = scenario.execution
    users = getattr(scenario.users.params, "num_users", None)
    if ex.backend != "ray" or not isinstance(users, int) or ex.shards <= users:
        return []
    return [
        f"execution.shards: {ex.shards} is more than the {users} users (users.num_users); "
        f"each shard holds one user at least: use at most {users} shards"
    ]
