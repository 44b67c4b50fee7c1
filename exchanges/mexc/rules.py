"""MEXC's order rules and its complete request-rate table (PROTOCOLS.md A2, A4).

One table for everyone: the live REST client's limiter (its endpoint rows name the family
each endpoint is charged to), the replay and paper venues and the exchange simulator.
"""

from __future__ import annotations

from arbsim.core.rules import RateLimit, Scope, VenueRules, venue_codes
from exchanges.mexc import errors

__all__ = ["MEXC_RULES"]

# A4: the IP and the UID weight limits (independent of each other), per 10 s.
_WEIGHT_PER_10S = 500

MEXC_RULES = VenueRules(
    name="mexc",
    codes=venue_codes(errors.REJECTIONS, errors.ERROR_CODES),
    post_only_cross="reject",
    fee_currency="received",
    market_buy_in_quote=False,
    rate_limits=(
        # A4 (MX-NEW): new orders share one budget with cancels, per UID.
        RateLimit(
            name="order",
            kinds=frozenset({"place", "cancel"}),
            limit=12,
            window_s=1.0,
            scope=Scope.ACCOUNT,
        ),
        # GET /api/v3/account has its own per-second limit on top of its weight.
        RateLimit(name="account", limit=2, window_s=1.0, scope=Scope.ACCOUNT),
        # Weights. The venue counts them per endpoint; one counter for all endpoints is
        # stricter, which is the safe side for a client.
        RateLimit(name="ip", limit=_WEIGHT_PER_10S, window_s=10.0, scope=Scope.IP),
        RateLimit(name="uid", limit=_WEIGHT_PER_10S, window_s=10.0, scope=Scope.ACCOUNT),
    ),
)
"""MEXC's order rules: codes from :mod:`exchanges.mexc.errors`, a crossing ``LIMIT_MAKER``
refused, fees in the asset received, market buys sized in base, and the rate limits."""
