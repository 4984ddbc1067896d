"""Scenario keys of the ``creators`` content model (:class:`CreatorEcosystem.Params`).

The schema half of :mod:`simlab.environments.content`: the AIGC phase schedule and every
knob of the creator ecosystem, with the rules that tie them together.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from simlab.params import FEATURE_SCALE_MAX
from simlab.scenario import ParamsModel

from .adoption import AdoptionParams

__all__ = ["Phase", "CreatorEcosystemParams"]


class Phase(ParamsModel):
    """One phase of the AIGC schedule: ``aigc_share`` of new items until step ``until``."""

    until: int | None = Field(
        None, gt=0, description="Last step (exclusive) of the phase; omit on the last phase."
    )
    aigc_share: float = Field(ge=0.0, le=1.0, description="Share of new items that are AIGC.")
    ramp: int = Field(
        0,
        ge=0,
        description="Steps over which the share moves linearly from the previous phase's "
        "share to this one's, from the phase's start (0 = a step change); at most the "
        "phase's length, and 0 on the first phase.",
    )


def _check_ramp(i: int, ph: Phase, start: int | None) -> None:
    """A ramp needs an earlier share to move from and must end within its phase."""
    if not ph.ramp:
        return
    if i == 0:
        raise ValueError(
            f"phases[0].ramp={ph.ramp}: the first phase has no earlier share to ramp from (its "
            f"share {ph.aigc_share} holds from step 0); set ramp: 0, or put a phase before it "
            "to ramp from (e.g. {until: 1, aigc_share: 0.0})"
        )
    if ph.until is not None and ph.ramp > ph.until - start:
        raise ValueError(
            f"phases[{i}].ramp={ph.ramp} is longer than the phase (steps {start} to "
            f"{ph.until - 1}, {ph.until - start} steps): its share {ph.aigc_share} would never "
            f"be reached; shorten the ramp to at most {ph.until - start} steps or move "
            f"phases[{i}].until"
        )


class CreatorEcosystemParams(ParamsModel):
    """Scenario keys of the ``creators`` content model."""

    num_human_creators: int = Field(100, gt=0, description="Human creators.")
    num_aigc_creators: int = Field(20, ge=0, description="AIGC creators.")
    items_per_step: int = Field(
        20, ge=0, description="Items published per step (0 = no new items)."
    )
    initial_items: int = Field(
        1000, ge=0, description="Items live before step 0 (ages spread over the lifetime)."
    )
    lifetime: int = Field(50, gt=0, le=10_000_000, description="Steps an item stays live.")
    creator_spread: float = Field(
        0.3, ge=0, le=FEATURE_SCALE_MAX, description="Creator vector scatter around its topic."
    )
    item_spread: float = Field(
        0.3, ge=0, le=FEATURE_SCALE_MAX, description="Item scatter around its creator."
    )
    feature_noise: float = Field(
        0.3,
        ge=0,
        le=FEATURE_SCALE_MAX,
        description="Noise between latent embedding and observable features.",
    )
    quality_mean: float = Field(
        0.0, ge=-FEATURE_SCALE_MAX, le=FEATURE_SCALE_MAX, description="Mean latent quality."
    )
    quality_std: float = Field(
        0.5, ge=0, le=FEATURE_SCALE_MAX, description="Std of latent quality."
    )
    phases: list[Phase] = Field(
        default_factory=lambda: [Phase(aigc_share=0.0)],
        min_length=1,
        description="AIGC share schedule, in increasing order of `until`.",
    )
    style_magnitude: float = Field(
        0.0,
        ge=0,
        le=FEATURE_SCALE_MAX,
        description="Length of the shared style direction added to AIGC items' observable "
        "features (users' utility ignores it; 0 = no style).",
    )
    anisotropy: float = Field(
        0.0,
        ge=0,
        le=FEATURE_SCALE_MAX,
        description="Length along the style direction that every item's observable "
        "features carry, human items included (a content encoder whose embeddings share "
        "a common direction that AIGC text lies further along; 0 = none).",
    )
    rewrite_share: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of AIGC items that rewrite a popular live human item (same "
        "topic, embedding and quality up to rewrite_noise).",
    )
    rewrite_noise: float = Field(
        0.1, ge=0, le=FEATURE_SCALE_MAX, description="Scatter of a rewrite's embedding and quality."
    )
    exit_threshold: float = Field(
        0.0,
        ge=0,
        description="Impressions per step below which a creator's step counts as low "
        "(0 = creators never exit).",
    )
    exit_patience: int = Field(10, gt=0, description="Low steps in a row before exiting.")
    creators_per_step: int = Field(
        0, ge=0, description="New creators entering each step (AIGC with the phase share)."
    )
    production: Literal["schedule", "adoption"] = Field(
        "schedule",
        description="`schedule`: the AIGC share of new items follows `phases`; "
        "`adoption`: creators choose AIGC or human work from the reward each earns "
        "per item (`adoption`), so the share emerges (`phases` must be left out).",
    )
    adoption: AdoptionParams = Field(
        default_factory=AdoptionParams,
        description="How creators adopt AIGC, with `production: adoption`.",
    )
    aigc_quality_gap: float = Field(
        0.0,
        ge=0,
        le=FEATURE_SCALE_MAX,
        description="Latent quality AIGC items lack next to human ones (a trade-off users "
        "feel through quality_weight; 0 = none). Rewrites (`rewrite_share`) are exempt: they "
        "keep their original's quality up to `rewrite_noise`.",
    )

    @field_validator("phases")
    @classmethod
    def _check_schedule(cls, phases: list[Phase]) -> list[Phase]:
        """Phases in increasing order of ``until``, only the last open-ended, ramps that fit.

        A field validator, so an error is reported at ``content.phases``.
        """
        prev = None
        for i, ph in enumerate(phases):
            if ph.until is None and i != len(phases) - 1:
                raise ValueError(
                    f"phases[{i}] has no `until` but is not the last phase; only the last "
                    "phase may omit `until`"
                )
            if ph.until is not None and prev is not None and ph.until <= prev:
                raise ValueError(
                    f"phases out of order: phases[{i}].until={ph.until} must be greater "
                    f"than phases[{i - 1}].until={prev}"
                )
            _check_ramp(i, ph, prev)
            prev = ph.until
        return phases

    @model_validator(mode="after")
    def _check_phases(self) -> CreatorEcosystemParams:
        default = [Phase(aigc_share=0.0)]
        if self.production == "adoption" and self.phases != default:
            raise ValueError(
                "production: adoption lets creators choose what they produce, so `phases` "
                "(a schedule of AIGC shares) must be left out (null in a variant)"
            )
        entry = self.creators_per_step > 0
        if self.num_aigc_creators == 0 and not entry and any(p.aigc_share > 0 for p in self.phases):
            raise ValueError(
                "num_aigc_creators is 0 but a phase has aigc_share > 0; add AIGC creators "
                "(or creators_per_step) or set every aigc_share to 0"
            )
        return self
