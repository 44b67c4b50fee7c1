"""Gate.io error mapping, both directions."""

from __future__ import annotations

import json

import pytest

from arbsim.core import errors as E
from arbsim.core.rules import Rejection
from exchanges.gateio.errors import ERROR_LABELS, error_from_response, rejection_response

EXPECTED: dict[Rejection, type[E.VenueError]] = {
    Rejection.INSUFFICIENT_BALANCE: E.InsufficientBalance,
    Rejection.INVALID_SYMBOL: E.InvalidSymbol,
    Rejection.ORDER_NOT_FOUND: E.OrderNotFound,
    Rejection.BAD_SIGNATURE: E.AuthError,
    Rejection.BAD_KEY: E.AuthError,
    Rejection.TIMESTAMP_EXPIRED: E.AuthError,
    Rejection.PRECISION: E.PrecisionError,
    Rejection.BELOW_MINIMUM: E.BelowMinimum,
    Rejection.POST_ONLY_WOULD_TAKE: E.PostOnlyWouldTake,
    Rejection.RATE_LIMITED: E.RateLimited,
}


def _body(label: str, message: str = "m") -> bytes:
    return json.dumps({"label": label, "message": message}).encode()


@pytest.mark.parametrize("kind", list(Rejection))
def test_simulator_rejection_reads_back_as_the_same_kind(kind: Rejection) -> None:
    status, body, headers = rejection_response(kind)
    decoded = json.loads(body)
    assert set(decoded) == {"label", "message"}
    error = error_from_response(status, body, headers)
    assert type(error) is EXPECTED[kind]
    assert error.code == decoded["label"]
    assert error.venue == "gateio"
    if EXPECTED[kind] is E.AuthError:
        assert status == 401
    if kind is Rejection.RATE_LIMITED:
        assert status == 429


@pytest.mark.parametrize(("label", "cls"), sorted(ERROR_LABELS.items()))
def test_every_label(label: str, cls: type[E.VenueError]) -> None:
    status = 429 if cls is E.RateLimited else 400
    error = error_from_response(status, _body(label, "why"), {})
    assert type(error) is cls
    assert error.code == label
    assert "why" in str(error)


def test_documented_labels_present() -> None:
    documented = {
        "BALANCE_NOT_ENOUGH", "INVALID_CURRENCY_PAIR", "ORDER_NOT_FOUND", "ORDER_CLOSED",
        "ORDER_CANCELLED", "INVALID_SIGNATURE", "INVALID_KEY", "MISSING_REQUIRED_HEADER",
        "IP_FORBIDDEN", "READ_ONLY", "REQUEST_EXPIRED", "INVALID_PRECISION", "AMOUNT_TOO_LITTLE",
        "POC_FILL_IMMEDIATELY", "FOK_NOT_FILL", "INVALID_CLIENT_ORDER_ID", "TOO_MANY_REQUESTS",
    }  # fmt: skip
    assert documented <= set(ERROR_LABELS)


def test_statuses() -> None:
    limited = error_from_response(429, _body("TOO_MANY_REQUESTS"), {"Retry-After": "1.5"})
    assert isinstance(limited, E.RateLimited) and limited.retry_after == 1.5
    assert type(error_from_response(401, b"", {})) is E.AuthError
    assert type(error_from_response(500, _body("SERVER_ERROR"), {})) is E.ExchangeUnavailable
    order = error_from_response(504, b"gateway timeout", {}, order_request=True)
    assert type(order) is E.OutcomeUnknown
    unknown = error_from_response(400, _body("SOMETHING_NEW"), {})
    assert type(unknown) is E.VenueError and unknown.code == "SOMETHING_NEW"
