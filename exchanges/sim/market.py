"""Market data of one simulated venue, replayed from a catalog.

The simulator keeps its own book per symbol (an :class:`arbsim.core.book.OrderBook`, the one the
matching engine reads) and numbers every book change with its own update ids: a catalog
message covering ``n`` level changes becomes ids ``v+1 .. v+n`` (at least one id per
message). REST snapshots report the id of the last change applied, so the documented
"snapshot + buffered diffs" procedures line up exactly.

Exchange timestamps of pushed data are the simulator's clock when it applies a message
(catalog times only set the pacing): a client measuring feed latency sees real numbers.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Callable, Iterator
from decimal import Decimal

import msgspec

from arbsim.core.book import OrderBook, TickScale
from arbsim.core.model import Instrument, Side, to_decimal
from arbsim.data.catalog import FLAG_SNAPSHOT_BEGIN, Catalog
from arbsim.data.feed import BookCursor, Cursor, TradeCursor, merge

__all__ = [
    "DepthUpdate",
    "MarketEvent",
    "MarketReplay",
    "PublicTrade",
    "SymbolState",
    "format_size",
    "quote_to_base",
]

Level = tuple[str, str]
_MS = 1_000_000
_NS_PER_S = 1_000_000_000
#: a replay that is behind schedule still yields to the event loop after this much work
YIELD_EVERY_S = 0.002


def format_size(size: float) -> str:
    """A book or trade size as the venues print it (shortest exact decimal, "0" deletes)."""
    if size <= 0.0:
        return "0"
    return format(to_decimal(size).normalize(), "f")


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


MarketEvent = DepthUpdate | PublicTrade


class SymbolState:
    """The simulator's market state of one symbol."""

    def __init__(self, inst: Instrument, first_id: int):
        self.inst = inst
        self.book = OrderBook(inst.venue, inst.symbol, inst.tick)
        self.version = first_id
        self.trades: deque[PublicTrade] = deque(maxlen=1000)
        self.trade_ids = itertools.count(1)
        self.update_ms = 0

    def price(self, tick: int) -> str:
        """Price of ``tick`` as a decimal string on the tick grid."""
        return str(self.book.scale.decimal(tick))

    def levels(self, side: Side, n: int) -> list[Level]:
        """Up to ``n`` best levels of a side as strings, best first."""
        return [(self.price(t), format_size(s)) for t, s in self.book.levels(side, n)]

    def touch(self) -> tuple[Level | None, Level | None]:
        """Best bid and best ask (None when a side is empty)."""
        bids = self.levels(Side.BUY, 1)
        asks = self.levels(Side.SELL, 1)
        return (bids[0] if bids else None), (asks[0] if asks else None)


class MarketReplay:
    """Streams one catalog venue into the simulator's books, paced or stepped.

    Parameters
    ----------
    catalog:
        The catalog to read.
    source:
        The venue name inside the catalog.
    instruments:
        Instruments to replay (re-labelled to the simulated venue's name).
    now_ns:
        The simulator's clock.
    loop:
        Start again from the catalog's beginning when it ends.
    """

    def __init__(
        self,
        catalog: Catalog,
        source: str,
        instruments: list[Instrument],
        now_ns: Callable[[], int],
        *,
        loop: bool = True,
    ):
        self.catalog = catalog
        self.source = source
        self.now_ns = now_ns
        self.loop = loop
        self.symbols: dict[str, SymbolState] = {}
        for inst in instruments:
            first = self._first_seq(inst)
            self.symbols[inst.symbol] = SymbolState(inst, first)
        self.listeners: list[Callable[[MarketEvent], None]] = []
        self._it: Iterator[Cursor] | None = None
        self._pending: Cursor | None = None
        self._ended = False
        self._resume = asyncio.Event()
        self._resume.set()
        self._pause_task: asyncio.Task[None] | None = None
        self.messages = 0

    def _first_seq(self, inst: Instrument) -> int:
        if not self.catalog.files(self.source, inst.symbol, "book"):
            return 1  # an instrument without market data: an empty book
        cursor = BookCursor(self.catalog, self.source, inst.symbol, TickScale(inst.tick))
        return cursor.seq if cursor.next() else 1

    # ------------------------------------------------------------------ cursors
    def _cursors(self) -> list[Cursor]:
        out: list[Cursor] = []
        for sym, state in self.symbols.items():
            scale = state.book.scale
            if self.catalog.files(self.source, sym, "book"):
                out.append(BookCursor(self.catalog, self.source, sym, scale, key="exchange"))
            if self.catalog.files(self.source, sym, "trades"):
                out.append(TradeCursor(self.catalog, self.source, sym, scale, key="exchange"))
        return out

    def _peek(self) -> Cursor | None:
        if self._pending is not None:
            return self._pending
        if self._ended:
            return None
        for attempt in range(2):
            if self._it is None:
                self._it = merge(self._cursors())
            nxt = next(self._it, None)
            if nxt is not None:
                self._pending = nxt
                return nxt
            self._it = None
            if not self.loop or attempt:
                break
        self._ended = True
        return None

    @property
    def ended(self) -> bool:
        """True when the catalog is exhausted (never with ``loop``)."""
        return self._ended

    # ------------------------------------------------------------------ stepping
    def step(self, n: int = 1) -> list[MarketEvent]:
        """Apply the next ``n`` catalog messages now; returns what was published."""
        out: list[MarketEvent] = []
        for _ in range(n):
            cursor = self._peek()
            if cursor is None:
                break
            self._pending = None
            event = self._apply(cursor)
            if event is not None:
                out.append(event)
                for listener in list(self.listeners):
                    listener(event)
        return out

    def prime(self) -> None:
        """Load the first book of every symbol (before anyone connects)."""
        with_data = [
            s for sym, s in self.symbols.items() if self.catalog.files(self.source, sym, "book")
        ]
        for _ in range(100_000):
            if all(s.book.best_bid is not None for s in with_data):
                return
            if not self.step():
                return

    def _apply(self, cursor: Cursor) -> MarketEvent | None:
        self.messages += 1
        ts_ms = self.now_ns() // _MS
        if isinstance(cursor, TradeCursor):
            state = self.symbols[cursor.symbol]
            trade = PublicTrade(
                symbol=cursor.symbol,
                trade_id=next(state.trade_ids),
                side=Side.BUY if cursor.side == 1 else Side.SELL,
                price=state.price(cursor.tick),
                qty=format_size(cursor.size),
                tick=cursor.tick,
                size=cursor.size,
                ts_ms=ts_ms,
            )
            state.trades.append(trade)
            return trade
        assert isinstance(cursor, BookCursor)
        state = self.symbols[cursor.symbol]
        book = state.book
        bt, bs, at, az = cursor.current_levels()
        bid_ticks, ask_ticks = bt.tolist(), at.tolist()
        bids = [
            (state.price(t), format_size(s)) for t, s in zip(bid_ticks, bs.tolist(), strict=True)
        ]
        asks = [
            (state.price(t), format_size(s)) for t, s in zip(ask_ticks, az.tolist(), strict=True)
        ]
        if cursor.flags & FLAG_SNAPSHOT_BEGIN:
            # A catalog snapshot replaces the book: on the wire that is a diff that also
            # deletes every level the new book no longer has.
            kept_b, kept_a = set(bid_ticks), set(ask_ticks)
            gone_b = [t for t, _ in book.levels(Side.BUY, book.depth(Side.BUY)) if t not in kept_b]
            gone_a = [
                t for t, _ in book.levels(Side.SELL, book.depth(Side.SELL)) if t not in kept_a
            ]
            bids = [(state.price(t), "0") for t in gone_b] + bids
            asks = [(state.price(t), "0") for t in gone_a] + asks
            bid_ticks += gone_b
            ask_ticks += gone_a
        cursor.apply(book, FLAG_SNAPSHOT_BEGIN)
        first = state.version + 1
        state.version += max(1, len(bids) + len(asks))
        state.update_ms = ts_ms
        return DepthUpdate(
            symbol=cursor.symbol,
            first_id=first,
            last_id=state.version,
            bids=bids,
            asks=asks,
            ts_ms=ts_ms,
            touched=(
                min(bid_ticks, default=1),
                max(bid_ticks, default=0),
                min(ask_ticks, default=1),
                max(ask_ticks, default=0),
            ),
        )

    # ------------------------------------------------------------------ pacing
    def pause(self, seconds: float = 0.0) -> None:
        """Stop the paced replay (``seconds`` > 0: resume automatically after that)."""
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

    async def run(self, speed: float) -> None:
        """Replay at ``speed`` × the catalog's own pace until the catalog ends.

        Behind schedule (messages cost more than their spacing at this speed) the replay
        goes on as fast as it can, but yields to the event loop after every
        :data:`YIELD_EVERY_S` of work, so that requests are answered and signals handled
        while it catches up.
        """
        loop = asyncio.get_running_loop()
        origin: tuple[float, int] | None = None  # (loop time, catalog key) of the pace origin
        last_key = 0
        last_yield = loop.time()
        while True:
            if not self._resume.is_set():
                await self._resume.wait()
                origin = None  # a pause shifts the schedule instead of bursting afterwards
            cursor = self._peek()
            if cursor is None:
                return
            key = cursor.ts
            if origin is None or key < last_key:  # start, or the catalog looped
                origin = (loop.time(), key)
            due = origin[0] + (key - origin[1]) / _NS_PER_S / speed
            now = loop.time()
            delay = due - now
            if delay > 0 or now - last_yield >= YIELD_EVERY_S:
                await asyncio.sleep(max(delay, 0.0))
                last_yield = loop.time()
                if not self._resume.is_set():
                    continue
            last_key = key
            self.step()


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
