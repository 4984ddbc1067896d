"""Topic-level echo-chamber measures: interest entropy, degeneracy, calibration, filter bubble.

All four columns are read off one snapshot: the live items' latent embeddings and topics,
the users' latent interests (current and at step 0) and the served slates.

**Topic centres and topic mixes.** At step ``t`` let ``T`` be the topics with at least one
live item (``K = |T|``; topics with no live item are skipped). A topic's centre is the
normalised mean latent embedding of its live items::

    c_k = m_k / ||m_k||,    m_k = mean_{i live, topic_i = k} e_i        (k in T)

(``e_i`` are the items' unit latent vectors; a zero mean gives a zero centre.) A user's
topic mix is a softmax of the similarities of her interest to the centres::

    p_u(k) = exp(tau <x_u, c_k>) / sum_{j in T} exp(tau <x_u, c_j>),    tau = temperature

Why a softmax of similarities: latent interests are unit vectors built as normalised
mixtures of topic centres, not distributions over topics, so a user's topic mix is not
stored anywhere. Her cosine similarity to each centre tracks her mixture weights (the more
of a centre she mixes in, the closer she is to it), and the softmax turns it into a
distribution that is smooth in ``x_u`` (an arg-max would jump), strictly positive (so the
KL below is finite) and that sharpens with ``temperature`` (``tau = 5`` spans odds of at
most ``e^10`` between two topics).

**Columns** (``U`` = all users; a served user ``u`` has a slate ``L_u`` of ``n`` items; a
user shard sums over its own users, the reduce divides):

- ``echo/interest_entropy``: mean over *all* users (the population, served or not) of the
  normalised entropy ``H(p_u) / log K`` with ``H(p) = -sum_k p(k) log p(k)`` (1 = uniform
  over the present topics, 0 = one topic). NaN when fewer than 2 topics are present.
- ``echo/interest_degeneracy``: ``|| mean_{u in U} x_u(t) - mean_{u in U} x_u(0) ||_2``,
  the drift of the population's mean interest vector: Jiang et al.'s (AIES 2019)
  ``||mu_t - mu_0||`` at the population level (the per-user mean distance is
  ``echo/interest_drift``). Shards send the sums of ``x_u(t) - x_u(0)``.
- ``echo/calibration_kl``: Steck's miscalibration (RecSys 2018): mean over served users
  with a click history of ``KL(h_u || q~_u) = sum_k h_u(k) log(h_u(k) / q~_u(k))``
  (natural log), where ``h_u(k)`` is the share of topic ``k`` among the user's last ``H``
  clicks before the step (uniform weights, all ``world.num_topics`` topics),
  ``q_u(k) = |{i in L_u: topic_i = k}| / n`` is the slate's topic mix and
  ``q~_u = (1 - a) q_u + a h_u`` with ``a = 0.01`` keeps it finite. 0 when a slate
  mirrors what the user consumed; NaN when no served user has a history.
- ``echo/interest_calibration_kl``: the same divergence against the user's latent topic mix,
  ``KL(p_u || (1 - a) q_u + a p_u)`` over the present topics (how far the slate is from
  what the user is *interested in*, which the platform does not observe).
- ``echo/filter_bubble``: share of slate items, over all served users' slates, whose topic
  is the user's top topic ``argmax_k p_u(k)`` (the first one on a tie).

The last two are NaN without served users (or with empty slates); entropy, calibration and
filter bubble are NaN with no live item, degeneracy without users.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from simlab.batch import is_row_broadcast, lookup_sorted
from simlab.metrics.base import Metric, StepSnapshot
from simlab.metrics.sums import shard_sum

_DIFF_BOUND = 4.0
"""Above any ``|x_u(t) - x_u(0)|`` component: interest components lie in ``[-1, 1]``."""

__all__ = ["TopicMetric", "topic_centres_of", "topic_mix"]


def topic_centres_of(topic: np.ndarray, latent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Present topics and their unit centres: the normalised mean latent of each topic.

    Args:
        topic: ``(N,)`` topic of each live item.
        latent: ``(N, d)`` latent item embeddings.

    Returns:
        ``(present, centres)``: ``(K,)`` sorted topic ids with a live item, and
        ``(K, d)`` float64 unit centres (a zero row where a topic's mean is zero).
    """
    present, inverse = np.unique(topic, return_inverse=True)
    inverse = inverse.ravel()
    lat = latent.astype(np.float64)
    # per-topic sums in item order, one dimension at a time (what np.add.at adds, faster)
    sums = np.empty((present.shape[0], latent.shape[1]), np.float64)
    for j in range(latent.shape[1]):
        sums[:, j] = np.bincount(inverse, weights=lat[:, j], minlength=present.shape[0])
    # the mean has the direction of the sum, so normalising the sum gives the same centre
    norm = np.linalg.norm(sums, axis=1, keepdims=True)
    return present, np.divide(sums, norm, out=np.zeros_like(sums), where=norm > 0)


def topic_mix(interests: np.ndarray, centres: np.ndarray, temperature: float) -> np.ndarray:
    """Log topic mixes ``log p_u(k)``: a log-softmax of ``temperature * <x_u, c_k>``.

    Args:
        interests: ``(num_users, d)`` latent interests.
        centres: ``(K, d)`` topic centres.
        temperature: the softmax's inverse temperature ``tau``.

    Returns:
        ``(num_users, K)`` float64 log-probabilities (exact, no ``log(0)``).

    The similarities are computed from interests and centres rounded to the grid ``2^-p``,
    ``p = floor((52 - ceil(log2 d)) / 2)`` (``2^-23`` at ``d = 32``): the products are then
    integers times ``2^-2p`` whose sums over ``d`` are exact for components in ``[-1, 1]``,
    so a user's similarities have the same bits however many users one BLAS call is given
    (a user shard's product and the whole population's otherwise differ in the last bits).
    """
    p = (52 - math.ceil(math.log2(centres.shape[1]))) // 2  # d >= 1 (world.dim > 0)
    grid = np.array(interests, np.float64)  # a copy (multiply's casting is slower)
    grid *= 2.0**p  # exact: a power of two
    _integers(grid)
    logits = grid @ _integers(centres * 2.0**p).T  # exact sums of integer products
    logits *= temperature * 2.0 ** (-2 * p)  # exact: a power of two times the temperature
    logits -= _row_max(logits)
    norm = np.exp(logits).sum(axis=1, keepdims=True)
    np.log(norm, out=norm)
    logits -= norm
    return logits


_ROUND = 1.5 * 2.0**52
"""Adding and subtracting it rounds a float below ``2^51`` in size to an integer (np.rint is
several times slower): in that range the sum's unit in the last place is 1."""


def _integers(a: np.ndarray) -> np.ndarray:
    """``a`` (a fresh array, values below ``2^51`` in size) rounded to integers, in place."""
    a += _ROUND
    a -= _ROUND
    return a


class TopicMetric(Metric):
    """Topic-level echo-chamber measures (see the module docstring for the formulas).

    Sharded: each user shard sums entropies, interests, KLs and top-topic hits over its own
    users; :meth:`reduce` divides. On a shard ``ctx.user_range = (lo, hi)`` and the
    snapshot's interests are rows ``lo..hi-1``, so a served user ``u``'s row is ``u - lo``.
    """

    name = "topics"
    cadenced = True  # stateless and population-wide: `measures.every` may thin it out
    columns = (
        "echo/interest_entropy",
        "echo/interest_degeneracy",
        "echo/calibration_kl",
        "echo/interest_calibration_kl",
        "echo/filter_bubble",
    )
    summary = {
        "echo/interest_entropy": "last",
        "echo/interest_degeneracy": "last",
        "echo/calibration_kl": "mean",
        "echo/interest_calibration_kl": "mean",
        "echo/filter_bubble": "mean",
    }
    ranges = {
        "echo/interest_entropy": (0.0, 1.0),
        "echo/interest_degeneracy": (0.0, None),
        "echo/calibration_kl": (0.0, None),
        "echo/interest_calibration_kl": (0.0, None),
        "echo/filter_bubble": (0.0, 1.0),
    }
    # inverse temperature of the softmax over interest-centre similarities
    temperature = 5.0
    # Steck's smoothing weight of the user's mix in the slate's mix
    calibration_alpha = 0.01

    def _first_user(self) -> int:
        """The global id of the shard's first user (0 when the metric holds all users)."""
        first, _ = getattr(self.ctx, "user_range", None) or (0, None)
        return int(first)

    def partial(self, snap: StepSnapshot) -> dict[str, Any]:
        """Sums and counts over the shard's users (``snap`` holds only them).

        Returns:
            ``entropy_sum`` / ``entropy_users`` (normalised entropies of all users),
            ``drift_sum`` (``(d,)``, the sum of ``x_u(t) - x_u(0)``) and ``users``,
            ``kl_sum`` / ``served`` (served users' calibration KL) and
            ``bubble_hits`` / ``slate_items`` (slate items in the user's top topic). The
            float sums are :func:`~simlab.metrics.sums.shard_sum`'s: the same bits for
            any split of the users into shards.
        """
        current = np.asarray(snap.interests, np.float64)
        users = snap.num_users
        out: dict[str, Any] = {
            "entropy_sum": 0.0,
            "entropy_users": 0,
            # interest components lie in [-1, 1] for every shipped user model
            "drift_sum": shard_sum(
                np.subtract(current, snap.initial_interests, dtype=np.float64),
                _DIFF_BOUND,
                users,
                0,
                overwrite=True,
            ),  # fmt: skip
            "users": int(current.shape[0]),
            "kl_sum": 0.0,
            "served": 0,
            "bubble_hits": 0,
            "slate_items": 0,
            "steck_sum": 0.0,
            "steck_users": 0,
        }
        items = snap.items
        if not items.topic.size:
            return out
        out.update(self._steck(snap))
        present, centres = topic_centres_of(items.topic, items.latent)
        num_topics = present.size
        log_p = topic_mix(current, centres, self.temperature)  # (U, K)
        served = self._served_rows(snap)
        p_served = None
        if num_topics >= 2:
            p = np.exp(log_p)
            entropy = -(p * log_p).sum(axis=1) / np.log(num_topics)
            out["entropy_sum"] = shard_sum(entropy, 2.0, snap.num_users)
            out["entropy_users"] = int(entropy.shape[0])
            p_served = p[served]
        out.update(self._slate_sums(snap, present, log_p[served], p_served))
        return out

    def _steck(self, snap: StepSnapshot) -> dict[str, Any]:
        """Steck's KL of the served users' slates against their click histories' topics."""
        hist = snap.history_topics
        b, n = snap.feedback.slates.shape
        if hist is None or not (b and n):
            return {}
        # every topic id that can occur: the world's, or what the data holds
        k = max(int(getattr(self.ctx, "num_topics", 0)), int(hist.max()) + 1)
        k = max(k, int(snap.items.topic.max()) + 1)
        clicks = _row_counts(hist, k, hist >= 0)  # (B, k) clicks per topic; pads left out
        count = np.einsum("ij->i", clicks)  # clicks per user (integers: exact in any order)
        has = count > 0
        if not has.any():
            return {}
        clicks, count = clicks[has], count[has]
        rows = snap.rows()
        if is_row_broadcast(rows):  # one slate for every user: its topic counts once
            shown = _row_counts(snap.items.topic[rows[:1]], k)
        else:
            shown = _row_counts(snap.items.topic[rows[has]], k)
        terms = _steck_terms(clicks, count, shown, n, self.calibration_alpha)
        per_user = terms.sum(axis=1)  # each user's KL (a row: the same in any shard)
        steck = shard_sum(per_user, self._kl_bound(), snap.num_users)
        return {"steck_sum": steck, "steck_users": int(clicks.shape[0])}

    def _kl_bound(self) -> float:
        """``log(1 / calibration_alpha)``: no user's smoothed KL is above it."""
        return -math.log(self.calibration_alpha)

    def _served_rows(self, snap: StepSnapshot) -> np.ndarray:
        """``(B,)`` rows of the served users in the shard's interest matrices."""
        return np.asarray(snap.feedback.user_ids, np.int64) - self._first_user()

    def _slate_sums(
        self,
        snap: StepSnapshot,
        present: np.ndarray,
        log_p: np.ndarray,
        p: np.ndarray | None = None,
    ) -> dict:
        """Calibration KL and top-topic hits of the served users' slates.

        Args:
            snap: the shard's snapshot.
            present: ``(K,)`` the present topics.
            log_p: ``(B, K)`` the served users' log topic mixes.
            p: ``exp(log_p)`` when already computed.
        """
        b, n = snap.feedback.slates.shape
        if not (b and n):
            return {}
        rows = snap.rows()
        if p is None:
            p = np.exp(log_p)
        k = p.shape[1]
        top = p.argmax(axis=1)
        # each slate item's topic among the present ones (every one is present)
        if is_row_broadcast(rows):  # one slate for every user: its topic counts once
            shown = _row_counts(lookup_sorted(present, snap.items.topic[rows[:1]])[0], k)
            hits = int(shown[0, top].sum())
        else:
            slot_topic = lookup_sorted(present, snap.items.topic[rows])[0]  # (B, n)
            hits = int(np.count_nonzero(slot_topic == top[:, None]))
            shown = _row_counts(slot_topic, k)  # slate items per (user, topic)
        a = self.calibration_alpha
        q_smooth = (1.0 - a) * (shown / n) + a * p
        # q~ >= a p > 0 wherever p > 0; a p that underflows to 0 adds 0 (0 log 0 = 0)
        log_q = np.log(q_smooth, out=np.zeros_like(q_smooth), where=p > 0)
        terms = p * (log_p - log_q)  # log_p is finite: 0 where p is 0
        kl = shard_sum(terms.sum(axis=1), self._kl_bound(), snap.num_users)
        return {
            "kl_sum": kl,
            "served": int(b),
            "bubble_hits": hits,
            "slate_items": int(b * n),
        }

    def reduce(self, parts: list[dict[str, Any]], snap: StepSnapshot) -> dict[str, float]:
        """Divide the shards' sums: means per user, share per slate item, norm of the drift."""
        nan = float("nan")

        def total(key: str) -> Any:
            return sum(part[key] for part in parts)

        users = total("users")
        drift = total("drift_sum") / users if users else None
        entropy_users, served, slate_items = (
            total("entropy_users"),
            total("served"),
            total("slate_items"),
        )
        steck = sum(part.get("steck_users", 0) for part in parts)
        return {
            "echo/interest_entropy": total("entropy_sum") / entropy_users if entropy_users else nan,
            "echo/interest_degeneracy": float(np.linalg.norm(drift)) if users else nan,
            "echo/calibration_kl": total("steck_sum") / steck if steck else nan,
            "echo/interest_calibration_kl": total("kl_sum") / served if served else nan,
            "echo/filter_bubble": total("bubble_hits") / slate_items if slate_items else nan,
        }


def _row_counts(values: np.ndarray, k: int, keep: np.ndarray | None = None) -> np.ndarray:
    """``(B, k)`` how many of each row's values (ints in ``0..k-1``, where ``keep``) are each."""
    b = values.shape[0]
    flat = np.arange(b)[:, None] * k + values
    flat = flat.ravel() if keep is None else flat[keep]
    return np.bincount(flat, minlength=b * k).reshape(b, k)


_NARROW = 32
"""Rows up to this wide take their maxima column by column (numpy's per-row reduction is slow)."""


def _row_max(a: np.ndarray) -> np.ndarray:
    """``(U, 1)`` row maxima of a ``(U, K)`` array (exact: a maximum does not round)."""
    if a.shape[1] > _NARROW:  # pragma: no mutate (speed only: both paths are exact)
        return a.max(axis=1, keepdims=True)
    m = a[:, 0].copy()
    for j in range(1, a.shape[1]):  # over topics, each a vector over users
        np.maximum(m, a[:, j], out=m)
    return m[:, None]


def _kl_terms(h: np.ndarray, q: np.ndarray, a: float) -> np.ndarray:
    """Steck's terms ``h log(h / q~)``, ``q~ = (1 - a) q + a h``; 0 where ``h`` is 0."""
    q_smooth = (1.0 - a) * q + a * h
    ones = np.ones(q_smooth.shape)
    return h * np.log(np.divide(h, q_smooth, out=ones, where=h > 0))


def _steck_terms(
    clicks: np.ndarray, count: np.ndarray, shown: np.ndarray, n: int, a: float
) -> np.ndarray:
    """``(B, K)`` Steck terms from counts: clicks per topic, clicks, slate items per topic.

    ``clicks`` per topic out of ``count`` clicks, ``shown`` slate items per topic (``(B, K)``
    or one ``(1, K)`` row) out of ``n``. Each term depends only on the three counts
    ``(clicks, count, shown)``, so where the table of every possible triple is smaller than
    the users' terms it is computed once per triple and looked up: the same operations on
    the same values, so the same bits.
    """
    width = int(count.max())
    if (width + 1) * width * (n + 1) <= clicks.size:  # pragma: no mutate (speed only)
        c, m, j = np.ogrid[: width + 1, 1 : width + 1, : n + 1]
        table = _kl_terms(c / m, j / n, a)  # table[c, m - 1, j]
        return table[clicks, count[:, None] - 1, shown]
    return _kl_terms(clicks / count[:, None], shown / n, a)
