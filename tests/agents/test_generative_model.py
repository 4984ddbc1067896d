"""The generative agent's examples, transformer, loss and training loop against references.

The click examples are compared with a loop over each user's clicks; the transformer with a
plain-Python pass over the history items that are not padding (pre-norm blocks, per-head
causal attention, absolute positions), for the full pass, the KV-cached start and the beam
steps with reordered beams; the loss with the written-out cross-entropy and APAO terms
(value and gradient); the training loop with an AdamW loop over the same shuffles.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from simlab.agents.generative_model import (
    SemanticIDTransformer,
    _init_weights,
    click_sequences,
    sequence_loss,
    train_semantic_transformer,
)
from simlab.agents.generative_params import PrefixLossParams, TrainingParams, TransformerParams
from simlab.batch import PAD, Log
from simlab.rng import torch_generator

SEEDS = range(3)
SIZES = [4, 3, 5, 2]  # three code levels and the disambiguation token


# ----------------------------------------------------------------------------- examples
def random_log(seed: int, rows: int = 40) -> Log:
    """Rows in no particular order: users 0-4, steps 0-5, some rows without a click."""
    rng = np.random.default_rng(seed)
    return Log(
        step=rng.integers(0, 6, size=rows),
        user_ids=rng.integers(0, 5, size=rows),
        slates=rng.integers(0, 100, size=(rows, 3)),
        clicked_pos=rng.integers(-1, 3, size=rows),
        engagement=np.ones(rows, np.float32),
    )


@pytest.mark.parametrize("max_history", [1, 3, 12])
@pytest.mark.parametrize("seed", SEEDS)
def test_click_sequences_equal_a_loop_over_each_users_clicks(seed, max_history):
    """By user, then step, then row: each click with the same user's earlier clicks."""
    log = random_log(seed)
    hist, target, step = click_sequences(log, max_history)
    clicks = [
        (int(log.user_ids[r]), int(log.step[r]), r) for r in range(40) if log.clicked_pos[r] >= 0
    ]
    clicks.sort()
    want_hist, want_target, want_step = [], [], []
    for i, (u, s, r) in enumerate(clicks):
        earlier = [int(log.clicked_items[rr]) for uu, _, rr in clicks[:i] if uu == u]
        row = earlier[-max_history:]
        want_hist.append([PAD] * (max_history - len(row)) + row)
        want_target.append(int(log.clicked_items[r]))
        want_step.append(s)
    assert hist.dtype == np.int64 and hist.shape == (len(clicks), max_history)
    assert hist.tolist() == want_hist
    assert target.tolist() == want_target and step.tolist() == want_step


def test_click_sequences_of_a_log_without_clicks_are_empty():
    """No click: ``(0, H)`` histories and no targets."""
    log = random_log(0)
    log = Log(
        step=log.step,
        user_ids=log.user_ids,
        slates=log.slates,
        clicked_pos=np.full(40, -1),
        engagement=log.engagement,
    )
    hist, target, step = click_sequences(log, 4)
    assert hist.shape == (0, 4) and hist.dtype == np.int64
    assert target.size == step.size == 0


# ----------------------------------------------------------------------------- transformer
def make_model(seed: int, layers: int = 2, sizes=SIZES) -> SemanticIDTransformer:
    """A transformer whose every parameter is drawn at a scale where attention matters."""
    params = TransformerParams(dim=8, heads=2, ff_dim=12, layers=layers, max_history=4)
    model = SemanticIDTransformer(sizes, params)
    gen = torch_generator(seed, "test/generative/model")
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5 + (1.0 if p.dim() == 1 else 0.0))
    return model.eval()


def random_history(seed: int, b: int = 5, h: int = 4) -> torch.Tensor:
    """``(B, H, T)`` codes; leading padding of several lengths, a gap, one empty row.

    Some disambiguation tokens exceed their vocabulary (clamped to its last token).
    """
    gen = torch_generator(seed, "test/generative/history")
    hist = torch.stack([torch.randint(0, s + 1, (b, h), generator=gen) for s in SIZES], -1)
    hist[:, :, :3] = hist[:, :, :3].clamp(max=torch.tensor(SIZES[:3]) - 1)
    hist[1, :2] = -1
    hist[2, :1] = -1
    hist[3, 2] = -1  # a padded slot between two items
    hist[4] = -1  # no history at all
    return hist


def layer_norm(x, norm):
    """``(x - mean) / sqrt(var + eps) * w + b`` over the last axis."""
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + norm.eps) * norm.weight.double() + norm.bias.double()


def linear(x, lin):
    """``x W^T + b`` in float64."""
    return x @ lin.weight.double().T + lin.bias.double()


def reference_hidden(model, hist_row, prefix_row) -> torch.Tensor:
    """``(P + 1, E)`` final-norm hidden states at BOS and the prefix, by loops over tokens.

    The sequence is CLS (position 0), each non-padding history slot ``s`` (position ``s + 1``,
    the sum of its code embeddings), BOS (``H + 1``) and the prefix tokens (``H + 2, ...``).
    """
    emb = model.embed.weight.double()
    pos = model.pos.weight.double()
    sizes, offsets, h = model.sizes, model.offsets, model.max_history
    vecs = [emb[model.cls] + pos[0]]
    for s, codes in enumerate(hist_row.tolist()):
        if codes[0] >= 0:
            tok = [min(c, sizes[lv] - 1) + offsets[lv] for lv, c in enumerate(codes)]
            vecs.append(sum(emb[t] for t in tok) + pos[s + 1])
    vecs.append(emb[model.bos] + pos[h + 1])
    for lv, c in enumerate(prefix_row.tolist()):
        vecs.append(emb[c + offsets[lv]] + pos[h + 2 + lv])
    x = torch.stack(vecs)
    for block in model.blocks:
        heads, e = block.heads, x.shape[1]
        dh = e // heads
        qkv = linear(layer_norm(x, block.norm1), block.qkv)
        q, k, v = qkv[:, :e], qkv[:, e : 2 * e], qkv[:, 2 * e :]
        att = torch.zeros_like(x)
        for i in range(len(x)):
            for hd in range(heads):
                sl = slice(hd * dh, (hd + 1) * dh)
                s = torch.stack([q[i, sl] @ k[j, sl] for j in range(i + 1)]) / math.sqrt(dh)
                p = torch.softmax(s, 0)
                att[i, sl] = sum(p[j] * v[j, sl] for j in range(i + 1))
        x = x + linear(att, block.proj)
        ff = linear(layer_norm(x, block.norm2), block.ff1)
        x = x + linear(torch.nn.functional.gelu(ff), block.ff2)
    return layer_norm(x[-len(prefix_row) - 1 :], model.norm)


@pytest.mark.parametrize("prefix_len", [0, 1, 3])
@pytest.mark.parametrize("seed", SEEDS)
def test_full_pass_equals_a_loop_transformer(seed, prefix_len):
    """Hidden states at BOS and the prefix; padding, gaps and clamped tokens as documented."""
    model = make_model(seed)
    hist = random_history(seed)
    gen = torch_generator(seed, "test/generative/prefix")
    prefix = torch.zeros(5, prefix_len, dtype=torch.long)
    for lv in range(prefix_len):
        prefix[:, lv] = torch.randint(0, SIZES[lv], (5,), generator=gen)
    with torch.no_grad():
        got = model(hist, prefix)
    assert got.shape == (5, prefix_len + 1, 8)
    for b in range(5):
        want = reference_hidden(model, hist[b], prefix[b])
        torch.testing.assert_close(got[b].double(), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_fully_padded_batch_equals_no_history(seed):
    """All slots padding (nothing to trim but everything): CLS and BOS only."""
    model = make_model(seed, layers=1)
    hist = torch.full((2, 4, 4), -1)
    prefix = torch.tensor([[1], [3]])
    with torch.no_grad():
        got = model(hist, prefix)
    for b in range(2):
        want = reference_hidden(model, hist[b], prefix[b])
        torch.testing.assert_close(got[b].double(), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("first", [0, 2])
def test_a_leading_slot_with_first_code_zero_is_an_item(first):
    """Only one row has an item in the oldest slot, and its first code is 0 (not padding)."""
    model = make_model(1)
    hist = torch.full((3, 4, 4), -1)
    hist[0, 0] = torch.tensor([first, 1, 2, 0])
    hist[:, 2:] = torch.tensor([[1, 2, 3, 1], [3, 0, 4, 0]])
    prefix = torch.tensor([[2], [0], [3]])
    with torch.no_grad():
        got = model(hist, prefix)
    for b in range(3):
        want = reference_hidden(model, hist[b], prefix[b])
        torch.testing.assert_close(got[b].double(), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("oldest", "kept"), [(0, 4), (1, 3), (3, 1), (None, 0)])
def test_leading_slots_padded_in_every_row_are_dropped(oldest, kept):
    """The blocks see CLS, the slots from the oldest real one on, BOS and the prefix."""
    model = make_model(0, layers=1)
    hist = torch.full((3, 4, 4), -1)
    if oldest is not None:
        hist[1, oldest:] = torch.tensor([1, 1, 1, 0])
    lengths = []
    model.blocks[0].register_forward_pre_hook(lambda mod, args: lengths.append(args[0].shape[1]))
    with torch.no_grad():
        model(hist, torch.zeros(3, 2, dtype=torch.long))
        model.start(hist)
    assert lengths == [1 + kept + 1 + 2, 1 + kept + 1]


@pytest.mark.parametrize("seed", SEEDS)
def test_logits_are_the_heads_slice_of_the_level(seed):
    """Level ``l``: rows ``offsets[l] .. offsets[l] + sizes[l]`` of the output layer."""
    model = make_model(seed)
    h = torch.randn(3, 2, 8, generator=torch_generator(seed, "test/generative/h"))
    full = h @ model.head.weight.T + model.head.bias
    assert model.offsets == [0, 4, 7, 12, 14]
    # one row per token, CLS, BOS and PAD; one per position CLS .. H, BOS and the T - 1 steps
    assert model.embed.weight.shape == (14 + 3, 8) and model.head.weight.shape == (14, 8)
    assert (model.cls, model.bos, model.pad) == (14, 15, 16)
    assert model.pos.weight.shape == (4 + 1 + len(SIZES), 8)
    for level, size in enumerate(SIZES):
        got = model.logits(h, level)
        o = sum(SIZES[:level])
        torch.testing.assert_close(got, full[..., o : o + size])


@pytest.mark.parametrize("seed", SEEDS)
def test_cached_beam_steps_equal_full_passes_over_each_beams_prefix(seed):
    """Start, then levels 1-3 with three beams reordered by ``parent`` at every level."""
    model = make_model(seed)
    hist = random_history(seed)
    gen = torch_generator(seed, "test/generative/beams")
    w = 3
    tokens = [torch.randint(0, s, (5, w), generator=gen) for s in SIZES[:3]]
    parents = [None] + [torch.stack([torch.randperm(w, generator=gen) for _ in range(5)])] * 2
    parents[2] = torch.randint(0, w, (5, w), generator=gen)  # beams may share a parent
    with torch.no_grad():
        h0, cache = model.start(hist)
        hs = [h0[:, None].expand(-1, w, -1)]
        for level in (1, 2, 3):
            parent = parents[level - 1] if level > 1 else torch.zeros(5, w, dtype=torch.long)
            hs.append(model.step(cache, tokens[level - 1], parent, level))
    # the prefix of each beam after each level, following the parents back
    prefixes = [tokens[0][..., None]]
    for level in (1, 2):
        kept = prefixes[-1].gather(1, parents[level][..., None].expand(-1, -1, level))
        prefixes.append(torch.cat([kept, tokens[level][..., None]], 2))
    for b in range(5):
        want0 = reference_hidden(model, hist[b], torch.zeros(0, dtype=torch.long))
        torch.testing.assert_close(h0[b].double(), want0[0], rtol=1e-4, atol=1e-4)
        for level in (1, 2, 3):
            for j in range(w):
                want = reference_hidden(model, hist[b], prefixes[level - 1][b, j])[-1]
                torch.testing.assert_close(hs[level][b, j].double(), want, rtol=1e-4, atol=1e-4)


def test_init_weights_draws_matrices_and_sets_norms_and_biases():
    """Matrices ``std * N(0, 1)`` in parameter order from the generator; 1 weights, 0 biases."""
    model = SemanticIDTransformer(SIZES, TransformerParams(dim=8, heads=2, ff_dim=12))
    _init_weights(model, torch_generator(1, "test/init"), std=0.3)
    gen = torch_generator(1, "test/init")
    for name, p in model.named_parameters():
        if p.dim() >= 2:
            torch.testing.assert_close(p, torch.randn(p.shape, generator=gen) * 0.3)
        else:
            assert (p == (1.0 if name.endswith("weight") else 0.0)).all(), name
    default = SemanticIDTransformer(SIZES, TransformerParams(dim=8, heads=2, ff_dim=12))
    _init_weights(default, torch_generator(1, "test/init"))
    gen = torch_generator(1, "test/init")
    torch.testing.assert_close(default.embed.weight, torch.randn(17, 8, generator=gen) * 0.02)


# ----------------------------------------------------------------------------- loss
def reference_loss(model, hist, target, prefix: PrefixLossParams):
    """Cross-entropy of each level plus ``beta sum_t w_t l_t`` with detached weights."""
    h = model(hist, target[:, :-1])
    b, t = target.shape
    w, bias = model.head.weight, model.head.bias
    logp = []
    for lv in range(t):
        o = sum(model.sizes[:lv])
        z = h[:, lv] @ w[o : o + model.sizes[lv]].T + bias[o : o + model.sizes[lv]]
        z = z - torch.logsumexp(z, -1, keepdim=True)
        logp.append(z[torch.arange(b), target[:, lv]])
    logp = torch.stack(logp, 1)  # (B, T)
    loss = -logp.sum() / b
    if prefix.enabled and t > 1:
        ell = torch.stack(
            [-(logp[:, :k].sum(1) / k).mean() / prefix.tau for k in range(1, t)]
        )  # prefixes of length 1 .. T - 1
        with torch.no_grad():  # l_t exp(eta l_t), normalised, in float64 scaled by its max
            lw = torch.log(ell.double()) + prefix.eta * ell.double()  # -inf where l_t = 0
            wts = torch.zeros_like(lw) if lw.max() == -math.inf else torch.exp(lw - lw.max())
            wts = (wts / wts.sum().clamp(min=1.0)).float()  # the sum is >= 1, or 0: no term
        loss = loss + prefix.beta * (wts * ell).sum()
    return loss


def random_targets(seed: int, b: int = 6) -> torch.Tensor:
    """``(B, T)`` valid target codes."""
    gen = torch_generator(seed, "test/generative/targets")
    return torch.stack([torch.randint(0, s, (b,), generator=gen) for s in SIZES], 1)


PREFIX = [
    PrefixLossParams(),
    PrefixLossParams(enabled=True),
    PrefixLossParams(enabled=True, beta=0.7, tau=2.5, eta=0.0),
    PrefixLossParams(enabled=True, beta=0.3, tau=0.5, eta=1.5),
    PrefixLossParams(enabled=True, beta=1.0, tau=1.0, eta=-2.0),
]


@pytest.mark.parametrize("prefix", PREFIX, ids=lambda p: str(p.model_dump()))
@pytest.mark.parametrize("seed", SEEDS)
def test_sequence_loss_and_its_gradient_equal_the_written_out_terms(seed, prefix):
    """Value and parameter gradient (the APAO weights are constants of the gradient)."""
    model = make_model(seed, layers=1)
    hist, target = random_history(seed, b=6), random_targets(seed)
    got = sequence_loss(model, hist, target, prefix)
    grads = torch.autograd.grad(got, list(model.parameters()), allow_unused=True)
    want = reference_loss(model, hist, target, prefix)
    wgrads = torch.autograd.grad(want, list(model.parameters()), allow_unused=True)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    for g, wg in zip(grads, wgrads, strict=True):
        if wg is None:
            assert g is None or not g.any()
        else:
            torch.testing.assert_close(g, wg, rtol=1e-4, atol=1e-5)
    if prefix.enabled:  # the prefix term is there
        plain = sequence_loss(model, hist, target, PrefixLossParams())
        assert float(got.detach()) > float(plain.detach()) + 1e-3


def test_a_one_level_target_has_no_prefix_term():
    """``T = 1``: no prefix of length 1 .. T - 1, the loss is the cross-entropy alone."""
    one = make_model(0, layers=1, sizes=[5])
    hist = random_history(0)[..., :1].clamp(max=4)
    target = torch.tensor([[0], [4], [2], [1], [3]])
    on = sequence_loss(one, hist, target, PrefixLossParams(enabled=True, beta=5.0))
    off = sequence_loss(one, hist, target, PrefixLossParams())
    assert torch.isfinite(on) and float(on.detach()) == float(off.detach())


# ----------------------------------------------------------------------------- training
def reference_training(model, hist, target, training, prefix, gen):
    """AdamW over the shuffled batches of each epoch; the size-weighted mean loss per epoch.

    The loss is :func:`sequence_loss` itself (checked above): a differently rounded loss would
    move Adam's steps on parameters whose gradient is rounding noise (the key biases).
    """
    opt = torch.optim.AdamW(model.parameters(), lr=training.lr, weight_decay=training.weight_decay)
    m = target.shape[0]
    losses = []
    for _ in range(training.epochs):
        order = torch.randperm(m, generator=gen).tolist()
        total = 0.0
        for start in range(0, m, training.batch_size):
            idx = torch.tensor(order[start : start + training.batch_size])
            loss = sequence_loss(model, hist[idx], target[idx], prefix)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / m)
    return losses


@pytest.mark.parametrize(
    ("epochs", "batch_size", "lr", "weight_decay", "apao"),
    [(1, 4, 1e-2, 0.0, False), (3, 5, 3e-3, 0.1, True), (2, 64, 5e-3, 0.5, False)],
)
def test_training_equals_an_adamw_loop_over_the_same_shuffles(
    epochs, batch_size, lr, weight_decay, apao
):
    """Same weights after training and the same per-epoch losses; the model ends in eval."""
    model = make_model(epochs, layers=1)
    hist, target = random_history(epochs, b=11), random_targets(epochs, b=11)
    training = TrainingParams(
        epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay
    )
    prefix = PrefixLossParams(enabled=apao, beta=0.5)
    ref = copy.deepcopy(model)
    modes = []
    model.register_forward_pre_hook(lambda mod, args: modes.append(mod.training))
    losses = train_semantic_transformer(
        model, hist.numpy(), target.numpy(), training, prefix, torch_generator(2, "test/batches")
    )
    want = reference_training(
        ref, hist, target, training, prefix, torch_generator(2, "test/batches")
    )
    assert len(losses) == epochs
    np.testing.assert_allclose(losses, want, rtol=1e-5)
    for (name, p), q in zip(model.named_parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)
    assert modes and all(modes)  # every training pass in train mode
    assert not model.training
