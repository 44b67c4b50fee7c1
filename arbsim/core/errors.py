"""The arbsim error tree.

Callers decide what to do by the *type* of an error: anything under
:class:`RetryableError` may be retried after a pause; :class:`OutcomeUnknown`
means an order request may or may not have reached the venue and the order must
be queried before anything else is decided.

Venue-specific codes (MEXC ``10101``, Gate ``BALANCE_NOT_ENOUGH``, ...) travel
on the exception as ``code`` so that a rejection seen in a backtest carries the
same code the real venue returns.
"""

from __future__ import annotations


class ArbsimError(Exception):
    """Base class of every error raised by arbsim."""


class ConfigError(ArbsimError):
    """A configuration file or value is invalid (names the path and the value)."""


class DataError(ArbsimError):
    """A data file is missing, foreign, corrupt or has the wrong schema."""


class StrategyError(ArbsimError):
    """A strategy callback or task raised: the run stops, outputs are still written."""


class IllegalTransition(ArbsimError):
    """An order was asked to move to a state its lifecycle does not allow."""


class LookaheadError(ArbsimError):
    """Code tried to read market data from the future of the engine clock."""


class VenueError(ArbsimError):
    """An error reported by (or about) a venue.

    Parameters
    ----------
    message:
        Human readable text.
    code:
        The venue's own error code or label (``"10101"``, ``"BALANCE_NOT_ENOUGH"``).
    venue:
        The venue name, when known.
    """

    #: the request that failed (``GET https://host/path``, no query: it may be signed)
    #: and the HTTP status the venue answered with, when the error came from one
    request: str | None = None
    http_status: int | None = None

    def __init__(self, message: str, *, code: str | None = None, venue: str | None = None):
        super().__init__(message)
        self.code = code
        self.venue = venue

    def __str__(self) -> str:
        text = super().__str__()
        parts = [p for p in (self.venue, self.code) if p]
        return f"[{' '.join(parts)}] {text}" if parts else text


class MalformedMessage(VenueError):
    """A venue message could not be decoded or used: not JSON or protobuf, a field of the
    wrong type, a number that is not one, a price off the tick grid, a version range that
    runs backwards.

    Parameters
    ----------
    message:
        What was wrong (a field, a type), never the message itself: private messages carry
        account data.
    channel:
        Where it came from: a stream channel, a REST path, a WebSocket API channel.
    symbol:
        The venue's symbol it concerns, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str | None = "malformed",
        venue: str | None = None,
        channel: str = "",
        symbol: str | None = None,
    ):
        super().__init__(message, code=code, venue=venue)
        self.channel = channel
        self.symbol = symbol


class RetryableError(VenueError):
    """A temporary failure: the same request may succeed later."""


class NetworkError(RetryableError):
    """The connection failed before a complete answer was received."""


class RateLimited(RetryableError):
    """The venue (or the client-side limiter) refused the request for rate reasons."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        venue: str | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message, code=code, venue=venue)
        self.retry_after = retry_after


class ExchangeUnavailable(RetryableError):
    """The venue answered 5xx or is in maintenance (for non-order requests)."""


class OutcomeUnknown(VenueError):
    """An order request timed out or got a 5xx: it may or may not exist. Query it."""


class OrderNotPlaced(VenueError):
    """An order whose outcome was unknown is known never to have reached the venue: not
    found once the venue could no longer accept the request."""


class Unresolved(VenueError):
    """An order's outcome stayed unknown past the resolution deadline: nothing may be
    decided on it; the venue is closed to new entries until it is resolved."""


class AuthError(VenueError):
    """Bad key, bad signature, expired timestamp, missing permission or IP block."""


class InvalidOrder(VenueError):
    """The venue rejected an order request (not retryable as is)."""


class InsufficientBalance(InvalidOrder):
    """Not enough free balance for the order."""


class PrecisionError(InvalidOrder):
    """Price or quantity is not on the instrument's tick / lot grid."""


class BelowMinimum(InvalidOrder):
    """Quantity or notional below the instrument's minimum."""


class PostOnlyWouldTake(InvalidOrder):
    """A post-only order would have crossed the book."""


class InvalidSymbol(VenueError):
    """The symbol is unknown to the venue or not tradable."""


class OrderNotFound(VenueError):
    """The venue does not know the order (or no longer does)."""
