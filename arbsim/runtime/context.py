"""The :class:`Context` a strategy's callbacks receive: venues, the engine clock, tasks and
timers, order entry through the risk gate, and the run's records."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Coroutine
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from arbsim.core.book import OrderBook
from arbsim.core.errors import (
    OrderNotFound,
    OrderNotPlaced,
    OutcomeUnknown,
    RateLimited,
    RetryableError,
    Unresolved,
    VenueError,
)
from arbsim.core.model import ZERO, Balances, Instrument, Order, OrderRequest, Side, to_decimal
from arbsim.core.ports import Venue
from arbsim.core.records import TransferRecord
from arbsim.runtime.latency import LatencyRecorder
from arbsim.runtime.ledger import Ledger
from arbsim.runtime.recorder import RunRecorder
from arbsim.runtime.risk import Denial, RiskDenied, RiskManager

if TYPE_CHECKING:
    from arbsim.runtime.engine import Engine

T = TypeVar("T")


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

    async def _retrying(
        self, kind: str, venue: str, call: Callable[[], Awaitable[T]], record: bool = True
    ) -> T:
        """A request that is not an order: retried with backoff (honouring Retry-After)
        while it fails for a temporary reason, up to ``risk.request_retries`` times;
        ``record``: its latency goes to the run's latency records."""
        delay = 0.05
        for attempt in itertools.count():
            t0 = self.now_ns()
            try:
                return await call()
            except (RetryableError, OutcomeUnknown) as e:
                self._engine.api_failure(venue, self.now_ns(), e)
                if attempt >= self.risk.limits.request_retries:
                    raise
                wait = e.retry_after if isinstance(e, RateLimited) and e.retry_after else delay
                await asyncio.sleep(wait)
                delay = min(delay * 2, 2.0)
            finally:
                if record:
                    self.latency.record(kind, venue, t0, self.now_ns() - t0)
        raise AssertionError("unreachable")

    async def fetch_balances(self, venue: str, *, record: bool = True) -> Balances:
        """Fresh balances (retried while the venue fails temporarily)."""
        v = self.venues[venue]
        return await self._retrying("fetch_balances", venue, v.fetch_balances, record)

    async def fetch_order(self, venue: str, symbol: str, client_order_id: str) -> Order:
        """The venue's current state of an order (retried while the venue fails
        temporarily); fills the engine had not seen yet are applied."""
        v = self.venues[venue]
        order = await self._retrying(
            "fetch_order", venue, lambda: v.fetch_order(symbol, client_order_id)
        )
        self._engine.merge_order(order)
        return order

    async def transfer(
        self,
        source: str,
        destination: str,
        asset: str,
        network: str,
        amount: Decimal,
        *,
        reason: str = "",
    ) -> TransferRecord:
        """Withdraw ``amount`` of ``asset`` from ``source`` to ``destination`` over
        ``network`` (both :class:`~arbsim.core.ports.TransferVenue`): recorded, applied to
        the ledger when sent and when it arrives, followed in the background
        (:class:`~arbsim.runtime.transfers.TransferDesk`). A refusal is the record's
        ``failed`` status and reason, not an exception."""
        return await self._engine.transfers.send(
            source, destination, asset, network, amount, reason=reason
        )

    def transfers_in_flight(self) -> list[TransferRecord]:
        """The run's transfers asked for or sent and not arrived yet."""
        return self._engine.transfers.in_flight()

    async def open_orders(
        self, venue: str, symbol: str | None = None, *, record: bool = True
    ) -> list[Order]:
        v = self.venues[venue]
        return await self._retrying("open_orders", venue, lambda: v.open_orders(symbol), record)

    # ---------------------------------------------------------------- the risk gate
    def check_entry(self, req: OrderRequest, *, reducing: bool = False) -> Denial | None:
        """The checks every order passes before it is sent: circuit breaker, venue health
        (streams up, no unresolved order, API failures), data staleness, per-asset position
        and total exposure after the order. An order that reduces the position (hedges,
        unwinds) passes everything but the venue's health for what does not reduce risk.
        Returns the (counted) denial or None."""
        now = self.now_ns()
        risk = self.risk
        venue = self.venues[req.venue]
        inst = venue.instrument(req.symbol)
        book = venue.book(req.symbol)
        qty = req.qty
        price = req.price
        if price is None:
            touch = book.best_ask if req.side is Side.BUY else book.best_bid
            if touch is None:
                return risk.deny(now, "no_price", f"{req.venue} {req.symbol}: empty book")
            price = to_decimal(touch)
        if req.quote_order_qty is not None:
            qty = req.quote_order_qty / price
        pos = self.ledger.position(inst.base)
        after = pos + qty if req.side is Side.BUY else pos - qty
        if reducing and abs(after) <= abs(pos):
            return None
        if risk.tripped:
            return risk.deny(now, "circuit_breaker", f"tripped: {risk.breaker_reason}")
        denial = risk.check_venue(now, req.venue, venue.health())
        if denial is None:
            denial = risk.check_data(now, book.ts_local, req.venue)
        if denial is None:
            mark = book.mid if book.mid is not None else float(price)
            exposure = Decimal(repr(abs(float(after)) * mark + self._other_exposure(inst.base)))
            denial = risk.check_trade(
                now, asset=inst.base, position_after=after, exposure_after=exposure
            )
        limits = risk.limits
        if denial is None and (
            req.venue in limits.max_position_by_venue or req.venue in limits.max_notional_by_venue
        ):
            denial = self._check_venue_limits(req, qty, inst.base, now)
        return denial

    def _check_venue_limits(
        self, req: OrderRequest, qty: Decimal, base: str, now: int
    ) -> Denial | None:
        """The venue's own position in ``base`` and its exposure in every base asset after
        the order, against ``risk.max_position_by_venue`` / ``max_notional_by_venue``."""
        ledger = self.ledger
        bal = ledger.balances.get(req.venue, {})
        start = ledger.start.get(req.venue, {})
        pos = bal.get(base, ZERO) - start.get(base, ZERO)
        after = pos + qty if req.side is Side.BUY else pos - qty
        marks, _ = self._engine.marks()
        notional = abs(float(after)) * marks.get(base, 0.0)
        for asset, mark in marks.items():
            if asset != base:
                notional += abs(float(bal.get(asset, ZERO) - start.get(asset, ZERO))) * mark
        return self.risk.check_venue_trade(
            now,
            venue=req.venue,
            asset=base,
            position_after=after,
            notional_after=Decimal(repr(notional)),
        )

    def _other_exposure(self, base: str) -> float:
        """The value (quote, at the marks) of the net positions in every traded base
        asset but ``base``: the total-exposure limit counts every symbol of the run."""
        marks, _ = self._engine.marks()
        total = 0.0
        for asset, mark in marks.items():
            if asset != base:
                total += abs(float(self.ledger.position(asset))) * mark
        return total

    async def place_order(self, req: OrderRequest, *, reducing: bool = False) -> Order:
        """Send an order through the risk gate; records it, its latency and its outcome.

        The order's intent is recorded (and, live, journalled) before the request leaves.
        An answer that never came (timeout, 5xx, lost connection) is resolved by querying
        the venue before this returns: the order as the venue has it, or
        :class:`~arbsim.core.errors.OrderNotPlaced`, or, past the resolution deadline,
        :class:`~arbsim.core.errors.Unresolved` (the venue then takes no new entries).

        Raises :class:`~arbsim.runtime.risk.RiskDenied` when the gate refuses, or the venue's
        error when it rejects.
        """
        if not req.client_order_id:
            req = msgspec.structs.replace(req, client_order_id=self.new_client_order_id())
        now = self.now_ns()
        denial = self.check_entry(req, reducing=reducing)
        if denial is not None:
            raise RiskDenied(denial.reason, denial.detail)
        price = req.price
        if price is None:
            touch = self.book(req.venue, req.symbol)
            best = touch.best_ask if req.side is Side.BUY else touch.best_bid
            price = to_decimal(best) if best is not None else ZERO
        notional = req.quote_order_qty if req.quote_order_qty is not None else req.qty * price
        self.risk.check_order(now, notional, reducing=reducing)
        self.recorder.order_sent(req, now)
        self._engine.order_opened(req.client_order_id)
        try:
            try:
                order = await self.venues[req.venue].place_order(req)
            finally:
                self.latency.record("place", req.venue, now, self.now_ns() - now)
        except OutcomeUnknown as e:
            self._engine.api_failure(req.venue, self.now_ns(), e)
            return await self.resolve_order(req, now, e)
        except VenueError as e:
            self.recorder.order_rejected(req, self.now_ns(), e)
            self._engine.order_closed(req.client_order_id)
            if isinstance(e, RetryableError):
                self._engine.api_failure(req.venue, self.now_ns(), e)
            raise
        if not order.is_open:
            self._engine.order_closed(order.client_order_id)
        self.recorder.order_acked(order, self.now_ns())
        return order

    async def resolve_order(self, req: OrderRequest, sent_ns: int, cause: VenueError) -> Order:
        """What became of an order whose answer never came: the venue's own record, read
        by client order id with bounded retries and backoff, with the private stream as
        a second witness. Not found once the venue could no longer accept the request:
        :class:`OrderNotPlaced`. Still unknown at ``risk.resolve_timeout_s``:
        :class:`Unresolved`, and the venue is closed to new entries until a background
        query settles it."""
        venue = self.venues[req.venue]
        cid = req.client_order_id
        deadline = sent_ns + int(self.risk.limits.resolve_timeout_s * 1e9)
        delay = 0.05
        while True:
            seen = self.recorder.order(cid)
            if seen is not None and seen.order_id and not seen.is_open:
                return seen
            try:
                return await self.fetch_order(req.venue, req.symbol, cid)
            except OrderNotFound:
                if self.now_ns() - sent_ns >= venue.order_expiry_ns:
                    err = OrderNotPlaced(
                        f"order {cid} is not at the venue and can no longer reach it ({cause})",
                        code="not_placed",
                        venue=req.venue,
                    )
                    self.recorder.order_rejected(req, self.now_ns(), err)
                    self._engine.order_closed(cid)
                    raise err from cause
            except (RetryableError, OutcomeUnknown):
                pass
            now = self.now_ns()
            if now >= deadline:
                self._engine.order_unresolved(req, cause)
                raise Unresolved(
                    f"order {cid}: outcome unknown after {self.risk.limits.resolve_timeout_s}s "
                    f"({cause}); {req.venue} takes no new entries until it is resolved",
                    code="unresolved",
                    venue=req.venue,
                ) from cause
            await asyncio.sleep(min(delay, (deadline - now) / 1e9))
            delay = min(delay * 2, 1.0)

    async def cancel_order(self, venue: str, symbol: str, client_order_id: str) -> Order:
        """Cancel an order; when the answer is lost or the venue no longer knows it as
        open, the order's state is read back instead of guessed."""
        t0 = self.now_ns()
        try:
            order = await self.venues[venue].cancel_order(symbol, client_order_id)
        except (OutcomeUnknown, RetryableError, OrderNotFound) as e:
            if not isinstance(e, OrderNotFound):
                self._engine.api_failure(venue, self.now_ns(), e)
            return await self.fetch_order(venue, symbol, client_order_id)
        finally:
            self.latency.record("cancel", venue, t0, self.now_ns() - t0)
        return order
