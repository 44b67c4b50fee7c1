"""Venue error answers turned into the arbsim error tree, and the exchange simulator's
rejections spelled as the venue answers them, both driven by each venue's
:class:`ErrorSpec` (how it spells codes and messages) rather than per-venue code.

Parse failures on the adapter side (a REST body, a WebSocket frame, a push, a conversion
to arbsim types) all become :class:`~arbsim.core.errors.MalformedMessage` through
:func:`decode_body`, :func:`parsing` and :func:`parser`, so a caller that handles
:class:`~arbsim.core.errors.VenueError` handles them too.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import ParamSpec, TypeVar

import msgspec

from arbsim.core.errors import (
    ExchangeUnavailable,
    MalformedMessage,
    NetworkError,
    OutcomeUnknown,
    RateLimited,
    VenueError,
)
from arbsim.core.rules import RejectKind

T = TypeVar("T")
P = ParamSpec("P")

PARSE_ERRORS: tuple[type[Exception], ...] = (
    msgspec.DecodeError,  # incl. ValidationError: not JSON, wrong shape or type
    ValueError,  # int("x"), float("x"), unknown enum value
    ArithmeticError,  # decimal.InvalidOperation, OverflowError
    TypeError,
    LookupError,  # a value missing from a venue vocabulary table
    RecursionError,  # absurdly nested JSON decoded as Any
)
"""What decoding or converting a venue message raises when the message is malformed."""


def describe(exc: BaseException) -> str:
    """What went wrong, without repeating the message's content (msgspec names the field and
    the types; other errors only say their kind)."""
    if isinstance(exc, msgspec.DecodeError):
        return str(exc)[:200]
    return type(exc).__name__


def decode_body(
    decoder: msgspec.json.Decoder[T], body: bytes | str, *, venue: str, channel: str
) -> T:
    """``decoder.decode(body)``, a failure raised as :class:`MalformedMessage` naming the
    venue and ``channel`` (the REST path or stream channel)."""
    try:
        return decoder.decode(body)
    except (msgspec.DecodeError, RecursionError) as exc:
        text = f"{channel}: {describe(exc)}" if channel else describe(exc)
        raise MalformedMessage(text, venue=venue, channel=channel) from exc


@contextlib.contextmanager
def parsing(
    venue: str, channel: str, *, what: str = "", symbol: str | None = None
) -> Iterator[None]:
    """Turn a parse failure (:data:`PARSE_ERRORS`) inside the block into
    :class:`MalformedMessage`; ``what`` names the thing being read."""
    try:
        yield
    except PARSE_ERRORS as exc:
        raise MalformedMessage(
            f"{channel}: {what or 'message'} unreadable ({describe(exc)})",
            venue=venue,
            channel=channel,
            symbol=symbol,
        ) from exc


def parser(venue: str, what: str) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Decorate a conversion of venue data (``to_order``, ``to_fill``...) so that a
    malformed input raises :class:`MalformedMessage` (``channel`` = ``what``)."""

    def wrap(fn: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(fn)
        def inner(*args: P.args, **kwargs: P.kwargs) -> T:
            with parsing(venue, what, what=what):
                return fn(*args, **kwargs)

        return inner

    return wrap


def number(text: str, name: str, *, positive: bool = False, signed: bool = False) -> Decimal:
    """A decimal field of a venue message: a finite number, not negative unless ``signed``
    (a fee may be a rebate), above zero when ``positive`` (a price, a fill's quantity).

    Raises
    ------
    ValueError, decimal.InvalidOperation
        Not such a number (:func:`parsing` / :func:`parser` make it
        :class:`MalformedMessage`).
    """
    value = Decimal(text)
    if not value.is_finite() or (value < 0 and not signed) or (positive and value <= 0):
        raise ValueError(f"{name} is not a {'positive ' if positive else ''}number")
    return value


def order_answer_error(error: MalformedMessage) -> OutcomeUnknown:
    """An unreadable answer to an order request (place, cancel): the request may have
    taken effect, so its outcome is unknown (query the order), never a rejection."""
    return OutcomeUnknown(
        f"unreadable answer: {error.args[0] if error.args else ''}",
        code="malformed_answer",
        venue=error.venue,
    )


class ErrorSpec(msgspec.Struct, frozen=True, kw_only=True):
    """How one venue spells errors, in both directions.

    Attributes
    ----------
    venue:
        Venue name put on the errors.
    code_field, message_field:
        Keys of the error body (MEXC ``code``/``msg``, Gate ``label``/``message``).
    codes:
        Venue code or label -> error class.
    statuses:
        HTTP status -> error class, used when the body carries no known code.
    rejections:
        Rejection kind -> (HTTP status, code or label, message) the exchange simulator
        answers with; ``{}`` in a message stands for the request's detail.
    """

    venue: str
    code_field: str
    message_field: str
    codes: Mapping[str, type[VenueError]]
    statuses: Mapping[int, type[VenueError]]
    rejections: Mapping[RejectKind, tuple[int, int | str, str]]

    def error_from_response(
        self,
        http_status: int,
        body: bytes,
        headers: Mapping[str, str],
        *,
        order_request: bool = False,
    ) -> VenueError:
        """Map an error answer of the venue to an arbsim error (:func:`map_error_response`).

        Parameters
        ----------
        http_status:
            The HTTP status.
        body:
            Raw body (the venue's error object, or anything else from a proxy or WAF).
        headers:
            Response headers (``Retry-After`` is read on 418/429).
        order_request:
            True for place/cancel requests: a 5xx then becomes :class:`OutcomeUnknown`.
        """
        return map_error_response(self, http_status, body, headers, order_request=order_request)

    def rejection_response(
        self, kind: RejectKind, detail: str = "", *, retry_after: float | None = None
    ) -> tuple[int, bytes, dict[str, str]]:
        """What the venue answers for ``kind``: (HTTP status, JSON body, extra headers).

        ``detail`` fills the message's ``{}``; ``retry_after`` (seconds) adds a
        ``Retry-After`` header.
        """
        status, code, message = self.rejections[kind]
        body = {self.code_field: code, self.message_field: message.replace("{}", detail)}
        headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
        return status, msgspec.json.encode(body), headers


_RATE_LIMIT_STATUSES = frozenset({418, 429})


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup that also works on a plain dict."""
    value = headers.get(name)
    if value is not None:
        return value
    lower = name.lower()
    for key, val in headers.items():
        if key.lower() == lower:
            return val
    return None


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds form; a date gives None)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def _error_body(spec: ErrorSpec, body: bytes) -> tuple[str | None, str]:
    try:
        data = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):
        # WAF and proxy errors answer HTML or plain text.
        return None, body[:200].decode(errors="replace")
    if not isinstance(data, dict):
        return None, str(data)[:200]
    code = data.get(spec.code_field)
    message = data.get(spec.message_field)
    return (None if code is None else str(code)), ("" if message is None else str(message))


def map_error_response(
    spec: ErrorSpec,
    http_status: int,
    body: bytes,
    headers: Mapping[str, str],
    *,
    order_request: bool = False,
) -> VenueError:
    """Turn an error answer into the arbsim error a caller can act on.

    Order of rules: 418/429 -> :class:`RateLimited` (``Retry-After`` parsed); 5xx ->
    :class:`ExchangeUnavailable`, or :class:`OutcomeUnknown` when ``order_request`` (the order
    may exist: query it); a known body code -> its class; a known status -> its class;
    otherwise a plain :class:`VenueError` carrying the code.
    """
    code, message = _error_body(spec, body)
    text = message or f"HTTP {http_status}"
    if http_status in _RATE_LIMIT_STATUSES:
        retry_after = parse_retry_after(header(headers, "Retry-After"))
        return RateLimited(text, code=code, venue=spec.venue, retry_after=retry_after)
    if http_status >= 500:
        cls: type[VenueError] = OutcomeUnknown if order_request else ExchangeUnavailable
        return cls(text, code=code or str(http_status), venue=spec.venue)
    if code is not None and code in spec.codes:
        return spec.codes[code](text, code=code, venue=spec.venue)
    cls = spec.statuses.get(http_status, VenueError)
    return cls(text, code=code or str(http_status), venue=spec.venue)


def as_order_request_error(error: VenueError) -> VenueError:
    """For an order request, a 5xx or a broken connection means "outcome unknown".

    Returns ``error`` unchanged unless it is :class:`ExchangeUnavailable` or
    :class:`NetworkError`, which become :class:`OutcomeUnknown` (same code and venue).
    """
    if isinstance(error, ExchangeUnavailable | NetworkError):
        return OutcomeUnknown(
            str(error.args[0]) if error.args else "", code=error.code, venue=error.venue
        )
    return error
