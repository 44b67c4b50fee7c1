"""The :class:`Context` a strategy's callbacks receive: venues, the engine clock, tasks and
timers, order entry through the risk gate, and the run's records."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import msgspec

from arbsim.core.book import OrderBook
from arbsim.core.errors import OutcomeUnknown, VenueError
from arbsim.core.model import Balances, Instrument, Order, OrderRequest, Side, to_decimal
from arbsim.core.ports import Venue
from arbsim.runtime.latency import LatencyRecorder
from arbsim.runtime.ledger import Ledger
from arbsim.runtime.recorder import RunRecorder
from arbsim.runtime.risk import RiskDenied, RiskManager

if TYPE_CHECKING:
    from arbsim.runtime.engine import Engine


class Context:
    """Everything a strategy may touch: venues, the clock, order entry, risk, records."""

    def __init__(self, engine: Engine):
        self._engine = engine
        self.venues: dict[str, Venue] = engine.venues
        self.risk: RiskManager = engine.risk
        self.ledger: Ledger = engine.ledger
        self.latency: LatencyRecorder = engine.latency
        self.recorder: RunRecorder = engine.recorder
        self._ids = itertools.count(1)

    # ---------------------------------------------------------------- time & tasks
    def now_ns(self) -> int:
        return self._engine.clock.now_ns()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[Any]:
        """Run ``coro`` as a tracked task; an exception in it stops the run."""
        return self._engine.spawn(coro, name)

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> asyncio.TimerHandle:
        return self._engine.loop.call_later(delay_s, self._engine.guard, fn)

    def every(self, interval_s: float, fn: Callable[[], None]) -> None:
        """Call ``fn`` every ``interval_s`` seconds of engine time until the run stops."""
        loop = self._engine.loop

        def tick() -> None:
            if self._engine.stopping:
                return
            self._engine.guard(fn)
            loop.call_later(interval_s, tick)

        loop.call_later(interval_s, tick)

    # ---------------------------------------------------------------- data
    def instrument(self, venue: str, symbol: str) -> Instrument:
        return self.venues[venue].instrument(symbol)

    def book(self, venue: str, symbol: str) -> OrderBook:
        return self.venues[venue].book(symbol)

    # ---------------------------------------------------------------- requests
    def new_client_order_id(self) -> str:
        return f"{self._engine.id_prefix}{next(self._ids):07d}"

    async def fetch_balances(self, venue: str) -> Balances:
        t0 = self.now_ns()
        try:
            return await self.venues[venue].fetch_balances()
        finally:
            self.latency.record("fetch_balances", venue, t0, self.now_ns() - t0)

    async def place_order(self, req: OrderRequest, *, reducing: bool = False) -> Order:
        """Send an order through the risk gate; records it, its latency and its outcome.

        Raises :class:`~arbsim.runtime.risk.RiskDenied` when the gate refuses, or the venue's
        error when it rejects.
        """
        if not req.client_order_id:
            req = msgspec.structs.replace(req, client_order_id=self.new_client_order_id())
        now = self.now_ns()
        inst = self.instrument(req.venue, req.symbol)
        price = req.price
        if price is None:
            # a market order is priced at the touch it would take, for the notional limit
            book = self.book(req.venue, req.symbol)
            touch = book.best_ask if req.side is Side.BUY else book.best_bid
            if touch is None:
                d = self.risk.deny(now, "no_price", f"{req.venue} {req.symbol}: empty book")
                raise RiskDenied(d.reason, d.detail)
            price = to_decimal(touch)
        notional = req.quote_order_qty if req.quote_order_qty is not None else req.qty * price
        self.risk.check_order(now, notional, reducing=reducing)
        self.recorder.order_sent(req, now)
        self._engine.order_opened(req.client_order_id)
        try:
            order = await self.venues[req.venue].place_order(req)
        except VenueError as e:
            self.recorder.order_rejected(req, self.now_ns(), e)
            if not isinstance(e, OutcomeUnknown):
                self._engine.order_closed(req.client_order_id)
            raise
        finally:
            self.latency.record("place", inst.venue, now, self.now_ns() - now)
        if not order.is_open:
            self._engine.order_closed(order.client_order_id)
        self.recorder.order_acked(order, self.now_ns())
        return order

    async def cancel_order(self, venue: str, symbol: str, client_order_id: str) -> Order:
        t0 = self.now_ns()
        try:
            return await self.venues[venue].cancel_order(symbol, client_order_id)
        finally:
            self.latency.record("cancel", venue, t0, self.now_ns() - t0)

    async def fetch_order(self, venue: str, symbol: str, client_order_id: str) -> Order:
        t0 = self.now_ns()
        try:
            return await self.venues[venue].fetch_order(symbol, client_order_id)
        finally:
            self.latency.record("fetch_order", venue, t0, self.now_ns() - t0)
