"""How each venue treats orders, as data: rejection codes, post-only behaviour, fee
currency, market-buy sizing and request-rate limits.

The simulated matching (replay, paper, exchange simulator) reads these tables so that a
rejection in a backtest carries the code the real venue answers with, and a strategy
sees it through the same error types as in live trading. Codes come from the venues'
own error tables (``exchanges/mexc/errors.py``, ``exchanges/gateio/errors.py``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

from arbsim.core.errors import InvalidOrder, RateLimited, VenueError
from arbsim.core.rules import GENERIC_CODES, GENERIC_RULES, RateLimit, Rejection, VenueRules
from exchanges.gateio import errors as gate_errors
from exchanges.mexc import errors as mexc_errors

#: matching-engine rejection kind -> the venue-neutral rejection it is an instance of
_KIND_TO_REJECTION: dict[str, Rejection] = {
    "insufficient_balance": Rejection.INSUFFICIENT_BALANCE,
    "invalid_price": Rejection.PRECISION,
    "invalid_qty": Rejection.PRECISION,
    "below_min_qty": Rejection.BELOW_MINIMUM,
    "below_min_notional": Rejection.BELOW_MINIMUM,
    "post_only_would_take": Rejection.POST_ONLY_WOULD_TAKE,
    "order_not_found": Rejection.ORDER_NOT_FOUND,
    "rate_limited": Rejection.RATE_LIMITED,
}


def _codes(
    rejections: Mapping[Rejection, tuple[int, int | str, str]],
    classes: Mapping[str, type[VenueError]],
) -> dict[str, tuple[str, type[VenueError]]]:
    out = dict(GENERIC_CODES)
    for kind, rejection in _KIND_TO_REJECTION.items():
        _, code, _ = rejections[rejection]
        cls = RateLimited if rejection is Rejection.RATE_LIMITED else classes.get(str(code))
        out[kind] = (str(code), cls or GENERIC_CODES[kind][1])
    return out


_SECOND = 1_000_000_000

RULES: dict[str, VenueRules] = {
    "generic": GENERIC_RULES,
    "mexc": VenueRules(
        name="mexc",
        codes=_codes(mexc_errors.REJECTIONS, mexc_errors.ERROR_CODES),
        post_only_cross="reject",
        fee_currency="received",
        market_buy_in_quote=False,
        # PROTOCOLS A4: new orders share 12 requests/s with cancels
        rate_limits=(
            RateLimit("order+cancel", frozenset({"place", "cancel"}), 12, _SECOND, False),
        ),
    ),
    "gateio": VenueRules(
        name="gateio",
        codes=_codes(gate_errors.REJECTIONS, gate_errors.ERROR_LABELS),
        post_only_cross="reject",
        fee_currency="received",
        market_buy_in_quote=True,
        # PROTOCOLS B4: place 10 r/s per market; cancels 200 r/s
        rate_limits=(
            RateLimit("place", frozenset({"place"}), 10, _SECOND, True),
            RateLimit("cancel", frozenset({"cancel"}), 200, _SECOND, False),
        ),
    ),
}


def rules_for(name: str | None, venue: str) -> VenueRules:
    """The named rules, or (``None``) the venue's own when it is known, else generic."""
    key = name or (venue if venue in RULES else "generic")
    try:
        return RULES[key]
    except KeyError:
        raise InvalidOrder(f"unknown venue rules {key!r} (known: {', '.join(RULES)})") from None


class RequestLimiter:
    """Exchange-side sliding-window request counting for one account."""

    def __init__(self, limits: tuple[RateLimit, ...]):
        self.limits = limits
        self._hits: dict[tuple[str, str], deque[int]] = {}

    def allow(self, kind: str, symbol: str, ts: int) -> RateLimit | None:
        """Count a request at ``ts``; return the limit it breaks (not counted) or None."""
        keys = []
        for lim in self.limits:
            if kind not in lim.kinds:
                continue
            key = (lim.name, symbol if lim.per_symbol else "")
            q = self._hits.setdefault(key, deque())
            while q and q[0] <= ts - lim.window_ns:
                q.popleft()
            if len(q) >= lim.limit:
                return lim
            keys.append(q)
        for q in keys:
            q.append(ts)
        return None
