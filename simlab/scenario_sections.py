"""The scenario's sections: world, components and agents, platform, measures, output, execution.

The pydantic models of the top-level sections of a scenario file (the whole file is
:class:`~simlab.scenario.Scenario`). Every name is re-exported by :mod:`simlab.scenario`.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from simlab.params import FEATURE_SCALE_MAX, StrictModel

__all__ = [
    "WorldSection",
    "ComponentSpec",
    "AgentSpec",
    "PlatformSection",
    "MeasuresSection",
    "OutputSection",
    "AgentResources",
    "LearnerSection",
    "ExecutionSection",
]


class WorldSection(StrictModel):
    """The latent space shared by users and content."""

    dim: int = Field(32, gt=0, le=4096, description="Dimension d of interest and item vectors.")
    num_topics: int = Field(16, gt=0, description="Number of latent topics (cluster centres).")
    topic_spread: float = Field(
        1.0,
        gt=0,
        le=FEATURE_SCALE_MAX,
        description="Scale of topic centres; larger = more separated topics.",
    )


class ComponentSpec(BaseModel):
    """A pluggable component: ``model`` names a registry entry, other keys are its params."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(description="Registered name, or 'module:Class' for your own class.")
    _params: BaseModel | None = PrivateAttr(default=None)
    _cls: type | None = PrivateAttr(default=None)

    @property
    def raw_params(self) -> dict[str, Any]:
        """The keys other than ``model`` as written in the scenario."""
        return dict(self.model_extra or {})

    @property
    def params(self) -> BaseModel:
        """The validated params (after :func:`parse_scenario` resolved the component)."""
        if self._params is None:
            raise RuntimeError(f"component '{self.model}' has not been resolved")
        return self._params

    @property
    def cls(self) -> type:
        """The resolved class."""
        if self._cls is None:
            raise RuntimeError(f"component '{self.model}' has not been resolved")
        return self._cls

    def resolved(self) -> dict[str, Any]:
        """``{"model": ..., **params with defaults}`` for the resolved scenario file."""
        out: dict[str, Any] = {"model": self.model}
        out.update(self.params.model_dump(mode="json"))
        return out


class AgentSpec(ComponentSpec):
    """One agent to compare; ``name`` labels it in metrics (defaults to ``model``)."""

    name: str | None = Field(
        None,
        description="Label in metrics and summaries (default the model name): at most 100 "
        "printable characters, no spaces at either end.",
    )
    rerankers: list[ComponentSpec] = Field(
        default_factory=list,
        description="Interventions for this agent only, applied in order after "
        "`platform.rerankers` (e.g. `[{model: calibration}, {model: fair, protected: aigc}]`).",
    )

    @field_validator("name")
    @classmethod
    def _check_label(cls, v: str | None) -> str | None:
        if v and (len(v) > 100 or v != v.strip() or not v.isprintable()):
            raise ValueError(
                "must be at most 100 printable characters, without control characters (a "
                "new line, a tab) or spaces at either end: it labels tables, plots and columns"
            )
        return v

    @property
    def label(self) -> str:
        """The agent's label: ``name`` or ``model``."""
        return self.name or self.model

    def resolved(self) -> dict[str, Any]:
        """Like :meth:`ComponentSpec.resolved`, with the label and its re-rankers."""
        out = super().resolved()
        out = {"model": out.pop("model"), "name": self.label, **out}
        if self.rerankers:
            out["rerankers"] = [r.resolved() for r in self.rerankers]
        return out


class PlatformSection(StrictModel):
    """Retrieval, serving, logging and the retrain schedule."""

    slate_size: int = Field(
        10,
        ge=0,
        description="K, items per slate; 0 = every candidate, ranked (as in Chaney et al., "
        "where users see the whole ranked catalog; the user model must accept slates of any "
        "length, as `chaney` does).",
    )
    max_candidates: int = Field(
        0,
        ge=0,
        description="Candidates per user; 0 = every live item. When the catalog is larger, "
        "each user gets a cheap random pre-selection of this many live items.",
    )
    history_length: int = Field(20, gt=0, description="H, clicked items per user in observations.")
    retrain_every: int = Field(5, gt=0, description="R, steps between retrains.")
    deploy_lag: int = Field(
        1, ge=1, description="D, a model retrained at the end of step t serves from step t + D."
    )
    log_window: int = Field(10, gt=0, description="Steps of impressions kept in the log.")
    knows_source: bool = Field(
        False, description="Whether agents see each item's source label (human/AIGC)."
    )
    rerankers: list[ComponentSpec] = Field(
        default_factory=list, description="Interventions applied in order after the agent."
    )
    rerank_depth: int = Field(
        0, ge=0, description="Items the agent ranks before re-ranking; 0 = 3 * slate_size."
    )
    exclude_consumed: bool = Field(
        False,
        description="No repeat consumption: an item a user clicked is never among that "
        "user's candidates again (each user shard keeps its users' consumed items).",
    )
    consumed_ranked: bool = Field(
        False,
        description="With `exclude_consumed`: a user's consumed items stay among the "
        "candidates, at the ranks the agent gives them, and the user passes over them (never "
        "chooses one again), as T-RECS's replication of Chaney et al. does; they take rank "
        "positions. False: they are removed from the candidates. Needs a user model that can "
        "pass over items (`chaney`).",
    )
    startup_steps: int = Field(
        0,
        ge=0,
        description="Start-up steps: the platform serves uniformly random rankings of "
        "`startup_candidates` (agents learn from their feedback but do not rank) and the "
        "first retrain comes after them; retrains then follow every `retrain_every` steps.",
    )
    startup_candidates: Literal["all", "new"] = Field(
        "all",
        description="Candidates during start-up: `all` (the usual retrieval) or `new` (only "
        "the items published at the step, as Chaney et al.'s start-up shows each step's new "
        "items in random order).",
    )

    def retrain_due(self, t: int) -> bool:
        """Whether the log is snapshotted for a retrain at the end of step ``t``."""
        done = t + 1 - self.startup_steps
        return done >= 0 and done % self.retrain_every == 0

    def warmup_steps(self) -> int:
        """Steps before the first retrained model serves (excluded from summaries).

        The first snapshot is taken at the end of step ``startup_steps - 1`` (with a
        start-up) or ``retrain_every - 1``, and its model serves ``deploy_lag`` steps later.
        """
        first = self.startup_steps - 1 if self.startup_steps else self.retrain_every - 1
        return first + self.deploy_lag


class MeasuresSection(StrictModel):
    """How often and on how much the expensive measures are computed."""

    every: int = Field(
        1,
        gt=0,
        le=1_000_000,
        description="Steps between the expensive population-wide measures (metric groups "
        "that declare themselves cadenced: `topics`); their columns are NaN on the steps "
        "between, and step 0 and the run's last step are always measured. Per-step "
        "measures (engagement, exposure, source, creators, ...) stay exact every step.",
    )
    pairwise_every: int = Field(
        1,
        gt=0,
        description="Steps between pairwise measures (echo/homogenization and "
        "echo/homogenization_nn); NaN on the steps between; the run's last step is always "
        "measured.",
    )
    pairwise_pairs: int = Field(
        2000,
        gt=0,
        description="User pairs in the deterministic sample of pairwise measures.",
    )


class OutputSection(StrictModel):
    """Where and what the run writes."""

    dir: str = Field("runs", description="Parent folder of run directories.")
    events: bool = Field(False, description="Also write the impression/response event log.")
    flush_seconds: float = Field(
        2.0, ge=0, description="Seconds between Parquet flushes of buffered metric rows."
    )
    checkpoint_every: int = Field(
        25,
        ge=0,
        description="Steps between checkpoints of each trial's world (0 = none); used by "
        "`simlab resume`, fault recovery and `--from RUN@STEP` forks.",
    )
    keep_checkpoints: int = Field(
        0, ge=0, description="Newest checkpoints kept per trial (0 = all, so any can be forked)."
    )
    snapshot_every: int = Field(
        10,
        ge=0,
        description="Steps between snapshots of sampled users' interests and item exposure "
        "(for the dashboard's Users and Lorenz views; 0 = none).",
    )
    snapshot_users: int = Field(
        500, gt=0, description="Users in each snapshot (evenly spaced ids, the same every time)."
    )


class AgentResources(StrictModel):
    """Ray resources of the trial actor that holds the agent."""

    num_cpus: float = Field(
        1.0, ge=0, le=1024, description="CPUs reserved for the actor that holds the agent."
    )
    num_gpus: float = Field(
        0.0,
        ge=0,
        le=64,
        description="GPUs for the actor that holds the agent (1 puts a GPU model such as "
        "`generative` on a GPU worker).",
    )


class LearnerSection(StrictModel):
    """The learner actor of a Ray trial: where the agent's ``update`` and ``retrain`` run."""

    actor: bool = Field(
        True,
        description="On Ray, when the agent serves from replicas and learns: run its `update` "
        "and `retrain` in a learner actor of their own, fed by the log partitions the user "
        "shards keep (see docs/scale.md); `false` learns in the trial actor.",
    )
    num_cpus: float = Field(
        1.0, ge=0, le=1024, description="CPUs reserved for the learner actor (every trial)."
    )
    num_gpus: float = Field(
        0.0,
        ge=0,
        le=64,
        description="GPUs for the learner actor (1 trains a torch model on a GPU worker while "
        "the replicas serve on the shards' CPUs).",
    )

    def bundle(self) -> dict[str, float]:
        """The learner's placement-group bundle: its CPUs and GPUs.

        A token CPU when it asks for neither (a bundle cannot be empty).
        """
        res = {k: v for k, v in (("CPU", self.num_cpus), ("GPU", self.num_gpus)) if v}
        return res or {"CPU": 0.001}


class ExecutionSection(StrictModel):
    """Where the trials run: in this process, or on Ray (embedded instance or a cluster)."""

    backend: Literal["ray", "local"] = Field(
        "ray",
        description="`ray` (user shard actors plus a trial actor holding the agent; an "
        "embedded local Ray instance unless `address` is given) or `local` (everything in "
        "this process).",
    )
    address: str | None = Field(
        None,
        description="Ray cluster to join: `auto` (the cluster this machine belongs to), "
        "`ray://host:port` (Ray Client) or `host:port` (a head node's GCS); none starts an "
        "embedded local instance.",
    )
    shards: int = Field(1, ge=1, le=4096, description="User shards (actors) per world.")
    shard_cpus: float = Field(
        1.0, gt=0, le=1024, description="CPUs reserved for each user shard actor."
    )
    agent_resources: AgentResources = Field(
        default_factory=AgentResources,
        description="Ray resources of the trial actor that holds the agent (every trial).",
    )
    learner: LearnerSection = Field(
        default_factory=LearnerSection,
        description="The learner actor: `actor` (on or off) and its `num_cpus`, `num_gpus`.",
    )
    serving: Literal["replicas", "central"] = Field(
        "replicas",
        description="On Ray, where slates are chosen: `replicas` (an agent that declares "
        "`serving = 'replica'` scores its users inside each user shard, on model state "
        "published through the object store once per retrain, and only slates come back) "
        "or `central` (the trial actor serves every user). Falls back to `central` for "
        "agents that need central state, with re-rankers and with no repeat consumption "
        "whose candidate lists a whole batch shapes.",
    )
    placement: Literal["pack", "spread"] = Field(
        "pack",
        description="How a trial's actors are placed on a cluster: `pack` onto as few nodes "
        "as possible (arrays pass without network copies), or `spread` over nodes (for "
        "populations larger than one node's memory).",
    )
    max_parallel_trials: int = Field(
        0,
        ge=0,
        le=100_000,
        description="Trials running at once; 0 = as many as the cluster's CPUs allow.",
    )
    workers: int = Field(
        1,
        ge=0,
        le=1024,
        description="Local backend: processes running trials side by side (0 = one per CPU); "
        "every trial's rows are the same whatever the number.",
    )
    threads: int = Field(
        1,
        ge=0,
        le=1024,
        description="BLAS and torch threads per trial process (0 = the libraries' default). "
        "One thread per process, and more processes for more cores, avoids spinning thread "
        "pools that slow numeric code down several times on a busy machine.",
    )
    max_restarts: int = Field(
        3,
        ge=0,
        le=1000,
        description="Times a trial is restored from its last checkpoint after a lost actor "
        "before the run fails.",
    )
    object_store_mb: int = Field(
        0,
        ge=0,
        le=1 << 22,
        description="Object store size of the embedded Ray instance in MiB (0 = 30% of "
        "memory, capped at 2 GiB).",
    )
    connect_timeout: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="Seconds to wait for the Ray cluster at `address` to answer before the "
        "run fails (exit code 2).",
    )

    @field_validator("address")
    @classmethod
    def _check_address(cls, v: str | None) -> str | None:
        if v is None or v == "auto":
            return v
        m = re.fullmatch(r"(ray://)?[A-Za-z0-9_.\-\[\]:]+:(\d{1,5})", v)
        if m and 0 < int(m.group(2)) < 65536:
            return v
        raise ValueError("expects `auto`, `ray://host:port` or `host:port` (port 1..65535)")

    def trial_cpus(self) -> float:
        """CPUs one Ray trial reserves: its shards, its agent and (when on) its learner."""
        cpus = self.shards * self.shard_cpus + self.agent_resources.num_cpus
        return cpus + (self.learner.num_cpus if self.learner.actor else 0)
