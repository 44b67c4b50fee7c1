"""Order entry of the simulated venues (replay and paper), written once.

A request sent at local time ``t`` reaches the shared :class:`MatchingEngine` at
``t + entry`` and its answer reaches the client at ``arrival + response`` (latencies
sampled per request kind); requests and answers of one venue stay FIFO. Answers and
private pushes update the client's copy of the order through
:func:`exchanges.simulated.matching.apply_exec_event` and go to the sink.

Subclasses say what "now" is and how to run a callback at a given time: the replay venue
on its virtual-time loop, the paper venue for real.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from arbsim.core.book import OrderBook
from arbsim.core.errors import InvalidSymbol, NetworkError, OutcomeUnknown, VenueError
from arbsim.core.model import Balances, Order, OrderRequest, OrderStatus, Trade
from arbsim.core.ports import MarketSink
from arbsim.core.rules import VenueRules
from arbsim.runtime.latency import LatencyModel
from exchanges.simulated.fills import FaultModel
from exchanges.simulated.matching import Account, ExecEvent, MatchingEngine, apply_exec_event
from exchanges.simulated.rules import RequestLimiter

T = TypeVar("T")


class NullSink:
    """The sink of a simulated venue before :meth:`start` and after :meth:`stop`: drops
    everything."""

    def on_book(self, venue: str, book: OrderBook) -> None:
        return None

    def on_trade(self, venue: str, trade: Trade) -> None:
        return None

    def on_order(self, order: Order) -> None:
        return None


class SimulatedOrderEntry(abc.ABC):
    """The order side of a simulated venue (see the module docstring).

    Subclasses set ``name``, ``account``, ``latency``, ``rules``, ``sink`` and fill
    ``_engines`` (symbol -> matching engine), and implement :meth:`_now`,
    :meth:`_at_exchange` and :meth:`_at_client`.
    """

    name: str
    #: requests and queries reach the simulated exchange in order: not found is final
    order_expiry_ns = 0
    account: Account
    faults: FaultModel
    latency: LatencyModel
    rules: VenueRules
    sink: MarketSink

    def _init_order_entry(self) -> None:
        self._engines: dict[str, MatchingEngine] = {}
        self._client: dict[str, Order] = {}
        self._limiter = RequestLimiter(self.rules.rate_limits)
        self._last_arrival = 0
        self._last_response = 0

    # ---------------------------------------------------------------- clock hooks
    @abc.abstractmethod
    def _now(self) -> int:
        """The venue's clock (ns)."""

    @abc.abstractmethod
    def _at_exchange(self, ts: int, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn(*args)`` when a request reaches the exchange at ``ts``."""

    @abc.abstractmethod
    def _at_client(self, ts: int, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn(*args)`` when an answer or push reaches the client at ``ts``."""

    # ---------------------------------------------------------------- timelines
    def _arrival(self, now: int, entry_ns: int) -> int:
        # one client connection: a later request never overtakes an earlier one
        t = max(now + entry_ns, self._last_arrival + 1)
        self._last_arrival = t
        return t

    def _response(self, at: int, response_ns: int) -> int:
        t = max(at + response_ns, self._last_response + 1)
        self._last_response = t
        return t

    async def _round_trip(
        self,
        kind: str,
        at_exchange: Callable[[int], T],
        on_response: Callable[[T], None] | None = None,
    ) -> T:
        """Run ``at_exchange`` when the request reaches the exchange; answer after the
        response latency (raising what it raised, as the venue's error answer).

        ``on_response`` runs when the answer arrives even if the caller stopped
        waiting (a timed-out request still changes the client's order state).

        A request the fault model picks gets no answer: ``lost_answer`` takes effect at
        the exchange (what ``on_response`` would apply reaches the client through the
        private stream instead) and the caller learns that the outcome is unknown when
        the answer was due; ``timeout`` never reaches the exchange and the caller gives up
        after the configured timeout."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        entry_ns, response_ns = self.latency.sample(kind)
        arrival = self._arrival(self._now(), entry_ns)
        fault = self.faults.draw(kind)
        if fault == "timeout":
            lost = self._unknown(kind, "timeout", f"no answer in {self.faults.cfg.timeout_s}s")
            loop.call_later(self.faults.cfg.timeout_s, _fail, fut, lost)
            return await fut

        def on_arrival() -> None:
            # the exchange time of the arrival: the venue runs this once the exchange is
            # there (the replay venue exactly at it, the paper venue once its feed is)
            at = arrival
            try:
                result = at_exchange(at)
            except Exception as e:  # the venue's error answer (or a bug: never hang)
                err = self._unknown(kind, "lost_answer", "answer lost") if fault else e
                self._at_client(self._response(at, response_ns), _fail, fut, err)
                return
            if fault == "lost_answer":
                if on_response is not None and self.faults.cfg.witness:
                    push_ns = self.latency.sample("push")[1]
                    self._at_client(self._response(at, push_ns), on_response, result)
                lost = self._unknown(kind, "lost_answer", "answer lost")
                self._at_client(self._response(at, response_ns), _fail, fut, lost)
                return
            self._at_client(self._response(at, response_ns), answer, result)

        def answer(result: T) -> None:
            try:
                if on_response is not None:
                    on_response(result)
            finally:
                _succeed(fut, result)

        self._at_exchange(arrival, on_arrival)
        return await fut

    def _unknown(self, kind: str, code: str, why: str) -> VenueError:
        """What a client sees of a request without an answer: an order or cancel may have
        taken effect (query it); any other request simply failed and may be retried."""
        if kind in ("place", "cancel"):
            return OutcomeUnknown(f"{kind}: {why}", code=code, venue=self.name)
        return NetworkError(f"{kind}: {why}", code=code, venue=self.name)

    def push(self, events: list[ExecEvent], ts: int) -> None:
        """Private-stream updates produced at exchange time ``ts`` reach the client later."""
        self._at_client(self._response(ts, self.latency.sample("push")[1]), self._deliver, events)

    def _deliver(self, events: list[ExecEvent]) -> None:
        now = self._now()
        for ev in events:
            order = self._client.get(ev.client_order_id)
            if order is None:
                continue
            apply_exec_event(order, ev, now)
            self.sink.on_order(order.snapshot())

    def _engine(self, symbol: str) -> MatchingEngine:
        engine = self._engines.get(symbol)
        if engine is None:
            raise InvalidSymbol(f"unknown symbol {symbol}", venue=self.name)
        return engine

    # ---------------------------------------------------------------- Venue: requests
    async def fetch_balances(self) -> Balances:
        return await self._round_trip("fetch_balances", self.account.snapshot)

    async def place_order(self, req: OrderRequest) -> Order:
        engine = self._engine(req.symbol)
        if not req.client_order_id:
            raise ValueError("place_order needs a client_order_id")
        order = Order.from_request(req, self._now())
        self._client[req.client_order_id] = order

        def at_exchange(ts: int) -> list[ExecEvent]:
            x_order = Order.from_request(req, ts)
            breach = self._limiter.hit("place", ts, market=req.symbol)
            if breach is not None:
                reason = f"{breach.limit.name} limit reached"
                return engine.reject(x_order, ts, "rate_limited", reason)
            return engine.submit(x_order, ts)

        await self._round_trip("place", at_exchange, self._deliver)
        if order.status is OrderStatus.REJECTED:
            kind = next(
                (k for k, (code, _) in engine.codes.items() if code == order.reject_code),
                "order_not_found",
            )
            raise engine.error(kind, order.reject_reason)
        return order.snapshot()

    async def cancel_order(self, symbol: str, client_order_id: str) -> Order:
        engine = self._engine(symbol)

        def at_exchange(ts: int) -> list[ExecEvent]:
            breach = self._limiter.hit("cancel", ts, market=symbol)
            if breach is not None:
                raise engine.error("rate_limited", f"{breach.limit.name} limit reached")
            return engine.cancel(client_order_id, ts)

        await self._round_trip("cancel", at_exchange, self._deliver)
        order = self._client.get(client_order_id)
        if order is None:
            raise engine.error("order_not_found", f"order {client_order_id} unknown")
        return order.snapshot()

    async def fetch_order(self, symbol: str, client_order_id: str) -> Order:
        engine = self._engine(symbol)

        def at_exchange(ts: int) -> Order:
            o = engine.orders.get(client_order_id)
            if o is None:
                raise engine.error("order_not_found", f"order {client_order_id} unknown")
            return o.snapshot()

        return await self._round_trip("fetch_order", at_exchange)

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        engines = [self._engine(symbol)] if symbol else list(self._engines.values())

        def at_exchange(ts: int) -> list[Order]:
            return [r.order.snapshot() for e in engines for r in e.resting.values()]

        return await self._round_trip("open_orders", at_exchange)


def _succeed(fut: asyncio.Future[Any], value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


def _fail(fut: asyncio.Future[Any], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)
