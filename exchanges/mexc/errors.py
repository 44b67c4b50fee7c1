"""MEXC error codes <-> arbsim errors (PROTOCOLS.md A4).

Both directions are tables: :data:`ERROR_CODES` reads venue answers,
:data:`REJECTIONS` lets the local exchange simulator answer like MEXC.

⚠ MEXC documents no code for a precision error or a crossing ``LIMIT_MAKER``; the simulator
uses the Binance-compatible ``-1111`` and ``-2010`` (MEXC keeps other Binance codes such as
``-1121``, ``-2011``, ``-2013``). These two are unverified against the live venue. The HTTP
status of MEXC rejections is taken to be 400 (clients decide on the body ``code``).
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
    "ERROR_CODES",
    "ERROR_SPEC",
    "HTTP_STATUSES",
    "REJECTIONS",
    "error_from_response",
    "rejection_response",
]

VENUE = "mexc"

ERROR_CODES: dict[str, type[VenueError]] = {
    "10101": InsufficientBalance,
    "30004": InsufficientBalance,  # insufficient position
    "30005": InsufficientBalance,  # oversold
    "-1121": InvalidSymbol,
    "10007": InvalidSymbol,
    "30014": InvalidSymbol,
    "30021": InvalidSymbol,
    "730001": InvalidSymbol,
    "-2011": OrderNotFound,  # cancel of an unknown order
    "-2013": OrderNotFound,  # query of an unknown order
    "700002": AuthError,  # signature not valid
    "602": AuthError,  # signature verification failed
    "700001": AuthError,  # bad API key
    "10072": AuthError,  # bad API key
    "700003": AuthError,  # timestamp outside recvWindow
    "700005": AuthError,  # recvWindow > 60000: the request's auth parameters are unusable
    "700006": AuthError,  # IP not whitelisted
    "700007": AuthError,  # no permission for the endpoint
    "30002": BelowMinimum,
    "700004": InvalidOrder,  # neither orderId nor origClientOrderId sent
    "-1111": PrecisionError,  # ⚠ Binance-compatible, unverified on MEXC
    "-2010": PostOnlyWouldTake,  # ⚠ Binance-compatible, unverified on MEXC
    "429": RateLimited,
    # wallet (withdrawals): codes as clients of the venue list them
    "10232": InvalidOrder,  # currency does not exist
    "10212": InvalidOrder,  # withdrawal address not on the address list
    "10100": InvalidOrder,  # this currency transfer is not supported
    "10265": InvalidOrder,  # withdrawal unavailable (risk control)
}
"""Body ``code`` -> error class."""

HTTP_STATUSES: dict[int, type[VenueError]] = {
    401: AuthError,
    # 403 is MEXC's WAF block: a limit breach, not a credential problem.
    403: RateLimited,
}
"""HTTP status -> error class when the body carries no known code."""

REJECTIONS: dict[RejectKind, tuple[int, int, str]] = {
    Rejection.INSUFFICIENT_BALANCE: (400, 10101, "Insufficient balance!"),
    Rejection.INVALID_SYMBOL: (400, -1121, "Invalid symbol."),
    Rejection.ORDER_NOT_FOUND: (400, -2013, "Order does not exist."),
    Rejection.BAD_SIGNATURE: (400, 700002, "Signature for this request is not valid."),
    Rejection.BAD_KEY: (400, 10072, "Api key info invalid"),
    Rejection.TIMESTAMP_EXPIRED: (
        400,
        700003,
        "Timestamp for this request is outside of the recvWindow.",
    ),
    Rejection.PRECISION: (400, -1111, "Precision is over the maximum defined for this asset."),
    Rejection.BELOW_MINIMUM: (
        400,
        30002,
        "Minimum transaction volume cannot be less than the limit",
    ),
    Rejection.POST_ONLY_WOULD_TAKE: (400, -2010, "Order would immediately match and take."),
    Rejection.RATE_LIMITED: (429, 429, "Too Many Requests"),
    # ⚠ MEXC documents none of these texts except 700004/700005 and -2011; -1102 and -1100
    # are the Binance-compatible codes MEXC keeps for parameter errors; -2010 for a duplicate
    # client id and 30016 for an unfilled FOK are unverified.
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
    # wallet: 10232 is the code clients of the venue list for an unknown currency; the
    # two withdrawal-lookup answers are the simulator's (⚠ MEXC documents none)
    SimError.UNKNOWN_ASSET: (400, 10232, "currency does not exist: {}"),
    SimError.WITHDRAWAL_NOT_FOUND: (400, -2013, "Withdrawal does not exist: {}"),
    SimError.WITHDRAWAL_NOT_CANCELLABLE: (400, -2011, "Withdrawal can no longer be cancelled: {}"),
}
"""Rejection kind -> (HTTP status, MEXC code, message) the simulator answers with
(``{}``: the request's detail)."""

ERROR_SPEC = ErrorSpec(
    venue=VENUE, code_field="code", message_field="msg", codes=ERROR_CODES,
    statuses=HTTP_STATUSES, rejections=REJECTIONS,
)  # fmt: skip

error_from_response = ERROR_SPEC.error_from_response
"""Map a MEXC error answer (``{"code": ..., "msg": ...}``) to an arbsim error."""

rejection_response = ERROR_SPEC.rejection_response
"""What MEXC answers for a rejection kind: (HTTP status, JSON body, extra headers)."""
