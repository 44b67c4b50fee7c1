"""The paper venue: live market data, simulated fills (DESIGN §1, ``arbsim paper``).

Market data comes from a venue plug-in's public feed (a :class:`MexcVenue` /
:class:`GateVenue` built without credentials). Orders are matched by the same
:class:`~exchanges.simulated.matching.MatchingEngine` as a backtest, with an
:class:`~exchanges.simulated.matching.Account` of configured balances and the venue's rules.

The two timelines of a backtest (DESIGN §3) are kept on the wall clock:

- **exchange side**: the feed's book, updated in exchange-time order, is what the
  exchange holds. A request sent at wall time ``t`` reaches the exchange at exchange time
  ``T = t + entry``; it is matched against the book *as of T*: only once the feed has
  delivered everything stamped ``ts_exchange <= T`` — i.e. just before the first update
  stamped after ``T`` is applied, or, when the venue has nothing new, once the wall clock
  passed ``T`` plus the largest recent feed latency (at most ``max_feed_wait_ms``), with
  the book taken as unchanged. Trades reach resting orders in
  the same order. The answer is due at ``T + response`` and a resting order's fill made by
  data stamped ``x`` is pushed at ``x + push latency`` (at once when that is already past).
  This is the ordering the replay venue gets from its virtual clock: the order entry both
  share (:mod:`exchanges.simulated.order_entry`) calls ``_at_exchange(T, ...)`` and each
  venue says when "the exchange at T" has come.
- **strategy side**: the strategy sees each update when it was received (``ts_local``)
  plus ``feed_offset_ms``: with an offset, on a book of its own fed that much later.

Arrivals and answers of one venue are FIFO. An answer is delivered also when the caller
stopped waiting, so a timed-out order still updates the client's state.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from arbsim.core.book import OrderBook
from arbsim.core.errors import InvalidSymbol
from arbsim.core.model import Instrument, Order, Trade
from arbsim.core.ports import BookUpdate, Clock, MarketFeed, MarketSink, VenueHealth
from arbsim.runtime.loop import WallClock
from exchanges.simulated.fills import FillModel
from exchanges.simulated.matching import MatchingEngine
from exchanges.simulated.order_entry import NullSink, SimulatedOrderEntry
from exchanges.simulated.transfers import SimulatedTransfers

__all__ = ["PaperVenue"]


class _Lane:
    """Runs callbacks at wall-clock times (plus ``delay_ns``), strictly in submission
    order.

    Due times must be non-decreasing (the venue makes them strictly increasing); a
    callback never runs before its due time on ``clock``.
    """

    def __init__(self, name: str, clock: Clock, delay_ns: int = 0):
        self.name = name
        self.clock = clock
        self.delay_ns = delay_ns
        self._queue: collections.deque[tuple[int, Callable[..., None], tuple[Any, ...]]] = (
            collections.deque()
        )
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def at(self, ts_ns: int, fn: Callable[..., None], *args: Any) -> None:
        self._queue.append((ts_ns, fn, args))
        self._wake.set()

    async def _run(self) -> None:
        while True:
            while not self._queue:
                self._wake.clear()
                await self._wake.wait()
            ts, fn, args = self._queue[0]
            wait = ts + self.delay_ns - self.clock.now_ns()
            if wait > 0:
                # woken early when something else emptied the head (see _ExchangeLane)
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait / 1e9)
                continue
            self._queue.popleft()
            fn(*args)


class _ExchangeLane(_Lane):
    """Runs order arrivals at exchange time: an arrival stamped ``T`` runs just before the
    first market update stamped after ``T`` is applied (:meth:`before`), or, when the venue
    is quiet, once the wall clock passed ``T`` plus the largest feed latency seen lately
    (its 99th percentile: by then anything stamped up to ``T`` would have arrived; at most
    ``max_wait_ns``).
    FIFO; ``T`` strictly increases."""

    #: feed latencies remembered for the bounded wait, and the margin added to their max
    WINDOW = 256
    MARGIN_NS = 2_000_000

    def __init__(self, name: str, clock: Clock, max_wait_ns: int):
        super().__init__(name, clock, delay_ns=max_wait_ns)
        self.max_wait_ns = max_wait_ns
        self._latencies: collections.deque[int] = collections.deque(maxlen=self.WINDOW)
        #: arrivals released by data (the others waited their bounded time)
        self.by_data = 0

    def before(self, ts_exchange: int, ts_local: int, *, sample: bool = True) -> None:
        """Market data stamped ``ts_exchange``, received at ``ts_local``, is about to be
        applied: every arrival stamped before it meets the book as it is now. ``sample``:
        its delay is a feed latency (a REST snapshot's is not)."""
        if sample:
            self._latencies.append(max(0, ts_local - ts_exchange))
            if len(self._latencies) % 16 == 1:
                ranked = sorted(self._latencies)
                p99 = ranked[min(len(ranked) - 1, int(0.99 * len(ranked)))]
                self.delay_ns = min(self.max_wait_ns, p99 + self.MARGIN_NS)
        while self._queue and self._queue[0][0] < ts_exchange:
            _, fn, args = self._queue.popleft()
            self.by_data += 1
            fn(*args)


class _FeedSink:
    """Receives the live stream: exchange side first (arrivals due, resting orders),
    then the strategy side."""

    def __init__(self, venue: PaperVenue):
        self.venue = venue

    def before_update(self, venue: str, update: BookUpdate) -> None:
        self.venue._before_update(update)

    def on_book(self, venue: str, book: OrderBook) -> None:
        self.venue._on_book(book)

    def on_trade(self, venue: str, trade: Trade) -> None:
        self.venue._on_trade(trade)

    def on_order(self, order: Order) -> None:
        # a feed without credentials has no orders; nothing of it may reach the engine
        return None


class PaperVenue(SimulatedOrderEntry, SimulatedTransfers):
    """Simulated fills on live market data, with latency applied in real time.

    Parameters
    ----------
    feed:
        The live market data (a credential-less live adapter); started by :meth:`start`.
    fills:
        Balances, latency (slept for real), rules, queue model and liquidity options.
    name:
        Venue name in arbsim (the feed's name by default).
    clock:
        Wall clock (tests may pass another ``Clock`` running on real time).
    max_feed_wait_ms:
        The longest an order that reached the exchange waits for the feed to show the
        exchange past its arrival time (normally the largest recent feed latency);
        after it, the book is taken as unchanged.

    The constructor does no I/O.
    """

    def __init__(
        self,
        feed: MarketFeed,
        *,
        fills: FillModel,
        name: str | None = None,
        clock: Clock | None = None,
        max_feed_wait_ms: float = 250.0,
    ):
        self.name = name or feed.name
        self.feed = feed
        self.fills = fills
        self.latency = fills.latency
        self.rules = fills.rules
        self.faults = fills.faults
        self.clock: Clock = clock or WallClock()
        self.account = fills.account(self.name)
        self.sink: MarketSink = NullSink()
        self._init_order_entry()
        self._instruments: dict[str, Instrument] = {}
        self._by_book: dict[int, MatchingEngine] = {}
        self._arrivals = _ExchangeLane(
            f"{self.name}-paper-exchange", self.clock, int(max_feed_wait_ms * 1e6)
        )
        self._responses = _Lane(f"{self.name}-paper-responses", self.clock)
        #: the strategy's books when it sees the data later than received (feed offset)
        self._views: dict[str, OrderBook] = {}
        self._view_lane = _Lane(f"{self.name}-paper-view", self.clock)

    # ---------------------------------------------------------------- Venue: data
    async def start(self, symbols: Sequence[str], sink: MarketSink) -> None:
        """Start the live feed and build one matching engine per symbol on its book."""
        self.sink = sink
        self._arrivals.start()
        self._responses.start()
        self._view_lane.start()
        await self.feed.start(symbols, _FeedSink(self))
        for sym in symbols:
            inst = self.fills.instrument(self.feed.instrument(sym), self.name)
            self._instruments[sym] = inst
            book = self.feed.book(sym)
            engine = self.fills.engine(inst, book, self.account)
            self._engines[sym] = engine
            self._by_book[id(book)] = engine
            if self.fills.feed_offset_ns:
                view = OrderBook(self.name, sym, inst.tick)
                depth = 1 << 20
                view.apply_pairs(
                    [(lv.price, lv.size) for lv in book.bids(depth)],
                    [(lv.price, lv.size) for lv in book.asks(depth)],
                    ts_exchange=book.ts_exchange,
                    ts_local=book.ts_local,
                    snapshot=True,
                )
                self._views[sym] = view

    async def stop(self) -> None:
        self.sink = NullSink()
        await self._arrivals.stop()
        await self._responses.stop()
        await self._view_lane.stop()
        await self.feed.stop()

    def health(self) -> VenueHealth:
        # the account is simulated here: only the market stream can be down
        return msgspec.structs.replace(self.feed.health(), private=True)

    def describe(self) -> dict[str, str | float]:
        feed = self.feed.describe()
        return {
            **{k: feed[k] for k in ("exchange", "rest_url", "ws_url") if k in feed},
            "kind": "paper",
            **self.fills.describe(),
            "feed_offset_ms": self.fills.feed_offset_ns / 1e6,
            **self.describe_transfers(),
        }

    def instrument(self, symbol: str) -> Instrument:
        try:
            return self._instruments[symbol]
        except KeyError:
            raise InvalidSymbol(f"{symbol} was not started", venue=self.name) from None

    def book(self, symbol: str) -> OrderBook:
        if symbol not in self._instruments:
            raise InvalidSymbol(f"{symbol} was not started", venue=self.name)
        view = self._views.get(symbol)
        return view if view is not None else self.feed.book(symbol)

    # ---------------------------------------------------------------- market data
    def _before_update(self, update: BookUpdate) -> None:
        # the exchange is past every arrival stamped before this update
        self._arrivals.before(update.ts_exchange, update.ts_local, sample=not update.snapshot)
        view = self._views.get(update.symbol)
        if view is not None:
            due = update.ts_local + self.fills.feed_offset_ns
            self._view_lane.at(due, self._show_update, view, update)

    def _show_update(self, view: OrderBook, update: BookUpdate) -> None:
        view.apply_pairs(
            update.bids,
            update.asks,
            ts_exchange=update.ts_exchange,
            ts_local=update.ts_local + self.fills.feed_offset_ns,
            seq=update.seq,
            snapshot=update.snapshot,
        )
        self.sink.on_book(self.name, view)

    def _on_book(self, book: OrderBook) -> None:
        engine = self._by_book.get(id(book))
        if engine is not None and engine.resting:
            events = engine.on_book(book.ts_exchange)
            if events:
                self.push(events, book.ts_exchange)
        if engine is None or engine.inst.symbol not in self._views:
            self.sink.on_book(self.name, book)

    def _on_trade(self, trade: Trade) -> None:
        self._arrivals.before(trade.ts_exchange, trade.ts_local)
        engine = self._engines.get(trade.symbol)
        if engine is not None and engine.resting:
            tick = engine.book.scale.tick_of(trade.price)
            events = engine.on_trade(int(trade.side), tick, trade.size, trade.ts_exchange)
            if events:
                self.push(events, trade.ts_exchange)
        if trade.venue != self.name:
            trade = msgspec.structs.replace(trade, venue=self.name)
        if self.fills.feed_offset_ns:
            seen = msgspec.structs.replace(
                trade, ts_local=trade.ts_local + self.fills.feed_offset_ns
            )
            self._view_lane.at(seen.ts_local, self.sink.on_trade, self.name, seen)
        else:
            self.sink.on_trade(self.name, trade)

    # ---------------------------------------------------------------- clock hooks
    def _now(self) -> int:
        return self.clock.now_ns()

    def _at_exchange(self, ts: int, fn: Callable[..., None], *args: Any) -> None:
        self._arrivals.at(ts, fn, *args)

    def _at_client(self, ts: int, fn: Callable[..., None], *args: Any) -> None:
        self._responses.at(ts, fn, *args)
