"""Equivalent mutants of ``environments/gym/*``.

Part of :mod:`mutation_equivalent` (see its docstring for what an entry is and the recurring
reasons), which joins the parts into ``EQUIVALENT``.
"""

from __future__ import annotations

from mutation_equivalent_reasons import (
    BOOL_MUL,
    CAPACITY,
    RENDER_FPS_HINT,
    Equivalent,
    mutants_of,
)

GYM: dict[str, list[Equivalent]] = {
    "environments/gym/creators.py": [
        Equivalent(
            'earned = exposure if self.reward_kind == "exposure" else clicks',
            'earned = exposure if self.reward_kind >= "exposure" else clicks',
            "the constructor admits only 'exposure' and 'clicks' (test_bad_knobs_raise_value_"
            "error), and 'clicks' sorts before 'exposure', so `>=` holds exactly for "
            "'exposure'",
        ),
    ],
    "environments/gym/platform_env.py": [
        *mutants_of(
            'metadata: dict[str, Any] = {"render_modes": RENDER_MODES, "render_fps": 4}',
            (('"render_fps": 4', '"render_fps": 3'), ('"render_fps": 4', '"render_fps": 5')),
            RENDER_FPS_HINT,
        ),
        Equivalent(
            "click = self.reward_kind is RewardKind.CLICK",
            "click = self.reward_kind == RewardKind.CLICK",
            "`==` for `is` on an Enum member: members are singletons and Enum equality is "
            "identity, so the two agree on every value",
        ),
        Equivalent(
            "click = self.reward_kind is RewardKind.CLICK",
            "click = self.reward_kind <= RewardKind.CLICK",
            "RewardKind is a str Enum of 'click' and 'engagement' (parse admits no other): "
            "'click' sorts first, so `<=` holds exactly for CLICK",
        ),
    ],
    "environments/gym/scenarios.py": [
        Equivalent(
            "whole = whole_floats and floating and math.isfinite(value) and value % 1 == 0",
            "whole = whole_floats and floating and math.isfinite(value) and value % 1 <= 0",
            "a finite float modulo 1 is in [0, 1) (Python's and numpy's modulo take the "
            "divisor's sign: -3.0 % 1 is 0.0, -2.5 % 1 is 0.5), so `<= 0` holds exactly when "
            "it is 0",
        ),
        Equivalent(
            "if (chosen <= min(sizes)) if chosen else (max(sizes) == min(sizes)):",
            "if (chosen <= min(sizes)) if chosen else (max(sizes) <= min(sizes)):",
            "a list's maximum is never below its minimum, so `max <= min` holds exactly when "
            "they are equal (the catalog's size did not change over the probe)",
        ),
    ],
    "environments/gym/sessions.py": [
        Equivalent(
            "grown = np.zeros((max(top, 2 * self.table.shape[0]), "
            "self.table.shape[1]), np.float32)",
            "grown = np.zeros((max(top, 2 + self.table.shape[0]), "
            "self.table.shape[1]), np.float32)",
            CAPACITY,
        ),
        Equivalent(
            "grown = np.zeros((max(top, 2 * self.table.shape[0]), "
            "self.table.shape[1]), np.float32)",
            "grown = np.zeros((max(top, 2 & self.table.shape[0]), "
            "self.table.shape[1]), np.float32)",
            CAPACITY,
        ),
        Equivalent(
            "if top > self.table.shape[0]:",
            "if top >= self.table.shape[0]:",
            CAPACITY,
        ),
        Equivalent(
            "self.table = np.zeros((1024, dim), np.float32)",
            "self.table = np.zeros(( 1023, dim), np.float32)",
            CAPACITY,
        ),
        Equivalent(
            "self.table = np.zeros((1024, dim), np.float32)",
            "self.table = np.zeros(( 1025, dim), np.float32)",
            CAPACITY,
        ),
        Equivalent(
            "self.known = 0",
            "self.known = -1",
            "item ids are >= 0, so `ids >= -1` and `ids >= 0` pick the same new ids at the first "
            "add, which sets `known` to max id + 1 either way",
        ),
        Equivalent(
            "served = self.served if skip is None else self.served & ~skip",
            "served = self.served if skip is None else self.served * ~skip",
            BOOL_MUL,
        ),
        *mutants_of(
            "grown = np.zeros((max(top, 2 * self.table.shape[0]), self.table.shape[1]), "
            "np.float32)",
            (("2 * self", "2 / self"), ("2 * self", "2 >> self")),
            CAPACITY,
        ),
        Equivalent(
            "hist_feats[hist == PAD] = 0.0",
            "hist_feats[hist <= PAD] = 0.0",
            "`<= PAD` for `== PAD` on item ids: ids are >= 0 and PAD is -1, so no id is below "
            "PAD and both pick the padding slots",
        ),
    ],
    "environments/gym/slate.py": [
        *mutants_of(
            "ended = terminated | truncated",
            (("|", "+"),),
            "on boolean arrays `+` is `or`",
        ),
        Equivalent(
            "truncated = (self._steps >= self.max_steps) & ~terminated & ~restarting",
            "truncated = (self._steps >= self.max_steps) * ~terminated & ~restarting",
            BOOL_MUL,
        ),
        Equivalent(
            "truncated = (self._steps >= self.max_steps) & ~terminated & ~restarting",
            "truncated = (self._steps >= self.max_steps) & ~terminated * ~restarting",
            BOOL_MUL,
        ),
        Equivalent(
            "terminated = bool(self.sessions.churned[0])",
            "terminated = bool(self.sessions.churned[ -1])",
            "SlateRecEnv's world is one session of one user: `churned` has one entry, its "
            "first and its last",
        ),
        *mutants_of(
            "self._autoreset = terminated | truncated",
            (("|", "+"), ("|", "^")),
            "on boolean arrays `+` is `or`; and `truncated` is always `& ~terminated` (both "
            "where it is set), so the two are never true together and `^` is `or` too",
        ),
        Equivalent(
            'metadata: dict[str, Any] = {"render_modes": RENDER_MODES, "render_fps": 4}',
            'metadata: dict[str, Any] = {"render_modes": RENDER_MODES, "render_fps": 3}',
            RENDER_FPS_HINT,
        ),
        Equivalent(
            'metadata: dict[str, Any] = {"render_modes": RENDER_MODES, "render_fps": 4}',
            'metadata: dict[str, Any] = {"render_modes": RENDER_MODES, "render_fps": 5}',
            RENDER_FPS_HINT,
        ),
        Equivalent(
            '"render_fps": 4,',
            '"render_fps": 3,',
            RENDER_FPS_HINT,
        ),
        Equivalent(
            '"render_fps": 4,',
            '"render_fps": 5,',
            RENDER_FPS_HINT,
        ),
    ],
}
