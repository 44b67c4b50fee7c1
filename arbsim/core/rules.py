"""How venues treat orders, as data the whole project shares: the venue-neutral
rejection kinds, request-rate limits and each venue's order rules.

The tables themselves live with each venue (``exchanges/mexc/rules.py``, ...): the live
client's limiter, the simulated venues and the exchange simulator all read the same one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from arbsim.core.errors import (
    BelowMinimum,
    InsufficientBalance,
    InvalidOrder,
    OrderNotFound,
    PostOnlyWouldTake,
    PrecisionError,
    RateLimited,
    VenueError,
)


class Rejection(StrEnum):
    """Rejection kinds the local exchange simulator can answer with, venue-neutral."""

    INSUFFICIENT_BALANCE = "insufficient_balance"
    INVALID_SYMBOL = "invalid_symbol"
    ORDER_NOT_FOUND = "order_not_found"
    BAD_SIGNATURE = "bad_signature"
    BAD_KEY = "bad_key"
    TIMESTAMP_EXPIRED = "timestamp_expired"
    PRECISION = "precision"
    BELOW_MINIMUM = "below_minimum"
    POST_ONLY_WOULD_TAKE = "post_only_would_take"
    RATE_LIMITED = "rate_limited"


@dataclass(frozen=True)
class RateLimit:
    """``limit`` requests of ``kinds`` per ``window_ns``, per symbol or per account."""

    name: str
    kinds: frozenset[str]
    limit: int
    window_ns: int
    per_symbol: bool


@dataclass(frozen=True)
class VenueRules:
    """One venue's order-handling rules.

    Attributes
    ----------
    codes:
        Rejection kind -> (venue code or label, arbsim error class).
    post_only_cross:
        ``"reject"``: a crossing post-only order is refused with an error (MEXC
        ``LIMIT_MAKER``; Gate ``poc`` with the label ``POC_FILL_IMMEDIATELY`` — PROTOCOLS
        B3 lists that and ``finish_as=poc``; arbsim, replay and simulator alike, answers
        with the documented label); ``"cancel"``: accepted and cancelled at once.
    fee_currency:
        ``"quote"``: every fee in the quote asset; ``"received"``: in the asset the
        trade pays out (base for a buy, quote for a sell), as MEXC and Gate charge.
    market_buy_in_quote:
        Market buys are sized in quote currency (Gate requires it; MEXC allows it).
    rate_limits:
        Exchange-side request limits; a request over a limit is rejected as rate-limited.
    """

    name: str
    codes: Mapping[str, tuple[str, type[VenueError]]]
    post_only_cross: str
    fee_currency: str
    market_buy_in_quote: bool
    rate_limits: tuple[RateLimit, ...]


#: matching-engine rejection kind -> (arbsim's own code, error class): what a simulated
#: venue with generic rules answers; a venue's rules replace the codes it has its own for
GENERIC_CODES: dict[str, tuple[str, type[VenueError]]] = {
    "insufficient_balance": ("INSUFFICIENT_BALANCE", InsufficientBalance),
    "invalid_price": ("INVALID_PRICE_PRECISION", PrecisionError),
    "invalid_qty": ("INVALID_QTY_PRECISION", PrecisionError),
    "below_min_qty": ("BELOW_MIN_QTY", BelowMinimum),
    "below_min_notional": ("BELOW_MIN_NOTIONAL", BelowMinimum),
    "post_only_would_take": ("POST_ONLY_WOULD_TAKE", PostOnlyWouldTake),
    "order_not_found": ("ORDER_NOT_FOUND", OrderNotFound),
    "duplicate_client_id": ("DUPLICATE_CLIENT_ORDER_ID", InvalidOrder),
    "max_open_orders": ("MAX_OPEN_ORDERS", InvalidOrder),
    "rate_limited": ("TOO_MANY_REQUESTS", RateLimited),
}


GENERIC_RULES = VenueRules(
    name="generic",
    codes=dict(GENERIC_CODES),
    post_only_cross="reject",
    fee_currency="quote",
    market_buy_in_quote=False,
    rate_limits=(),
)
"""Order rules of no venue in particular: arbsim's own codes, fees in quote, no limits."""
