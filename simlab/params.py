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

__all__ = ["StrictModel", "is_number_annotation", "FEATURE_SCALE_MAX"]

FEATURE_SCALE_MAX = 1000.0
"""Upper bound of the settings that scale embeddings and observable features (spreads, noise,
style lengths): topic centres have unit scale, so 1000 is far past any meaningful world, and
below it the float32 features and the bandits' ``sum x x^T`` stay finite (``1e20`` made
LinUCB's matrix infinite and the isotropy re-ranker's SVD fail)."""


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
