"""Arrays computed on first use: :class:`Deferred` and the dataclass field that resolves it.

Part of :mod:`simlab.batch`, which re-exports :class:`Deferred`.
"""

from __future__ import annotations

import numpy as np

from simlab.batch_arrays import _check, read_only_view

__all__ = ["Deferred"]


class Deferred:
    """An array computed on first use, at most once (e.g. an observation's ``history``).

    The user side hands the observation its click histories as a ``Deferred`` so that a
    step whose agent never reads ``obs.history`` never builds them. Whoever owns the data it
    reads must :meth:`resolve` every ``Deferred`` still referenced before changing that data
    (see ``ClickHistory``), so a late read still sees the values at the time of the step.

    >>> d = Deferred(lambda: np.arange(3))
    >>> d.resolve().tolist(), d.resolved
    ([0, 1, 2], True)
    """

    __slots__ = ("_fn", "_value", "__weakref__")

    def __init__(self, fn) -> None:
        self._fn = fn
        self._value: np.ndarray | None = None

    @property
    def resolved(self) -> bool:
        """Whether the array has been computed."""
        return self._fn is None

    def resolve(self) -> np.ndarray:
        """The array (computed now if it was not yet)."""
        if self._fn is not None:
            self._value, self._fn = self._fn(), None
        return self._value


class _DeferredField:
    """A dataclass field that may be given as a :class:`Deferred`, resolved when first read.

    (A data descriptor: the dataclass ``__init__`` stores through :meth:`__set__` and every
    read goes through :meth:`__get__`; it has no class-level default, so the field stays
    required.) ``check`` is ``(shape after the first axis, dtype kinds)``: a resolved
    array must have ``obj.num_users`` rows and that shape.
    """

    def __init__(
        self,
        check: tuple[tuple, str] | None = None,
        default: Deferred | None = None,
        read_only: bool = False,
    ) -> None:
        self._spec = check
        self._default = default  # built once, shared read-only by instances that use it
        self._read_only = read_only  # hand out a read-only view of the resolved array

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    def __get__(self, obj, owner=None):
        if obj is None:  # the dataclass asks for the field's default
            if self._default is None:
                raise AttributeError(self._name)  # no default value: a required field
            return self._default
        value = obj.__dict__[self._name]
        if isinstance(value, Deferred):
            value = value.resolve()
            if self._spec is not None:
                shape = (obj.num_users, *self._spec[0])
                _check(f"{type(obj).__name__}.{self._name}", value, shape, self._spec[1])
            if self._read_only:  # as simlab.batch's other arrays
                value = read_only_view(value)
            obj.__dict__[self._name] = value
        return value

    def __set__(self, obj, value) -> None:
        obj.__dict__[self._name] = value
