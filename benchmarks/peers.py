"""Peer benchmarks: simlab against RecSim NG and T-RECS on matched workloads, side by side.

One invocation creates (or reuses) the peers' own Python environments (``simlab extras
recsim-ng`` and ``simlab extras trecs``), then runs each pair at each scale, every run in a
fresh subprocess so peak memory (``ru_maxrss`` of that process) is measured the same way
for both sides, and prints user-steps/s, peak memory and the ratio simlab/peer. One
user-step is one user served one slate and responding. Rates are steady state: one-off
set-up (imports, network construction, graph tracing, warm-up steps) is excluded from the
rate and reported separately.

Pairs:

- **RecSim NG interest evolution** (``peers_workers/recsim_ng_bench.py``): RecSim NG's
  ``recsys_partially_observable_rl`` simulation as shipped (its interest-evolution users,
  frozen topic/quality corpus, and its stock ``CollabFilteringRecommender``), traced once
  and then timed over ``horizon`` steps. simlab runs its native ``interest-evolution``
  users and ``recsim-corpus`` content with the same users, documents, slate, topics and
  horizon. Its default agent, ``recsim-cf`` (:class:`RecSimCFAgent`, defined here), is a
  numpy port of RecSim NG's stock recommender: the same untrained network (embed each
  user's last 15 consumed documents and consumed times, two dense layers, score every user
  against every document) and the same slate distribution (iterated multinomial logit,
  ``K`` draws without replacement, one uniform per slot as TensorFlow's categorical sampler
  draws, keyed through ``simlab.rng``), so both sides do the same work per step.
- **T-RECS ContentFiltering** (``peers_workers/trecs_bench.py``): ``trecs.models.
  ContentFiltering`` with random binary item attributes and Gaussian user profiles; every
  step it scores every user against every item, shows each user its top
  ``num_items_per_iter``, and refits every user's profile by non-negative least squares
  on the interactions so far. simlab runs ``logit`` users (all active every step) and a
  static ``creators`` catalog with the same users, items, attribute dimension (``world.dim``)
  and slate, and a content-based agent that learns every step: ``linucb`` (ridge
  regression of clicks on content features, updated online each step, scoring every user
  against every item) by default; ``mf`` (per-user vectors over item features, refitted
  from the log every step) and others on request.

Each pair also gets a ``popularity`` row by default: simlab's cheapest agent (item click
counts), whose rate is the ceiling of simlab's loop at that size (not an equal-work
comparison). ``--recsim-agents``/``--trecs-agents`` choose the rows' agents (any registered
agent, or ``recsim-cf``). ``--profile`` adds the simlab runs' top functions (ms per step);
``--threads N`` caps BLAS/TensorFlow threads in every run (the rates of small-matrix BLAS
calls suffer badly when a core is busy with something else); ``--json`` keeps every record.
Every measurement runs ``--repeats`` times (default 3), each in a fresh process, and the
runs of one pair and scale are interleaved (peer, simlab agent, ..., peer, simlab agent,
...) so load from other work falls on every side alike. The table gives each side's median
rate (the headline ratio is median over median) and its fastest run (the minimum time: the
least disturbed run), and every run records the 1-minute load average when it started.
RecSim NG's ``execute(H)`` serves every user ``H + 1`` slates (its initial value holds a
first slate and response) and is counted so; it is also run with one thread (TensorFlow
and BLAS) and the ratio is taken against the faster of its two settings. simlab runs as
``simlab run`` does, with ``execution.threads`` (1 by default) BLAS/torch threads. Inside a
RecSim NG run of up to 200k user-steps the timed ``execute`` is repeated three times (the
fastest counts). T-RECS runs one warm-up step and ``--trecs-steps`` timed steps; simlab at
least five for a steadier rate.

    python benchmarks/peers.py [--quick] [--scales small large] [--steps N] [--trecs-steps N]
        [--recsim-agents recsim-cf popularity] [--trecs-agents linucb popularity]
        [--repeats 3] [--threads N] [--profile] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from simlab.agents.base import Agent
from simlab.batch import Feedback, Observation, Slates
from simlab.rng import Stream, numpy_generator
from simlab.scenario import ParamsModel

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from peers_sampler import (  # noqa: E402 - after the path
    block_width,
    draw_from_blocks,
    iterated_logit_draws,
    logit_draws_,
    logit_weights_,
)

__all__ = [
    "RecSimCFAgent",
    "block_width",
    "draw_from_blocks",
    "iterated_logit_draws",
    "logit_draws_",
    "logit_weights_",
]
WORKERS = HERE / "peers_workers"
ATTRIBUTES = 32
"""T-RECS ``num_attributes`` = simlab ``world.dim`` of the T-RECS pair."""
RECSIM_TOPICS = 2
"""RecSim NG's interest-evolution default number of topics (= simlab ``world.dim``)."""
RECSIM_HISTORY = 15
"""RecSim NG's ``history_length`` of the stock recommender."""


@dataclass(frozen=True)
class Scale:
    """Sizes of one scale of both pairs.

    Attributes:
        users: users of the RecSim NG pair.
        docs: documents of the RecSim NG pair.
        slate: slate size of the RecSim NG pair.
        steps: horizon of the RecSim NG pair (timed steps on both sides).
        trecs_users: users of the T-RECS pair.
        trecs_items: items of the T-RECS pair.
        trecs_slate: T-RECS ``num_items_per_iter`` (= simlab slate size).
        trecs_steps: timed steps of the T-RECS pair (T-RECS is slow: few steps).
    """

    users: int
    docs: int
    slate: int
    steps: int
    trecs_users: int
    trecs_items: int
    trecs_slate: int
    trecs_steps: int


SCALES = {
    "small": Scale(1000, 100, 2, 100, 1000, 100, 2, 5),
    "large": Scale(10_000, 500, 5, 50, 10_000, 500, 5, 2),
}
QUICK = {
    "small": Scale(500, 50, 2, 10, 200, 50, 2, 2),
    "large": Scale(2000, 200, 5, 10, 1000, 100, 5, 1),
}
WARMUP = 2
"""simlab steps run before the timed ones (first-call costs: imports, first retrain)."""


# ============================================================================ simlab agent


class RecSimCFAgent(Agent):
    """A numpy port of RecSim NG's stock ``CollabFilteringRecommender`` (untrained).

    RecSim NG's interest-evolution recommender (recsim-ng 0.1.2,
    ``applications/recsys_partially_observable_rl/recommender.py``) keeps each user's last
    ``history_length`` consumed documents and consumed times (updated only for users who
    chose a document), embeds the documents, flattens ``[embedding, consumed time]`` over
    the history, maps it through ``Dense(32) -> LeakyReLU -> Dense(embed_dim)`` to a user
    embedding, scores every document by the inner product with a second document embedding
    and samples the slate by iterated multinomial logit over the scores (``K`` draws
    without replacement). Its weights are random and never trained in a simulation run;
    so are these. The slate draws are :func:`iterated_logit_draws` with ``K`` uniforms per
    user keyed by (user, step) through ``simlab.rng``.

    Args:
        params: :class:`RecSimCFAgent.Params`.
        ctx: the world context.
    """

    class Params(ParamsModel):
        """Scenario keys of the ``recsim-cf`` benchmark agent."""

        embed_dim: int = Field(32, gt=0, description="Document embedding dimension.")
        hidden: int = Field(32, gt=0, description="Units of the first dense layer.")
        history_length: int = Field(
            RECSIM_HISTORY, gt=0, description="Consumed documents remembered per user."
        )
        leaky_slope: float = Field(
            0.3, ge=0, description="Negative slope of the LeakyReLU (Keras' default 0.3)."
        )
        sample: bool = Field(
            True,
            description="Sample slates by iterated multinomial logit like RecSim NG (True) "
            "or take the top K scores (False).",
        )

    def __init__(self, params: Params, ctx: Any) -> None:
        super().__init__(params, ctx)
        p = params
        self._docs = np.zeros((ctx.num_users, p.history_length), np.int64)  # 0 = no document
        self._ctime = np.zeros((ctx.num_users, p.history_length), np.float32)
        self._weights: dict[str, np.ndarray] | None = None
        self._draws = Stream(self.seed, "agent/recsim-cf/slate")
        self._torch: dict[str, Any] | None = None  # torch views, rebuilt after unpickling

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_torch": None}

    def _build(self, num_docs: int) -> dict[str, np.ndarray]:
        """Random weights like Keras' initialisers (truncated normal embeddings, Glorot)."""
        p = self.params
        gen = numpy_generator(self.seed, "agent/recsim-cf/init")

        def truncated(shape: tuple[int, ...]) -> np.ndarray:
            x = gen.standard_normal(shape)
            bad = np.abs(x) > 2.0
            while bad.any():  # redraw beyond two standard deviations, as TF does
                x[bad] = gen.standard_normal(int(bad.sum()))
                bad = np.abs(x) > 2.0
            return x.astype(np.float32)

        def glorot(n_in: int, n_out: int) -> np.ndarray:
            lim = np.sqrt(6.0 / (n_in + n_out))
            return gen.uniform(-lim, lim, (n_in, n_out)).astype(np.float32)

        n_in = p.history_length * (p.embed_dim + 1)
        doc = np.zeros((num_docs + 1, p.embed_dim + 1), np.float32)  # last column: time
        doc[:, :-1] = truncated((num_docs + 1, p.embed_dim))  # row 0: the "null" document
        return {
            "doc": doc,
            "proposal": truncated((num_docs + 1, p.embed_dim)),
            "w1": glorot(n_in, p.hidden),
            "w2": glorot(p.hidden, p.embed_dim),
        }

    def _torch_weights(self, num_docs: int) -> dict[str, Any]:
        """The weights as torch tensors, the first dense layer folded into the documents.

        ``[embedding, time]`` of history slot ``h`` times the slot's rows of ``w1`` is, for
        the embedding part, a row of ``slot_doc[h] = doc_embedding @ w1[h rows]``: the first
        layer is a sum of ``H`` gathered rows (an ``embedding_bag``) plus ``time @ w1_time``,
        the same function as the flattened ``(B, H * (E + 1)) @ w1`` product.
        """
        import torch

        if self._weights is None:
            self._weights = self._build(num_docs)
        if self._torch is None:
            p, w = self.params, self._weights
            e = p.embed_dim
            w1 = w["w1"].reshape(p.history_length, e + 1, p.hidden)  # (H, E + 1, hidden)
            slot_doc = np.einsum("ne,heo->hno", w["doc"][:, :e], w1[:, :e])  # (H, N + 1, hidden)
            self._torch = {
                "slot_doc": torch.from_numpy(slot_doc.reshape(-1, p.hidden).copy()),
                "w1_time": torch.from_numpy(np.ascontiguousarray(w1[:, e])),  # (H, hidden)
                "w2": torch.from_numpy(w["w2"]),
                "proposal": torch.from_numpy(w["proposal"]),
                "num_rows": slot_doc.shape[1],
            }
        return self._torch

    def _users(self, obs: Observation) -> Any:
        """``(B, embed_dim)`` float32 tensor: the user embeddings of the served users."""
        import torch
        import torch.nn.functional as F

        p = self.params
        tw = self._torch_weights(int(obs.catalog.item_ids.max()) + 1)
        n = tw["num_rows"]
        slots = torch.from_numpy(self._docs[obs.user_ids])  # (B, H) document ids, 0 = none
        slots += torch.arange(p.history_length) * n  # row of slot h's table
        h = F.embedding_bag(slots, tw["slot_doc"], mode="sum")  # (B, hidden)
        h.addmm_(torch.from_numpy(self._ctime[obs.user_ids]), tw["w1_time"])
        h = F.leaky_relu(h, p.leaky_slope)
        return h @ tw["w2"]

    def scores(self, obs: Observation) -> np.ndarray:
        """``(B, C)`` scores of every candidate document for every served user."""
        users = self._users(obs)
        tw = self._torch
        cands = obs.candidates[0] if obs.shared_candidates else obs.candidates
        docs = tw["proposal"][np.asarray(cands) + 1]  # simlab document i is RecSim NG's i + 1
        if obs.shared_candidates:
            return (users @ docs.T).numpy()
        return (users.unsqueeze(1) * docs).sum(-1).numpy()

    def act(self, obs: Observation) -> Slates:
        """Slates drawn by iterated multinomial logit over the scores (or their top K).

        Users are scored and their scores turned into softmax weights and block masses in
        blocks of :attr:`BLOCK` rows (a block's ``(rows, C)`` scores stay in cache from the
        product to the masses), into one ``(B, W)`` buffer reused from step to step; then
        every user's slate is drawn by a few batched calls over all rows.
        """
        import torch

        k = obs.slate_size
        if not obs.shared_candidates:
            return self._slates(obs, self.scores(obs), k)
        users = self._users(obs)
        c = obs.candidates.shape[1]
        width = block_width(c)
        docs_t = torch.zeros((users.shape[1], width), dtype=torch.float32)  # (E, W) padded
        docs_t[:, :c] = self._torch["proposal"][obs.candidates[0] + 1].T
        b = users.shape[0]
        u = torch.from_numpy(self._draws.uniform(obs.user_ids, obs.step, size=k))
        rows = max(1, min(b, self.BLOCK * 512 // max(c, 1)))
        buf = self._buffer((b, width))  # the whole step's weights, reused step to step
        if not self.params.sample:
            idx = torch.empty((b, k), dtype=torch.int64)
        else:
            nblocks = width // max(1, int(np.ceil(np.sqrt(c))))
            blocks = torch.empty((b, nblocks), dtype=torch.float64)
        for lo in range(0, b, rows):  # scores and weights block by block, in cache
            hi = min(b, lo + rows)
            s = torch.mm(users[lo:hi], docs_t, out=buf[lo:hi])
            if self.params.sample:
                blocks[lo:hi] = logit_weights_(s, c)
            else:
                idx[lo:hi] = torch.topk(s[:, :c], k, dim=1).indices
        if self.params.sample:  # the draws over all rows at once: few batched calls
            idx = draw_from_blocks(buf, blocks, c, u)
        return Slates(obs.user_ids, obs.candidates[0][idx.numpy()])

    BLOCK = 1024
    """Rows per block at 512 candidates (fewer rows for more candidates): 2 MB of scores
    stay in cache from the product to the block masses."""

    def _buffer(self, shape: tuple[int, int]) -> Any:
        """A float32 scratch tensor of ``shape`` kept between steps (fresh memory is slow)."""
        import torch

        buf = self._torch.get("buffer")
        if buf is None or buf.shape[1] != shape[1] or buf.shape[0] < shape[0]:
            buf = self._torch["buffer"] = torch.empty(shape, dtype=torch.float32)
        return buf[: shape[0]]

    def _slates(self, obs: Observation, s: np.ndarray, k: int) -> Slates:
        """Slates from ``(B, C)`` per-user-candidate scores (the unshared case)."""
        import torch

        if self.params.sample:
            idx = iterated_logit_draws(s, self._draws.uniform(obs.user_ids, obs.step, size=k))
        else:
            idx = torch.topk(torch.from_numpy(s), k, dim=1).indices.numpy()
        return Slates(obs.user_ids, np.take_along_axis(obs.candidates, idx, axis=1))

    def update(self, feedback: Feedback) -> None:
        """Append each choosing user's document and consumed time to their history."""
        chose = feedback.clicked
        who = feedback.user_ids[chose]
        if who.size == 0:
            return
        self._docs[who] = np.roll(self._docs[who], -1, axis=1)
        self._docs[who, -1] = feedback.clicked_items[chose] + 1
        self._ctime[who] = np.roll(self._ctime[who], -1, axis=1)
        self._ctime[who, -1] = feedback.engagement[chose]


# ============================================================================ simlab side


def recsim_scenario(scale: Scale, steps: int, agent: str) -> dict[str, Any]:
    """The simlab world matched to RecSim NG's interest evolution at ``scale``."""
    return {
        "name": "peers-recsim-ng",
        "steps": steps,
        "world": {"dim": RECSIM_TOPICS, "num_topics": RECSIM_TOPICS},
        "users": {"model": "interest-evolution", "num_users": scale.users},
        "content": {"model": "recsim-corpus", "num_docs": scale.docs},
        "platform": {"slate_size": scale.slate, "history_length": RECSIM_HISTORY},
        "metrics": ["engagement"],  # RecSim NG's run computes reward and its running sum
        "agents": [{"model": agent}],
    }


def trecs_scenario(scale: Scale, steps: int, agent: str) -> dict[str, Any]:
    """The simlab world matched to T-RECS ContentFiltering at ``scale``."""
    return {
        "name": "peers-trecs",
        "steps": steps,
        "world": {"dim": ATTRIBUTES, "num_topics": 16},
        # T-RECS serves every user every step and has no churn
        "users": {
            "model": "logit",
            "num_users": scale.trecs_users,
            "return_prob": 1.0,
            "return_spread": 0.0,
        },
        # a static catalog: no new items, none retires within the run
        "content": {
            "model": "creators",
            "initial_items": scale.trecs_items,
            "items_per_step": 0,
            "lifetime": 10**6,
        },
        # T-RECS retrains after every step (train_between_steps=True)
        "platform": {"slate_size": scale.trecs_slate, "retrain_every": 1},
        "metrics": ["engagement"],
        "agents": [{"model": agent}],
    }


def simlab_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one simlab world in this (fresh) process and time it (the child's entry point).

    ``spec`` has ``pair`` (``recsim-ng`` or ``trecs``), ``scale`` (a :class:`Scale` as a
    dict), ``agent``, ``steps`` (timed), ``warmup`` and ``profile`` (the timed steps run
    under cProfile, whose top functions by own time join the record).
    """
    from simlab import registry
    from simlab.execution.threads import ThreadLimit
    from simlab.scenario import parse_scenario
    from simlab.world import World

    registry.register("agents", "recsim-cf", RecSimCFAgent)
    scale = Scale(**spec["scale"])
    steps, warmup = int(spec["steps"]), int(spec["warmup"])
    build = recsim_scenario if spec["pair"] == "recsim-ng" else trecs_scenario
    scenario = parse_scenario(build(scale, warmup + steps, spec["agent"]))
    load = os.getloadavg()[0]
    t1 = time.perf_counter()
    # as `simlab run` does; restored on return (the worker may run in-process)
    with ThreadLimit(scenario.execution.threads) as limit:
        world = World(scenario, 0, seed=int(spec.get("seed", 0)))
        limit.settle()  # the agent may have imported torch
        for t in range(warmup):
            world.step(t)
        profiler = None
        if spec.get("profile"):
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        t2 = time.perf_counter()
        user_steps, engagement = 0, 0.0
        for t in range(warmup, warmup + steps):
            row = world.step(t)
            user_steps += int(row["users/active"])
            engagement += float(row["engagement/mean"]) * int(row["users/active"])
        timed = time.perf_counter() - t2
        record = {
            "side": "simlab",
            "agent": spec["agent"],
            "user_steps_per_s": user_steps / timed,
            "steady_s": timed,
            "steps": steps,
            "setup_s": t2 - t1,
            "reward_per_user_step": engagement / max(user_steps, 1),
            "load_average": load,
            "threads": scenario.execution.threads,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        }
        if profiler is not None:
            profiler.disable()
            record["profile"] = _top_functions(profiler, steps)
        return record


def _top_functions(profiler: Any, steps: int, n: int = 12) -> list[list[Any]]:
    """``[[function, ms per step (own time), ms per step (with callees)], ...]``, top ``n``."""
    import pstats

    stats = pstats.Stats(profiler).stats
    rows = []
    for (path, line, name), (_, _, own, total, _) in stats.items():
        where = f"{Path(path).parent.name}/{Path(path).name}:{line}({name})" if line else name
        rows.append([where, 1e3 * own / steps, 1e3 * total / steps])
    return sorted(rows, key=lambda r: -r[1])[:n]


# ============================================================================ orchestration


class PeerError(RuntimeError):
    """A benchmark subprocess failed (its output's tail is in the message)."""


def child_env(threads: int | None) -> dict[str, str]:
    """The environment of every subprocess: quiet logs and, optionally, capped threads."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONWARNINGS="ignore")
    if threads:
        for var in (
            "OMP_NUM_THREADS",
            "OPENBLAS_NUM_THREADS",
            "MKL_NUM_THREADS",
            "TF_NUM_INTRAOP_THREADS",
            "TF_NUM_INTEROP_THREADS",
        ):
            env[var] = str(threads)
    return env


def run_child(cmd: list[str], timeout: float, env: dict[str, str]) -> dict[str, Any]:
    """Run a worker subprocess that writes one JSON record to ``--out``; return the record.

    Raises:
        PeerError: the worker failed, wrote nothing or ran past ``timeout`` seconds.
    """
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        try:
            done = subprocess.run(  # in the temporary folder: T-RECS writes ./trecs.log
                [*cmd, "--out", str(out)],
                capture_output=True,
                text=True,
                env=env,
                timeout=timeout,
                cwd=tmp,
            )
        except subprocess.TimeoutExpired as e:
            raise PeerError(f"`{' '.join(cmd)}` ran past {timeout:.0f} s (--timeout)") from e
        if done.returncode != 0 or not out.exists():
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
            raise PeerError(f"`{' '.join(cmd)}` failed (exit {done.returncode}):\n{tail}")
        return json.loads(out.read_text())


def ensure_envs(names: list[str]) -> dict[str, Path]:
    """The Python of each peer environment, created when missing; exits with a clear error."""
    from simlab import extras
    from simlab.errors import DependencyNotInstalled

    pythons = {}
    for name in names:
        try:
            pythons[name] = extras.ensure(name, log=lambda line: _progress(f"  {line}"))
        except (DependencyNotInstalled, OSError) as e:  # OSError: cannot write the folder
            sys.exit(
                f"benchmarks/peers.py: cannot create the '{name}' environment at "
                f"{extras.env_dir(name)}, which the {name} pair needs.\n{e}\n"
                f"Retry with `python -m simlab extras {name}` (it needs PyPI once), or "
                f"leave the pair out with --pairs."
            )
    return pythons


def simlab_cmd(pair: str, scale: Scale, agent: str, steps: int, profile: bool) -> list[str]:
    """The command that runs one simlab world in a fresh process of this Python."""
    spec = {"pair": pair, "scale": asdict(scale), "agent": agent, "steps": steps}
    spec.update(warmup=WARMUP, profile=profile)
    return [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]


def recsim_cmd(python: Path, scale: Scale, steps: int) -> list[str]:
    """The command that runs RecSim NG's simulation in its environment.

    Short runs (up to 200k user-steps, a second or less) are timed three times and the
    fastest counts.
    """
    repeats = 3 if scale.users * steps <= 200_000 else 1
    return [
        str(python),
        str(WORKERS / "recsim_ng_bench.py"),
        *("--users", str(scale.users), "--docs", str(scale.docs), "--slate", str(scale.slate)),
        *("--horizon", str(steps), "--topics", str(RECSIM_TOPICS)),
        *("--history", str(RECSIM_HISTORY), "--repeats", str(repeats)),
    ]


def trecs_cmd(python: Path, scale: Scale, steps: int) -> list[str]:
    """The command that runs T-RECS ContentFiltering in its environment."""
    return [
        str(python),
        str(WORKERS / "trecs_bench.py"),
        *("--users", str(scale.trecs_users), "--items", str(scale.trecs_items)),
        *("--attributes", str(ATTRIBUTES), "--slate", str(scale.trecs_slate)),
        *("--steps", str(steps)),
    ]


@dataclass
class Row:
    """One line of the table: the peer's runs and simlab's runs of the same workload.

    ``peer`` and ``simlab`` are summaries (:func:`summarise`) of interleaved repeats;
    ``peer_1t`` is the peer with one thread (RecSim NG only; ``None`` otherwise).
    """

    pair: str
    scale: str
    sizes: str
    agent: str
    peer: dict[str, Any]
    simlab: dict[str, Any]
    peer_1t: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        """``pair / simlab agent``."""
        return f"{self.pair} / {self.agent}"

    def _peers(self) -> list[dict[str, Any]]:
        return [p for p in (self.peer, self.peer_1t) if p is not None]

    @property
    def ratio(self) -> float:
        """The simlab median rate over the faster peer setting's median (user-steps/s)."""
        return self.simlab["user_steps_per_s"] / max(p["user_steps_per_s"] for p in self._peers())

    @property
    def ratio_best(self) -> float:
        """The simlab fastest run over the peer's fastest run (any thread setting)."""
        best = max(p.get("best_rate", p["user_steps_per_s"]) for p in self._peers())
        return self.simlab.get("best_rate", self.simlab["user_steps_per_s"]) / best


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One record of a measurement's repeats: the median run, with every run's rate.

    ``user_steps_per_s`` is the median rate (the headline), ``best_rate`` the fastest run
    (the least disturbed one on a shared machine: the minimum time), ``all_rates`` and
    ``load_averages`` every run's rate and the 1-minute load average when it started.
    """
    order = sorted(runs, key=lambda r: r["user_steps_per_s"])
    rates = [r["user_steps_per_s"] for r in order]
    record = dict(order[(len(order) - 1) // 2])
    record["user_steps_per_s"] = float(np.median(rates))
    record["best_rate"] = rates[-1]
    record["all_rates"] = [r["user_steps_per_s"] for r in runs]
    record["load_averages"] = [r.get("load_average", float("nan")) for r in runs]
    return record


def format_table(rows: list[Row]) -> str:
    """The result table: median and best rates, ratios and peak memory of every row."""
    head = (
        f"{'pair / simlab agent':<24}{'scale':<30}{'peer med':>11}{'peer 1t':>10}"
        f"{'simlab med':>12}{'simlab best':>12}{'ratio med':>10}{'ratio best':>11}"
        f"{'peer MB':>9}{'simlab MB':>10}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        one = f"{r.peer_1t['user_steps_per_s']:>10,.0f}" if r.peer_1t else f"{'-':>10}"
        lines.append(
            f"{r.label:<24}{r.scale + ' ' + r.sizes:<30}{r.peer['user_steps_per_s']:>11,.0f}"
            f"{one}{r.simlab['user_steps_per_s']:>12,.0f}"
            f"{r.simlab.get('best_rate', r.simlab['user_steps_per_s']):>12,.0f}"
            f"{r.ratio:>9.1f}x{r.ratio_best:>10.1f}x"
            f"{r.peer['peak_rss_mb']:>9.0f}{r.simlab['peak_rss_mb']:>10.0f}"
        )
    return "\n".join(lines)


def format_details(rows: list[Row]) -> str:
    """Set-up times (excluded from the rates), rewards, and profiles when recorded."""
    lines = [
        "set-up (excluded from the rates); reward per user-step (peer: its own reward; "
        "simlab: engagement)"
    ]
    for r in rows:
        p, s = r.peer, r.simlab
        share = p.get("train_share")
        extra = f", NNLS refit {100 * share:.0f}% of a step" if share is not None else ""
        lines.append(
            f"  {r.label:<22} {r.scale:<6} peer: set-up {p['setup_s']:5.1f} s + imports "
            f"{p['import_s']:4.1f} s, reward {p['reward_per_user_step']:.3f}{extra} | simlab: "
            f"set-up {s['setup_s']:5.2f} s, reward {s['reward_per_user_step']:.3f}"
        )
    for r in rows:
        if "profile" in r.simlab:
            lines.append(f"\nsimlab profile, {r.label}, {r.scale} (ms/step: own, with callees)")
            lines += [f"  {a:8.1f} {b:8.1f}  {where}" for where, a, b in r.simlab["profile"]]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes, few steps (smoke test)")
    ap.add_argument("--scales", nargs="+", choices=sorted(SCALES), default=["small", "large"])
    ap.add_argument("--pairs", nargs="+", choices=["recsim-ng", "trecs"], default=None)
    ap.add_argument("--steps", type=int, default=None, help="horizon of the RecSim NG pair")
    ap.add_argument("--trecs-steps", type=int, default=None, help="timed T-RECS steps")
    ap.add_argument(
        "--recsim-agents",
        nargs="+",
        default=["recsim-cf", "popularity"],
        help="simlab agents of the RecSim NG pair (recsim-cf: the port of its recommender)",
    )
    ap.add_argument(
        "--trecs-agents",
        nargs="+",
        default=["linucb", "popularity"],
        help="simlab agents of the T-RECS pair",
    )
    ap.add_argument(
        "--repeats", type=int, default=3, help="interleaved runs of each measurement (median)"
    )
    ap.add_argument("--threads", type=int, default=None, help="cap BLAS/TF threads per run")
    ap.add_argument("--profile", action="store_true", help="profile the simlab runs")
    ap.add_argument("--json", default=None, help="also write every record to this file")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per subprocess")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    for name in ("steps", "trecs_steps", "threads", "repeats"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            ap.error(f"--{name.replace('_', '-')} must be a positive int, got {value}")
    return args


def _sizes(users: int, items: int, slate: int, what: str, tail: str) -> str:
    u = f"{users // 1000}k" if users >= 1000 and users % 1000 == 0 else str(users)
    return f"{u} u/{items} {what}/K={slate}/{tail}"


def interleaved(
    repeats: int, jobs: dict[str, tuple[list[str], dict[str, str]]], timeout: float
) -> dict[str, dict[str, Any]]:
    """Each job's :func:`summarise` record of ``repeats`` interleaved runs in fresh processes.

    The jobs run a, b, c, a, b, c, ...

    Interleaving spreads a burst of load from other work over every job alike, so the ratio
    of two medians compares runs made under the same conditions.
    """
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in jobs}
    for i in range(repeats):
        for name, (cmd, env) in jobs.items():
            record = run_child(cmd, timeout, env)
            runs[name].append(record)
            _progress(
                f"  {name} #{i + 1}: {record['user_steps_per_s']:,.0f} user-steps/s "
                f"(load {record.get('load_average', float('nan')):.2f})"
            )
    return {name: summarise(r) for name, r in runs.items()}


def run_pairs(args: argparse.Namespace, pythons: dict[str, Path]) -> list[Row]:
    """Every pair at every scale, its jobs interleaved; progress lines as it goes."""
    presets = QUICK if args.quick else SCALES
    env = child_env(args.threads)
    one = child_env(1)
    n = args.repeats
    rows: list[Row] = []
    for name in args.scales:
        sc = presets[name]
        if "recsim-ng" in pythons:
            steps = args.steps or sc.steps
            sizes = _sizes(sc.users, sc.docs, sc.slate, "d", f"{steps} st")
            _progress(f"RecSim NG interest evolution, {name}: {sizes}")
            cmd = recsim_cmd(pythons["recsim-ng"], sc, steps)
            jobs = {"recsim-ng": (cmd, env)}
            if args.threads != 1:
                jobs["recsim-ng 1 thread"] = (cmd, one)
            for agent in args.recsim_agents:
                jobs[agent] = (simlab_cmd("recsim-ng", sc, agent, steps, args.profile), env)
            got = interleaved(n, jobs, args.timeout)
            peer = got["recsim-ng"]
            for record in (peer, got.get("recsim-ng 1 thread")):
                if record is not None:
                    record["reward_per_user_step"] = record["mean_cumulative_reward"] / steps
            for agent in args.recsim_agents:
                rows.append(
                    Row("recsim-ng", name, sizes, agent, peer, got[agent],
                        got.get("recsim-ng 1 thread"))
                )  # fmt: skip
        if "trecs" in pythons:
            steps = args.trecs_steps or sc.trecs_steps
            sizes = _sizes(sc.trecs_users, sc.trecs_items, sc.trecs_slate, "i", f"A={ATTRIBUTES}")
            _progress(f"T-RECS ContentFiltering, {name}: {sizes}, {steps} timed steps")
            jobs = {"trecs": (trecs_cmd(pythons["trecs"], sc, steps), env)}
            # simlab steps are cheap: time at least 5 for a steadier rate
            for agent in args.trecs_agents:
                cmd = simlab_cmd("trecs", sc, agent, max(steps, 5), args.profile)
                jobs[agent] = (cmd, env)
            got = interleaved(n, jobs, args.timeout)
            for agent in args.trecs_agents:
                rows.append(Row("trecs", name, sizes, agent, got["trecs"], got[agent]))
    return rows


def _progress(line: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {line}", flush=True)


def main(argv: list[str] | None = None) -> None:
    """Create or reuse the peer environments, run every pair, print the table."""
    args = parse_args(argv)
    if args.worker is not None:  # a child: one simlab world
        record = simlab_worker(json.loads(args.worker))
        Path(args.out).write_text(json.dumps(record))
        return
    pairs = args.pairs or ["recsim-ng", "trecs"]
    start = time.perf_counter()
    load = os.getloadavg()[0]
    _progress(f"peer environments: {', '.join(pairs)}")
    pythons = ensure_envs(pairs)
    try:
        rows = run_pairs(args, pythons)
    except PeerError as e:
        sys.exit(f"benchmarks/peers.py: {e}")
    threads = f"threads capped at {args.threads}" if args.threads else "library default threads"
    print(
        f"\n{os.cpu_count()} cores, {threads}, load average {load:.1f} at start and "
        f"{os.getloadavg()[0]:.1f} at end; {time.perf_counter() - start:.0f} s in all"
    )
    print(format_table(rows))
    print(
        "med: median of the interleaved runs; best: the fastest run; ratio med: simlab's "
        "median over the faster peer setting's median (RecSim NG: default threads or 1 "
        "thread); loads at each run's start are in --json."
    )
    print(
        "popularity (simlab's cheapest agent, item click counts) shows the ceiling of simlab's "
        "loop at a size; it is not an equal-work comparison."
    )
    print("\n" + format_details(rows))
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in rows], indent=1))


if __name__ == "__main__":
    main()
