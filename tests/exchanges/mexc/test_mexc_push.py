"""MEXC protobuf push frames: wire vector, real decoded payloads, both codecs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from exchanges.mexc import pb_upb, pb_wire, push
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

REPO_ROOT = Path(__file__).resolve().parents[3]
REALDATA = REPO_ROOT / ".." / "shared" / "realdata"

VECTOR = bytes.fromhex(
    "0a2f73706f74407075626c69632e61676772652e64657074682e76332e6170692e7062403130306d734042"
    "5443555344541a074254435553445430bad2c3d1c432ca1352120d0a0839323837372e35381201301a2773"
    "706f74407075626c69632e61676772652e64657074682e76332e6170692e7062403130306d73220b313035"
    "38393633323335392a0b3130353839363332333630"
)
CODECS = [pytest.param(pb_wire, id="wire"), pytest.param(pb_upb, id="upb")]


def realdata(rel: str) -> Path:
    path = REALDATA / rel
    if not path.exists():
        pytest.skip(reason=f"needs ../shared/realdata/{rel} next to the repo (not found)")
    return path


def test_vector_is_150_bytes() -> None:
    assert len(VECTOR) == 150


@pytest.mark.parametrize("codec", CODECS)
def test_wire_vector_decodes_to_documented_values(codec: ModuleType) -> None:
    frame = codec.decode_push(VECTOR)
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


@pytest.mark.parametrize("codec", CODECS)
def test_wire_vector_reencodes_to_same_bytes(codec: ModuleType) -> None:
    assert codec.encode_push(codec.decode_push(VECTOR)) == VECTOR


def test_facade_uses_a_working_codec() -> None:
    assert push.encode_push(push.decode_push(VECTOR)) == VECTOR


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
    independently of the codec's schema table."""
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
@pytest.mark.parametrize(("enc", "dec"), [(pb_wire, pb_upb), (pb_upb, pb_wire), (pb_upb, pb_upb)])
def test_real_payloads_encode_then_decode_to_same_values(enc: ModuleType, dec: ModuleType) -> None:
    # Templated hummingbot values ("<order.price>") are plain strings in the schema: they
    # round-trip as they are.
    for payload in _hummingbot_frames():
        frame = from_json(payload)
        data = enc.encode_push(frame)
        assert dec.decode_push(data) == frame
        assert pb_wire.encode_push(frame) == pb_upb.encode_push(frame) == data


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


@pytest.mark.parametrize("codec", CODECS)
def test_unmodelled_body_is_reported(codec: ModuleType) -> None:
    frame = codec.decode_push(_wrapper_with_body(301, b"\x0a\x00"))
    assert frame == UnknownPush(channel="test", body_field=301)
    with pytest.raises(TypeError):
        codec.encode_push(frame)


@pytest.mark.parametrize("codec", CODECS)
def test_frame_without_body(codec: ModuleType) -> None:
    assert codec.decode_push(b"\x0a\x04test") == UnknownPush(channel="test")


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("cut", [1, 40, 100, 149])
def test_truncated_frames_raise(codec: ModuleType, cut: int) -> None:
    with pytest.raises(push.ProtobufDecodeError):
        codec.decode_push(VECTOR[:cut])


@pytest.mark.parametrize("codec", CODECS)
def test_optional_presence_negative_ints_and_bools(codec: ModuleType) -> None:
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
    assert codec.decode_push(codec.encode_push(base)) == base
    assert codec.decode_push(codec.encode_push(empty)) == empty
    # A present-but-empty optional is written; an absent one is not.
    assert len(codec.encode_push(empty)) == len(codec.encode_push(base)) + 2
    decoded = codec.decode_push(codec.encode_push(base))
    assert isinstance(decoded, PrivateOrder)
    assert decoded.send_time == 0 and decoded.last_deal_quantity is None


def _fields(obj: PushFrame) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__struct_fields__}


@pytest.mark.parametrize("codec", CODECS)
def test_all_body_types_round_trip(codec: ModuleType) -> None:
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
        data = codec.encode_push(frame)
        assert pb_wire.decode_push(data) == pb_upb.decode_push(data) == frame


def test_descriptor_lists_every_message() -> None:
    names = {m.name for m in pb_upb.file_descriptor().message_type}
    assert {
        "PushDataV3ApiWrapper", "PublicAggreDepthsV3Api", "PublicAggreDealsV3Api",
        "PublicAggreBookTickerV3Api", "PublicLimitDepthsV3Api", "PrivateOrdersV3Api",
        "PrivateDealsV3Api", "PrivateAccountV3Api",
    } <= names  # fmt: skip


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
