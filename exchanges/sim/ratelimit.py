"""Venue rate limits the simulator enforces (PROTOCOLS.md A4, B4), as data.

A rule counts requests in a sliding window per scope key (the API key, or the API key and
the market); the request that would exceed ``limit`` is refused with the venue's 429.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import msgspec

__all__ = ["GATE_RULES", "MEXC_RULES", "RateLimiter", "RateRule"]


class RateRule(msgspec.Struct, frozen=True, kw_only=True):
    """``limit`` requests per ``window_s`` seconds per scope key."""

    name: str
    limit: int
    window_s: float


MEXC_RULES: dict[str, RateRule] = {
    # New orders share 12 req/s with cancels (MX-NEW), per UID.
    "order": RateRule(name="order", limit=12, window_s=1.0),
}
"""MEXC rule name -> rule (the servers name the rule each endpoint counts against)."""

GATE_RULES: dict[str, RateRule] = {
    # Spot place + amend: 10 r/s per UID per market.
    "place": RateRule(name="place", limit=10, window_s=1.0),
    "cancel": RateRule(name="cancel", limit=200, window_s=1.0),
}
"""Gate rule name -> rule."""


class RateLimiter:
    """Sliding-window counters per (rule, scope key)."""

    def __init__(self, rules: dict[str, RateRule], clock: Callable[[], float], enabled: bool):
        self.rules = rules
        self.clock = clock
        self.enabled = enabled
        self._hits: dict[tuple[str, str], deque[float]] = {}

    def hit(self, rule_name: str, key: str) -> float | None:
        """Count a request; returns None when allowed, else seconds until a slot frees."""
        rule = self.rules[rule_name]
        now = self.clock()
        hits = self._hits.setdefault((rule_name, key), deque())
        while hits and hits[0] <= now - rule.window_s:
            hits.popleft()
        if self.enabled and len(hits) >= rule.limit:
            return max(0.001, hits[0] + rule.window_s - now)
        hits.append(now)
        return None

    def remaining(self, rule_name: str, key: str) -> tuple[int, int, float]:
        """(remaining, limit, reset time) of a counter, for Gate's rate-limit headers."""
        rule = self.rules[rule_name]
        hits = self._hits.get((rule_name, key), deque())
        reset = (hits[0] + rule.window_s) if hits else self.clock()
        return max(0, rule.limit - len(hits)), rule.limit, reset
