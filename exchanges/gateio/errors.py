"""Gate.io error labels <-> arbsim errors (PROTOCOLS.md B4).

Both directions are tables: :data:`ERROR_LABELS` reads venue answers,
:data:`REJECTIONS` lets the local exchange simulator answer like Gate. Gate answers auth
failures with HTTP 401 and other rejections with 400 (404 for an unknown order is not
documented; 400 is used); rate limits are 429 ``TOO_MANY_REQUESTS``. Gate sends no
``Retry-After``: its ``X-Gate-RateLimit-Reset-Timestamp`` needs a clock, so ``retry_after``
stays None unless a ``Retry-After`` header is present.
"""

from __future__ import annotations

from arbsim.core.errors import (
    AuthError,
    BelowMinimum,
    InsufficientBalance,
    InvalidOrder,
    InvalidSymbol,
    OrderNotFound,
    PostOnlyWouldTake,
    PrecisionError,
    RateLimited,
    VenueError,
)
from arbsim.core.rules import Rejection, RejectKind, SimError
from exchanges.live.errors import ErrorSpec

__all__ = [
    "ERROR_LABELS",
    "ERROR_SPEC",
    "HTTP_STATUSES",
    "REJECTIONS",
    "error_from_response",
    "rejection_response",
]

VENUE = "gateio"

ERROR_LABELS: dict[str, type[VenueError]] = {
    "BALANCE_NOT_ENOUGH": InsufficientBalance,
    "INVALID_CURRENCY_PAIR": InvalidSymbol,
    "ORDER_NOT_FOUND": OrderNotFound,
    # Cancelling an order that already finished: it is no longer known as an open order.
    "ORDER_CLOSED": OrderNotFound,
    "ORDER_CANCELLED": OrderNotFound,
    "INVALID_SIGNATURE": AuthError,
    "INVALID_KEY": AuthError,
    "MISSING_REQUIRED_HEADER": AuthError,
    "IP_FORBIDDEN": AuthError,
    "READ_ONLY": AuthError,
    "REQUEST_EXPIRED": AuthError,
    "INVALID_PRECISION": PrecisionError,
    "AMOUNT_TOO_LITTLE": BelowMinimum,
    "POC_FILL_IMMEDIATELY": PostOnlyWouldTake,
    "FOK_NOT_FILL": InvalidOrder,
    "INVALID_CLIENT_ORDER_ID": InvalidOrder,
    "TOO_MANY_REQUESTS": RateLimited,
    # wallet (withdrawals)
    "INVALID_CURRENCY": InvalidOrder,
    "INVALID_WITHDRAW_ID": OrderNotFound,
    "INVALID_WITHDRAW_CANCEL_STATUS": InvalidOrder,
    "ADDRESS_NOT_USED": InvalidOrder,
    "WITHDRAWAL_OVER_LIMIT": InvalidOrder,
    "API_WITHDRAW_DISABLED": InvalidOrder,
}
"""Body ``label`` -> error class."""

HTTP_STATUSES: dict[int, type[VenueError]] = {401: AuthError, 403: AuthError}
"""HTTP status -> error class when the body carries no known label."""

REJECTIONS: dict[RejectKind, tuple[int, str, str]] = {
    Rejection.INSUFFICIENT_BALANCE: (400, "BALANCE_NOT_ENOUGH", "Not enough balance"),
    Rejection.INVALID_SYMBOL: (400, "INVALID_CURRENCY_PAIR", "Invalid currency pair"),
    Rejection.ORDER_NOT_FOUND: (400, "ORDER_NOT_FOUND", "Order not found"),
    Rejection.BAD_SIGNATURE: (401, "INVALID_SIGNATURE", "Signature mismatch"),
    Rejection.BAD_KEY: (401, "INVALID_KEY", "Invalid key provided"),
    Rejection.TIMESTAMP_EXPIRED: (401, "REQUEST_EXPIRED", "Request timestamp expired"),
    Rejection.PRECISION: (400, "INVALID_PRECISION", "Invalid precision"),
    Rejection.BELOW_MINIMUM: (400, "AMOUNT_TOO_LITTLE", "Order amount too little"),
    Rejection.POST_ONLY_WOULD_TAKE: (400, "POC_FILL_IMMEDIATELY", "Order would match and take"),
    Rejection.RATE_LIMITED: (429, "TOO_MANY_REQUESTS", "Request rate limit exceeded"),
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
    SimError.UNKNOWN_ASSET: (400, "INVALID_CURRENCY", "Invalid currency: {}"),
    SimError.WITHDRAWAL_NOT_FOUND: (400, "INVALID_WITHDRAW_ID", "Invalid withdrawal id: {}"),
    SimError.WITHDRAWAL_NOT_CANCELLABLE: (
        400,
        "INVALID_WITHDRAW_CANCEL_STATUS",
        "Withdrawal cannot be cancelled in its status: {}",
    ),
}
"""Rejection kind -> (HTTP status, Gate label, message) the simulator answers with
(``{}``: the request's detail)."""

ERROR_SPEC = ErrorSpec(
    venue=VENUE, code_field="label", message_field="message", codes=ERROR_LABELS,
    statuses=HTTP_STATUSES, rejections=REJECTIONS,
)  # fmt: skip

error_from_response = ERROR_SPEC.error_from_response
"""Map a Gate error answer (``{"label": ..., "message": ...}``) to an arbsim error."""

rejection_response = ERROR_SPEC.rejection_response
"""What Gate answers for a rejection kind: (HTTP status, JSON body, extra headers)."""
