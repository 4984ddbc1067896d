"""Generative retrieval over semantic IDs (TIGER / MiniOneRec style), retrained from logs.

:class:`SemanticIDAgent` has three parts:

1. **Semantic IDs.** A residual quantiser (residual k-means, :func:`fit_residual_kmeans`)
   maps each observable item embedding to ``L`` codes, each level quantising the residual
   the previous levels left. Items whose ``L`` codes collide get an extra disambiguation
   token ``d``: their rank by item id among the items sharing those codes (TIGER's 4th
   token), so a full code ``(c_1, ..., c_L, d)`` names one item. Codebooks are refit at
   every retrain on the items of the log window (warm started from the previous codebooks);
   items that appear later are encoded with the existing codebooks and take the next free
   ``d`` of their group, so a new item is reachable at once through its semantic prefix.
2. **A decoder-only transformer** reads ``[CLS, h_1 .. h_H, BOS, c_1 .. c_L]`` with causal
   attention. Each history item ``h`` (most recent last) enters as one token, the sum of the
   embeddings of its code tokens (one vocabulary slice per level), which keeps the sequence
   ``H + L + 2`` long. From BOS on it predicts the next clicked item's tokens one level at a
   time (teacher forcing, cross-entropy; optional APAO prefix-aware loss). The examples are
   the clicks of the log window, each with the same user's earlier clicks in the window as
   its history.
3. **Constrained beam search** (:func:`constrained_beam_search`) generates codes level by
   level for all served users at once. Tokens that no candidate item of the user continues
   get log-probability ``-inf`` (the trie of the candidates' codes is one sorted array of
   prefix ids per level, queried with ``searchsorted``), so only live candidates come out.
   The top ``K`` of the final beam form the slate. A beam of width ``W >= K`` always ends
   with ``min(W, reachable candidates)`` items; when that is less than ``K`` (tiny
   catalogs, or items whose ``d`` is beyond ``dedup_size``) the slate is filled with the
   other candidates ranked by the fallback score: the model's log-probability of the
   item's first code.

Serving caches the keys and values of the history (a KV cache), so each beam step costs
one token per beam. Before the first retrain the agent serves random slates.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from simlab.batch import PAD, Catalog, Log, Observation, Slates, lookup_sorted
from simlab.errors import DependencyNotInstalled, ScenarioError
from simlab.rng import Stream, torch_generator
from simlab.scenario import ParamsModel

from .base import Agent, RandomUntilTrainedMixin, random_slates

try:
    import torch
except ImportError as e:  # pragma: no cover - torch is a declared dependency
    raise DependencyNotInstalled(
        "the generative agent needs torch: pip install torch==2.13.0 (CPU build)"
    ) from e

from .generative_decoding import constrained_beam_search
from .generative_model import (
    SemanticIDTransformer,
    _init_weights,
    click_sequences,
    sequence_loss,
    train_semantic_transformer,
)
from .generative_params import PrefixLossParams, QuantiserParams, TrainingParams, TransformerParams
from .generative_quantiser import _radix_ids, dedup_tokens, encode_residual, fit_residual_kmeans
from .neural_train import check_trained

__all__ = [
    "SemanticIDAgent",
    "SemanticIDTransformer",
    "QuantiserParams",
    "TransformerParams",
    "TrainingParams",
    "PrefixLossParams",
    "sequence_loss",
    "train_semantic_transformer",
    "fit_residual_kmeans",
    "encode_residual",
    "dedup_tokens",
    "click_sequences",
    "constrained_beam_search",
]

_CHUNK = 4096
"""Users served per beam-search batch (bounds memory; not a loop over single users)."""


# ----------------------------------------------------------------------------- agent
def _resolve_device(name: str) -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``; ``cuda`` must be available."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ScenarioError(
            "Expects `device` 'cuda' to find a CUDA device, but torch.cuda.is_available() is "
            "False; use 'auto' or 'cpu'"
        )
    return name


def _codes_of(items: np.ndarray, tables: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Codes ``items.shape + (T,)`` from the first ``(ids, codes)`` table with the id (else -1)."""
    out = np.full((*items.shape, tables[0][1].shape[1]), -1, np.int64)
    todo = items != PAD
    for ids, codes in tables:
        pos, found = lookup_sorted(ids, items)
        found &= todo
        out[found] = codes[pos[found]]
        todo &= ~found
    return out


class SemanticIDAgent(RandomUntilTrainedMixin, Agent):
    """Semantic-ID generative retrieval: residual k-means codes, transformer, trie beam search.

    See the module docstring. Before its first retrain it serves random slates. On CPU it
    serves from replicas (the weights and codes, published once per retrain); on a GPU it
    serves in the trial actor, which holds the GPU.
    """

    serving = "replica"

    def serving_blocker(self) -> str | None:
        """A model on a GPU serves where the GPU is (replicas on CPU would round otherwise)."""
        return None if self._device == "cpu" else f"serves on {self._device} in the trial actor"

    class Params(ParamsModel):
        """Scenario keys of the generative agent."""

        quantiser: QuantiserParams = Field(
            default_factory=QuantiserParams, description="Semantic IDs (residual k-means)."
        )
        transformer: TransformerParams = Field(
            default_factory=TransformerParams, description="Decoder-only transformer sizes."
        )
        training: TrainingParams = Field(
            default_factory=TrainingParams, description="Fitting at each retrain."
        )
        prefix_loss: PrefixLossParams = Field(
            default_factory=PrefixLossParams, description="Optional APAO prefix-aware loss."
        )
        beam_width: int = Field(
            16, gt=0, le=4096, description="Beams kept per user; raised to the slate size."
        )
        device: Literal["auto", "cpu", "cuda"] = Field(
            "auto", description="Torch device; auto uses CUDA when torch.cuda.is_available()."
        )

    def __init__(self, params: Params, ctx: Any) -> None:
        super().__init__(params, ctx)
        q = params.quantiser
        self._device = _resolve_device(params.device)
        self._sizes = [q.codebook_size] * q.levels + [q.dedup_size]
        self._random = Stream(self.seed, "agent/generative/random")
        self._num_retrains = 0
        self._model: SemanticIDTransformer | None = None
        self._codebooks: np.ndarray | None = None
        self._item_ids = np.zeros(0, np.int64)
        self._codes = np.zeros((0, q.levels + 1), np.int64)
        self._cache: tuple[Catalog, np.ndarray] | None = None

    # ------------------------------------------------------------------ learning
    def _new_model(self, state: dict[str, np.ndarray] | None) -> SemanticIDTransformer:
        """A model on the agent's device, from ``state`` or freshly initialised."""
        # the default initialisers draw from torch's global generator: restore it afterwards
        # (every weight is then drawn again from the agent's own generator, or loaded)
        with torch.random.fork_rng(devices=[]):
            model = SemanticIDTransformer(self._sizes, self.params.transformer)
        model = model.to(self._device)
        if state is None:
            _init_weights(model, torch_generator(self.seed, "agent/generative/init", 0))
        else:
            model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()})
        return model.eval()

    def _model_state(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy().copy() for k, v in self._model.state_dict().items()}

    def retrain(self, log: Log) -> None:
        """Refit the codebooks on the window's items, then the transformer on its clicks."""
        p = self.params
        hist, target, steps = click_sequences(log, p.transformer.max_history)
        if target.size == 0 or log.feature_ids.size == 0:
            return
        if target.size > p.training.max_examples:
            keep = np.sort(np.argsort(-steps, kind="stable")[: p.training.max_examples])
            hist, target = hist[keep], target[keep]
        warm = p.training.warm_start and self._model is not None
        q = p.quantiser
        books = fit_residual_kmeans(
            log.features,
            q.levels,
            q.codebook_size,
            iterations=q.iterations,
            seed=self.seed,
            step=self._num_retrains,
            init=self._codebooks if warm else None,
            device=self._device,
        )
        sem = encode_residual(log.features, books, self._device)
        codes = np.concatenate([sem, dedup_tokens(sem, log.feature_ids)[:, None]], 1)
        table = [(log.feature_ids, codes)]
        target_codes = _codes_of(target, table)
        ok = target_codes[:, -1] < q.dedup_size  # a d beyond the vocabulary cannot be a target
        model = self._new_model(self._model_state() if warm else None)
        gen = torch_generator(self.seed, "agent/generative/batches", self._num_retrains)
        train_semantic_transformer(
            model, _codes_of(hist[ok], table), target_codes[ok], p.training, p.prefix_loss, gen
        )
        check_trained("generative", dict(model.named_parameters()), p.training, self._num_retrains)
        self._model, self._codebooks = model, books
        self._item_ids, self._codes = log.feature_ids.copy(), codes
        self._cache = None
        self._num_retrains += 1

    # ------------------------------------------------------------------ serving
    def _live_codes(self, catalog: Catalog) -> np.ndarray:
        """``(N, L + 1)`` codes of the live items; new items are encoded and take a free ``d``."""
        if self._cache is not None and self._cache[0] is catalog:
            return self._cache[1]
        codes = _codes_of(catalog.item_ids, [(self._item_ids, self._codes)])
        new = codes[:, 0] < 0
        if new.any():
            sem = encode_residual(catalog.features[new], self._codebooks, self._device)
            radix = self._sizes[:-1]
            uniq, counts = np.unique(_radix_ids(self._codes[:, :-1], radix), return_counts=True)
            pos, found = lookup_sorted(uniq, _radix_ids(sem, radix))
            d = np.where(found, counts[pos], 0) + dedup_tokens(sem, catalog.item_ids[new])
            codes[new] = np.concatenate([sem, d[:, None]], 1)
        self._cache = (catalog, codes)
        return codes

    def _history_codes(self, obs: Observation, live: np.ndarray) -> np.ndarray:
        """``(B, H, L + 1)`` codes of the users' recent clicks, most recent last, -1 = pad."""
        hm = self.params.transformer.max_history
        h = min(obs.history.shape[1], hm)
        items = np.full((obs.num_users, hm), PAD, np.int64)
        items[:, hm - h :] = obs.history[:, :h][:, ::-1]
        tables = [(obs.catalog.item_ids, live), (self._item_ids, self._codes)]
        return _codes_of(items, tables)

    def _serve(self, hist: np.ndarray, codes: torch.Tensor, k: int) -> np.ndarray:
        """``(b, k)`` candidate column of each slate position, for one chunk of users."""
        model, state = self._model, {}
        hist_t = torch.as_tensor(hist, device=self._device)

        def step(level: int, tokens: torch.Tensor, parent: torch.Tensor | None) -> torch.Tensor:
            if level == 0:
                h, state["cache"] = model.start(hist_t)
                h = h[:, None]
            else:
                h = model.step(state["cache"], tokens[..., -1], parent, level)
            logp = torch.log_softmax(model.logits(h, level), -1)
            state.setdefault("logp0", logp[:, 0])
            return logp

        b, w = hist.shape[0], max(self.params.beam_width, k)
        cols, _ = constrained_beam_search(step, codes, self._sizes, w, b)
        if cols.shape[1] < k:
            cols = torch.cat([cols, cols.new_full((b, k - cols.shape[1]), -1)], 1)
        out = cols[:, :k].clone()
        short = (out < 0).any(1)
        if short.any():
            sub = codes if codes.dim() == 2 else codes[short]
            out[short] = self._fill(cols[short], state["logp0"][short], sub, k)
        return out.cpu().numpy()

    @staticmethod
    def _fill(cols: torch.Tensor, logp0: torch.Tensor, codes: torch.Tensor, k: int) -> torch.Tensor:
        """Beam items first (in beam order), then other candidates by the fallback score."""
        code0 = codes[..., 0].expand(cols.shape[0], -1)
        score = logp0.gather(1, code0).double()
        r, j = torch.nonzero(cols >= 0, as_tuple=True)
        score[r, cols[r, j]] = 1e9 - j.double()
        return score.topk(k, dim=1).indices

    def act(self, obs: Observation) -> Slates:
        """Slates from constrained beam search; random before the first retrain."""
        if self._model is None or obs.num_users == 0:
            return Slates(obs.user_ids, random_slates(self._random, obs))
        cat, k = obs.catalog, obs.slate_size
        live = self._live_codes(cat)
        hist = self._history_codes(obs, live)
        if obs.shared_candidates:
            shared = torch.as_tensor(live[cat.rows(obs.candidate_pool)], device=self._device)
        cols = np.empty((obs.num_users, k), np.int64)
        with torch.no_grad():
            for s in range(0, obs.num_users, _CHUNK):  # batches of users, bounded memory
                if obs.shared_candidates:
                    codes = shared
                else:
                    rows = cat.rows(obs.candidates[s : s + _CHUNK])
                    codes = torch.as_tensor(live[rows], device=self._device)
                cols[s : s + _CHUNK] = self._serve(hist[s : s + _CHUNK], codes, k)
        return Slates(obs.user_ids, np.take_along_axis(obs.candidates, cols, axis=1))

    def state_dict(self) -> dict[str, Any]:
        """Codebooks, item code table, transformer weights (numpy) and the retrain counter."""
        state: dict[str, Any] = {
            "num_retrains": self._num_retrains,
            "item_ids": self._item_ids.copy(),
            "codes": self._codes.copy(),
        }
        if self._model is not None:
            state["codebooks"] = self._codebooks.copy()
            state.update({f"model.{k}": v for k, v in self._model_state().items()})
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self._num_retrains = int(state["num_retrains"])
        self._item_ids = np.asarray(state["item_ids"], np.int64)
        self._codes = np.asarray(state["codes"], np.int64)
        model = {k.split(".", 1)[1]: v for k, v in state.items() if k.startswith("model.")}
        self._model = self._new_model(model) if model else None
        self._codebooks = np.asarray(state["codebooks"], np.float32) if model else None
        self._cache = None
