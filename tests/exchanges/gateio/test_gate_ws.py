"""Gate.io WebSocket messages against real recordings."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import msgspec
import pytest

from arbsim.core.errors import MalformedMessage
from exchanges.gateio import ws

REPO_ROOT = Path(__file__).resolve().parents[3]
REALDATA = REPO_ROOT / ".." / "shared" / "realdata"


def realdata(rel: str) -> Path:
    path = REALDATA / rel
    if not path.exists():
        pytest.skip(reason=f"needs ../shared/realdata/{rel} next to the repo (not found)")
    return path


def cryptofeed_ws_frames() -> list[tuple[float, str]]:
    """Received frames of cryptofeed_GATEIO.ws.1.0: lines ``<ts>: <json>``; lines starting
    with the URL are the connection (``<->``) and frames we sent (``<-``)."""
    frames = []
    for line in realdata("gateio/cryptofeed_GATEIO.ws.1.0").read_text().splitlines():
        if not line.strip() or line.startswith("wss://"):
            continue
        ts, body = line.split(": ", 1)
        frames.append((float(ts), body))
    return frames


@pytest.mark.realdata
def test_tardis_v4_messages() -> None:
    messages = json.loads(realdata("gateio/gateio_spot_v4_messages.json").read_text())
    trade, ticker, snapshot, update = messages
    t = ws.decode(json.dumps(trade))
    assert isinstance(t, ws.Push) and isinstance(t.result, ws.Trade)
    assert (t.result.id, t.result.side, t.result.currency_pair) == (5541729598, "buy", "TLOS_BTC")
    assert (t.result.amount, t.result.price) == ("89.238", "0.00000644")
    assert ws.ms_to_ns(t.result.create_time_ms) == 1682689046123_000_000
    b = ws.decode(json.dumps(ticker))
    assert isinstance(b, ws.Push) and isinstance(b.result, ws.BookTicker)
    assert b.result == ws.BookTicker(
        t=1682689046131, update_id=517377894, symbol="ETC_ETH", bid_price="0.010326",
        bid_size="0.001", ask_price="0.010366", ask_size="10",
    )  # fmt: skip
    # tardis-node adds a REST snapshot as a fake frame ("generated": true, event "snapshot"):
    # not a Gate frame, so it stays an Envelope; its result is the REST order_book body.
    assert snapshot["generated"] is True
    assert type(ws.decode(json.dumps(snapshot))) is ws.Envelope
    rest = ws.decode_order_book_snapshot(json.dumps(snapshot["result"]))
    assert rest.id == 13934528632 and rest.bids == [("29302.9", "0.2483")]
    u = ws.decode(json.dumps(update))
    assert isinstance(u, ws.Push) and isinstance(u.result, ws.OrderBookUpdate)
    assert (u.result.first_id, u.result.last_id) == (13934528633, 13934528633)
    assert u.result.bids == [("29291.4", "0.5124")] and u.result.asks == []
    assert u.result.symbol == "BTC_USDT" and not u.result.full


@pytest.mark.realdata
def test_tardis_obu_messages() -> None:
    reply, full, incremental = json.loads(
        realdata("gateio/gateio_spot_obu_v2_messages.json").read_text()
    )
    r = ws.decode(json.dumps(reply))
    assert isinstance(r, ws.SubscriptionReply) and r.ok and r.payload == ["ob.MAF_USDT.400"]
    f = ws.decode(json.dumps(full))
    assert isinstance(f, ws.Push) and isinstance(f.result, ws.Obu)
    assert f.result.full and f.result.first_id is None and f.result.last_id == 25847113075
    assert ws.parse_obu_stream(f.result.stream) == ("BTC_USDT", 400)
    assert f.result.bids[0] == ("115765.1", "0.337839") and len(f.result.asks) == 3
    i = ws.decode(json.dumps(incremental))
    assert isinstance(i, ws.Push) and isinstance(i.result, ws.Obu)
    assert not i.result.full
    assert (i.result.first_id, i.result.last_id) == (25847129970, 25847129996)
    assert ("115717.7", "0") in i.result.bids


@pytest.mark.realdata
def test_cryptofeed_recording_all_frames_decode() -> None:
    kinds: Counter[tuple[str, str]] = Counter()
    for _, body in cryptofeed_ws_frames():
        message = ws.decode(body)
        kinds[(type(message).__name__, message.channel)] += 1
        if isinstance(message, ws.SubscriptionReply):
            assert message.ok
    assert kinds[("Push", "spot.order_book_update")] == 172
    assert kinds[("Push", "spot.trades")] == 9
    assert kinds[("SubscriptionReply", "spot.order_book_update")] == 10
    # Channels this layer does not model come back as their envelope.
    assert kinds[("Envelope", "spot.tickers")] == 22
    assert kinds[("Envelope", "spot.candlesticks")] == 14


@pytest.mark.realdata
def test_crypto_msg_parser_messages() -> None:
    decoded: Counter[str] = Counter()
    for line in realdata("gateio/crypto_msg_parser_gate_raw.jsonl").read_text().splitlines():
        raw = json.loads(line)["raw"]
        if raw.lstrip().startswith("["):
            # REST open-interest arrays: not WebSocket frames.
            with pytest.raises(MalformedMessage) as exc:
                ws.decode(raw)
            assert exc.value.venue == "gateio" and "got `array`" in str(exc.value)
            continue
        message = ws.decode(raw)
        if isinstance(message, ws.Push):
            decoded[message.channel] += 1
            if message.channel == "spot.order_book_update":
                assert message.result.first_id == 4622074361
                assert message.result.last_id == 4622074364
        else:
            # futures.*, spot.tickers/candlesticks/order_book and the retired v3 "method"
            # frames are not modelled.
            assert not message.channel.startswith(("spot.trades", "spot.book_ticker"))
    assert decoded == {"spot.trades": 1, "spot.order_book_update": 1, "spot.book_ticker": 1}


def _hummingbot_frames() -> list[tuple[str, dict[str, Any]]]:
    """(var name, frame) of the received frames (requests carry ``auth``/``payload``)."""
    entries = json.loads(realdata("gateio/hummingbot_gate_io_payloads.json").read_text())
    return [
        (e["var"], e["payload"])
        for e in entries
        if isinstance(e["payload"], dict)
        and "channel" in e["payload"]
        and "auth" not in e["payload"]
    ]


@pytest.mark.realdata
def test_hummingbot_private_payloads() -> None:
    """hummingbot's literals are docs-derived and templated: ``<expr>`` strings stand for
    values. In string fields they decode as they are; the frame whose level lists are
    templates (``"b": ["<bids>"]``) and the deliberately incomplete frames must fail."""
    results: Counter[str] = Counter()
    failures = 0
    for var, payload in _hummingbot_frames():
        text = json.dumps(payload)
        templated_levels = '["<bids>"]' in text
        incomplete = var.startswith("incomplete_")
        if templated_levels or incomplete:
            with pytest.raises(MalformedMessage) as exc:
                ws.decode(text)
            assert isinstance(exc.value.__cause__, msgspec.ValidationError)
            failures += 1
            continue
        message = ws.decode(text)
        if isinstance(message, ws.Push):
            results[message.channel] += 1
            if message.channel == "spot.usertrades":
                (trade,) = message.result
                assert trade.role == "taker" and trade.id == 5736713
                assert ws.ms_to_ns(trade.create_time_ms) == 1605176741123_456_000
            if message.channel == "spot.balances":
                (balance,) = message.result
                assert (balance.change, balance.total, balance.available) == (
                    "100", "10500", "10000",
                )  # fmt: skip
        elif isinstance(message, ws.SubscriptionReply):
            assert message.ok
    assert results == {
        "spot.orders": 4, "spot.usertrades": 2, "spot.balances": 1, "spot.trades": 1,
        "spot.order_book_update": 1,
    }  # fmt: skip
    assert failures == 4


def test_finished_order_fields() -> None:
    frame = {
        "time": 1605175506, "channel": "spot.orders", "event": "update",
        "result": [{"id": "123", "text": "t-abc", "create_time_ms": "1605175506123",
                    "update_time_ms": 1605175506124, "event": "finish",
                    "currency_pair": "BTC_USDT", "type": "limit", "side": "buy",
                    "amount": "1", "price": "2", "left": "0", "filled_total": "2",
                    "finish_as": "filled"}],
    }  # fmt: skip
    message = ws.decode(json.dumps(frame))
    assert isinstance(message, ws.Push)
    (order,) = message.result
    assert isinstance(order, ws.GateOrder)
    assert (order.event, order.finish_as, order.left) == ("finish", "filled", "0")
    assert ws.ms_to_ns(order.create_time_ms) == 1605175506123_000_000
    assert ws.ms_to_ns(order.update_time_ms) == 1605175506124_000_000


def test_subscription_error_reply() -> None:
    raw = (
        '{"time":1,"time_ms":1000,"channel":"spot.orders","event":"subscribe",'
        '"error":{"code":4,"message":"Auth failed"},"result":null}'
    )
    reply = ws.decode(raw)
    assert isinstance(reply, ws.SubscriptionReply)
    assert not reply.ok
    assert reply.error == ws.WsError(code=4, message="Auth failed")


def test_pong_and_upgrade_are_envelopes() -> None:
    pong = ws.decode('{"time":1,"channel":"spot.pong","event":"","error":null,"result":null}')
    assert pong == ws.Envelope(channel="spot.pong", time=1)
    upgrade = ws.decode('{"time":1,"channel":"spot.order_book_update","event":"upgrade"}')
    assert type(upgrade) is ws.Envelope and upgrade.event == "upgrade"


def test_requests() -> None:
    sub = json.loads(ws.subscribe_request("spot.order_book_update", ["BTC_USDT", "100ms"], 5))
    assert sub == {"time": 5, "channel": "spot.order_book_update", "event": "subscribe",
                   "payload": ["BTC_USDT", "100ms"]}  # fmt: skip
    auth = {"method": "api_key", "KEY": "k", "SIGN": "s"}
    priv = json.loads(ws.subscribe_request("spot.orders", ["!all"], 5, request_id=7, auth=auth))
    assert priv["auth"] == auth and priv["id"] == 7
    unsub = json.loads(ws.unsubscribe_request("spot.obu", [ws.obu_stream("BTC_USDT", 50)], 6))
    assert unsub["event"] == "unsubscribe" and unsub["payload"] == ["ob.BTC_USDT.50"]
    assert json.loads(ws.ping_request(9)) == {"time": 9, "channel": "spot.ping"}
    with pytest.raises(ValueError):
        ws.obu_stream("BTC_USDT", 20)
    with pytest.raises(ValueError):
        ws.parse_obu_stream("BTC_USDT")


def test_encode_decode_round_trip_for_simulator() -> None:
    push = ws.Push(
        channel="spot.obu", event="update", time_ms=2,
        result=ws.Obu(t=1, stream="ob.BTC_USDT.50", last_id=10, first_id=9, bids=[("1", "2")]),
    )  # fmt: skip
    raw = msgspec.json.encode(push)
    assert b'"U":9' in raw and b'"s":"ob.BTC_USDT.50"' in raw
    assert ws.decode(raw) == push
