"""Pieces both venue servers share: WebSocket connections with a writer task each, stream
faults on depth updates, REST fault middleware, JSON responses and the ``/_sim`` admin API.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec
from aiohttp import web
from aiohttp.typedefs import Middleware

from arbsim.core.model import Side
from exchanges.sim.config import FaultKind, FaultRule
from exchanges.sim.errors import SimError, SimReject, int_param
from exchanges.sim.exchange import SimExchange
from exchanges.sim.faults import REST_KINDS, STREAM_KINDS, FaultState
from exchanges.sim.market import DepthUpdate, MarketReplay

__all__ = [
    "Connection",
    "Handler",
    "StreamFaulter",
    "add_admin_routes",
    "corrupted",
    "decimal_param",
    "fault_middleware",
    "json_response",
]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_encoder = msgspec.json.Encoder(decimal_format="string")


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON answer (Decimals as strings)."""
    return web.Response(
        body=_encoder.encode(data),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def decimal_param(value: str | None, name: str, *, positive: bool = True) -> Decimal:
    """A decimal request parameter, or a BAD_PARAM rejection naming it."""
    if value is None or value == "":
        raise SimReject(SimError.MISSING_PARAM, name)
    try:
        d = Decimal(value)
    except (InvalidOperation, ValueError):
        raise SimReject(SimError.BAD_PARAM, name) from None
    if not d.is_finite() or (positive and d <= 0):
        raise SimReject(SimError.BAD_PARAM, name)
    return d


class Connection:
    """One WebSocket client: its subscriptions and an outgoing queue drained by a task."""

    def __init__(self, ws: web.WebSocketResponse, request: web.Request, api_key: str | None = None):
        self.ws = ws
        self._transport = request.transport
        self.api_key = api_key
        self.topics: dict[str, tuple[str, str, str]] = {}  # topic -> (kind, symbol, param)
        self.logged_in: str | None = None
        self._queue: asyncio.Queue[bytes | str | None] = asyncio.Queue()
        self._writer = asyncio.get_running_loop().create_task(self._write())

    def send(self, frame: bytes | str) -> None:
        """Queue a frame: ``str`` goes out as a text frame, ``bytes`` as a binary frame."""
        if not self.ws.closed:
            self._queue.put_nowait(frame)

    async def _write(self) -> None:
        while True:
            frame = await self._queue.get()
            if frame is None:
                return
            try:
                if isinstance(frame, str):
                    await self.ws.send_str(frame)
                else:
                    await self.ws.send_bytes(frame)
            except (ConnectionError, RuntimeError):
                return

    async def close(self) -> None:
        """Stop the writer (pending frames are dropped)."""
        self._queue.put_nowait(None)
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer

    def drop(self) -> None:
        """Cut the connection without a closing handshake (fault ``drop_ws``)."""
        if self._transport is not None:
            self._transport.abort()


def corrupted(update: DepthUpdate) -> DepthUpdate:
    """``update`` with its first level's price replaced by text that is not a number (the
    ``garbage`` fault)."""
    if update.bids:
        return msgspec.structs.replace(update, bids=[("garbage", "1"), *update.bids[1:]])
    if update.asks:
        return msgspec.structs.replace(update, asks=[("garbage", "1"), *update.asks[1:]])
    return msgspec.structs.replace(update, bids=[("garbage", "1")])


class StreamFaulter:
    """Applies ``skip_seq`` / ``duplicate`` / ``reorder`` / ``garbage`` to depth updates of a
    venue."""

    def __init__(self, faults: FaultState):
        self.faults = faults
        self._held: dict[str, Callable[[], None]] = {}

    def emit(
        self,
        symbol: str,
        send: Callable[[], None],
        corrupt: Callable[[], None] | None = None,
    ) -> None:
        """Send one depth update (``send`` pushes it to every subscriber; ``corrupt`` pushes
        a corrupt copy of it, for ``garbage``)."""
        held = self._held.pop(symbol, None)
        rule = self.faults.take(STREAM_KINDS)
        kind = rule.kind if rule is not None else ""
        if kind == "reorder" and held is None:
            self._held[symbol] = send
            return
        if kind == "garbage" and corrupt is not None:
            corrupt()
        sends = {"skip_seq": 0, "duplicate": 2}.get(kind, 1)
        for _ in range(sends):
            send()
        if held is not None:
            held()


def fault_middleware(faults: FaultState, order_paths: frozenset[tuple[str, str]]) -> Middleware:
    """REST faults: ``http_status``, ``timeout`` and (on ``order_paths``) ``lose_ack``.

    ``/_sim`` admin routes are never faulted.
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path.startswith("/_sim") or request.headers.get("Upgrade", "").lower() == "websocket":
            return await handler(request)
        rule = faults.take(_EARLY_KINDS, request.method, path)
        if rule is None:
            slow = faults.take(_SLOW, request.method, path)
            if slow is not None:
                response = await handler(request)
                await asyncio.sleep(slow.delay_s)
                return response
            if (request.method, path) not in order_paths:
                return await handler(request)
            # lose_ack only fires on an order the venue accepted
            lost = faults.take(_LATE_KINDS, request.method, path, consume=False)
            response = await handler(request)
            if lost is None or response.status >= 300:
                return response
            faults.consume(lost)
            if lost.status == 0:
                if request.transport is not None:
                    request.transport.abort()
                return web.Response(status=599)
            return web.Response(status=lost.status, text=f"HTTP {lost.status} (ack lost)")
        if rule.kind == "timeout":
            await asyncio.sleep(rule.delay_s)
            return web.Response(status=504, text="Gateway Time-out")
        # a rate limit says when to come back, as the venues do
        headers = {"Retry-After": "1"} if rule.status == 429 else None
        return web.Response(
            status=rule.status, text=f"HTTP {rule.status} (injected)", headers=headers
        )

    return middleware


_EARLY_KINDS: frozenset[FaultKind] = REST_KINDS - {"lose_ack", "slow"}
_SLOW: frozenset[FaultKind] = frozenset({"slow"})
_LATE_KINDS: frozenset[FaultKind] = frozenset({"lose_ack"})


class _TradeInjection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    symbol: str
    side: str
    price: str
    qty: str


class _FaultRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    faults: list[FaultRule]


def add_admin_routes(
    app: web.Application,
    exchange: SimExchange,
    market: MarketReplay,
    faults: FaultState,
    requests: dict[str, int] | None = None,
) -> None:
    """``/_sim`` endpoints (not part of any venue API).

    - ``GET /_sim/faults``: pending faults and how often each kind fired;
    - ``POST /_sim/faults``: ``{"faults": [FaultRule, ...]}`` or one FaultRule;
    - ``DELETE /_sim/faults``: forget pending faults;
    - ``POST /_sim/step?n=N``: apply the next N catalog messages now;
    - ``POST /_sim/trade``: ``{"symbol":"BTC/USDT","side":"sell","price":..,"qty":..}``, a
      public trade that only the matching engine sees (fills resting orders);
    - ``GET /_sim/state``: the replay clock (offset, origin, speed, pace, window, lap:
      ``exchange_ms = ts_exchange_ns // 1e6 + offset_ms + lap * lap_ns // 1e6``), books'
      update ids and account balances;
    - ``GET /_sim/ledger``: every account's orders, fills, balances, withdrawals and
      deposits as the venue keeps them;
    - ``GET /_sim/requests``: how many requests each venue route received
      (``"POST /api/v3/capital/withdraw": 1``).
    """

    async def get_faults(request: web.Request) -> web.Response:
        return json_response({"pending": faults.pending(), "fired": faults.fired})

    async def post_faults(request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            if raw.lstrip().startswith(b"{") and b'"faults"' in raw:
                rules = msgspec.json.decode(raw, type=_FaultRequest).faults
            else:
                rules = [msgspec.json.decode(raw, type=FaultRule)]
        except msgspec.DecodeError as e:
            return json_response({"error": str(e)}, status=400)
        for rule in rules:
            faults.add(rule)
        return json_response({"pending": faults.pending(), "fired": faults.fired})

    async def delete_faults(request: web.Request) -> web.Response:
        faults.clear()
        return json_response({"pending": []})

    async def step(request: web.Request) -> web.Response:
        n = int_param(request.query, "n", 1)
        events = market.step(n)
        return json_response({"applied": len(events), "ended": market.ended})

    async def trade(request: web.Request) -> web.Response:
        try:
            t = msgspec.json.decode(await request.read(), type=_TradeInjection)
            side = {"buy": Side.BUY, "sell": Side.SELL}[t.side.lower()]
            fills = exchange.inject_trade(t.symbol, side, Decimal(t.price), Decimal(t.qty))
        except (msgspec.DecodeError, KeyError, InvalidOperation, SimReject) as e:
            return json_response({"error": str(e)}, status=400)
        return json_response({"fills": fills})

    async def state(request: web.Request) -> web.Response:
        return json_response(
            {
                "venue": exchange.venue,
                "paused": market.paused,
                "messages": market.messages,
                "clock": {**market.clock.state(), "lap": market.lap},
                "books": {
                    s: {"update_id": st.version, "bid": st.book.best_bid, "ask": st.book.best_ask}
                    for s, st in market.symbols.items()
                },
                "accounts": {
                    k: {a: [str(f), str(lk)] for a, (f, lk) in acct.balances().items()}
                    for k, acct in exchange.accounts.items()
                },
            }
        )

    app.router.add_get("/_sim/faults", get_faults)
    app.router.add_post("/_sim/faults", post_faults)
    app.router.add_delete("/_sim/faults", delete_faults)
    app.router.add_post("/_sim/step", step)
    app.router.add_post("/_sim/trade", trade)

    async def ledger(request: web.Request) -> web.Response:
        """The simulator's own record of every account: each order as the venue keeps it
        (client id, order id, status, quantities), each fill with its trade id, and each
        withdrawal and deposit (amount, fee, stage, times), so a client's records can be
        judged against the venue's."""
        return json_response(
            {
                key: {
                    "orders": [
                        {
                            "client_id": o.client_id or "",
                            "order_id": oid,
                            "symbol": o.order.symbol,
                            "side": int(o.order.side),
                            "status": o.order.status.value,
                            "qty": str(o.order.qty),
                            "filled_qty": str(o.order.filled_qty),
                        }
                        for oid, o in acct.orders.items()
                    ],
                    "fills": [
                        {
                            "trade_id": str(f.trade_id),
                            "client_id": f.client_id or "",
                            "order_id": f.order_id,
                            "price": str(f.fill.price),
                            "qty": str(f.fill.qty),
                            "fee": str(f.fill.fee),
                            "fee_asset": f.fill.fee_asset,
                        }
                        for o in acct.orders.values()
                        for f in o.fills
                    ],
                    "balances": {a: [str(f), str(lk)] for a, (f, lk) in acct.balances().items()},
                    **(
                        exchange.transfers.ledger(exchange.venue, key)
                        if exchange.transfers is not None
                        else {"withdrawals": [], "deposits": []}
                    ),
                }
                for key, acct in exchange.accounts.items()
            }
        )

    async def request_counts(request: web.Request) -> web.Response:
        return json_response(dict(requests or {}))

    app.router.add_get("/_sim/state", state)
    app.router.add_get("/_sim/ledger", ledger)
    app.router.add_get("/_sim/requests", request_counts)
