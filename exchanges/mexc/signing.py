"""MEXC Spot v3 request signing (PROTOCOLS.md A1).

The string to sign is the raw query string followed directly by the raw body (no ``&`` at
the join), signed with HMAC-SHA256 and sent as lowercase hex in the ``signature`` parameter.
Like ccxt, the client puts every parameter in the query string (POST/DELETE too), so the body
is empty and ``signature`` is the last query parameter.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from decimal import Decimal
from urllib.parse import urlencode

__all__ = [
    "API_KEY_HEADER",
    "DEFAULT_RECV_WINDOW",
    "MAX_RECV_WINDOW",
    "sign",
    "signed_query",
    "split_signature",
    "timestamp_acceptable",
    "verify",
]

API_KEY_HEADER = "X-MEXC-APIKEY"
DEFAULT_RECV_WINDOW = 5000
MAX_RECV_WINDOW = 60000
_SIGNATURE_PREFIX = "signature="

ParamValue = str | int | float | Decimal | bool


def sign(secret: str, query: str, body: str = "") -> str:
    """Return the lowercase hex HMAC-SHA256 of ``query + body``.

    Parameters
    ----------
    secret:
        The API secret.
    query:
        The raw (already encoded) query string, without a leading ``?``.
    body:
        The raw request body, empty when all parameters are in the query.
    """
    message = (query + body).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _format(value: ParamValue) -> str:
    if isinstance(value, bool):
        # MEXC, like Binance, spells booleans in lowercase.
        return "true" if value else "false"
    return str(value)


def signed_query(
    params: Mapping[str, ParamValue] | Iterable[tuple[str, ParamValue]],
    secret: str,
    *,
    timestamp_ms: int,
    recv_window: int = DEFAULT_RECV_WINDOW,
) -> str:
    """Build the complete signed query string.

    Parameters are url-encoded in the given order, then ``timestamp`` and ``recvWindow`` are
    appended, the result is signed and ``&signature=<hex>`` is appended last.

    Parameters
    ----------
    params:
        Request parameters (order preserved).
    secret:
        The API secret.
    timestamp_ms:
        Client time in milliseconds (the caller owns the clock).
    recv_window:
        Milliseconds the request stays valid (default 5000, venue maximum 60000).

    Returns
    -------
    str
        ``"<params>&timestamp=...&recvWindow=...&signature=..."`` (no leading ``?``).
    """
    items = params.items() if isinstance(params, Mapping) else params
    pairs = [(k, _format(v)) for k, v in items]
    pairs.append(("timestamp", str(timestamp_ms)))
    pairs.append(("recvWindow", str(recv_window)))
    query = urlencode(pairs)
    return f"{query}&{_SIGNATURE_PREFIX}{sign(secret, query)}"


def split_signature(raw_query: str) -> tuple[str, str | None]:
    """Split a raw query string into (query without ``signature``, signature or None).

    The ``signature`` parameter is removed wherever it sits; the other parameters keep their
    raw (encoded) form and order, which is what the venue signs.
    """
    kept: list[str] = []
    signature: str | None = None
    for part in raw_query.split("&") if raw_query else []:
        if part.startswith(_SIGNATURE_PREFIX):
            signature = part[len(_SIGNATURE_PREFIX) :]
        else:
            kept.append(part)
    return "&".join(kept), signature


def verify(secret: str, raw_query: str, raw_body: str = "") -> bool:
    """Server side: check the ``signature`` parameter of a request.

    Parameters
    ----------
    secret:
        The secret of the API key named in ``X-MEXC-APIKEY``.
    raw_query:
        The query string exactly as received (including ``signature=``).
    raw_body:
        The body exactly as received.

    Returns
    -------
    bool
        False when the signature is missing or wrong.
    """
    query, signature = split_signature(raw_query)
    if signature is None:
        return False
    expected = sign(secret, query, raw_body)
    return hmac.compare_digest(expected, signature.lower())


def timestamp_acceptable(
    timestamp_ms: int, server_ms: int, recv_window: int = DEFAULT_RECV_WINDOW
) -> bool:
    """Server side: the venue's time check (accepted iff ``ts < server + 1000`` and
    ``server - ts <= recvWindow``); a too-large ``recvWindow`` is rejected separately (700005).
    """
    return timestamp_ms < server_ms + 1000 and server_ms - timestamp_ms <= recv_window
