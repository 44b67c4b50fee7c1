"""The paper venue: live market data, simulated fills (DESIGN §1, ``arbsim paper``).

Market data comes from a live adapter's public stream (a :class:`MexcVenue` /
:class:`GateVenue` built without credentials, or anything with the same ``start`` /
``stop`` / ``instrument`` / ``book`` surface). The book it maintains *is* the
exchange-side book as received: orders are matched against it by the same
:class:`~exchanges.simulated.matching.MatchingEngine` as a backtest, with an
:class:`~exchanges.simulated.matching.Account` of configured balances and the venue's rules from
:mod:`exchanges.simulated.rules`.

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
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from arbsim.core.book import OrderBook
from arbsim.core.errors import InvalidSymbol
from arbsim.core.model import Instrument, Order, Trade
from arbsim.core.ports import Clock, MarketFeed, MarketSink, VenueHealth
from arbsim.runtime.loop import WallClock
from exchanges.simulated.fills import FillModel
from exchanges.simulated.matching import MatchingEngine
from exchanges.simulated.order_entry import NullSink, SimulatedOrderEntry

__all__ = ["PaperVenue"]


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
    feed:
        The live market data (a credential-less live adapter); started by :meth:`start`.
    fills:
        Balances, latency (slept for real), rules, queue model and liquidity options.
    name:
        Venue name in arbsim (the feed's name by default).
    clock:
        Wall clock (tests may pass another ``Clock`` running on real time).

    The constructor does no I/O.
    """

    def __init__(
        self,
        feed: MarketFeed,
        *,
        fills: FillModel,
        name: str | None = None,
        clock: Clock | None = None,
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
            inst = self.fills.instrument(self.feed.instrument(sym), self.name)
            self._instruments[sym] = inst
            book = self.feed.book(sym)
            engine = self.fills.engine(inst, book, self.account)
            self._engines[sym] = engine
            self._by_book[id(book)] = engine

    async def stop(self) -> None:
        self.sink = NullSink()
        await self._arrivals.stop()
        await self._responses.stop()
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
        }

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
