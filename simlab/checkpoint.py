"""World checkpoints: capture a world between steps, restore it, write and read them.

A checkpoint taken after ``t`` steps holds everything the loop needs to continue at step
``t``: the users' per-user state (interests, fatigue, churn, click histories; one array per
field over the whole population, whatever the sharding), the content ecosystem's state, the
platform's log window and pending retrains, the re-rankers', the agent's and the metrics'
state and the last step's exposure. Randomness needs no state: every draw is keyed by
(seed, stream, entity, step).

Every component's part is its ``state_dict()`` (re-rankers and metrics without one get
:func:`simlab.state.component_state`), and restoring builds every component anew from the
scenario and hands it that state through ``load_state_dict``. Under the scenario the
checkpoint was taken with, the continued run is identical to an uninterrupted one. Under
changed settings (a fork: ``simlab run ... --from RUN@STEP --set ...``) a changed component
gets the saved *learned* state the same way; re-rankers and metrics that are new start fresh.

On disk a checkpoint is ``<run>/checkpoints/trial=<i>/step=<t>.ckpt``, a data-only file
(:mod:`simlab.state`: JSON and ``.npy`` arrays in a zip, read without pickle), so loading a
checkpoint from someone else's run directory cannot execute code. Its ``meta.json`` records
the run, trial, agent, seed, sweep point and step, and loading checks them. It is written to
a temporary name, synced and renamed, so a kill never leaves a half-written checkpoint; a
damaged newest checkpoint is skipped (with a warning) for the one before it on resume.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simlab.atomic import replacing
from simlab.errors import RunStoreError, ScenarioError, SimlabWarning
from simlab.state import (
    StateFormatError,
    component_state,
    load_component_state,
    read_tree,
    write_tree,
)

if TYPE_CHECKING:
    from simlab.scenario import Scenario
    from simlab.world import World

__all__ = [
    "FORMAT",
    "capture",
    "check_continuable",
    "restore",
    "write_checkpoint",
    "read_checkpoint",
    "newest_checkpoint",
    "checkpoint_meta",
    "meta_for",
    "expected_of",
    "checkpoint_steps",
    "prune_checkpoints",
    "due_checkpoint",
]

FORMAT = 2
"""Format 1 was a pickle (refused: loading one could run code); 2 is data-only."""
CHECKPOINTS = "checkpoints"
SUFFIX = ".ckpt"


# ---------------------------------------------------------------------- capture/restore
def _platform_state(world: World) -> dict[str, Any]:
    """The platform's log window and pending retrains, as arrays.

    With the Ray learner the log is partitioned (:mod:`simlab.log_partition`): the platform
    keeps the central part and each user shard its users' window and pending snapshots.
    """
    from simlab.log_partition import feedback_state

    platform = world.platform
    if platform.log_on_shards:

        def central(entries: list) -> list[dict[str, Any]]:
            return [{"step": int(t), "shown": s, "features": x} for t, s, x in entries]

        return {
            "log": central(platform._log),
            "pending": [(int(at), {"central": central(w)}) for at, w in platform._pending],
            "shards": world.population.log_states(),
        }
    return {
        "log": [
            {"feedback": feedback_state(f), "shown": shown, "features": feats}
            for f, shown, feats in platform._log
        ],
        "pending": [(int(at), feedback_state(log)) for at, log in platform._pending],
    }


def _load_platform(world: World, state: dict[str, Any]) -> None:
    from simlab.log_partition import partitioned_form, whole_form

    platform = world.platform
    platform._log.clear()
    if platform.log_on_shards:
        central, pending, parts = partitioned_form(state, world.population.bounds)
        world.population.load_logs(parts)
    else:
        central, pending = whole_form(state)
    platform._log.extend(central)
    platform._pending = pending


def capture(world: World) -> dict[str, Any]:
    """The state of ``world`` between steps (after ``world.t`` steps), as a data-only tree."""
    rerankers = world.platform.rerankers
    return {
        "format": FORMAT,
        "t": world.t,
        "users": world.population.state_dict(),
        "content": component_state(world.content, "content"),
        "platform": _platform_state(world),
        "rerankers": [component_state(r, f"rerankers[{i}]") for i, r in enumerate(rerankers)],
        "agent": component_state(world.agent, "agent"),
        "metrics": {
            name: component_state(m, f"metrics.{name}")
            for name, m in zip(world.scenario.metrics, world.metrics, strict=True)
        },
        "last_exposure": world._last_exposure,
    }


def _same(a: Any, b: Any) -> bool:
    """Whether two component specs mean the same settings.

    Resolved (defaults filled in) where they can be: a run directory's scenario.yaml holds
    every default, the scenario a fork is given holds only what its author wrote, and the
    two must compare equal when the settings are.
    """
    if hasattr(a, "resolved") and hasattr(b, "resolved"):
        return a.resolved() == b.resolved()
    return a.model_dump(mode="json") == b.model_dump(mode="json")


def _load(component: Any, state: Any, what: str, changed: bool) -> None:
    """Load ``state`` into a freshly built component; a clear error when it does not fit."""
    try:
        load_component_state(component, state)
    except Exception as e:  # shapes or keys that the component does not accept
        if changed:
            raise ScenarioError(
                f"{what}: the checkpoint's state does not fit the changed settings ({e})"
            ) from None
        raise RunStoreError(f"{what}: the checkpoint's state does not load ({e})") from None


def restore(world: World, state: dict[str, Any], saved: Scenario) -> None:
    """Put ``world`` (freshly built from its scenario) in the checkpointed ``state``.

    ``saved`` is the scenario the checkpoint was taken under; components whose settings
    differ from ``world.scenario`` are given the saved learned state as well, and new
    re-rankers and metrics start fresh.
    """
    from simlab.world_context import reranker_specs

    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise RunStoreError(f"checkpoint format {found!r} is not supported (expected {FORMAT})")
    new = world.scenario
    check_continuable(saved, new)
    try:
        world.population.load_state_dict(state["users"])
    except (ValueError, KeyError, TypeError) as e:
        raise ScenarioError(f"users: the checkpoint's user state does not fit ({e})") from None
    _load(world.content, state["content"], "content", not _same(new.content, saved.content))
    try:
        _load_platform(world, state["platform"])
    except (KeyError, TypeError, ValueError) as e:
        raise RunStoreError(f"platform: the checkpoint's log does not load ({e})") from None
    # re-rankers whose spec is unchanged continue; changed or new ones start fresh
    saved_index = _agent_index(saved, world.agent_label)
    old_specs = reranker_specs(saved, saved_index) if saved_index is not None else []
    for i, spec in enumerate(reranker_specs(new, world.agent_index)):
        if i < len(old_specs) and _same(spec, old_specs[i]):
            _load(world.platform.rerankers[i], state["rerankers"][i], f"rerankers[{i}]", False)
    spec, old_spec = new.agents[world.agent_index], _find_agent(saved, world.agent_label)
    changed = old_spec is None or not _same(spec, old_spec)
    _load(world.agent, state["agent"], f"agent '{spec.label}'", changed)
    # metrics keep their running state (e.g. cumulative consumption); new ones start fresh
    saved_metrics = state["metrics"]
    for i, name in enumerate(new.metrics):
        if name in saved_metrics:
            _load(world.metrics[i], saved_metrics[name], f"metrics.{name}", False)
    world.t = int(state["t"])
    exposure = state["last_exposure"]
    world._last_exposure = None if exposure is None else tuple(exposure)


def check_continuable(saved: Scenario, new: Scenario) -> None:
    """Refuse settings a checkpoint taken under ``saved`` cannot continue under (``new``).

    Another user or content model, ``world`` section, agent model under a label, or another
    size of an agent's learned arrays (its class's ``fixed_params``: ``factors``).
    """
    for section in ("users", "content"):  # another model's state means something else
        was, now = getattr(saved, section).model, getattr(new, section).model
        if was != now:
            raise ScenarioError(
                f"{section}.model: a run cannot continue from a checkpoint with another "
                f"{section} model (checkpoint: {was}, now: {now}); start a new run instead"
            )
    if new.world.model_dump() != saved.world.model_dump():
        raise ScenarioError(
            "world: a run cannot continue from a checkpoint with another `world` section "
            f"(checkpoint: {saved.world.model_dump()}, now: {new.world.model_dump()})"
        )
    for i, spec in enumerate(new.agents):
        if (old := _find_agent(saved, spec.label)) is None:
            continue
        if old.model != spec.model:
            raise ScenarioError(
                f"agents[{i}].model: agent '{spec.label}' is another model in the checkpoint "
                f"({old.model}, now {spec.model}); a fork changes settings, not which agents run"
            )
        was, now = old.resolved(), spec.resolved()
        # a class's `fixed_value` maps a parameter to the size it means (0 = the world's dim)
        size = getattr(spec.cls, "fixed_value", lambda name, value, world: value)
        for name in getattr(spec.cls, "fixed_params", ()):
            if size(name, was.get(name), new.world) != size(name, now.get(name), new.world):
                raise ScenarioError(
                    f"agents[{i}].{name}: a run cannot continue from a checkpoint with another "
                    f"{name} (checkpoint: {was.get(name)!r}, now: {now.get(name)!r}): the "
                    "agent's learned arrays have the checkpoint's size"
                )


def _agent_index(scenario: Scenario, label: str) -> int | None:
    return next((i for i, spec in enumerate(scenario.agents) if spec.label == label), None)


def _find_agent(scenario: Scenario, label: str):
    i = _agent_index(scenario, label)
    return None if i is None else scenario.agents[i]


# ---------------------------------------------------------------------- files
def _folder(run_path: Path, trial: int) -> Path:
    return Path(run_path) / CHECKPOINTS / f"trial={trial}"


def checkpoint_meta(
    run_id: str, trial: int, agent: str, seed: int, params: dict[str, Any], step: int
) -> dict[str, Any]:
    """What a checkpoint records about itself (checked when it is loaded)."""
    return {
        "format": FORMAT,
        "run_id": run_id,
        "trial": int(trial),
        "agent": agent,
        "seed": int(seed),
        "params": json.loads(json.dumps(params, default=str)),
        "step": int(step),
    }


def expected_of(manifest: dict[str, Any], trial: int) -> dict[str, Any]:
    """What the checkpoints of ``trial`` of the run with ``manifest`` must record."""
    record = manifest["trials"][trial]
    return {
        "run_id": manifest["run_id"],
        "agent": record["agent"],
        "seed": record["seed"],
        "params": record.get("params", {}),
    }


def meta_for(manifest: dict[str, Any], trial: int, step: int) -> dict[str, Any]:
    """:func:`checkpoint_meta` of ``trial`` of the run with ``manifest`` after ``step`` steps."""
    e = expected_of(manifest, trial)
    return checkpoint_meta(e["run_id"], trial, e["agent"], e["seed"], e["params"], step)


def write_checkpoint(
    run_path: Path, trial: int, step: int, state: dict[str, Any], meta: dict[str, Any]
) -> Path:
    """Write ``state`` as the checkpoint of ``trial`` after ``step`` steps (atomically).

    ``meta`` is :func:`checkpoint_meta` of the trial; its step must be ``step``.
    """
    if meta.get("step") != step or meta.get("trial") != trial:
        raise ValueError(f"checkpoint meta {meta} does not match trial {trial}, step {step}")
    folder = _folder(run_path, trial)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step={step}{SUFFIX}"
    with replacing(path) as tmp:
        write_tree(tmp, state, meta)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
    return path


def steps_in(folder: Path, suffix: str) -> list[int]:
    """The ``t`` of every ``step=<t><suffix>`` file in ``folder``, increasing."""
    if not folder.is_dir():
        return []
    name = re.compile(rf"^step=(\d+){re.escape(suffix)}$")
    return sorted(int(m.group(1)) for p in folder.iterdir() if (m := name.match(p.name)))


def checkpoint_steps(run_path: Path, trial: int) -> list[int]:
    """Steps at which ``trial`` has a checkpoint, increasing."""
    return steps_in(_folder(run_path, trial), SUFFIX)


def _missing(run_path: Path, trial: int, step: int) -> RunStoreError:
    have = checkpoint_steps(run_path, trial)
    legacy = steps_in(_folder(run_path, trial), ".pkl")
    note = (
        f"; it has pickle checkpoints of an older simlab at steps {legacy}, which are not "
        "loaded because unpickling a file can run code"
        if legacy
        else ""
    )
    return RunStoreError(
        f"{run_path}: trial {trial} has no checkpoint at step {step}; checkpoints exist "
        f"at steps {have or 'none (output.checkpoint_every was 0 or no step was reached)'}" + note
    )


def read_checkpoint(
    run_path: Path, trial: int, step: int, expect: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Load the checkpoint of ``trial`` after ``step`` steps, reading data only.

    Args:
        run_path: the run directory.
        trial: the trial index.
        step: steps done when it was taken.
        expect: what its meta must say (``run_id``, ``agent``, ``seed``, ``params``: the
            trial's record in the manifest); ``trial`` and ``step`` are always checked.

    Raises:
        RunStoreError: it is missing (the message lists the steps that exist), damaged, not
            data-only, or of another run, trial, agent, seed, sweep point or step.
    """
    path = _folder(run_path, trial) / f"step={step}{SUFFIX}"
    if path.is_dir():
        raise RunStoreError(f"corrupt checkpoint: {path} is a folder, not a checkpoint file")
    if not path.is_file():
        raise _missing(run_path, trial, step)
    try:
        meta, state = read_tree(path)
    except StateFormatError as e:
        raise RunStoreError(f"corrupt checkpoint: {e}") from None
    want = {**(expect or {}), "trial": trial, "step": step}
    if "params" in want:
        want["params"] = json.loads(json.dumps(want["params"], default=str))
    if meta.get("format") != FORMAT:
        raise RunStoreError(f"{path}: not a simlab checkpoint of format {FORMAT}")
    wrong = [f"{k} {meta.get(k)!r} (expected {v!r})" for k, v in want.items() if meta.get(k) != v]
    if wrong:
        raise RunStoreError(f"{path}: checkpoint of another trial: it records {', '.join(wrong)}")
    if not isinstance(state, dict) or state.get("t") != step:
        raise RunStoreError(f"{path}: corrupt checkpoint (its state is not of step {step})")
    return state


def newest_checkpoint(
    run_path: Path, trial: int, at_most: int, expect: dict[str, Any] | None = None
) -> tuple[int, dict[str, Any]] | None:
    """``(step, state)`` of the newest loadable checkpoint at or before ``at_most``.

    A damaged checkpoint is skipped for the one before it, with a :class:`SimlabWarning`;
    one of another run or trial is an error (it was put there, not cut by a crash).
    """
    for step in reversed([s for s in checkpoint_steps(run_path, trial) if s <= at_most]):
        try:
            return step, read_checkpoint(run_path, trial, step, expect)
        except RunStoreError as e:
            if "corrupt checkpoint" not in str(e):
                raise
            warnings.warn(
                f"trial {trial}: {e}; falling back to the previous checkpoint",
                SimlabWarning,
                stacklevel=2,
            )
    return None


def due_checkpoint(output: Any, done: int, steps: int) -> bool:
    """Whether a checkpoint is due after ``done`` steps (every C steps, never at the end)."""
    every = output.checkpoint_every
    return bool(every) and done % every == 0 and done < steps


def prune_checkpoints(run_path: Path, trial: int, keep: int) -> None:
    """Delete all but the ``keep`` newest checkpoints of ``trial`` (``keep`` 0: keep all)."""
    if keep <= 0:
        return
    for step in checkpoint_steps(run_path, trial)[:-keep]:
        (_folder(run_path, trial) / f"step={step}{SUFFIX}").unlink(missing_ok=True)
