"""``GateVenue``: the arbsim :class:`~arbsim.core.ports.Venue` for Gate.io spot (paper/live).

A :class:`~exchanges.live.venue.LiveVenue` with Gate's protocol:
:class:`~exchanges.gateio.rest.GateRestClient`,
:class:`~exchanges.gateio.stream.GateMarketDialect` and
:class:`~exchanges.gateio.stream.GateUserStream`. Client ids travel as Gate ``text``
(``t-<id>``); a market buy is sized in quote (the request's price is the reference).

Order entry is a choice (:data:`ORDER_ENTRY`): ``"rest"`` (default) or ``"ws"``, Gate's
WebSocket API (:class:`~exchanges.gateio.wsapi.GateWsApi`: ``spot.login``,
``spot.order_place`` / ``order_cancel`` / ``order_status``). Both answer with the same Gate
Order and the same error labels, so the Venue behaves identically; balances, open orders
and fills (``my_trades``) stay on REST. The book channel is a choice too
(``book_channel``: ``spot.order_book_update`` + REST snapshots, or ``spot.obu``).

Transfers (:class:`~arbsim.core.ports.TransferVenue`): ``wallet/withdraw_status`` gives
the terms, ``wallet/deposit_address`` the address, ``POST /withdrawals`` sends (Gate's
``amount`` includes the fee: ``amount + fee`` of arbsim's request is sent, our client id
as ``withdraw_order_id``), ``wallet/withdrawals?withdraw_order_id=`` finds it again,
``wallet/deposits`` lists deposits.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Literal, Unpack

from arbsim.core.errors import InvalidOrder, VenueError
from arbsim.core.model import (
    Balances,
    Deposit,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    Transfer,
    WithdrawalTerms,
    WithdrawRequest,
)
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
from exchanges.live.errors import number, parsing
from exchanges.live.stream import MarketDialect, StreamTask
from exchanges.live.symbols import VenueSymbolInfo
from exchanges.live.venue import LiveOptions, LiveVenue, Send, VenueCodec

__all__ = ["CODEC", "FINISH_AS", "ORDER_ENTRY", "GateVenue", "OrderEntryName"]

OrderEntryName = Literal["rest", "ws"]

#: Gate refuses a signed request whose timestamp is more than 60 s off (PROTOCOLS B2):
#: an order request older than that can no longer create an order
GATE_ORDER_EXPIRY_NS = 60 * 1_000_000_000

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

CODEC = VenueCodec(
    exchange="gateio", to_native=to_native, to_order=rest.to_order, to_fill=rest.to_fill
)
"""Gate's conversions for :class:`~exchanges.live.venue.LiveVenue`."""


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


class GateVenue(LiveVenue[rest.GateOrder, rest.GateTrade]):
    """Gate.io spot through its REST and WebSocket APIs.

    Parameters
    ----------
    credentials:
        None for market data only.
    name:
        Venue name in arbsim (``"gateio"``).
    rest_url, ws_url:
        Endpoints (tests point them at 127.0.0.1); ``rest_url`` includes ``/api/v4``.
    depth_limit:
        Levels of the REST book snapshot.
    order_entry:
        ``"rest"`` or ``"ws"`` (:data:`ORDER_ENTRY`): transport of place / cancel / fetch.
    ws_api_url:
        WebSocket API endpoint (default: ``ws_url``, as on Gate).
    book_channel:
        ``"order_book_update"`` or ``"obu"``; ``obu_depth`` 50 or 400.
    **options:
        :class:`~exchanges.live.venue.LiveOptions` (clock, backoff, ``spot.ping`` period,
        settle and ready timeouts); ``timeout_s`` is the total time of a REST request, and
        how long a WebSocket API request waits for its result (then
        :class:`~arbsim.core.errors.OutcomeUnknown` for orders).

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
        depth_limit: int = 100,
        order_entry: OrderEntryName = "rest",
        ws_api_url: str | None = None,
        book_channel: BookChannelName = "order_book_update",
        obu_depth: int = 400,
        **options: Unpack[LiveOptions],
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
        super().__init__(
            credentials, CODEC, name=name, rest_url=rest_url, ws_url=ws_url,
            depth_limit=depth_limit, **options,
        )  # fmt: skip
        self.rest: rest.GateRestClient = rest.GateRestClient(
            rest_url, credentials, timeout_s=self.timeout_s, clock_s=time.time
        )
        self.order_expiry_ns = GATE_ORDER_EXPIRY_NS
        self.order_entry: OrderEntryName = order_entry
        self.book_channel: BookChannelName = book_channel
        self.obu_depth = obu_depth
        self.ws_api: GateWsApi | None = None
        if order_entry == "ws" and credentials is not None:
            self.ws_api = GateWsApi(
                lambda: self.rest.transport.session,
                credentials,
                url=ws_api_url or ws_url,
                timeout_s=self.timeout_s,
                ready_timeout_s=self.ready_timeout_s,
                limiter=self.rest.transport.limiter,
                backoff=self.new_backoff(),
                ping_interval_s=self.ping_interval_s,
                clock_s=time.time,
                venue=name,
            )
        self.entry: OrderEntry = ORDER_ENTRY[order_entry](self)

    # ---------------------------------------------------------------- protocol
    def _streams(self) -> list[StreamTask]:
        # the WebSocket API starts after the private stream, and stops after it
        return [*super()._streams(), *([self.ws_api] if self.ws_api is not None else [])]

    async def _symbol_infos(self, natives: Sequence[str]) -> list[VenueSymbolInfo]:
        return await self.rest.currency_pairs()

    def _dialect(self) -> MarketDialect:
        return GateMarketDialect(
            self.rest,
            self.table.symbols,
            url=self.ws_url,
            depth_limit=self.depth_limit,
            book_channel=self.book_channel,
            obu_depth=self.obu_depth,
        )

    def _user_stream(self, credentials: Credentials, natives: Sequence[str]) -> StreamTask:
        return GateUserStream(
            lambda: self.rest.transport.session,
            credentials,
            natives,
            on_order=self._on_push_order,
            on_trade=self._on_push_trade,
            url=self.ws_url,
            ping_interval_s=self.ping_interval_s,
            backoff=self.new_backoff(),
            clock=self.clock.now_ns,
        )

    async def fetch_balances(self) -> Balances:
        return rest.to_balances(await self.rest.accounts(), self.clock.now_ns(), self.name)

    def _sender(self, req: OrderRequest, native: str) -> Send:
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

        return send

    def _order_ref(self, client_order_id: str) -> str:
        # Gate finds an order by its id, or by its text (``t-<client id>``)
        return self._order_id(client_order_id) or rest.to_text(client_order_id)

    async def _cancel(self, native: str, client_order_id: str) -> rest.GateOrder:
        return await self.entry.cancel_order(native, self._order_ref(client_order_id))

    async def _query(self, native: str, client_order_id: str) -> rest.GateOrder:
        return await self.entry.get_order(native, self._order_ref(client_order_id))

    async def _open_orders(self, symbol: str | None) -> list[tuple[str, rest.GateOrder]]:
        # Gate lists every pair's open orders in one answer: keep the started pairs'
        native = self.table.native(symbol) if symbol else None
        raws = await self.rest.open_orders(native)
        symbols = self.table.symbols
        return [(symbols[r.currency_pair], r) for r in raws if r.currency_pair in symbols]

    # ---------------------------------------------------------------- transfers
    async def withdrawal_terms(self, asset: str, network: str) -> WithdrawalTerms:
        status = await self.rest.withdraw_status(asset)
        chains = await self.rest.currency_chains(asset)
        return rest.to_terms(status, asset, network, self.name, chains)

    async def deposit_address(self, asset: str, network: str) -> str:
        answer = await self.rest.deposit_address(asset)
        for entry in answer.multichain_addresses:
            if entry.chain == network and entry.address and not entry.obtain_failed:
                return entry.address
        raise VenueError(
            f"no deposit address for {asset} on {network}", code="no_address", venue=self.name
        )

    async def _send_withdrawal(self, req: WithdrawRequest, amount: Decimal) -> str:
        return (await self.rest.withdraw(rest.withdraw_body(req, amount))).id

    async def _withdrawals(self, asset: str | None, client_id: str) -> list[Transfer]:
        # Gate looks a withdrawal up by our id (withdraw_order_id), whatever its age
        raws = await self.rest.withdrawals(asset, withdraw_order_id=client_id or None)
        return [rest.to_transfer(raw, venue=self.name) for raw in raws]

    async def fetch_deposits(self, asset: str | None, since_ns: int) -> list[Deposit]:
        raws = await self.rest.deposits(asset, from_s=since_ns // 1_000_000_000)
        deposits = [rest.to_deposit(raw, venue=self.name) for raw in raws]
        # Gate's times are whole seconds: keep what is not before since_ns's second
        floor = since_ns // 1_000_000_000 * 1_000_000_000
        return [d for d in deposits if d.ts >= floor and (asset is None or d.asset == asset)]

    # ---------------------------------------------------------------- pushes
    def _on_push_order(self, push: ws.GateOrder, ts_local: int) -> None:
        cid = self.tracker.client_id(push.id, rest.from_text(push.text))
        if cid is None:
            return
        if push.event == "finish":
            order = self.tracker.orders[cid]
            with parsing(self.name, "spot.orders", what="amount / left"):
                left = number(push.left or "0", "left")
                filled = number(push.amount or "0", "amount") - left
                if filled < 0:
                    raise ValueError("left is more than the amount")
            if order.order_type is OrderType.MARKET and order.side is Side.BUY:
                filled = order.qty if left == 0 else order.filled_qty
            status = FINISH_AS.get(push.finish_as, OrderStatus.CANCELED)
            self.tracker.finished(cid, status, filled, ts_local)
        else:
            self.tracker.accepted(cid, push.id, ts_local)

    def _on_push_trade(self, push: ws.GateTrade, ts_local: int) -> None:
        self._on_push_fill(
            push.order_id,
            rest.from_text(push.text),
            lambda order: rest.to_fill(
                push, order.symbol, order.client_order_id, ts_local=ts_local, venue=self.name
            ),
        )
