"""The generic order rules and the exchange-side request-rate counter.

The simulated matching (replay, paper, exchange simulator) reads a venue's
:class:`~arbsim.core.rules.VenueRules` so that a rejection in a backtest carries the code
the real venue answers with, and a strategy sees it through the same error types as in
live trading. The MEXC and Gate tables live with their venues (``exchanges/mexc/rules.py``,
``exchanges/gateio/rules.py``); callers pass the rules object they want.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import NamedTuple

from arbsim.core.rules import GENERIC_RULES, RateLimit

__all__ = ["GENERIC_RULES", "Breach", "RequestLimiter"]  # GENERIC_RULES: from the core


class Breach(NamedTuple):
    """A request refused by a rate limit."""

    limit: RateLimit
    retry_ns: int
    """Nanoseconds until the oldest counted request leaves the window."""


class RequestLimiter:
    """Exchange-side sliding-window request counting (simulated venues and simulator).

    A request of kind ``k`` counts against every row whose ``kinds`` hold ``k``, in the
    counter its scope picks (:meth:`RateLimit.key`). The request that would exceed a
    row's ``limit`` within ``window_ns`` is refused and not counted.

    Parameters
    ----------
    limits:
        The venue's rate-limit rows (``VenueRules.rate_limits``).
    enforce:
        False: count (for the remaining/reset figures) but never refuse.
    """

    def __init__(self, limits: Iterable[RateLimit], *, enforce: bool = True):
        self.limits = tuple(limits)
        self.enforce = enforce
        self._hits: dict[tuple[str, str], deque[int]] = {}

    def counted(self, kind: str) -> tuple[RateLimit, ...]:
        """The rows a request of ``kind`` counts against."""
        return tuple(lim for lim in self.limits if kind in lim.kinds)

    def _window(self, lim: RateLimit, now_ns: int, account: str, market: str) -> deque[int]:
        q = self._hits.setdefault((lim.name, lim.key(account=account, market=market)), deque())
        while q and q[0] <= now_ns - lim.window_ns:
            q.popleft()
        return q

    def hit(self, kind: str, now_ns: int, *, account: str = "", market: str = "") -> Breach | None:
        """Count a request of ``kind`` at ``now_ns``; the limit it breaks (nothing is
        counted then) or None."""
        windows = []
        for lim in self.counted(kind):
            q = self._window(lim, now_ns, account, market)
            if self.enforce and len(q) >= lim.limit:
                return Breach(lim, q[0] + lim.window_ns - now_ns)
            windows.append(q)
        for q in windows:
            q.append(now_ns)
        return None

    def remaining(
        self, lim: RateLimit, now_ns: int, *, account: str = "", market: str = ""
    ) -> tuple[int, int]:
        """(requests left, when the window frees its oldest slot in ns; ``now_ns`` when
        empty) of one counter, for Gate's rate-limit headers."""
        q = self._window(lim, now_ns, account, market)
        reset = q[0] + lim.window_ns if q else now_ns
        return max(0, lim.limit - len(q)), reset
