"""Source mix and source bias: AIGC shares, the source-bias ratio, llm_ratio, relative delta.

Shares per step: ``source/aigc_exposure_share`` = AIGC impressions / impressions;
``source/aigc_production_share`` = AIGC items / items published this step;
``source/aigc_click_share`` = clicks on AIGC items / clicks; ``source/aigc_catalog_share`` =
AIGC items / live items.

Source bias (Zhou et al., "Source Echo Chamber"):

- ``source/bias_ratio`` = exposure share / production share (1 = exposure in proportion to
  what is produced; above 1 = AIGC over-exposed); NaN while nothing AIGC is produced. It
  cannot exceed ``1 / production share``: when AIGC is 85% of production, 1.18 means
  nearly every impression is AIGC.
- ``source/bias_log_odds`` = the log odds ratio of exposure against the *live catalog*
  the agent ranks, ``log[(A + 1/2) / (H + 1/2)] - log[(a + 1/2) / (h + 1/2)]`` with ``A``,
  ``H`` the AIGC and human impressions and ``a``, ``h`` the AIGC and human live items (the
  1/2 is Haldane's correction); 0 = in proportion to what can be shown (a uniformly random
  agent reads 0 in expectation), > 0 = AIGC over-exposed. Unlike the ratio it has no
  ceiling, so source bias can be compared across phases whose shares differ. NaN while no
  AIGC item is live or nothing is shown. Per-step values near saturation are
  heavy-tailed: ``simlab report`` also pools the counts over each phase
  (``source/aigc_impressions``, ``source/human_impressions``, ``source/aigc_live``,
  ``source/human_live``) before taking the log odds.
- ``source/bias_log_odds_production``: the same against the items *published* at the step
  (a catalog whose make-up lags production reads non-zero even for a random agent).
- ``source/llm_ratio``: over paired copies — an AIGC rewrite and the live human item it
  copies (``ItemTable.original``) — in one user's slate, the share of pairs whose AIGC copy
  the agent ranks higher. A pair counts when at least one copy is in the slate; the shown
  copy ranks higher than an unshown one, else the higher slot wins. 0.5 = no preference.
- ``source/relative_delta`` = (E_human - E_aigc) / mean(E_human, E_aigc), with E the
  position-discounted exposure per live item of the source (each impression at slot k,
  from 0, weighs 1/log2(k + 2), the DCG discount). Negative = ranked in favour of AIGC.
- ``source/user_polarization`` = Var_u(a_u) / (p (1 - p)), with ``a_u`` the AIGC share of
  served user u's slate and ``p`` its mean over users: 0 = every user sees the same source
  mix, 1 = every user sees one source only, about 1/K for slates drawn at random. A
  per-user source echo chamber (users who clicked AIGC are shown AIGC, the others human)
  raises it even when the aggregate exposure share matches production.

The per-slate sums (discounted exposure, pairs) are computed per user shard and reduced.
"""

from __future__ import annotations

import numpy as np

from simlab.batch import lookup_sorted
from simlab.metrics.base import Metric, StepSnapshot, safe_ratio

__all__ = ["SourceMetric", "log_odds_ratio"]


class SourceMetric(Metric):
    """AIGC shares and source-bias measures per step (see the module docstring)."""

    name = "source"
    columns = (
        "source/aigc_exposure_share",
        "source/aigc_production_share",
        "source/aigc_click_share",
        "source/aigc_catalog_share",
        "source/bias_ratio",
        "source/bias_log_odds",
        "source/bias_log_odds_production",
        "source/aigc_impressions",
        "source/human_impressions",
        "source/aigc_live",
        "source/human_live",
        "source/llm_ratio",
        "source/relative_delta",
        "source/user_polarization",
    )
    summary = {c: "mean" for c in columns}
    ranges = {
        "source/aigc_exposure_share": (0.0, 1.0),
        "source/aigc_production_share": (0.0, 1.0),
        "source/aigc_click_share": (0.0, 1.0),
        "source/aigc_catalog_share": (0.0, 1.0),
        "source/bias_ratio": (0.0, None),
        "source/bias_log_odds": (None, None),  # a log odds ratio: unbounded both ways
        "source/bias_log_odds_production": (None, None),
        "source/aigc_impressions": (0.0, None),
        "source/human_impressions": (0.0, None),
        "source/aigc_live": (0.0, None),
        "source/human_live": (0.0, None),
        "source/llm_ratio": (0.0, 1.0),
        "source/relative_delta": (-2.0, 2.0),  # (a - b) / mean(a, b) of non-negatives
        "source/user_polarization": (0.0, 1.0),
    }

    def partial(self, snap: StepSnapshot) -> dict[str, float]:
        """Impressions by slot and source, and AIGC-first pairs, over the shard's slates."""
        slates = snap.feedback.slates
        b, k = slates.shape
        if not b:
            return {
                "human_by_slot": np.zeros(k, np.int64),
                "aigc_by_slot": np.zeros(k, np.int64),
                "aigc_first": 0,
                "pairs": 0,
                "users": 0,
                "aigc_sum": 0,
                "aigc_sq": 0,
                "slots": k,
            }
        items = snap.items
        rows = snap.rows()
        src = items.source[rows]
        # impressions by slot and source: integer counts, the same for any sharding (the
        # reduce weights them by the slot's discount once)
        aigc_first, pairs = _pair_order(items, rows, slates)
        # integer per-user AIGC counts: sums are exact, so any sharding gives the same value
        count = (src == 1).sum(axis=1, dtype=np.int64)
        return {
            "human_by_slot": np.count_nonzero(src == 0, axis=0),
            "aigc_by_slot": np.count_nonzero(src == 1, axis=0),
            "aigc_first": aigc_first,
            "pairs": pairs,
            "users": b,
            "aigc_sum": int(count.sum()),
            "aigc_sq": int((count**2).sum()),
            "slots": k,
        }

    def reduce(self, parts: list[dict[str, float]], snap: StepSnapshot) -> dict[str, float]:
        """Shares from the step's exposure counts and clicks; bias measures from the parts."""
        counts = snap.exposure_counts()
        source = snap.items.source
        aigc = int(counts[source == 1].sum())
        human = int(counts.sum()) - aigc
        new = snap.new_item_sources
        fb = snap.feedback
        clicked = fb.clicked_items[fb.clicked]
        click_src = source[snap.catalog.rows(clicked)] if clicked.size else clicked
        exposure_share = safe_ratio(aigc, int(counts.sum()))
        production_share = safe_ratio(new.sum(), new.size)
        live_aigc = int((source == 1).sum())
        live_human = source.size - live_aigc
        e_h = safe_ratio(_discounted(parts, "human_by_slot"), live_human)
        e_a = safe_ratio(_discounted(parts, "aigc_by_slot"), live_aigc)
        both = e_h + e_a
        n = sum(p["users"] for p in parts)
        k = max(p["slots"] for p in parts)  # (one part per user shard: never none)
        s1 = sum(p["aigc_sum"] for p in parts)
        s2 = sum(p["aigc_sq"] for p in parts)
        # Var(a_u) with a_u = count_u / K, from exact integer sums: (n s2 - s1^2) / (n K)^2,
        # never negative (n s2 >= s1^2 exactly, by Cauchy-Schwarz on integers)
        var = safe_ratio(n * s2 - s1 * s1, (n * k) ** 2)
        mean = safe_ratio(s1, n * k)
        spread = mean * (1 - mean)
        return {
            "source/aigc_exposure_share": exposure_share,
            "source/aigc_production_share": production_share,
            "source/aigc_click_share": safe_ratio(int(click_src.sum()), clicked.size),
            "source/aigc_catalog_share": safe_ratio(live_aigc, source.size),
            "source/bias_ratio": safe_ratio(exposure_share, production_share),
            "source/bias_log_odds": _log_odds_ratio(aigc, human, live_aigc, live_human),
            "source/bias_log_odds_production": _log_odds_ratio(
                aigc, human, int(new.sum()), int(new.size - new.sum())
            ),
            "source/aigc_impressions": aigc,
            "source/human_impressions": human,
            "source/aigc_live": live_aigc,
            "source/human_live": live_human,
            "source/llm_ratio": safe_ratio(
                sum(p["aigc_first"] for p in parts), sum(p["pairs"] for p in parts)
            ),
            "source/relative_delta": (e_h - e_a) / (both / 2) if both > 0 else float("nan"),
            "source/user_polarization": var / spread if spread > 0 else float("nan"),
        }


def log_odds_ratio(aigc_shown: float, human_shown: float, aigc_ref: float, human_ref: float):
    """Log odds ratio of AIGC in exposure vs a reference (live catalog, production).

    Haldane-corrected (1/2 added to each count); NaN when the reference has no AIGC or
    nothing was shown. Counts may be arrays (pooled or per seed).

    >>> round(log_odds_ratio(30, 70, 10, 90), 3)
    1.316
    """
    a, h = np.asarray(aigc_shown, float), np.asarray(human_shown, float)
    ra, rh = np.asarray(aigc_ref, float), np.asarray(human_ref, float)
    with np.errstate(invalid="ignore"):
        out = np.log((a + 0.5) / (h + 0.5)) - np.log((ra + 0.5) / (rh + 0.5))
    out = np.where((ra == 0) | (a + h == 0), np.nan, out)
    return float(out) if out.ndim == 0 else out


_log_odds_ratio = log_odds_ratio


def _discounted(parts: list[dict], key: str) -> float:
    """``sum_k c_k / log2(k + 2)`` of the shards' impressions per slot ``c_k`` (summed first)."""
    width = max(len(p[key]) for p in parts)
    counts = np.zeros(width, np.int64)
    for p in parts:  # (slates of shards may differ in width: slate_size 0)
        counts[: len(p[key])] += p[key]
    return float(counts @ (1.0 / np.log2(np.arange(width) + 2.0)))


def _pair_order(items, rows: np.ndarray, slates: np.ndarray) -> tuple[int, int]:
    """``(pairs whose AIGC copy ranks higher, pairs)`` in the slates (see llm_ratio)."""
    original = items.original
    live_pair = original >= 0
    if not live_pair.any():
        return 0, 0
    # live (original, rewrite) pairs whose original is live too
    rw_ids = items.item_ids[live_pair]
    orig_ids = original[live_pair]
    keep = lookup_sorted(items.item_ids, orig_ids)[1]
    rw_ids, orig_ids = rw_ids[keep], orig_ids[keep]
    if not rw_ids.size:
        return 0, 0
    b, k = slates.shape
    user = np.repeat(np.arange(b, dtype=np.int64), k)
    flat = np.ascontiguousarray(slates).ravel()
    pos = np.tile(np.arange(k, dtype=np.int64), b)
    # every key probed below (shown items, originals, rewrites) lies in [0, span)
    span = int(max(flat.max(), orig_ids.max(), rw_ids.max())) + 1
    keys = user * span + flat
    order = np.argsort(keys, kind="stable")
    skeys, spos = keys[order], pos[order]
    # AIGC side: every shown rewrite of a live original
    src = original[rows].ravel()
    shown_rw = src >= 0
    shown_rw &= lookup_sorted(items.item_ids, np.maximum(src, 0))[1]
    a_user, a_pos, a_orig = user[shown_rw], pos[shown_rw], src[shown_rw]
    at, found = lookup_sorted(skeys, a_user * span + a_orig)
    aigc_first = int((~found | (spos[at] > a_pos)).sum())
    pairs = int(shown_rw.sum())
    # human side: shown originals whose live rewrite is not in the same slate
    by_orig = np.argsort(orig_ids, kind="stable")
    o_sorted, r_sorted = orig_ids[by_orig], rw_ids[by_orig]
    lo = np.searchsorted(o_sorted, flat, side="left")
    hi = np.searchsorted(o_sorted, flat, side="right")
    reps = hi - lo
    if reps.sum():
        idx = np.repeat(lo - np.cumsum(reps) + reps, reps) + np.arange(reps.sum())
        h_user = np.repeat(user, reps)
        missing = ~lookup_sorted(skeys, h_user * span + r_sorted[idx])[1]
        pairs += int(missing.sum())
    return aigc_first, pairs
