"""The interest-evolution users' multinomial-logit choice and interest arithmetic.

Part of :mod:`simlab.environments.interest_evolution` (see its docstring): distances of
interests to documents, RecSim NG's soft squash of interests, and :class:`LogitChoice`,
the choice probabilities and inverse-CDF choice draws of
:class:`~simlab.environments.interest_evolution.InterestEvolutionUsers`.
"""

from __future__ import annotations

import numpy as np

from simlab.batch import is_row_broadcast

from .recsim_common import RecSimItems

__all__ = ["LogitChoice", "squash", "distances"]


def squash(y: np.ndarray, max_affinity: float) -> np.ndarray:
    """RecSim NG's soft saturation ``4 M (sigmoid(y / M) - 0.5)``: about ``y`` near 0, within +-2M.

    >>> float(squash(np.array(0.0), 10.0)), round(float(squash(np.array(1.0), 10.0)), 5)
    (0.0, 0.99917)
    """
    return 4.0 * max_affinity * (0.5 * np.tanh(0.5 * y / max_affinity))


def _squash_into(y: np.ndarray, max_affinity: float, out: np.ndarray) -> np.ndarray:
    """:func:`squash` of ``y`` written into ``out`` (may be ``y``), the same operations in order."""
    np.multiply(y, 0.5, out=out)
    out /= max_affinity
    np.tanh(out, out=out)
    out *= 0.5
    out *= 4.0 * max_affinity
    return out


def distances(x: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Euclidean distances of interests ``x`` (B, d) to documents ``f``.

    ``f`` is ``(B, K, d)`` (each user's own documents; result ``(B, K)``, float64) or
    ``(C, d)`` (documents shared by every user; result ``(B, C)``, float32 to halve the
    memory traffic of large candidate sets). For small ``d`` (RecSim NG's 2 topics) a loop
    over the dimensions beats numpy's reductions over a short last axis several times.

    >>> distances(np.zeros((1, 2)), np.array([[3.0, 4.0]])).tolist()
    [[5.0]]
    """
    shared = f.ndim == 2
    if shared:
        x = x.astype(np.float32)
        f = f.astype(np.float32).T[None]  # (1, d, C): dimension j is f[:, j] below
        out_shape = (x.shape[0], f.shape[2])
    else:
        f = f.transpose(0, 2, 1)  # (B, d, K)
        out_shape = f.shape[::2]
    if x.shape[1] > 16:
        cross = np.einsum("bd,bdk->bk", x, f)
        d2 = (x * x).sum(1)[:, None] + (f * f).sum(1) - 2.0 * cross
        return np.sqrt(np.maximum(d2, 0.0, out=d2), out=d2)
    acc = np.zeros(out_shape, np.float32 if shared else np.float64)
    for j in range(x.shape[1]):
        acc += np.square(f[:, j, :] - x[:, j, None])
    return np.sqrt(acc, out=acc)


class LogitChoice:
    """Multinomial-logit choice among a slate and a no-choice option (a users mixin).

    The host class provides ``params`` (``affinity_offset``, ``no_click_mass``,
    ``position_bias``), ``_choice`` (the choice :class:`~simlab.rng.Stream`) and
    ``_scratch`` (a :class:`~simlab.environments.common.Scratch`).
    """

    def _weights(self, x: np.ndarray, f: np.ndarray) -> np.ndarray:
        """``(B, K + 1)`` unnormalised choice weights ``exp(logit - c)`` (no choice last).

        ``c`` bounds every logit from above (distances are non-negative), so no weight
        overflows; rows whose weights all underflow (logits far below ``c``) are rescaled by
        their own maximum.
        """
        p = self.params
        b, k = f.shape[:2]
        bias = p.position_bias * np.arange(k)
        top = max(p.no_click_mass, p.affinity_offset + float(bias.max()))
        w = np.empty((b, k + 1))
        np.subtract(p.affinity_offset - top + bias, distances(x, f), out=w[:, :k])
        w[:, k] = p.no_click_mass - top
        np.exp(w, out=w)
        low = w.max(axis=1) < 1e-200
        if low.any():
            logits = np.log(np.maximum(w[low], 1e-300))  # only reached in extreme settings
            logits[:, :k] = p.affinity_offset + bias - distances(x[low], f[low])
            logits[:, k] = p.no_click_mass
            w[low] = np.exp(logits - logits.max(axis=1, keepdims=True))
        return w

    def _probs(self, x: np.ndarray, f: np.ndarray) -> np.ndarray:
        """``(B, K + 1)`` choice probabilities of interests ``x`` (B, d), slates ``f`` (B, K, d)."""
        w = self._weights(x, f)
        return w / w.sum(axis=1, keepdims=True)

    def _choose(
        self, t: int, user_ids: np.ndarray, x: np.ndarray, rows: np.ndarray, items: RecSimItems
    ) -> np.ndarray:
        """``(B,)`` chosen slot of each user, ``K`` for no choice (inverse-CDF draws).

        Computes what ``cumsum(_weights(x, latent[rows]))`` and one uniform per user give,
        with the same float64 operations in the same order (so the same choices), but slot
        by slot over all users — ``(K + 1, B)`` arrays — and without gathering the ``(B, K,
        d)`` slate features; a slate shared by every user (``rows`` a row broadcast) is
        looked up once. Settings where a row's weights may underflow, and ``d > 16``, take
        the general path.
        """
        p = self.params
        b, k = rows.shape
        d = x.shape[1]
        if d > 16 or b == 0:
            return self._choose_general(t, user_ids, x, rows, items)
        bias = p.position_bias * np.arange(k)
        top = max(p.no_click_mass, p.affinity_offset + float(bias.max()))
        shared = is_row_broadcast(rows)
        r = rows[0][:, None] if shared else rows.T  # (K, 1) or (K, B)
        w = self._scratch.get("weights", (k + 1, b))
        dist, tmp = w[:k], self._scratch.get("term", (k, b))
        for j in range(d):  # squared distances summed over the (few) dimensions
            col = np.ascontiguousarray(items.latent[:, j])[r]  # (K, B) or (K, 1) float32
            np.subtract(col, x[:, j], out=tmp if j else dist)
            if j:
                np.square(tmp, out=tmp)
                dist += tmp
            else:
                np.square(dist, out=dist)
        np.sqrt(dist, out=dist)
        np.subtract((p.affinity_offset - top + bias)[:, None], dist, out=dist)
        w[k] = p.no_click_mass - top
        np.exp(w, out=w)
        if w[k, 0] < 1e-200:  # rows may underflow (extreme settings): the general path
            return self._choose_general(t, user_ids, x, rows, items)
        for j in range(1, k + 1):  # the cumulative sum, as np.cumsum adds (in order)
            np.add(w[j - 1], w[j], out=w[j])
        u = self._choice.uniform(user_ids, t)
        u *= w[k]
        return np.minimum((w <= u).sum(axis=0), k)

    def _choose_general(
        self, t: int, user_ids: np.ndarray, x: np.ndarray, rows: np.ndarray, items: RecSimItems
    ) -> np.ndarray:
        """:meth:`_choose` for any settings, from the ``(B, K, d)`` slate features."""
        k = rows.shape[1]
        cum = np.cumsum(self._weights(x, items.latent[rows]), axis=1)
        u = self._choice.uniform(user_ids, t) * cum[:, -1]
        return np.minimum((cum <= u[:, None]).sum(axis=1), k)
