"""Gate.io Spot v4 as the simulator serves it (PROTOCOLS.md B1-B7).

REST under ``/api/v4/spot`` (``KEY``/``Timestamp``/``SIGN`` verified with
:mod:`exchanges.gateio.signing`, rejections from :mod:`exchanges.gateio.errors`), WebSocket at
``/ws/v4/``: public channels, private channels with per-request auth and the WebSocket API
(``spot.login``, ``spot.order_place``, ...).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Unpack
from urllib.parse import unquote

import msgspec
from aiohttp import WSMsgType, web
from aiohttp.typedefs import Middleware

from arbsim.core.model import ZERO, Instrument, OrderStatus, OrderType, Side, TimeInForce
from arbsim.core.rules import Rejection
from exchanges.gateio import signing
from exchanges.gateio.symbols import to_native
from exchanges.gateio.ws import obu_stream, parse_obu_stream
from exchanges.sim.errors import SimError, SimReject, int_param, reject_response
from exchanges.sim.exchange import PrivateUpdate, SimExchange, SimOrder
from exchanges.sim.faults import WS_API_KINDS, FaultState
from exchanges.sim.hub import (
    Connection,
    Handler,
    corrupted,
    decimal_param,
    json_response,
)
from exchanges.sim.market import DepthUpdate, MarketEvent, PublicTrade, SymbolState
from exchanges.sim.server import ServerOptions, VenueServer, decimal_places, decimal_text
from exchanges.sim.transfers import SimDeposit, SimWithdrawal, Stage, TransferNetwork

__all__ = ["GateServer", "currency_pair_json", "gate_finish_as", "gate_status"]

VENUE = "gateio"
PREFIX = "/api/v4"

SIDES: dict[str, Side] = {"buy": Side.BUY, "sell": Side.SELL}
SIDE_NAMES: dict[Side, str] = {Side.BUY: "buy", Side.SELL: "sell"}
TYPES: dict[str, OrderType] = {"limit": OrderType.LIMIT, "market": OrderType.MARKET}
TIME_IN_FORCE: dict[str, TimeInForce] = {
    "gtc": TimeInForce.GTC,
    "ioc": TimeInForce.IOC,
    "poc": TimeInForce.POST_ONLY,
    "fok": TimeInForce.FOK,
}
TIF_NAMES: dict[TimeInForce, str] = {v: k for k, v in TIME_IN_FORCE.items()}
MARKET_TIFS = frozenset({"ioc", "fok"})
ACCOUNTS = frozenset({"spot", "unified"})
DEFAULT_TEXT = "apiv4"
_TEXT = re.compile(r"t-[0-9A-Za-z_.\-]{1,28}$")

STATUS: dict[OrderStatus, str] = {
    OrderStatus.ACCEPTED: "open",
    OrderStatus.PARTIALLY_FILLED: "open",
    OrderStatus.FILLED: "closed",
    OrderStatus.CANCELED: "cancelled",
    OrderStatus.EXPIRED: "cancelled",
}
FINISH_AS: dict[OrderStatus, str] = {
    OrderStatus.ACCEPTED: "open",
    OrderStatus.PARTIALLY_FILLED: "open",
    OrderStatus.FILLED: "filled",
    OrderStatus.CANCELED: "cancelled",
}
EXPIRED_FINISH_AS: dict[TimeInForce, str] = {
    TimeInForce.IOC: "ioc",
    TimeInForce.FOK: "fok",
    TimeInForce.POST_ONLY: "poc",
    TimeInForce.GTC: "cancelled",
}
ORDER_PATHS = frozenset({("POST", f"{PREFIX}/spot/orders"), ("POST", f"{PREFIX}/withdrawals")})
"""Requests that create something (orders, withdrawals): ``lose_ack`` faults act on them."""

WITHDRAW_STATUS: dict[Stage, str] = {
    "held": "REQUEST",
    "sent": "EXTPEND",
    "arrived": "DONE",
    "cancelled": "CANCEL",
}
"""Withdrawal stage -> Gate ``status`` (REQUEST: requesting; EXTPEND: sent, waiting for
confirmation; DONE: completed; CANCEL: cancelled)."""

DEPOSIT_STATUS: dict[bool, str] = {False: "PEND", True: "DONE"}
"""Credited -> Gate deposit ``status`` (PEND: processing; DONE: credited to spot)."""

_WITHDRAW_ORDER_ID = re.compile(r"[0-9A-Za-z_.\-]{1,32}$")
_WEEK_S = 7 * 86_400
WITHDRAW_LIMIT = "1000000"
PUBLIC_CHANNELS = frozenset(
    {"spot.order_book_update", "spot.obu", "spot.trades", "spot.book_ticker"}
)
PRIVATE_CHANNELS = frozenset({"spot.orders", "spot.usertrades", "spot.balances"})
BOOK_INTERVALS = frozenset({"100ms", "20ms", "1000ms"})
WS_ERRORS: dict[str, tuple[int, str]] = {
    "bad_body": (1, "invalid request body"),
    "bad_argument": (2, "invalid argument"),
    "auth": (4, "auth failed"),
}
"""WebSocket error kind -> (code, message) of a subscription reply."""


def gate_status(o: SimOrder) -> str:
    """``status`` of an order."""
    return STATUS[o.order.status]


def gate_finish_as(o: SimOrder) -> str:
    """``finish_as`` of an order."""
    if o.order.status is OrderStatus.EXPIRED:
        return EXPIRED_FINISH_AS[o.order.tif]
    return FINISH_AS[o.order.status]


def currency_pair_json(inst: Instrument) -> dict[str, Any]:
    """One ``currency_pairs`` element for an instrument."""
    return {
        "id": to_native(inst.symbol),
        "base": inst.base,
        "base_name": inst.base,
        "quote": inst.quote,
        "quote_name": inst.quote,
        # Gate publishes one fee, in percent; the simulator charges the catalog's own
        # maker/taker rates and shows the taker rate here.
        "fee": decimal_text(inst.taker_fee * 100),
        "min_base_amount": decimal_text(inst.min_qty),
        "min_quote_amount": decimal_text(inst.min_notional),
        "max_base_amount": "100000",
        "max_quote_amount": "5000000",
        "amount_precision": max(0, decimal_places(inst.lot, "lot", "Gate")),
        "precision": max(0, decimal_places(inst.tick, "tick", "Gate")),
        "trade_status": "tradable",
        "sell_start": 0,
        "buy_start": 0,
        "delisting_time": 0,
        "type": "normal",
        "trade_url": "",
        "st_tag": False,
    }


def _batch(body: bytes, *, least: int, most: int) -> list[Any]:
    """The items of a batch request's JSON array body (``least`` to ``most`` of them)."""
    try:
        reqs = msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise SimReject(SimError.BAD_BODY, "body") from None
    if not isinstance(reqs, list) or not least <= len(reqs) <= most:
        raise SimReject(SimError.BAD_BODY, "orders")
    return reqs


class _WsApiPayload(msgspec.Struct, kw_only=True):
    req_id: str = ""
    api_key: str = ""
    signature: str = ""
    timestamp: str = ""
    req_param: msgspec.Raw = msgspec.Raw(b"")


class _WsRequest(msgspec.Struct, kw_only=True):
    time: int = 0
    id: int | None = None
    channel: str = ""
    event: str = ""
    payload: Any = None
    auth: dict[str, str] | None = None


class _ApiError(Exception):
    def __init__(self, status: int, label: str, message: str):
        super().__init__(label)
        self.status = status
        self.label = label
        self.message = message


class GateServer(VenueServer):
    """The aiohttp application of the simulated Gate.io."""

    venue = VENUE
    order_paths = ORDER_PATHS
    to_native = staticmethod(to_native)

    def __init__(self, exchange: SimExchange, faults: FaultState, **options: Unpack[ServerOptions]):
        super().__init__(exchange, faults, **options)
        self.uids = {k: 10_000_000 + i for i, k in enumerate(exchange.accounts)}
        self._ws_api: dict[str, Callable[[str, Any], Any]] = {
            "spot.order_place": self._ws_place,
            "spot.order_cancel": self._ws_cancel,
            "spot.order_status": self._ws_status,
            "spot.order_cancel_ids": self._ws_cancel_ids,
            "spot.order_cancel_cp": self._ws_cancel_cp,
        }

    # ------------------------------------------------------------------ app
    def describe(self, inst: Instrument) -> dict[str, Any]:
        return currency_pair_json(inst)

    def middlewares(self) -> list[Middleware]:
        return [self._times]

    def add_routes(self, r: web.UrlDispatcher) -> None:
        s = f"{PREFIX}/spot"
        r.add_get(f"{s}/time", self.time)
        r.add_get(f"{s}/currency_pairs", self.currency_pairs)
        r.add_get(f"{s}/currency_pairs/{{pair}}", self.currency_pair)
        r.add_get(f"{PREFIX}/margin/currency_pairs", self.margin_currency_pairs)
        r.add_get(f"{s}/currencies", self.currencies)
        r.add_get(f"{s}/currencies/{{currency}}", self.currency)
        r.add_get(f"{s}/order_book", self.order_book)
        r.add_get(f"{s}/trades", self.trades)
        r.add_post(f"{s}/orders", self.place)
        r.add_get(f"{s}/orders", self.list_orders)
        r.add_delete(f"{s}/orders", self.cancel_all)
        r.add_get(f"{s}/orders/{{order_id}}", self.get_order)
        r.add_delete(f"{s}/orders/{{order_id}}", self.cancel)
        r.add_get(f"{s}/open_orders", self.open_orders)
        r.add_get(f"{s}/accounts", self.accounts)
        r.add_get(f"{s}/my_trades", self.my_trades)
        r.add_post(f"{s}/batch_orders", self.batch_orders)
        r.add_post(f"{s}/cancel_batch_orders", self.cancel_batch)
        r.add_post(f"{PREFIX}/withdrawals", self.withdraw)
        r.add_delete(f"{PREFIX}/withdrawals/{{withdrawal_id}}", self.cancel_withdraw)
        r.add_get(f"{PREFIX}/wallet/withdrawals", self.withdrawals)
        r.add_get(f"{PREFIX}/wallet/deposits", self.deposits)
        r.add_get(f"{PREFIX}/wallet/deposit_address", self.deposit_address)
        r.add_get(f"{PREFIX}/wallet/withdraw_status", self.withdraw_status)
        r.add_get(f"{PREFIX}/wallet/currency_chains", self.currency_chains)
        r.add_get("/ws/v4/", self.websocket)

    @web.middleware
    async def _times(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        t_in = self.now_ns() // 1000
        response = await handler(request)
        if not request.path.startswith("/ws") and not response.prepared:
            response.headers["X-In-Time"] = str(t_in)
            response.headers["X-Out-Time"] = str(self.now_ns() // 1000)
        return response

    # ------------------------------------------------------------------ helpers
    def _pair(self, value: str | None) -> str:
        return self._started(value, "currency_pair")

    async def _signed(self, request: web.Request) -> tuple[str, bytes]:
        """Verify ``KEY``/``Timestamp``/``SIGN``; return (api key, raw body)."""
        for name in ("KEY", "Timestamp", "SIGN"):
            if not request.headers.get(name):
                raise SimReject(SimError.MISSING_KEY, name)
        api_key = request.headers["KEY"]
        acct = self.exchange.accounts.get(api_key)
        if acct is None:
            raise SimReject(Rejection.BAD_KEY)
        ts = request.headers["Timestamp"]
        if not any(signing.timestamp_acceptable(ts, t / 1e9) for t in self.clock_times_ns()):
            raise SimReject(Rejection.TIMESTAMP_EXPIRED)
        body = await request.read()
        raw_query = request.raw_path.partition("?")[2]
        sign = request.headers["SIGN"]
        ok = any(
            signing.verify_request(acct.secret, request.method, request.path, q, body, ts, sign)
            for q in dict.fromkeys((raw_query, unquote(raw_query)))
        )
        if not ok:
            raise SimReject(Rejection.BAD_SIGNATURE)
        return api_key, body

    def _limit(self, kind: str, api_key: str, pair: str = "") -> dict[str, str]:
        """Count a request of ``kind`` (``place``, ``cancel``) of an API key on ``pair``;
        the rate-limit headers of the (first) limit it counts against."""
        now = time.monotonic_ns()
        breach = self.limiter.hit(kind, now, account=api_key, market=pair)
        headers: dict[str, str] = {}
        for lim in self.limiter.counted(kind)[:1]:
            remain, reset = self.limiter.remaining(lim, now, account=api_key, market=pair)
            reset_s = (self.now_ns() + reset - now) // 1_000_000_000
            headers = {
                "X-Gate-RateLimit-Requests-Remain": str(remain),
                "X-Gate-RateLimit-Limit": str(lim.limit),
                "X-Gate-RateLimit-Reset-Timestamp": str(reset_s),
            }
        if breach is not None:
            raise _Limited(headers)
        return headers

    def order_json(self, o: SimOrder) -> dict[str, Any]:
        """The Gate ``Order`` object."""
        order = o.order
        otype, _, account = o.venue_type.partition(":")
        inst = self.exchange.instruments[order.symbol]
        amount = o.quote_amount if o.quote_amount is not None else order.qty
        if o.quote_amount is not None:
            left = (
                o.quote_amount - order.quote_qty if order.status is not OrderStatus.FILLED else ZERO
            )
        else:
            left = order.remaining
        avg = order.avg_price
        return {
            "id": o.order_id,
            "text": o.client_id or DEFAULT_TEXT,
            "amend_text": "-",
            "create_time": str(o.create_ms // 1000),
            "update_time": str(o.update_ms // 1000),
            "create_time_ms": o.create_ms,
            "update_time_ms": o.update_ms,
            "status": gate_status(o),
            "currency_pair": o.native,
            "type": otype,
            "account": account or "spot",
            "side": SIDE_NAMES[order.side],
            "amount": decimal_text(amount),
            "price": decimal_text(order.price) if order.price is not None else "0",
            "time_in_force": TIF_NAMES[order.tif],
            "iceberg": "0",
            "left": decimal_text(left),
            "filled_amount": decimal_text(order.filled_qty),
            "fill_price": decimal_text(order.quote_qty),
            "filled_total": decimal_text(order.quote_qty),
            "avg_deal_price": decimal_text(avg) if avg is not None else "0",
            "fee": decimal_text(order.fee),
            "fee_currency": order.fee_asset or inst.quote,
            "point_fee": "0",
            "gt_fee": "0",
            "gt_maker_fee": "0",
            "gt_taker_fee": "0",
            "gt_discount": False,
            "rebated_fee": "0",
            "rebated_fee_currency": inst.quote,
            "stp_id": 0,
            "stp_act": "-",
            "finish_as": gate_finish_as(o),
        }

    def _place(self, api_key: str, req: Any) -> SimOrder:
        """Validate a Gate order body (dict) and place it."""
        if not isinstance(req, dict):
            raise SimReject(SimError.BAD_BODY, "order")
        symbol = self._pair(_s(req.get("currency_pair")))
        side = SIDES.get(_s(req.get("side")))
        if side is None:
            raise SimReject(
                SimError.MISSING_PARAM if "side" not in req else SimError.BAD_PARAM, "side"
            )
        type_name = _s(req.get("type")) or "limit"
        order_type = TYPES.get(type_name)
        if order_type is None:
            raise SimReject(SimError.BAD_PARAM, "type")
        account = _s(req.get("account")) or "spot"
        if account not in ACCOUNTS:
            raise SimReject(SimError.BAD_PARAM, "account")
        default_tif = "ioc" if order_type is OrderType.MARKET else "gtc"
        tif_name = _s(req.get("time_in_force")) or default_tif
        if tif_name not in TIME_IN_FORCE or (
            order_type is OrderType.MARKET and tif_name not in MARKET_TIFS
        ):
            raise SimReject(SimError.BAD_PARAM, "time_in_force")
        text = _s(req.get("text"))
        if text and not _TEXT.match(text):
            raise SimReject(SimError.INVALID_CLIENT_ID, text)
        amount = decimal_param(_s(req.get("amount")) or None, "amount")
        price = None
        qty: Decimal | None = amount
        quote: Decimal | None = None
        if order_type is OrderType.LIMIT:
            price = decimal_param(_s(req.get("price")) or None, "price")
        elif side is Side.BUY:
            # market buys are sized in quote currency
            qty, quote = None, amount
        return self.exchange.place(
            api_key,
            symbol,
            side,
            order_type,
            TIME_IN_FORCE[tif_name],
            qty=qty,
            price=price,
            quote_amount=quote,
            client_id=text or None,
            venue_type=f"{type_name}:{account}",
            native=to_native(symbol),
            fok_unfilled_is_error=True,
        )

    def _find(self, api_key: str, symbol: str, order_id: str) -> SimOrder | None:
        if order_id.startswith("t-"):
            return self.exchange.find(api_key, symbol, None, order_id)
        return self.exchange.find(api_key, symbol, order_id, None)

    def _cancel(self, api_key: str, symbol: str, order_id: str) -> SimOrder:
        o = self._find(api_key, symbol, order_id)
        if o is None:
            raise SimReject(SimError.CANCEL_UNKNOWN, order_id)
        return self.exchange.cancel(api_key, symbol, o.order_id, None)

    # ------------------------------------------------------------------ public REST
    async def time(self, request: web.Request) -> web.Response:
        return json_response({"server_time": self.now_ns() // 1_000_000})

    async def currency_pairs(self, request: web.Request) -> web.Response:
        return json_response([currency_pair_json(i) for i in self.exchange.instruments.values()])

    async def margin_currency_pairs(self, request: web.Request) -> web.Response:
        """The pairs open to margin trading: none (the simulator trades spot only); client
        libraries ask at start (ccxt merges the answer into its spot markets)."""
        return json_response([])

    async def currencies(self, request: web.Request) -> web.Response:
        """The assets of the served pairs (client libraries load them at start)."""
        return json_response([_currency(a) for a in self.exchange.assets()])

    async def currency(self, request: web.Request) -> web.Response:
        asset = request.match_info["currency"].upper()
        if asset not in self.exchange.assets():
            raise SimReject(SimError.BAD_PARAM, "currency")
        return json_response(_currency(asset))

    async def currency_pair(self, request: web.Request) -> web.Response:
        symbol = self._pair(request.match_info["pair"])
        return json_response(currency_pair_json(self.exchange.instruments[symbol]))

    async def order_book(self, request: web.Request) -> web.Response:
        symbol = self._pair(request.query.get("currency_pair"))
        limit = int_param(request.query, "limit", 10, minimum=1)
        state = self.market.symbols[symbol]
        now_ms = self.now_ns() // 1_000_000
        out: dict[str, Any] = {}
        if request.query.get("with_id", "").lower() == "true":
            out["id"] = state.version
        out.update(
            {
                "current": now_ms,
                "update": state.update_ms or now_ms,
                "asks": [list(lv) for lv in state.levels(Side.SELL, limit)],
                "bids": [list(lv) for lv in state.levels(Side.BUY, limit)],
            }
        )
        return json_response(out)

    async def trades(self, request: web.Request) -> web.Response:
        symbol = self._pair(request.query.get("currency_pair"))
        limit = min(int_param(request.query, "limit", 100, minimum=1), 1000)
        state = self.market.symbols[symbol]
        return json_response(
            [_public_trade(t, to_native(symbol)) for t in list(state.trades)[-limit:][::-1]]
        )

    # ------------------------------------------------------------------ trading REST
    async def place(self, request: web.Request) -> web.Response:
        api_key, body = await self._signed(request)
        try:
            req = msgspec.json.decode(body) if body else None
        except msgspec.DecodeError:
            raise SimReject(SimError.BAD_BODY, "body") from None
        pair = _s(req.get("currency_pair")) if isinstance(req, dict) else ""
        try:
            headers = self._limit("place", api_key, pair)
        except _Limited as e:
            return self._reject(SimReject(Rejection.RATE_LIMITED), e.headers)
        o = self._place(api_key, req)
        return json_response(self.order_json(o), status=201, headers=headers)

    async def batch_orders(self, request: web.Request) -> web.Response:
        api_key, body = await self._signed(request)
        reqs = _batch(body, least=1, most=10)
        out = []
        for req in reqs:
            text = _s(req.get("text")) if isinstance(req, dict) else ""
            pair = _s(req.get("currency_pair")) if isinstance(req, dict) else ""
            try:
                self._limit("place", api_key, pair)
                item = {**self.order_json(self._place(api_key, req)), "succeeded": True}
            except (SimReject, _Limited) as e:
                kind = e.kind if isinstance(e, SimReject) else Rejection.RATE_LIMITED
                label, message = _label(kind, e.detail if isinstance(e, SimReject) else "")
                item = {"text": text, "succeeded": False, "label": label, "message": message}
            out.append(item)
        return json_response(out)

    async def list_orders(self, request: web.Request) -> web.Response:
        api_key, _ = await self._signed(request)
        q = request.query
        symbol = self._pair(q.get("currency_pair"))
        status = q.get("status", "")
        if status not in ("open", "finished"):
            raise SimReject(SimError.MISSING_PARAM if not status else SimError.BAD_PARAM, "status")
        limit = int_param(q, "limit", 100, minimum=1)
        page = int_param(q, "page", 1, minimum=1)
        side = q.get("side")
        acct = self.exchange.account(api_key)
        orders = [
            o
            for o in acct.orders.values()
            if o.order.symbol == symbol
            and o.is_open == (status == "open")
            and (side is None or SIDE_NAMES[o.order.side] == side)
        ]
        orders.reverse()
        return json_response(
            [self.order_json(o) for o in orders[(page - 1) * limit : page * limit]]
        )

    async def get_order(self, request: web.Request) -> web.Response:
        api_key, _ = await self._signed(request)
        symbol = self._pair(request.query.get("currency_pair"))
        o = self._find(api_key, symbol, request.match_info["order_id"])
        if o is None:
            raise SimReject(Rejection.ORDER_NOT_FOUND)
        return json_response(self.order_json(o))

    async def cancel(self, request: web.Request) -> web.Response:
        api_key, _ = await self._signed(request)
        symbol = self._pair(request.query.get("currency_pair"))
        try:
            self.limiter_cancel(api_key)
        except _Limited as e:
            return self._reject(SimReject(Rejection.RATE_LIMITED), e.headers)
        o = self._cancel(api_key, symbol, request.match_info["order_id"])
        return json_response(self.order_json(o))

    def limiter_cancel(self, api_key: str) -> None:
        """Count a cancel against the venue's cancel limit."""
        self._limit("cancel", api_key)

    async def cancel_all(self, request: web.Request) -> web.Response:
        api_key, _ = await self._signed(request)
        symbol = self._pair(request.query.get("currency_pair"))
        side = request.query.get("side")
        out = []
        for o in self.exchange.open_orders(api_key, symbol):
            if side is not None and SIDE_NAMES[o.order.side] != side:
                continue
            self.exchange.cancel(api_key, symbol, o.order_id, None)
            out.append({**self.order_json(o), "succeeded": True, "label": "", "message": ""})
        return json_response(out)

    async def cancel_batch(self, request: web.Request) -> web.Response:
        api_key, body = await self._signed(request)
        reqs = _batch(body, least=0, most=20)
        return json_response([self._cancel_item(api_key, r) for r in reqs])

    def _cancel_item(self, api_key: str, req: Any) -> dict[str, Any]:
        pair = _s(req.get("currency_pair")) if isinstance(req, dict) else ""
        oid = _s(req.get("id")) if isinstance(req, dict) else ""
        item: dict[str, Any] = {"currency_pair": pair, "id": oid, "account": "spot"}
        try:
            o = self._cancel(api_key, self._pair(pair), oid)
            item.update(text=o.client_id or DEFAULT_TEXT, succeeded=True, label="", message="")
        except SimReject as e:
            label, message = _label(e.kind, e.detail)
            item.update(text="", succeeded=False, label=label, message=message)
        return item

    async def open_orders(self, request: web.Request) -> web.Response:
        api_key, _ = await self._signed(request)
        wanted = request.query.get("currency_pair")
        groups: dict[str, list[dict[str, Any]]] = {}
        for o in self.exchange.open_orders(api_key):
            if wanted and o.native != wanted.upper():
                continue
            groups.setdefault(o.native, []).append(self.order_json(o))
        return json_response(
            [{"currency_pair": p, "total": len(v), "orders": v} for p, v in groups.items()]
        )

    async def accounts(self, request: web.Request) -> web.Response:
        api_key, _ = await self._signed(request)
        wanted = request.query.get("currency")
        acct = self.exchange.account(api_key)
        return json_response(
            [
                {
                    "currency": a,
                    "available": decimal_text(f),
                    "locked": decimal_text(lk),
                    "update_id": 0,
                }
                for a, (f, lk) in acct.balances().items()
                if wanted is None or a == wanted.upper()
            ]
        )

    async def my_trades(self, request: web.Request) -> web.Response:
        api_key, _ = await self._signed(request)
        q = request.query
        symbol = self._pair(q["currency_pair"]) if q.get("currency_pair") else None
        order_id = q.get("order_id")
        limit = min(int_param(q, "limit", 100, minimum=1), 1000)
        start = int_param(q, "from", 0) * 1000
        end = int_param(q, "to", 2**40) * 1000 + 999
        acct = self.exchange.account(api_key)
        out = [
            _user_trade(t, with_user=None)
            for t in reversed(acct.trades)
            if (symbol is None or t.fill.symbol == symbol)
            and (not order_id or t.order_id == order_id)
            and start <= t.ts_ms <= end
        ]
        return json_response(out[:limit])

    # ------------------------------------------------------------------ wallet
    def _network(self) -> TransferNetwork:
        network = self.exchange.transfers
        if network is None:
            raise SimReject(SimError.UNKNOWN_ASSET, "no transfer network")
        return network

    async def withdraw(self, request: web.Request) -> web.Response:
        """``POST /withdrawals`` (JSON ``currency, amount, address, memo, chain,
        withdraw_order_id``): the withdrawal record, status ``REQUEST``. ``amount``
        includes the fee."""
        api_key, body = await self._signed(request)
        try:
            req = msgspec.json.decode(body) if body else None
        except msgspec.DecodeError:
            raise SimReject(SimError.BAD_BODY, "body") from None
        if not isinstance(req, dict):
            raise SimReject(SimError.BAD_BODY, "body")
        network = self._network()
        currency = _s(req.get("currency")).upper()
        if not currency:
            raise SimReject(SimError.MISSING_PARAM, "currency")
        chain = _s(req.get("chain"))
        if not chain:
            raise SimReject(SimError.MISSING_PARAM, "chain")  # required on Gate
        order_id = _s(req.get("withdraw_order_id"))
        if order_id and not _WITHDRAW_ORDER_ID.match(order_id):
            raise SimReject(SimError.BAD_PARAM, "withdraw_order_id")
        w = network.withdraw(
            VENUE,
            api_key,
            asset=currency,
            network=chain,
            address=_s(req.get("address")),
            amount=decimal_param(_s(req.get("amount")) or None, "amount"),
            memo=_s(req.get("memo")),
            client_id=order_id or None,
        )
        out = _withdrawal_json(w)
        return json_response(
            {
                k: out[k]
                for k in (
                    "id",
                    "txid",
                    "withdraw_order_id",
                    "timestamp",
                    "amount",
                    "currency",
                    "address",
                    "memo",
                    "status",
                    "chain",
                )
            }
            | {"fee_amount": out["fee"]}
        )

    async def cancel_withdraw(self, request: web.Request) -> web.Response:
        """``DELETE /withdrawals/{withdrawal_id}`` (``w<digits>``): the record, ``CANCEL``."""
        api_key, _ = await self._signed(request)
        wid = request.match_info["withdrawal_id"]
        if not (wid.startswith("w") and wid[1:].isdigit()):
            raise SimReject(SimError.WITHDRAWAL_NOT_FOUND, wid)
        w = self._network().cancel(VENUE, api_key, int(wid[1:]))
        return json_response(_withdrawal_json(w))

    def _window(self, q: Any, *, most: int) -> tuple[int, int, int, int]:
        now_s = self.now_ns() // 1_000_000_000
        start = int_param(q, "from", now_s - _WEEK_S)
        end = int_param(q, "to", now_s + 1)
        limit = min(int_param(q, "limit", 100, minimum=1), most)
        offset = int_param(q, "offset", 0)
        return start, end, limit, offset

    async def withdrawals(self, request: web.Request) -> web.Response:
        """``GET /wallet/withdrawals`` (``currency, withdraw_id, withdraw_order_id, from,
        to, limit, offset``), newest first; ``withdraw_id`` ignores the time window."""
        api_key, _ = await self._signed(request)
        q = request.query
        start, end, limit, offset = self._window(q, most=1000)
        currency = q.get("currency", "").upper()
        wid = q.get("withdraw_id", "")
        order_id = q.get("withdraw_order_id", "")
        out = []
        for w in reversed(self._network().of(VENUE, api_key)):
            if currency and w.asset != currency:
                continue
            if wid:
                if f"w{w.wid}" == wid:
                    out.append(_withdrawal_json(w))
                continue
            if order_id and w.client_id != order_id:
                continue
            if start <= w.ts_apply // 1_000_000_000 <= end:
                out.append(_withdrawal_json(w))
        return json_response(out[offset : offset + limit])

    async def deposits(self, request: web.Request) -> web.Response:
        """``GET /wallet/deposits`` (``currency, from, to, limit`` (at most 500),
        ``offset``), newest first."""
        api_key, _ = await self._signed(request)
        q = request.query
        start, end, limit, offset = self._window(q, most=500)
        currency = q.get("currency", "").upper()
        out = [
            _deposit_json(d)
            for d in reversed(self._network().deposits_of(VENUE, api_key))
            if (not currency or d.asset == currency) and start <= d.ts_seen // 1_000_000_000 <= end
        ]
        return json_response(out[offset : offset + limit])

    async def deposit_address(self, request: web.Request) -> web.Response:
        """``GET /wallet/deposit_address?currency=``: the address of every chain
        (``multichain_addresses``); ``address`` is the first chain's."""
        api_key, _ = await self._signed(request)
        network = self._network()
        currency = request.query.get("currency", "").upper()
        if not currency:
            raise SimReject(SimError.MISSING_PARAM, "currency")
        routes = network.networks(currency)
        if not routes:
            raise SimReject(SimError.UNKNOWN_ASSET, currency)
        chains = [
            {
                "chain": r.network,
                "address": network.address(VENUE, api_key, currency, r.network),
                "payment_id": "",
                "payment_name": "",
                "obtain_failed": 0,
            }
            for r in routes
        ]
        return json_response(
            {
                "currency": currency,
                "address": chains[0]["address"],
                "min_deposit_amount": "0",
                "multichain_addresses": chains,
            }
        )

    async def withdraw_status(self, request: web.Request) -> web.Response:
        """``GET /wallet/withdraw_status`` (optional ``currency``): fees per chain
        (``withdraw_fix_on_chains``) and the currency's minimum (``withdraw_amount_mini``:
        one per currency on Gate; the largest of its routes' minimums here)."""
        await self._signed(request)
        network = self._network()
        wanted = request.query.get("currency", "").upper()
        assets = sorted({a for a, _ in network.routes})
        if wanted:
            if wanted not in assets:
                raise SimReject(SimError.UNKNOWN_ASSET, wanted)
            assets = [wanted]
        out = []
        for a in assets:
            routes = network.networks(a)
            out.append(
                {
                    "currency": a,
                    "name": a,
                    "name_cn": a,
                    "deposit": "0",
                    "withdraw_percent": "0%",
                    "withdraw_fix": decimal_text(routes[0].fee),
                    "withdraw_day_limit": WITHDRAW_LIMIT,
                    "withdraw_amount_mini": decimal_text(max(r.minimum for r in routes)),
                    "withdraw_day_limit_remain": WITHDRAW_LIMIT,
                    "withdraw_eachtime_limit": WITHDRAW_LIMIT,
                    "withdraw_fix_on_chains": {r.network: decimal_text(r.fee) for r in routes},
                    "withdraw_percent_on_chains": {r.network: "0%" for r in routes},
                }
            )
        return json_response(out)

    async def currency_chains(self, request: web.Request) -> web.Response:
        """``GET /wallet/currency_chains?currency=`` (public): the currency's routes as
        chains, ``decimal`` the decimal places of the route's step."""
        network = self._network()
        wanted = request.query.get("currency", "").upper()
        if not wanted:
            raise SimReject(SimError.MISSING_PARAM, "currency")
        out = []
        for r in network.networks(wanted):
            exponent = r.step.normalize().as_tuple().exponent
            places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
            out.append(
                {
                    "chain": r.network,
                    "name_cn": r.network,
                    "name_en": r.network,
                    "contract_address": "",
                    "is_disabled": 0,
                    "is_deposit_disabled": 0,
                    "is_withdraw_disabled": 0,
                    "decimal": str(places),
                }
            )
        return json_response(out)

    # ------------------------------------------------------------------ WebSocket
    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = Connection(ws, request)
        self.connections.add(conn)
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    self._on_frame(conn, msg.data)
        finally:
            self.connections.discard(conn)
            await conn.close()
        return ws

    def _envelope(self, channel: str, event: str, **extra: Any) -> dict[str, Any]:
        now_ms = self.now_ns() // 1_000_000
        return {
            "time": now_ms // 1000,
            "time_ms": now_ms,
            "channel": channel,
            "event": event,
            **extra,
        }

    def _on_frame(self, conn: Connection, text: str) -> None:
        try:
            req = msgspec.json.decode(text, type=_WsRequest)
        except msgspec.ValidationError:
            req = _WsRequest()
        except msgspec.DecodeError:
            self._ws_error(conn, _WsRequest(), "bad_body")
            return
        if req.channel == "spot.ping":
            conn.send(_dump(self._envelope("spot.pong", "", result=None, id=req.id)))
            return
        if req.event == "api":
            self._ws_api_request(conn, text)
            return
        if req.event not in ("subscribe", "unsubscribe"):
            self._ws_error(conn, req, "bad_body")
            return
        if req.channel in PRIVATE_CHANNELS:
            api_key = self._channel_auth(req)
            if api_key is None:
                self._ws_error(conn, req, "auth")
                return
            conn.api_key = api_key
        elif req.channel not in PUBLIC_CHANNELS:
            self._ws_error(conn, req, "bad_argument")
            return
        items = self._parse_payload(req)
        if items is None:
            self._ws_error(conn, req, "bad_argument")
            return
        for topic, sub in items:
            if req.event == "subscribe":
                conn.topics[topic] = sub
            else:
                conn.topics.pop(topic, None)
        self._reply(conn, req, payload=req.payload, error=None, result={"status": "success"})
        if req.event == "subscribe" and req.channel == "spot.obu":
            for topic, (_, symbol, depth) in items:
                self._obu_full(conn, topic, symbol, int(depth))

    def _ws_error(self, conn: Connection, req: _WsRequest, kind: str) -> None:
        code, message = WS_ERRORS[kind]
        self._reply(conn, req, error={"code": code, "message": message}, result={"status": "fail"})

    def _reply(self, conn: Connection, req: _WsRequest, **fields: Any) -> None:
        """Answer a subscription request (its channel, event and id, then ``fields``)."""
        conn.send(_dump(self._envelope(req.channel, req.event, id=req.id, **fields)))

    def _channel_auth(self, req: _WsRequest) -> str | None:
        auth = req.auth or {}
        acct = self.exchange.accounts.get(auth.get("KEY", ""))
        if acct is None or auth.get("method") != "api_key":
            return None
        ok = signing.verify_channel_auth(
            acct.secret, req.channel, req.event, req.time, auth.get("SIGN", "")
        )
        return acct.api_key if ok else None

    def _parse_payload(self, req: _WsRequest) -> list[tuple[str, tuple[str, str, str]]] | None:
        payload = req.payload if isinstance(req.payload, list) else []
        items: list[tuple[str, tuple[str, str, str]]] = []
        ch = req.channel
        try:
            if ch == "spot.order_book_update":
                pair = str(payload[0])
                interval = str(payload[1]) if len(payload) > 1 else "100ms"
                if interval not in BOOK_INTERVALS:
                    return None
                items.append((f"{ch}|{pair}", (ch, self._pair(pair), interval)))
            elif ch == "spot.obu":
                for stream in payload:
                    pair, depth = parse_obu_stream(str(stream))
                    if depth not in (50, 400):
                        return None
                    items.append((f"{ch}|{stream}", (ch, self._pair(pair), str(depth))))
            elif ch == "spot.balances":
                items.append((ch, (ch, "", "")))
            else:
                for pair in payload:
                    symbol = "" if pair == "!all" else self._pair(str(pair))
                    items.append((f"{ch}|{pair}", (ch, symbol, "")))
        except (IndexError, ValueError, SimReject):
            return None
        return items or None

    def _obu_full(self, conn: Connection, topic: str, symbol: str, depth: int) -> None:
        state = self.market.symbols[symbol]
        result = {
            "t": self.now_ns() // 1_000_000,
            "full": True,
            "s": obu_stream(to_native(symbol), depth),
            "u": state.wire_version,
            "b": [list(lv) for lv in state.wire_levels(Side.BUY, depth)],
            "a": [list(lv) for lv in state.wire_levels(Side.SELL, depth)],
        }
        conn.send(_dump(self._envelope("spot.obu", "update", result=result)))

    # ------------------------------------------------------------------ WebSocket API
    def _ws_api_request(self, conn: Connection, text: str) -> None:
        try:
            req = msgspec.json.decode(text, type=_WsApiRequest)
        except msgspec.DecodeError:
            self._ws_error(conn, _WsRequest(channel="", event="api"), "bad_body")
            return
        p = req.payload
        raw_param = bytes(p.req_param)
        if req.channel == "spot.login":
            try:
                api_key = self._ws_api_auth(p, raw_param, req.channel)
            except _ApiError as e:
                self._api_reply(
                    conn, req, e.status, {"errs": {"label": e.label, "message": e.message}}
                )
                return
            conn.logged_in = api_key
            conn.api_key = api_key
            self._api_reply(
                conn, req, 200, {"result": {"api_key": api_key, "uid": str(self.uids[api_key])}}
            )
            return
        handler = self._ws_api.get(req.channel)
        if handler is None:
            self._api_reply(
                conn, req, 400, {"errs": {"label": "INVALID_PARAM_VALUE", "message": req.channel}}
            )
            return
        try:
            if p.signature:
                api_key = self._ws_api_auth(p, raw_param, req.channel)
            elif conn.logged_in is not None:
                api_key = conn.logged_in
            else:
                raise _ApiError(401, "INVALID_KEY", "not logged in")
            param = msgspec.json.decode(raw_param) if raw_param else None
            if req.channel == "spot.order_place":
                self._api_reply(
                    conn, req, 200, {"result": {"req_id": p.req_id, "req_header": None}}, ack=True
                )
            result = handler(api_key, param)
            if self.faults.take(WS_API_KINDS) is not None:
                return  # processed, but the reply is lost (fault ``lose_ws_reply``)
        except _ApiError as e:
            self._api_reply(conn, req, e.status, {"errs": {"label": e.label, "message": e.message}})
            return
        except SimReject as e:
            status, body, _ = reject_response(VENUE, e.kind, e.detail)
            err = msgspec.json.decode(body)
            self._api_reply(conn, req, status, {"errs": err})
            return
        except (msgspec.DecodeError, AttributeError, TypeError):
            label, message = _label(SimError.BAD_BODY, "req_param")
            self._api_reply(conn, req, 400, {"errs": {"label": label, "message": message}})
            return
        self._api_reply(conn, req, 200, {"result": result})

    def _ws_api_auth(self, p: _WsApiPayload, raw_param: bytes, channel: str) -> str:
        acct = self.exchange.accounts.get(p.api_key)
        if acct is None:
            raise _ApiError(401, "INVALID_KEY", "Invalid key provided")
        if not any(
            signing.timestamp_acceptable(p.timestamp, t / 1e9) for t in self.clock_times_ns()
        ):
            raise _ApiError(401, "REQUEST_EXPIRED", "Request timestamp expired")
        # sign what is sent; a login without req_param may sign "" (doc) or "{}" (clients)
        candidates = [raw_param.decode()] if raw_param else ["", "{}"]
        if not any(
            signing.verify_ws_api(acct.secret, channel, c, p.timestamp, p.signature)
            for c in candidates
        ):
            raise _ApiError(401, "INVALID_SIGNATURE", "Signature mismatch")
        return acct.api_key

    def _api_reply(
        self,
        conn: Connection,
        req: _WsApiRequest,
        status: int,
        data: dict[str, Any],
        *,
        ack: bool = False,
    ) -> None:
        now_ms = self.now_ns() // 1_000_000
        conn.send(
            _dump(
                {
                    "request_id": req.payload.req_id,
                    "ack": ack,
                    "header": {
                        "response_time": str(now_ms),
                        "status": str(status),
                        "channel": req.channel,
                        "event": "api",
                        "client_id": "127.0.0.1",
                        "conn_id": str(id(conn)),
                        "trace_id": "",
                        "x_in_time": now_ms * 1000,
                        "x_out_time": now_ms * 1000,
                    },
                    "data": data,
                }
            )
        )

    def _ws_place(self, api_key: str, param: Any) -> Any:
        orders = param if isinstance(param, list) else [param]
        out = []
        for req in orders:
            pair = _s(req.get("currency_pair")) if isinstance(req, dict) else ""
            try:
                self._limit("place", api_key, pair)
            except _Limited:
                raise SimReject(Rejection.RATE_LIMITED) from None
            out.append(self.order_json(self._place(api_key, req)))
        return out if isinstance(param, list) else out[0]

    def _ws_cancel(self, api_key: str, param: Any) -> Any:
        symbol = self._pair(_s(param.get("currency_pair")))
        return self.order_json(self._cancel(api_key, symbol, _s(param.get("order_id"))))

    def _ws_status(self, api_key: str, param: Any) -> Any:
        symbol = self._pair(_s(param.get("currency_pair")))
        o = self._find(api_key, symbol, _s(param.get("order_id")))
        if o is None:
            raise SimReject(Rejection.ORDER_NOT_FOUND)
        return self.order_json(o)

    def _ws_cancel_ids(self, api_key: str, param: Any) -> Any:
        return [self._cancel_item(api_key, r) for r in param]

    def _ws_cancel_cp(self, api_key: str, param: Any) -> Any:
        symbol = self._pair(_s(param.get("currency_pair")))
        side = param.get("side")
        out = []
        for o in self.exchange.open_orders(api_key, symbol):
            if side and SIDE_NAMES[o.order.side] != side:
                continue
            out.append(self.order_json(self.exchange.cancel(api_key, symbol, o.order_id, None)))
        return out

    # ------------------------------------------------------------------ pushes
    def _subscribers(self, channel: str, symbol: str) -> list[tuple[Connection, str, str]]:
        return [
            (conn, topic, param)
            for conn in self.connections
            for topic, (ch, s, param) in conn.topics.items()
            if ch == channel and (s == symbol or s == "")
        ]

    def on_market(self, event: MarketEvent) -> None:
        """Fan a market event out to the subscribed connections."""
        if not self.connections:
            return
        native = to_native(event.symbol)
        if isinstance(event, PublicTrade):
            frame = _dump(
                self._envelope("spot.trades", "update", result=_public_trade(event, native))
            )
            for conn, _, _ in self._subscribers("spot.trades", event.symbol):
                conn.send(frame)
            return
        state = self.market.symbols[event.symbol]
        subs = self._subscribers("spot.order_book_update", event.symbol)
        obu = self._subscribers("spot.obu", event.symbol)
        if subs or obu:

            def sender(ev: DepthUpdate) -> Callable[[], None]:
                update = self._book_update_frame(ev, native)
                obu_frames = {depth: self._obu_frame(ev, native, int(depth)) for _, _, depth in obu}

                def send() -> None:
                    for conn, _, _ in subs:
                        conn.send(update)
                    for conn, _, depth in obu:
                        conn.send(obu_frames[depth])

                return send

            self.stream_faults.emit(event.symbol, sender(event), lambda: sender(corrupted(event))())
        ticker_subs = self._subscribers("spot.book_ticker", event.symbol)
        if ticker_subs:
            frame = _dump(
                self._envelope("spot.book_ticker", "update", result=_ticker(event, native, state))
            )
            for conn, _, _ in ticker_subs:
                conn.send(frame)

    def _book_update_frame(self, ev: DepthUpdate, native: str) -> str:
        result = {
            "t": ev.ts_ms,
            "e": "depthUpdate",
            "E": ev.ts_ms // 1000,
            "s": native,
            "U": ev.first_id,
            "u": ev.last_id,
            "b": [list(lv) for lv in ev.bids],
            "a": [list(lv) for lv in ev.asks],
        }
        return _dump(self._envelope("spot.order_book_update", "update", result=result))

    def _obu_frame(self, ev: DepthUpdate, native: str, depth: int) -> str:
        result = {
            "t": ev.ts_ms,
            "s": obu_stream(native, depth),
            "U": ev.first_id,
            "u": ev.last_id,
            "b": [list(lv) for lv in ev.bids],
            "a": [list(lv) for lv in ev.asks],
        }
        return _dump(self._envelope("spot.obu", "update", result=result))

    def on_private(self, update: PrivateUpdate) -> None:
        """Push an account's order / trade / balance changes to its private subscribers."""
        conns = [c for c in self.connections if c.api_key == update.api_key]
        if not conns:
            return
        uid = self.uids[update.api_key]
        o = update.order
        symbol = o.order.symbol if o is not None else ""
        frames: list[tuple[str, str, str]] = []  # (channel, symbol, frame)
        if o is not None:
            item = {
                **self.order_json(o),
                "event": update.event,
                "user": uid,
                "create_time_ms": str(o.create_ms),
                "update_time_ms": str(o.update_ms),
            }
            frames.append(
                (
                    "spot.orders",
                    symbol,
                    _dump(self._envelope("spot.orders", "update", result=[item])),
                )
            )
        if update.fills:
            trades = [_user_trade(f, with_user=uid) for f in update.fills]
            frames.append(
                (
                    "spot.usertrades",
                    symbol,
                    _dump(self._envelope("spot.usertrades", "update", result=trades)),
                )
            )
        if update.balances:
            change_type = (
                _BALANCE_CHANGE.get(update.event, "order-match")
                if not update.fills
                else "order-match"
            )
            balances = [
                {
                    "timestamp": str(update.ts_ms // 1000),
                    "timestamp_ms": str(update.ts_ms),
                    "user": str(uid),
                    "currency": b.asset,
                    "change": decimal_text(b.free_change + b.locked_change),
                    "total": decimal_text(b.free + b.locked),
                    "available": decimal_text(b.free),
                    "freeze": decimal_text(b.locked),
                    "freeze_change": decimal_text(b.locked_change),
                    "change_type": change_type,
                }
                for b in update.balances
            ]
            frames.append(
                (
                    "spot.balances",
                    "",
                    _dump(self._envelope("spot.balances", "update", result=balances)),
                )
            )
        for conn in conns:
            for channel, sym, frame in frames:
                if any(
                    ch == channel and (s == "" or s == sym) for ch, s, _ in conn.topics.values()
                ):
                    conn.send(frame)


_BALANCE_CHANGE: dict[str, str] = {"put": "order-create", "finish": "order-cancel"}
"""Private update without fills -> ``spot.balances`` ``change_type``."""


class _WsApiRequest(msgspec.Struct, kw_only=True):
    time: int = 0
    id: int | None = None
    channel: str = ""
    event: str = ""
    payload: _WsApiPayload = msgspec.field(default_factory=_WsApiPayload)


class _Limited(Exception):
    def __init__(self, headers: dict[str, str]):
        super().__init__("rate limited")
        self.headers = headers


def _s(value: Any) -> str:
    """A JSON value as the string Gate reads (numbers accepted, None -> "")."""
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _label(kind: Any, detail: str) -> tuple[str, str]:
    _status, body, _ = reject_response(VENUE, kind, detail)
    data = msgspec.json.decode(body)
    return str(data["label"]), str(data["message"])


_ENCODER = msgspec.json.Encoder(decimal_format="string")


def _dump(data: dict[str, Any]) -> str:
    return _ENCODER.encode(data).decode()


def _currency(asset: str) -> dict[str, Any]:
    """A ``spot/currencies`` element: tradable, no chain (no deposits or withdrawals)."""
    return {
        "currency": asset,
        "name": asset,
        "delisted": False,
        "withdraw_disabled": True,
        "withdraw_delayed": False,
        "deposit_disabled": True,
        "trade_disabled": False,
        "fixed_rate": "",
        "chain": "",
        "chains": [],
    }


def _withdrawal_json(w: SimWithdrawal) -> dict[str, Any]:
    """A ``/wallet/withdrawals`` record (times in seconds, as strings)."""
    sent = w.stage in ("sent", "arrived")
    final = w.stage in ("arrived", "cancelled")
    return {
        "id": f"w{w.wid}",
        "txid": w.tx_id if sent else "",
        "block_number": str(w.wid) if w.stage == "arrived" else "0",
        "withdraw_order_id": w.client_id or "",
        "timestamp": str(w.ts_apply // 1_000_000_000),
        "amount": decimal_text(w.amount),
        "fee": decimal_text(w.fee),
        "currency": w.asset,
        "address": w.address,
        "type": "withdraw",
        "fail_reason": "",
        "timestamp2": str(w.ts_updated // 1_000_000_000) if final else "",
        "memo": w.memo,
        "status": WITHDRAW_STATUS[w.stage],
        "chain": w.network,
    }


def _deposit_json(d: SimDeposit) -> dict[str, Any]:
    """A ``/wallet/deposits`` record."""
    return {
        "id": f"d{d.did}",
        "txid": d.tx_id,
        "timestamp": str(d.ts_seen // 1_000_000_000),
        "amount": decimal_text(d.amount),
        "currency": d.asset,
        "address": d.address,
        "memo": d.memo,
        "status": DEPOSIT_STATUS[d.credited],
        "chain": d.network,
    }


def _public_trade(t: PublicTrade, native: str) -> dict[str, Any]:
    return {
        "id": t.trade_id,
        "create_time": t.ts_ms // 1000,
        "create_time_ms": f"{t.ts_ms}.000",
        "side": SIDE_NAMES[t.side],
        "currency_pair": native,
        "amount": t.qty,
        "price": t.price,
        "range": f"{t.trade_id}-{t.trade_id}",
        "sequence_id": str(t.trade_id),
    }


def _ticker(ev: DepthUpdate, native: str, state: SymbolState) -> dict[str, Any]:
    bid, ask = state.wire_touch()
    return {
        "t": ev.ts_ms,
        "u": ev.last_id,
        "s": native,
        "b": bid[0] if bid else "",
        "B": bid[1] if bid else "",
        "a": ask[0] if ask else "",
        "A": ask[1] if ask else "",
    }


def _user_trade(t: Any, *, with_user: int | None) -> dict[str, Any]:
    """An own trade: REST ``my_trades`` (``with_user`` None: the id is a string there) or
    the ``spot.usertrades`` push (with ``user_id``; the id is a number)."""
    f = t.fill
    out: dict[str, Any] = {
        "id": str(t.trade_id) if with_user is None else t.trade_id,
        "create_time": str(t.ts_ms // 1000),
        "create_time_ms": f"{t.ts_ms}.000",
        "currency_pair": t.native,
        "side": SIDE_NAMES[f.side],
        "role": "maker" if t.is_maker else "taker",
        "amount": decimal_text(f.qty),
        "price": decimal_text(f.price),
        "order_id": t.order_id,
        "fee": decimal_text(f.fee),
        "fee_currency": f.fee_asset,
        "point_fee": "0",
        "gt_fee": "0",
        "amend_text": "-",
        "sequence_id": str(t.trade_id),
        "text": t.client_id or DEFAULT_TEXT,
    }
    if with_user is not None:
        out["user_id"] = with_user
    return out
