"""``MexcVenue``: the arbsim :class:`~arbsim.core.ports.Venue` for MEXC spot (paper/live).

A :class:`~exchanges.live.venue.LiveVenue` with MEXC's protocol:
:class:`~exchanges.mexc.rest.MexcRestClient`, :class:`~exchanges.mexc.stream.MexcMarketDialect`
and :class:`~exchanges.mexc.stream.MexcUserStream` (protobuf private orders and deals; the
listenKey lives with the stream). Orders are found by ``orderId`` or
``origClientOrderId``; open orders are listed symbol by symbol.

Transfers (:class:`~arbsim.core.ports.TransferVenue`): ``capital/config/getall`` gives the
terms, ``capital/deposit/address`` the address, ``POST capital/withdraw`` sends (MEXC's
``amount`` includes the fee: ``amount + fee`` of arbsim's request is sent; our client id as
``withdrawOrderId`` and ``remark``), ``capital/withdraw/history`` finds a withdrawal by it,
``capital/deposit/hisrec`` lists deposits.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Unpack

from arbsim.core.errors import VenueError
from arbsim.core.model import (
    Balances,
    Deposit,
    Fill,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    Transfer,
    WithdrawalTerms,
    WithdrawRequest,
)
from exchanges.live.credentials import Credentials
from exchanges.live.errors import number, parser, parsing
from exchanges.live.stream import MarketDialect, StreamTask
from exchanges.live.symbols import VenueSymbolInfo
from exchanges.live.venue import LiveOptions, LiveVenue, Send, VenueCodec
from exchanges.mexc import rest, ws
from exchanges.mexc.push import PrivateDeal, PrivateOrder
from exchanges.mexc.stream import MexcMarketDialect, MexcUserStream
from exchanges.mexc.symbols import to_native

__all__ = ["CODEC", "PUSH_STATUS", "MexcVenue", "deal_fill"]

PUSH_STATUS: dict[int, OrderStatus] = {
    1: OrderStatus.ACCEPTED,
    2: OrderStatus.FILLED,
    3: OrderStatus.PARTIALLY_FILLED,
    4: OrderStatus.CANCELED,
    5: OrderStatus.CANCELED,  # partially canceled: canceled with fills
}
"""Protobuf private order ``status`` -> arbsim status (A3)."""

CODEC = VenueCodec(
    exchange="mexc", to_native=to_native, to_order=rest.to_order, to_fill=rest.to_fill
)
"""MEXC's conversions for :class:`~exchanges.live.venue.LiveVenue`."""

_MS = 1_000_000


class MexcVenue(LiveVenue[rest.MexcOrder, rest.MexcTrade]):
    """MEXC spot through its REST and WebSocket APIs.

    Parameters
    ----------
    credentials:
        None for market data only.
    name:
        Venue name in arbsim (``"mexc"``).
    rest_url, ws_url, private_ws_url:
        Endpoints (tests point them at 127.0.0.1).
    keepalive_interval_s:
        listenKey keep-alive period.
    depth_limit:
        Levels of the REST depth snapshot.
    **options:
        :class:`~exchanges.live.venue.LiveOptions` (clock, backoff, ping, settle, ready and
        REST timeouts).

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
        keepalive_interval_s: float = 30 * 60,
        depth_limit: int = 5000,
        **options: Unpack[LiveOptions],
    ) -> None:
        super().__init__(
            credentials, CODEC, name=name, rest_url=rest_url, ws_url=ws_url,
            depth_limit=depth_limit, **options,
        )  # fmt: skip
        self.rest: rest.MexcRestClient = rest.MexcRestClient(
            rest_url,
            credentials,
            timeout_s=self.timeout_s,
            clock_ms=lambda: time.time_ns() // _MS,
        )
        # MEXC refuses a request older than its recvWindow
        self.order_expiry_ns = self.rest.recv_window * _MS
        self.private_ws_url = private_ws_url
        self.keepalive_interval_s = keepalive_interval_s

    # ---------------------------------------------------------------- protocol
    async def _symbol_infos(self, natives: Sequence[str]) -> list[VenueSymbolInfo]:
        return await self.rest.exchange_info(natives)

    def _dialect(self) -> MarketDialect:
        return MexcMarketDialect(
            self.rest, self.table.symbols, url=self.ws_url, depth_limit=self.depth_limit
        )

    def _user_stream(self, credentials: Credentials, natives: Sequence[str]) -> StreamTask:
        return MexcUserStream(
            self.rest,
            on_order=self._on_push_order,
            on_deal=self._on_push_deal,
            url=self.private_ws_url,
            keepalive_interval_s=self.keepalive_interval_s,
            ping_interval_s=self.ping_interval_s,
            backoff=self.new_backoff(),
            clock=self.clock.now_ns,
        )

    async def fetch_balances(self) -> Balances:
        return rest.to_balances(await self.rest.account(), self.clock.now_ns(), self.name)

    def _sender(self, req: OrderRequest, native: str) -> Send:
        if req.order_type is OrderType.MARKET and req.side is Side.BUY and req.qty <= 0:
            raise ValueError("a market buy needs a positive base quantity")
        params = rest.order_params(
            native, req.side, req.qty, req.price, req.order_type, req.tif, req.client_order_id
        )

        async def send() -> tuple[str, bool]:
            return str((await self.rest.place_order(params)).order_id), False

        return send

    async def _cancel(self, native: str, client_order_id: str) -> rest.MexcOrder:
        order_id = self._order_id(client_order_id)
        return await self.rest.cancel_order(
            native, order_id=order_id, client_order_id=client_order_id
        )

    async def _query(self, native: str, client_order_id: str) -> rest.MexcOrder:
        order_id = self._order_id(client_order_id)
        return await self.rest.query_order(
            native, order_id=order_id, client_order_id=client_order_id
        )

    async def _open_orders(self, symbol: str | None) -> list[tuple[str, rest.MexcOrder]]:
        # MEXC lists open orders symbol by symbol
        symbols = [symbol] if symbol else list(self.table.natives)
        return [
            (sym, raw)
            for sym in symbols
            for raw in await self.rest.open_orders(self.table.native(sym))
        ]

    # ---------------------------------------------------------------- transfers
    async def withdrawal_terms(self, asset: str, network: str) -> WithdrawalTerms:
        return rest.to_terms(await self.rest.coins(), asset, network, venue=self.name)

    async def deposit_address(self, asset: str, network: str) -> str:
        # every network of the coin: MEXC's ``network`` query parameter takes the long
        # name ("BNB Smart Chain(BEP20)"), arbsim the withdrawal's ``netWork`` ("BSC")
        for entry in await self.rest.deposit_addresses(asset):
            if network in (entry.net_work, entry.network) and entry.address:
                return entry.address
        raise VenueError(
            f"no deposit address for {asset} on {network} (create one on the venue)",
            code="no_address",
            venue=self.name,
        )

    async def _send_withdrawal(self, req: WithdrawRequest, amount: Decimal) -> str:
        return await self.rest.withdraw(rest.withdraw_params(req, amount))

    async def _withdrawals(self, asset: str | None, client_id: str) -> list[Transfer]:
        # MEXC's history is listed per coin, newest first: the caller picks ours out
        raws = await self.rest.withdraw_history(asset)
        return [rest.to_transfer(raw, venue=self.name) for raw in raws]

    async def fetch_deposits(self, asset: str | None, since_ns: int) -> list[Deposit]:
        raws = await self.rest.deposit_history(asset, start_time=since_ns // _MS)
        deposits = [rest.to_deposit(raw, venue=self.name) for raw in raws]
        return [d for d in deposits if d.ts >= since_ns and (asset is None or d.asset == asset)]

    # ---------------------------------------------------------------- pushes
    def _on_push_order(self, push: PrivateOrder, ts_local: int) -> None:
        cid = self.tracker.client_id(push.id, push.client_id)
        if cid is None:
            return
        status = PUSH_STATUS.get(push.status)
        if status is OrderStatus.ACCEPTED:
            self.tracker.accepted(cid, push.id, ts_local)
        elif status is OrderStatus.CANCELED:
            with parsing(self.name, push.channel, what="cumulativeQuantity"):
                filled = number(push.cumulative_quantity or "0", "cumulativeQuantity")
            self.tracker.finished(cid, status, filled, ts_local)
        elif status is not None and push.id:
            self.tracker.accepted(cid, push.id, ts_local)

    def _on_push_deal(self, push: PrivateDeal, ts_local: int) -> None:
        self._on_push_fill(
            push.order_id,
            push.client_order_id,
            lambda order: deal_fill(push, order, ts_local=ts_local, venue=self.name),
        )


@parser("mexc", "spot@private.deals.v3.api.pb")
def deal_fill(push: PrivateDeal, order: Order, *, ts_local: int, venue: str) -> Fill:
    """A private deal push of ``order`` as an arbsim :class:`Fill` (fee in ``feeCurrency``)."""
    return Fill(
        venue=venue,
        symbol=order.symbol,
        client_order_id=order.client_order_id,
        order_id=push.order_id or order.order_id,
        trade_id=push.trade_id,
        side=order.side,
        price=number(push.price, "price", positive=True),
        qty=number(push.quantity, "quantity", positive=True),
        fee=number(push.fee_amount or "0", "feeAmount", signed=True),
        fee_asset=push.fee_currency,
        liquidity="maker" if push.is_maker else "taker",
        ts_exchange=push.time * _MS,
        ts_local=ts_local,
    )
