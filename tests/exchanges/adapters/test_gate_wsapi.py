"""GateVenue with WebSocket order entry (spot.login / order_place / order_cancel /
order_status) against the local exchange simulator over 127.0.0.1: the same scenario and the
same answers as REST order entry, a refused login, rejections with Gate labels, and lost
replies (through a small WebSocket proxy) that end as OutcomeUnknown and are then found."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any, Literal

import aiohttp
import msgspec
import pytest
from aiohttp import web

import exchanges.sim.config as sim_config
import exchanges.sim.runner as sim_runner
from arbsim.core.book import OrderBook
from arbsim.core.errors import (
    AuthError,
    InsufficientBalance,
    NetworkError,
    OrderNotFound,
    OutcomeUnknown,
    PostOnlyWouldTake,
    VenueError,
)
from arbsim.core.model import Order, OrderRequest, OrderStatus, OrderType, Side, TimeInForce, Trade
from exchanges.gateio import wsapi
from exchanges.gateio.rest import order_body
from exchanges.gateio.venue import GateVenue
from exchanges.live.credentials import Credentials

PAIR = "BTC_USDT"
SYMBOL = "BTC/USDT"


class Sink:
    def __init__(self) -> None:
        self.orders: list[Order] = []

    def on_book(self, venue: str, book: OrderBook) -> None:
        pass

    def on_trade(self, venue: str, trade: Trade) -> None:
        pass

    def on_order(self, order: Order) -> None:
        self.orders.append(order)

    def statuses(self, cid: str) -> list[OrderStatus]:
        return [o.status for o in self.orders if o.client_order_id == cid]


async def until(cond: Callable[[], bool], timeout_s: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while not cond():
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def make_venue(
    v: sim_runner.SimVenue, entry: Literal["rest", "ws"] = "ws", *, secret: str = "", **kw: Any
) -> GateVenue:
    opts: dict[str, Any] = dict(backoff_seed=1, backoff_base_s=0.01, settle_timeout_s=1.0,
                                ready_timeout_s=5.0, order_entry=entry)  # fmt: skip
    opts.update(kw)
    creds = Credentials(v.api_key, secret or v.api_secret)
    return GateVenue(creds, rest_url=v.api_url, ws_url=v.ws_url, **opts)


@contextlib.asynccontextmanager
async def running(
    entry: Literal["rest", "ws"] = "ws", **kw: Any
) -> AsyncIterator[tuple[sim_runner.Simulator, sim_runner.SimVenue, GateVenue, Sink]]:
    cfg = sim_config.SimConfig(venues=[sim_config.VenueConfig(venue="gateio")], speed=0)
    async with sim_runner.run_simulator(cfg) as sim:
        simv = sim.venues["gateio"]
        venue = make_venue(simv, entry, **kw)
        sink = Sink()
        sim.step(50)
        try:
            await venue.start([SYMBOL], sink)
            yield sim, simv, venue, sink
        finally:
            await venue.stop()


def req(cid: str, side: Side, qty: str, price: Decimal,
        tif: TimeInForce = TimeInForce.GTC) -> OrderRequest:  # fmt: skip
    return OrderRequest(venue="gateio", symbol=SYMBOL, side=side, qty=Decimal(qty),
                        price=price, tif=tif, client_order_id=cid)  # fmt: skip


async def passive_buy_price(venue: GateVenue) -> Decimal:
    book = venue.book(SYMBOL)
    await until(lambda: book.best_bid is not None and book.best_ask is not None)
    inst = venue.instrument(SYMBOL)
    assert book.best_bid is not None
    return inst.round_price(book.best_bid - 50 * float(inst.tick), Side.SELL)


# --------------------------------------------------------------------------------------------
# The REST scenario over the WebSocket API, and the same answers as REST
# --------------------------------------------------------------------------------------------


async def scenario(entry: Literal["rest", "ws"]) -> dict[str, Any]:
    """place -> partial fill -> fill -> cancel -> query -> balances; returns what a strategy
    sees (order states, fills, errors) so that both transports can be compared."""
    out: dict[str, Any] = {}
    async with running(entry) as (_sim, simv, venue, sink):
        # REST order placement is broken: only the WebSocket API can succeed.
        if entry == "ws":
            simv.inject_fault(sim_config.FaultRule(kind="http_status", status=503, count=50,
                                                   path="/api/v4/spot/orders"))  # fmt: skip
        price = await passive_buy_price(venue)
        before = await venue.fetch_balances()

        placed = await venue.place_order(req("a0000001", Side.BUY, "0.01", price))
        assert placed.status is OrderStatus.ACCEPTED and placed.order_id

        simv.exchange.inject_trade(SYMBOL, Side.SELL, price, Decimal("0.004"))
        await until(lambda: OrderStatus.PARTIALLY_FILLED in sink.statuses("a0000001"))
        simv.exchange.inject_trade(SYMBOL, Side.SELL, price, Decimal("0.006"))
        await until(lambda: OrderStatus.FILLED in sink.statuses("a0000001"))
        last = [o for o in sink.orders if o.client_order_id == "a0000001"][-1]
        assert last.filled_qty == Decimal("0.01") and len(last.fills) == 2
        assert all(f.fee_asset for f in last.fills)

        resting = await venue.place_order(req("a0000002", Side.BUY, "0.01", price))
        assert resting.is_open
        assert [o.client_order_id for o in await venue.open_orders(SYMBOL)] == ["a0000002"]
        canceled = await venue.cancel_order(SYMBOL, "a0000002")
        assert canceled.status is OrderStatus.CANCELED

        queried = await venue.fetch_order(SYMBOL, "a0000001")
        assert queried.status is OrderStatus.FILLED and queried.filled_qty == Decimal("0.01")
        assert queried.avg_price == price

        after = await venue.fetch_balances()
        fees_base = sum((f.fee for f in last.fills if f.fee_asset == "BTC"), Decimal(0))
        assert after.total("BTC") == before.total("BTC") + Decimal("0.01") - fees_base
        assert after.free("USDT") < before.free("USDT")

        errors: list[tuple[str, str | None]] = []
        for call in (
            venue.place_order(req("r0000001", Side.BUY, "1000", price)),
            venue.cancel_order(SYMBOL, "a0000002"),
            venue.cancel_order(SYMBOL, "nosuch01"),
            venue.fetch_order(SYMBOL, "nosuch02"),
        ):
            with pytest.raises(VenueError) as exc:
                await call
            errors.append((type(exc.value).__name__, exc.value.code))
        rejected = venue.tracker.get("r0000001")
        assert rejected is not None

        if entry == "ws":
            assert venue.ws_api is not None
            assert venue.ws_api.logins == 1
            sent = venue.ws_api.sent
            assert sent[wsapi.PLACE] == 3 and sent[wsapi.CANCEL] == 3
            assert sent[wsapi.STATUS] == 2

        out["statuses"] = {c: sink.statuses(c) for c in ("a0000001", "a0000002", "r0000001")}
        out["fills"] = [(f.price, f.qty, f.fee, f.fee_asset, f.liquidity) for f in last.fills]
        out["queried"] = (queried.status, queried.filled_qty, queried.quote_qty, queried.fee)
        out["canceled"] = (canceled.status, canceled.filled_qty)
        out["errors"] = errors
        out["rejected"] = (rejected.status, rejected.reject_code)
        out["balances"] = {a: (after.free(a), after.total(a)) for a in ("BTC", "USDT")}
    return out


async def test_ws_order_entry_behaves_like_rest() -> None:
    ws_run = await scenario("ws")
    rest_run = await scenario("rest")
    assert ws_run["errors"] == [
        ("InsufficientBalance", "BALANCE_NOT_ENOUGH"),
        ("OrderNotFound", "ORDER_CANCELLED"),
        ("OrderNotFound", "ORDER_NOT_FOUND"),
        ("OrderNotFound", "ORDER_NOT_FOUND"),
    ]
    assert ws_run["rejected"] == (OrderStatus.REJECTED, "BALANCE_NOT_ENOUGH")
    assert ws_run["statuses"]["a0000001"][-1] is OrderStatus.FILLED
    assert ws_run == rest_run


# --------------------------------------------------------------------------------------------
# Login, rejections
# --------------------------------------------------------------------------------------------


async def test_login_refused_with_a_bad_secret_is_auth_error() -> None:
    cfg = sim_config.SimConfig(venues=[sim_config.VenueConfig(venue="gateio")], speed=0)
    async with sim_runner.run_simulator(cfg) as sim, aiohttp.ClientSession() as session:
        v = sim.venues["gateio"]
        good = wsapi.GateWsApi(lambda: session, Credentials(v.api_key, v.api_secret),
                               url=v.ws_url, timeout_s=2.0)  # fmt: skip
        bad = wsapi.GateWsApi(lambda: session, Credentials(v.api_key, "wrong-secret"),
                              url=v.ws_url, timeout_s=2.0)  # fmt: skip
        try:
            await good.wait_ready(5.0)
            assert good.logins == 1 and good.uid
            with pytest.raises(AuthError) as exc:
                await bad.wait_ready(5.0)
            assert exc.value.code == "INVALID_SIGNATURE"
            # Fatal: no reconnect loop, and every later request says why.
            body = order_body(PAIR, Side.BUY, Decimal("0.001"), Decimal("5000"),
                              OrderType.LIMIT, TimeInForce.GTC, "b0000001")  # fmt: skip
            with pytest.raises(AuthError):
                await bad.place(PAIR, body)
            assert bad.connections == 1 and bad.logins == 0
            assert wsapi.PLACE not in bad.sent
        finally:
            await good.stop()
            await bad.stop()


async def test_venue_start_fails_with_auth_error_on_a_bad_secret() -> None:
    cfg = sim_config.SimConfig(venues=[sim_config.VenueConfig(venue="gateio")], speed=0)
    async with sim_runner.run_simulator(cfg) as sim:
        venue = make_venue(sim.venues["gateio"], "ws", secret="wrong-secret")
        try:
            with pytest.raises(AuthError):
                await venue.start([SYMBOL], Sink())
        finally:
            await venue.stop()


async def test_rejections_over_ws_carry_the_gate_label() -> None:
    async with running("ws") as (_sim, _simv, venue, sink):
        price = await passive_buy_price(venue)
        with pytest.raises(InsufficientBalance) as exc:
            await venue.place_order(req("r0000001", Side.BUY, "1000", price))
        assert exc.value.code == "BALANCE_NOT_ENOUGH" and exc.value.venue == "gateio"
        assert sink.statuses("r0000001") == [OrderStatus.REJECTED]
        tracked = venue.tracker.get("r0000001")
        assert tracked is not None and tracked.reject_code == "BALANCE_NOT_ENOUGH"

        book = venue.book(SYMBOL)
        assert book.best_ask is not None
        crossing = venue.instrument(SYMBOL).round_price(book.best_ask, Side.BUY)
        with pytest.raises(PostOnlyWouldTake) as poc:
            await venue.place_order(
                req("p0000001", Side.BUY, "0.001", crossing, TimeInForce.POST_ONLY)
            )
        assert poc.value.code == "POC_FILL_IMMEDIATELY"
        with pytest.raises(OrderNotFound) as missing:
            await venue.cancel_order(SYMBOL, "nosuch01")
        assert missing.value.code == "ORDER_NOT_FOUND"


# --------------------------------------------------------------------------------------------
# Lost replies: a WebSocket proxy between the client and the simulator
# --------------------------------------------------------------------------------------------

ProxyMode = Literal["swallow", "swallow_result", "abort"]


class WsProxy:
    """Forwards one WebSocket path to the simulator; can lose the replies to the next
    request on ``channel`` (all of them, or only the result after the ack), or cut the
    connection right after forwarding it."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.mode: ProxyMode | None = None
        self.channel = wsapi.PLACE
        self.armed_id: str | None = None
        self.swallowed = 0
        self.aborted = 0
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> WsProxy:
        app = web.Application()
        app.router.add_get("/ws/v4/", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"ws://127.0.0.1:{port}/ws/v4/"
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None and self._session is not None
        await self._runner.cleanup()
        await self._session.close()

    async def _handle(self, request: web.Request) -> web.WebSocketResponse:
        transport = request.transport
        client = web.WebSocketResponse(autoping=True)
        await client.prepare(request)
        assert self._session is not None
        async with self._session.ws_connect(self.upstream) as upstream:
            down = asyncio.create_task(self._downstream(upstream, client))
            try:
                async for msg in client:
                    if msg.type is not aiohttp.WSMsgType.TEXT:
                        continue
                    await upstream.send_str(msg.data)
                    if f'"{self.channel}"' in msg.data and self.mode is not None:
                        self.armed_id = json.loads(msg.data)["payload"]["req_id"]
                        if self.mode == "abort":
                            await asyncio.sleep(0.1)  # the venue takes the order
                            self.mode = None
                            self.aborted += 1
                            assert transport is not None
                            transport.abort()
                            break
            finally:
                down.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await down
        return client

    async def _downstream(
        self, upstream: aiohttp.ClientWebSocketResponse, client: web.WebSocketResponse
    ) -> None:
        async for msg in upstream:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                continue
            data = msgspec.json.decode(msg.data)
            ours = self.armed_id is not None and data.get("request_id") == self.armed_id
            if ours and (
                self.mode in ("swallow", "abort")
                or (self.mode == "swallow_result" and not data["ack"])
            ):
                self.swallowed += 1
                if not data["ack"]:
                    self.mode = self.armed_id = None
                continue
            if not client.closed:
                await client.send_str(msg.data)


@pytest.mark.parametrize("mode", ["swallow", "swallow_result", "abort"])
async def test_lost_reply_is_outcome_unknown_then_found_by_fetch_order(mode: ProxyMode) -> None:
    cfg = sim_config.SimConfig(venues=[sim_config.VenueConfig(venue="gateio")], speed=0)
    async with sim_runner.run_simulator(cfg) as sim, WsProxy(sim.venues["gateio"].ws_url) as px:
        simv = sim.venues["gateio"]
        venue = make_venue(simv, "ws", ws_api_url=px.url, timeout_s=0.5)
        sink = Sink()
        sim.step(50)
        try:
            await venue.start([SYMBOL], sink)
            assert venue.ws_api is not None
            price = await passive_buy_price(venue)
            px.mode = mode
            with pytest.raises(OutcomeUnknown) as exc:
                await venue.place_order(req("u0000001", Side.BUY, "0.01", price))
            expected_code = "connection_lost" if mode == "abort" else "timeout"
            assert exc.value.code == expected_code
            if mode == "swallow_result":
                assert "acknowledged" in str(exc.value)
            if mode == "abort":
                assert px.aborted == 1
            else:
                assert px.swallowed == (1 if mode == "swallow_result" else 2)
            # Never "failed": still tracked as open (a private push may have accepted it).
            tracked = venue.tracker.get("u0000001")
            assert tracked is not None and tracked.is_open
            assert OrderStatus.REJECTED not in sink.statuses("u0000001")

            (on_venue,) = simv.exchange.open_orders(simv.api_key, SYMBOL)
            found = await venue.fetch_order(SYMBOL, "u0000001")
            assert found.status is OrderStatus.ACCEPTED
            assert found.order_id == on_venue.order_id and found.client_order_id == "u0000001"
            assert [o.client_order_id for o in await venue.open_orders(SYMBOL)] == ["u0000001"]
            if mode == "abort":
                # reconnected and logged in again before the query
                assert venue.ws_api.connections == 2 and venue.ws_api.logins == 2
            canceled = await venue.cancel_order(SYMBOL, "u0000001")
            assert canceled.status is OrderStatus.CANCELED
        finally:
            await venue.stop()


async def test_lost_status_reply_is_a_network_error_not_outcome_unknown() -> None:
    """Only order requests become OutcomeUnknown: a lost status reply is retryable."""
    cfg = sim_config.SimConfig(venues=[sim_config.VenueConfig(venue="gateio")], speed=0)
    async with (
        sim_runner.run_simulator(cfg) as sim,
        WsProxy(sim.venues["gateio"].ws_url) as px,
        aiohttp.ClientSession() as session,
    ):
        v = sim.venues["gateio"]
        client = wsapi.GateWsApi(lambda: session, Credentials(v.api_key, v.api_secret),
                                 url=px.url, timeout_s=0.3)  # fmt: skip
        try:
            await client.wait_ready(5.0)
            # A channel the venue does not serve is refused with its label.
            with pytest.raises(VenueError) as bad:
                await client.request("spot.order_amend", b"{}")
            assert bad.value.code == "INVALID_PARAM_VALUE"
            px.channel, px.mode = wsapi.STATUS, "swallow"
            with pytest.raises(NetworkError) as exc:
                await client.status(PAIR, "1")
            assert not isinstance(exc.value, OutcomeUnknown) and exc.value.code == "timeout"
            assert px.swallowed == 1
            # The connection is still good.
            with pytest.raises(OrderNotFound):
                await client.status(PAIR, "1")
            assert client.connections == 1
        finally:
            await client.stop()


def test_venue_options_are_checked_without_io() -> None:
    creds = Credentials("k", "s")
    with pytest.raises(ValueError, match="needs API credentials"):
        GateVenue(None, order_entry="ws")
    with pytest.raises(ValueError, match="order_entry"):
        GateVenue(creds, order_entry="fix")  # type: ignore[arg-type]  # invalid on purpose
    with pytest.raises(ValueError, match="book_channel"):
        GateVenue(creds, book_channel="spot.order_book")  # type: ignore[arg-type]  # invalid on purpose
    with pytest.raises(ValueError, match="50 or 400"):
        GateVenue(creds, book_channel="obu", obu_depth=20)
    venue = GateVenue(creds, order_entry="ws")
    assert venue.ws_api is not None and venue.entry is venue.ws_api
    assert venue.ws_api.url == "wss://api.gateio.ws/ws/v4/"
    rest_venue = GateVenue(creds)
    assert rest_venue.entry is rest_venue.rest and rest_venue.ws_api is None
