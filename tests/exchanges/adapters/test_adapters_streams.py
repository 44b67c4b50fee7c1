"""Market-data streams of both venues against local aiohttp WebSocket servers.

Each server keeps its own book, answers REST snapshots from it and pushes diffs (MEXC as
protobuf built with ``encode_push``, Gate as JSON). Injected gaps must make the client
resync, dropped connections must make it reconnect, and in the end the client's OrderBook
must equal the server's book.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from functools import partial
from typing import Any, Protocol

import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

from arbsim.core.book import OrderBook
from arbsim.core.errors import NetworkError
from arbsim.core.model import Order, Trade
from exchanges.gateio import rest as gate_rest
from exchanges.gateio import signing as gate_signing
from exchanges.gateio.stream import GateMarketDialect, GateUserStream
from exchanges.live.credentials import Credentials
from exchanges.live.orders import OrderTracker
from exchanges.live.stream import Backoff, MarketStream, SubscriptionRefused
from exchanges.mexc import rest as mexc_rest
from exchanges.mexc import ws as mexc_ws
from exchanges.mexc.push import AggreDeal, AggreDeals, AggreDepth, PrivateDeal, encode_push
from exchanges.mexc.stream import MexcMarketDialect, MexcUserStream

Levels = dict[str, str]


class Book:
    """The server's book: price string -> size string, and the last update id."""

    def __init__(self, version: int) -> None:
        self.version = version
        self.bids: Levels = {}
        self.asks: Levels = {}

    def change(self, bids: Levels, asks: Levels) -> tuple[int, int]:
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for p, s in levels.items():
                if Decimal(s) == 0:
                    side.pop(p, None)
                else:
                    side[p] = s
        first = self.version + 1
        self.version += 1
        return first, self.version

    def top(self, side: Levels, reverse: bool) -> list[tuple[float, float]]:
        keys = sorted(side, key=Decimal, reverse=reverse)
        return [(float(p), float(side[p])) for p in keys]


def client_levels(book: OrderBook) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    return (
        [(lv.price, lv.size) for lv in book.bids(1000)],
        [(lv.price, lv.size) for lv in book.asks(1000)],
    )


def same(book: OrderBook, server: Book) -> bool:
    bids, asks = client_levels(book)
    return bids == server.top(server.bids, True) and asks == server.top(server.asks, False)


async def until(cond: Callable[[], bool], timeout_s: float = 3.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while not cond():
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


class Server:
    """WebSocket + REST server for one venue; venue specifics in the subclasses."""

    def __init__(self) -> None:
        self.book = Book(1000)
        self.book.change({"100.0": "1", "99.5": "2"}, {"101.0": "3", "102.5": "4"})
        self.sockets: list[web.WebSocketResponse] = []
        self.snapshots = 0
        self.connections = 0
        self.blocked: set[str] = set()
        self.received: list[Any] = []

    def app(self) -> web.Application:
        app = web.Application()
        self.routes(app)
        return app

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def ws_handler(self, request: web.Request) -> web.WebSocketResponse:
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        self.connections += 1
        self.sockets.append(sock)
        async for msg in sock:
            if msg.type is WSMsgType.TEXT:
                self.received.append(json.loads(msg.data))
                await self.on_text(sock, json.loads(msg.data))
        if sock in self.sockets:
            self.sockets.remove(sock)
        return sock

    async def on_text(self, sock: web.WebSocketResponse, data: Any) -> None:
        raise NotImplementedError

    async def push(self, bids: Levels, asks: Levels, *, gap: bool = False) -> None:
        first, last = self.book.change(bids, asks)
        if gap:
            first += 1  # the client sees a missing update id
        for sock in list(self.sockets):
            await self.send(sock, first, last, bids, asks)

    async def send(self, sock: web.WebSocketResponse, first: int, last: int, bids: Levels,
                   asks: Levels) -> None:  # fmt: skip
        raise NotImplementedError

    async def drop(self) -> None:
        for sock in list(self.sockets):
            await sock.close()


class MexcServer(Server):
    def routes(self, app: web.Application) -> None:
        app.router.add_get("/api/v3/depth", self.depth)
        app.router.add_get("/ws", self.ws_handler)

    async def depth(self, request: web.Request) -> web.Response:
        self.snapshots += 1
        b = self.book
        return web.json_response({
            "lastUpdateId": b.version,
            "bids": [[p, s] for p, s in b.bids.items()],
            "asks": [[p, s] for p, s in b.asks.items()],
            "timestamp": 1736411507002,
        })  # fmt: skip

    async def on_text(self, sock: web.WebSocketResponse, data: Any) -> None:
        if data.get("method") == "PING":
            await sock.send_bytes(mexc_ws.pong_frame())
            return
        for topic in data.get("params", []):
            blocked = any(b in topic for b in self.blocked)
            frame = mexc_ws.blocked_frame(topic) if blocked else mexc_ws.ack_frame(topic)
            await sock.send_str(frame.decode())

    async def send(self, sock: web.WebSocketResponse, first: int, last: int, bids: Levels,
                   asks: Levels) -> None:  # fmt: skip
        frame = AggreDepth(
            channel="spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT", symbol="BTCUSDT",
            send_time=1736411507002 + last, from_version=first, to_version=last,
            bids=list(bids.items()), asks=list(asks.items()),
            event_type="spot@public.aggre.depth.v3.api.pb@100ms",
        )  # fmt: skip
        await sock.send_bytes(encode_push(frame))

    async def trade(self) -> None:
        frame = AggreDeals(
            channel="spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT", symbol="BTCUSDT",
            send_time=1755973886309,
            deals=[AggreDeal(price="115091.25", quantity="0.000059", trade_type=2,
                             time=1755973886258)],
        )  # fmt: skip
        for sock in self.sockets:
            await sock.send_bytes(encode_push(frame))


class GateServer(Server):
    def routes(self, app: web.Application) -> None:
        app.router.add_get("/api/v4/spot/order_book", self.order_book)
        app.router.add_get("/ws/v4/", self.ws_handler)

    async def order_book(self, request: web.Request) -> web.Response:
        assert request.query["with_id"] == "true"
        self.snapshots += 1
        b = self.book
        return web.json_response({
            "id": b.version, "current": 1759104757920, "update": 1759104757919,
            "bids": [[p, s] for p, s in b.bids.items()],
            "asks": [[p, s] for p, s in b.asks.items()],
        })  # fmt: skip

    async def on_text(self, sock: web.WebSocketResponse, data: Any) -> None:
        channel = data["channel"]
        if channel == "spot.ping":
            await sock.send_json({"time": data["time"], "channel": "spot.pong", "event": ""})
            return
        error = {"code": 2, "message": "blocked"} if channel in self.blocked else None
        if "auth" in data:
            auth = data["auth"]
            ok = gate_signing.verify_channel_auth(
                "s3cret", channel, data["event"], data["time"], auth["SIGN"]
            )
            error = None if ok else {"code": 4, "message": "auth failed"}
        await sock.send_json({
            "time": data["time"], "time_ms": data["time"] * 1000, "id": data.get("id"),
            "channel": channel, "event": data["event"], "error": error,
            "result": None if error else {"status": "success"},
        })  # fmt: skip

    async def send(self, sock: web.WebSocketResponse, first: int, last: int, bids: Levels,
                   asks: Levels) -> None:  # fmt: skip
        await sock.send_json({
            "time": 1606294781, "time_ms": 1606294781123, "channel": "spot.order_book_update",
            "event": "update",
            "result": {"t": 1606294781123 + last, "e": "depthUpdate", "E": 1606294781,
                       "s": "BTC_USDT", "U": first, "u": last,
                       "b": [[p, s] for p, s in bids.items()],
                       "a": [[p, s] for p, s in asks.items()]},
        })  # fmt: skip


class Serves(Protocol):
    """A fake venue: the aiohttp app answering its REST and WebSocket paths."""

    def app(self) -> web.Application: ...


async def serve(server: Serves) -> AsyncIterator[str]:
    srv = TestServer(server.app(), host="127.0.0.1", port=0)
    await srv.start_server()
    try:
        yield f"127.0.0.1:{srv.port}"
    finally:
        await srv.close()


@pytest.fixture
async def mexc_server() -> AsyncIterator[tuple[MexcServer, str]]:
    server = MexcServer()
    async for host in serve(server):
        yield server, host


@pytest.fixture
async def gate_server() -> AsyncIterator[tuple[GateServer, str]]:
    server = GateServer()
    async for host in serve(server):
        yield server, host


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000_000_000_000

    def __call__(self) -> int:
        self.t += 1000
        return self.t


def mexc_stream(host: str, **kw: Any) -> tuple[MarketStream, OrderBook, mexc_rest.MexcRestClient,
                                                list[Trade]]:  # fmt: skip
    client = mexc_rest.MexcRestClient(f"http://{host}")
    book = OrderBook("mexc", "BTC/USDT", Decimal("0.01"))
    trades: list[Trade] = []
    dialect = MexcMarketDialect(client, {"BTCUSDT": "BTC/USDT"}, url=f"ws://{host}/ws")
    stream = MarketStream(
        dialect, lambda: client.transport.session, {"BTCUSDT": book}, venue="mexc",
        on_trade=trades.append, clock=Clock(), backoff=Backoff(base_s=0.01, seed=1),
        resync_delay_s=0.0, **kw,
    )  # fmt: skip
    return stream, book, client, trades


def gate_stream(host: str) -> tuple[MarketStream, OrderBook, gate_rest.GateRestClient]:
    client = gate_rest.GateRestClient(f"http://{host}/api/v4")
    book = OrderBook("gateio", "BTC/USDT", Decimal("0.01"))
    dialect = GateMarketDialect(client, {"BTC_USDT": "BTC/USDT"}, url=f"ws://{host}/ws/v4/",
                                trades=False)  # fmt: skip
    stream = MarketStream(
        dialect, lambda: client.transport.session, {"BTC_USDT": book}, venue="gateio",
        clock=Clock(), backoff=Backoff(base_s=0.01, seed=1), resync_delay_s=0.0,
    )  # fmt: skip
    return stream, book, client


async def test_mexc_book_sync_gap_and_reconnect(mexc_server: tuple[MexcServer, str]) -> None:
    server, host = mexc_server
    stream, book, client, trades = mexc_stream(host)
    stream.start()
    try:
        await stream.wait_ready(3)
        await until(lambda: same(book, server.book))
        assert server.snapshots == 1
        await server.push({"100.0": "0", "100.5": "7"}, {"101.0": "2.5"})
        await until(lambda: same(book, server.book))
        assert book.ts_exchange == (1736411507002 + server.book.version) * 1_000_000
        assert book.ts_local > 1_700_000_000_000_000_000
        assert book.seq == server.book.version
        # A gap: the client must notice, take a new snapshot and end up equal again.
        await server.push({"99.0": "1"}, {}, gap=True)
        await until(lambda: stream.resyncs == 1 and same(book, server.book))
        assert server.snapshots == 2
        await server.push({"98.0": "1"}, {"103.0": "1"})
        await until(lambda: same(book, server.book))
        # A dropped connection: reconnect, resubscribe, resnapshot.
        await server.drop()
        await until(lambda: server.connections == 2 and stream.ready.is_set())
        await server.push({"97.0": "1"}, {})
        await until(lambda: same(book, server.book) and server.snapshots == 3)
        await server.trade()
        await until(lambda: len(trades) == 1)
        assert trades[0].price == 115091.25 and trades[0].side.name == "SELL"
        assert trades[0].ts_exchange == 1755973886258 * 1_000_000
    finally:
        await stream.stop()
        await client.close()


async def test_mexc_blocked_subscription_is_an_error(mexc_server: tuple[MexcServer, str]) -> None:
    server, host = mexc_server
    server.blocked.add("deals")
    stream, _, client, _ = mexc_stream(host)
    stream.start()
    try:
        with pytest.raises(SubscriptionRefused, match="Blocked"):
            await stream.wait_ready(3)
    finally:
        await stream.stop()
        await client.close()


async def test_mexc_ping_is_sent(mexc_server: tuple[MexcServer, str]) -> None:
    server, host = mexc_server
    stream, _, client, _ = mexc_stream(host, ping_interval_s=0.01)
    stream.start()
    try:
        await stream.wait_ready(3)
        await until(lambda: {"method": "PING"} in server.received)
    finally:
        await stream.stop()
        await client.close()


async def test_gate_book_sync_gap_and_reconnect(gate_server: tuple[GateServer, str]) -> None:
    server, host = gate_server
    stream, book, client = gate_stream(host)
    stream.start()
    try:
        await stream.wait_ready(3)
        await until(lambda: same(book, server.book))
        await server.push({"100.0": "0"}, {"101.0": "0", "101.5": "9"})
        await until(lambda: same(book, server.book))
        assert book.ts_exchange == (1606294781123 + server.book.version) * 1_000_000
        await server.push({"99.9": "1"}, {}, gap=True)
        await server.push({"99.8": "1"}, {})
        await until(lambda: stream.resyncs >= 1 and same(book, server.book))
        await server.drop()
        await until(lambda: server.connections == 2 and stream.ready.is_set())
        await server.push({"99.7": "1"}, {"104": "1"})
        await until(lambda: same(book, server.book))
        assert server.snapshots >= 3
    finally:
        await stream.stop()
        await client.close()


async def test_gate_refused_subscription(gate_server: tuple[GateServer, str]) -> None:
    server, host = gate_server
    server.blocked.add("spot.order_book_update")
    stream, _, client = gate_stream(host)
    stream.start()
    try:
        with pytest.raises(SubscriptionRefused, match="blocked"):
            await stream.wait_ready(3)
    finally:
        await stream.stop()
        await client.close()


async def test_unreachable_stream_keeps_retrying_with_backoff() -> None:
    client = mexc_rest.MexcRestClient("http://127.0.0.1:9")
    book = OrderBook("mexc", "BTC/USDT", Decimal("0.01"))
    backoff = Backoff(base_s=0.001, cap_s=0.004, seed=3)
    stream = MarketStream(
        MexcMarketDialect(client, {"BTCUSDT": "BTC/USDT"}, url="ws://127.0.0.1:9/ws"),
        lambda: client.transport.session, {"BTCUSDT": book}, venue="mexc", backoff=backoff,
    )  # fmt: skip
    stream.start()
    try:
        with pytest.raises(NetworkError, match="not ready"):
            await stream.wait_ready(0.2)
        assert backoff.failures >= 3
    finally:
        await stream.stop()
        await client.close()


def test_backoff_is_exponential_with_seeded_jitter() -> None:
    a = Backoff(base_s=1, factor=2, cap_s=8, seed=42)
    b = Backoff(base_s=1, factor=2, cap_s=8, seed=42)
    delays = [a.next_delay() for _ in range(6)]
    assert delays == [b.next_delay() for _ in range(6)]
    for n, d in enumerate(delays):
        top = min(8, 2**n)
        assert top / 2 <= d <= top
    a.reset()
    assert a.next_delay() <= 1


# --------------------------------------------------------------------------------------------
# Private streams
# --------------------------------------------------------------------------------------------


class MexcPrivateServer:
    def __init__(self) -> None:
        self.keys: list[str] = []
        self.valid: set[str] = set()
        self.keepalives: list[str] = []
        self.deleted: list[str] = []
        self.sockets: list[web.WebSocketResponse] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/v3/userDataStream", self.create)
        app.router.add_put("/api/v3/userDataStream", self.keepalive)
        app.router.add_delete("/api/v3/userDataStream", self.delete)
        app.router.add_get("/ws", self.ws)
        return app

    async def create(self, request: web.Request) -> web.Response:
        assert "signature=" in request.rel_url.raw_query_string
        key = f"key{len(self.keys)}"
        self.keys.append(key)
        self.valid.add(key)
        return web.json_response({"listenKey": key})

    async def keepalive(self, request: web.Request) -> web.Response:
        key = request.query["listenKey"]
        self.keepalives.append(key)
        if key not in self.valid:
            return web.json_response({"code": 700001, "msg": "listenKey expired"}, status=400)
        return web.json_response({"listenKey": key})

    async def delete(self, request: web.Request) -> web.Response:
        self.deleted.append(request.query["listenKey"])
        return web.json_response({})

    async def ws(self, request: web.Request) -> web.WebSocketResponse:
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        if request.query.get("listenKey") not in self.valid:
            await sock.send_str("Invalid listen key")
            await sock.close()
            return sock
        self.sockets.append(sock)
        async for msg in sock:
            data = json.loads(msg.data)
            for topic in data.get("params", []):
                await sock.send_str(mexc_ws.ack_frame(topic).decode())
        if sock in self.sockets:
            self.sockets.remove(sock)
        return sock


def _renewed(server: MexcPrivateServer, stream: MexcUserStream, keys: int) -> bool:
    return len(server.keys) == keys and stream.ready.is_set()


async def test_mexc_listen_key_lifecycle() -> None:
    server = MexcPrivateServer()
    deals: list[PrivateDeal] = []
    async for host in serve(server):
        client = mexc_rest.MexcRestClient(f"http://{host}", Credentials("k", "s"))
        stream = MexcUserStream(
            client, on_order=lambda o, t: None, on_deal=lambda d, t: deals.append(d),
            url=f"ws://{host}/ws?listenKey={{listen_key}}", keepalive_interval_s=0.02,
            backoff=Backoff(base_s=0.005, seed=1),
        )  # fmt: skip
        stream.start()
        try:
            await stream.wait_ready(3)
            assert server.keys == ["key0"]
            await until(lambda: len(server.keepalives) >= 2)
            deal = PrivateDeal(channel="spot@private.deals.v3.api.pb", price="10", quantity="1",
                               trade_id="t1", order_id="o1", client_order_id="c1",
                               fee_amount="0.01", fee_currency="USDT", time=5)  # fmt: skip
            await server.sockets[0].send_bytes(encode_push(deal))
            await until(lambda: len(deals) == 1)
            assert deals[0].trade_id == "t1"
            # The key expires: the keep-alive fails -> a new key and a new connection.
            server.valid.discard("key0")
            await until(partial(_renewed, server, stream, 2))
            # "Invalid listen key" on connect -> a new key as well.
            server.valid.discard("key1")
            await server.sockets[0].close()
            await until(partial(_renewed, server, stream, 3))
        finally:
            await stream.stop()
            await client.close()
        assert server.deleted == ["key2"]


async def test_gate_private_subscriptions_are_signed(gate_server: tuple[GateServer, str]) -> None:
    server, host = gate_server
    client = gate_rest.GateRestClient(f"http://{host}/api/v4")
    creds = Credentials("key", "s3cret")
    stream = GateUserStream(
        lambda: client.transport.session, creds, ["BTC_USDT"],
        on_order=lambda o, t: None, on_trade=lambda o, t: None, url=f"ws://{host}/ws/v4/",
        backoff=Backoff(base_s=0.01, seed=1),
    )  # fmt: skip
    stream.start()
    try:
        await stream.wait_ready(3)
    finally:
        await stream.stop()
        await client.close()
    subs = [m for m in server.received if m.get("event") == "subscribe"]
    assert [m["channel"] for m in subs] == ["spot.orders", "spot.usertrades", "spot.balances"]
    assert subs[0]["payload"] == ["BTC_USDT"] and subs[2]["payload"] == []
    assert all(m["auth"]["KEY"] == "key" and m["auth"]["method"] == "api_key" for m in subs)


async def test_gate_private_bad_key_is_an_auth_error(gate_server: tuple[GateServer, str]) -> None:
    from arbsim.core.errors import AuthError

    _server, host = gate_server
    client = gate_rest.GateRestClient(f"http://{host}/api/v4")
    stream = GateUserStream(
        lambda: client.transport.session, Credentials("key", "wrong"),
        ["BTC_USDT"], on_order=lambda o, t: None, on_trade=lambda o, t: None,
        url=f"ws://{host}/ws/v4/",
    )  # fmt: skip
    stream.start()
    try:
        with pytest.raises(AuthError, match="auth failed"):
            await stream.wait_ready(3)
    finally:
        await stream.stop()
        await client.close()


# --------------------------------------------------------------------------------------------
# Order tracking races
# --------------------------------------------------------------------------------------------


def test_tracker_holds_a_cancel_until_its_fills_arrive() -> None:
    from arbsim.core.model import Fill, OrderRequest, OrderStatus, Side, TimeInForce

    seen: list[Order] = []
    tracker = OrderTracker("mexc", clock=lambda: 1)
    tracker.on_order = seen.append
    req = OrderRequest(venue="mexc", symbol="BTC/USDT", side=Side.BUY, qty=Decimal(2),
                       price=Decimal(10), tif=TimeInForce.GTC, client_order_id="c1")  # fmt: skip

    def fill(trade_id: str, qty: str) -> Fill:
        return Fill(venue="mexc", symbol="BTC/USDT", client_order_id="c1", order_id="o1",
                    trade_id=trade_id, side=Side.BUY, price=Decimal(10), qty=Decimal(qty),
                    fee=Decimal("0.01"), fee_asset="USDT", liquidity="maker", ts_exchange=1,
                    ts_local=2)  # fmt: skip

    tracker.register(req)
    tracker.fill("c1", fill("t1", "0.5"))  # a fill before the ack: accepted first
    assert [o.status for o in seen] == [OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED]
    tracker.finished("c1", OrderStatus.CANCELED, Decimal("1.5"))  # one fill still missing
    assert tracker.snapshot("c1").status is OrderStatus.PARTIALLY_FILLED
    assert not tracker.fill("c1", fill("t1", "0.5"))  # duplicate
    tracker.fill("c1", fill("t2", "1"))
    final = tracker.snapshot("c1")
    assert final.status is OrderStatus.CANCELED and final.filled_qty == Decimal("1.5")
    assert final.fee == Decimal("0.02") and len(final.fills) == 2
