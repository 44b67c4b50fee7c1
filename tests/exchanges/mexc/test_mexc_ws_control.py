"""MEXC JSON control frames: subscribe, ack, PONG, the code-0 "Blocked!" refusal."""

from __future__ import annotations

import json

import pytest

from arbsim.core.errors import MalformedMessage
from exchanges.mexc import ws

DEPTH = "spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT"


def test_topics() -> None:
    assert ws.topic(ws.TopicKind.AGGRE_DEPTH, "btcusdt") == DEPTH
    assert ws.topic(ws.TopicKind.AGGRE_DEALS, "BTCUSDC", interval="10ms") == (
        "spot@public.aggre.deals.v3.api.pb@10ms@BTCUSDC"
    )
    assert ws.topic(ws.TopicKind.AGGRE_BOOK_TICKER, "ETHUSDT") == (
        "spot@public.aggre.bookTicker.v3.api.pb@100ms@ETHUSDT"
    )
    assert ws.topic(ws.TopicKind.LIMIT_DEPTH, "ETHUSDT", levels=5) == (
        "spot@public.limit.depth.v3.api.pb@ETHUSDT@5"
    )
    assert ws.topic(ws.TopicKind.PRIVATE_ORDERS) == "spot@private.orders.v3.api.pb"
    with pytest.raises(ValueError):
        ws.topic(ws.TopicKind.AGGRE_DEPTH, "BTCUSDT", interval="1s")
    with pytest.raises(ValueError):
        ws.topic(ws.TopicKind.AGGRE_DEPTH)


def test_request_frames() -> None:
    assert json.loads(ws.subscribe_frame([DEPTH])) == {"method": "SUBSCRIPTION",
                                                       "params": [DEPTH]}  # fmt: skip
    assert json.loads(ws.subscribe_frame([DEPTH], request_id=2)) == {
        "method": "SUBSCRIPTION", "params": [DEPTH], "id": 2,
    }  # fmt: skip
    assert json.loads(ws.unsubscribe_frame([DEPTH])) == {"method": "UNSUBSCRIPTION",
                                                         "params": [DEPTH]}  # fmt: skip
    assert json.loads(ws.ping_frame()) == {"method": "PING"}
    with pytest.raises(ValueError):
        ws.subscribe_frame([f"t{i}" for i in range(31)])


def test_ack_and_pong() -> None:
    ack = ws.decode_control(b'{"id":0,"code":0,"msg":"' + DEPTH.encode() + b'"}')
    assert ws.subscription_result(ack, DEPTH) == "ack"
    assert not ws.is_pong(ack)
    assert ws.subscription_result(ack, DEPTH.replace("BTC", "ETH")) == "unrelated"
    pong = ws.decode_control('{"id":0,"code":0,"msg":"PONG"}')
    assert ws.is_pong(pong)
    assert ws.subscription_result(pong, DEPTH) == "unrelated"


def test_blocked_refusal_has_code_zero_but_is_refused() -> None:
    raw = (
        '{"id":0,"code":0,"msg":"Not Subscribed successfully! '
        '[spot@public.aggre.depth.v3.api@100ms@BTCUSDT]. Reason： Blocked!"}'
    )
    reply = ws.decode_control(raw)
    assert reply.code == 0
    assert ws.subscription_result(reply, "spot@public.aggre.depth.v3.api@100ms@BTCUSDT") == (
        "refused"
    )


def test_simulator_frames_read_back() -> None:
    assert ws.subscription_result(ws.decode_control(ws.ack_frame(DEPTH)), DEPTH) == "ack"
    blocked = ws.decode_control(ws.blocked_frame(DEPTH))
    assert blocked.code == 0 and blocked.msg.endswith("Reason： Blocked!")
    assert ws.subscription_result(blocked, DEPTH) == "refused"
    assert ws.is_pong(ws.decode_control(ws.pong_frame()))


def test_multi_topic_ack_and_listen_key() -> None:
    other = DEPTH.replace("BTC", "ETH")
    reply = ws.ControlReply(msg=f"{DEPTH},{other}")
    assert ws.subscription_result(reply, other) == "ack"
    assert ws.is_invalid_listen_key(b"Invalid listen key")
    assert not ws.is_invalid_listen_key("PONG")
    with pytest.raises(MalformedMessage) as exc:
        ws.decode_control(b"\x0a\x04test")
    assert exc.value.venue == "mexc" and exc.value.channel == "control"
