"""``simlab export RUN --format minari|obp|parquet``: a run's event log as an offline dataset.

The run must have been made with ``output.events: true``: its event log holds, per
impression, the context the agent saw (user features, the served item's features), the
action (the item and its slot), the user's response and the logging policy's propensity
(:mod:`simlab.logged`). Each format keeps all of it (``R`` impressions, ``K`` slots,
``f``/``d`` user/item feature dimensions):

* ``parquet``: ``events.parquet``, one row per impression: ``trial``, ``agent``, ``seed``,
  ``step``, ``user_id``, ``position``, ``item_id``, ``clicked``, ``engagement``, ``reward``,
  ``propensity``, ``user_features`` (``f``) and ``item_features`` (``d``) lists; the schema
  metadata says each trial's logging policy and the reward.
* ``obp``: per trial, ``trial=<i>/bandit_feedback.npz`` with the keys of Open Bandit
  Pipeline's ``BanditFeedback`` in its position-based form (one round per impression, as
  in the Open Bandit Dataset): ``n_rounds``, ``n_actions``, ``action`` (R,), ``position``
  (R,), ``reward`` (R,), ``pscore`` (R,), ``context`` (R, f), ``action_context`` (A, d),
  plus ``item_id`` (A,) mapping actions to simlab item ids, ``step`` and ``user_id``
  (R,); and ``meta.json``; ``obp.ope.OffPolicyEvaluation`` takes ``dict(np.load(...))``.
* ``minari``: per trial, a Minari dataset ``simlab/<run>-trial<i>-v0`` in the output folder
  (set ``MINARI_DATASETS_PATH`` to it, then ``minari.load_dataset(id)``): one episode per
  user, a step per visit; observation = the user features ``(f,)``, action = the served
  item ids ``(K,)``, reward, and infos ``propensity`` ``(K,)``, ``clicked_position``,
  ``engagement`` ``(K,)``, ``item_features`` ``(K, d)`` and ``step`` (the first info, for
  the episode's start, has no slate: ``propensity`` NaN, ``clicked_position`` -1). The log
  has no observation after a user's last visit, so an episode's final observation repeats
  its last one, and episodes end by truncation.

Propensities: agents that sample their slates log them (``logging_policy: sampled``);
deterministic agents log 1.0 (``deterministic``); agents that sample without a closed form,
and re-ranked slates, log NaN (``unknown``). Every format records which, and an export with
NaN propensities warns (:class:`PropensityWarning`; ``simlab export`` prints it as a note)
naming those trials: importance-weighted estimators return NaN on them. The platform's
start-up steps serve uniformly random slates whatever the agent and log 1/C.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from simlab.atomic import output_folder, replacing, write_text
from simlab.errors import DependencyNotInstalled, RunStoreError
from simlab.events import read_part
from simlab.logged import LOGGING_POLICIES, PropensityWarning, missing_propensities
from simlab.store import EVENTS, open_run

__all__ = ["FORMATS", "REWARDS", "PropensityWarning", "export_run", "read_events"]

FORMATS = ("parquet", "obp", "minari")
"""Export formats."""

REWARDS = ("engagement", "click")
"""What the exported reward is: the click's engagement (0 without a click) or the click."""

_NEEDED = ("propensity", "user_features", "item_features")


def read_events(run: str | Path, runs_dir: str | Path | None = None) -> tuple[Any, pd.DataFrame]:
    """``(store, events)`` of a run, with ``trial``, ``agent``, ``seed`` and ``logging_policy``.

    Raises:
        RunStoreError: the run has no event log, or one written before features and
            propensities were logged.
    """
    store = open_run(run, runs_dir)
    folder = store.path / EVENTS
    _check_written(store, folder)
    if not folder.is_dir() or not any(folder.rglob("*.parquet")):
        _check_whole(store)  # (a run whose every part was lost)
        raise RunStoreError(
            f"{store.path}: no event log to export; run the scenario with "
            "`--set output.events=true`"
        )
    events = _read_parts(folder)
    missing = [c for c in _NEEDED if c not in events.columns]
    if missing:
        raise RunStoreError(
            f"{store.path}: the event log has no {', '.join(missing)} (written by an older "
            "simlab); run the scenario again to export it"
        )
    trials = {t["index"]: t for t in store.manifest["trials"]}
    unknown = sorted(set(events["trial"].unique()) - set(trials))
    if unknown:
        raise RunStoreError(
            f"{store.events_folder(unknown[0])}: events of trial {unknown[0]}, which the run's "
            f"manifest does not have (trials 0..{len(trials) - 1})"
        )
    _check_whole(store)
    events["agent"] = events["trial"].map(lambda i: trials[i]["agent"])
    events["seed"] = events["trial"].map(lambda i: int(trials[i]["seed"]))
    events["logging_policy"] = events["trial"].map(
        lambda i: trials[i].get("logging_policy", "unknown")
    )
    order = ["trial", "step", "user_id", "position"]
    return store, events.sort_values(order, kind="stable").reset_index(drop=True)


def _check_written(store: Any, folder: Path) -> None:
    """Refuse a run whose events are not all in Parquet: still running, or stopped unflushed."""
    status = store.status
    if status in ("starting", "running"):
        raise RunStoreError(
            f"{store.path}: the run is still {status}; export it when it has ended (its latest "
            "events are not written to Parquet yet)"
        )
    journals = sorted(folder.rglob("_journal-*.arrows")) if folder.is_dir() else []
    if journals:
        trials = sorted({_trial_of(j) for j in journals})
        raise RunStoreError(
            f"{store.path}: the events of trial(s) {', '.join(map(str, trials))} are partly "
            f"still in their journals (the run is {status}: it stopped before writing them to "
            f"Parquet); `simlab resume {store.path}` folds them in and completes the run, then "
            "export it"
        )


def _check_whole(store: Any) -> None:
    """Refuse a run whose event log lacks or repeats a step of its metric rows."""
    lost = store.event_problems()
    if lost:
        i, (step, what) = next(iter(lost.items()))
        record = store.manifest["trials"][i]
        raise RunStoreError(
            f"{store.events_folder(i)}: trial {i} ({record['agent']}, seed {record['seed']}) "
            f"{what}; `simlab resume {store.path}` drops its rows from step {step} on and "
            "recomputes them with their events, then export it"
        )


def _read_parts(folder: Path) -> pd.DataFrame:
    """Every part under ``folder`` (``trial=<i>/part-*.parquet``) with its ``trial`` column."""
    frames = []
    for trial, _, part in sorted((_trial_of(p), p.name, p) for p in folder.rglob("*.parquet")):
        frame = read_part(part).to_pandas()
        frame["trial"] = np.int64(trial)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _trial_of(part: Path) -> int:
    """The trial of an event part, from its folder ``trial=<i>``."""
    name = part.parent.name
    if not (name.startswith("trial=") and name[6:].isdigit()):
        raise RunStoreError(f"{part}: an event log part outside a `trial=<i>` folder")
    return int(name[6:])


def _policies(events: pd.DataFrame) -> dict[str, str]:
    """Trial index -> logging policy (as strings, for JSON)."""
    firsts = events.groupby("trial")["logging_policy"].first()
    return {str(k): v for k, v in firsts.items()}


def export_run(
    run: str | Path,
    fmt: str,
    out: str | Path | None = None,
    runs_dir: str | Path | None = None,
    reward: str = "engagement",
) -> list[Path]:
    """Export a run's event log (see the module docstring); returns the written paths.

    Args:
        run: the run directory, or a run id under ``runs_dir``.
        fmt: one of :data:`FORMATS`.
        out: the output folder (default ``<run>/export/<fmt>``).
        runs_dir: where run ids are looked up.
        reward: one of :data:`REWARDS`.

    Raises:
        ValueError: an unknown format or reward.
        RunStoreError: the run has no (complete) event log.
        DependencyNotInstalled: ``minari`` is missing for the Minari format.
    """
    if fmt not in FORMATS:
        raise ValueError(f"Expects `format` in {list(FORMATS)}, actual value: {fmt!r}")
    if reward not in REWARDS:
        raise ValueError(f"Expects `reward` in {list(REWARDS)}, actual value: {reward!r}")
    store, events = read_events(run, runs_dir)
    events["reward"] = (
        events["engagement"].astype(np.float64)
        if reward == "engagement"
        else events["clicked"].astype(np.float64)
    )
    folder = output_folder(Path(out) if out is not None else store.path / "export" / fmt, "export")
    writer = {"parquet": _parquet, "obp": _obp, "minari": _minari}[fmt]
    paths = writer(store, events, folder, reward)
    note = missing_propensities(events)
    if note:
        warnings.warn(note, PropensityWarning, stacklevel=2)
    return paths


def _parquet(store, events: pd.DataFrame, folder: Path, reward: str) -> list[Path]:
    cols = [
        "trial", "agent", "seed", "step", "user_id", "position", "item_id", "clicked",
        "engagement", "reward", "propensity", "user_features", "item_features",
    ]  # fmt: skip
    table = pa.Table.from_pandas(events[cols], preserve_index=False)
    meta = {
        "run_id": store.run_id,
        "reward": reward,
        "logging_policy": _policies(events),
        "logging_policies": LOGGING_POLICIES,
    }
    table = table.replace_schema_metadata({"simlab": json.dumps(meta)})
    path = folder / "events.parquet"
    with replacing(path) as tmp:  # whole or not at all (an interrupted export)
        pq.write_table(table, tmp)
    return [path]


def _obp(store, events: pd.DataFrame, folder: Path, reward: str) -> list[Path]:
    paths = []
    for trial, ev in events.groupby("trial", sort=True):
        item_ids, action = np.unique(ev["item_id"].to_numpy(), return_inverse=True)
        first = ev.drop_duplicates("item_id").set_index("item_id")["item_features"]
        sub = folder / f"trial={trial}"
        sub.mkdir(exist_ok=True)
        path = sub / "bandit_feedback.npz"
        with replacing(path) as tmp, open(tmp, "wb") as f:  # (a file: savez adds no suffix)
            np.savez(
                f,
                n_rounds=np.int64(len(ev)),
                n_actions=np.int64(item_ids.size),
                action=action.astype(np.int64),
                position=ev["position"].to_numpy(np.int64),
                reward=ev["reward"].to_numpy(np.float64),
                pscore=ev["propensity"].to_numpy(np.float64),
                context=np.stack(ev["user_features"].to_numpy()).astype(np.float64),
                action_context=np.stack(first.loc[item_ids].to_numpy()).astype(np.float64),
                item_id=item_ids.astype(np.int64),
                step=ev["step"].to_numpy(np.int64),
                user_id=ev["user_id"].to_numpy(np.int64),
            )
        policy = ev["logging_policy"].iloc[0]
        meta = {
            "run_id": store.run_id,
            "trial": int(trial),
            "agent": ev["agent"].iloc[0],
            "seed": int(ev["seed"].iloc[0]),
            "reward": reward,
            "len_list": int(ev["position"].max()) + 1,
            "logging_policy": policy,
            "pscore": LOGGING_POLICIES[policy]
            + "; a per-slot marginal (the position-based form of the Open Bandit Dataset)",
        }
        write_text(sub / "meta.json", json.dumps(meta, indent=2))
        paths += [path, sub / "meta.json"]
    return paths


def _minari(store, events: pd.DataFrame, folder: Path, reward: str) -> list[Path]:
    for trial, ev in events.groupby("trial", sort=True):  # every trial, before writing any
        sizes = ev.groupby(["user_id", "step"]).size()
        if sizes.min() != sizes.max():
            raise RunStoreError(
                f"{store.path}: the slates of trial {trial} hold from {sizes.min()} to "
                f"{sizes.max()} items (with `platform.slate_size: 0` every candidate is ranked); "
                "a Minari dataset has one action shape: export this run as parquet or obp"
            )
    try:
        import minari
        from gymnasium import spaces
        from minari.data_collector import EpisodeBuffer
    except ImportError as e:
        raise DependencyNotInstalled(
            "exporting to Minari needs minari: pip install 'minari[create,arrow]>=0.5.4'"
        ) from e
    # Minari writes into MINARI_DATASETS_PATH and refuses an existing id: each dataset is
    # made in a hidden staging folder, then moved over an earlier export of the same run
    staging = folder / f".minari-{os.getpid()}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    before = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(staging.resolve())
    paths = []
    try:
        for trial, ev in events.groupby("trial", sort=True):
            dataset_id = f"simlab/{_minari_name(store.run_id)}-trial{trial}-v0"
            buffers, obs_space, act_space = _episodes(ev, EpisodeBuffer, spaces)
            with warnings.catch_warnings():  # by design: no environment to evaluate or spec
                warnings.filterwarnings(
                    "ignore", message=r".*(eval_env|env_spec)`? is", module="minari"
                )
                minari.create_dataset_from_buffers(
                    dataset_id=dataset_id,
                    buffer=buffers,
                    observation_space=obs_space,
                    action_space=act_space,
                    algorithm_name=f"simlab agent {ev['agent'].iloc[0]}",
                    author="simlab",
                    author_email="n/a",
                    code_permalink="n/a",
                    description=(
                        f"simlab run {store.run_id}, trial {trial} (seed "
                        f"{ev['seed'].iloc[0]}): one episode per user; reward = {reward}; "
                        f"propensities: {LOGGING_POLICIES[ev['logging_policy'].iloc[0]]}"
                    ),
                    data_format="arrow",
                )
            paths.append(_move_over(staging / dataset_id, folder / dataset_id))
        for meta in staging.glob("*/namespace_metadata.json"):  # Minari's, of "simlab/"
            os.replace(meta, folder / meta.relative_to(staging))
    finally:
        if before is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = before
        shutil.rmtree(staging, ignore_errors=True)
    return paths


def _move_over(made: Path, target: Path) -> Path:
    """Put the folder ``made`` at ``target``, replacing an earlier one (never half of one)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    old = target.with_name(f".{target.name}.old.tmp")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(made, target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def _minari_name(run_id: str) -> str:
    """A run id as a Minari dataset name (letters, digits, ``_`` and ``-``)."""
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in run_id).strip("-") or "run"


def _episodes(ev: pd.DataFrame, buffer_cls, spaces) -> tuple[list, Any, Any]:
    """One ``EpisodeBuffer`` per user of one trial's events, and the dataset's spaces."""
    k = int(ev["position"].max()) + 1
    f = len(ev["user_features"].iloc[0])
    d = len(ev["item_features"].iloc[0])
    obs_space = spaces.Box(-np.inf, np.inf, (f,), np.float32)
    act_space = spaces.Box(0, int(ev["item_id"].max()), (k,), np.int64)  # bounds inclusive
    buffers = []
    for n, (user, u) in enumerate(ev.groupby("user_id", sort=True)):
        visits = u.groupby("step", sort=True)
        steps = np.array(list(visits.groups), np.int64)
        t = steps.size
        users = np.stack(visits["user_features"].first().to_numpy()).astype(np.float32)
        clicked = u["clicked"].to_numpy().reshape(t, k)
        engagement = u["engagement"].to_numpy(np.float32).reshape(t, k)
        pos = np.where(clicked.any(axis=1), clicked.argmax(axis=1), -1).astype(np.int64)
        # 1-D infos as lists: minari 0.5's Arrow storage cannot read 1-D arrays back
        infos = {
            "user_id": [int(user)] * (t + 1),
            "step": [-1, *steps.tolist()],
            "propensity": np.concatenate(
                [np.full((1, k), np.nan), u["propensity"].to_numpy().reshape(t, k)]
            ),
            "clicked_position": [-1, *pos.tolist()],
            "engagement": np.concatenate([np.zeros((1, k), np.float32), engagement]),
            "item_features": np.concatenate(
                [
                    np.zeros((1, k, d), np.float32),
                    np.stack(u["item_features"].to_numpy()).reshape(t, k, d).astype(np.float32),
                ]
            ),
        }
        rewards = u["reward"].to_numpy().reshape(t, k).sum(axis=1)
        buffers.append(
            buffer_cls(
                id=n,
                observations=np.concatenate([users, users[-1:]]),
                actions=u["item_id"].to_numpy(np.int64).reshape(t, k),
                rewards=list(rewards),
                terminations=[False] * t,
                truncations=[False] * (t - 1) + [True],
                infos=infos,
            )
        )
    return buffers, obs_space, act_space


# ---------------------------------------------------------------------- command line
def add_export_parser(sub: Any) -> None:
    """Add ``simlab export`` to the CLI's subparsers."""
    from simlab.cli_parser import path_arg

    p = sub.add_parser(
        "export",
        help="write a run's event log as an offline dataset (Minari, Open Bandit Pipeline, "
        "Parquet) with features, actions, rewards and propensities",
    )
    p.add_argument("run", type=path_arg, help="run directory (with output.events: true) or id")
    p.add_argument("--format", required=True, choices=FORMATS, help="dataset format")
    p.add_argument("--out", type=path_arg, help="output folder (default: <run>/export/<fmt>)")
    p.add_argument("--reward", default="engagement", choices=REWARDS, help="the reward")
    p.add_argument("--dir", type=path_arg, default="runs", help="folder of run directories")
