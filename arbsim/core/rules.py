"""How venues treat orders, as data the whole project shares: the venue-neutral
rejection kinds, the generic rejection codes, request-rate limits and each venue's order
rules.

The tables themselves live with each venue (``exchanges/mexc/rules.py``,
``exchanges/gateio/rules.py``; the generic rules in ``exchanges/simulated/rules.py``): the
live client's limiter, the simulated venues and the exchange simulator all read the same
one.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

import msgspec

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

__all__ = [
    "GENERIC_CODES",
    "RateLimit",
    "RejectKind",
    "Rejection",
    "Scope",
    "SimError",
    "VenueRules",
    "venue_codes",
]


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


class SimError(StrEnum):
    """Rejections beyond :class:`Rejection`: a request's shape and the simulator's
    bookkeeping (values must not clash with :class:`Rejection`'s)."""

    MISSING_PARAM = "missing_param"
    BAD_PARAM = "bad_param"
    NO_ORDER_ID = "no_order_id"
    RECV_WINDOW_TOO_LARGE = "recv_window_too_large"
    MISSING_KEY = "missing_key"
    CANCEL_UNKNOWN = "cancel_unknown"
    ORDER_CLOSED = "order_closed"
    ORDER_CANCELLED = "order_cancelled"
    DUPLICATE_CLIENT_ID = "duplicate_client_id"
    FOK_NOT_FILLED = "fok_not_filled"
    INVALID_CLIENT_ID = "invalid_client_id"
    INVALID_LISTEN_KEY = "invalid_listen_key"
    BAD_BODY = "bad_body"
    UNKNOWN_ASSET = "unknown_asset"
    WITHDRAWAL_NOT_FOUND = "withdrawal_not_found"
    WITHDRAWAL_NOT_CANCELLABLE = "withdrawal_not_cancellable"


RejectKind = Rejection | SimError
"""Every kind of answer the exchange simulator refuses a request with; each venue spells
them in its ``REJECTIONS`` table (``exchanges/<venue>/errors.py``)."""


#: matching-engine rejection kind -> (code, error class): the codes of the generic rules;
#: a venue's rules replace the codes with its own (:func:`venue_codes`).
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


def venue_codes(
    rejections: Mapping[RejectKind, tuple[int, int | str, str]],
    classes: Mapping[str, type[VenueError]],
) -> dict[str, tuple[str, type[VenueError]]]:
    """The matching-engine codes of a venue, from its error module.

    Parameters
    ----------
    rejections:
        The venue's ``REJECTIONS`` (rejection -> (HTTP status, code or label, message)).
    classes:
        The venue's code or label -> arbsim error class.
    """
    out = dict(GENERIC_CODES)
    for kind, rejection in _KIND_TO_REJECTION.items():
        _, code, _ = rejections[rejection]
        cls = RateLimited if rejection is Rejection.RATE_LIMITED else classes.get(str(code))
        out[kind] = (str(code), cls or GENERIC_CODES[kind][1])
    return out


class Scope(StrEnum):
    """What a rate limit counts requests per."""

    ACCOUNT = "account"
    """Per API key (the venue's UID)."""
    MARKET = "market"
    """Per API key and market."""
    IP = "ip"
    """Per client IP address."""
    ENDPOINT = "endpoint"
    """Per client IP address and endpoint."""


class RateLimit(msgspec.Struct, frozen=True, kw_only=True):
    """One published request limit: ``limit`` requests per ``window_s`` seconds and scope.

    The same row drives the exchange side (the simulated venues and the exchange
    simulator refuse the request over the limit, counted in a sliding window) and the
    client side (the live REST client's token bucket: ``limit`` tokens refilled over
    ``window_s``, a request waits for its tokens).

    Attributes
    ----------
    name:
        The family: what a REST client's endpoint rows name to be charged to it.
    limit, window_s:
        Requests (or weight units) per window.
    scope:
        What the requests are counted per (:class:`Scope`).
    kinds:
        The arbsim request kinds (``place``, ``cancel``) the exchange side counts against
        it; empty for a limit only the client enforces (weights, public endpoints).
    """

    name: str
    limit: int
    window_s: float
    scope: Scope
    kinds: frozenset[str] = frozenset()

    @property
    def window_ns(self) -> int:
        """The window in integer nanoseconds."""
        return round(self.window_s * 1_000_000_000)

    def key(self, *, account: str = "", market: str = "", endpoint: str = "", ip: str = "") -> str:
        """The counter a request falls into, within this limit (by :attr:`scope`)."""
        if self.scope is Scope.ACCOUNT:
            return account
        if self.scope is Scope.MARKET:
            return f"{account}|{market}"
        if self.scope is Scope.IP:
            return ip
        return f"{ip}|{endpoint}"


class VenueRules(msgspec.Struct, frozen=True, kw_only=True):
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
        The venue's complete request-limit table (one row per family).
    """

    name: str
    codes: Mapping[str, tuple[str, type[VenueError]]]
    post_only_cross: str
    fee_currency: str
    market_buy_in_quote: bool
    rate_limits: tuple[RateLimit, ...]

    def __post_init__(self) -> None:
        names = [r.name for r in self.rate_limits]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: rate-limit families must be unique, got {names}")

    def rate_limit(self, name: str) -> RateLimit:
        """The row of family ``name``."""
        for row in self.rate_limits:
            if row.name == name:
                return row
        raise KeyError(f"{self.name} has no rate limit {name!r}")


GENERIC_RULES = VenueRules(
    name="generic",
    codes=dict(GENERIC_CODES),
    post_only_cross="reject",
    fee_currency="quote",
    market_buy_in_quote=False,
    rate_limits=(),
)
"""Venue-neutral rules: arbsim's own codes, fees in quote, no rate limits."""
