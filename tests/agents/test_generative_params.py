"""The generative agent's scenario sections: defaults, the edge of every bound, the validators.

Classes: each field's default (every scenario that omits it depends on it, and
docs/scenario-reference.md documents it), the last accepted and first refused value at each
bound, the code-space limit of the quantiser (``V ** L * D < 2 ** 62``, one int64 per code
prefix in the beam search) and heads dividing the width, with messages naming the values.
No torch: this file is fast.
"""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from simlab.agents.generative_params import (
    PrefixLossParams,
    QuantiserParams,
    TrainingParams,
    TransformerParams,
)

DEFAULTS = [
    (QuantiserParams, {"levels": 3, "codebook_size": 16, "dedup_size": 8, "iterations": 15}),
    (
        TransformerParams,
        {"dim": 32, "layers": 1, "heads": 2, "ff_dim": 64, "max_history": 20},
    ),
    (
        TrainingParams,
        {
            "epochs": 5,
            "lr": 3e-3,
            "weight_decay": 0.0,
            "batch_size": 256,
            "max_examples": 50_000,
            "warm_start": True,
        },
    ),
    (PrefixLossParams, {"enabled": False, "beta": 0.1, "tau": 1.0, "eta": 0.0}),
]


@pytest.mark.parametrize(("model", "defaults"), DEFAULTS, ids=lambda x: getattr(x, "__name__", ""))
def test_documented_defaults(model, defaults):
    """The defaults of docs/scenario-reference.md, value and type."""
    got = model().model_dump()
    assert got == defaults
    assert {k: type(v) for k, v in got.items()} == {k: type(v) for k, v in defaults.items()}


TINY = 1e-12
# (model, other keys, field, last accepted value at the bound, first refused value)
BOUNDS = [
    (QuantiserParams, {}, "levels", 1, 0),
    (QuantiserParams, {}, "levels", 8, 9),
    (QuantiserParams, {}, "codebook_size", 2, 1),
    (QuantiserParams, {"levels": 1}, "codebook_size", 4096, 4097),
    (QuantiserParams, {}, "dedup_size", 1, 0),
    (QuantiserParams, {}, "dedup_size", 4096, 4097),
    (QuantiserParams, {}, "iterations", 1, 0),
    (QuantiserParams, {}, "iterations", 1000, 1001),
    (TransformerParams, {"heads": 1}, "dim", 1, 0),
    (TransformerParams, {"heads": 1}, "dim", 2048, 2049),
    (TransformerParams, {}, "layers", 1, 0),
    (TransformerParams, {}, "layers", 24, 25),
    (TransformerParams, {"dim": 64}, "heads", 1, 0),
    (TransformerParams, {"dim": 64}, "heads", 64, 65),
    (TransformerParams, {}, "ff_dim", 1, 0),
    (TransformerParams, {}, "ff_dim", 8192, 8193),
    (TransformerParams, {}, "max_history", 1, 0),
    (TransformerParams, {}, "max_history", 512, 513),
    (TrainingParams, {}, "epochs", 1, 0),
    (TrainingParams, {}, "epochs", 10_000, 10_001),
    (TrainingParams, {}, "lr", TINY, 0.0),
    (TrainingParams, {}, "lr", 10.0, 10.000001),
    (TrainingParams, {}, "weight_decay", 0.0, -TINY),
    (TrainingParams, {}, "batch_size", 1, 0),
    (TrainingParams, {}, "max_examples", 1, 0),
    (PrefixLossParams, {}, "beta", 0.0, -TINY),
    (PrefixLossParams, {}, "tau", TINY, 0.0),
]


@pytest.mark.parametrize(("model", "base", "field", "ok", "bad"), BOUNDS)
def test_each_bound_accepts_its_edge_and_refuses_beyond(model, base, field, ok, bad):
    """The edge value is accepted; one step beyond is refused by that field's bound."""
    assert getattr(model(**{**base, field: ok}), field) == ok
    with pytest.raises(ValidationError, match=field) as err:
        model(**{**base, field: bad})
    assert [e["loc"] for e in err.value.errors()] == [(field,)]  # not a model-level check


@pytest.mark.parametrize("field", ["weight_decay", "beta", "tau", "eta"])
def test_unbounded_above_fields_take_large_values(field):
    """No upper bound on weight decay and the loss weights; ``eta`` takes any sign."""
    model = PrefixLossParams if field in ("beta", "tau", "eta") else TrainingParams
    assert getattr(model(**{field: 1e6}), field) == 1e6
    if field == "eta":
        assert PrefixLossParams(eta=-3.0).eta == -3.0


# (levels, codebook_size, dedup_size): V ** L * D just below 2 ** 62, then at it
CODE_SPACE = [
    ((5, 4096, 3), (5, 4096, 4)),  # 3 * 2**60 | 2**62
    ((6, 512, 255), (6, 512, 256)),  # 255 * 2**54 | 2**62
    ((1, 4096, 4096), None),  # 2**24: far below
]


@pytest.mark.parametrize(("ok", "bad"), CODE_SPACE)
def test_code_space_must_fit_below_two_to_the_62(ok, bad):
    """``V ** L * D < 2 ** 62`` is accepted; at or above it the message quotes all three."""
    levels, size, dedup = ok
    assert size**levels * dedup < 2**62
    QuantiserParams(levels=levels, codebook_size=size, dedup_size=dedup)
    if bad is None:
        return
    levels, size, dedup = bad
    assert size**levels * dedup >= 2**62
    message = (
        "Expects codebook_size**levels * dedup_size below 2**62, actual values: "
        f"codebook_size={size}, levels={levels}, dedup_size={dedup}"
    )
    with pytest.raises(ValidationError, match=re.escape(message)):
        QuantiserParams(levels=levels, codebook_size=size, dedup_size=dedup)


@pytest.mark.parametrize(
    ("dim", "heads", "ok"),
    [(32, 2, True), (30, 4, False), (64, 64, True), (48, 32, False), (7, 7, True), (7, 1, True)],
)
def test_heads_must_divide_dim(dim, heads, ok):
    """``dim % heads == 0`` is accepted; otherwise the message quotes both values."""
    if ok:
        params = TransformerParams(dim=dim, heads=heads)
        assert (params.dim, params.heads) == (dim, heads)
        return
    message = f"Expects `dim` to be a multiple of `heads`, actual values: dim={dim}, heads={heads}"
    with pytest.raises(ValidationError, match=re.escape(message)):
        TransformerParams(dim=dim, heads=heads)
