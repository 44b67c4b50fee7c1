"""The public market-data stream loop shared by the live venues.

One :class:`MarketStream` loop (connect, subscribe, keep alive, sync books, reconnect with
:class:`Backoff`) serves both venues; a venue's specifics (topics, frames, snapshots) come
from its :class:`MarketDialect`. :func:`apply_sync_events` feeds order-book sync output to
an :class:`arbsim.core.book.OrderBook`.

A frame that cannot be decoded or applied (:class:`~arbsim.core.errors.MalformedMessage`)
never ends a stream: every :class:`StreamTask` counts it per channel in
:class:`MalformedCounter` (logged once per venue and channel), and the market stream syncs
the books it may concern again; ``ready`` is clear until they are synced, so ``up`` tells
the truth.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol

import aiohttp
import msgspec

from arbsim.core.book import OrderBook
from arbsim.core.errors import ArbsimError, MalformedMessage, NetworkError, VenueError
from arbsim.core.model import Trade
from arbsim.core.ports import BookUpdate
from exchanges.live.booksync import (
    BookChanges,
    BookDiff,
    BookSnapshot,
    DiffBookSync,
    ResyncNeeded,
    SyncEvent,
)

log = logging.getLogger(__name__)


class Backoff:
    """Exponential reconnect delays with full jitter, seeded for reproducible tests.

    ``delay(n)`` for the n-th consecutive failure is uniform in
    ``[base * factor**n / 2, base * factor**n]``, capped at ``cap``.
    """

    def __init__(
        self,
        *,
        base_s: float = 0.5,
        factor: float = 2.0,
        cap_s: float = 30.0,
        seed: int | None = None,
    ) -> None:
        self.base_s = base_s
        self.factor = factor
        self.cap_s = cap_s
        self._rng = random.Random(seed)
        self.failures = 0

    def next_delay(self) -> float:
        """The delay before the next attempt (and count one more failure)."""
        top = min(self.cap_s, self.base_s * self.factor**self.failures)
        self.failures += 1
        return self._rng.uniform(top / 2, top)

    def reset(self) -> None:
        """A connection succeeded: start from ``base`` again."""
        self.failures = 0


def apply_sync_events(
    book: OrderBook,
    events: Sequence[SyncEvent],
    ts_local: int,
    before: Callable[[BookUpdate], None] | None = None,
) -> tuple[int, list[ResyncNeeded]]:
    """Apply a sync machine's output to ``book``; ``before`` sees each update just before
    it is applied (a recorder, the paper venue's exchange side).

    Returns
    -------
    tuple[int, list[ResyncNeeded]]
        Number of :class:`BookChanges` applied, and the resync requests to act on.
    """
    applied = 0
    resyncs: list[ResyncNeeded] = []
    for event in events:
        if isinstance(event, BookChanges):
            bids = [(float(p), float(s)) for p, s in event.bids]
            asks = [(float(p), float(s)) for p, s in event.asks]
            if before is not None:
                before(
                    BookUpdate(
                        symbol=book.symbol,
                        ts_exchange=event.ts_exchange,
                        ts_local=ts_local,
                        seq=event.update_id,
                        bids=bids,
                        asks=asks,
                        snapshot=event.replace,
                    )
                )
            book.apply_pairs(
                bids,
                asks,
                ts_exchange=event.ts_exchange,
                ts_local=ts_local,
                seq=event.update_id,
                snapshot=event.replace,
            )
            applied += 1
        else:
            resyncs.append(event)
    return applied, resyncs


class Ack(msgspec.Struct, frozen=True):
    """The venue confirmed a subscription."""

    topic: str


class Refused(msgspec.Struct, frozen=True):
    """The venue refused a subscription (MEXC "Blocked!", Gate ``error``)."""

    topic: str
    reason: str


class DiffEvent(msgspec.Struct, frozen=True):
    """A book diff for one native symbol (``channel``: the one it came on)."""

    native: str
    diff: BookDiff
    channel: str = ""


class TradeEvent(msgspec.Struct, frozen=True):
    """A public trade."""

    trade: Trade


class ReconnectEvent(msgspec.Struct, frozen=True):
    """The venue asked the client to reconnect (Gate ``event: upgrade``)."""

    reason: str


StreamEvent = Ack | Refused | DiffEvent | TradeEvent | ReconnectEvent


class MarketDialect(Protocol):
    """What :class:`MarketStream` needs to know about one venue's public WebSocket."""

    url: str

    def subscribe_frames(self, natives: Sequence[str], now_s: int) -> list[tuple[str, str]]:
        """``(topic, frame)`` per subscription request."""
        ...

    def ping_frame(self, now_s: int) -> str: ...

    def parse(self, data: str | bytes, ts_local: int) -> list[StreamEvent]: ...

    def new_sync(self, native: str, tick: Decimal | None = None) -> DiffBookSync:
        """The sync machine of one book (``tick``: the instrument's price grid)."""
        ...

    async def snapshot(self, native: str) -> BookSnapshot: ...

    @property
    def rest_snapshot(self) -> bool:
        """Books start from (and resync with) a REST snapshot; else the channel pushes
        full books itself and a gap is repaired by unsubscribing and subscribing again
        (Gate ``spot.obu``)."""
        ...

    def resubscribe_frames(self, native: str, now_s: int) -> list[str]:
        """Unsubscribe + subscribe frames of one book (used when not ``rest_snapshot``)."""
        ...


class SubscriptionRefused(VenueError):
    """A topic was refused: reconnecting will not help (wrong topic, blocked symbol)."""


class MalformedCounter:
    """Malformed messages of one stream: counted per channel, the last one kept, logged
    once per venue and channel (a venue that sends garbage would otherwise flood the log).

    Attributes
    ----------
    counts:
        Channel -> messages refused.
    last:
        The last error.
    internal:
        How many of them broke a handler in an unforeseen way (``code="internal"``, see
        :func:`unexpected`): a bug to fix, where the others are the venue's garbage.
    """

    def __init__(self, venue: str, role: str) -> None:
        self.venue = venue
        self.role = role
        self.counts: dict[str, int] = {}
        self.last: MalformedMessage | None = None
        self.internal = 0

    @property
    def total(self) -> int:
        """Messages refused on every channel."""
        return sum(self.counts.values())

    def record_push_failure(self, error: Exception, channel: str) -> None:
        """Count a private push that could not be applied: a malformed one as it is, one
        the order tracker refused (e.g. a fill the order cannot take) as
        ``inconsistent``, any other error as ``internal`` (the stream goes on)."""
        if isinstance(error, MalformedMessage):
            error.channel = error.channel or channel
            self.record(error)
        elif isinstance(error, ArbsimError):
            self.record(
                MalformedMessage(
                    f"push not applicable: {error}"[:200],
                    code="inconsistent",
                    venue=self.venue,
                    channel=channel,
                )
            )
        else:
            self.record(unexpected(error, self.venue, channel))

    def record(self, error: MalformedMessage) -> None:
        """Count ``error`` (its venue is set when the decoder did not know it)."""
        if error.venue is None:
            error.venue = self.venue
        channel = error.channel or "?"
        if error.code == "internal":
            self.internal += 1
        seen = self.counts.get(channel, 0)
        self.counts[channel] = seen + 1
        self.last = error
        if seen == 0:
            log.warning(
                "%s %s: malformed message on %s (%s); counted, later ones on this channel "
                "are not logged",
                self.venue,
                self.role,
                channel,
                error.args[0] if error.args else "",
            )
        else:
            log.debug("%s %s: malformed message on %s", self.venue, self.role, channel)


def unexpected(error: Exception, venue: str, channel: str = "") -> MalformedMessage:
    """A message that broke the handler in an unforeseen way, as a malformed message
    (``code="internal"``): the stream goes on, the count and the log show it."""
    return MalformedMessage(
        f"unhandled {type(error).__name__} while reading a message",
        code="internal",
        venue=venue,
        channel=channel,
    )


BookCallback = Callable[[str, OrderBook], None]
TradeCallback = Callable[[Trade], None]


class StreamTask(abc.ABC):
    """A WebSocket client running in one task until stopped: start, stop, wait until
    ready (re-raising a fatal error of the task), drop the connection (it reconnects).

    Subclasses call :meth:`_init_task`, implement :meth:`run` (usually
    :meth:`_reconnect_forever` over one connection, calling :meth:`_usable` when it is
    usable and setting ``_ws`` while connected) and may extend :meth:`stop`.
    """

    venue: str
    backoff: Backoff
    ping_interval_s: float

    def _init_task(
        self,
        venue: str,
        role: str,
        *,
        backoff: Backoff | None = None,
        ping_interval_s: float = 15.0,
    ) -> None:
        self.venue = venue
        self.role = role
        self.backoff = backoff or Backoff()
        self.ping_interval_s = ping_interval_s
        self.ready = asyncio.Event()
        self.error: BaseException | None = None
        #: why the last connection was lost (told when the stream never gets ready)
        self.last_loss: str | None = None
        """The error that ended the task (reconnecting would not help), if any."""
        self.malformed = MalformedCounter(venue, role)
        """Messages that could not be decoded or used (the stream went on)."""
        #: connections lost since the start (each is followed by a reconnect)
        self.losses = 0
        self._task: asyncio.Task[None] | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None

    def _usable(self) -> None:
        """The connection is up (and subscribed, logged in): wake the waiters, and let the
        next loss start the backoff afresh."""
        self.backoff.reset()
        self.ready.set()

    async def _reconnect_forever(
        self,
        connection: Callable[[], Coroutine[Any, Any, None]],
        *,
        fatal: tuple[type[BaseException], ...] = (),
        closed: str = "closed",
        on_loss: Callable[[], None] | None = None,
    ) -> None:
        """Serve ``connection`` again and again, with backoff between attempts, until
        cancelled; an error of a ``fatal`` type (reconnecting would not help) ends the task.

        ``closed`` is what the log says when the venue ended a connection cleanly;
        ``on_loss`` drops what belonged to a lost connection (``ready`` is cleared first).
        The error that ends the task is kept in ``error``.
        """
        try:
            while True:
                try:
                    await connection()
                    reason = closed
                except fatal:
                    raise
                except (aiohttp.ClientError, TimeoutError, ConnectionError, VenueError) as exc:
                    reason = str(exc) or type(exc).__name__
                self.last_loss = reason
                self.losses += 1
                self.ready.clear()
                if on_loss is not None:
                    on_loss()
                delay = self.backoff.next_delay()
                log.warning(
                    "%s %s lost (%s); reconnect in %.3fs", self.venue, self.role, reason, delay,
                    extra={"venue": self.venue, "event": "stream_lost", "stream": self.role},
                )  # fmt: skip
                await asyncio.sleep(delay)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self.error = exc
            raise

    async def _pinger(
        self, conn: aiohttp.ClientWebSocketResponse, frame: Callable[[], str]
    ) -> None:
        """Send ``frame()`` every ``ping_interval_s`` (the venue's application-level ping)."""
        while True:
            await asyncio.sleep(self.ping_interval_s)
            await conn.send_str(frame())

    @abc.abstractmethod
    async def run(self) -> None:
        """Connect and serve until cancelled, reconnecting on losses."""

    def start(self) -> asyncio.Task[None]:
        """Run in a task until :meth:`stop`."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name=f"{self.venue}-{self.role}")
        return self._task

    async def stop(self) -> None:
        """End the task (closing the connection)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # A failure of the task was already reported through wait_ready / error.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    @property
    def up(self) -> bool:
        """Running and synchronised (a stream that died or is resyncing is not up)."""
        return self._task is not None and not self._task.done() and self.ready.is_set()

    async def wait_ready(self, timeout_s: float) -> None:
        """Wait until :meth:`run` says the client is usable; re-raise its fatal error."""
        if self._task is None:
            self.start()
        waiter = asyncio.ensure_future(self.ready.wait())
        tasks: set[asyncio.Future[Any]] = {waiter}
        if self._task is not None:
            tasks.add(self._task)
        done, _ = await asyncio.wait(tasks, timeout=timeout_s, return_when="FIRST_COMPLETED")
        waiter.cancel()
        if self._task is not None and self._task in done:
            self._task.result()
        if not self.ready.is_set():
            raise NetworkError(
                f"{self.venue}: {self.role} not ready in {timeout_s}s"
                + (f" (last error: {self.last_loss})" if self.last_loss else ""),
                code="not_ready",
                venue=self.venue,
            )

    async def drop(self) -> None:
        """Close the current connection (tests / operators): the client reconnects."""
        if self._ws is not None:
            await self._ws.close()


class MarketStream(StreamTask):
    """Public book stream of one venue: subscribe, sync books, keep alive, reconnect.

    Parameters
    ----------
    dialect:
        The venue's frames, topics and snapshot request.
    session:
        Returns the venue's ``aiohttp.ClientSession`` (the REST transport's).
    books:
        Native symbol -> book fed with every change (``ts_exchange`` from the venue,
        ``ts_local`` from ``clock``).
    on_book, on_trade:
        Called after each applied change / public trade.
    clock:
        Wall clock in ns for ``ts_local``.
    backoff:
        Reconnect delays (seeded in tests).
    ping_interval_s:
        Application-level ping period.
    resync_delay_s:
        Pause before asking for a snapshot after a resync; a failed or unusable snapshot is
        asked for again after a pause that starts there (at least 50 ms) and doubles up to
        5 s.

    Notes
    -----
    ``ready`` is set once every subscription is acknowledged *and* every book is synced;
    it is cleared while any book is being synced again (a gap, a crossed book, a malformed
    message), so ``up`` is false whenever a book cannot be trusted.
    """

    def __init__(
        self,
        dialect: MarketDialect,
        session: Callable[[], aiohttp.ClientSession],
        books: Mapping[str, OrderBook],
        *,
        venue: str,
        on_book: BookCallback | None = None,
        on_trade: TradeCallback | None = None,
        on_update: Callable[[BookUpdate], None] | None = None,
        clock: Callable[[], int] = time.time_ns,
        backoff: Backoff | None = None,
        ping_interval_s: float = 15.0,
        resync_delay_s: float = 0.05,
    ) -> None:
        self._init_task(venue, "market stream", backoff=backoff, ping_interval_s=ping_interval_s)
        self.dialect = dialect
        self._session = session
        self.books = dict(books)
        self.on_book = on_book
        #: sees each book update just before it is applied
        self.on_update = on_update
        self.on_trade = on_trade
        self.clock = clock
        self.resync_delay_s = resync_delay_s
        self.syncs: dict[str, DiffBookSync] = {
            n: dialect.new_sync(n, book.scale.tick) for n, book in self.books.items()
        }
        self.connections = 0
        self.resyncs = 0
        self.snapshots = 0
        self.resubscribes = 0
        self._snapshot_tasks: dict[str, asyncio.Task[None]] = {}
        self._subscribed = False
        self._unsynced: set[str] = set(self.books)

    @property
    def stale(self) -> int:
        """Stale duplicate depth frames ignored (never a resync)."""
        return sum(sync.stale for sync in self.syncs.values())

    # ---------------------------------------------------------------- loop
    async def run(self) -> None:
        """Connect, subscribe and process frames; reconnect with backoff on any loss."""
        try:
            await self._reconnect_forever(
                self._connection,
                fatal=(SubscriptionRefused,),
                closed="closed by the venue",
                on_loss=self._cancel_snapshots,
            )
        finally:
            self._cancel_snapshots()

    async def _connection(self) -> None:
        self._subscribed = False
        for native, sync in self.syncs.items():
            sync.reset()
            self.books[native].clear()
            self._unsynced.add(native)
        async with self._session().ws_connect(self.dialect.url, autoping=True) as ws:
            self._ws = ws
            self.connections += 1
            pending: dict[str, str] = {}
            now_s = self._now_s()
            for topic, frame in self.dialect.subscribe_frames(list(self.books), now_s):
                pending[topic] = frame
                await ws.send_str(frame)
            pinger = asyncio.create_task(
                self._pinger(ws, lambda: self.dialect.ping_frame(self._now_s()))
            )
            try:
                async for msg in ws:
                    if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                        self._on_frame(msg.data, pending)
                    elif msg.type is aiohttp.WSMsgType.ERROR:
                        break
            finally:
                pinger.cancel()
                self._ws = None

    def _now_s(self) -> int:
        return int(self.clock() // 1_000_000_000)

    def _on_frame(self, data: str | bytes, pending: dict[str, str]) -> None:
        """Handle one frame. A frame that cannot be decoded is counted and the books it may
        concern are synced again; only a refused subscription or the venue's request to
        reconnect leave this method with an error."""
        ts_local = self.clock()
        try:
            events = self.dialect.parse(data, ts_local)
        except MalformedMessage as exc:
            self._on_malformed(exc)
            return
        except Exception as exc:  # a decoder bug must not end the stream: count and resync
            self._on_malformed(unexpected(exc, self.venue))
            return
        for event in events:
            if isinstance(event, DiffEvent):
                self._on_diff(event, ts_local)
            elif isinstance(event, TradeEvent):
                if self.on_trade is not None:
                    self.on_trade(event.trade)
            elif isinstance(event, Ack):
                if pending.pop(event.topic, None) is not None and not pending:
                    self._subscribed = True
                    self._check_ready()
                for native in self.books:
                    if native in event.topic:
                        self._request_snapshot(native, delay_s=0.0)
            elif isinstance(event, Refused):
                if event.topic in pending:
                    raise SubscriptionRefused(
                        f"{event.topic}: {event.reason}", code="refused", venue=self.venue
                    )
            else:
                raise NetworkError(f"venue asked to reconnect: {event.reason}", venue=self.venue)

    def _on_diff(self, event: DiffEvent, ts_local: int) -> None:
        native = event.native
        sync = self.syncs.get(native)
        if sync is None:
            return
        try:
            changed = self._apply(native, sync.on_diff(event.diff), ts_local)
        except MalformedMessage as exc:
            exc.symbol = exc.symbol or native
            exc.channel = exc.channel or event.channel
            self._on_malformed(exc, [native])
            return
        except Exception as exc:  # a bug must not end the stream: count and resync
            self._on_malformed(unexpected(exc, self.venue, event.channel), [native])
            return
        if changed and self.on_book is not None:
            self.on_book(native, self.books[native])

    def _apply(self, native: str, events: Sequence[SyncEvent], ts_local: int) -> bool:
        """Apply a sync machine's output to the book; whether the book changed (and is
        usable). A resync request, or a book left crossed on its own tick grid, syncs the
        book again."""
        book = self.books[native]
        applied, resyncs = apply_sync_events(book, events, ts_local, self.on_update)
        if not resyncs and book.is_crossed:
            # what the book holds (its tick grid) is the truth, not the sync's decimals
            resyncs = [ResyncNeeded(reason=f"{native}: crossed book", action="snapshot")]
        if resyncs:
            self._resync(native, resyncs[0].reason)
            return False
        self._mark(native)
        return applied > 0

    # ---------------------------------------------------------------- readiness
    def _mark(self, native: str) -> None:
        """Record whether ``native``'s book is synced, and whether the stream is ready."""
        if self.syncs[native].synced:
            self._unsynced.discard(native)
            self._check_ready()
        else:
            self._unsynced.add(native)
            self.ready.clear()

    def _check_ready(self) -> None:
        if self._subscribed and not self._unsynced and not self.ready.is_set():
            self._usable()

    # ---------------------------------------------------------------- resyncs
    def _on_malformed(self, error: MalformedMessage, natives: Sequence[str] | None = None) -> None:
        """Count a message that could not be used and sync again the books it may concern:
        ``natives``, else its symbol's book, else (unknown symbol) every book."""
        self.malformed.record(error)
        if natives is None:
            if error.symbol is None:
                natives = list(self.books)
            else:
                natives = [error.symbol] if error.symbol in self.books else []
        for native in natives:
            self._resync(native, f"malformed message: {error.args[0] if error.args else ''}")

    def _resync(self, native: str, reason: str) -> None:
        """Forget ``native``'s book and sync it again (snapshot or resubscribe)."""
        self.resyncs += 1
        log.info("%s %s: resync (%s)", self.venue, native, reason)
        self.syncs[native].reset()
        # A book that cannot be trusted is emptied rather than left stale.
        self.books[native].clear()
        self._unsynced.add(native)
        self.ready.clear()
        if self.dialect.rest_snapshot:
            self._request_snapshot(native, delay_s=self.resync_delay_s)
        else:
            self._start_task(native, self._resubscribe(native))

    def _request_snapshot(self, native: str, *, delay_s: float) -> None:
        if self.dialect.rest_snapshot:
            self._start_task(native, self._snapshot(native, delay_s))
        # else: the channel's own full push (after the subscription ack) is the snapshot

    def _start_task(self, native: str, coro: Coroutine[Any, Any, None]) -> None:
        """One resync at a time per book."""
        task = self._snapshot_tasks.get(native)
        if task is not None and not task.done():
            coro.close()
            return
        self._snapshot_tasks[native] = asyncio.create_task(coro)

    async def _resubscribe(self, native: str) -> None:
        conn = self._ws
        if conn is None or conn.closed:
            return  # the reconnect subscribes afresh
        now_s = self._now_s()
        try:
            for frame in self.dialect.resubscribe_frames(native, now_s):
                await conn.send_str(frame)
        except (ConnectionError, aiohttp.ClientError) as exc:
            log.warning("%s %s: resubscribe not sent (%s)", self.venue, native, exc)
            return
        self.resubscribes += 1

    async def _snapshot(self, native: str, delay_s: float) -> None:
        """Fetch snapshots until one loads (a failed request or an unusable snapshot is
        retried after a pause that grows to a few seconds)."""
        sync = self.syncs[native]
        failures = 0
        while True:
            if delay_s:
                await asyncio.sleep(delay_s)
            # an unusable snapshot or a failed request is tried again, less and less often
            retry = min(5.0, max(self.resync_delay_s, 0.05) * 2 ** min(failures, 7))
            failures += 1
            try:
                snapshot = await self.dialect.snapshot(native)
            except MalformedMessage as exc:
                self.malformed.record(exc)
                delay_s = retry
                continue
            except VenueError as exc:
                log.warning("%s %s: snapshot failed (%s)", self.venue, native, exc)
                delay_s = retry
                continue
            self.snapshots += 1
            try:
                events = sync.on_snapshot(snapshot)
                applied, resyncs = apply_sync_events(
                    self.books[native], events, self.clock(), self.on_update
                )
            except MalformedMessage as exc:
                exc.symbol = exc.symbol or native
                self.malformed.record(exc)
                self.books[native].clear()
                delay_s = retry
                continue
            if not resyncs and self.books[native].is_crossed:
                sync.reset()
                resyncs = [ResyncNeeded(reason=f"{native}: crossed book", action="snapshot")]
            if not resyncs:
                self._mark(native)
                if applied and self.on_book is not None:
                    self.on_book(native, self.books[native])
                return
            self.books[native].clear()
            self.resyncs += 1
            delay_s = retry

    def _cancel_snapshots(self) -> None:
        for task in self._snapshot_tasks.values():
            task.cancel()
        self._snapshot_tasks.clear()
