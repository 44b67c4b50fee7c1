"""Gate.io signing against the PROTOCOLS.md B1 vectors."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from exchanges.gateio import signing

KEY, SECRET, TS = "key", "secret", "1541993715"
GET_SIG = (
    "55f84ea195d6fe57ce62464daaa7c3c02fa9d1dde954e4c898289c9a2407a3d6"
    "fb3faf24deff16790d726b66ac9f74526668b13bd01029199cc4fcc522418b8a"
)
POST_BODY = '{"contract":"BTC_USD","type":"limit","size":100,"price":6800,"time_in_force":"gtc"}'
POST_SIG = (
    "eae42da914a590ddf727473aff25fc87d50b64783941061f47a3fdb92742541f"
    "c4c2c14017581b4199a1418d54471c269c03a38d788d802e2c306c37636389f0"
)
SPOT_SIG = (
    "93fd0852e183795350a1b58b5866854c2d30b0ffbad41303eff94206844cb4ab"
    "add3a24988d478388f37f70710a633e793e4c78607441cac1bedb60d945c2300"
)


def test_official_get_vector() -> None:
    sig = signing.sign_request(
        SECRET,
        "GET",
        "/api/v4/futures/orders",
        "contract=BTC_USD&status=finished&limit=50",
        "",
        TS,
    )
    assert sig == GET_SIG


def test_official_post_vector() -> None:
    assert signing.sign_request(SECRET, "POST", "/api/v4/futures/orders", "", POST_BODY, TS) == (
        POST_SIG
    )
    assert (
        signing.sign_request(SECRET, "post", "/api/v4/futures/orders", "", POST_BODY.encode(), TS)
        == POST_SIG
    )


def test_spot_vector_and_headers() -> None:
    headers = signing.request_headers(
        KEY, SECRET, "GET", "/api/v4/spot/orders", "currency_pair=BTC_USDT&status=open", "", TS
    )
    assert headers == {"KEY": KEY, "Timestamp": TS, "SIGN": SPOT_SIG}


def test_empty_body_hash() -> None:
    assert signing.body_hash("").startswith("cf83e135")
    assert signing.signature_string("get", "/api/v4/spot/time", "", "", TS).split("\n") == [
        "GET",
        "/api/v4/spot/time",
        "",
        signing.body_hash(b""),
        TS,
    ]


def test_path_without_prefix_is_refused() -> None:
    with pytest.raises(ValueError, match="/api/v4"):
        signing.sign_request(SECRET, "GET", "/spot/orders", "", "", TS)


def test_verify_request() -> None:
    path, query = "/api/v4/spot/orders", "currency_pair=BTC_USDT&status=open"
    assert signing.verify_request(SECRET, "GET", path, query, "", TS, SPOT_SIG)
    assert signing.verify_request(SECRET, "GET", path, query, "", TS, SPOT_SIG.upper())
    assert not signing.verify_request(SECRET, "GET", path, query, "", "1541993716", SPOT_SIG)
    assert not signing.verify_request(SECRET, "DELETE", path, query, "", TS, SPOT_SIG)
    assert not signing.verify_request(SECRET, "GET", path, "status=open", "", TS, SPOT_SIG)
    assert not signing.verify_request("other", "GET", path, query, "", TS, SPOT_SIG)
    assert not signing.verify_request(SECRET, "GET", "/spot/orders", query, "", TS, SPOT_SIG)
    assert signing.verify_request(
        SECRET, "POST", "/api/v4/futures/orders", "", POST_BODY, TS, POST_SIG
    )
    assert not signing.verify_request(
        SECRET, "POST", "/api/v4/futures/orders", "", POST_BODY + " ", TS, POST_SIG
    )


def test_timestamp_window_accepts_decimals() -> None:
    assert signing.timestamp_acceptable("1541993715.123", 1541993700.0)
    assert signing.timestamp_acceptable("1541993715", 1541993775.0)
    assert not signing.timestamp_acceptable("1541993715", 1541993775.5)
    assert not signing.timestamp_acceptable("abc", 1541993715.0)
    assert not signing.timestamp_acceptable("nan", 1541993715.0)


def _reference(message: str) -> str:
    return hmac.new(SECRET.encode(), message.encode(), hashlib.sha512).hexdigest()


def test_ws_api_login_signature() -> None:
    req_param = json.dumps({}, separators=(",", ":"))
    sig = signing.sign_ws_api(SECRET, "spot.login", req_param, TS)
    assert sig == _reference(f"api\nspot.login\n{{}}\n{TS}")
    assert signing.verify_ws_api(SECRET, "spot.login", "{}", TS, sig)
    # Signing the doc's empty req_param gives a different value: sign exactly what is sent.
    assert not signing.verify_ws_api(SECRET, "spot.login", "", TS, sig)
    assert not signing.verify_ws_api(SECRET, "spot.order_place", "{}", TS, sig)


def test_channel_auth_signature() -> None:
    sig = signing.sign_channel_auth(SECRET, "spot.orders", "subscribe", 1611541000)
    assert signing.channel_auth_payload("spot.orders", "subscribe", 1611541000) == (
        "channel=spot.orders&event=subscribe&time=1611541000"
    )
    assert sig == _reference("channel=spot.orders&event=subscribe&time=1611541000")
    assert signing.verify_channel_auth(SECRET, "spot.orders", "subscribe", "1611541000", sig)
    assert not signing.verify_channel_auth(SECRET, "spot.orders", "unsubscribe", 1611541000, sig)
    assert not signing.verify_channel_auth(SECRET, "spot.balances", "subscribe", 1611541000, sig)
