"""The replay venue: a :class:`~arbsim.core.ports.Venue` over a Parquet catalog.

Two timelines per instrument (DESIGN §3): the *exchange side* applies each catalog
message at its ``ts_exchange`` to the exchange book that the matching engine uses;
the *local side* applies the same message at its ``ts_local`` to the book the
strategy sees. A request sent at local time ``t`` reaches the matching engine at
``t + entry`` (so it meets the exchange book as of that time, while the market keeps
moving) and its answer reaches the strategy at ``arrival + response``. Requests and
answers of one venue stay FIFO.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from arbsim.core.book import OrderBook
from arbsim.core.errors import InvalidSymbol
from arbsim.core.model import Instrument
from arbsim.core.ports import MarketSink, ReplayDriver, ReplaySource, VenueHealth
from arbsim.data.catalog import Catalog
from arbsim.data.feed import BookCursor, SharedBatches, TradeCursor
from arbsim.runtime.loop import VirtualTimeLoop
from exchanges.simulated.fills import FillModel
from exchanges.simulated.matching import MatchingEngine
from exchanges.simulated.order_entry import NullSink, SimulatedOrderEntry
from exchanges.simulated.transfers import SimulatedTransfers


class _LocalBook(BookCursor):
    """Delivers each message to the strategy-side book at its ``ts_local``."""

    def bind(self, venue: ReplayVenue, book: OrderBook) -> None:
        self.venue_obj = venue
        self.book = book
        self.events = 0
        self.messages = 0
        self._put = self.apply

    def attach(self, driver: ReplayDriver, index: int) -> None:
        """Fast path: the compiled kernel applies each message; each batch this cursor
        loads lets the venue's held-back streams catch up (bounded memory)."""
        self._put = self.apply_fast
        self.compiled = True
        self.on_batch = self.venue_obj._sync_held

    def dispatch(self) -> None:
        self._put(self.book)
        self.events += self.levels
        self.messages += 1
        self.venue_obj.sink.on_book(self.venue, self.book)


class _LocalTrades(TradeCursor):
    def bind(self, venue: ReplayVenue) -> None:
        self.venue_obj = venue
        self.events = 0
        self.messages = 0
        self.quiet = False
        self.ended = False

    def attach(self, driver: ReplayDriver, index: int) -> None:
        """A strategy that wants no trades gets none: the stream stays out of the merge
        and is only counted, batch by batch."""
        self.driver = driver
        self.index = index
        if driver.trades_wanted:
            return
        self.quiet = True
        self.ended = not self.step()
        self.venue_obj._held.append(self)

    def next(self) -> bool:
        return False if self.quiet else TradeCursor.next(self)

    def sync(self) -> int:
        """Count the trades the driver has passed; the key of the last one."""
        if self.quiet and not self.ended:
            ts, idx, _ = self.driver.head
            passed, left = self.skip_until(ts, self.index < idx)
            self.events += passed
            self.messages += passed
            self.ended = not left
        return self.passed_key

    def resume(self) -> None:
        return None

    def pass_one(self) -> None:
        """Count the current trade and move on."""
        self.events += 1
        self.messages += 1
        self.passed_key = self.ts
        self.ended = not self.step()

    def finish(self) -> None:
        self.sync()

    def pending_ts(self) -> int | None:
        """The key of the next trade not counted yet (None: none left)."""
        return None if not self.quiet or self.ended else self.ts

    def dispatch(self) -> None:
        self.events += 1
        self.messages += 1
        self.venue_obj.sink.on_trade(self.venue, self.trade())


class _HeldBack:
    """What both exchange-side cursors do on the fast path: while their matching engine
    has no resting order they leave the merge (``held``), pass their messages in bulk when
    the driver's head moves past them, and rejoin the merge once an order rests."""

    venue_obj: ReplayVenue
    engine: MatchingEngine
    driver: ReplayDriver
    index: int
    ts: int
    passed_key: int
    #: the cursor's own step to its next message (``BookCursor.next`` / ``TradeCursor.next``)
    _step_cursor: Callable[[], bool]
    dispatch: Callable[[], None]
    sync: Callable[[], int]
    events: int
    messages: int

    def _bind_held(self) -> None:
        # the exchange side counts nothing: events and messages are the strategy's
        self.events = 0
        self.messages = 0
        self.lazy = False
        self.held = False
        self.ended = False

    def attach(self, driver: ReplayDriver, index: int) -> None:
        self.driver = driver
        self.index = index
        self.lazy = True
        self.venue_obj._held.append(self)

    def next(self) -> bool:
        if not self._step_cursor():
            self.ended = True
            self.held = False
            return False
        if self.lazy and not self.engine.resting:
            self.held = True
            return False
        self.held = False
        return True

    def pending_ts(self) -> int | None:
        """The key of the next held-back message (None: not held, or none left)."""
        return self.ts if self.held and not self.ended else None

    def resume(self) -> None:
        """Rejoin the merge when an order rests."""
        if self.held and not self.ended and self.engine.resting:
            self.held = False
            self.driver.wake(self.index, self)


class _ExchangeBook(_HeldBack, BookCursor):
    """Applies each message to the exchange-side book at its ``ts_exchange``.

    On the fast path it leaves the merge while its matching engine has no resting order
    (nothing can fill, nobody looks at the book): the book catches up in bulk when a
    request reaches the exchange or the venue's local stream loads a batch, and the
    cursor rejoins the merge once an order rests."""

    def _step_cursor(self) -> bool:
        return BookCursor.next(self)

    def bind(self, venue: ReplayVenue, book: OrderBook, engine: MatchingEngine) -> None:
        self.venue_obj = venue
        self.book = book
        self.engine = engine
        self._bind_held()
        self._put = self.apply

    def attach(self, driver: ReplayDriver, index: int) -> None:
        _HeldBack.attach(self, driver, index)
        self._put = self.apply_fast
        self.compiled = True

    def sync(self) -> int:
        """Apply the held-back messages the driver has passed; the key of the last one
        (the driver's clock would have been there)."""
        if self.held and not self.ended:
            ts, idx, _ = self.driver.head
            if not self.catch_up(self.book, ts, self.index < idx):
                self.ended = True
                self.held = False
        return self.passed_key

    def pass_one(self) -> None:
        """Apply the current held-back message and move on."""
        i = self._i - 1
        self._apply_run(self.book, i, i + 1, 1)
        self.passed_key = self.ts
        if not BookCursor.next(self):
            self.ended = True
            self.held = False

    def dispatch(self) -> None:
        self._put(self.book)
        if self.engine.resting:
            evs = self.engine.on_book(self.ts, self.touched())
            if evs:
                self.venue_obj.push(evs, self.ts)


class _ExchangeTrades(_HeldBack, TradeCursor):
    def _step_cursor(self) -> bool:
        return TradeCursor.next(self)

    def bind(self, venue: ReplayVenue, engine: MatchingEngine) -> None:
        self.venue_obj = venue
        self.engine = engine
        self._bind_held()

    def sync(self) -> int:
        if self.held and not self.ended:
            ts, idx, _ = self.driver.head
            _, left = self.skip_until(ts, self.index < idx)
            if not left:
                self.ended = True
                self.held = False
        return self.passed_key

    def pass_one(self) -> None:
        """Pass the current held-back trade (nothing rests: it changes nothing)."""
        self.passed_key = self.ts
        if not self.step():
            self.ended = True
            self.held = False

    def dispatch(self) -> None:
        if self.engine.resting:
            evs = self.engine.on_trade(self.side, self.tick, self.size, self.ts)
            if evs:
                self.venue_obj.push(evs, self.ts)


class ReplayVenue(SimulatedOrderEntry, SimulatedTransfers):
    """A venue replayed from a catalog with simulated matching and modelled latency.

    The constructor does no I/O; :meth:`start` opens the started symbols' instruments and
    books, :meth:`sources` the streams the backtest driver merges.
    """

    def __init__(
        self,
        name: str,
        catalog: Catalog,
        *,
        loop: VirtualTimeLoop,
        fills: FillModel,
        batch_size: int = 16_384,
    ):
        self.name = name
        self.catalog = catalog
        self.loop = loop
        self.fills = fills
        self.latency = fills.latency
        self.rules = fills.rules
        self.faults = fills.faults
        self.feed_offset_ns = fills.feed_offset_ns
        self.account = fills.account(name)
        self.sink: MarketSink = NullSink()
        self._batch_size = batch_size
        self._instruments: dict[str, Instrument] = {}
        self._books: dict[str, OrderBook] = {}
        self._xbooks: dict[str, OrderBook] = {}
        #: streams of the fast path that may be held out of the merge
        self._held: list[_HeldBack | _LocalTrades] = []
        #: the streams' batch sources (each reads ahead in a thread until closed)
        self._shared: list[SharedBatches] = []
        self._init_order_entry()

    # ---------------------------------------------------------------- Venue: data
    async def start(self, symbols: Sequence[str], sink: MarketSink) -> None:
        """Open the instruments and books of ``symbols`` (InvalidSymbol when the catalog
        has no data for one) and deliver to ``sink``."""
        held = {i.symbol for i in self.catalog.instruments() if i.venue == self.name}
        unknown = [s for s in symbols if s not in held]
        if unknown:
            raise InvalidSymbol(f"{self.name} has no data for {unknown}", venue=self.name)
        for sym in symbols:
            if sym in self._instruments:
                continue
            inst = self.fills.instrument(self.catalog.instrument(self.name, sym), self.name)
            self._instruments[sym] = inst
            self._books[sym] = OrderBook(self.name, sym, inst.tick)
            self._xbooks[sym] = OrderBook(self.name, sym, inst.tick)
            self._engines[sym] = self.fills.engine(inst, self._xbooks[sym], self.account)
        self.sink = sink

    async def stop(self) -> None:
        """Stop delivering; the exchange-side books are no longer needed (no request can
        reach the exchange any more): their memory goes back before the run's outputs
        are written."""
        self.sink = NullSink()
        self.close_sources()
        for book in self._xbooks.values():
            book.release()

    def close_sources(self) -> None:
        """End the streams' read-ahead threads."""
        for shared in self._shared:
            shared.close()

    def health(self) -> VenueHealth:
        return VenueHealth()

    def describe(self) -> dict[str, str | float]:
        return {
            **self.fills.describe(),
            "feed_offset_ms": self.feed_offset_ns / 1e6,
            **self.describe_transfers(),
        }

    def instrument(self, symbol: str) -> Instrument:
        try:
            return self._instruments[symbol]
        except KeyError:
            raise InvalidSymbol(f"unknown symbol {symbol}", venue=self.name) from None

    def book(self, symbol: str) -> OrderBook:
        try:
            return self._books[symbol]
        except KeyError:
            raise InvalidSymbol(f"unknown symbol {symbol}", venue=self.name) from None

    def sources(self, end_ns: int | None, start_ns: int | None = None) -> list[ReplaySource]:
        """Exchange-side sources first: on equal timestamps the exchange sees data first.

        With ``start_ns`` each stream is read from where its state at the window's start
        can be built (:meth:`Catalog.seek`: a book from its latest snapshot received
        before it, trades from the first one received at it), moved earlier by a positive
        feed offset (the strategy's side sees a message that much later)."""
        seek_ns = None if start_ns is None else start_ns - max(0, self.feed_offset_ns)
        xs: list[ReplaySource] = []
        ls: list[ReplaySource] = []
        for sym in self._instruments:
            scale = self._books[sym].scale
            eng = self._engines[sym]

            def open_(
                cls: type[Any],
                key: str,
                shared: SharedBatches,
                sym: str = sym,
                scale: Any = scale,
            ) -> Any:
                offset = self.feed_offset_ns if key == "local" else 0
                return cls(
                    self.catalog,
                    self.name,
                    sym,
                    scale,
                    key,
                    end_ns,
                    self._batch_size,
                    offset,
                    shared.reader(),
                )

            # both timelines walk the same files: read and validate each batch once
            book_batches = SharedBatches(
                self.catalog, self.name, sym, "book", scale, self._batch_size, seek_ns, True
            )
            self._shared.append(book_batches)
            xb = open_(_ExchangeBook, "exchange", book_batches)
            xb.bind(self, self._xbooks[sym], eng)
            lb = open_(_LocalBook, "local", book_batches)
            lb.bind(self, self._books[sym])
            xs.append(xb)
            ls.append(lb)
            if self.catalog.files(self.name, sym, "trades"):
                trade_batches = SharedBatches(
                    self.catalog, self.name, sym, "trades", scale, self._batch_size, seek_ns, True
                )
                self._shared.append(trade_batches)
                xt = open_(_ExchangeTrades, "exchange", trade_batches)
                xt.bind(self, eng)
                lt = open_(_LocalTrades, "local", trade_batches)
                lt.bind(self)
                xs.append(xt)
                ls.append(lt)
        return xs + ls

    # ---------------------------------------------------------------- clock hooks
    def _now(self) -> int:
        return self.loop.now_ns()

    def _at_exchange(self, ts: int, fn: Callable[..., None], *args: Any) -> None:
        if self._held:
            self.loop.call_at(self.loop.to_loop_time(ts), self._exchange_step, fn, args)
        else:
            self.loop.call_at(self.loop.to_loop_time(ts), fn, *args)

    def _at_client(self, ts: int, fn: Callable[..., None], *args: Any) -> None:
        self.loop.call_at(self.loop.to_loop_time(ts), fn, *args)

    def _exchange_step(self, fn: Callable[..., None], args: tuple[Any, ...]) -> None:
        """A request at the exchange: held-back books catch up first, and streams whose
        engine now has a resting order rejoin the merge."""
        for src in self._held:
            src.sync()
        fn(*args)
        for src in self._held:
            src.resume()

    def _sync_held(self) -> None:
        for src in self._held:
            src.sync()
