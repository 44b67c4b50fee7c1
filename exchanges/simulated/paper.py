"""The paper venue: live market data, simulated fills (DESIGN §1, ``arbsim paper``).

Market data comes from a live adapter's public stream (a :class:`MexcVenue` /
:class:`GateVenue` built without credentials, or anything with the same ``start`` /
``stop`` / ``instrument`` / ``book`` surface). The book it maintains *is* the
exchange-side book as received: orders are matched against it by the same
:class:`~exchanges.simulated.matching.MatchingEngine` as a backtest, with an
:class:`~exchanges.simulated.matching.Account` of configured balances and the venue's rules
(:class:`~arbsim.core.rules.VenueRules`, passed in).

Latency is applied for real (DESIGN §3, same two timelines as the replay venue): a
request sent at wall time ``t`` reaches the matching engine at ``t + entry`` (the live
book has moved on meanwhile), and its answer reaches the caller at ``arrival +
response``. Arrivals and answers of one venue are FIFO (each runs on its own lane, a
task that sleeps until the head's due time). Fills of resting orders, produced when a
public trade or book change reaches the engine, are pushed after a ``push`` response
latency. An answer is delivered also when the caller stopped waiting, so a timed-out
order still updates the client's state.

Differences from the replay venue: there is one book per instrument (no separate
local-side book: the stream's ``ts_local`` is when the exchange side sees the data
too), and ``feed_offset`` is not applied.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol, TypeVar

import msgspec

from arbsim.core.book import OrderBook
from arbsim.core.errors import InvalidSymbol
from arbsim.core.model import Instrument, Order, Trade
from arbsim.core.ports import MarketSink
from arbsim.core.rules import VenueRules
from arbsim.runtime.latency import LatencyModel
from arbsim.runtime.loop import Clock, WallClock
from exchanges.simulated.matching import Account, MatchingEngine, QueueModel
from exchanges.simulated.order_entry import SimulatedOrderEntry

__all__ = ["MarketFeed", "PaperVenue"]

T = TypeVar("T")


class MarketFeed(Protocol):
    """The market-data part of a live venue that the paper venue uses."""

    name: str

    async def start(self, symbols: Sequence[str], sink: MarketSink) -> None: ...

    async def stop(self) -> None: ...

    def instrument(self, symbol: str) -> Instrument: ...

    def book(self, symbol: str) -> OrderBook: ...


class _NullSink:
    def on_book(self, venue: str, book: OrderBook) -> None:
        return None

    def on_trade(self, venue: str, trade: Trade) -> None:
        return None

    def on_order(self, order: Order) -> None:
        return None


class _Lane:
    """Runs callbacks at wall-clock times, strictly in submission order.

    Due times must be non-decreasing (the venue makes them strictly increasing); a
    callback never runs before its due time on ``clock``.
    """

    def __init__(self, name: str, clock: Clock):
        self.name = name
        self.clock = clock
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
            while (wait := ts - self.clock.now_ns()) > 0:
                await asyncio.sleep(wait / 1e9)
            self._queue.popleft()
            fn(*args)


class _FeedSink:
    """Receives the live stream: feeds the matching engines, then the engine (sink)."""

    def __init__(self, venue: PaperVenue):
        self.venue = venue

    def on_book(self, venue: str, book: OrderBook) -> None:
        self.venue._on_book(book)

    def on_trade(self, venue: str, trade: Trade) -> None:
        self.venue._on_trade(trade)

    def on_order(self, order: Order) -> None:
        # a feed without credentials has no orders; nothing of it may reach the engine
        return None


class PaperVenue(SimulatedOrderEntry):
    """Simulated fills on live market data, with latency applied in real time.

    Parameters
    ----------
    name:
        Venue name in arbsim (the feed's name by default).
    feed:
        The live market data (a credential-less live adapter); started by :meth:`start`.
    balances:
        The paper account's start balances.
    latency:
        Order-path latency (:func:`arbsim.runtime.latency.build_latency`), slept for real.
    rules, queue, consume_liquidity, max_open_orders, impact:
        As for the replay venue (:class:`~arbsim.core.rules.VenueRules`, :class:`QueueModel`,
        ...).
    fee_overrides:
        ``maker_fee`` / ``taker_fee`` replacing the live instrument's rates.
    clock:
        Wall clock (tests may pass another ``Clock`` running on real time).

    The constructor does no I/O.
    """

    def __init__(
        self,
        feed: MarketFeed,
        *,
        name: str | None = None,
        balances: Mapping[str, Decimal],
        latency: LatencyModel,
        rules: VenueRules,
        queue: QueueModel | None = None,
        consume_liquidity: bool = True,
        max_open_orders: int | None = None,
        fee_overrides: Mapping[str, Decimal] | None = None,
        impact: tuple[float, int, int] = (0.0, 0, 10),
        clock: Clock | None = None,
    ):
        self.name = name or feed.name
        self.feed = feed
        self.latency = latency
        self.clock: Clock = clock or WallClock()
        self.account = Account(self.name, balances)
        self.rules = rules
        self.queue = queue or QueueModel()
        self.consume_liquidity = consume_liquidity
        self.max_open_orders = max_open_orders
        self.fee_overrides = dict(fee_overrides or {})
        self.impact = impact
        self.sink: MarketSink = _NullSink()
        self._init_order_entry()
        self._order_ids = itertools.count(1)
        self._instruments: dict[str, Instrument] = {}
        self._by_book: dict[int, MatchingEngine] = {}
        self._arrivals = _Lane(f"{self.name}-paper-exchange", self.clock)
        self._responses = _Lane(f"{self.name}-paper-responses", self.clock)

    # ---------------------------------------------------------------- Venue: data
    async def start(self, symbols: Sequence[str], sink: MarketSink) -> None:
        """Start the live feed and build one matching engine per symbol on its book."""
        self.sink = sink
        self._arrivals.start()
        self._responses.start()
        await self.feed.start(symbols, _FeedSink(self))
        for sym in symbols:
            inst = self.feed.instrument(sym)
            if self.fee_overrides:
                inst = msgspec.structs.replace(inst, **self.fee_overrides)
            inst = msgspec.structs.replace(inst, venue=self.name)
            self._instruments[sym] = inst
            book = self.feed.book(sym)
            engine = MatchingEngine(
                inst,
                book,
                self.account,
                codes=self.rules.codes,
                order_ids=self._order_ids,
                consume_liquidity=self.consume_liquidity,
                post_only_cross=self.rules.post_only_cross,
                fee_currency=self.rules.fee_currency,
                market_buy_in_quote=self.rules.market_buy_in_quote,
                max_open_orders=self.max_open_orders,
                queue=self.queue,
                impact_bps_per_depth=self.impact[0],
                impact_decay_ns=self.impact[1],
                impact_levels=self.impact[2],
            )
            self._engines[sym] = engine
            self._by_book[id(book)] = engine

    async def stop(self) -> None:
        self.sink = _NullSink()
        await self._arrivals.stop()
        await self._responses.stop()
        await self.feed.stop()

    def instrument(self, symbol: str) -> Instrument:
        try:
            return self._instruments[symbol]
        except KeyError:
            raise InvalidSymbol(f"{symbol} was not started", venue=self.name) from None

    def book(self, symbol: str) -> OrderBook:
        if symbol not in self._instruments:
            raise InvalidSymbol(f"{symbol} was not started", venue=self.name)
        return self.feed.book(symbol)

    # ---------------------------------------------------------------- market data
    def _on_book(self, book: OrderBook) -> None:
        engine = self._by_book.get(id(book))
        if engine is not None and engine.resting:
            now = self.clock.now_ns()
            events = engine.on_book(now)
            if events:
                self.push(events, now)
        self.sink.on_book(self.name, book)

    def _on_trade(self, trade: Trade) -> None:
        engine = self._engines.get(trade.symbol)
        if engine is not None and engine.resting:
            now = self.clock.now_ns()
            tick = engine.book.scale.tick_of(trade.price)
            events = engine.on_trade(int(trade.side), tick, trade.size, now)
            if events:
                self.push(events, now)
        if trade.venue != self.name:
            trade = msgspec.structs.replace(trade, venue=self.name)
        self.sink.on_trade(self.name, trade)

    # ---------------------------------------------------------------- clock hooks
    def _now(self) -> int:
        return self.clock.now_ns()

    def _at_exchange(self, ts: int, fn: Callable[..., None], *args: Any) -> None:
        self._arrivals.at(ts, fn, *args)

    def _at_client(self, ts: int, fn: Callable[..., None], *args: Any) -> None:
        self._responses.at(ts, fn, *args)
