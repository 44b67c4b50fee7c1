"""Market data of one simulated venue, replayed from a catalog on the simulator's clock.

The simulator keeps its own book per symbol (an :class:`arbsim.core.book.OrderBook`, the one the
matching engine reads) and numbers every book change with its own update ids: a catalog
message covering ``n`` level changes becomes ids ``v+1 .. v+n`` (at least one id per
message). REST snapshots report the id of the last change applied, so the documented
"snapshot + buffered diffs" procedures line up exactly.

Timing (:mod:`exchanges.sim.clock`): a message changes the venue's book (and meets resting
orders) when its ``ts_exchange`` is due on the shared clock, and goes out on the wire then
(pace ``exchange``) or when its recorded ``ts_local`` is due (pace ``local``; pushes that
show book state, such as best bid/ask and partial depth, then show the book as the wire has
carried it). Every emitted time is the message's ``ts_exchange`` plus the clock's offset.
Before the window's ``start`` the books are built silently (warm-up); messages at or after
``end`` are not replayed; with ``loop`` each lap starts with one full-book update per symbol
that restores the books of ``start``.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from collections import deque
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from arbsim.core.book import OrderBook, TickScale
from arbsim.core.model import Instrument, Side, to_decimal
from arbsim.data.catalog import FLAG_SNAPSHOT_BEGIN, Catalog
from arbsim.data.feed import BookCursor, Cursor, TradeCursor, merge
from exchanges.sim.clock import MS, SimClock

__all__ = [
    "DepthUpdate",
    "MarketEvent",
    "MarketReplay",
    "PublicTrade",
    "SymbolState",
    "TradeStats",
    "TradeWindow",
    "format_size",
    "quote_to_base",
]

Level = tuple[str, str]
#: a replay that is behind schedule still yields to the event loop after this much work
YIELD_EVERY_S = 0.002
#: before an order is handled, messages overdue by less than this are applied (a timer's
#: lateness), for at most CATCH_UP_BUDGET_S of work
CATCH_UP_LAG_S = 0.005
CATCH_UP_BUDGET_S = 0.002
#: recent public trades kept per symbol (REST ``trades``)
TRADES_KEPT = 1000
MINUTE_MS = 60_000
DAY_MS = 86_400_000
#: a looping replay with this much time before its next message prepares the next lap
#: (in slices of PREPARE_SLICE_S), so that the lap starts on time
PREPARE_IF_IDLE_S = 0.010
PREPARE_SLICE_S = 0.001
#: rows read at a time: a small batch keeps each read short (the replay is paced)
BATCH = 4096


def format_size(size: float) -> str:
    """A book or trade size as the venues print it (shortest exact decimal, "0" deletes)."""
    if size <= 0.0:
        return "0"
    return format(to_decimal(size).normalize(), "f")


LevelChanges = tuple[
    npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.int64], npt.NDArray[np.float64]
]
"""(bid ticks, bid sizes, ask ticks, ask sizes); size 0 deletes."""


class DepthUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """Absolute level changes with ids ``first_id..last_id`` ("0" deletes).

    ``touched`` is the tick range each side's changes cover, ``(bid_lo, bid_hi, ask_lo,
    ask_hi)`` (``lo > hi``: none on that side), for the matching engine
    (:meth:`~exchanges.simulated.matching.MatchingEngine.on_book`)."""

    symbol: str
    first_id: int
    last_id: int
    bids: list[Level]
    asks: list[Level]
    ts_ms: int
    touched: tuple[int, int, int, int] | None = None
    ts_ns: int = 0
    """Exchange time in ns (``ts_ms`` is its millisecond)."""
    changes: LevelChanges | None = None
    """The changes on the tick grid (pace ``local``: the wire's book applies them)."""


class PublicTrade(msgspec.Struct, frozen=True, kw_only=True):
    """A public trade; ``side`` is the taker side."""

    symbol: str
    trade_id: int
    side: Side
    price: str
    qty: str
    tick: int
    size: float
    ts_ms: int
    ts_ns: int = 0
    """Exchange time in ns (``ts_ms`` is its millisecond)."""


MarketEvent = DepthUpdate | PublicTrade


def _levels(book: OrderBook, side: Side, n: int) -> list[Level]:
    return [(str(book.scale.decimal(t)), format_size(s)) for t, s in book.levels(side, n)]


def _touch(book: OrderBook) -> tuple[Level | None, Level | None]:
    bids = _levels(book, Side.BUY, 1)
    asks = _levels(book, Side.SELL, 1)
    return (bids[0] if bids else None), (asks[0] if asks else None)


def _all_levels(book: OrderBook, side: Side) -> list[tuple[int, float]]:
    return book.levels(side, book.depth(side))


class TradeWindow(msgspec.Struct, frozen=True, kw_only=True):
    """Public trades of a time window, aggregated."""

    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    count: int


class TradeStats:
    """Per-minute aggregates of a symbol's public trades over the last day of exchange time
    (bounded memory, whatever the trade rate); windows start on a minute."""

    def __init__(self) -> None:
        # [minute, open, high, low, close, volume, quote volume, count]
        self._minutes: deque[list[Any]] = deque()

    def add(self, ts_ms: int, price: Decimal, qty: Decimal) -> None:
        """Count one trade."""
        minute = ts_ms // MINUTE_MS
        m = self._minutes[-1] if self._minutes else None
        if m is None or m[0] != minute:
            self._minutes.append([minute, price, price, price, price, qty, price * qty, 1])
            while self._minutes[0][0] <= minute - DAY_MS // MINUTE_MS:
                self._minutes.popleft()
            return
        m[2] = max(m[2], price)
        m[3] = min(m[3], price)
        m[4] = price
        m[5] += qty
        m[6] += price * qty
        m[7] += 1

    def window(self, now_ms: int, span_ms: int) -> TradeWindow | None:
        """The trades of the minutes that overlap ``[now - span, now]`` (None: none)."""
        first = (now_ms - span_ms) // MINUTE_MS
        ms = [m for m in self._minutes if m[0] >= first]
        if not ms:
            return None
        return TradeWindow(
            open=ms[0][1],
            high=max(m[2] for m in ms),
            low=min(m[3] for m in ms),
            close=ms[-1][4],
            volume=sum((m[5] for m in ms), Decimal(0)),
            quote_volume=sum((m[6] for m in ms), Decimal(0)),
            count=sum(m[7] for m in ms),
        )


class SymbolState:
    """The simulator's market state of one symbol.

    ``book``/``version`` are the venue's own (REST answers, matching); ``wire_book``/
    ``wire_version`` are the book as the wire has carried it so far (pushes that show book
    state). They are the same objects unless the wire is paced by ``ts_local``.
    """

    def __init__(self, inst: Instrument, first_id: int):
        self.inst = inst
        self.book = OrderBook(inst.venue, inst.symbol, inst.tick)
        self.version = first_id
        self.wire_book = self.book
        self.wire_version = first_id
        self.trades: deque[PublicTrade] = deque(maxlen=TRADES_KEPT)
        self.stats = TradeStats()
        self.trade_ids = itertools.count(1)
        self.update_ms = 0

    def add_trade(self, trade: PublicTrade) -> None:
        """A public trade the venue has made (recent trades, ticker statistics)."""
        self.trades.append(trade)
        self.stats.add(trade.ts_ms, Decimal(trade.price), Decimal(trade.qty))

    def last_price(self) -> Decimal | None:
        """The last trade's price; before any trade, the book's mid rounded down to the tick
        (None: the book is empty too)."""
        if self.trades:
            return Decimal(self.trades[-1].price)
        mid = self.book.mid
        if mid is None:
            return None
        return self.inst.round_price(mid, Side.SELL)

    def price(self, tick: int) -> str:
        """Price of ``tick`` as a decimal string on the tick grid."""
        return str(self.book.scale.decimal(tick))

    def levels(self, side: Side, n: int) -> list[Level]:
        """Up to ``n`` best levels of a side as strings, best first."""
        return _levels(self.book, side, n)

    def touch(self) -> tuple[Level | None, Level | None]:
        """Best bid and best ask (None when a side is empty)."""
        return _touch(self.book)

    def wire_levels(self, side: Side, n: int) -> list[Level]:
        """:meth:`levels` of the book as the wire has carried it."""
        return _levels(self.wire_book, side, n)

    def wire_touch(self) -> tuple[Level | None, Level | None]:
        """:meth:`touch` of the book as the wire has carried it."""
        return _touch(self.wire_book)


class _LapStart:
    """The pending item that starts the next lap of a looping replay."""


_LAP = _LapStart()
_Item = Cursor | _LapStart
_Raw = tuple[int, int, int, float]  # ts_exchange, side, tick, size of a warm-up trade


class MarketReplay:
    """Streams one catalog venue into the simulator's books on the shared clock.

    Parameters
    ----------
    catalog:
        The catalog to read.
    source:
        The venue name inside the catalog.
    instruments:
        Instruments to replay (re-labelled to the simulated venue's name).
    clock:
        The simulator's clock (window, pace, loop, speed).

    ``listeners`` are called when a message changes the venue's state (the exchange side:
    matching); ``wire_listeners`` when it goes out on the wire (the venue server's pushes).
    The order of use: :meth:`prime` and/or :meth:`warm` (silent), :meth:`start` once the
    clock has started, then :meth:`run` (paced) or :meth:`step` (manual).
    """

    def __init__(
        self,
        catalog: Catalog,
        source: str,
        instruments: list[Instrument],
        clock: SimClock,
    ):
        self.catalog = catalog
        self.source = source
        self.clock = clock
        self.symbols: dict[str, SymbolState] = {}
        self._books: set[str] = set()
        self._trade_streams: set[str] = set()
        for inst in instruments:
            if self.catalog.files(source, inst.symbol, "book"):
                self._books.add(inst.symbol)
            if self.catalog.files(source, inst.symbol, "trades"):
                self._trade_streams.add(inst.symbol)
            self.symbols[inst.symbol] = SymbolState(inst, self._first_seq(inst))
        self.listeners: list[Callable[[MarketEvent], None]] = []
        self.wire_listeners: list[Callable[[MarketEvent], None]] = []
        self.lap = 0
        self.messages = 0
        self._it: Iterator[Cursor] | None = None
        self._pending: _Item | None = None
        self._ended = False
        self._resume = asyncio.Event()
        self._resume.set()
        self._pause_task: asyncio.Task[None] | None = None
        self._running = False
        self._wire: list[tuple[int, int, MarketEvent]] = []  # heap: (wire key, seq, event)
        self._wire_seq = itertools.count()
        self._wire_floor: dict[tuple[str, bool], int] = {}
        self._prep_it: Iterator[Cursor] | None = None  # the next lap's cursors, being skipped
        self._prep_first: Cursor | None = None  # ... to its first message at or after start
        self._prep_done = False
        self._warm_trades: dict[str, deque[_Raw]] = {}
        self._warm_tsx: dict[str, int] = {}
        self._start_books: dict[str, tuple[list[tuple[int, float]], list[tuple[int, float]]]] = {}

    def _first_seq(self, inst: Instrument) -> int:
        if inst.symbol not in self._books:
            return 1  # an instrument without market data: an empty book
        cursor = BookCursor(self.catalog, self.source, inst.symbol, TickScale(inst.tick))
        return cursor.seq if cursor.next() else 1

    @property
    def local_pace(self) -> bool:
        """Whether the wire is paced by ``ts_local``."""
        return self.clock.pace == "local"

    # ------------------------------------------------------------------ cursors
    def _cursors(self) -> list[Cursor]:
        out: list[Cursor] = []
        for sym, state in self.symbols.items():
            scale = state.book.scale
            if sym in self._books:
                out.append(
                    BookCursor(
                        self.catalog, self.source, sym, scale, key="exchange", batch_size=BATCH
                    )
                )
            if sym in self._trade_streams:
                out.append(
                    TradeCursor(
                        self.catalog, self.source, sym, scale, key="exchange", batch_size=BATCH
                    )
                )
        return out

    def _next_raw(self) -> Cursor | None:
        """The next catalog message (no window, no laps)."""
        p = self._pending
        if isinstance(p, _LapStart):
            return None
        if p is not None:
            return p
        if self._it is None:
            self._it = merge(self._cursors())
        nxt = next(self._it, None)
        self._pending = nxt
        return nxt

    def _in_window(self, cursor: Cursor | None) -> Cursor | None:
        end = self.clock.end_ns
        return cursor if cursor is not None and (end is None or cursor.ts < end) else None

    def _peek(self) -> _Item | None:
        if self._pending is not None:
            return self._pending
        if self._ended:
            return None
        nxt = self._in_window(self._next_raw())
        if nxt is not None:
            return nxt
        self._pending = None
        self._it = None
        if not self.clock.loop:
            self._ended = True
            return None
        self._pending = _LAP
        return _LAP

    def _key(self, item: _Item) -> int:
        """Lap-adjusted catalog time at which ``item`` changes the venue's state."""
        clock = self.clock
        if isinstance(item, _LapStart):
            return clock.start_ns + (self.lap + 1) * clock.lap_ns
        return item.ts + self.lap * clock.lap_ns

    @property
    def ended(self) -> bool:
        """True when the window is exhausted (never with ``loop``)."""
        return self._ended

    # ------------------------------------------------------------------ warm-up
    def _absorb(self, cursor: Cursor) -> None:
        """Apply a message before the window silently (no ids published, no events)."""
        self._pending = None
        if isinstance(cursor, TradeCursor):
            raw = self._warm_trades.setdefault(cursor.symbol, deque(maxlen=TRADES_KEPT))
            raw.append((cursor.ts_exchange, cursor.side, cursor.tick, cursor.size))
            return
        assert isinstance(cursor, BookCursor)
        state = self.symbols[cursor.symbol]
        cursor.apply(state.book, FLAG_SNAPSHOT_BEGIN)
        state.version += max(1, cursor.levels)
        self._warm_tsx[cursor.symbol] = cursor.ts_exchange

    def prime(self) -> int | None:
        """Build the first book of every symbol silently; the catalog time (exchange key) of
        the last message it took (None: none)."""
        last: int | None = None
        while not all(self.symbols[s].book.best_bid is not None for s in self._books):
            cursor = self._next_raw()
            if cursor is None:
                break
            last = cursor.ts
            self._absorb(cursor)
        return last

    def warm(self, until_ns: int) -> None:
        """Apply every message before catalog time ``until_ns`` silently."""
        while (cursor := self._next_raw()) is not None and cursor.ts < until_ns:
            self._absorb(cursor)

    def start(self) -> None:
        """The clock has started: stamp what the warm-up kept and remember the books at the
        window's start (for laps)."""
        clock = self.clock
        for sym, state in self.symbols.items():
            for tsx, side, tick, size in self._warm_trades.pop(sym, ()):
                state.add_trade(self._trade(state, sym, tsx, side, tick, size))
            last = self._warm_tsx.pop(sym, None)
            if last is not None:
                state.update_ms = clock.stamp_ns(last) // MS
            if sym in self._books:
                book = state.book
                self._start_books[sym] = (
                    _all_levels(book, Side.BUY),
                    _all_levels(book, Side.SELL),
                )
            if self.local_pace:
                state.wire_book = OrderBook(state.inst.venue, sym, state.inst.tick)
                bids, asks = self._start_books.get(sym, ([], []))
                if bids or asks:
                    state.wire_book.apply_ticks(
                        *_arrays(bids, asks), state.book.ts_exchange, state.book.ts_local, 0, True
                    )
            state.wire_version = state.version

    # ------------------------------------------------------------------ stepping
    def step(self, n: int = 1) -> list[MarketEvent]:
        """Apply the next ``n`` messages now and put everything pending on the wire;
        returns what was published."""
        out: list[MarketEvent] = []
        for _ in range(n):
            if self._peek() is None:
                break
            out.extend(self._step_one())
        self.flush_wire()
        return out

    def flush_wire(self) -> None:
        """Send every message still waiting for its ``ts_local`` now."""
        while self._wire:
            self._deliver(heapq.heappop(self._wire)[2])

    def catch_up(self) -> None:
        """Apply the messages already due (the paced replay may wake a little late), so that
        a request handled now meets the book as of now. A replay that is behind schedule
        (its oldest due message is late by more than :data:`CATCH_UP_LAG_S`) catches up
        itself: a request does not pay for its backlog."""
        if not self._running or self.paused:
            return
        deadline = time.perf_counter() + CATCH_UP_BUDGET_S
        while time.perf_counter() < deadline:
            item = self._peek()
            if item is None:
                return
            delay = self.clock.delay_s(self._key(item))
            if delay > 0 or delay < -CATCH_UP_LAG_S:
                return
            self._step_one()

    def _step_one(self) -> list[MarketEvent]:
        item = self._peek()
        if item is None:
            return []
        self._pending = None
        events = self._new_lap() if isinstance(item, _LapStart) else [self._apply(item)]
        clock = self.clock
        out: list[MarketEvent] = []
        for event, wire_key in events:
            if event is None:
                continue
            out.append(event)
            clock.enter(event.ts_ns)  # what happens now happens at the message's time
            try:
                for listener in list(self.listeners):
                    listener(event)
                if not self.local_pace:
                    self._deliver(event)
            finally:
                clock.leave()
            if self.local_pace:
                # a stream's messages go out in order (a lap may start before the last
                # lap's latest ts_local)
                stream = (event.symbol, isinstance(event, DepthUpdate))
                key = max(wire_key, self._wire_floor.get(stream, wire_key))
                self._wire_floor[stream] = key
                heapq.heappush(self._wire, (key, next(self._wire_seq), event))
        return out

    def _deliver(self, event: MarketEvent) -> None:
        if isinstance(event, DepthUpdate):
            state = self.symbols[event.symbol]
            if state.wire_book is not state.book and event.changes is not None:
                bt, bs, at, az = event.changes
                state.wire_book.apply_ticks(bt, bs, at, az, event.ts_ns, event.ts_ns, 0, False)
            state.wire_version = event.last_id
        for listener in list(self.wire_listeners):
            listener(event)

    def _trade(
        self, state: SymbolState, symbol: str, tsx: int, side: int, tick: int, size: float
    ) -> PublicTrade:
        stamp = self.clock.stamp_ns(tsx, self.lap)
        return PublicTrade(
            symbol=symbol,
            trade_id=next(state.trade_ids),
            side=Side.BUY if side == 1 else Side.SELL,
            price=state.price(tick),
            qty=format_size(size),
            tick=tick,
            size=size,
            ts_ms=stamp // MS,
            ts_ns=stamp,
        )

    def _apply(self, cursor: Cursor) -> tuple[MarketEvent | None, int]:
        """Apply one catalog message to the venue's state: (its event, its wire key)."""
        self.messages += 1
        lap_shift = self.lap * self.clock.lap_ns
        if isinstance(cursor, TradeCursor):
            wire_key = cursor.ts_local + lap_shift
            state = self.symbols[cursor.symbol]
            trade = self._trade(
                state, cursor.symbol, cursor.ts_exchange, cursor.side, cursor.tick, cursor.size
            )
            state.add_trade(trade)
            return trade, wire_key
        assert isinstance(cursor, BookCursor)
        wire_key = cursor.ts_local + lap_shift
        state = self.symbols[cursor.symbol]
        book = state.book
        bt, bs, at, az = cursor.current_levels()
        gone_b: list[int] = []
        gone_a: list[int] = []
        if cursor.flags & FLAG_SNAPSHOT_BEGIN:
            # A catalog snapshot replaces the book: on the wire that is a diff that also
            # deletes every level the new book no longer has.
            gone_b, gone_a = _gone(book, bt, at)
        cursor.apply(book, FLAG_SNAPSHOT_BEGIN)
        stamp = self.clock.stamp_ns(cursor.ts_exchange, self.lap)
        return self._depth(state, cursor.symbol, (bt, bs, at, az), gone_b, gone_a, stamp), wire_key

    def _depth(
        self,
        state: SymbolState,
        symbol: str,
        changes: LevelChanges,
        gone_b: list[int],
        gone_a: list[int],
        stamp: int,
    ) -> DepthUpdate:
        """The update for level changes already applied to ``state.book`` (plus deletions
        of ``gone_*``), numbered with the venue's next ids."""
        bt, bs, at, az = changes
        bid_ticks = gone_b + bt.tolist()
        ask_ticks = gone_a + at.tolist()
        bid_sizes = [0.0] * len(gone_b) + bs.tolist()
        ask_sizes = [0.0] * len(gone_a) + az.tolist()
        bids = [(state.price(t), format_size(s)) for t, s in zip(bid_ticks, bid_sizes, strict=True)]
        asks = [(state.price(t), format_size(s)) for t, s in zip(ask_ticks, ask_sizes, strict=True)]
        first = state.version + 1
        state.version += max(1, len(bids) + len(asks))
        state.update_ms = stamp // MS
        wire: LevelChanges | None = None
        if self.local_pace:
            wire = (
                np.asarray(bid_ticks, np.int64),
                np.asarray(bid_sizes, np.float64),
                np.asarray(ask_ticks, np.int64),
                np.asarray(ask_sizes, np.float64),
            )
        return DepthUpdate(
            symbol=symbol,
            first_id=first,
            last_id=state.version,
            bids=bids,
            asks=asks,
            ts_ms=stamp // MS,
            ts_ns=stamp,
            touched=(
                min(bid_ticks, default=1),
                max(bid_ticks, default=0),
                min(ask_ticks, default=1),
                max(ask_ticks, default=0),
            ),
            changes=wire,
        )

    def _prepare_lap(self, budget_s: float | None = None) -> None:
        """Open the next lap's cursors and skip them to the window's start, for at most
        ``budget_s`` of work (None: to the end), so that a lap starts on time."""
        if self._prep_done:
            return
        deadline = None if budget_s is None else time.perf_counter() + budget_s
        if self._prep_it is None:
            self._prep_it = merge(self._cursors())
        start = self.clock.start_ns
        n = 0
        while True:
            nxt = next(self._prep_it, None)
            if nxt is None or nxt.ts >= start:
                self._prep_first = nxt
                self._prep_done = True
                return
            n += 1
            if deadline is not None and not n % 64 and time.perf_counter() > deadline:
                return

    def _new_lap(self) -> list[tuple[MarketEvent | None, int]]:
        """Start the next lap: the catalog again from the window's start, and one update per
        symbol that turns its book into the book of the start."""
        clock = self.clock
        self.lap += 1
        self._prepare_lap()
        self._it = self._prep_it
        self._pending = self._in_window(self._prep_first)
        self._prep_it, self._prep_first, self._prep_done = None, None, False
        if self._pending is None:
            self._it = iter(())
        key = clock.start_ns + self.lap * clock.lap_ns
        stamp = clock.stamp_ns(clock.start_ns, self.lap)
        out: list[tuple[MarketEvent | None, int]] = []
        for sym, (bids, asks) in self._start_books.items():
            state = self.symbols[sym]
            bt, bs, at, az = _arrays(bids, asks)
            gone_b, gone_a = _gone(state.book, bt, at)
            if bids or asks:
                state.book.apply_ticks(bt, bs, at, az, clock.start_ns, clock.start_ns, 0, True)
            else:
                state.book.clear()
            out.append((self._depth(state, sym, (bt, bs, at, az), gone_b, gone_a, stamp), key))
        return out

    # ------------------------------------------------------------------ pacing
    def pause(self, seconds: float = 0.0) -> None:
        """Hold the paced replay (``seconds`` > 0: resume automatically after that). The
        clock goes on: on resume the held messages go out at once."""
        self._resume.clear()
        if self._pause_task is not None:
            self._pause_task.cancel()
            self._pause_task = None
        if seconds > 0:
            self._pause_task = asyncio.get_running_loop().create_task(self._unpause(seconds))

    async def _unpause(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self._resume.set()

    def resume(self) -> None:
        """End a pause."""
        if self._pause_task is not None:
            self._pause_task.cancel()
            self._pause_task = None
        self._resume.set()

    @property
    def paused(self) -> bool:
        """Whether the paced replay is paused."""
        return not self._resume.is_set()

    async def run(self) -> None:
        """Replay on the clock until the window ends (forever with ``loop``).

        Each message changes the venue's state when its exchange key is due and goes out on
        the wire then (or, pace ``local``, when its ``ts_local`` is due). Behind schedule
        (messages cost more than their spacing at this speed) the replay goes on as fast as
        it can, but yields to the event loop after every :data:`YIELD_EVERY_S` of work, so
        that requests are answered and signals handled while it catches up.
        """
        loop = asyncio.get_running_loop()
        clock = self.clock
        self._running = True
        last_yield = loop.time()
        try:
            while True:
                if not self._resume.is_set():
                    await self._resume.wait()
                    last_yield = loop.time()
                    continue
                item = self._peek()
                if item is None and not self._wire:
                    return
                apply_in = clock.delay_s(self._key(item)) if item is not None else math.inf
                wire_in = clock.delay_s(self._wire[0][0]) if self._wire else math.inf
                delay = min(apply_in, wire_in)
                clock.plan(self, clock.host_ns() + delay * 1e9)
                if clock.loop and not self._prep_done and clock.idle_s() > PREPARE_IF_IDLE_S:
                    # every venue is idle: get the next lap ready a little at a time
                    self._prepare_lap(PREPARE_SLICE_S)
                    await asyncio.sleep(0)
                    last_yield = loop.time()
                    continue
                if delay > 0:
                    await asyncio.sleep(delay)
                    last_yield = loop.time()
                    continue
                if loop.time() - last_yield >= YIELD_EVERY_S:
                    await asyncio.sleep(0)
                    last_yield = loop.time()
                    continue
                if apply_in <= wire_in:
                    self._step_one()
                else:
                    self._deliver(heapq.heappop(self._wire)[2])
        finally:
            self._running = False
            clock.plan(self, math.inf)


def _gone(
    book: OrderBook, bid_ticks: npt.NDArray[np.int64], ask_ticks: npt.NDArray[np.int64]
) -> tuple[list[int], list[int]]:
    """Levels of ``book`` that a replacement holding ``bid_ticks``/``ask_ticks`` deletes."""
    kept_b, kept_a = set(bid_ticks.tolist()), set(ask_ticks.tolist())
    gone_b = [t for t, _ in _all_levels(book, Side.BUY) if t not in kept_b]
    gone_a = [t for t, _ in _all_levels(book, Side.SELL) if t not in kept_a]
    return gone_b, gone_a


def _arrays(bids: list[tuple[int, float]], asks: list[tuple[int, float]]) -> LevelChanges:
    return (
        np.asarray([t for t, _ in bids], np.int64),
        np.asarray([s for _, s in bids], np.float64),
        np.asarray([t for t, _ in asks], np.int64),
        np.asarray([s for _, s in asks], np.float64),
    )


def quote_to_base(state: SymbolState, side: Side, quote: Decimal) -> Decimal:
    """Base quantity that ``quote`` buys (``side`` BUY, walking asks) or sells for
    (SELL, walking bids) at the displayed levels, rounded down to the lot."""
    inst = state.inst
    book_side = side.opposite
    left = quote
    qty = Decimal(0)
    for tick, size in state.book.levels(book_side, 1000):
        price = state.book.scale.decimal(tick)
        avail = inst.round_qty(size)
        cost = avail * price
        if cost >= left:
            qty += left / price
            left = Decimal(0)
            break
        qty += avail
        left -= cost
    return inst.round_qty(qty) if qty > 0 else Decimal(0)
