"""Venue error answers turned into the arbsim error tree, and the exchange simulator's
rejections spelled as the venue answers them, both driven by each venue's
:class:`ErrorSpec` (how it spells codes and messages) rather than per-venue code."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from arbsim.core.errors import (
    ExchangeUnavailable,
    NetworkError,
    OutcomeUnknown,
    RateLimited,
    VenueError,
)
from arbsim.core.rules import RejectKind


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
    except msgspec.DecodeError:
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
