"""Rejections of the simulator and how each venue spells them.

The common kinds (:class:`exchanges.live.booksync.Rejection`) are answered through the protocol
layer's ``rejection_response`` tables (``exchanges/mexc/errors.py``,
``exchanges/gateio/errors.py``). The request-shape and bookkeeping errors those tables do not
hold (:class:`SimError`) are spelled here, per venue, as data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum

import msgspec

from arbsim.core.rules import Rejection
from exchanges.gateio import errors as gate_errors
from exchanges.mexc import errors as mexc_errors

__all__ = [
    "GATE_ERRORS",
    "MEXC_ERRORS",
    "RejectKind",
    "SimError",
    "SimReject",
    "int_param",
    "kind_of",
    "reject_response",
]


class SimError(StrEnum):
    """Rejections beyond :class:`Rejection` (values must not clash with its values)."""

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


RejectKind = Rejection | SimError

_KINDS: dict[str, RejectKind] = {k.value: k for k in (*Rejection, *SimError)}


def kind_of(code: str) -> RejectKind:
    """The kind whose value is ``code`` (codes the matching engine reports)."""
    return _KINDS[code]


class SimReject(Exception):
    """A request the simulated venue refuses; ``detail`` fills ``{}`` in the message."""

    def __init__(self, kind: RejectKind, detail: str = ""):
        super().__init__(f"{kind.value}: {detail}")
        self.kind = kind
        self.detail = detail


_UINT = re.compile(r"[0-9]{1,18}")


def int_param(params: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    """A non-negative integer request parameter (``default`` when it is absent).

    Anything else (``"abc"``, ``"1.5"``, ``"-3"``, empty, below ``minimum``) is the venue's
    bad-parameter rejection (:attr:`SimError.BAD_PARAM`: MEXC ``-1100``, Gate
    ``INVALID_PARAM_VALUE``, HTTP 400), not an exception that would answer HTTP 500.
    """
    raw = params.get(name)
    if raw is None:
        return default
    if not _UINT.fullmatch(raw) or int(raw) < minimum:
        raise SimReject(SimError.BAD_PARAM, name)
    return int(raw)


# ⚠ MEXC documents none of these texts except 700004/700005 and -2011; -1102 and -1100 are the
# Binance-compatible codes MEXC keeps for parameter errors; -2010 for a duplicate client id
# and 30016 for an unfilled FOK are unverified.
MEXC_ERRORS: dict[SimError, tuple[int, int, str]] = {
    SimError.MISSING_PARAM: (
        400,
        -1102,
        "Mandatory parameter '{}' was not sent, was empty/null, or malformed.",
    ),
    SimError.BAD_PARAM: (400, -1100, "Illegal characters found in parameter '{}'."),
    SimError.BAD_BODY: (400, -1100, "Illegal characters found in parameter '{}'."),
    SimError.NO_ORDER_ID: (
        400,
        700004,
        "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
    ),
    SimError.RECV_WINDOW_TOO_LARGE: (400, 700005, "recvWindow must less than 60000"),
    SimError.MISSING_KEY: (400, 700001, "API-key format invalid."),
    SimError.CANCEL_UNKNOWN: (400, -2011, "Unknown order sent."),
    SimError.ORDER_CLOSED: (400, -2011, "Unknown order sent."),
    SimError.ORDER_CANCELLED: (400, -2011, "Unknown order sent."),
    SimError.DUPLICATE_CLIENT_ID: (400, -2010, "Duplicate order sent."),
    SimError.FOK_NOT_FILLED: (400, 30016, "FOK order could not be filled."),
    SimError.INVALID_CLIENT_ID: (400, -1100, "Illegal characters found in parameter '{}'."),
    SimError.INVALID_LISTEN_KEY: (400, 700001, "Invalid listen key"),
}
"""Sim error -> (HTTP status, MEXC code, message)."""

GATE_ERRORS: dict[SimError, tuple[int, str, str]] = {
    SimError.MISSING_PARAM: (400, "MISSING_REQUIRED_PARAM", "Missing required parameter: {}"),
    SimError.BAD_PARAM: (400, "INVALID_PARAM_VALUE", "Invalid parameter value: {}"),
    SimError.BAD_BODY: (400, "INVALID_REQUEST_BODY", "Invalid request body: {}"),
    SimError.NO_ORDER_ID: (400, "MISSING_REQUIRED_PARAM", "Missing required parameter: {}"),
    SimError.RECV_WINDOW_TOO_LARGE: (400, "INVALID_PARAM_VALUE", "Invalid parameter value: {}"),
    SimError.MISSING_KEY: (401, "MISSING_REQUIRED_HEADER", "Missing required header: {}"),
    SimError.CANCEL_UNKNOWN: (400, "ORDER_NOT_FOUND", "Order not found"),
    SimError.ORDER_CLOSED: (400, "ORDER_CLOSED", "Order finished"),
    SimError.ORDER_CANCELLED: (400, "ORDER_CANCELLED", "Order cancelled"),
    SimError.DUPLICATE_CLIENT_ID: (400, "INVALID_CLIENT_ORDER_ID", "Duplicate client order id"),
    SimError.FOK_NOT_FILLED: (400, "FOK_NOT_FILL", "FOK order cannot be filled completely"),
    SimError.INVALID_CLIENT_ID: (400, "INVALID_CLIENT_ORDER_ID", "Invalid client order id: {}"),
    SimError.INVALID_LISTEN_KEY: (401, "INVALID_KEY", "Invalid key provided"),
}
"""Sim error -> (HTTP status, Gate label, message)."""


_REJECTIONS = {"mexc": mexc_errors.rejection_response, "gateio": gate_errors.rejection_response}
_SIM_ERRORS: dict[str, tuple[str, str, Mapping[SimError, tuple[int, int | str, str]]]] = {
    "mexc": ("code", "msg", MEXC_ERRORS),
    "gateio": ("label", "message", GATE_ERRORS),
}
"""Venue -> (code field, message field, table) of the error bodies."""


def reject_response(
    venue: str, kind: RejectKind, detail: str = "", *, retry_after: float | None = None
) -> tuple[int, bytes, dict[str, str]]:
    """(HTTP status, JSON body, extra headers) the venue answers for ``kind``."""
    if isinstance(kind, Rejection):
        return _REJECTIONS[venue](kind, retry_after=retry_after)
    code_field, message_field, table = _SIM_ERRORS[venue]
    status, code, message = table[kind]
    body = msgspec.json.encode({code_field: code, message_field: message.replace("{}", detail)})
    return status, body, {}
