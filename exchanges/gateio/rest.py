"""Gate.io Spot v4 REST client (PROTOCOLS.md B1-B4) and its conversions to arbsim types.

Requests follow the recorded ccxt fixtures: query parameters in a fixed order per endpoint
(``account=spot&currency_pair=...`` for order lookups), POST bodies as compact JSON in the
order ``currency_pair, type, account, side, amount, price, time_in_force, text``, and the
three auth headers ``KEY``, ``Timestamp`` (seconds), ``SIGN`` over the five-line string.

Decisions
---------
* Status mapping (B3): ``open`` without fills -> ACCEPTED (the venue has it; B3's "NEW"),
  ``open`` with fills -> PARTIALLY_FILLED, ``closed`` -> FILLED, ``cancelled`` -> CANCELED.
* ``time_in_force`` is omitted for GTC limits (the venue default; the fixtures omit it).
* Client ids: Gate's ``text`` must start with ``t-``; arbsim ids travel as ``t-<id>``
  (:func:`to_text` / :func:`from_text`), at most 28 bytes after the prefix.
* A market BUY's ``amount`` is QUOTE currency: the caller passes ``quote_amount``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TypeVar

import msgspec
from yarl import URL

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
from exchanges.gateio import errors, signing
from exchanges.gateio.rules import GATEIO_RULES
from exchanges.gateio.symbols import GateCurrencyPair, symbol_info
from exchanges.gateio.ws import GateOrder, GateTrade, OrderBookSnapshot, ms_to_ns
from exchanges.live.credentials import Credentials
from exchanges.live.errors import decode_body, number, order_answer_error, parser
from exchanges.live.http import Endpoint, Prepared, RateLimiter, RestTransport
from exchanges.live.symbols import VenueSymbolInfo
from exchanges.live.transfers import net_minimum

__all__ = [
    "BASE_URL",
    "ENDPOINTS",
    "TIME_IN_FORCE",
    "GateAccount",
    "GateOrder",
    "GateRestClient",
    "GateTrade",
    "from_text",
    "order_body",
    "to_balances",
    "to_deposit",
    "to_fill",
    "to_order",
    "to_terms",
    "to_text",
    "to_transfer",
    "withdraw_body",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

VENUE = "gateio"
BASE_URL = "https://api.gateio.ws/api/v4"
TEXT_PREFIX = "t-"
_TEXT_MAX = 28
_TEXT_CHARS = re.compile(r"^[0-9A-Za-z_.\-]+$")

ENDPOINTS: dict[str, Endpoint] = {
    "time": Endpoint(method="GET", path="/spot/time", costs=(("public", 1),)),
    "currency_pairs": Endpoint(method="GET", path="/spot/currency_pairs", costs=(("public", 1),)),
    "order_book": Endpoint(method="GET", path="/spot/order_book", costs=(("public", 1),)),
    "place": Endpoint(
        method="POST",
        path="/spot/orders",
        costs=(("place", 1),),
        signed=True,
        order=True,
    ),
    "cancel": Endpoint(
        method="DELETE",
        path="/spot/orders/{order_id}",
        costs=(("cancel", 1),),
        signed=True,
        order=True,
    ),
    "get_order": Endpoint(
        method="GET", path="/spot/orders/{order_id}", costs=(("private", 1),), signed=True
    ),
    "open_orders": Endpoint(
        method="GET", path="/spot/open_orders", costs=(("private", 1),), signed=True
    ),
    "accounts": Endpoint(method="GET", path="/spot/accounts", costs=(("private", 1),), signed=True),
    "my_trades": Endpoint(
        method="GET", path="/spot/my_trades", costs=(("private", 1),), signed=True
    ),
    # wallet; a withdrawal's unknown outcome is OutcomeUnknown, as for an order
    "withdraw": Endpoint(
        method="POST", path="/withdrawals", costs=(("private", 1),), signed=True, order=True
    ),
    "withdrawals": Endpoint(
        method="GET", path="/wallet/withdrawals", costs=(("private", 1),), signed=True
    ),
    "deposits": Endpoint(
        method="GET", path="/wallet/deposits", costs=(("private", 1),), signed=True
    ),
    "deposit_address": Endpoint(
        method="GET", path="/wallet/deposit_address", costs=(("private", 1),), signed=True
    ),
    "withdraw_status": Endpoint(
        method="GET", path="/wallet/withdraw_status", costs=(("private", 1),), signed=True
    ),
    "currency_chains": Endpoint(
        method="GET", path="/wallet/currency_chains", costs=(("public", 1),)
    ),
}
"""Endpoint table (B2), paths below ``/api/v4``; ``costs`` name families of
:data:`GATEIO_RULES`."""

TIME_IN_FORCE: dict[TimeInForce, str | None] = {
    TimeInForce.GTC: None,
    TimeInForce.IOC: "ioc",
    TimeInForce.FOK: "fok",
    TimeInForce.POST_ONLY: "poc",
}
"""arbsim time in force -> Gate ``time_in_force`` (None: not sent, venue default gtc)."""

TIME_IN_FORCE_BACK: dict[str, TimeInForce] = {
    "gtc": TimeInForce.GTC,
    "ioc": TimeInForce.IOC,
    "fok": TimeInForce.FOK,
    "poc": TimeInForce.POST_ONLY,
}
ORDER_TYPES: dict[OrderType, str] = {OrderType.LIMIT: "limit", OrderType.MARKET: "market"}
ORDER_TYPES_BACK: dict[str, OrderType] = {v: k for k, v in ORDER_TYPES.items()}
SIDES: dict[Side, str] = {Side.BUY: "buy", Side.SELL: "sell"}
SIDES_BACK: dict[str, Side] = {v: k for k, v in SIDES.items()}

ORDER_STATUS: dict[tuple[str, bool], OrderStatus] = {
    ("open", False): OrderStatus.ACCEPTED,
    ("open", True): OrderStatus.PARTIALLY_FILLED,
    ("closed", False): OrderStatus.FILLED,
    ("closed", True): OrderStatus.FILLED,
    ("cancelled", False): OrderStatus.CANCELED,
    ("cancelled", True): OrderStatus.CANCELED,
}
"""(``status``, has fills) -> arbsim status (B3)."""

_S_TO_NS = 1_000_000_000


def to_text(client_order_id: str) -> str:
    """arbsim client id -> Gate ``text`` (``t-`` prefix, ≤ 28 bytes after it)."""
    body = client_order_id.removeprefix(TEXT_PREFIX)
    if not body or len(body.encode()) > _TEXT_MAX or not _TEXT_CHARS.match(body):
        raise ValueError(
            f"client order id {client_order_id!r} cannot be a Gate text: 1..{_TEXT_MAX} "
            "bytes of [0-9A-Za-z_.-] after 't-'"
        )
    return TEXT_PREFIX + body


def from_text(text: str) -> str:
    """Gate ``text`` -> arbsim client id (``"t-abc"`` -> ``"abc"``; ``"web"`` stays)."""
    return text.removeprefix(TEXT_PREFIX)


# --------------------------------------------------------------------------------------------
# Answers
# --------------------------------------------------------------------------------------------


class GateServerTime(msgspec.Struct, frozen=True, kw_only=True):
    server_time: int


class GateOpenOrders(msgspec.Struct, frozen=True, kw_only=True):
    """One group of ``GET /spot/open_orders``."""

    currency_pair: str
    orders: list[GateOrder]
    total: int = 0


class GateAccount(msgspec.Struct, frozen=True, kw_only=True):
    """One ``GET /spot/accounts`` element."""

    currency: str
    available: str
    locked: str = "0"
    update_id: int = 0


_time_decoder = msgspec.json.Decoder(GateServerTime, strict=False)
_pairs_decoder = msgspec.json.Decoder(list[GateCurrencyPair], strict=False)
_book_decoder = msgspec.json.Decoder(OrderBookSnapshot, strict=False)
_order_decoder = msgspec.json.Decoder(GateOrder, strict=False)
_open_decoder = msgspec.json.Decoder(list[GateOpenOrders], strict=False)
_trades_decoder = msgspec.json.Decoder(list[GateTrade], strict=False)
_accounts_decoder = msgspec.json.Decoder(list[GateAccount], strict=False)
_encoder = msgspec.json.Encoder()


class GateWithdrawal(msgspec.Struct, frozen=True, kw_only=True):
    """A ``/wallet/withdrawals`` record, or the ``POST /withdrawals`` answer (which carries
    ``fee_amount`` instead of ``fee``)."""

    id: str
    currency: str
    amount: str
    status: str = "REQUEST"
    address: str = ""
    chain: str = ""
    fee: str | None = None
    fee_amount: str | None = None
    txid: str | None = None
    withdraw_order_id: str | None = None
    timestamp: str | int | float = 0
    timestamp2: str | int | float | None = None
    memo: str | None = None


class GateDeposit(msgspec.Struct, frozen=True, kw_only=True):
    """A ``/wallet/deposits`` record."""

    id: str
    currency: str
    amount: str
    status: str
    timestamp: str | int | float
    address: str = ""
    chain: str = ""
    txid: str | None = None


class GateChainAddress(msgspec.Struct, frozen=True, kw_only=True):
    chain: str
    address: str
    payment_id: str = ""
    obtain_failed: int = 0


class GateDepositAddress(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /wallet/deposit_address``."""

    currency: str
    address: str = ""
    multichain_addresses: list[GateChainAddress] = []


class GateWithdrawStatus(msgspec.Struct, frozen=True, kw_only=True):
    """One ``/wallet/withdraw_status`` element (fees and limits of a currency)."""

    currency: str
    withdraw_fix: str = "0"
    withdraw_amount_mini: str = "0"
    withdraw_percent: str = "0%"
    withdraw_fix_on_chains: dict[str, str] = {}
    withdraw_percent_on_chains: dict[str, str] = {}


class GateCurrencyChain(msgspec.Struct, frozen=True, kw_only=True):
    """One ``/wallet/currency_chains`` element: a chain of a currency, whether it may be
    withdrawn over, and the withdrawal precision (``decimal``: decimal places)."""

    chain: str
    is_disabled: int = 0
    is_withdraw_disabled: int = 0
    decimal: str = ""


_withdrawal_decoder = msgspec.json.Decoder(GateWithdrawal, strict=False)
_withdrawals_decoder = msgspec.json.Decoder(list[GateWithdrawal], strict=False)
_deposits_decoder = msgspec.json.Decoder(list[GateDeposit], strict=False)
_address_decoder = msgspec.json.Decoder(GateDepositAddress, strict=False)
_withdraw_status_decoder = msgspec.json.Decoder(list[GateWithdrawStatus], strict=False)
_currency_chains_decoder = msgspec.json.Decoder(list[GateCurrencyChain], strict=False)


# --------------------------------------------------------------------------------------------
# Conversions
# --------------------------------------------------------------------------------------------


def _fmt(value: Decimal) -> str:
    return format(value.normalize(), "f")


def order_body(
    pair: str,
    side: Side,
    qty: Decimal,
    price: Decimal | None,
    order_type: OrderType,
    tif: TimeInForce,
    client_order_id: str = "",
    *,
    quote_amount: Decimal | None = None,
) -> bytes:
    """The JSON body of ``POST /spot/orders`` (field order as in the fixtures).

    A market order is IOC (Gate allows ioc/fok only); a market BUY needs ``quote_amount``.
    """
    body: dict[str, str] = {
        "currency_pair": pair,
        "type": ORDER_TYPES[order_type],
        "account": "spot",
        "side": SIDES[side],
    }
    if order_type is OrderType.MARKET:
        if side is Side.BUY:
            if quote_amount is None:
                raise ValueError("a Gate market buy is sized in quote: pass quote_amount")
            body["amount"] = _fmt(quote_amount)
        else:
            body["amount"] = _fmt(qty)
        body["time_in_force"] = "fok" if tif is TimeInForce.FOK else "ioc"
    else:
        if price is None:
            raise ValueError("a limit order needs a price")
        body["amount"] = _fmt(qty)
        body["price"] = _fmt(price)
        gate_tif = TIME_IN_FORCE[tif]
        if gate_tif is not None:
            body["time_in_force"] = gate_tif
    if client_order_id:
        body["text"] = to_text(client_order_id)
    return _encoder.encode(body)


@parser(VENUE, "order")
def to_order(raw: GateOrder, symbol: str, *, ts_local: int = 0, venue: str = VENUE) -> Order:
    """A Gate order as an arbsim :class:`Order` snapshot (no fills: see :func:`to_fill`)."""
    order_type = ORDER_TYPES_BACK.get(raw.type, OrderType.LIMIT)
    filled = raw.filled_base()
    if not filled.is_finite() or filled < 0:
        raise ValueError("filled quantity is not a quantity")
    status = ORDER_STATUS.get((raw.status, filled > 0), OrderStatus.ACCEPTED)
    created = ms_to_ns(raw.create_time_ms)
    updated = ms_to_ns(raw.update_time_ms) or ts_local
    qty = number(raw.amount, "amount")
    if order_type is OrderType.MARKET and raw.side == "buy":
        qty = filled  # sized in quote: the base quantity is what was bought
    return Order(
        venue=venue,
        symbol=symbol,
        side=SIDES_BACK[raw.side],
        qty=qty,
        price=number(raw.price, "price") if order_type is OrderType.LIMIT else None,
        order_type=order_type,
        tif=TIME_IN_FORCE_BACK.get(raw.time_in_force, TimeInForce.GTC),
        client_order_id=from_text(raw.text),
        order_id=raw.id,
        status=status,
        filled_qty=filled,
        quote_qty=number(raw.filled_total or "0", "filled_total"),
        fee=number(raw.fee or "0", "fee", signed=True),
        fee_asset=raw.fee_currency,
        ts_created=created,
        ts_updated=updated,
        ts_accepted=created,
    )


@parser(VENUE, "trade")
def to_fill(
    raw: GateTrade, symbol: str, client_order_id: str, *, ts_local: int, venue: str = VENUE
) -> Fill:
    """A ``my_trades`` element as an arbsim :class:`Fill` (fee in ``fee_currency``)."""
    return Fill(
        venue=venue,
        symbol=symbol,
        client_order_id=client_order_id or from_text(raw.text),
        order_id=raw.order_id,
        trade_id=str(raw.id),
        side=SIDES_BACK[raw.side],
        price=number(raw.price, "price", positive=True),
        qty=number(raw.amount, "amount", positive=True),
        fee=number(raw.fee or "0", "fee", signed=True),
        fee_asset=raw.fee_currency,
        liquidity=raw.role or "taker",
        ts_exchange=ms_to_ns(raw.create_time_ms),
        ts_local=ts_local,
    )


@parser(VENUE, "accounts")
def to_balances(raw: Sequence[GateAccount], ts: int, venue: str = VENUE) -> Balances:
    """``/spot/accounts`` as arbsim :class:`Balances`."""
    return Balances(
        venue=venue,
        ts=ts,
        assets={
            a.currency: Balance(
                asset=a.currency,
                free=number(a.available, "available"),
                locked=number(a.locked, "locked"),
            )
            for a in raw
        },
    )


# --------------------------------------------------------------------------------------------
# Client
# --------------------------------------------------------------------------------------------

# Wallet. Gate's withdrawal ``amount`` includes the fee: the address receives
# ``amount - fee``. The API reference does not say it in words; its withdrawal record
# (WithdrawalRecord) carries ``amount`` ("Currency amount") with a separate read-only
# ``fee``, the answer to POST /withdrawals a ``fee_amount``, and client libraries of the
# venue subtract the fee from ``amount`` for what arrived. ``withdraw_amount_mini`` bounds
# that same amount (recorded: ``withdraw_fix`` 900, ``withdraw_amount_mini`` 900.1).
# arbsim's convention (``WithdrawRequest.amount`` = what arrives, the account pays
# ``amount + fee``) is converted here and in ``GateVenue``.

WITHDRAW_STATUS: dict[str, TransferStatus] = {
    "REQUEST": TransferStatus.PENDING,
    "MANUAL": TransferStatus.PENDING,
    "VERIFY": TransferStatus.PENDING,
    "FVERIFY": TransferStatus.PENDING,
    "PROCES": TransferStatus.PENDING,
    "PEND": TransferStatus.PENDING,
    "DMOVE": TransferStatus.PENDING,
    "SPLITPEND": TransferStatus.PENDING,
    "LOCKED": TransferStatus.PENDING,
    "REVIEW": TransferStatus.PENDING,
    "CANCELPEND": TransferStatus.PENDING,
    "EXTPEND": TransferStatus.SENT,  # sent, waiting for confirmation
    "DONE": TransferStatus.ARRIVED,
    "BCODE": TransferStatus.ARRIVED,  # GateCode: settled inside Gate
    "CANCEL": TransferStatus.FAILED,
    "FAIL": TransferStatus.FAILED,
    "INVALID": TransferStatus.FAILED,
}
"""Withdrawal ``status`` -> arbsim transfer status."""

DEPOSIT_CREDITED = "DONE"
"""Deposit ``status`` of funds credited to the spot account (PEND, TRACK, REVIEW, MANUAL,
DEP_CREDITED... are not yet)."""

_PERCENT_ZERO = frozenset({"", "0", "0%", "0.0%"})


def _seconds_ns(value: str | int | float, name: str) -> int:
    """A Gate time (seconds: ``1596531048``, ``"1596531048"``, ``"1596531048.285"``) in ns."""
    return int(number(str(value), name) * 1_000_000_000)


@parser(VENUE, "wallet/withdraw_status")
def to_terms(
    raws: Sequence[GateWithdrawStatus],
    asset: str,
    network: str,
    venue: str = VENUE,
    chains: Sequence[GateCurrencyChain] = (),
) -> WithdrawalTerms:
    """``withdraw_status`` of ``asset`` as :class:`WithdrawalTerms` on ``network`` (the
    chain's fixed fee; ``withdraw_amount_mini`` bounds the amount with the fee, so the
    minimum received is ``withdraw_amount_mini - fee``). A percentage fee cannot be told
    exactly in advance: refused (:class:`InvalidOrder`), as an unknown currency is.
    ``chains`` (``wallet/currency_chains``) give the step (``decimal``: a withdrawal of
    more decimal places is refused with ``INVALID_PRECISION``) and whether the chain is
    open to withdrawals."""
    step: Decimal | None = None
    enabled = True
    for chain in chains:
        if chain.chain == network:
            if chain.decimal not in ("", None):
                places = int(number(chain.decimal, "decimal"))
                step = Decimal(1).scaleb(-places)
            enabled = not (chain.is_disabled or chain.is_withdraw_disabled)
    for raw in raws:
        if raw.currency != asset:
            continue
        percent = raw.withdraw_percent_on_chains.get(network, raw.withdraw_percent)
        if percent.strip() not in _PERCENT_ZERO:
            raise InvalidOrder(
                f"{asset} on {network} has a percentage withdrawal fee ({percent}): the "
                "amount that arrives cannot be told exactly in advance, refused",
                code="percentage_fee",
                venue=venue,
            )
        fee = number(raw.withdraw_fix_on_chains.get(network, raw.withdraw_fix), "withdraw_fix")
        terms = WithdrawalTerms(
            venue=venue,
            asset=asset,
            network=network,
            fee=fee,
            minimum=net_minimum(number(raw.withdraw_amount_mini, "withdraw_amount_mini"), fee),
            enabled=enabled,
        )
        return terms if step is None else msgspec.structs.replace(terms, step=step)
    raise InvalidOrder(
        f"the venue offers no withdrawal of {asset}", code="unknown_network", venue=venue
    )


@parser(VENUE, "wallet/withdrawals")
def to_transfer(raw: GateWithdrawal, *, venue: str = VENUE) -> Transfer:
    """A withdrawal record as a :class:`Transfer` (amount received, fee apart)."""
    gross = number(raw.amount, "amount")
    fee = number(raw.fee or raw.fee_amount or "0", "fee")
    ts = _seconds_ns(raw.timestamp, "timestamp")
    final = raw.timestamp2
    return Transfer(
        client_id=raw.withdraw_order_id or "",
        venue=venue,
        asset=raw.currency.upper(),
        amount=gross - fee,
        fee=fee,
        network=raw.chain,
        address=raw.address,
        status=WITHDRAW_STATUS[raw.status],
        ts_requested=ts,
        ts_updated=_seconds_ns(final, "timestamp2") if final not in (None, "") else ts,
        venue_id=raw.id,
        tx_id=raw.txid or None,
        memo=raw.memo or None,
    )


@parser(VENUE, "wallet/deposits")
def to_deposit(raw: GateDeposit, *, venue: str = VENUE) -> Deposit:
    """A deposit record as a :class:`Deposit`."""
    return Deposit(
        venue=venue,
        asset=raw.currency.upper(),
        amount=number(raw.amount, "amount"),
        network=raw.chain,
        address=raw.address,
        tx_id=raw.txid or "",
        credited=raw.status == DEPOSIT_CREDITED,
        ts=_seconds_ns(raw.timestamp, "timestamp"),
    )


def withdraw_body(req: WithdrawRequest, amount: Decimal) -> bytes:
    """``POST /withdrawals`` body: ``withdraw_order_id, amount, currency, address, memo,
    chain`` (``amount`` with the fee)."""
    body: dict[str, str] = {
        "withdraw_order_id": req.client_id,
        "amount": _fmt(amount),
        "currency": req.asset,
        "address": req.address,
    }
    if req.memo:
        body["memo"] = req.memo
    body["chain"] = req.network
    return _encoder.encode(body)


Params = Sequence[tuple[str, str]]


def _raw_query(params: Params) -> str:
    # Gate signs the query as sent and not url-encoded: ids and pair names need no escaping.
    return "&".join(f"{k}={v}" for k, v in params)


class GateRestClient:
    """Typed Gate.io Spot v4 REST client on one ``aiohttp.ClientSession``.

    Parameters
    ----------
    base_url:
        ``https://api.gateio.ws/api/v4`` by default; its path (``/api/v4``) is part of what
        is signed. Tests point it at ``http://127.0.0.1:PORT/api/v4``.
    credentials:
        Needed for signed endpoints.
    timeout_s:
        Total time per request.
    clock_s:
        Client time in seconds for ``Timestamp`` (injectable).
    limiter:
        Defaults to one following :data:`exchanges.gateio.rules.GATEIO_RULES`.
    """

    def __init__(
        self,
        base_url: str = BASE_URL,
        credentials: Credentials | None = None,
        *,
        timeout_s: float = 10.0,
        clock_s: Callable[[], float] = time.time,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.credentials = credentials
        self.clock_s = clock_s
        self._sign_prefix = URL(base_url).path.rstrip("/")
        self.transport = RestTransport.for_account(
            GATEIO_RULES,
            errors.ERROR_SPEC,
            base_url,
            credentials,
            limiter=limiter,
            timeout_s=timeout_s,
            headers={"Accept": "application/json", "Content-Type": "application/json"},
        )

    async def close(self) -> None:
        """Close the HTTP session."""
        await self.transport.close()

    # ---------------------------------------------------------------- plumbing
    async def _call(
        self,
        name: str,
        params: Params = (),
        *,
        body: bytes = b"",
        order_id: str = "",
        market: str = "",
    ) -> bytes:
        endpoint = ENDPOINTS[name]
        path = endpoint.path.format(order_id=order_id)
        query = _raw_query(params)

        def prepare() -> Prepared:
            if not endpoint.signed:
                return Prepared(query=query, body=body)
            creds = self.credentials
            if creds is None:
                raise ValueError(f"{endpoint.path} needs API credentials")
            timestamp = str(int(self.clock_s()))
            headers = signing.request_headers(
                creds.api_key,
                creds.api_secret,
                endpoint.method,
                self._sign_prefix + path,
                query,
                body,
                timestamp,
            )
            return Prepared(query=query, body=body, headers=headers)

        response = await self.transport.send(endpoint, prepare, path=path, market=market)
        return response.body

    async def _fetch(
        self,
        name: str,
        decoder: msgspec.json.Decoder[T],
        params: Params = (),
        *,
        body: bytes = b"",
        order_id: str = "",
        market: str = "",
    ) -> T:
        """Call ``name`` and decode its answer. An unreadable answer is
        :class:`~arbsim.core.errors.MalformedMessage`, or for an order request (whose effect
        it hides) :class:`~arbsim.core.errors.OutcomeUnknown`."""
        endpoint = ENDPOINTS[name]
        raw = await self._call(name, params, body=body, order_id=order_id, market=market)
        try:
            return decode_body(decoder, raw, venue=VENUE, channel=endpoint.path)
        except MalformedMessage as exc:
            if endpoint.order:
                raise order_answer_error(exc) from exc
            raise

    # ---------------------------------------------------------------- public
    async def server_time(self) -> int:
        """``GET /spot/time`` -> server time in ms."""
        return (await self._fetch("time", _time_decoder)).server_time

    async def currency_pairs(self) -> list[VenueSymbolInfo]:
        """``GET /spot/currency_pairs`` -> trading rules of every pair (a pair whose rules
        cannot be read is left out and logged: it cannot be traded)."""
        infos: list[VenueSymbolInfo] = []
        unusable: list[str] = []
        for pair in await self._fetch("currency_pairs", _pairs_decoder):
            try:
                infos.append(symbol_info(pair))
            except MalformedMessage:
                unusable.append(pair.id)
        if unusable:
            log.warning(
                "gateio: %d currency pairs with unusable rules left out (%s)",
                len(unusable),
                ", ".join(unusable[:5]),
            )
        return infos

    async def order_book(self, pair: str, limit: int | None = 100) -> OrderBookSnapshot:
        """``GET /spot/order_book?currency_pair=..&limit=..&with_id=true``."""
        params = [("currency_pair", pair)]
        if limit is not None:
            params.append(("limit", str(limit)))
        params.append(("with_id", "true"))
        return await self._fetch("order_book", _book_decoder, params)

    # ---------------------------------------------------------------- trading
    async def place_order(self, pair: str, body: bytes) -> GateOrder:
        """``POST /spot/orders`` with an :func:`order_body` (HTTP 201 + Order)."""
        return await self._fetch("place", _order_decoder, body=body, market=pair)

    async def cancel_order(self, pair: str, order_id: str) -> GateOrder:
        """``DELETE /spot/orders/{id}?account=spot&currency_pair=..`` (id or ``t-`` text)."""
        params = [("account", "spot"), ("currency_pair", pair)]
        return await self._fetch("cancel", _order_decoder, params, order_id=order_id)

    async def get_order(self, pair: str, order_id: str) -> GateOrder:
        """``GET /spot/orders/{id}?account=spot&currency_pair=..`` (id or ``t-`` text)."""
        params = [("account", "spot"), ("currency_pair", pair)]
        return await self._fetch("get_order", _order_decoder, params, order_id=order_id)

    async def open_orders(self, pair: str | None = None) -> list[GateOrder]:
        """``GET /spot/open_orders`` (grouped by pair; filtered to ``pair`` here as well)."""
        params = [("account", "spot")]
        if pair:
            params += [("currency_pair", pair), ("status", "open")]
        groups = await self._fetch("open_orders", _open_decoder, params)
        return [o for g in groups if pair is None or g.currency_pair == pair for o in g.orders]

    async def accounts(self) -> list[GateAccount]:
        """``GET /spot/accounts``."""
        return await self._fetch("accounts", _accounts_decoder)

    async def my_trades(
        self,
        pair: str,
        *,
        order_id: str | None = None,
        limit: int | None = None,
        from_s: int | None = None,
        to_s: int | None = None,
    ) -> list[GateTrade]:
        """``GET /spot/my_trades`` (currency_pair, account, order_id, limit, from, to)."""
        params = [("currency_pair", pair), ("account", "spot")]
        optional = (("order_id", order_id), ("limit", limit), ("from", from_s), ("to", to_s))
        params.extend((k, str(v)) for k, v in optional if v is not None)
        return await self._fetch("my_trades", _trades_decoder, params)

    # ---------------------------------------------------------------- wallet
    async def withdraw(self, body: bytes) -> GateWithdrawal:
        """``POST /withdrawals`` with a :func:`withdraw_body`."""
        return await self._fetch("withdraw", _withdrawal_decoder, body=body)

    async def withdrawals(
        self,
        currency: str | None = None,
        *,
        withdraw_order_id: str | None = None,
        from_s: int | None = None,
        limit: int = 100,
    ) -> list[GateWithdrawal]:
        """``GET /wallet/withdrawals`` (currency, withdraw_order_id, from, limit)."""
        optional = (
            ("currency", currency),
            ("withdraw_order_id", withdraw_order_id),
            ("from", from_s),
            ("limit", limit),
        )
        params = [(k, str(v)) for k, v in optional if v is not None]
        return await self._fetch("withdrawals", _withdrawals_decoder, params)

    async def deposits(
        self, currency: str | None = None, *, from_s: int | None = None, limit: int = 500
    ) -> list[GateDeposit]:
        """``GET /wallet/deposits`` (currency, from, limit: at most 500)."""
        optional = (("currency", currency), ("from", from_s), ("limit", limit))
        params = [(k, str(v)) for k, v in optional if v is not None]
        return await self._fetch("deposits", _deposits_decoder, params)

    async def deposit_address(self, currency: str) -> GateDepositAddress:
        """``GET /wallet/deposit_address?currency=``."""
        return await self._fetch("deposit_address", _address_decoder, [("currency", currency)])

    async def withdraw_status(self, currency: str | None = None) -> list[GateWithdrawStatus]:
        """``GET /wallet/withdraw_status`` (one currency, or all)."""
        params = [("currency", currency)] if currency else []
        return await self._fetch("withdraw_status", _withdraw_status_decoder, params)

    async def currency_chains(self, currency: str) -> list[GateCurrencyChain]:
        """``GET /wallet/currency_chains?currency=`` (public): a currency's chains."""
        return await self._fetch(
            "currency_chains", _currency_chains_decoder, [("currency", currency)]
        )
