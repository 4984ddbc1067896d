"""Scenario keys of the generative agent's sections (quantiser, transformer, training, loss)."""

from __future__ import annotations

from pydantic import Field, model_validator

from simlab.params import LEARNING_RATE_MAX
from simlab.scenario import ParamsModel

__all__ = ["QuantiserParams", "TransformerParams", "TrainingParams", "PrefixLossParams"]


class QuantiserParams(ParamsModel):
    """Residual k-means semantic IDs."""

    levels: int = Field(3, gt=0, le=8, description="L, code levels (codebooks).")
    codebook_size: int = Field(16, ge=2, le=4096, description="V, centroids per codebook.")
    dedup_size: int = Field(
        8,
        gt=0,
        le=4096,
        description="D, vocabulary of the disambiguation token: items beyond the D-th with the "
        "same L codes cannot be generated (only the fallback can show them).",
    )
    iterations: int = Field(15, gt=0, le=1000, description="Lloyd iterations per level.")

    @model_validator(mode="after")
    def _check_code_space(self) -> QuantiserParams:
        # beam search names every code prefix by one int64
        if self.codebook_size**self.levels * self.dedup_size >= 2**62:
            raise ValueError(
                "Expects codebook_size**levels * dedup_size below 2**62, actual values: "
                f"codebook_size={self.codebook_size}, levels={self.levels}, "
                f"dedup_size={self.dedup_size}"
            )
        return self


class TransformerParams(ParamsModel):
    """Sizes of the decoder-only transformer."""

    dim: int = Field(32, gt=0, le=2048, description="Model width (embedding size).")
    layers: int = Field(1, gt=0, le=24, description="Transformer blocks.")
    heads: int = Field(2, gt=0, le=64, description="Attention heads; must divide `dim`.")
    ff_dim: int = Field(64, gt=0, le=8192, description="Hidden size of the feed-forward layer.")
    max_history: int = Field(20, gt=0, le=512, description="H, most recent history items read.")

    @model_validator(mode="after")
    def _check_heads(self) -> TransformerParams:
        if self.dim % self.heads:
            raise ValueError(
                f"Expects `dim` to be a multiple of `heads`, actual values: dim={self.dim}, "
                f"heads={self.heads}"
            )
        return self


class TrainingParams(ParamsModel):
    """How each retrain fits the transformer on the log window."""

    epochs: int = Field(5, gt=0, le=10_000, description="Passes over the window's clicks.")
    lr: float = Field(3e-3, gt=0, le=LEARNING_RATE_MAX, description="AdamW learning rate.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    batch_size: int = Field(256, gt=0, description="Clicks per optimisation step.")
    max_examples: int = Field(
        50_000, gt=0, description="Train on at most this many of the window's most recent clicks."
    )
    warm_start: bool = Field(
        True, description="Start codebooks and transformer from the previous retrain's."
    )


class PrefixLossParams(ParamsModel):
    """APAO prefix-aware loss (Yu et al.), added to the cross-entropy when enabled."""

    enabled: bool = Field(False, description="Add the prefix-aware loss.")
    beta: float = Field(0.1, ge=0, description="Weight of the prefix loss.")
    tau: float = Field(1.0, gt=0, description="Temperature tau_p dividing the prefix losses.")
    eta: float = Field(0.0, description="Focus on hard prefixes: weights ~ l_t * exp(eta * l_t).")
