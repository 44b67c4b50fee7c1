"""Gate.io's order rules and its complete request-rate table (PROTOCOLS.md B4).

One table for everyone: the live REST client's limiter (its endpoint rows name the family
each endpoint is charged to), the replay and paper venues and the exchange simulator.
"""

from __future__ import annotations

from arbsim.core.rules import RateLimit, Scope, VenueRules, venue_codes
from exchanges.gateio import errors

__all__ = ["GATEIO_RULES"]

GATEIO_RULES = VenueRules(
    name="gateio",
    codes=venue_codes(errors.REJECTIONS, errors.ERROR_LABELS),
    post_only_cross="reject",
    fee_currency="received",
    market_buy_in_quote=True,
    rate_limits=(
        # B4: spot place + amend, per UID per market.
        RateLimit(
            name="place",
            kinds=frozenset({"place"}),
            limit=10,
            window_s=1.0,
            scope=Scope.MARKET,
        ),
        # B4: cancels.
        RateLimit(
            name="cancel",
            kinds=frozenset({"cancel"}),
            limit=200,
            window_s=1.0,
            scope=Scope.ACCOUNT,
        ),
        # B4: other private endpoints.
        RateLimit(name="private", limit=200, window_s=10.0, scope=Scope.ACCOUNT),
        # B4: public endpoints, per endpoint per IP.
        RateLimit(name="public", limit=200, window_s=10.0, scope=Scope.ENDPOINT),
    ),
)
"""Gate's order rules: labels from :mod:`exchanges.gateio.errors`, a crossing ``poc``
refused, fees in the asset received, market buys sized in quote, and the rate limits."""
