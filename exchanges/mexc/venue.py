"""``MexcVenue``: the arbsim :class:`~arbsim.core.ports.Venue` for MEXC spot (paper/live).

Built from :class:`~exchanges.mexc.rest.MexcRestClient`, the public
:class:`~exchanges.live.stream.MarketStream` with :class:`~exchanges.mexc.stream.MexcMarketDialect`
and :class:`~exchanges.mexc.stream.MexcUserStream`. Orders are tracked by
:class:`~exchanges.live.orders.OrderTracker`: private pushes (orders, deals) become arbsim
:class:`~arbsim.core.model.Order` snapshots with their fills, handed to the sink.

IOC / FOK / market orders return their final state: ``place_order`` waits up to
``settle_timeout_s`` for the pushes that end them, then asks REST (order + myTrades).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from decimal import Decimal

from arbsim.core.book import OrderBook
from arbsim.core.errors import InvalidSymbol
from arbsim.core.model import (
    Balances,
    Fill,
    Instrument,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from arbsim.core.ports import MarketSink, VenueHealth
from arbsim.runtime.loop import WallClock
from exchanges.live.credentials import Credentials
from exchanges.live.orders import OrderTracker, place_tracked, reconcile_remote
from exchanges.live.stream import Backoff, MarketStream
from exchanges.live.symbols import SymbolTable
from exchanges.mexc import rest, ws
from exchanges.mexc.push import PrivateDeal, PrivateOrder
from exchanges.mexc.stream import MexcMarketDialect, MexcUserStream
from exchanges.mexc.symbols import to_native

__all__ = ["PUSH_STATUS", "MexcVenue"]

PUSH_STATUS: dict[int, OrderStatus] = {
    1: OrderStatus.ACCEPTED,
    2: OrderStatus.FILLED,
    3: OrderStatus.PARTIALLY_FILLED,
    4: OrderStatus.CANCELED,
    5: OrderStatus.CANCELED,  # partially canceled: canceled with fills
}
"""Protobuf private order ``status`` -> arbsim status (A3)."""

_SETTLING = frozenset({TimeInForce.IOC, TimeInForce.FOK})
_MS = 1_000_000


class MexcVenue:
    """MEXC spot through its REST and WebSocket APIs.

    Parameters
    ----------
    credentials:
        None for market data only.
    name:
        Venue name in arbsim (``"mexc"``).
    rest_url, ws_url, private_ws_url:
        Endpoints (tests point them at 127.0.0.1).
    clock:
        Wall clock (``now_ns``) for ``ts_local``.
    backoff_seed:
        Seeds the reconnect jitter.
    ping_interval_s, keepalive_interval_s:
        WebSocket PING and listenKey keep-alive periods.
    settle_timeout_s:
        How long ``place_order`` waits for an IOC/FOK to end by push before asking REST.
    ready_timeout_s:
        How long ``start`` waits for the streams.

    Notes
    -----
    The constructor does no I/O; :meth:`start` loads the symbols and connects.
    """

    def __init__(
        self,
        credentials: Credentials | None = None,
        *,
        name: str = "mexc",
        rest_url: str = rest.BASE_URL,
        ws_url: str = ws.MARKET_URL,
        private_ws_url: str = ws.PRIVATE_URL,
        clock: WallClock | None = None,
        backoff_seed: int | None = None,
        backoff_base_s: float = 0.5,
        ping_interval_s: float = 15.0,
        keepalive_interval_s: float = 30 * 60,
        settle_timeout_s: float = 2.0,
        ready_timeout_s: float = 10.0,
        depth_limit: int = 5000,
        timeout_s: float = 10.0,
    ) -> None:
        self.name = name
        self.clock = clock or WallClock()
        self.credentials = credentials
        self.rest = rest.MexcRestClient(
            rest_url,
            credentials,
            timeout_s=timeout_s,
            clock_ms=lambda: time.time_ns() // _MS,
        )
        self.rest_url = rest_url
        self.order_expiry_ns = self.rest.recv_window * _MS
        self.ws_url = ws_url
        self.private_ws_url = private_ws_url
        self.backoff_seed = backoff_seed
        self.backoff_base_s = backoff_base_s
        self.ping_interval_s = ping_interval_s
        self.keepalive_interval_s = keepalive_interval_s
        self.settle_timeout_s = settle_timeout_s
        self.ready_timeout_s = ready_timeout_s
        self.depth_limit = depth_limit
        self.tracker = OrderTracker(name, self.clock.now_ns)
        self.market: MarketStream | None = None
        self.user: MexcUserStream | None = None
        self.table = SymbolTable(self.name)
        self._sink: MarketSink | None = None

    # ---------------------------------------------------------------- lifecycle
    async def start(self, symbols: Sequence[str], sink: MarketSink) -> None:
        """Load the symbols' rules, connect the public (and private) streams."""
        self._sink = sink
        self.tracker.on_order = sink.on_order
        natives = [to_native(s) for s in symbols]
        infos = {i.native_symbol: i for i in await self.rest.exchange_info(natives)}
        for symbol, native in zip(symbols, natives, strict=True):
            info = infos.get(native)
            if info is None:
                raise InvalidSymbol(f"{symbol} ({native}) is not listed", venue=self.name)
            inst = info.to_instrument(self.name)
            self.table.add(symbol, native, inst)
        dialect = MexcMarketDialect(
            self.rest, self.table.symbols, url=self.ws_url, depth_limit=self.depth_limit
        )
        self.market = MarketStream(
            dialect,
            lambda: self.rest.transport.session,
            self.table.books,
            venue=self.name,
            on_book=lambda native, book: sink.on_book(self.name, book),
            on_trade=lambda trade: sink.on_trade(self.name, trade),
            clock=self.clock.now_ns,
            backoff=Backoff(base_s=self.backoff_base_s, seed=self.backoff_seed),
            ping_interval_s=self.ping_interval_s,
        )
        self.market.start()
        await self.market.wait_ready(self.ready_timeout_s)
        if self.credentials is not None:
            self.user = MexcUserStream(
                self.rest,
                on_order=self._on_push_order,
                on_deal=self._on_push_deal,
                url=self.private_ws_url,
                keepalive_interval_s=self.keepalive_interval_s,
                ping_interval_s=self.ping_interval_s,
                backoff=Backoff(base_s=self.backoff_base_s, seed=self.backoff_seed),
                clock=self.clock.now_ns,
            )
            self.user.start()
            await self.user.wait_ready(self.ready_timeout_s)

    async def stop(self) -> None:
        """Close the streams (deleting the listenKey) and the HTTP session."""
        if self.market is not None:
            await self.market.stop()
        if self.user is not None:
            await self.user.stop()
        await self.rest.close()

    # ---------------------------------------------------------------- data
    def health(self) -> VenueHealth:
        market = self.market is not None and self.market.up
        private = self.credentials is None or (self.user is not None and self.user.up)
        down = [n for n, ok in (("market stream", market), ("private stream", private)) if not ok]
        return VenueHealth(market=market, private=private, detail=", ".join(down))

    def describe(self) -> dict[str, str | float]:
        return {
            "kind": "live" if self.credentials is not None else "feed",
            "exchange": "mexc",
            "rest_url": self.rest_url,
            "ws_url": self.ws_url,
            "latency": "real",
            "rules": "real",
            "queue": "real",
        }

    def instrument(self, symbol: str) -> Instrument:
        return self.table.instrument(symbol)

    def book(self, symbol: str) -> OrderBook:
        return self.table.book(symbol)

    async def fetch_balances(self) -> Balances:
        return rest.to_balances(await self.rest.account(), self.clock.now_ns(), self.name)

    # ---------------------------------------------------------------- orders
    async def place_order(self, req: OrderRequest) -> Order:
        native = self.table.native(req.symbol)
        if not req.client_order_id:
            raise ValueError("place_order needs a client_order_id")
        quote_qty = None
        if req.order_type is OrderType.MARKET and req.side is Side.BUY and req.qty <= 0:
            raise ValueError("a market buy needs a positive base quantity")
        params = rest.order_params(
            native, req.side, req.qty, req.price, req.order_type, req.tif,
            req.client_order_id, quote_qty=quote_qty,
        )  # fmt: skip

        async def send() -> tuple[str, bool]:
            return str((await self.rest.place_order(params)).order_id), False

        order = await place_tracked(
            self.tracker, req, send,
            settle=req.tif in _SETTLING or req.order_type is OrderType.MARKET,
            settle_timeout_s=self.settle_timeout_s,
        )  # fmt: skip
        return order or await self.fetch_order(req.symbol, req.client_order_id)

    async def cancel_order(self, symbol: str, client_order_id: str) -> Order:
        native = self.table.native(symbol)
        tracked = self.tracker.get(client_order_id)
        order_id = tracked.order_id if tracked else None
        raw = await self.rest.cancel_order(
            native, order_id=order_id or None, client_order_id=client_order_id
        )
        return await self._reconcile(symbol, native, raw, client_order_id)

    async def fetch_order(self, symbol: str, client_order_id: str) -> Order:
        native = self.table.native(symbol)
        tracked = self.tracker.get(client_order_id)
        order_id = tracked.order_id if tracked else None
        raw = await self.rest.query_order(
            native, order_id=order_id or None, client_order_id=client_order_id
        )
        return await self._reconcile(symbol, native, raw, client_order_id)

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        symbols = [symbol] if symbol else list(self.table.natives)
        out: list[Order] = []
        for sym in symbols:
            native = self.table.native(sym)
            for raw in await self.rest.open_orders(native):
                remote = rest.to_order(raw, sym, ts_local=self.clock.now_ns(), venue=self.name)
                tracked = self.tracker.get(remote.client_order_id)
                out.append(tracked.snapshot() if tracked else remote)
        return out

    async def _reconcile(
        self, symbol: str, native: str, raw: rest.MexcOrder, client_order_id: str
    ) -> Order:
        now = self.clock.now_ns()
        remote = rest.to_order(raw, symbol, ts_local=now, venue=self.name)

        async def fills() -> list[Fill]:
            trades = await self.rest.my_trades(native, order_id=remote.order_id)
            return [
                rest.to_fill(t, symbol, client_order_id, ts_local=now, venue=self.name)
                for t in trades
                if str(t.order_id) == remote.order_id
            ]

        return await reconcile_remote(self.tracker, remote, client_order_id, fills)

    # ---------------------------------------------------------------- pushes
    def _on_push_order(self, push: PrivateOrder, ts_local: int) -> None:
        cid = self.tracker.client_id(push.id, push.client_id)
        if cid is None:
            return
        status = PUSH_STATUS.get(push.status)
        if status is OrderStatus.ACCEPTED:
            self.tracker.accepted(cid, push.id, ts_local)
        elif status is OrderStatus.CANCELED:
            self.tracker.finished(cid, status, Decimal(push.cumulative_quantity or "0"), ts_local)
        elif status is not None and push.id:
            self.tracker.accepted(cid, push.id, ts_local)

    def _on_push_deal(self, push: PrivateDeal, ts_local: int) -> None:
        cid = self.tracker.client_id(push.order_id, push.client_order_id)
        if cid is None:
            return
        order = self.tracker.orders[cid]
        self.tracker.fill(
            cid,
            Fill(
                venue=self.name,
                symbol=order.symbol,
                client_order_id=cid,
                order_id=push.order_id or order.order_id,
                trade_id=push.trade_id,
                side=order.side,
                price=Decimal(push.price),
                qty=Decimal(push.quantity),
                fee=Decimal(push.fee_amount or "0"),
                fee_asset=push.fee_currency,
                liquidity="maker" if push.is_maker else "taker",
                ts_exchange=push.time * _MS,
                ts_local=ts_local,
            ),
        )
