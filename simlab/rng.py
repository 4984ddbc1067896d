"""Counter-based randomness keyed by (seed, stream name, entity ids, step).

simlab never draws from a shared sequential generator. Every draw is a pure function of
``(seed, stream, entity id, step, counter)``: a splitmix64-style hash of those integers,
vectorised over an array of entity ids in numpy. Two consequences are promised and tested:

* the value drawn for entity 17 at step 3 is the same whatever other entities are in the
  batch and in what order, so results do not depend on how users are sharded or which
  other users happen to be active;
* two components never share randomness by accident, because the stream name is part of
  the key.

Typical use::

    >>> from simlab import rng
    >>> s = rng.Stream(seed=7, name="users/arrivals")
    >>> u = s.uniform([3, 17], step=2)
    >>> bool(u[1] == s.uniform([17], step=2)[0])
    True
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from typing import Union

import numpy as np

from simlab.rng_gamma import GammaDraws, beta_prime_params

__all__ = [
    "STREAM_VERSION",
    "SeedLike",
    "Stream",
    "check_seed",
    "stream_key",
    "uniform",
    "normal",
    "gumbel",
    "categorical",
    "beta_prime_params",
    "numpy_generator",
    "torch_generator",
]

SeedLike = Union[int, np.integer]  # noqa: UP007 - a runtime alias, kept 3.10-safe
Shape = Union[int, Sequence[int]]  # noqa: UP007

STREAM_VERSION = 2
"""Version of the stream layout (hash constants, key derivation, counters). Any change that
alters a single draw bumps it; ``tests/test_rng_golden.py`` pins the draws of this version,
and run manifests record it (``versions.simlab_rng``). 2: a uniform whose 53 bits are all ones
is the largest double below 1 (version 1 rounded it to exactly 1.0, outside the promised open
interval: one draw in 2**53); every other draw is unchanged."""

_MASK = (1 << 64) - 1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_STEP_SALT = 0xD1B54A32D192ED03
_INV_2_53 = 1.0 / (1 << 53)
_BELOW_ONE = float(np.nextafter(1.0, 0.0))  # 1 - 2**-53: the largest uniform


def check_seed(seed: object) -> int:
    """Return ``seed`` as an int, or raise ``TypeError``/``ValueError`` naming the bad value."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(
            f"Expects `seed` to be a non-negative int, actual type: {type(seed).__name__}"
        )
    if not 0 <= int(seed) < 2**63:
        raise ValueError(
            f"Expects `seed` to be a non-negative int below 2**63, actual value: {seed}"
        )
    return int(seed)


def stream_key(seed: SeedLike, stream: str) -> int:
    """Hash ``(seed, stream)`` to the 64-bit key of a stream (stable across processes)."""
    seed = check_seed(seed)
    if not isinstance(stream, str) or not stream:
        raise ValueError(f"Expects `stream` to be a non-empty str, actual value: {stream!r}")
    digest = hashlib.blake2b(f"{seed}\x1f{stream}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _mix(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser on a uint64 array (wrapping arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


_S11, _S27, _S30, _S31 = (np.uint64(v) for v in (11, 27, 30, 31))


def _mix_inplace(x: np.ndarray, tmp: np.ndarray) -> np.ndarray:
    """:func:`_mix` of ``x`` in place (``tmp``: scratch of the same shape); returns ``x``."""
    np.right_shift(x, _S30, out=tmp)
    x ^= tmp
    x *= _M1
    np.right_shift(x, _S27, out=tmp)
    x ^= tmp
    x *= _M2
    np.right_shift(x, _S31, out=tmp)
    x ^= tmp
    return x


def _scalar_if_0d(a: np.ndarray) -> np.ndarray:
    """A 0-d result as a numpy scalar (what numpy's own operators return for one draw)."""
    return a[()] if a.ndim == 0 else a


_BLOCK = 1 << 17
"""Values per block of :meth:`Stream._bits` (1 MiB of uint64): small enough that the
hashing's in-place passes over a block stay in a core's cache."""
_BLOCKED_FROM = 1 << 20
"""Draws of at most this many values are hashed whole: one block, no per-block overhead
(measured: blocks pay from about 2M values on, and cost up to 10% below 1M)."""


def _uniform_block(bits: np.ndarray, spare: np.ndarray) -> None:
    """Uniforms on (0, 1) in ``spare`` (as float64) from a block of raw ``bits`` (clobbered)."""
    bits >>= _S11  # 53 random bits: exact as int64 and as float64
    out = spare.view(np.float64)
    np.copyto(out, bits.view(np.int64), casting="unsafe")
    out += 0.5
    out *= _INV_2_53
    # all 53 bits set: (2**53 - 1) + 0.5 rounds to 2**53, a draw of exactly 1.0
    np.minimum(out, _BELOW_ONE, out=out)


def _entity_ids(ids: np.ndarray | Sequence[int]) -> np.ndarray:
    """``ids`` as an array, or ``TypeError`` for ids that are not integers.

    A float id would be truncated (1.2 and 1.7 the same entity) and a boolean mask passed
    as ids would key every draw by 0 or 1: both silently correlate draws that should not be.
    """
    a = np.asarray(ids)
    if a.dtype.kind not in "iu" and a.size:  # (an empty list reads as float64)
        raise TypeError(f"Expects integer entity `ids`, actual dtype: {a.dtype}")
    return a


def _step(step: object) -> int:
    """``step`` as an int, or ``TypeError`` (a float step would be truncated)."""
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)):
        raise TypeError(f"Expects an int `step`, actual type: {type(step).__name__}")
    return int(step)


def _as_shape(size: Shape) -> tuple[int, ...]:
    return (int(size),) if isinstance(size, (int, np.integer)) else tuple(int(s) for s in size)


class Stream(GammaDraws):
    """A named stream of counter-based random numbers for one seed.

    Every method takes ``ids`` (an array of entity ids: users, items, creators, pairs) and
    ``step`` and returns an array of shape ``ids.shape + size``; element ``[i, ...]`` depends
    only on ``(seed, name, ids[i], step)`` and its position within ``size``. The
    gamma-family draws (:meth:`log_gamma`, :meth:`dirichlet`, :meth:`beta`) come from
    :class:`~simlab.rng_gamma.GammaDraws`.

    Args:
        seed: non-negative integer seed of the trial.
        name: stream name, e.g. ``"users/choice"``; distinct names give independent streams.
    """

    seed: int
    name: str

    def __init__(self, seed: SeedLike, name: str) -> None:
        self.seed = check_seed(seed)
        self.name = name
        self._key = stream_key(self.seed, name)

    def __repr__(self) -> str:
        return f"Stream(seed={self.seed}, name={self.name!r})"

    def child(self, name: str) -> Stream:
        """Return the independent sub-stream ``"<this name>/<name>"``."""
        return Stream(self.seed, f"{self.name}/{name}")

    def bits(self, ids: np.ndarray | Sequence[int], step: int, size: Shape = ()) -> np.ndarray:
        """Raw 64-bit draws, shape ``ids.shape + size``, dtype uint64."""
        return _scalar_if_0d(self._bits(ids, step, size)[0])

    def _bits(
        self,
        ids: np.ndarray | Sequence[int],
        step: int,
        size: Shape,
        finish: Callable[[np.ndarray, np.ndarray], None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(bits, scratch)``: :meth:`bits` and a spare array of its shape and item size.

        The hashing runs in place (two arrays of the output's size in all, not one per
        operation): the same values as the formula ``_mix(_mix(ids * G + key) ^ step_key)``
        then ``_mix(h + counter * G)``. Large draws run block by block (about :data:`_BLOCK`
        values each), so a block's passes stay in the core's cache; ``finish(bits, scratch)``, if
        given, then turns each block's bits into the caller's draws in place.
        """
        h = np.asarray(_entity_ids(ids), dtype=np.int64).astype(np.uint64, order="C")
        shape = _as_shape(size)
        n = math.prod(shape)
        step_key = np.uint64((self._key ^ ((_step(step) * _STEP_SALT) & _MASK)) & _MASK)
        flat = h.ravel()  # a view: h is C-contiguous
        tmp = np.empty_like(flat)
        # a fast path for one draw per id: the same values as the general path below
        one = n == 1 and shape == ()  # pragma: no mutate
        if not one:
            counters = np.arange(1, n + 1, dtype=np.uint64) * _GOLDEN
            out = np.empty((flat.shape[0], n), np.uint64)
            spare = np.empty_like(out)
        big = flat.shape[0] * n > _BLOCKED_FROM
        rows = max(1, _BLOCK // max(n, 1) if big else flat.shape[0])
        with np.errstate(over="ignore"):
            for lo in range(0, flat.shape[0], rows):
                hb, tb = flat[lo : lo + rows], tmp[lo : lo + rows]
                hb *= _GOLDEN
                hb += np.uint64(self._key)
                _mix_inplace(hb, tb)
                hb ^= step_key
                _mix_inplace(hb, tb)
                if one:
                    hb += _GOLDEN
                    bb, sb = _mix_inplace(hb, tb), tb
                else:
                    bb, sb = out[lo : lo + rows], spare[lo : lo + rows]
                    np.add(hb[:, None], counters, out=bb)
                    _mix_inplace(bb, sb)
                if finish is not None:
                    finish(bb, sb)
        if one:
            return h, tmp.reshape(h.shape)
        full = h.shape + shape
        return out.reshape(full), spare.reshape(full)

    def uniform(self, ids: np.ndarray | Sequence[int], step: int, size: Shape = ()) -> np.ndarray:
        """Uniform draws on the open interval (0, 1), float64."""
        return _scalar_if_0d(self._bits(ids, step, size, _uniform_block)[1].view(np.float64))

    def normal(
        self,
        ids: np.ndarray | Sequence[int],
        step: int,
        size: Shape = (),
        loc: float = 0.0,
        scale: float = 1.0,
    ) -> np.ndarray:
        """Normal draws (Box-Muller over two uniforms per value)."""
        u = self.uniform(ids, step, _as_shape(size) + (2,))
        if u.ndim == 1:  # one draw: numpy scalars
            return loc + scale * (np.sqrt(-2.0 * np.log(u[0])) * np.cos(2.0 * np.pi * u[1]))
        z = np.log(u[..., 0])
        z *= -2.0
        np.sqrt(z, out=z)
        c = np.multiply(u[..., 1], 2.0 * np.pi)
        np.cos(c, out=c)
        z *= c
        z *= scale
        z += loc
        return z

    def gumbel(self, ids: np.ndarray | Sequence[int], step: int, size: Shape = ()) -> np.ndarray:
        """Standard Gumbel draws, ``-log(-log(U))``."""
        g = self.uniform(ids, step, size)
        if not isinstance(g, np.ndarray):  # one draw: a numpy scalar
            return -np.log(-np.log(g))
        np.log(g, out=g)
        np.negative(g, out=g)
        np.log(g, out=g)
        np.negative(g, out=g)
        return g

    def integers(
        self, ids: np.ndarray | Sequence[int], step: int, high: int | np.ndarray, size: Shape = ()
    ) -> np.ndarray:
        """Integers uniform on ``[0, high)``; ``high`` may broadcast against the output.

        No clamp is needed: every uniform is at most ``1 - 2**-53``, and that times any
        positive int64 ``high`` rounds to a float below ``high`` (test_rng_extremes.py).
        """
        u = self.uniform(ids, step, size)
        bound = np.asarray(high)
        if u.size and not (bound > 0).all():  # (no draw, no range needed)
            raise ValueError(
                f"Expects `high` > 0 (integers on [0, high)), actual minimum: {bound.min()}"
            )
        return np.floor(u * high).astype(np.int64)

    def categorical(
        self, ids: np.ndarray | Sequence[int], step: int, probs: np.ndarray
    ) -> np.ndarray:
        """One categorical draw per entity by inverse CDF.

        Args:
            ids: entity ids, shape ``(B,)``.
            step: the step of the draw.
            probs: non-negative weights, shape ``(B, n)`` (or ``(n,)``, shared by every
                entity); rows need not be normalised.

        Returns:
            Category indices in ``[0, n)``, shape ``(B,)``.
        """
        ids = np.asarray(ids)
        p = np.asarray(probs, dtype=np.float64)
        if p.ndim == 0:
            raise ValueError("Expects `probs` with a last axis of categories, actual: a scalar")
        if p.ndim == 1:
            p = np.broadcast_to(p, ids.shape + p.shape)
        if p.shape[:-1] != ids.shape:
            raise ValueError(
                f"Expects `probs` of shape {ids.shape + ('n',)}, actual shape: {p.shape}"
            )
        if (p < 0).any():
            raise ValueError("Expects `probs` to be non-negative")
        cum = np.cumsum(p, axis=-1)
        u = self.uniform(ids, step)[..., None] * cum[..., -1:]
        idx = (cum <= u).sum(axis=-1)
        return np.minimum(idx, p.shape[-1] - 1)


def uniform(seed: SeedLike, stream: str, ids, step: int, size: Shape = ()) -> np.ndarray:
    """Functional form of :meth:`Stream.uniform`."""
    return Stream(seed, stream).uniform(ids, step, size)


def normal(seed: SeedLike, stream: str, ids, step: int, size: Shape = ()) -> np.ndarray:
    """Functional form of :meth:`Stream.normal`."""
    return Stream(seed, stream).normal(ids, step, size)


def gumbel(seed: SeedLike, stream: str, ids, step: int, size: Shape = ()) -> np.ndarray:
    """Functional form of :meth:`Stream.gumbel`."""
    return Stream(seed, stream).gumbel(ids, step, size)


def categorical(seed: SeedLike, stream: str, ids, step: int, probs: np.ndarray) -> np.ndarray:
    """Functional form of :meth:`Stream.categorical`."""
    return Stream(seed, stream).categorical(ids, step, probs)


def numpy_generator(seed: SeedLike, stream: str, step: int = 0) -> np.random.Generator:
    """A numpy ``Generator`` keyed by ``(seed, stream, step)``, for whole-batch draws.

    Use it only where the draw is not per entity (e.g. shuffling a training set); keyed
    draws through :class:`Stream` are preferred everywhere else.
    """
    key = stream_key(seed, f"{stream}#step={_step(step)}")
    return np.random.Generator(np.random.Philox(key=key))


def torch_generator(seed: SeedLike, stream: str, step: int = 0):
    """A ``torch.Generator`` keyed by ``(seed, stream, step)``; torch models use this."""
    import torch

    g = torch.Generator()
    g.manual_seed(stream_key(seed, f"{stream}#step={_step(step)}") & ((1 << 63) - 1))
    return g
