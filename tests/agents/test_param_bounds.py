"""Every bounded integer setting of every agent: its bound is allowed, one past it refused.

The bounds are the documented ranges of the scenario reference (e.g. ``factors <= 1024``,
``epochs <= 10,000``): a value at the bound validates, the next one is a validation error
naming the field and the bound.
"""

from __future__ import annotations

import annotated_types as at
import pytest
from pydantic import ValidationError

from simlab import registry


def _bounded_ints() -> list[tuple[str, str, int, int | None]]:
    """``(agent, field, upper bound, lower bound)`` of every top-level bounded int field."""
    out = []
    for name in registry.names("agents"):
        params = registry.resolve("agents", name).Params
        for field, info in params.model_fields.items():
            if info.annotation is not int:
                continue
            hi = next((m.le for m in info.metadata if isinstance(m, at.Le)), None)
            lo = next((m.ge for m in info.metadata if isinstance(m, at.Ge)), None)
            lo = next((m.gt + 1 for m in info.metadata if isinstance(m, at.Gt)), lo)
            if hi is not None:
                out.append((name, field, hi, lo))
    return out


BOUNDED = _bounded_ints()


def test_the_enumeration_finds_the_bounds():
    """A guard against an empty parametrize: the known bounds are among them."""
    found = {(a, f): hi for a, f, hi, _ in BOUNDED}
    assert found[("implicit-mf", "factors")] == 1024
    assert found[("implicit-mf", "iterations")] == 10_000
    assert found[("implicit-mf", "warm_iterations")] == 10_000
    assert found[("mf", "epochs")] == found[("two-tower", "epochs")] == 10_000
    assert found[("gru4rec", "epochs")] == 10_000


@pytest.mark.parametrize(
    ("agent", "field", "hi", "lo"), BOUNDED, ids=[f"{a}.{f}" for a, f, *_ in BOUNDED]
)
def test_bound_is_allowed_and_one_past_it_refused(agent, field, hi, lo):
    """``field = hi`` passes its own check; ``hi + 1`` (and ``lo - 1``) are refused by name."""
    params = registry.resolve("agents", agent).Params
    try:
        params(**{field: hi})
    except ValidationError as e:  # another field's rule may object, never this bound
        assert not any(err["loc"] == (field,) for err in e.errors()), e
    for bad in (hi + 1, *(() if lo is None else (lo - 1,))):
        with pytest.raises(ValidationError) as info:
            params(**{field: bad})
        assert any(err["loc"] == (field,) for err in info.value.errors()), info.value
