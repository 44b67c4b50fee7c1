"""MEXC signing against the PROTOCOLS.md A1 vectors."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from exchanges.mexc import signing

SECRET = "45d0b3c26f2644f19bfb98b07741b2f5"
ORDER = (
    "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=11&recvWindow=5000&timestamp=1644489390087"
)
ORDER_SIG = "fd3e4e8543c5188531eb7279d68ae7d26a573d0fc5ab0d18eb692451654d837a"
MIXED_SIG = "d1a676610ceb39174c8039b3f548357994b2a34139a8addd33baadba65684592"
# The doc's "Example 1" value for the same string (PROTOCOLS.md A1 ⚠): not a valid signature.
DOC_EXAMPLE_1_PREFIX = "323c96ab"


def test_query_only_vector() -> None:
    assert signing.sign(SECRET, ORDER) == ORDER_SIG


def test_mixed_query_and_body_vector_has_no_ampersand_at_join() -> None:
    query = "symbol=BTCUSDT&side=BUY&type=LIMIT"
    body = "quantity=1&price=11&recvWindow=5000&timestamp=1644489390087"
    assert signing.sign(SECRET, query, body) == MIXED_SIG
    # Joining with "&" would sign the query-only string instead: a different signature.
    assert signing.sign(SECRET, query + "&" + body) == ORDER_SIG != MIXED_SIG


def test_doc_example_1_value_is_wrong() -> None:
    assert not signing.sign(SECRET, ORDER).startswith(DOC_EXAMPLE_1_PREFIX)
    assert not signing.verify(SECRET, ORDER + "&signature=" + DOC_EXAMPLE_1_PREFIX + "0" * 56)


def test_signed_query_appends_timestamp_recvwindow_then_signature_last() -> None:
    params: dict[str, str | int] = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "quantity": 1,
        "price": 11,
    }
    query = signing.signed_query(params, SECRET, timestamp_ms=1644489390087)
    keys = [k for k, _ in parse_qsl(query)]
    assert keys == [
        "symbol",
        "side",
        "type",
        "quantity",
        "price",
        "timestamp",
        "recvWindow",
        "signature",
    ]
    unsigned, sig = signing.split_signature(query)
    assert sig == signing.sign(SECRET, unsigned)
    assert "recvWindow=5000" in unsigned
    assert signing.verify(SECRET, query)


def test_signed_query_encodes_values_and_booleans() -> None:
    query = signing.signed_query(
        [("batchOrders", '[{"a":1}]'), ("flag", True)], SECRET, timestamp_ms=1, recv_window=60000
    )
    assert query.startswith("batchOrders=%5B%7B%22a%22%3A1%7D%5D&flag=true&timestamp=1&")
    assert signing.verify(SECRET, query)


def test_verify_signature_anywhere_and_with_body() -> None:
    query = "symbol=BTCUSDT&side=BUY&type=LIMIT"
    body = "quantity=1&price=11&recvWindow=5000&timestamp=1644489390087"
    assert signing.verify(SECRET, f"{query}&signature={MIXED_SIG}", body)
    assert signing.verify(SECRET, f"signature={ORDER_SIG}&{ORDER}")
    assert signing.verify(SECRET, f"{ORDER}&signature={ORDER_SIG.upper()}")


@pytest.mark.parametrize(
    ("query", "body"),
    [
        (ORDER, ""),  # no signature at all
        (ORDER.replace("price=11", "price=12") + f"&signature={ORDER_SIG}", ""),  # tampered
        (f"{ORDER}&signature={ORDER_SIG}", "x=1"),  # body not covered by the signature
    ],
)
def test_verify_rejects(query: str, body: str) -> None:
    assert not signing.verify(SECRET, query, body)


def test_verify_rejects_other_secret() -> None:
    assert not signing.verify("other", f"{ORDER}&signature={ORDER_SIG}")


def test_timestamp_window() -> None:
    server = 1_000_000
    assert signing.timestamp_acceptable(server, server)
    assert signing.timestamp_acceptable(server + 999, server)
    assert not signing.timestamp_acceptable(server + 1000, server)
    assert signing.timestamp_acceptable(server - 5000, server)
    assert not signing.timestamp_acceptable(server - 5001, server)
    assert signing.timestamp_acceptable(server - 60000, server, recv_window=60000)
