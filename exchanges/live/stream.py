"""The public market-data stream loop shared by the live venues.

One :class:`MarketStream` loop (connect, subscribe, keep alive, sync books, reconnect with
:class:`Backoff`) serves both venues; a venue's specifics (topics, frames, snapshots) come
from its :class:`MarketDialect`. :func:`apply_sync_events` feeds order-book sync output to
an :class:`arbsim.core.book.OrderBook`.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, Protocol

import aiohttp
import msgspec

from arbsim.core.book import OrderBook
from arbsim.core.errors import NetworkError, RetryableError, VenueError
from arbsim.core.model import Trade
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
    book: OrderBook, events: Sequence[SyncEvent], ts_local: int
) -> tuple[int, list[ResyncNeeded]]:
    """Apply a sync machine's output to ``book``.

    Returns
    -------
    tuple[int, list[ResyncNeeded]]
        Number of :class:`BookChanges` applied, and the resync requests to act on.
    """
    applied = 0
    resyncs: list[ResyncNeeded] = []
    for event in events:
        if isinstance(event, BookChanges):
            book.apply(
                [float(p) for p, _ in event.bids],
                [float(s) for _, s in event.bids],
                [float(p) for p, _ in event.asks],
                [float(s) for _, s in event.asks],
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
    """A book diff for one native symbol."""

    native: str
    diff: BookDiff


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

    def new_sync(self, native: str) -> DiffBookSync: ...

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
                self.ready.clear()
                if on_loss is not None:
                    on_loss()
                delay = self.backoff.next_delay()
                log.warning(
                    "%s %s lost (%s); reconnect in %.3fs", self.venue, self.role, reason, delay
                )
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
        Pause before asking for another snapshot after an unusable one.
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
        self.on_trade = on_trade
        self.clock = clock
        self.resync_delay_s = resync_delay_s
        self.syncs: dict[str, DiffBookSync] = {n: dialect.new_sync(n) for n in self.books}
        self.connections = 0
        self.resyncs = 0
        self.snapshots = 0
        self.resubscribes = 0
        self._snapshot_tasks: dict[str, asyncio.Task[None]] = {}

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
        for native, sync in self.syncs.items():
            sync.reset()
            self.books[native].clear()
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
        ts_local = self.clock()
        for event in self.dialect.parse(data, ts_local):
            if isinstance(event, DiffEvent):
                self._on_diff(event, ts_local)
            elif isinstance(event, TradeEvent):
                if self.on_trade is not None:
                    self.on_trade(event.trade)
            elif isinstance(event, Ack):
                if pending.pop(event.topic, None) is not None and not pending:
                    self._usable()
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
        sync = self.syncs.get(event.native)
        if sync is None:
            return
        self._apply(event.native, sync.on_diff(event.diff), ts_local)

    def _apply(self, native: str, events: Sequence[SyncEvent], ts_local: int) -> None:
        book = self.books[native]
        applied, resyncs = apply_sync_events(book, events, ts_local)
        if resyncs:
            self.resyncs += 1
            log.info("%s %s: resync (%s)", self.venue, native, resyncs[0].reason)
            # A book that cannot be trusted is emptied rather than left stale.
            book.clear()
            if self.dialect.rest_snapshot:
                self._request_snapshot(native, delay_s=self.resync_delay_s)
            else:
                self._start_task(native, self._resubscribe(native))
        elif applied and self.on_book is not None:
            self.on_book(native, book)

    # ---------------------------------------------------------------- resyncs
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
        sync = self.syncs[native]
        while True:
            if delay_s:
                await asyncio.sleep(delay_s)
            try:
                snapshot = await self.dialect.snapshot(native)
            except RetryableError as exc:
                log.warning("%s %s: snapshot failed (%s)", self.venue, native, exc)
                delay_s = max(self.resync_delay_s, 0.1)
                continue
            self.snapshots += 1
            events = sync.on_snapshot(snapshot)
            applied, resyncs = apply_sync_events(self.books[native], events, self.clock())
            if not resyncs:
                if applied and self.on_book is not None:
                    self.on_book(native, self.books[native])
                return
            self.books[native].clear()
            self.resyncs += 1
            delay_s = self.resync_delay_s

    def _cancel_snapshots(self) -> None:
        for task in self._snapshot_tasks.values():
            task.cancel()
        self._snapshot_tasks.clear()
