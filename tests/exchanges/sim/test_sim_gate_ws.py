"""The simulated Gate.io WebSocket: acks, U/u chain + with_id sync, obu, private, WS API."""

from __future__ import annotations

import asyncio
import itertools
import time
from decimal import Decimal
from typing import Any

import aiohttp
import msgspec

from arbsim.core.model import Side
from exchanges.gateio import signing
from exchanges.gateio import ws as gate_ws
from exchanges.gateio.booksync import (
    diff_from_push,
    new_obu_sync,
    new_order_book_update_sync,
    snapshot_from_rest,
)
from exchanges.live.booksync import BookChanges
from exchanges.sim.market import DepthUpdate
from exchanges.sim.runner import Simulator, SimVenue

from .sim_testkit import gate_call


async def _recv(ws: aiohttp.ClientWebSocketResponse) -> gate_ws.GateWsMessage:
    msg = await asyncio.wait_for(ws.receive(), 2)
    assert msg.type is aiohttp.WSMsgType.TEXT, msg
    return gate_ws.decode(msg.data)


async def _reply(ws: aiohttp.ClientWebSocketResponse) -> gate_ws.SubscriptionReply:
    reply = await _recv(ws)
    assert isinstance(reply, gate_ws.SubscriptionReply), reply
    return reply


async def _raw(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    msg = await asyncio.wait_for(ws.receive(), 2)
    assert msg.type is aiohttp.WSMsgType.TEXT, msg
    out: dict[str, Any] = msgspec.json.decode(msg.data)
    return out


def _depth_steps(v: SimVenue, n: int) -> None:
    for _ in range(n):
        while not any(isinstance(e, DepthUpdate) for e in v.market.step(1)):
            pass


async def test_acks_errors_and_ping(sim: Simulator, http: aiohttp.ClientSession) -> None:
    v = sim.venues["gateio"]
    async with http.ws_connect(v.ws_url) as ws:
        t = int(time.time())
        await ws.send_str(
            gate_ws.subscribe_request("spot.trades", ["BTC_USDT"], t, request_id=7).decode()
        )
        reply = await _recv(ws)
        assert isinstance(reply, gate_ws.SubscriptionReply) and reply.ok and reply.id == 7
        await ws.send_str(gate_ws.subscribe_request("spot.trades", ["NOPE_USDT"], t).decode())
        reply = await _recv(ws)
        assert isinstance(reply, gate_ws.SubscriptionReply) and not reply.ok
        assert reply.error is not None and reply.error.code == 2
        await ws.send_str(gate_ws.subscribe_request("spot.orders", ["BTC_USDT"], t).decode())
        reply = await _recv(ws)
        assert isinstance(reply, gate_ws.SubscriptionReply) and reply.error is not None
        assert reply.error.code == 4
        await ws.send_str(gate_ws.ping_request(t).decode())
        pong = await _recv(ws)
        assert isinstance(pong, gate_ws.Envelope) and pong.channel == "spot.pong"


async def test_order_book_update_chain_continues_the_with_id_snapshot(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    v = sim.venues["gateio"]
    t = int(time.time())
    async with http.ws_connect(v.ws_url) as ws:
        await ws.send_str(
            gate_ws.subscribe_request("spot.order_book_update", ["BTC_USDT", "100ms"], t).decode()
        )
        assert (await _reply(ws)).ok
        sync = new_order_book_update_sync("BTC_USDT")
        updates: list[gate_ws.OrderBookUpdate] = []
        _depth_steps(v, 3)
        for _ in range(3):
            push = await _recv(ws)
            assert isinstance(push, gate_ws.Push)
            updates.append(push.result)
            sync.on_diff(diff_from_push(push.result))
        _, body, _ = await gate_call(
            http, v, "GET", "spot/order_book",
            "currency_pair=BTC_USDT&limit=1000&with_id=true", signed=False,
        )  # fmt: skip
        snap = gate_ws.decode_order_book_snapshot(msgspec.json.encode(body))
        assert snap.id == updates[-1].last_id
        assert all(isinstance(e, BookChanges) for e in sync.on_snapshot(snapshot_from_rest(snap)))
        _depth_steps(v, 40)
        for _ in range(40):
            push = await _recv(ws)
            assert isinstance(push, gate_ws.Push)
            updates.append(push.result)
            assert all(
                isinstance(e, BookChanges) for e in sync.on_diff(diff_from_push(push.result))
            )
    assert all(b.first_id == a.last_id + 1 for a, b in itertools.pairwise(updates))
    state = v.market.symbols["BTC/USDT"]
    for side, levels in ((Side.BUY, sync.book.bids), (Side.SELL, sync.book.asks)):
        ours = {Decimal(p): Decimal(s) for p, s in state.levels(side, 100_000)}
        assert {p: Decimal(s) for p, s in levels.items()} == ours


async def test_obu_full_then_incremental(sim: Simulator, http: aiohttp.ClientSession) -> None:
    v = sim.venues["gateio"]
    async with http.ws_connect(v.ws_url) as ws:
        stream = gate_ws.obu_stream("BTC_USDT", 400)
        await ws.send_str(
            gate_ws.subscribe_request("spot.obu", [stream], int(time.time())).decode()
        )
        assert (await _reply(ws)).ok
        sync = new_obu_sync(stream)
        first = await _recv(ws)
        assert isinstance(first, gate_ws.Push) and first.result.full
        sync.on_diff(diff_from_push(first.result))
        _depth_steps(v, 10)
        for _ in range(10):
            push = await _recv(ws)
            assert isinstance(push, gate_ws.Push) and not push.result.full
            assert all(
                isinstance(e, BookChanges) for e in sync.on_diff(diff_from_push(push.result))
            )
    assert sync.local_id == v.market.symbols["BTC/USDT"].version


def _auth(v: SimVenue, channel: str, event: str, t: int) -> dict[str, str]:
    sign = signing.sign_channel_auth(v.api_secret, channel, event, t)
    return {"method": "api_key", "KEY": v.api_key, "SIGN": sign}


async def test_private_channels_after_a_fill(sim: Simulator, http: aiohttp.ClientSession) -> None:
    v = sim.venues["gateio"]
    t = int(time.time())
    async with http.ws_connect(v.ws_url) as ws:
        for ch, payload in (
            ("spot.orders", ["BTC_USDT"]),
            ("spot.usertrades", ["!all"]),
            ("spot.balances", []),
        ):
            auth = _auth(v, ch, "subscribe", t)
            await ws.send_str(gate_ws.subscribe_request(ch, payload, t, auth=auth).decode())
            assert (await _reply(ws)).ok, ch
        _, book, _ = await gate_call(
            http, v, "GET", "spot/order_book", "currency_pair=BTC_USDT&limit=1", signed=False
        )
        body = {"currency_pair": "BTC_USDT", "side": "buy", "amount": "0.001",
                "price": book["asks"][0][0], "time_in_force": "ioc", "text": "t-ws1"}  # fmt: skip
        status, order, _ = await gate_call(http, v, "POST", "spot/orders", body=body)
        assert status == 201 and order["status"] == "closed"
        got: dict[str, list[Any]] = {}
        while len(got.get("spot.orders", [])) < 2 or "spot.usertrades" not in got:
            push = await _recv(ws)
            assert isinstance(push, gate_ws.Push)
            got.setdefault(push.channel, []).extend(push.result)
    events = [o.event for o in got["spot.orders"]]
    assert events == ["put", "finish"] and got["spot.orders"][-1].finish_as == "filled"
    (trade,) = got["spot.usertrades"]
    assert (trade.order_id, trade.role, trade.amount, trade.text) == (
        order["id"], "taker", "0.001", "t-ws1",
    )  # fmt: skip
    balances = {b.currency: b for b in got["spot.balances"]}
    # bought 0.001 BTC, the taker fee (10 bps) taken in BTC
    assert Decimal(balances["BTC"].change) == Decimal("0.001") - Decimal(trade.fee)
    assert trade.fee_currency == "BTC" and Decimal(trade.fee) == Decimal("0.000001")


async def test_ws_api_login_place_status_cancel(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    v = sim.venues["gateio"]

    def api(channel: str, req_id: str, param: Any, *, secret: str | None = None) -> str:
        ts = str(int(time.time()))
        req_param = "" if param is None else msgspec.json.encode(param).decode()
        payload: dict[str, Any] = {"req_id": req_id, "timestamp": ts}
        if channel == "spot.login":
            sig = signing.sign_ws_api(secret or v.api_secret, channel, "{}", ts)
            payload.update(api_key=v.api_key, signature=sig)
        else:
            payload["req_param"] = param
        del req_param
        return msgspec.json.encode(
            {"time": int(ts), "channel": channel, "event": "api", "payload": payload}
        ).decode()

    async with http.ws_connect(v.ws_url) as ws:
        await ws.send_str(
            api("spot.order_status", "r0", {"order_id": "1", "currency_pair": "BTC_USDT"})
        )
        reply = await _raw(ws)
        assert reply["header"]["status"] == "401"
        await ws.send_str(api("spot.login", "bad", None, secret="wrong"))
        reply = await _raw(ws)
        assert reply["data"]["errs"]["label"] == "INVALID_SIGNATURE"
        await ws.send_str(api("spot.login", "r1", None))
        reply = await _raw(ws)
        assert reply["header"]["status"] == "200" and reply["data"]["result"]["api_key"]
        order = {"currency_pair": "BTC_USDT", "side": "buy", "amount": "0.001",
                 "price": "5000.0", "text": "t-wsapi"}  # fmt: skip
        await ws.send_str(api("spot.order_place", "r2", order))
        ack = await _raw(ws)
        assert ack["ack"] is True and ack["request_id"] == "r2"
        placed = await _raw(ws)
        assert placed["header"]["status"] == "200" and placed["data"]["result"]["status"] == "open"
        oid = placed["data"]["result"]["id"]
        await ws.send_str(
            api("spot.order_status", "r3", {"order_id": oid, "currency_pair": "BTC_USDT"})
        )
        assert (await _raw(ws))["data"]["result"]["id"] == oid
        await ws.send_str(
            api("spot.order_cancel", "r4", {"order_id": oid, "currency_pair": "BTC_USDT"})
        )
        assert (await _raw(ws))["data"]["result"]["status"] == "cancelled"
        await ws.send_str(api("spot.order_place", "r5", {**order, "amount": "1000"}))
        assert (await _raw(ws))["ack"] is True
        err = await _raw(ws)
        assert err["header"]["status"] == "400"
        assert err["data"]["errs"]["label"] == "BALANCE_NOT_ENOUGH"
