"""How venues treat orders, as data the whole project shares: the venue-neutral
rejection kinds, request-rate limits and each venue's order rules.

The tables themselves live with each venue (``exchanges/mexc/rules.py``, ...): the live
client's limiter, the simulated venues and the exchange simulator all read the same one.
"""

from __future__ import annotations

from enum import StrEnum


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
