"""``GateVenue``: the arbsim :class:`~arbsim.core.ports.Venue` for Gate.io spot (paper/live).

Built from :class:`~exchanges.gateio.rest.GateRestClient`, the public
:class:`~exchanges.live.stream.MarketStream` with
:class:`~exchanges.gateio.stream.GateMarketDialect` and
:class:`~exchanges.gateio.stream.GateUserStream`. Client ids travel as Gate ``text``
(``t-<id>``). Orders are tracked by
:class:`~exchanges.live.orders.OrderTracker`: private pushes (orders, deals) become arbsim
:class:`~arbsim.core.model.Order` snapshots with their fills, handed to the sink.

IOC / FOK / market orders return their final state: ``place_order`` waits up to
``settle_timeout_s`` for the pushes that end them, then asks REST (order + myTrades).

Order entry is a choice (:data:`ORDER_ENTRY`): ``"rest"`` (default) or ``"ws"``, Gate's
WebSocket API (:class:`~exchanges.gateio.wsapi.GateWsApi`: ``spot.login``,
``spot.order_place`` / ``order_cancel`` / ``order_status``). Both answer with the same Gate
Order and the same error labels, so the Venue behaves identically; balances, open orders
and fills (``my_trades``) stay on REST. The book channel is a choice too
(``book_channel``: ``spot.order_book_update`` + REST snapshots, or ``spot.obu``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Literal

from arbsim.core.book import OrderBook
from arbsim.core.errors import InvalidOrder, InvalidSymbol
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
from arbsim.core.ports import MarketSink
from arbsim.runtime.loop import WallClock
from exchanges.gateio import rest, ws
from exchanges.gateio.stream import (
    BOOK_CHANNELS,
    BookChannelName,
    GateMarketDialect,
    GateUserStream,
)
from exchanges.gateio.symbols import to_native
from exchanges.gateio.wsapi import GateWsApi, OrderEntry
from exchanges.live.credentials import Credentials
from exchanges.live.orders import OrderTracker, place_tracked, reconcile_remote
from exchanges.live.stream import Backoff, MarketStream
from exchanges.live.symbols import SymbolTable

__all__ = ["FINISH_AS", "ORDER_ENTRY", "GateVenue", "OrderEntryName"]

OrderEntryName = Literal["rest", "ws"]

FINISH_AS: dict[str, OrderStatus] = {
    "filled": OrderStatus.FILLED,
    "cancelled": OrderStatus.CANCELED,
    "ioc": OrderStatus.CANCELED,
    "fok": OrderStatus.CANCELED,
    "poc": OrderStatus.CANCELED,
    "stp": OrderStatus.CANCELED,
    "small": OrderStatus.CANCELED,
    "depth_not_enough": OrderStatus.CANCELED,
    "trader_not_enough": OrderStatus.CANCELED,
}
"""``finish_as`` of a finished order -> arbsim status (unknown values: CANCELED)."""

_SETTLING = frozenset({TimeInForce.IOC, TimeInForce.FOK})


def _rest_entry(venue: GateVenue) -> OrderEntry:
    return venue.rest


def _ws_entry(venue: GateVenue) -> OrderEntry:
    if venue.ws_api is None:
        raise InvalidOrder(
            "WebSocket order entry needs API credentials", code="client", venue=venue.name
        )
    return venue.ws_api


ORDER_ENTRY: dict[OrderEntryName, Callable[[GateVenue], OrderEntry]] = {
    "rest": _rest_entry,
    "ws": _ws_entry,
}
"""``order_entry`` option -> the client that places, cancels and queries orders."""


class GateVenue:
    """Gate.io spot through its REST and WebSocket APIs.

    Parameters
    ----------
    credentials:
        None for market data only.
    name:
        Venue name in arbsim (``"gateio"``).
    rest_url, ws_url:
        Endpoints (tests point them at 127.0.0.1); ``rest_url`` includes ``/api/v4``.
    clock:
        Wall clock (``now_ns``) for ``ts_local``.
    backoff_seed:
        Seeds the reconnect jitter.
    ping_interval_s:
        ``spot.ping`` period.
    settle_timeout_s:
        How long ``place_order`` waits for an IOC/FOK to end by push before asking REST.
    ready_timeout_s:
        How long ``start`` waits for the streams.
    order_entry:
        ``"rest"`` or ``"ws"`` (:data:`ORDER_ENTRY`): transport of place / cancel / fetch.
    ws_api_url:
        WebSocket API endpoint (default: ``ws_url``, as on Gate).
    book_channel:
        ``"order_book_update"`` or ``"obu"``; ``obu_depth`` 50 or 400.
    timeout_s:
        Total time of a REST request, and how long a WebSocket API request waits for its
        result (then :class:`~arbsim.core.errors.OutcomeUnknown` for orders).

    Notes
    -----
    The constructor does no I/O; :meth:`start` loads the pairs and connects.
    """

    def __init__(
        self,
        credentials: Credentials | None = None,
        *,
        name: str = "gateio",
        rest_url: str = rest.BASE_URL,
        ws_url: str = ws.URL,
        clock: WallClock | None = None,
        backoff_seed: int | None = None,
        backoff_base_s: float = 0.5,
        ping_interval_s: float = 15.0,
        settle_timeout_s: float = 2.0,
        ready_timeout_s: float = 10.0,
        depth_limit: int = 100,
        timeout_s: float = 10.0,
        order_entry: OrderEntryName = "rest",
        ws_api_url: str | None = None,
        book_channel: BookChannelName = "order_book_update",
        obu_depth: int = 400,
    ) -> None:
        if order_entry not in ORDER_ENTRY:
            raise ValueError(f"order_entry is one of {sorted(ORDER_ENTRY)}, got {order_entry!r}")
        if order_entry == "ws" and credentials is None:
            raise ValueError("order_entry='ws' needs API credentials")
        if book_channel not in BOOK_CHANNELS:
            raise ValueError(
                f"book_channel is one of {sorted(BOOK_CHANNELS)}, got {book_channel!r}"
            )
        if book_channel == "obu":
            ws.obu_stream("", obu_depth)  # 50 or 400, else ValueError
        self.name = name
        self.clock = clock or WallClock()
        self.credentials = credentials
        self.rest = rest.GateRestClient(
            rest_url, credentials, timeout_s=timeout_s, clock_s=time.time
        )
        self.rest_url = rest_url
        self.ws_url = ws_url
        self.backoff_seed = backoff_seed
        self.backoff_base_s = backoff_base_s
        self.ping_interval_s = ping_interval_s
        self.settle_timeout_s = settle_timeout_s
        self.ready_timeout_s = ready_timeout_s
        self.depth_limit = depth_limit
        self.order_entry: OrderEntryName = order_entry
        self.book_channel: BookChannelName = book_channel
        self.obu_depth = obu_depth
        self.ws_api: GateWsApi | None = None
        if order_entry == "ws" and credentials is not None:
            self.ws_api = GateWsApi(
                lambda: self.rest.transport.session,
                credentials,
                url=ws_api_url or ws_url,
                timeout_s=timeout_s,
                ready_timeout_s=ready_timeout_s,
                limiter=self.rest.transport.limiter,
                backoff=Backoff(base_s=backoff_base_s, seed=backoff_seed),
                ping_interval_s=ping_interval_s,
                clock_s=time.time,
                venue=name,
            )
        self.entry: OrderEntry = ORDER_ENTRY[order_entry](self)
        self.tracker = OrderTracker(name, self.clock.now_ns)
        self.market: MarketStream | None = None
        self.user: GateUserStream | None = None
        self.table = SymbolTable(self.name)

    # ---------------------------------------------------------------- lifecycle
    async def start(self, symbols: Sequence[str], sink: MarketSink) -> None:
        """Load the pairs' rules, connect the public (and private) streams."""
        self.tracker.on_order = sink.on_order
        natives = [to_native(s) for s in symbols]
        infos = {i.native_symbol: i for i in await self.rest.currency_pairs()}
        for symbol, native in zip(symbols, natives, strict=True):
            info = infos.get(native)
            if info is None:
                raise InvalidSymbol(f"{symbol} ({native}) is not listed", venue=self.name)
            inst = info.to_instrument(self.name)
            self.table.add(symbol, native, inst)
        dialect = GateMarketDialect(
            self.rest,
            self.table.symbols,
            url=self.ws_url,
            depth_limit=self.depth_limit,
            book_channel=self.book_channel,
            obu_depth=self.obu_depth,
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
            self.user = GateUserStream(
                lambda: self.rest.transport.session,
                self.credentials,
                natives,
                on_order=self._on_push_order,
                on_trade=self._on_push_trade,
                url=self.ws_url,
                ping_interval_s=self.ping_interval_s,
                backoff=Backoff(base_s=self.backoff_base_s, seed=self.backoff_seed),
                clock=self.clock.now_ns,
            )
            self.user.start()
            await self.user.wait_ready(self.ready_timeout_s)
        if self.ws_api is not None:
            self.ws_api.start()
            await self.ws_api.wait_ready(self.ready_timeout_s)

    async def stop(self) -> None:
        """Close the streams, the WebSocket API and the HTTP session."""
        if self.market is not None:
            await self.market.stop()
        if self.user is not None:
            await self.user.stop()
        if self.ws_api is not None:
            await self.ws_api.stop()
        await self.rest.close()

    # ---------------------------------------------------------------- data
    def describe(self) -> dict[str, str | float]:
        return {
            "kind": "live" if self.credentials is not None else "feed",
            "exchange": "gateio",
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
        return rest.to_balances(await self.rest.accounts(), self.clock.now_ns(), self.name)

    # ---------------------------------------------------------------- orders
    async def place_order(self, req: OrderRequest) -> Order:
        native = self.table.native(req.symbol)
        if not req.client_order_id:
            raise ValueError("place_order needs a client_order_id")
        quote_amount = None
        if req.order_type is OrderType.MARKET and req.side is Side.BUY:
            if req.price is None:
                raise InvalidOrder(
                    "a Gate market buy is sized in quote: give a reference price",
                    code="client",
                    venue=self.name,
                )
            quote_amount = req.qty * req.price
        body = rest.order_body(
            native, req.side, req.qty, req.price, req.order_type, req.tif,
            req.client_order_id, quote_amount=quote_amount,
        )  # fmt: skip

        async def send() -> tuple[str, bool]:
            placed = await self.entry.place_order(native, body)
            return placed.id, placed.status != "open"

        order = await place_tracked(
            self.tracker, req, send,
            settle=req.tif in _SETTLING or req.order_type is OrderType.MARKET,
            settle_timeout_s=self.settle_timeout_s,
        )  # fmt: skip
        return order or await self.fetch_order(req.symbol, req.client_order_id)

    def _order_ref(self, client_order_id: str) -> str:
        tracked = self.tracker.get(client_order_id)
        if tracked is not None and tracked.order_id:
            return tracked.order_id
        return rest.to_text(client_order_id)

    async def cancel_order(self, symbol: str, client_order_id: str) -> Order:
        native = self.table.native(symbol)
        raw = await self.entry.cancel_order(native, self._order_ref(client_order_id))
        return await self._reconcile(symbol, native, raw, client_order_id)

    async def fetch_order(self, symbol: str, client_order_id: str) -> Order:
        native = self.table.native(symbol)
        raw = await self.entry.get_order(native, self._order_ref(client_order_id))
        return await self._reconcile(symbol, native, raw, client_order_id)

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        native = self.table.native(symbol) if symbol else None
        out: list[Order] = []
        for raw in await self.rest.open_orders(native):
            sym = self.table.symbols.get(raw.currency_pair)
            if sym is None:
                continue
            remote = rest.to_order(raw, sym, ts_local=self.clock.now_ns(), venue=self.name)
            tracked = self.tracker.get(remote.client_order_id)
            out.append(tracked.snapshot() if tracked else remote)
        return out

    async def _reconcile(
        self, symbol: str, native: str, raw: rest.GateOrder, client_order_id: str
    ) -> Order:
        now = self.clock.now_ns()
        remote = rest.to_order(raw, symbol, ts_local=now, venue=self.name)

        async def fills() -> list[Fill]:
            trades = await self.rest.my_trades(native, order_id=remote.order_id)
            return [
                rest.to_fill(t, symbol, client_order_id, ts_local=now, venue=self.name)
                for t in trades
                if t.order_id == remote.order_id
            ]

        return await reconcile_remote(self.tracker, remote, client_order_id, fills)

    # ---------------------------------------------------------------- pushes
    def _on_push_order(self, push: ws.GateOrder, ts_local: int) -> None:
        cid = self.tracker.client_id(push.id, rest.from_text(push.text))
        if cid is None:
            return
        if push.event == "finish":
            order = self.tracker.orders[cid]
            left = Decimal(push.left or "0")
            filled = Decimal(push.amount or "0") - left
            if order.order_type is OrderType.MARKET and order.side is Side.BUY:
                filled = order.qty if left == 0 else order.filled_qty
            status = FINISH_AS.get(push.finish_as, OrderStatus.CANCELED)
            self.tracker.finished(cid, status, filled, ts_local)
        else:
            self.tracker.accepted(cid, push.id, ts_local)

    def _on_push_trade(self, push: ws.GateTrade, ts_local: int) -> None:
        cid = self.tracker.client_id(push.order_id, rest.from_text(push.text))
        if cid is None:
            return
        order = self.tracker.orders[cid]
        self.tracker.fill(
            cid,
            Fill(
                venue=self.name,
                symbol=order.symbol,
                client_order_id=cid,
                order_id=push.order_id,
                trade_id=str(push.id),
                side=order.side,
                price=Decimal(push.price),
                qty=Decimal(push.amount),
                fee=Decimal(push.fee or "0"),
                fee_asset=push.fee_currency,
                liquidity=push.role or "taker",
                ts_exchange=ws.ms_to_ns(push.create_time_ms),
                ts_local=ts_local,
            ),
        )
