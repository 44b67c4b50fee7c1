"""MEXC Spot v3 REST client (PROTOCOLS.md A1-A4) and its conversions to arbsim types.

Requests are formatted as ccxt does and as the recorded fixtures show: every parameter in
the query string (POST/DELETE too), in a fixed order per endpoint, then ``timestamp`` and
``recvWindow``, and ``signature`` last; the body stays empty. Answers are decoded into
msgspec Structs named like MEXC's fields and converted by ``to_*`` functions.

Decisions
---------
* Status mapping (A3): NEW -> ACCEPTED (the venue has it), PARTIALLY_FILLED,
  FILLED, CANCELED and PARTIALLY_CANCELED -> CANCELED (canceled with fills).
* Time in force is carried by ``type`` (:data:`ORDER_TYPES`).
* Ids are strings here: MEXC sends ``orderId`` as a string, old examples as a number.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TypeVar
from urllib.parse import urlencode

import msgspec

from arbsim.core.errors import InvalidOrder, MalformedMessage
from arbsim.core.model import (
    Balance,
    Balances,
    Deposit,
    Fill,
    Order,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    Transfer,
    TransferStatus,
    WithdrawalTerms,
    WithdrawRequest,
)
from exchanges.live.credentials import Credentials
from exchanges.live.errors import decode_body, number, order_answer_error, parser
from exchanges.live.http import Endpoint, Prepared, RateLimiter, RestTransport
from exchanges.live.symbols import VenueSymbolInfo
from exchanges.live.transfers import net_minimum
from exchanges.mexc import errors, signing
from exchanges.mexc.booksync import MexcDepth
from exchanges.mexc.rules import MEXC_RULES
from exchanges.mexc.symbols import MexcExchangeInfo, symbol_info

__all__ = [
    "BASE_URL",
    "ENDPOINTS",
    "ORDER_STATUS",
    "ORDER_TYPES",
    "WITHDRAW_STATUS",
    "MexcAccount",
    "MexcOrder",
    "MexcOrderAck",
    "MexcRestClient",
    "MexcTrade",
    "format_decimal",
    "order_params",
    "to_balances",
    "to_deposit",
    "to_fill",
    "to_order",
    "to_terms",
    "to_transfer",
    "withdraw_params",
]

log = logging.getLogger(__name__)

VENUE = "mexc"
BASE_URL = "https://api.mexc.com"

ENDPOINTS: dict[str, Endpoint] = {
    "time": Endpoint(method="GET", path="/api/v3/time", costs=(("ip", 1),)),
    "exchange_info": Endpoint(method="GET", path="/api/v3/exchangeInfo", costs=(("ip", 10),)),
    "depth": Endpoint(method="GET", path="/api/v3/depth", costs=(("ip", 1),)),
    "place": Endpoint(
        method="POST",
        path="/api/v3/order",
        costs=(("order", 1), ("ip", 1), ("uid", 1)),
        signed=True,
        order=True,
    ),
    "cancel": Endpoint(
        method="DELETE",
        path="/api/v3/order",
        costs=(("order", 1), ("ip", 1), ("uid", 1)),
        signed=True,
        order=True,
    ),
    "query": Endpoint(method="GET", path="/api/v3/order", costs=(("ip", 2),), signed=True),
    "open_orders": Endpoint(
        method="GET", path="/api/v3/openOrders", costs=(("ip", 3),), signed=True
    ),
    "account": Endpoint(
        method="GET", path="/api/v3/account", costs=(("account", 1), ("ip", 10)), signed=True
    ),
    "my_trades": Endpoint(method="GET", path="/api/v3/myTrades", costs=(("ip", 10),), signed=True),
    "listen_key_create": Endpoint(
        method="POST", path="/api/v3/userDataStream", costs=(("ip", 1),), signed=True
    ),
    "listen_key_keepalive": Endpoint(
        method="PUT", path="/api/v3/userDataStream", costs=(("ip", 1),), signed=True
    ),
    "listen_key_delete": Endpoint(
        method="DELETE", path="/api/v3/userDataStream", costs=(("ip", 1),), signed=True
    ),
    # wallet (weights as the venue's endpoint list gives them); a withdrawal's unknown
    # outcome is OutcomeUnknown, as for an order
    "coins": Endpoint(
        method="GET", path="/api/v3/capital/config/getall", costs=(("ip", 10),), signed=True
    ),
    "withdraw": Endpoint(
        method="POST", path="/api/v3/capital/withdraw", costs=(("ip", 1),), signed=True, order=True
    ),
    "withdraw_history": Endpoint(
        method="GET", path="/api/v3/capital/withdraw/history", costs=(("ip", 1),), signed=True
    ),
    "deposit_history": Endpoint(
        method="GET", path="/api/v3/capital/deposit/hisrec", costs=(("ip", 10),), signed=True
    ),
    "deposit_address": Endpoint(
        method="GET", path="/api/v3/capital/deposit/address", costs=(("ip", 10),), signed=True
    ),
}
"""Endpoint table (A2); ``costs`` name families of :data:`MEXC_RULES`."""

ORDER_TYPES: dict[tuple[OrderType, TimeInForce], str] = {
    (OrderType.LIMIT, TimeInForce.GTC): "LIMIT",
    (OrderType.LIMIT, TimeInForce.IOC): "IMMEDIATE_OR_CANCEL",
    (OrderType.LIMIT, TimeInForce.FOK): "FILL_OR_KILL",
    (OrderType.LIMIT, TimeInForce.POST_ONLY): "LIMIT_MAKER",
    (OrderType.MARKET, TimeInForce.IOC): "MARKET",
    (OrderType.MARKET, TimeInForce.GTC): "MARKET",
    (OrderType.MARKET, TimeInForce.FOK): "MARKET",
}
"""arbsim (type, time in force) -> MEXC ``type``."""

ORDER_TYPES_BACK: dict[str, tuple[OrderType, TimeInForce]] = {
    "LIMIT": (OrderType.LIMIT, TimeInForce.GTC),
    "IMMEDIATE_OR_CANCEL": (OrderType.LIMIT, TimeInForce.IOC),
    "FILL_OR_KILL": (OrderType.LIMIT, TimeInForce.FOK),
    "LIMIT_MAKER": (OrderType.LIMIT, TimeInForce.POST_ONLY),
    "MARKET": (OrderType.MARKET, TimeInForce.IOC),
}

SIDES: dict[Side, str] = {Side.BUY: "BUY", Side.SELL: "SELL"}
SIDES_BACK: dict[str, Side] = {v: k for k, v in SIDES.items()}

ORDER_STATUS: dict[str, OrderStatus] = {
    "NEW": OrderStatus.ACCEPTED,
    "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
    "FILLED": OrderStatus.FILLED,
    "CANCELED": OrderStatus.CANCELED,
    "PARTIALLY_CANCELED": OrderStatus.CANCELED,
}
"""REST ``status`` -> arbsim status (A3)."""

_MS = 1_000_000
T = TypeVar("T")
Id = str | int
Num = str | int | float


# --------------------------------------------------------------------------------------------
# Answers
# --------------------------------------------------------------------------------------------


class MexcServerTime(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    server_time: int


class MexcOrderAck(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """``POST /api/v3/order`` answer."""

    symbol: str
    order_id: Id
    price: str = ""
    orig_qty: str = ""
    type: str = ""
    side: str = ""
    transact_time: int = 0


class MexcOrder(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """An order from query / cancel / openOrders."""

    symbol: str
    order_id: Id
    client_order_id: str | None = None
    orig_client_order_id: str | None = None
    price: str = "0"
    orig_qty: str = "0"
    executed_qty: str = "0"
    cummulative_quote_qty: str = "0"
    status: str = "NEW"
    type: str = "LIMIT"
    side: str = "BUY"
    time: int = 0
    update_time: int | None = None


class MexcTrade(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """One ``myTrades`` element (an own fill)."""

    symbol: str
    id: Id
    order_id: Id
    price: str
    qty: str
    quote_qty: str = "0"
    commission: str = "0"
    commission_asset: str = ""
    time: int = 0
    is_buyer: bool = False
    is_maker: bool = False
    client_order_id: str | None = None


class MexcBalance(msgspec.Struct, frozen=True, kw_only=True):
    asset: str
    free: str
    locked: str = "0"


class MexcAccount(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """``GET /api/v3/account`` answer (balances part)."""

    balances: list[MexcBalance]
    can_trade: bool = True
    update_time: int | None = None


class MexcListenKey(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    listen_key: str


Text = str | int | float | None


class MexcNetwork(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """One ``networkList`` element of ``capital/config/getall``."""

    coin: str
    network: str = ""
    net_work: str | None = None
    withdraw_enable: bool = True
    withdraw_fee: Text = "0"
    withdraw_min: Text = "0"
    withdraw_integer_multiple: Text = None


class MexcCoin(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """One ``capital/config/getall`` element."""

    coin: str
    network_list: list[MexcNetwork] = []


class MexcWithdrawAck(msgspec.Struct, frozen=True, kw_only=True):
    """``POST capital/withdraw`` answer."""

    id: str


class MexcWithdrawal(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """One ``capital/withdraw/history`` element (numbers arrive as strings)."""

    id: str
    coin: str
    amount: str
    status: int
    apply_time: int
    address: str = ""
    network: str = ""
    net_work: str | None = None
    transaction_fee: str = "0"
    tx_id: str | None = None
    trans_hash: str | None = None
    memo: str | None = None
    remark: str | None = None
    update_time: int | None = None
    withdraw_order_id: str | None = None


class MexcDeposit(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """One ``capital/deposit/hisrec`` element."""

    coin: str
    amount: str
    status: int
    insert_time: int
    address: str = ""
    network: str = ""
    net_work: str | None = None
    tx_id: str | None = None
    trans_hash: str | None = None


class MexcDepositAddress(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """One ``capital/deposit/address`` element."""

    coin: str
    address: str
    network: str = ""
    net_work: str | None = None
    memo: str | None = None


# strict=False: recorded answers send some numbers as strings ("lastUpdateId": "2045...").
_time_decoder = msgspec.json.Decoder(MexcServerTime, strict=False)
_info_decoder = msgspec.json.Decoder(MexcExchangeInfo, strict=False)
_depth_decoder = msgspec.json.Decoder(MexcDepth, strict=False)
_ack_decoder = msgspec.json.Decoder(MexcOrderAck, strict=False)
_order_decoder = msgspec.json.Decoder(MexcOrder, strict=False)
_orders_decoder = msgspec.json.Decoder(list[MexcOrder], strict=False)
_trades_decoder = msgspec.json.Decoder(list[MexcTrade], strict=False)
_account_decoder = msgspec.json.Decoder(MexcAccount, strict=False)
_listen_key_decoder = msgspec.json.Decoder(MexcListenKey, strict=False)
_coins_decoder = msgspec.json.Decoder(list[MexcCoin], strict=False)
_withdraw_ack_decoder = msgspec.json.Decoder(MexcWithdrawAck, strict=False)
_withdrawals_decoder = msgspec.json.Decoder(list[MexcWithdrawal], strict=False)
_deposits_decoder = msgspec.json.Decoder(list[MexcDeposit], strict=False)
_addresses_decoder = msgspec.json.Decoder(list[MexcDepositAddress], strict=False)


# --------------------------------------------------------------------------------------------
# Conversions
# --------------------------------------------------------------------------------------------


def format_decimal(value: Decimal) -> str:
    """Plain decimal text without exponent or trailing zeros (``1000``, ``0.005``)."""
    text = format(value.normalize(), "f")
    return text


def order_params(
    native_symbol: str,
    side: Side,
    qty: Decimal,
    price: Decimal | None,
    order_type: OrderType,
    tif: TimeInForce,
    client_order_id: str = "",
    *,
    quote_qty: Decimal | None = None,
) -> list[tuple[str, str]]:
    """Parameters of ``POST /api/v3/order`` in ccxt's order.

    ``symbol, side, type, quantity | quoteOrderQty, price, newClientOrderId``. A market buy
    given ``quote_qty`` spends that much quote (``quoteOrderQty``).
    """
    params = [
        ("symbol", native_symbol),
        ("side", SIDES[side]),
        ("type", ORDER_TYPES[(order_type, tif)]),
    ]
    if quote_qty is not None:
        params.append(("quoteOrderQty", format_decimal(quote_qty)))
    else:
        params.append(("quantity", format_decimal(qty)))
    if order_type is OrderType.LIMIT:
        if price is None:
            raise ValueError("a limit order needs a price")
        params.append(("price", format_decimal(price)))
    if client_order_id:
        params.append(("newClientOrderId", client_order_id))
    return params


@parser(VENUE, "order")
def to_order(raw: MexcOrder, symbol: str, *, ts_local: int = 0, venue: str = VENUE) -> Order:
    """A REST order as an arbsim :class:`Order` snapshot (no fills: see :func:`to_fill`)."""
    order_type, tif = ORDER_TYPES_BACK.get(raw.type, (OrderType.LIMIT, TimeInForce.GTC))
    filled = number(raw.executed_qty or "0", "executedQty")
    price = number(raw.price, "price") if raw.price else None
    created = raw.time * _MS
    updated = (raw.update_time or raw.time) * _MS
    return Order(
        venue=venue,
        symbol=symbol,
        side=SIDES_BACK[raw.side],
        qty=number(raw.orig_qty or "0", "origQty"),
        price=price if order_type is OrderType.LIMIT else None,
        order_type=order_type,
        tif=tif,
        client_order_id=raw.client_order_id or raw.orig_client_order_id or "",
        order_id=str(raw.order_id),
        status=ORDER_STATUS.get(raw.status, OrderStatus.ACCEPTED),
        filled_qty=filled,
        quote_qty=number(raw.cummulative_quote_qty or "0", "cummulativeQuoteQty"),
        ts_created=created,
        ts_updated=updated or ts_local,
        ts_accepted=created,
    )


@parser(VENUE, "trade")
def to_fill(
    raw: MexcTrade, symbol: str, client_order_id: str, *, ts_local: int, venue: str = VENUE
) -> Fill:
    """A ``myTrades`` element as an arbsim :class:`Fill` (fee in ``commissionAsset``)."""
    return Fill(
        venue=venue,
        symbol=symbol,
        client_order_id=client_order_id or raw.client_order_id or "",
        order_id=str(raw.order_id),
        trade_id=str(raw.id),
        side=Side.BUY if raw.is_buyer else Side.SELL,
        price=number(raw.price, "price", positive=True),
        qty=number(raw.qty, "qty", positive=True),
        fee=number(raw.commission or "0", "commission", signed=True),
        fee_asset=raw.commission_asset,
        liquidity="maker" if raw.is_maker else "taker",
        ts_exchange=raw.time * _MS,
        ts_local=ts_local,
    )


@parser(VENUE, "account")
def to_balances(raw: MexcAccount, ts: int, venue: str = VENUE) -> Balances:
    """``/api/v3/account`` as arbsim :class:`Balances`."""
    return Balances(
        venue=venue,
        ts=ts,
        assets={
            b.asset: Balance(
                asset=b.asset, free=number(b.free, "free"), locked=number(b.locked, "locked")
            )
            for b in raw.balances
        },
    )


# Wallet. MEXC's withdrawal ``amount`` includes the fee: the address receives
# ``amount - transactionFee``. The API reference does not say it in words; its
# withdraw-history records carry the amount with its ``transactionFee`` (recorded example:
# "amount": "2", "transactionFee": "1", status 7) and client libraries of the venue
# subtract the fee from ``amount`` to get what arrived ("mexc withdrawal amount includes
# the fee"). ``withdrawMin`` bounds that same amount. arbsim's convention
# (``WithdrawRequest.amount`` = what arrives, the account pays ``amount + fee``) is
# converted here and in ``MexcVenue``.

WITHDRAW_STATUS: dict[int, TransferStatus] = {
    1: TransferStatus.PENDING,  # APPLY
    2: TransferStatus.PENDING,  # AUDITING
    3: TransferStatus.PENDING,  # WAIT
    4: TransferStatus.PENDING,  # PROCESSING
    5: TransferStatus.PENDING,  # WAIT_PACKAGING
    6: TransferStatus.SENT,  # WAIT_CONFIRM: on chain, waiting for confirmations
    7: TransferStatus.ARRIVED,  # SUCCESS
    8: TransferStatus.FAILED,  # FAILED
    9: TransferStatus.FAILED,  # CANCEL
    10: TransferStatus.PENDING,  # MANUAL (review)
}
"""Withdraw-history ``status`` -> arbsim transfer status."""

DEPOSIT_CREDITED = 5
"""Deposit ``status`` SUCCESS (1 SMALL, 2 TIME_DELAY, 3 LARGE_DELAY, 4 PENDING, 5 SUCCESS,
6 AUDITING, 7 REJECTED)."""


def _coin(raw: str) -> str:
    """``"USDC-TRX"`` -> ``"USDC"``: history records name the coin with its network."""
    return raw.partition("-")[0]


@parser(VENUE, "capital/config/getall")
def to_terms(
    coins: Sequence[MexcCoin], asset: str, network: str, venue: str = VENUE
) -> WithdrawalTerms:
    """The ``networkList`` entry of ``asset`` on ``network`` as :class:`WithdrawalTerms`
    (fee; ``withdrawMin`` bounds the amount with the fee, so the minimum received is
    ``withdrawMin - withdrawFee``)."""
    for coin in coins:
        if coin.coin != asset:
            continue
        for net in coin.network_list:
            if network in (net.net_work, net.network):
                fee = number(str(net.withdraw_fee or "0"), "withdrawFee")
                step_text = str(net.withdraw_integer_multiple or "")
                step = number(step_text, "withdrawIntegerMultiple") if step_text else None
                return WithdrawalTerms(
                    venue=venue,
                    asset=asset,
                    network=network,
                    fee=fee,
                    minimum=net_minimum(number(str(net.withdraw_min or "0"), "withdrawMin"), fee),
                    step=step if step else Decimal("1e-8"),
                    enabled=net.withdraw_enable,
                )
    offered = [n.net_work or n.network for c in coins if c.coin == asset for n in c.network_list]
    raise InvalidOrder(
        f"the venue offers no withdrawal of {asset} on {network} "
        f"(its networks for {asset}: {', '.join(offered) or 'none'})",
        code="unknown_network",
        venue=venue,
    )


@parser(VENUE, "capital/withdraw/history")
def to_transfer(raw: MexcWithdrawal, *, venue: str = VENUE) -> Transfer:
    """A withdraw-history record as a :class:`Transfer` (amount received, fee apart; our
    client id is the ``withdrawOrderId``, else the ``remark``)."""
    gross = number(raw.amount, "amount")
    fee = number(raw.transaction_fee or "0", "transactionFee")
    return Transfer(
        client_id=raw.withdraw_order_id or raw.remark or "",
        venue=venue,
        asset=_coin(raw.coin),
        amount=gross - fee,
        fee=fee,
        network=raw.net_work or raw.network,
        address=raw.address,
        status=WITHDRAW_STATUS[raw.status],
        ts_requested=raw.apply_time * _MS,
        ts_updated=(raw.update_time or raw.apply_time) * _MS,
        venue_id=raw.id,
        tx_id=raw.trans_hash or raw.tx_id,
        memo=raw.memo,
    )


@parser(VENUE, "capital/deposit/hisrec")
def to_deposit(raw: MexcDeposit, *, venue: str = VENUE) -> Deposit:
    """A deposit record as a :class:`Deposit`."""
    return Deposit(
        venue=venue,
        asset=_coin(raw.coin),
        amount=number(raw.amount, "amount"),
        network=raw.net_work or raw.network,
        address=raw.address,
        tx_id=raw.trans_hash or raw.tx_id or "",
        credited=raw.status == DEPOSIT_CREDITED,
        ts=raw.insert_time * _MS,
    )


def withdraw_params(req: WithdrawRequest, amount: Decimal) -> list[tuple[str, str]]:
    """``POST capital/withdraw`` parameters in the documented order: ``coin,
    withdrawOrderId, netWork, address, memo, amount, remark`` (``amount`` with the fee; our
    client id also as ``remark``)."""
    params = [
        ("coin", req.asset),
        ("withdrawOrderId", req.client_id),
        ("netWork", req.network),
        ("address", req.address),
    ]
    if req.memo:
        params.append(("memo", req.memo))
    params += [("amount", format_decimal(amount)), ("remark", req.client_id)]
    return params


# --------------------------------------------------------------------------------------------
# Client
# --------------------------------------------------------------------------------------------

Params = Sequence[tuple[str, str]]


class MexcRestClient:
    """Typed MEXC Spot v3 REST client on one ``aiohttp.ClientSession``.

    Parameters
    ----------
    base_url:
        ``https://api.mexc.com`` by default; tests point it at 127.0.0.1.
    credentials:
        Needed for signed endpoints.
    recv_window:
        ``recvWindow`` sent with signed requests (ms).
    timeout_s:
        Total time per request.
    clock_ms:
        Client time in ms for ``timestamp`` (injectable).
    limiter:
        Defaults to one following :data:`exchanges.mexc.rules.MEXC_RULES`.
    """

    def __init__(
        self,
        base_url: str = BASE_URL,
        credentials: Credentials | None = None,
        *,
        recv_window: int = signing.DEFAULT_RECV_WINDOW,
        timeout_s: float = 10.0,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // _MS,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.credentials = credentials
        self.recv_window = recv_window
        self.clock_ms = clock_ms
        self.transport = RestTransport.for_account(
            MEXC_RULES,
            errors.ERROR_SPEC,
            base_url,
            credentials,
            limiter=limiter,
            timeout_s=timeout_s,
            headers={"Content-Type": "application/json"},
        )

    async def close(self) -> None:
        """Close the HTTP session."""
        await self.transport.close()

    # ---------------------------------------------------------------- plumbing
    def _prepare(self, endpoint: Endpoint, params: Params) -> Callable[[], Prepared]:
        def prepare() -> Prepared:
            if not endpoint.signed:
                return Prepared(query=urlencode(list(params)))
            creds = self.credentials
            if creds is None:
                raise ValueError(f"{endpoint.path} needs API credentials")
            query = signing.signed_query(
                list(params),
                creds.api_secret,
                timestamp_ms=self.clock_ms(),
                recv_window=self.recv_window,
            )
            return Prepared(query=query, headers={signing.API_KEY_HEADER: creds.api_key})

        return prepare

    async def _call(self, name: str, params: Params = ()) -> bytes:
        endpoint = ENDPOINTS[name]
        response = await self.transport.send(endpoint, self._prepare(endpoint, params))
        return response.body

    async def _fetch(self, name: str, decoder: msgspec.json.Decoder[T], params: Params = ()) -> T:
        """Call ``name`` and decode its answer. An unreadable answer is
        :class:`~arbsim.core.errors.MalformedMessage`, or for an order request (whose effect
        it hides) :class:`~arbsim.core.errors.OutcomeUnknown`."""
        endpoint = ENDPOINTS[name]
        body = await self._call(name, params)
        try:
            return decode_body(decoder, body, venue=VENUE, channel=endpoint.path)
        except MalformedMessage as exc:
            if endpoint.order:
                raise order_answer_error(exc) from exc
            raise

    # ---------------------------------------------------------------- public
    async def server_time(self) -> int:
        """``GET /api/v3/time`` -> server time in ms."""
        return (await self._fetch("time", _time_decoder)).server_time

    async def exchange_info(self, native_symbols: Sequence[str] = ()) -> list[VenueSymbolInfo]:
        """``GET /api/v3/exchangeInfo`` (``symbol=`` for one, ``symbols=A,B`` for several)."""
        params: list[tuple[str, str]] = []
        if len(native_symbols) == 1:
            params.append(("symbol", native_symbols[0]))
        elif native_symbols:
            params.append(("symbols", ",".join(native_symbols)))
        info = await self._fetch("exchange_info", _info_decoder, params)
        infos: list[VenueSymbolInfo] = []
        unusable: list[str] = []
        for raw in info.symbols:
            try:
                infos.append(symbol_info(raw))
            except MalformedMessage:
                unusable.append(raw.symbol)
        if unusable:
            # a symbol whose rules cannot be read cannot be traded: left out, said once
            log.warning(
                "mexc: %d symbols with unusable rules left out (%s)",
                len(unusable),
                ", ".join(unusable[:5]),
            )
        return infos

    async def depth(self, native_symbol: str, limit: int | None = 5000) -> MexcDepth:
        """``GET /api/v3/depth`` (``lastUpdateId`` starts the diff chain)."""
        params = [("symbol", native_symbol)]
        if limit is not None:
            params.append(("limit", str(limit)))
        return await self._fetch("depth", _depth_decoder, params)

    # ---------------------------------------------------------------- trading
    async def place_order(self, params: Params) -> MexcOrderAck:
        """``POST /api/v3/order`` with :func:`order_params` output."""
        return await self._fetch("place", _ack_decoder, params)

    @staticmethod
    def _id_params(
        native_symbol: str, order_id: str | None, client_order_id: str | None
    ) -> list[tuple[str, str]]:
        params = [("symbol", native_symbol)]
        if order_id:
            params.append(("orderId", order_id))
        elif client_order_id:
            params.append(("origClientOrderId", client_order_id))
        else:
            raise ValueError("order_id or client_order_id is required")
        return params

    async def cancel_order(
        self,
        native_symbol: str,
        *,
        order_id: str | None = None,
        client_order_id: str | None = None,
    ) -> MexcOrder:
        """``DELETE /api/v3/order`` by ``orderId`` or ``origClientOrderId``."""
        params = self._id_params(native_symbol, order_id, client_order_id)
        return await self._fetch("cancel", _order_decoder, params)

    async def query_order(
        self,
        native_symbol: str,
        *,
        order_id: str | None = None,
        client_order_id: str | None = None,
    ) -> MexcOrder:
        """``GET /api/v3/order`` by ``orderId`` or ``origClientOrderId``."""
        params = self._id_params(native_symbol, order_id, client_order_id)
        return await self._fetch("query", _order_decoder, params)

    async def open_orders(self, native_symbol: str | None = None) -> list[MexcOrder]:
        """``GET /api/v3/openOrders`` (one symbol, or all when the venue allows it)."""
        params = [("symbol", native_symbol)] if native_symbol else []
        return await self._fetch("open_orders", _orders_decoder, params)

    async def account(self) -> MexcAccount:
        """``GET /api/v3/account``."""
        return await self._fetch("account", _account_decoder)

    async def my_trades(
        self,
        native_symbol: str,
        *,
        order_id: str | None = None,
        start_time: int | None = None,
        limit: int | None = None,
        end_time: int | None = None,
    ) -> list[MexcTrade]:
        """``GET /api/v3/myTrades`` (ccxt's order: symbol, orderId, startTime, limit, endTime)."""
        params = [("symbol", native_symbol)]
        optional = (
            ("orderId", order_id),
            ("startTime", start_time),
            ("limit", limit),
            ("endTime", end_time),
        )
        params.extend((k, str(v)) for k, v in optional if v is not None)
        return await self._fetch("my_trades", _trades_decoder, params)

    # ---------------------------------------------------------------- user data stream
    async def create_listen_key(self) -> str:
        """``POST /api/v3/userDataStream`` -> a listenKey (valid 60 min)."""
        return (await self._fetch("listen_key_create", _listen_key_decoder)).listen_key

    async def keepalive_listen_key(self, listen_key: str) -> None:
        """``PUT /api/v3/userDataStream`` (extend by 60 min)."""
        await self._call("listen_key_keepalive", [("listenKey", listen_key)])

    async def delete_listen_key(self, listen_key: str) -> None:
        """``DELETE /api/v3/userDataStream``."""
        await self._call("listen_key_delete", [("listenKey", listen_key)])

    # ---------------------------------------------------------------- wallet
    async def coins(self) -> list[MexcCoin]:
        """``GET capital/config/getall``: every coin with its networks (fees, minimums)."""
        return await self._fetch("coins", _coins_decoder)

    async def withdraw(self, params: Params) -> str:
        """``POST capital/withdraw`` with :func:`withdraw_params` output -> the venue's id."""
        return (await self._fetch("withdraw", _withdraw_ack_decoder, params)).id

    async def withdraw_history(
        self, coin: str | None = None, *, start_time: int | None = None, limit: int = 1000
    ) -> list[MexcWithdrawal]:
        """``GET capital/withdraw/history`` (``coin, limit, startTime``), newest first."""
        params = [("coin", coin)] if coin else []
        params.append(("limit", str(limit)))
        if start_time is not None:
            params.append(("startTime", str(start_time)))
        return await self._fetch("withdraw_history", _withdrawals_decoder, params)

    async def deposit_history(
        self, coin: str | None = None, *, start_time: int | None = None, limit: int = 1000
    ) -> list[MexcDeposit]:
        """``GET capital/deposit/hisrec`` (``coin, limit, startTime``), newest first."""
        params = [("coin", coin)] if coin else []
        params.append(("limit", str(limit)))
        if start_time is not None:
            params.append(("startTime", str(start_time)))
        return await self._fetch("deposit_history", _deposits_decoder, params)

    async def deposit_addresses(
        self, coin: str, network: str | None = None
    ) -> list[MexcDepositAddress]:
        """``GET capital/deposit/address`` (``coin``, optional ``network``)."""
        params = [("coin", coin)]
        if network:
            params.append(("network", network))
        return await self._fetch("deposit_address", _addresses_decoder, params)
