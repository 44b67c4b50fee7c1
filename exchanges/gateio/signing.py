"""Gate.io v4 signing (PROTOCOLS.md B1, B6, B7).

Three different strings are signed with HMAC-SHA512 (hex):

* REST: ``METHOD\\n/api/v4/path\\nrawQuery\\nhex(SHA512(body))\\nTimestamp``;
* WebSocket API (``spot.login``, order entry): ``api\\n<channel>\\n<req_param JSON>\\n<ts>``;
* private channel subscriptions: ``channel=<ch>&event=<ev>&time=<time>``.
"""

from __future__ import annotations

import hashlib
import hmac
import math

__all__ = [
    "API_PREFIX",
    "MAX_CLOCK_SKEW_S",
    "body_hash",
    "channel_auth_payload",
    "request_headers",
    "sign_channel_auth",
    "sign_request",
    "sign_ws_api",
    "signature_string",
    "timestamp_acceptable",
    "verify_channel_auth",
    "verify_request",
    "verify_ws_api",
]

API_PREFIX = "/api/v4"
MAX_CLOCK_SKEW_S = 60.0


def _hmac512(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha512).hexdigest()


def body_hash(body: str | bytes) -> str:
    """Hex SHA-512 of the raw body (an empty body hashes to SHA512(""))."""
    raw = body.encode() if isinstance(body, str) else body
    return hashlib.sha512(raw).hexdigest()


def signature_string(method: str, path: str, query: str, body: str | bytes, timestamp: str) -> str:
    """The five-line string a REST request signs.

    Parameters
    ----------
    method:
        HTTP method; upper-cased here.
    path:
        Full path including ``/api/v4`` (not the host).
    query:
        Raw query string in URL order, not url-encoded, ``""`` when none.
    body:
        Raw body, ``""`` when none.
    timestamp:
        The ``Timestamp`` header value exactly as sent (seconds, decimals allowed).
    """
    if not path.startswith(API_PREFIX + "/"):
        raise ValueError(f"Gate signs the full path starting with {API_PREFIX}/, got {path!r}")
    return "\n".join((method.upper(), path, query, body_hash(body), timestamp))


def sign_request(
    secret: str, method: str, path: str, query: str, body: str | bytes, timestamp: str
) -> str:
    """Return the ``SIGN`` header value (hex HMAC-SHA512 of :func:`signature_string`)."""
    return _hmac512(secret, signature_string(method, path, query, body, timestamp))


def request_headers(
    key: str, secret: str, method: str, path: str, query: str, body: str | bytes, timestamp: str
) -> dict[str, str]:
    """The three authentication headers ``KEY``, ``Timestamp``, ``SIGN`` of a REST request."""
    return {
        "KEY": key,
        "Timestamp": timestamp,
        "SIGN": sign_request(secret, method, path, query, body, timestamp),
    }


def verify_request(
    secret: str,
    method: str,
    path: str,
    query: str,
    body: str | bytes,
    timestamp: str,
    signature: str,
) -> bool:
    """Server side: check a REST ``SIGN`` header against the raw request parts."""
    try:
        expected = sign_request(secret, method, path, query, body, timestamp)
    except ValueError:
        return False
    return hmac.compare_digest(expected, signature.lower())


def timestamp_acceptable(
    timestamp: str, server_s: float, max_skew_s: float = MAX_CLOCK_SKEW_S
) -> bool:
    """Server side: ``Timestamp`` (seconds, decimals allowed) within 60 s of server time.

    A value that is not a finite number is not acceptable (the venue answers
    ``REQUEST_EXPIRED`` / ``MISSING_REQUIRED_HEADER`` in that case).
    """
    try:
        value = float(timestamp)
    except ValueError:
        return False
    return math.isfinite(value) and abs(server_s - value) <= max_skew_s


def sign_ws_api(secret: str, channel: str, req_param: str, timestamp: str) -> str:
    """Signature of a WebSocket API request (``spot.login``, ``spot.order_place``, ...).

    ``req_param`` is the JSON text exactly as sent (``"{}"`` for a login as real clients
    send it; the doc's empty string is also accepted by this function: sign what you send).
    """
    return _hmac512(secret, f"api\n{channel}\n{req_param}\n{timestamp}")


def verify_ws_api(
    secret: str, channel: str, req_param: str, timestamp: str, signature: str
) -> bool:
    """Server side: check a WebSocket API ``signature``."""
    return hmac.compare_digest(
        sign_ws_api(secret, channel, req_param, timestamp), signature.lower()
    )


def channel_auth_payload(channel: str, event: str, time: int | str) -> str:
    """The string a private channel subscription signs."""
    return f"channel={channel}&event={event}&time={time}"


def sign_channel_auth(secret: str, channel: str, event: str, time: int | str) -> str:
    """``auth.SIGN`` of a private channel (un)subscription (``spot.orders`` ...)."""
    return _hmac512(secret, channel_auth_payload(channel, event, time))


def verify_channel_auth(
    secret: str, channel: str, event: str, time: int | str, signature: str
) -> bool:
    """Server side: check ``auth.SIGN`` of a private channel request."""
    return hmac.compare_digest(sign_channel_auth(secret, channel, event, time), signature.lower())
