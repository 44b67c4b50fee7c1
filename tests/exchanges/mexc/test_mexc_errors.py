"""MEXC error mapping, both directions."""

from __future__ import annotations

import json

import pytest

from arbsim.core import errors as E
from arbsim.core.rules import Rejection
from exchanges.live.errors import as_order_request_error
from exchanges.mexc.errors import ERROR_CODES, error_from_response, rejection_response

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


def _body(code: int | str, msg: str = "m") -> bytes:
    return json.dumps({"code": code, "msg": msg}).encode()


@pytest.mark.parametrize("kind", list(Rejection))
def test_simulator_rejection_reads_back_as_the_same_kind(kind: Rejection) -> None:
    status, body, headers = rejection_response(kind, retry_after=2)
    decoded = json.loads(body)
    assert set(decoded) == {"code", "msg"}
    error = error_from_response(status, body, headers)
    assert type(error) is EXPECTED[kind]
    assert error.venue == "mexc"
    assert error.code == str(decoded["code"])


@pytest.mark.parametrize(
    ("code", "cls"),
    [("10101", E.InsufficientBalance), (30004, E.InsufficientBalance), (-1121, E.InvalidSymbol),
     (730001, E.InvalidSymbol), (-2011, E.OrderNotFound), (-2013, E.OrderNotFound),
     (700002, E.AuthError), (602, E.AuthError), (700001, E.AuthError), (10072, E.AuthError),
     (700003, E.AuthError), (700005, E.AuthError), (700006, E.AuthError), (700007, E.AuthError),
     (30002, E.BelowMinimum), (700004, E.InvalidOrder)],
)  # fmt: skip
def test_documented_codes(code: int | str, cls: type[E.VenueError]) -> None:
    error = error_from_response(400, _body(code, "text"), {})
    assert type(error) is cls
    assert error.code == str(code)
    assert "text" in str(error) and "mexc" in str(error)


def test_every_table_entry_is_used_as_mapped() -> None:
    for code, cls in ERROR_CODES.items():
        assert type(error_from_response(400, _body(int(code)), {})) is cls


def test_rate_limits_parse_retry_after_case_insensitively() -> None:
    error = error_from_response(429, b"", {"retry-after": "7"})
    assert isinstance(error, E.RateLimited) and error.retry_after == 7.0
    ban = error_from_response(418, _body(-1003), {"Retry-After": "120"})
    assert isinstance(ban, E.RateLimited) and ban.retry_after == 120.0 and ban.code == "-1003"
    no_header = error_from_response(429, b"", {})
    assert isinstance(no_header, E.RateLimited) and no_header.retry_after is None
    date = error_from_response(429, b"", {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert isinstance(date, E.RateLimited) and date.retry_after is None


def test_waf_403_html_is_rate_limited() -> None:
    error = error_from_response(403, b"<html>blocked</html>", {})
    assert type(error) is E.RateLimited
    assert error.code == "403"


def test_5xx_unavailable_but_outcome_unknown_for_orders() -> None:
    plain = error_from_response(503, b"Service Unavailable", {})
    assert type(plain) is E.ExchangeUnavailable and isinstance(plain, E.RetryableError)
    order = error_from_response(502, b"", {}, order_request=True)
    assert type(order) is E.OutcomeUnknown and not isinstance(order, E.RetryableError)
    assert type(as_order_request_error(plain)) is E.OutcomeUnknown
    assert type(as_order_request_error(E.NetworkError("reset"))) is E.OutcomeUnknown
    rejected = error_from_response(400, _body(10101), {})
    assert as_order_request_error(rejected) is rejected


def test_401_without_code_is_auth_and_unknown_code_keeps_it() -> None:
    assert type(error_from_response(401, b"{}", {})) is E.AuthError
    unknown = error_from_response(400, _body(99999, "what"), {})
    assert type(unknown) is E.VenueError
    assert unknown.code == "99999"
    assert type(error_from_response(400, b"[1,2]", {})) is E.VenueError
