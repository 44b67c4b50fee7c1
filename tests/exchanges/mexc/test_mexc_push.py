"""MEXC protobuf push frames: wire vector, real decoded payloads, known bytes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

from arbsim.core.errors import MalformedMessage, VenueError
from exchanges.mexc import push
from exchanges.mexc.messages import (
    AggreBookTicker,
    AggreDeal,
    AggreDeals,
    AggreDepth,
    LimitDepth,
    PrivateAccount,
    PrivateDeal,
    PrivateOrder,
    PushFrame,
    UnknownPush,
)
from exchanges.mexc.pb.mexc_push_pb2 import PushDataV3ApiWrapper

REPO_ROOT = Path(__file__).resolve().parents[3]
REALDATA = REPO_ROOT / ".." / "shared" / "realdata"

VECTOR = bytes.fromhex(
    "0a2f73706f74407075626c69632e61676772652e64657074682e76332e6170692e7062403130306d734042"
    "5443555344541a074254435553445430bad2c3d1c432ca1352120d0a0839323837372e35381201301a2773"
    "706f74407075626c69632e61676772652e64657074682e76332e6170692e7062403130306d73220b313035"
    "38393633323335392a0b3130353839363332333630"
)


def realdata(rel: str) -> Path:
    path = REALDATA / rel
    if not path.exists():
        pytest.skip(reason=f"needs ../shared/realdata/{rel} next to the repo (not found)")
    return path


def test_vector_is_150_bytes() -> None:
    assert len(VECTOR) == 150


def test_wire_vector_decodes_to_documented_values() -> None:
    frame = push.decode_push(VECTOR)
    assert isinstance(frame, AggreDepth)
    assert frame.channel == "spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT"
    assert frame.symbol == "BTCUSDT"
    assert frame.send_time == 1736411507002
    assert frame.bids == [("92877.58", "0")]
    assert frame.asks == []
    assert frame.from_version == 10589632359
    assert frame.to_version == 10589632360
    assert frame.event_type == "spot@public.aggre.depth.v3.api.pb@100ms"
    assert frame.symbol_id is None and frame.create_time is None


def test_wire_vector_reencodes_to_same_bytes() -> None:
    assert push.encode_push(push.decode_push(VECTOR)) == VECTOR


def test_wire_vector_encodes_from_the_documented_values() -> None:
    frame = AggreDepth(
        channel="spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT",
        symbol="BTCUSDT",
        send_time=1736411507002,
        bids=[("92877.58", "0")],
        event_type="spot@public.aggre.depth.v3.api.pb@100ms",
        from_version=10589632359,
        to_version=10589632360,
    )
    assert push.encode_push(frame) == VECTOR
    assert push.decode_depth_levels(VECTOR) == (
        [(92877.58, 0.0)],
        [],
        10589632359,
        10589632360,
        1736411507002,
    )


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


_WRAPPER_KEYS = {"channel", "symbol", "symbolId", "createTime", "sendTime"}
_INT_KEYS = {"createTime", "sendTime", "time", "lastOrderCreateTime"}
_VERSION_KEYS = {"fromVersion", "toVersion", "version"}
_BODY_TYPES: dict[str, type[PushFrame]] = {
    "publicAggreDepths": AggreDepth,
    "publicLimitDepths": LimitDepth,
    "publicAggreDeals": AggreDeals,
    "publicAggreBookTicker": AggreBookTicker,
    "privateOrders": PrivateOrder,
    "privateDeals": PrivateDeal,
    "privateAccount": PrivateAccount,
}


def _deal_kwargs(deal: dict[str, Any]) -> dict[str, Any]:
    return {_snake(k): int(v) if k == "time" else v for k, v in deal.items()}


def from_json(payload: dict[str, Any]) -> PushFrame:
    """The decoded-JSON form (protobuf JSON mapping, as recorded) -> Struct, written
    independently of the codec."""
    kwargs: dict[str, Any] = {}
    for key in _WRAPPER_KEYS & payload.keys():
        value = payload[key]
        kwargs[_snake(key)] = int(value) if key in _INT_KEYS else value
    (body_key,) = payload.keys() & _BODY_TYPES.keys()
    for key, value in payload[body_key].items():
        attr = _snake(key)
        if body_key == "privateOrders" and key == "createTime":
            attr = "order_create_time"
        if key in ("bids", "asks"):
            value = [(v["price"], v["quantity"]) for v in value]
        elif key == "deals":
            value = [AggreDeal(**_deal_kwargs(d)) for d in value]
        elif key in _INT_KEYS or key in _VERSION_KEYS:
            value = int(value)
        kwargs[attr] = value
    return _BODY_TYPES[body_key](**kwargs)


def _hummingbot_frames() -> list[dict[str, Any]]:
    data = json.loads(realdata("mexc/hummingbot_mexc_payloads.json").read_text())
    return [
        e["payload"]
        for e in data
        if isinstance(e["payload"], dict) and _BODY_TYPES.keys() & e["payload"].keys()
    ]


@pytest.mark.realdata
def test_real_payloads_cover_the_channels() -> None:
    kinds = {type(from_json(p)) for p in _hummingbot_frames()}
    assert kinds == {AggreDeals, AggreDepth, PrivateOrder, PrivateDeal, PrivateAccount}


@pytest.mark.realdata
def test_real_payloads_encode_then_decode_to_same_values() -> None:
    # Templated hummingbot values ("<order.price>") are plain strings in the schema: they
    # round-trip as they are.
    for payload in _hummingbot_frames():
        frame = from_json(payload)
        data = push.encode_push(frame)
        assert push.decode_push(data) == frame


@pytest.mark.realdata
def test_real_payloads_encode_as_protobuf_parses_their_json() -> None:
    # The recorded payloads are the protobuf JSON mapping of the frames: protobuf's own JSON
    # parser (no unknown keys allowed) must give the bytes the Struct path writes.
    for payload in _hummingbot_frames():
        message = json_format.ParseDict(payload, PushDataV3ApiWrapper())
        assert push.encode_push(from_json(payload)) == message.SerializeToString()


@pytest.mark.realdata
def test_real_aggre_depth_values() -> None:
    (payload,) = [p for p in _hummingbot_frames() if "publicAggreDepths" in p]
    frame = push.decode_push(push.encode_push(from_json(payload)))
    assert isinstance(frame, AggreDepth)
    assert frame.symbol == "BTCUSDC"
    assert frame.send_time == 1755973885809
    assert (frame.from_version, frame.to_version) == (17521975448, 17521975455)
    assert frame.bids == [("114838.84", "0.000101")]
    assert frame.asks == [("115198.74", "0.068865")]


def _wrapper_with_body(number: int, body: bytes) -> bytes:
    out = bytearray(b"\x0a\x04test")
    key = (number << 3) | 2
    while key >= 0x80:
        out.append((key & 0x7F) | 0x80)
        key >>= 7
    out.append(key)
    out.append(len(body))
    return bytes(out) + body


@pytest.mark.parametrize("number", [301, 302, 305, 308, 309, 310, 311, 312])
def test_unmodelled_body_is_reported(number: int) -> None:
    frame = push.decode_push(_wrapper_with_body(number, b"\x0a\x00"))
    assert frame == UnknownPush(channel="test", body_field=number)
    with pytest.raises(TypeError):
        push.encode_push(frame)


def test_unknown_wrapper_field_is_skipped() -> None:
    assert push.decode_push(_wrapper_with_body(399, b"\x0a\x00")) == UnknownPush(channel="test")


def test_frame_without_body() -> None:
    assert push.decode_push(b"\x0a\x04test") == UnknownPush(channel="test")
    with pytest.raises(TypeError):
        push.encode_push(PushFrame(channel="test"))


@pytest.mark.parametrize("cut", [1, 40, 100, 149])
def test_truncated_frames_raise(cut: int) -> None:
    with pytest.raises(push.ProtobufDecodeError):
        push.decode_push(VECTOR[:cut])
    with pytest.raises(push.ProtobufDecodeError):
        push.decode_depth_levels(VECTOR[:cut])


def test_decode_error_is_a_venue_error() -> None:
    assert issubclass(push.ProtobufDecodeError, MalformedMessage)
    with pytest.raises(VenueError) as exc:
        push.decode_push(b"\x0a\x02\xff\xfe")  # channel is not UTF-8
    assert exc.value.venue == "mexc"


def test_optional_presence_negative_ints_and_bools() -> None:
    base = PrivateOrder(
        channel="spot@private.orders.v3.api.pb",
        symbol="BTCUSDT",
        id="C02__1",
        price="1",
        quantity="2",
        order_type=2,
        trade_type=2,
        is_maker=True,
        status=3,
        order_create_time=-5,
        send_time=0,
    )
    empty = PrivateOrder(**{**_fields(base), "last_deal_quantity": ""})
    assert push.decode_push(push.encode_push(base)) == base
    assert push.decode_push(push.encode_push(empty)) == empty
    # A present-but-empty optional is written; an absent one is not.
    assert len(push.encode_push(empty)) == len(push.encode_push(base)) + 2
    decoded = push.decode_push(push.encode_push(base))
    assert isinstance(decoded, PrivateOrder)
    assert decoded.send_time == 0 and decoded.last_deal_quantity is None


def _fields(obj: PushFrame) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__struct_fields__}


def test_all_body_types_round_trip() -> None:
    frames: list[PushFrame] = [
        LimitDepth(channel="c", symbol="ETHUSDT", asks=[("1", "2")], bids=[("0.5", "3")],
                   event_type="e", version=77, last_order_create_time=1),
        AggreBookTicker(channel="c", symbol="ETHUSDT", bid_price="1", bid_quantity="2",
                        ask_price="3", ask_quantity="4", version=9, send_time=12),
        AggreDeals(channel="c", deals=[AggreDeal(price="1", quantity="2", trade_type=2,
                                                 time=3, trade_id="x")], event_type="e"),
        PrivateDeal(channel="c", price="1", quantity="2", amount="2", trade_type=1,
                    is_maker=True, is_self_trade=True, trade_id="t", client_order_id="co",
                    order_id="o", fee_amount="0.1", fee_currency="USDT", time=5),
        PrivateAccount(channel="c", vcoin_name="USDT", coin_id="id", balance_amount="1",
                       balance_amount_change="-1", frozen_amount="0", frozen_amount_change="0",
                       type="ENTRUST", time=1, create_time=2),
        AggreDepth(channel="c", symbol_id="abc"),
    ]  # fmt: skip
    for frame in frames:
        assert push.decode_push(push.encode_push(frame)) == frame


# Frames and their bytes worked out by hand from A6 (proto3: fields in number order, defaults
# left out, present optionals written even when empty/zero, negative ints as 10-byte varints).
KNOWN_BYTES: list[tuple[PushFrame, str]] = [
    (
        AggreBookTicker(channel="c", symbol="ETHUSDT", bid_price="1", bid_quantity="2",
                        ask_price="3", ask_quantity="4", version=9, send_time=12),
        # channel=1 "c" | symbol=3 "ETHUSDT" | sendTime=6 12 | 315 (len 15): 1..4 "1".."4",
        # version=5 "9"
        "0a0163" "1a0745544855534454" "300c" "da130f" "0a0131" "120132" "1a0133" "220134"
        "2a0139",
    ),
    (
        AggreDeals(channel="c", deals=[AggreDeal(price="1", quantity="2", trade_type=2,
                                                 time=3, trade_id="x")], event_type="e"),
        # channel | 314 (len 18): deals=1 (len 13: "1", "2", tradeType 2, time 3, "x"),
        # eventType=2 "e"
        "0a0163" "d21312" "0a0d" "0a0131" "120132" "1802" "2003" "2a0178" "120165",
    ),
    (
        PrivateOrder(channel="c", id="1", is_maker=True, last_deal_quantity="",
                     order_create_time=-5, send_time=0),
        # channel | sendTime 0 (optional, present) | 304 (len 19): id=1 "1", isMaker=9 true,
        # lastDealQuantity=12 "" (optional, present), createTime=16 -5
        "0a0163" "3000" "821313" "0a0131" "4801" "6200" "8001" "fbffffffffffffffff01",
    ),
    (
        AggreDepth(channel="c", symbol_id="abc"),
        # channel | symbolId=4 "abc" | 313 empty: the oneof still names the body
        "0a0163" "2203616263" "ca1300",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("frame", "hex_bytes"), KNOWN_BYTES)
def test_known_bytes(frame: PushFrame, hex_bytes: str) -> None:
    data = bytes.fromhex(hex_bytes)
    assert push.encode_push(frame) == data
    assert push.decode_push(data) == frame


def test_depth_fast_path_gives_the_values_of_the_full_decode() -> None:
    from exchanges.mexc.messages import AggreDeals, AggreDepth
    from exchanges.mexc.push import decode_depth_levels, decode_push, encode_push

    frame = AggreDepth(
        channel="spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT",
        symbol="BTCUSDT",
        send_time=1736411507002,
        bids=[("92877.58", "0"), ("92877.1", "1.5")],
        asks=[("92878.01", "0.25")],
        event_type="x",
        from_version=7,
        to_version=9,
    )
    data = encode_push(frame)
    full = decode_push(data)
    assert isinstance(full, AggreDepth)
    fast = decode_depth_levels(data)
    assert fast == (
        [(float(p), float(q)) for p, q in full.bids],
        [(float(p), float(q)) for p, q in full.asks],
        7,
        9,
        1736411507002,
    )
    other = encode_push(AggreDeals(channel="spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT"))
    assert decode_depth_levels(other) is None
