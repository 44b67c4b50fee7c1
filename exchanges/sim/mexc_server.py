"""MEXC Spot v3 as the simulator serves it (PROTOCOLS.md A1-A7).

REST under ``/api/v3`` (signed endpoints verified with :mod:`exchanges.mexc.signing`,
rejections from :mod:`exchanges.mexc.errors`), WebSocket at ``/ws``: JSON control frames,
BINARY protobuf data frames built with :func:`exchanges.mexc.push.encode_push`, private
channels on ``/ws?listenKey=...``.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from decimal import ROUND_DOWN, Decimal
from typing import Any, Unpack
from urllib.parse import parse_qsl

import msgspec
from aiohttp import WSMsgType, web

from arbsim.core.model import ZERO, Instrument, OrderStatus, OrderType, Side, TimeInForce
from arbsim.core.rules import Rejection
from exchanges.mexc import signing
from exchanges.mexc import ws as mexc_ws
from exchanges.mexc.push import (
    AggreBookTicker,
    AggreDeal,
    AggreDeals,
    AggreDepth,
    LimitDepth,
    PrivateAccount,
    PrivateDeal,
    PrivateOrder,
    encode_push,
)
from exchanges.mexc.symbols import to_native
from exchanges.sim.errors import SimError, SimReject, int_param
from exchanges.sim.exchange import PrivateUpdate, SimExchange, SimOrder
from exchanges.sim.faults import FaultState
from exchanges.sim.hub import (
    Connection,
    corrupted,
    decimal_param,
    json_response,
)
from exchanges.sim.market import DAY_MS, DepthUpdate, MarketEvent, PublicTrade, SymbolState
from exchanges.sim.server import ServerOptions, VenueServer, decimal_places, decimal_text
from exchanges.sim.transfers import SimDeposit, SimWithdrawal, Stage, TransferNetwork

__all__ = [
    "ORDER_TYPES",
    "PB_STATUS",
    "TOPIC_PATTERNS",
    "MexcServer",
    "exchange_info_symbol",
    "mexc_status",
]

VENUE = "mexc"
PREFIX = "/api/v3"

ORDER_TYPES: dict[str, tuple[OrderType, TimeInForce, int]] = {
    "LIMIT": (OrderType.LIMIT, TimeInForce.GTC, 1),
    "LIMIT_MAKER": (OrderType.LIMIT, TimeInForce.POST_ONLY, 2),
    "IMMEDIATE_OR_CANCEL": (OrderType.LIMIT, TimeInForce.IOC, 3),
    "FILL_OR_KILL": (OrderType.LIMIT, TimeInForce.FOK, 4),
    "MARKET": (OrderType.MARKET, TimeInForce.IOC, 5),
}
"""MEXC ``type`` -> (order type, time in force, protobuf ``orderType``)."""

SIDES: dict[str, Side] = {"BUY": Side.BUY, "SELL": Side.SELL}
PB_SIDE: dict[Side, int] = {Side.BUY: 1, Side.SELL: 2}
TIME_IN_FORCE: dict[TimeInForce, str] = {
    TimeInForce.GTC: "GTC",
    TimeInForce.POST_ONLY: "GTC",
    TimeInForce.IOC: "IOC",
    TimeInForce.FOK: "FOK",
}

# (status, has fills) -> REST status
_STATUS: dict[tuple[OrderStatus, bool], str] = {
    (OrderStatus.ACCEPTED, False): "NEW",
    (OrderStatus.PARTIALLY_FILLED, True): "PARTIALLY_FILLED",
    (OrderStatus.FILLED, True): "FILLED",
    (OrderStatus.CANCELED, False): "CANCELED",
    (OrderStatus.CANCELED, True): "PARTIALLY_CANCELED",
    (OrderStatus.EXPIRED, False): "CANCELED",
    (OrderStatus.EXPIRED, True): "PARTIALLY_CANCELED",
}
PB_STATUS: dict[str, int] = {
    "NEW": 1,
    "FILLED": 2,
    "PARTIALLY_FILLED": 3,
    "CANCELED": 4,
    "PARTIALLY_CANCELED": 5,
}
"""REST status -> protobuf private-order ``status``."""

ACCOUNT_CHANGE_TYPES: dict[str, str] = {
    "put": "ENTRUST",
    "update": "CONTRACT",
    "finish": "ENTRUST_UNFROZEN",
}
"""Private update event -> ``PrivateAccountV3Api.type``."""

_SYM = r"([A-Z0-9]+)"
TOPIC_PATTERNS: dict[str, re.Pattern[str]] = {
    "depth": re.compile(rf"spot@public\.aggre\.depth\.v3\.api\.pb@(100ms|10ms)@{_SYM}$"),
    "deals": re.compile(rf"spot@public\.aggre\.deals\.v3\.api\.pb@(100ms|10ms)@{_SYM}$"),
    "book_ticker": re.compile(rf"spot@public\.aggre\.bookTicker\.v3\.api\.pb@(100ms|10ms)@{_SYM}$"),
    "limit_depth": re.compile(rf"spot@public\.limit\.depth\.v3\.api\.pb@{_SYM}@(5|10|20)$"),
}
"""Public topic kind -> pattern; groups give (interval, symbol) or (symbol, levels)."""

PRIVATE_TOPICS: dict[str, str] = {
    "spot@private.orders.v3.api.pb": "orders",
    "spot@private.deals.v3.api.pb": "deals",
    "spot@private.account.v3.api.pb": "account",
}

SIGNED_ORDER_PATHS = frozenset({("POST", f"{PREFIX}/order")})
WITHDRAW_PATHS = frozenset(
    {("POST", f"{PREFIX}/capital/withdraw"), ("POST", f"{PREFIX}/capital/withdraw/apply")}
)
"""The withdrawal requests: ``lose_ack`` faults act on them as on new orders."""

WITHDRAW_STATUS: dict[Stage, int] = {"held": 1, "sent": 6, "arrived": 7, "cancelled": 9}
"""Withdrawal stage -> MEXC withdraw-history ``status`` (1 APPLY, 2 AUDITING, 3 WAIT,
4 PROCESSING, 5 WAIT_PACKAGING, 6 WAIT_CONFIRM, 7 SUCCESS, 8 FAILED, 9 CANCEL, 10 MANUAL):
APPLY while held, WAIT_CONFIRM on its way, SUCCESS when it arrived."""

DEPOSIT_STATUS: dict[bool, int] = {False: 4, True: 5}
"""Credited -> MEXC deposit ``status`` (1 SMALL, 2 TIME_DELAY, 3 LARGE_DELAY, 4 PENDING,
5 SUCCESS, 6 AUDITING, 7 REJECTED)."""

_DAY_MS = 86_400_000
WITHDRAW_MAX = "1000000"
LISTEN_KEY_TTL_S = 3600.0
MAX_DEPTH = 5000
AVG_PRICE_MINS = 5
_PCT = Decimal("0.0001")  # priceChangePercent is a fraction with 4 places, cut (recorded)


def mexc_status(o: SimOrder) -> str:
    """REST ``status`` of an order."""
    return _STATUS[(o.order.status, o.order.filled_qty > 0)]


def exchange_info_symbol(inst: Instrument) -> dict[str, Any]:
    """One ``exchangeInfo`` symbol for an instrument (precisions from its tick and lot)."""
    quote_prec = decimal_places(inst.tick, "tick", "MEXC")
    base_prec = decimal_places(inst.lot, "lot", "MEXC")
    return {
        "symbol": to_native(inst.symbol),
        "status": "1",
        "baseAsset": inst.base,
        "baseAssetPrecision": base_prec,
        "quoteAsset": inst.quote,
        "quotePrecision": quote_prec,
        "quoteAssetPrecision": quote_prec,
        "baseCommissionPrecision": base_prec,
        "quoteCommissionPrecision": quote_prec,
        "orderTypes": ["LIMIT", "MARKET", "LIMIT_MAKER"],
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "quoteAmountPrecision": decimal_text(inst.min_notional),
        "baseSizePrecision": decimal_text(inst.min_qty),
        "permissions": ["SPOT"],
        "filters": [],
        "maxQuoteAmount": "2000000",
        "makerCommission": decimal_text(inst.maker_fee),
        "takerCommission": decimal_text(inst.taker_fee),
        "quoteAmountPrecisionMarket": decimal_text(inst.min_notional),
        "maxQuoteAmountMarket": "100000",
        "fullName": inst.base,
        "tradeSideType": 1,
    }


class MexcServer(VenueServer):
    """The aiohttp application of the simulated MEXC."""

    venue = VENUE
    order_paths = SIGNED_ORDER_PATHS | WITHDRAW_PATHS
    to_native = staticmethod(to_native)

    def __init__(self, exchange: SimExchange, faults: FaultState, **options: Unpack[ServerOptions]):
        super().__init__(exchange, faults, **options)
        self.listen_keys: dict[str, tuple[str, float]] = {}  # key -> (api key, expiry)

    # ------------------------------------------------------------------ app
    def describe(self, inst: Instrument) -> dict[str, Any]:
        return exchange_info_symbol(inst)

    def add_routes(self, r: web.UrlDispatcher) -> None:
        r.add_get(f"{PREFIX}/ping", self.ping)
        r.add_get(f"{PREFIX}/time", self.time)
        r.add_get(f"{PREFIX}/exchangeInfo", self.exchange_info)
        r.add_get(f"{PREFIX}/depth", self.depth)
        r.add_get(f"{PREFIX}/trades", self.trades)
        r.add_get(f"{PREFIX}/ticker/bookTicker", self.book_ticker)
        r.add_get(f"{PREFIX}/ticker/24hr", self.ticker_24hr)
        r.add_get(f"{PREFIX}/ticker/price", self.ticker_price)
        r.add_get(f"{PREFIX}/avgPrice", self.avg_price)
        r.add_get(f"{PREFIX}/aggTrades", self.agg_trades)
        r.add_get(f"{PREFIX}/capital/config/getall", self.coins)
        r.add_post(f"{PREFIX}/capital/withdraw", self.withdraw)
        r.add_post(f"{PREFIX}/capital/withdraw/apply", self.withdraw)
        r.add_delete(f"{PREFIX}/capital/withdraw", self.cancel_withdraw)
        r.add_get(f"{PREFIX}/capital/withdraw/history", self.withdraw_history)
        r.add_get(f"{PREFIX}/capital/deposit/hisrec", self.deposit_history)
        r.add_get(f"{PREFIX}/capital/deposit/address", self.deposit_address)
        r.add_post(f"{PREFIX}/order", self.place)
        r.add_post(f"{PREFIX}/order/test", self.place_test)
        r.add_delete(f"{PREFIX}/order", self.cancel)
        r.add_get(f"{PREFIX}/order", self.query)
        r.add_get(f"{PREFIX}/openOrders", self.open_orders)
        r.add_delete(f"{PREFIX}/openOrders", self.cancel_all)
        r.add_get(f"{PREFIX}/allOrders", self.all_orders)
        r.add_get(f"{PREFIX}/account", self.account)
        r.add_get(f"{PREFIX}/myTrades", self.my_trades)
        r.add_post(f"{PREFIX}/userDataStream", self.listen_key_create)
        r.add_put(f"{PREFIX}/userDataStream", self.listen_key_keepalive)
        r.add_delete(f"{PREFIX}/userDataStream", self.listen_key_close)
        r.add_get(f"{PREFIX}/userDataStream", self.listen_key_list)
        r.add_get("/ws", self.websocket)

    # ------------------------------------------------------------------ helpers
    def _symbol(self, params: dict[str, str]) -> str:
        return self._started(params.get("symbol", ""), "symbol")

    async def _signed(self, request: web.Request) -> tuple[str, dict[str, str]]:
        """Verify key, signature, recvWindow and timestamp; return (api key, params)."""
        raw_query = request.raw_path.partition("?")[2]
        body = await request.text()
        params = dict(parse_qsl(body, keep_blank_values=True))
        params.update(parse_qsl(raw_query, keep_blank_values=True))  # query wins
        api_key = request.headers.get(signing.API_KEY_HEADER, "")
        if not api_key:
            raise SimReject(SimError.MISSING_KEY)
        acct = self.exchange.accounts.get(api_key)
        if acct is None:
            raise SimReject(Rejection.BAD_KEY)
        if "signature" not in params:
            raise SimReject(SimError.MISSING_PARAM, "signature")
        if "timestamp" not in params:
            raise SimReject(SimError.MISSING_PARAM, "timestamp")
        try:
            ts = int(params["timestamp"])
            window = int(params.get("recvWindow", signing.DEFAULT_RECV_WINDOW))
        except ValueError:
            raise SimReject(SimError.BAD_PARAM, "timestamp") from None
        if window > signing.MAX_RECV_WINDOW:
            raise SimReject(SimError.RECV_WINDOW_TOO_LARGE)
        if not signing.verify(acct.secret, raw_query, body):
            raise SimReject(Rejection.BAD_SIGNATURE)
        if not any(
            signing.timestamp_acceptable(ts, t // 1_000_000, window) for t in self.clock_times_ns()
        ):
            raise SimReject(Rejection.TIMESTAMP_EXPIRED)
        return api_key, params

    def _limit(self, kind: str, api_key: str) -> None:
        """Count a request of ``kind`` (``place``, ``cancel``) of an API key."""
        breach = self.limiter.hit(kind, time.monotonic_ns(), account=api_key)
        if breach is not None:
            raise _RateLimited(max(0.001, breach.retry_ns / 1e9))

    def _order_json(self, o: SimOrder, full: bool = True) -> dict[str, Any]:
        order = o.order
        out: dict[str, Any] = {
            "symbol": o.native,
            "orderId": o.order_id,
            "orderListId": -1,
            "clientOrderId": o.client_id,
            "price": decimal_text(order.price) if order.price is not None else "0",
            "origQty": decimal_text(order.qty),
            "executedQty": decimal_text(order.filled_qty),
            "cummulativeQuoteQty": decimal_text(order.quote_qty),
            "status": mexc_status(o),
            "timeInForce": TIME_IN_FORCE[order.tif],
            "type": o.venue_type,
            "side": "BUY" if order.side is Side.BUY else "SELL",
        }
        if full:
            out.update(
                {
                    "stopPrice": None,
                    "icebergQty": None,
                    "time": o.create_ms,
                    "updateTime": o.update_ms,
                    "isWorking": True,
                    "origQuoteOrderQty": decimal_text(o.quote_amount or ZERO),
                }
            )
        return out

    # ------------------------------------------------------------------ public REST
    async def ping(self, request: web.Request) -> web.Response:
        return json_response({})

    async def time(self, request: web.Request) -> web.Response:
        return json_response({"serverTime": self.now_ns() // 1_000_000})

    async def exchange_info(self, request: web.Request) -> web.Response:
        wanted: list[str] | None = None
        if "symbol" in request.query:
            wanted = [request.query["symbol"].upper()]
        elif "symbols" in request.query:
            wanted = [s.upper() for s in request.query["symbols"].split(",") if s]
        symbols = []
        for native, symbol in self.natives.items():
            if wanted is None or native in wanted:
                symbols.append(exchange_info_symbol(self.exchange.instruments[symbol]))
        if wanted is not None and not symbols:
            raise SimReject(Rejection.INVALID_SYMBOL, ",".join(wanted))
        return json_response(
            {
                "timezone": "CST",
                "serverTime": self.now_ns() // 1_000_000,
                "rateLimits": [],
                "exchangeFilters": [],
                "symbols": symbols,
            }
        )

    async def depth(self, request: web.Request) -> web.Response:
        symbol = self._symbol(dict(request.query))
        limit = min(int_param(request.query, "limit", 100, minimum=1), MAX_DEPTH)
        state = self.market.symbols[symbol]
        return json_response(
            {
                "lastUpdateId": state.version,
                "bids": state.levels(Side.BUY, limit),
                "asks": state.levels(Side.SELL, limit),
                "timestamp": state.update_ms or self.now_ns() // 1_000_000,
            }
        )

    async def trades(self, request: web.Request) -> web.Response:
        symbol = self._symbol(dict(request.query))
        limit = min(int_param(request.query, "limit", 500, minimum=1), 1000)
        state = self.market.symbols[symbol]
        out = [
            {
                "id": None,
                "price": t.price,
                "qty": t.qty,
                "quoteQty": decimal_text(Decimal(t.price) * Decimal(t.qty)),
                "time": t.ts_ms,
                "isBuyerMaker": t.side is Side.SELL,
                "isBestMatch": True,
                "tradeType": "BID" if t.side is Side.BUY else "ASK",
            }
            for t in list(state.trades)[-limit:][::-1]
        ]
        return json_response(out)

    async def agg_trades(self, request: web.Request) -> web.Response:
        """Recent trades, newest first, one per trade (``a``/``f``/``l`` null and ``T`` to
        the second, as recorded from the venue)."""
        q = request.query
        symbol = self._symbol(dict(q))
        limit = min(int_param(q, "limit", 500, minimum=1), 1000)
        start = int_param(q, "startTime", 0)
        end = int_param(q, "endTime", 2**62)
        out = [
            {
                "a": None,
                "f": None,
                "l": None,
                "p": t.price,
                "q": t.qty,
                "T": t.ts_ms // 1000 * 1000,
                "m": t.side is Side.SELL,
                "M": True,
            }
            for t in reversed(self.market.symbols[symbol].trades)
            if start <= t.ts_ms <= end
        ]
        return json_response(out[:limit])

    async def coins(self, request: web.Request) -> web.Response:
        """``capital/config/getall`` (signed): the assets of the served symbols and of the
        transfer routes, each route a ``networkList`` entry (fee, minimum, step);
        client libraries load it at start."""
        await self._signed(request)
        network = self._network()
        assets = sorted(set(self.exchange.assets()) | {a for a, _ in network.routes})
        return json_response(
            [
                {
                    "coin": a,
                    "name": a,
                    "networkList": [
                        {
                            "coin": a,
                            "depositDesc": None,
                            "depositEnable": True,
                            "minConfirm": 0,
                            "name": a,
                            "network": r.network,
                            "withdrawEnable": True,
                            "withdrawFee": decimal_text(r.fee),
                            "withdrawIntegerMultiple": decimal_text(r.step),
                            "withdrawMax": WITHDRAW_MAX,
                            "withdrawMin": decimal_text(r.minimum),
                            "sameAddress": False,
                            "contract": "",
                            "withdrawTips": None,
                            "depositTips": None,
                            "netWork": r.network,
                        }
                        for r in network.networks(a)
                    ],
                }
                for a in assets
            ]
        )

    # ------------------------------------------------------------------ wallet
    def _network(self) -> TransferNetwork:
        network = self.exchange.transfers
        if network is None:
            raise SimReject(SimError.UNKNOWN_ASSET, "no transfer network")
        return network

    async def withdraw(self, request: web.Request) -> web.Response:
        """``POST capital/withdraw`` (``netWork``) and the older ``capital/withdraw/apply``
        (``network``): ``coin, withdrawOrderId, netWork|network, address, memo, amount,
        remark`` -> ``{"id": ...}``. ``amount`` includes the fee."""
        api_key, params = await self._signed(request)
        network = self._network()
        coin = params.get("coin", "").upper()
        if not coin:
            raise SimReject(SimError.MISSING_PARAM, "coin")
        chain = params.get("netWork") or params.get("network") or network.default_network(coin)
        amount = decimal_param(params.get("amount"), "amount")
        w = network.withdraw(
            VENUE,
            api_key,
            asset=coin,
            network=chain,
            address=params.get("address", ""),
            amount=amount,
            memo=params.get("memo", ""),
            client_id=params.get("withdrawOrderId") or None,
            remark=params.get("remark", ""),
        )
        return json_response({"id": str(w.wid)})

    async def cancel_withdraw(self, request: web.Request) -> web.Response:
        """``DELETE capital/withdraw?id=`` -> ``{"id": ...}`` (only before it left)."""
        api_key, params = await self._signed(request)
        wid = params.get("id", "")
        if not wid:
            raise SimReject(SimError.MISSING_PARAM, "id")
        if not wid.isdigit():
            raise SimReject(SimError.WITHDRAWAL_NOT_FOUND, wid)
        w = self._network().cancel(VENUE, api_key, int(wid))
        return json_response({"id": str(w.wid)})

    def _window(self, params: dict[str, str]) -> tuple[int, int, int]:
        now_ms = self.now_ns() // 1_000_000
        start = int_param(params, "startTime", now_ms - 90 * _DAY_MS)
        end = int_param(params, "endTime", now_ms + 1)
        limit = min(int_param(params, "limit", 1000, minimum=1), 1000)
        return start, end, limit

    async def withdraw_history(self, request: web.Request) -> web.Response:
        """``GET capital/withdraw/history`` (``coin, status, limit, startTime, endTime``),
        newest first; ``coin`` is answered as ``COIN-NETWORK`` (as recorded)."""
        api_key, params = await self._signed(request)
        start, end, limit = self._window(params)
        coin = params.get("coin", "").upper()
        status = params.get("status", "")
        out = []
        for w in reversed(self._network().of(VENUE, api_key)):
            ms = w.ts_apply // 1_000_000
            if coin and coin not in (w.asset, f"{w.asset}-{w.network}"):
                continue
            if status and status != str(WITHDRAW_STATUS[w.stage]):
                continue
            if start <= ms <= end:
                out.append(_withdrawal_json(w))
        return json_response(out[:limit])

    async def deposit_history(self, request: web.Request) -> web.Response:
        """``GET capital/deposit/hisrec`` (``coin, status, limit, startTime, endTime``),
        newest first."""
        api_key, params = await self._signed(request)
        start, end, limit = self._window(params)
        coin = params.get("coin", "").upper()
        status = params.get("status", "")
        out = []
        for d in reversed(self._network().deposits_of(VENUE, api_key)):
            ms = d.ts_seen // 1_000_000
            if coin and coin not in (d.asset, f"{d.asset}-{d.network}"):
                continue
            if status and status != str(DEPOSIT_STATUS[d.credited]):
                continue
            if start <= ms <= end:
                out.append(_deposit_json(d))
        return json_response(out[:limit])

    async def deposit_address(self, request: web.Request) -> web.Response:
        """``GET capital/deposit/address`` (``coin``, optional ``network``): a list of
        ``{coin, network, address, memo, netWork}``."""
        api_key, params = await self._signed(request)
        network = self._network()
        coin = params.get("coin", "").upper()
        if not coin:
            raise SimReject(SimError.MISSING_PARAM, "coin")
        routes = network.networks(coin)
        wanted = params.get("network") or params.get("netWork")
        if wanted:
            routes = [r for r in routes if r.network == wanted]
        if not routes:
            raise SimReject(SimError.UNKNOWN_ASSET, f"{coin} {wanted or ''}".strip())
        return json_response(
            [
                {
                    "coin": coin,
                    "network": r.network,
                    "address": network.address(VENUE, api_key, coin, r.network),
                    "memo": None,
                    "netWork": r.network,
                }
                for r in routes
            ]
        )

    def _ticker(self, symbol: str) -> dict[str, Any]:
        bid, ask = self.market.symbols[symbol].touch()
        return {
            "symbol": to_native(symbol),
            "bidPrice": bid[0] if bid else None,
            "bidQty": bid[1] if bid else None,
            "askPrice": ask[0] if ask else None,
            "askQty": ask[1] if ask else None,
        }

    async def book_ticker(self, request: web.Request) -> web.Response:
        if "symbol" in request.query:
            return json_response(self._ticker(self._symbol(dict(request.query))))
        return json_response([self._ticker(s) for s in self.market.symbols])

    def _one_or_all(
        self, request: web.Request, make: Callable[[str], dict[str, Any]]
    ) -> web.Response:
        """``symbol`` given: its object; otherwise a list over every symbol (MEXC ignores
        ``symbols`` on these endpoints: the list answers it)."""
        if "symbol" in request.query:
            return json_response(make(self._symbol(dict(request.query))))
        return json_response([make(s) for s in self.market.symbols])

    def _24hr(self, symbol: str) -> dict[str, Any]:
        state = self.market.symbols[symbol]
        now = self.now_ns() // 1_000_000
        day = state.stats.window(now, DAY_MS)
        last = state.last_price() or ZERO
        open_ = day.open if day is not None else last
        change = last - open_
        pct = (change / open_).quantize(_PCT, ROUND_DOWN) if open_ else ZERO
        bid, ask = state.touch()
        return {
            "symbol": to_native(symbol),
            "priceChange": decimal_text(change),
            "priceChangePercent": decimal_text(pct),
            "prevClosePrice": decimal_text(open_),
            "lastPrice": decimal_text(last),
            "bidPrice": bid[0] if bid else None,
            "bidQty": bid[1] if bid else None,
            "askPrice": ask[0] if ask else None,
            "askQty": ask[1] if ask else None,
            "openPrice": decimal_text(open_),
            "highPrice": decimal_text(day.high if day is not None else last),
            "lowPrice": decimal_text(day.low if day is not None else last),
            "volume": decimal_text(day.volume if day is not None else ZERO),
            "quoteVolume": decimal_text(day.quote_volume if day is not None else ZERO),
            "openTime": now - DAY_MS,
            "closeTime": now,
            "count": None,
        }

    async def ticker_24hr(self, request: web.Request) -> web.Response:
        return self._one_or_all(request, self._24hr)

    def _price(self, symbol: str) -> dict[str, Any]:
        last = self.market.symbols[symbol].last_price()
        return {"symbol": to_native(symbol), "price": decimal_text(last or ZERO)}

    async def ticker_price(self, request: web.Request) -> web.Response:
        return self._one_or_all(request, self._price)

    async def avg_price(self, request: web.Request) -> web.Response:
        symbol = self._symbol(dict(request.query))
        state = self.market.symbols[symbol]
        window = state.stats.window(self.now_ns() // 1_000_000, AVG_PRICE_MINS * 60_000)
        if window is not None and window.volume:
            price = (window.quote_volume / window.volume).quantize(state.inst.tick)
        else:
            price = state.last_price() or ZERO
        return json_response({"mins": AVG_PRICE_MINS, "price": decimal_text(price)})

    # ------------------------------------------------------------------ trading REST
    def _parse_order(self, params: dict[str, str]) -> dict[str, Any]:
        symbol = self._symbol(params)
        side = SIDES.get(params.get("side", "").upper())
        if side is None:
            raise SimReject(
                SimError.MISSING_PARAM if "side" not in params else SimError.BAD_PARAM, "side"
            )
        type_name = params.get("type", "").upper()
        if type_name not in ORDER_TYPES:
            raise SimReject(
                SimError.MISSING_PARAM if "type" not in params else SimError.BAD_PARAM, "type"
            )
        order_type, tif, _ = ORDER_TYPES[type_name]
        qty: Decimal | None = None
        quote: Decimal | None = None
        price: Decimal | None = None
        if order_type is OrderType.MARKET:
            if params.get("quantity"):
                qty = decimal_param(params["quantity"], "quantity")
            elif params.get("quoteOrderQty"):
                quote = decimal_param(params["quoteOrderQty"], "quoteOrderQty")
            else:
                raise SimReject(SimError.MISSING_PARAM, "quantity")
        else:
            qty = decimal_param(params.get("quantity"), "quantity")
            price = decimal_param(params.get("price"), "price")
        return {
            "symbol": symbol,
            "side": side,
            "order_type": order_type,
            "tif": tif,
            "qty": qty,
            "price": price,
            "quote_amount": quote,
            "client_id": params.get("newClientOrderId") or None,
            "venue_type": type_name,
            "native": to_native(symbol),
        }

    async def place(self, request: web.Request) -> web.Response:
        api_key, params = await self._signed(request)
        try:
            self._limit("place", api_key)
        except _RateLimited as e:
            return self._reject(SimReject(Rejection.RATE_LIMITED), retry_after=e.retry_after)
        args = self._parse_order(params)
        o = self.exchange.place(api_key, **args)
        order = o.order
        return json_response(
            {
                "symbol": o.native,
                "orderId": o.order_id,
                "orderListId": -1,
                "price": decimal_text(order.price) if order.price is not None else "0",
                "origQty": decimal_text(order.qty),
                "type": o.venue_type,
                "side": "BUY" if order.side is Side.BUY else "SELL",
                "transactTime": o.create_ms,
            }
        )

    async def place_test(self, request: web.Request) -> web.Response:
        _, params = await self._signed(request)
        self._parse_order(params)
        return json_response({})

    def _ids(self, params: dict[str, str]) -> tuple[str | None, str | None]:
        order_id = params.get("orderId") or None
        client_id = params.get("origClientOrderId") or None
        if order_id is None and client_id is None:
            raise SimReject(SimError.NO_ORDER_ID)
        return order_id, client_id

    async def cancel(self, request: web.Request) -> web.Response:
        api_key, params = await self._signed(request)
        try:
            self._limit("cancel", api_key)
        except _RateLimited as e:
            return self._reject(SimReject(Rejection.RATE_LIMITED), retry_after=e.retry_after)
        symbol = self._symbol(params)
        order_id, client_id = self._ids(params)
        o = self.exchange.cancel(api_key, symbol, order_id, client_id)
        out = self._order_json(o, full=False)
        out["origClientOrderId"] = o.client_id
        return json_response(out)

    async def query(self, request: web.Request) -> web.Response:
        api_key, params = await self._signed(request)
        symbol = self._symbol(params)
        order_id, client_id = self._ids(params)
        o = self.exchange.find(api_key, symbol, order_id, client_id)
        if o is None:
            raise SimReject(Rejection.ORDER_NOT_FOUND)
        return json_response(self._order_json(o))

    async def open_orders(self, request: web.Request) -> web.Response:
        api_key, params = await self._signed(request)
        symbol = self._symbol(params) if params.get("symbol") else None
        return json_response(
            [self._order_json(o) for o in self.exchange.open_orders(api_key, symbol)]
        )

    async def cancel_all(self, request: web.Request) -> web.Response:
        api_key, params = await self._signed(request)
        try:
            self._limit("cancel", api_key)
        except _RateLimited as e:
            return self._reject(SimReject(Rejection.RATE_LIMITED), retry_after=e.retry_after)
        natives = [s for s in params.get("symbol", "").split(",") if s]
        if not natives:
            raise SimReject(SimError.MISSING_PARAM, "symbol")
        out = []
        for native in natives[:5]:
            symbol = self._symbol({"symbol": native})
            for o in self.exchange.open_orders(api_key, symbol):
                self.exchange.cancel(api_key, symbol, o.order_id, None)
                item = self._order_json(o, full=False)
                item["origClientOrderId"] = o.client_id
                out.append(item)
        return json_response(out)

    async def all_orders(self, request: web.Request) -> web.Response:
        api_key, params = await self._signed(request)
        symbol = self._symbol(params)
        now_ms = self.now_ns() // 1_000_000
        start = int_param(params, "startTime", now_ms - 86_400_000)
        end = int_param(params, "endTime", now_ms + 1)
        limit = min(int_param(params, "limit", 500, minimum=1), 1000)
        acct = self.exchange.account(api_key)
        orders = [
            o
            for o in acct.orders.values()
            if o.order.symbol == symbol and start <= o.create_ms <= end
        ]
        return json_response([self._order_json(o) for o in orders[-limit:]])

    async def account(self, request: web.Request) -> web.Response:
        api_key, _ = await self._signed(request)
        acct = self.exchange.account(api_key)
        return json_response(
            {
                "makerCommission": None,
                "takerCommission": None,
                "buyerCommission": None,
                "sellerCommission": None,
                "canTrade": True,
                "canWithdraw": True,
                "canDeposit": True,
                "updateTime": None,
                "accountType": "SPOT",
                "balances": [
                    {"asset": a, "free": decimal_text(f), "locked": decimal_text(lk)}
                    for a, (f, lk) in acct.balances().items()
                    if f or lk
                ],
                "permissions": ["SPOT"],
            }
        )

    async def my_trades(self, request: web.Request) -> web.Response:
        api_key, params = await self._signed(request)
        symbol = self._symbol(params)
        order_id = params.get("orderId")
        limit = min(int_param(params, "limit", 100, minimum=1), 100)
        start = int_param(params, "startTime", 0)
        end = int_param(params, "endTime", 2**62)
        acct = self.exchange.account(api_key)
        out = []
        for t in acct.trades:
            f = t.fill
            if f.symbol != symbol or (order_id and t.order_id != order_id):
                continue
            if not start <= t.ts_ms <= end:
                continue
            out.append(
                {
                    "symbol": t.native,
                    "id": str(t.trade_id),
                    "orderId": t.order_id,
                    "orderListId": -1,
                    "price": decimal_text(f.price),
                    "qty": decimal_text(f.qty),
                    "quoteQty": decimal_text(f.price * f.qty),
                    "commission": decimal_text(f.fee),
                    "commissionAsset": f.fee_asset,
                    "time": t.ts_ms,
                    "isBuyer": f.side is Side.BUY,
                    "isMaker": t.is_maker,
                    "isBestMatch": True,
                    "isSelfTrade": False,
                    "clientOrderId": t.client_id,
                }
            )
        return json_response(out[-limit:])

    # ------------------------------------------------------------------ listen keys
    async def listen_key_create(self, request: web.Request) -> web.Response:
        api_key, _ = await self._signed(request)
        key = secrets.token_hex(32)
        self.listen_keys[key] = (api_key, time.monotonic() + LISTEN_KEY_TTL_S)
        return json_response({"listenKey": key})

    def _own_listen_key(self, api_key: str, params: dict[str, str]) -> str:
        key = params.get("listenKey", "")
        if not key:
            raise SimReject(SimError.MISSING_PARAM, "listenKey")
        owner = self.listen_keys.get(key)
        if owner is None or owner[0] != api_key:
            raise SimReject(SimError.INVALID_LISTEN_KEY)
        return key

    async def listen_key_keepalive(self, request: web.Request) -> web.Response:
        api_key, params = await self._signed(request)
        key = self._own_listen_key(api_key, params)
        self.listen_keys[key] = (api_key, time.monotonic() + LISTEN_KEY_TTL_S)
        return json_response({"listenKey": key})

    async def listen_key_close(self, request: web.Request) -> web.Response:
        api_key, params = await self._signed(request)
        key = self._own_listen_key(api_key, params)
        del self.listen_keys[key]
        for conn in list(self.connections):
            if conn.logged_in == key:
                conn.drop()
        return json_response({"listenKey": key})

    async def listen_key_list(self, request: web.Request) -> web.Response:
        api_key, _ = await self._signed(request)
        keys = [k for k, (owner, _) in self.listen_keys.items() if owner == api_key]
        return json_response({"listenKey": keys})

    # ------------------------------------------------------------------ WebSocket
    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        listen_key = request.query.get("listenKey")
        api_key: str | None = None
        if listen_key is not None:
            owner = self.listen_keys.get(listen_key)
            if owner is None or owner[1] < time.monotonic():
                await ws.send_str("Invalid listen key")
                await ws.close()
                return ws
            api_key = owner[0]
        conn = Connection(ws, request, api_key)
        conn.logged_in = listen_key
        self.connections.add(conn)
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    self._control(conn, msg.data)
        finally:
            self.connections.discard(conn)
            await conn.close()
        return ws

    def _control(self, conn: Connection, text: str) -> None:
        try:
            req = msgspec.json.decode(text, type=_WsRequest)
        except msgspec.DecodeError:
            conn.send(_text(mexc_ws.ControlReply(code=0, msg="Wrong format")))
            return
        method = req.method.upper()
        if method == "PING":
            conn.send(mexc_ws.pong_frame().decode())
            return
        if method not in ("SUBSCRIPTION", "UNSUBSCRIPTION"):
            conn.send(_text(mexc_ws.ControlReply(id=req.id, code=0, msg="Wrong format")))
            return
        accepted: list[str] = []
        for topic in req.params:
            parsed = self._parse_topic(conn, topic)
            if parsed is None:
                conn.send(mexc_ws.blocked_frame(topic).decode())
                continue
            if method == "SUBSCRIPTION":
                conn.topics[topic] = parsed
            else:
                conn.topics.pop(topic, None)
            accepted.append(topic)
        if accepted:
            conn.send(_text(mexc_ws.ControlReply(id=req.id, code=0, msg=",".join(accepted))))

    def _parse_topic(self, conn: Connection, topic: str) -> tuple[str, str, str] | None:
        private = PRIVATE_TOPICS.get(topic)
        if private is not None:
            return (private, "", "") if conn.api_key is not None else None
        for kind, pattern in TOPIC_PATTERNS.items():
            m = pattern.match(topic)
            if m is None:
                continue
            a, b = m.group(1), m.group(2)
            native, param = (a, b) if kind == "limit_depth" else (b, a)
            symbol = self.natives.get(native)
            return None if symbol is None else (kind, symbol, param)
        return None

    # ------------------------------------------------------------------ pushes
    def _subscribers(self, kind: str, symbol: str) -> list[tuple[Connection, str, str]]:
        return [
            (conn, topic, param)
            for conn in self.connections
            for topic, (k, s, param) in conn.topics.items()
            if k == kind and s == symbol
        ]

    def on_market(self, event: MarketEvent) -> None:
        """Fan a market event out to the subscribed connections as protobuf frames."""
        if not self.connections:
            return
        state = self.market.symbols[event.symbol]
        native = to_native(event.symbol)
        if isinstance(event, PublicTrade):
            self._push_trade(event, native)
            return
        subs = self._subscribers("depth", event.symbol)
        if subs:

            def sender(ev: DepthUpdate) -> Callable[[], None]:
                frames = {
                    topic: encode_push(_depth_frame(topic, native, ev)) for _, topic, _ in subs
                }

                def send() -> None:
                    for conn, topic, _ in subs:
                        conn.send(frames[topic])

                return send

            self.stream_faults.emit(event.symbol, sender(event), lambda: sender(corrupted(event))())
        for conn, topic, levels in self._subscribers("limit_depth", event.symbol):
            conn.send(encode_push(_limit_frame(topic, native, event, state, int(levels))))
        bid, ask = state.wire_touch()
        for conn, topic, _ in self._subscribers("book_ticker", event.symbol):
            conn.send(
                encode_push(
                    AggreBookTicker(
                        channel=topic,
                        symbol=native,
                        send_time=event.ts_ms,
                        bid_price=bid[0] if bid else "",
                        bid_quantity=bid[1] if bid else "",
                        ask_price=ask[0] if ask else "",
                        ask_quantity=ask[1] if ask else "",
                        version=event.last_id,
                    )
                )
            )

    def _push_trade(self, trade: PublicTrade, native: str) -> None:
        for conn, topic, _ in self._subscribers("deals", trade.symbol):
            conn.send(
                encode_push(
                    AggreDeals(
                        channel=topic,
                        symbol=native,
                        send_time=trade.ts_ms,
                        deals=[
                            AggreDeal(
                                price=trade.price,
                                quantity=trade.qty,
                                trade_type=PB_SIDE[trade.side],
                                time=trade.ts_ms,
                            )
                        ],
                        event_type=_event_type(topic),
                    )
                )
            )

    def on_private(self, update: PrivateUpdate) -> None:
        """Push an account's order / deal / balance changes to its private subscribers."""
        conns = [c for c in self.connections if c.api_key == update.api_key]
        if not conns:
            return
        frames: dict[str, list[bytes]] = {"orders": [], "deals": [], "account": []}
        o = update.order
        if o is not None:
            frames["orders"].append(encode_push(_private_order(o, update)))
        for f in update.fills:
            fill = f.fill
            frames["deals"].append(
                encode_push(
                    PrivateDeal(
                        channel="spot@private.deals.v3.api.pb",
                        symbol=f.native,
                        send_time=update.ts_ms,
                        price=decimal_text(fill.price),
                        quantity=decimal_text(fill.qty),
                        amount=decimal_text(fill.price * fill.qty),
                        trade_type=PB_SIDE[fill.side],
                        is_maker=f.is_maker,
                        trade_id=str(f.trade_id),
                        client_order_id=f.client_id or "",
                        order_id=f.order_id,
                        fee_amount=decimal_text(fill.fee),
                        fee_currency=fill.fee_asset,
                        time=f.ts_ms,
                    )
                )
            )
        for b in update.balances:
            frames["account"].append(
                encode_push(
                    PrivateAccount(
                        channel="spot@private.account.v3.api.pb",
                        send_time=update.ts_ms,
                        vcoin_name=b.asset,
                        coin_id=b.asset,
                        balance_amount=decimal_text(b.free),
                        balance_amount_change=decimal_text(b.free_change),
                        frozen_amount=decimal_text(b.locked),
                        frozen_amount_change=decimal_text(b.locked_change),
                        type=ACCOUNT_CHANGE_TYPES[update.event],
                        time=update.ts_ms,
                    )
                )
            )
        for conn in conns:
            for kind, _, _ in list(conn.topics.values()):
                for frame in frames.get(kind, []):
                    conn.send(frame)


class _RateLimited(Exception):
    def __init__(self, retry_after: float):
        super().__init__(retry_after)
        self.retry_after = retry_after


class _WsRequest(msgspec.Struct, frozen=True, kw_only=True):
    method: str
    params: list[str] = msgspec.field(default_factory=list)
    id: int = 0


def _text(reply: mexc_ws.ControlReply) -> str:
    return msgspec.json.encode(reply).decode()


def _event_type(topic: str) -> str:
    """The body's ``eventType``: the topic without its symbol (as in the wire vector)."""
    return topic.rpartition("@")[0]


def _withdrawal_json(w: SimWithdrawal) -> dict[str, Any]:
    """A ``capital/withdraw/history`` element (strings as recorded from the venue)."""
    sent = w.stage in ("sent", "arrived")
    return {
        "id": str(w.wid),
        "txId": f"{w.tx_id}:0" if sent else None,
        "coin": f"{w.asset}-{w.network}",
        "network": w.network,
        "address": w.address,
        "amount": decimal_text(w.amount),
        "transferType": "0",
        "status": str(WITHDRAW_STATUS[w.stage]),
        "transactionFee": decimal_text(w.fee),
        "confirmNo": None,
        "applyTime": str(w.ts_apply // 1_000_000),
        "remark": w.remark,
        "memo": w.memo or None,
        "explorerUrl": "",
        "transHash": w.tx_id if sent else None,
        "updateTime": str(w.ts_updated // 1_000_000),
        "netWork": w.network,
        "withdrawOrderId": w.client_id,
    }


def _deposit_json(d: SimDeposit) -> dict[str, Any]:
    """A ``capital/deposit/hisrec`` element."""
    return {
        "amount": decimal_text(d.amount),
        "coin": f"{d.asset}-{d.network}",
        "network": d.network,
        "status": str(DEPOSIT_STATUS[d.credited]),
        "address": d.address,
        "txId": f"{d.tx_id}:0",
        "insertTime": str(d.ts_seen // 1_000_000),
        "unlockConfirm": "1",
        "confirmTimes": "1" if d.credited else "0",
        "memo": d.memo or None,
        "transHash": d.tx_id,
        "updateTime": str((d.ts_credit if d.credited else d.ts_seen) // 1_000_000),
        "netWork": d.network,
    }


def _depth_frame(topic: str, native: str, ev: DepthUpdate) -> AggreDepth:
    return AggreDepth(
        channel=topic,
        symbol=native,
        send_time=ev.ts_ms,
        asks=ev.asks,
        bids=ev.bids,
        event_type=_event_type(topic),
        from_version=ev.first_id,
        to_version=ev.last_id,
    )


def _limit_frame(
    topic: str, native: str, ev: DepthUpdate, state: SymbolState, levels: int
) -> LimitDepth:
    return LimitDepth(
        channel=topic,
        symbol=native,
        send_time=ev.ts_ms,
        asks=state.wire_levels(Side.SELL, levels),
        bids=state.wire_levels(Side.BUY, levels),
        event_type=_event_type(topic),
        version=ev.last_id,
    )


def _private_order(o: SimOrder, update: PrivateUpdate) -> PrivateOrder:
    order = o.order
    price = order.price if order.price is not None else ZERO
    avg = order.avg_price
    last = update.fills[-1].fill.qty if update.fills else None
    status = mexc_status(o)
    return PrivateOrder(
        channel="spot@private.orders.v3.api.pb",
        symbol=o.native,
        send_time=update.ts_ms,
        id=o.order_id,
        client_id=o.client_id or "",
        price=decimal_text(price),
        quantity=decimal_text(order.qty),
        amount=decimal_text(price * order.qty),
        avg_price=decimal_text(avg) if avg is not None else "0",
        order_type=ORDER_TYPES[o.venue_type][2],
        trade_type=PB_SIDE[order.side],
        is_maker=bool(update.fills) and update.fills[-1].is_maker,
        remain_amount=decimal_text(price * order.remaining),
        remain_quantity=str(order.remaining if status in ("NEW", "PARTIALLY_FILLED") else ZERO),
        last_deal_quantity=decimal_text(last) if last is not None else None,
        cumulative_quantity=decimal_text(order.filled_qty),
        cumulative_amount=decimal_text(order.quote_qty),
        status=PB_STATUS[status],
        order_create_time=o.create_ms,
    )
