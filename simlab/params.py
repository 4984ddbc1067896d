"""The base of every scenario section and component ``Params``: strict, finite numbers.

:class:`StrictModel` is the pydantic model every section of a scenario and every component's
``Params`` derives from (``simlab.scenario.ParamsModel`` is the same class), so a field added
anywhere gets these checks for free:

- unknown keys are errors (``extra="forbid"``);
- a number field refuses NaN and ±inf (``allow_inf_nan=False``), unless the field is
  declared with ``Field(..., allow_inf_nan=True)`` and documents what they mean;
- a number field refuses a boolean (YAML's ``true`` is not 1) and a string (``"500"`` is a
  typo or a quoting mistake, not a number);
- a field holding a mapping refuses a list, and one holding a list refuses a mapping or a
  scalar (pydantic's own types);

and the model's cross-field rules (``@model_validator``) run with the field errors, at
validate time.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

__all__ = [
    "StrictModel",
    "is_number_annotation",
    "FEATURE_SCALE_MAX",
    "LOGIT_SCALE_MAX",
    "TEMPERATURE_MIN",
    "LEARNING_RATE_MAX",
    "INIT_SCALE_MAX",
]

FEATURE_SCALE_MAX = 1000.0
"""Upper bound of the settings that scale embeddings and observable features (spreads, noise,
style lengths): topic centres have unit scale, so 1000 is far past any meaningful world, and
below it the float32 features and the bandits' ``sum x x^T`` stay finite (``1e20`` made
LinUCB's matrix infinite and the isotropy re-ranker's SVD fail)."""

LOGIT_SCALE_MAX = 1e6
"""Largest magnitude of a user-model setting that scales utilities or choice logits (weights,
the no-click utility, position bias, engagement noise): a unit of weight moves a utility by
O(1), so 1e6 already makes every choice deterministic, and with a temperature of at least
:data:`TEMPERATURE_MIN` the float32 logits stay finite (a weight of 1e300 overflowed them)."""

TEMPERATURE_MIN = 1e-6
"""Smallest choice temperature: a utility divided by it stays a finite float32 logit for
every weight up to :data:`LOGIT_SCALE_MAX` (a temperature of 1e-300 made the logits
infinite); below ~1e-3 the choice is already the argmax."""

LEARNING_RATE_MAX = 10.0
"""Largest Adam learning rate: Adam moves each parameter by about the learning rate per step,
so 10 is far past any rate that trains (a rate above float32's range stopped torch with an
overflow error; rates that diverge are reported after the retrain)."""

INIT_SCALE_MAX = 100.0
"""Largest standard deviation of a learned model's initial parameters (0.01-0.1 as
shipped; 1e300 overflowed the float32 tables)."""


def is_number_annotation(annotation: Any) -> bool:
    """Whether a field's type is a number (``int``, ``float``, optionally ``| None``)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return is_number_annotation(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return bool(args) and all(is_number_annotation(a) for a in args)
    return annotation in (int, float)


class StrictModel(BaseModel):
    """A schema section: unknown keys are errors; numbers are finite numbers, not text."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _check_number(cls, value: Any, info: ValidationInfo) -> Any:
        if info.field_name is None:
            return value
        field = cls.model_fields.get(info.field_name)
        if field is None or not is_number_annotation(field.annotation):
            return value
        # pydantic would read `steps: true` as 1; YAML booleans are never meant as numbers
        if isinstance(value, bool):
            raise ValueError("expects a number, not a boolean")
        if isinstance(value, (str, bytes)):
            kind = "an integer" if _is_int(field.annotation) else "a number"
            if _parses_as_number(value):
                raise ValueError(f"expects {kind}, not a string (remove the quotes)")
            raise ValueError(f"expects {kind}")
        return value


def _is_int(annotation: Any) -> bool:
    args = typing.get_args(annotation) or (annotation,)
    return int in args and float not in args


def _parses_as_number(text: str | bytes) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True
