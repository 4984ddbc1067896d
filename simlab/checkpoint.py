"""World checkpoints: capture a world between steps, restore it, write and read them.

A checkpoint taken after ``t`` steps holds everything the loop needs to continue at step
``t``: the users' per-user state (interests, fatigue, churn, click histories; one array per
field over the whole population, whatever the sharding), the content ecosystem, the
platform's log window, pending retrains and re-rankers, the agent, the metrics' running
state and the last step's exposure. Randomness needs no state: every draw is keyed by
(seed, stream, entity, step).

Restoring under the scenario the checkpoint was taken with gives back the same objects,
so the continued run is identical to an uninterrupted one. Under changed settings (a
fork: ``simlab run ... --from RUN@STEP --set ...``) each component whose settings changed is
built anew from the new scenario and handed the saved *learned* state through
``load_state_dict`` (the user model and content ecosystem implement it; agents do through
:class:`~simlab.agents.base.Agent`); re-rankers and metrics that are new start fresh.

On disk a checkpoint is ``<run>/checkpoints/trial=<i>/step=<t>.pkl``, a pickle written to a
temporary name and renamed, so a kill never leaves a half-written checkpoint. Pickles
execute code when loaded: only restore checkpoints of runs you trust (your own).
"""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simlab.errors import RunStoreError, ScenarioError

if TYPE_CHECKING:
    from simlab.scenario import Scenario
    from simlab.world import World

__all__ = [
    "FORMAT",
    "capture",
    "restore",
    "write_checkpoint",
    "read_checkpoint",
    "checkpoint_steps",
    "prune_checkpoints",
    "due_checkpoint",
]

FORMAT = 1
CHECKPOINTS = "checkpoints"


# ---------------------------------------------------------------------- capture/restore
def capture(world: World) -> dict[str, Any]:
    """The state of ``world`` between steps (after ``world.t`` steps)."""
    return {
        "format": FORMAT,
        "t": world.t,
        "users": world.population.state_dict(),
        "content": world.content,
        "platform": {
            "log": list(world.platform._log),
            "pending": list(world.platform._pending),
            "rerankers": list(world.platform.rerankers),
        },
        "agent": world.agent,
        "metrics": dict(zip(world.scenario.metrics, world.metrics, strict=True)),
        "last_exposure": world._last_exposure,
    }


def _same(a: Any, b: Any) -> bool:
    return a.model_dump(mode="json") == b.model_dump(mode="json") and (
        getattr(a, "resolved", None) is None or a.resolved() == b.resolved()
    )


def _transfer(old: Any, new: Any, what: str) -> Any:
    """``new`` loaded with ``old``'s learned state (``state_dict``/``load_state_dict``)."""
    if not (hasattr(old, "state_dict") and hasattr(new, "load_state_dict")):
        raise ScenarioError(
            f"{what}: {type(new).__name__} has no state_dict()/load_state_dict(), so it cannot "
            "continue from a checkpoint under changed settings; keep its settings unchanged"
        )
    try:
        new.load_state_dict(old.state_dict())
    except Exception as e:  # shapes or keys that the new settings no longer accept
        raise ScenarioError(
            f"{what}: the checkpoint's state does not fit the changed settings ({e})"
        ) from None
    return new


def restore(world: World, state: dict[str, Any], saved: Scenario) -> None:
    """Put ``world`` (freshly built from its scenario) in the checkpointed ``state``.

    ``saved`` is the scenario the checkpoint was taken under; components whose settings
    differ from ``world.scenario`` are rebuilt and given the saved learned state.
    """
    from simlab.world import bind_hooks, reranker_specs

    if state.get("format") != FORMAT:
        raise RunStoreError(
            f"checkpoint format {state.get('format')!r} is not supported (expected {FORMAT})"
        )
    new = world.scenario
    if new.world.model_dump() != saved.world.model_dump():
        raise ScenarioError(
            "world: a run cannot continue from a checkpoint with another `world` section "
            f"(checkpoint: {saved.world.model_dump()}, now: {new.world.model_dump()})"
        )
    try:
        world.population.load_state_dict(state["users"])
    except (ValueError, KeyError) as e:
        raise ScenarioError(f"users: the checkpoint's user state does not fit ({e})") from None
    # content
    if _same(new.content, saved.content):
        world.content = state["content"]
    else:
        world.content = _transfer(state["content"], world.content, "content")
    # platform: log window and pending retrains; re-rankers whose spec is unchanged
    plat = state["platform"]
    world.platform._log.clear()
    world.platform._log.extend(plat["log"])
    world.platform._pending = list(plat["pending"])
    saved_index = _agent_index(saved, world.agent_label)
    old_specs = reranker_specs(saved, saved_index) if saved_index is not None else []
    for i, spec in enumerate(reranker_specs(new, world.agent_index)):
        if i < len(old_specs) and _same(spec, old_specs[i]):
            world.platform.rerankers[i] = plat["rerankers"][i]
    # agent
    spec, old_spec = new.agents[world.agent_index], _find_agent(saved, world.agent_label)
    agent = state["agent"]
    if old_spec is None or not _same(spec, old_spec):
        agent = _transfer(agent, spec.cls(spec.params, world.context), f"agent '{spec.label}'")
    bind_hooks(agent, world)
    world.agent = agent
    # metrics keep their running state (e.g. cumulative consumption); new ones start fresh
    saved_metrics = state["metrics"]
    for i, name in enumerate(new.metrics):
        if name in saved_metrics:
            world.metrics[i] = saved_metrics[name]
    world.t = int(state["t"])
    world._last_exposure = state["last_exposure"]


def _agent_index(scenario: Scenario, label: str) -> int | None:
    for i, spec in enumerate(scenario.agents):
        if spec.label == label:
            return i
    return None


def _find_agent(scenario: Scenario, label: str):
    i = _agent_index(scenario, label)
    return None if i is None else scenario.agents[i]


# ---------------------------------------------------------------------- files
def _folder(run_path: Path, trial: int) -> Path:
    return Path(run_path) / CHECKPOINTS / f"trial={trial}"


def write_checkpoint(run_path: Path, trial: int, step: int, state: dict[str, Any]) -> Path:
    """Write ``state`` as the checkpoint of ``trial`` after ``step`` steps (atomically)."""
    folder = _folder(run_path, trial)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step={step}.pkl"
    tmp = folder / f".step={step}.pkl.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        pickle.dump(state, f, protocol=pickle.HIGHEST_PROTOCOL)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def steps_in(folder: Path, suffix: str) -> list[int]:
    """The ``t`` of every ``step=<t><suffix>`` file in ``folder``, increasing."""
    if not folder.is_dir():
        return []
    name = re.compile(rf"^step=(\d+){re.escape(suffix)}$")
    return sorted(int(m.group(1)) for p in folder.iterdir() if (m := name.match(p.name)))


def checkpoint_steps(run_path: Path, trial: int) -> list[int]:
    """Steps at which ``trial`` has a checkpoint, increasing."""
    return steps_in(_folder(run_path, trial), ".pkl")


def read_checkpoint(run_path: Path, trial: int, step: int) -> dict[str, Any]:
    """Load the checkpoint of ``trial`` after ``step`` steps.

    Raises:
        RunStoreError: it is missing (the message lists the steps that exist) or corrupt.
    """
    path = _folder(run_path, trial) / f"step={step}.pkl"
    if not path.exists():
        have = checkpoint_steps(run_path, trial)
        raise RunStoreError(
            f"{run_path}: trial {trial} has no checkpoint at step {step}; checkpoints exist "
            f"at steps {have or 'none (output.checkpoint_every was 0 or no step was reached)'}"
        )
    try:
        with open(path, "rb") as f:
            state = pickle.load(f)
    except Exception as e:  # unpickling raises many types for a damaged file
        raise RunStoreError(f"{path}: corrupt checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise RunStoreError(f"{path}: not a simlab checkpoint of format {FORMAT}")
    return state


def due_checkpoint(output: Any, done: int, steps: int) -> bool:
    """Whether a checkpoint is due after ``done`` steps (every C steps, never at the end)."""
    every = output.checkpoint_every
    return bool(every) and done % every == 0 and done < steps


def prune_checkpoints(run_path: Path, trial: int, keep: int) -> None:
    """Delete all but the ``keep`` newest checkpoints of ``trial`` (``keep`` 0: keep all)."""
    if keep <= 0:
        return
    for step in checkpoint_steps(run_path, trial)[:-keep]:
        (_folder(run_path, trial) / f"step={step}.pkl").unlink(missing_ok=True)
