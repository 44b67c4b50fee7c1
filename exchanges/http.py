"""Shared connection plumbing of the live adapters: REST transport, rate limits, backoff.

One :class:`RestTransport` per venue owns the venue's single ``aiohttp.ClientSession`` (the
WebSocket clients of that venue connect through the same session). A request goes through:

1. the client-side :class:`RateLimiter` (token buckets keyed by the venue's published limits,
   given as data by each venue's ``rest`` module), and the server's last ``Retry-After``;
2. the request itself, built *after* the limiter so that signed timestamps are fresh;
3. error mapping through the venue's ``errors`` module. For an ORDER request (place,
   cancel) a 5xx, a timeout or a connection that broke after the request was sent is
   :class:`~arbsim.errors.OutcomeUnknown`: the order may exist and must be queried.

Secrets never reach a log: the transport logs method, path and the query without its
``signature``, and scrubs every registered secret from anything it logs.

:class:`Backoff` (reconnect delays with jitter, seeded) and :func:`apply_sync_events`
(order-book sync output -> :class:`arbsim.book.OrderBook`) are used by both venues' stream
clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol

import aiohttp
import msgspec
from yarl import URL

from arbsim.book import OrderBook
from arbsim.errors import (
    InvalidSymbol,
    NetworkError,
    OutcomeUnknown,
    RateLimited,
    RetryableError,
    VenueError,
)
from arbsim.model import Fill, Instrument, Order, OrderRequest, OrderStatus, Trade
from exchanges.common import (
    BookChanges,
    BookDiff,
    BookSnapshot,
    DiffBookSync,
    ResyncNeeded,
    SyncEvent,
)

__all__ = [
    "Ack",
    "Backoff",
    "DiffEvent",
    "Endpoint",
    "ErrorMapper",
    "MarketDialect",
    "MarketStream",
    "OrderTracker",
    "Prepared",
    "RateLimit",
    "RateLimiter",
    "ReconnectEvent",
    "Refused",
    "Response",
    "RestTransport",
    "StreamEvent",
    "SubscriptionRefused",
    "TradeEvent",
    "apply_sync_events",
    "redact_query",
]

log = logging.getLogger("exchanges.http")

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


# --------------------------------------------------------------------------------------------
# Rate limits
# --------------------------------------------------------------------------------------------


class RateLimit(msgspec.Struct, frozen=True, kw_only=True):
    """``capacity`` units per ``period_s`` (a token bucket refilled continuously)."""

    capacity: float
    period_s: float


class Endpoint(msgspec.Struct, frozen=True, kw_only=True):
    """One REST endpoint as data.

    Attributes
    ----------
    method, path:
        HTTP method and path below the base URL.
    costs:
        ``(limit key, cost)`` pairs charged to the limiter. A key may contain ``{market}``
        (Gate's per-market order limit), filled in per request.
    signed:
        Needs credentials.
    order:
        Creates or cancels an order: an unknown outcome is :class:`OutcomeUnknown`.
    """

    method: str
    path: str
    costs: tuple[tuple[str, float], ...] = ()
    signed: bool = False
    order: bool = False


class _Bucket:
    __slots__ = ("capacity", "rate", "stamp", "tokens")

    def __init__(self, limit: RateLimit, now: float) -> None:
        self.capacity = limit.capacity
        self.rate = limit.capacity / limit.period_s
        self.tokens = limit.capacity
        self.stamp = now

    def refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_for(self, cost: float) -> float:
        return 0.0 if self.tokens >= cost else (cost - self.tokens) / self.rate


class RateLimiter:
    """Token buckets per limit key, following a venue's published limits.

    Parameters
    ----------
    limits:
        Limit family -> :class:`RateLimit`. A concrete key ``"place:BTC_USDT"`` uses the
        family before the colon (``"place"``), so each market gets its own bucket.
    max_wait_s:
        A request that would have to wait longer is refused with :class:`RateLimited`
        (``retry_after`` set) instead of queueing: a stale arbitrage leg is worse than none.
    clock, sleep:
        Injectable for tests (monotonic seconds; ``asyncio.sleep``).
    """

    def __init__(
        self,
        limits: Mapping[str, RateLimit],
        *,
        venue: str = "",
        max_wait_s: float = 2.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.limits = dict(limits)
        self.venue = venue
        self.max_wait_s = max_wait_s
        self.clock = clock
        self.sleep = sleep
        self._buckets: dict[str, _Bucket] = {}
        self._blocked_until = 0.0

    def _bucket(self, key: str, now: float) -> _Bucket | None:
        bucket = self._buckets.get(key)
        if bucket is None:
            limit = self.limits.get(key.partition(":")[0])
            if limit is None:
                return None
            bucket = self._buckets[key] = _Bucket(limit, now)
        return bucket

    def block(self, seconds: float) -> None:
        """The venue said ``Retry-After: seconds``: refuse everything until then."""
        self._blocked_until = max(self._blocked_until, self.clock() + seconds)

    def blocked_for(self) -> float:
        """Seconds left of a server-imposed pause (0 when none)."""
        return max(0.0, self._blocked_until - self.clock())

    async def acquire(self, costs: Iterable[tuple[str, float]]) -> None:
        """Take ``cost`` tokens from every keyed bucket, waiting up to ``max_wait_s``.

        Raises
        ------
        RateLimited
            During a server-imposed pause, or when the wait would exceed ``max_wait_s``.
        """
        items = list(costs)
        while True:
            blocked = self.blocked_for()
            if blocked > 0:
                raise RateLimited(
                    f"venue asked to pause requests for {blocked:.3f}s more",
                    code="client",
                    venue=self.venue,
                    retry_after=blocked,
                )
            now = self.clock()
            wait = 0.0
            buckets: list[tuple[_Bucket, float]] = []
            for key, cost in items:
                bucket = self._bucket(key, now)
                if bucket is None:
                    continue
                bucket.refill(now)
                buckets.append((bucket, cost))
                wait = max(wait, bucket.wait_for(cost))
            if wait <= 0:
                for bucket, cost in buckets:
                    bucket.tokens -= cost
                return
            if wait > self.max_wait_s:
                raise RateLimited(
                    f"client-side rate limit: {wait:.3f}s wait exceeds {self.max_wait_s}s",
                    code="client",
                    venue=self.venue,
                    retry_after=wait,
                )
            await self.sleep(wait)


# --------------------------------------------------------------------------------------------
# REST transport
# --------------------------------------------------------------------------------------------


class ErrorMapper(Protocol):
    """A venue's ``errors.error_from_response``."""

    def __call__(
        self,
        http_status: int,
        body: bytes,
        headers: Mapping[str, str],
        *,
        order_request: bool = False,
    ) -> VenueError: ...


class Prepared(msgspec.Struct, frozen=True, kw_only=True):
    """A request ready to send: raw (already encoded) query, raw body, extra headers."""

    query: str = ""
    body: bytes = b""
    headers: dict[str, str] = {}


class Response(msgspec.Struct, frozen=True, kw_only=True):
    """A successful (2xx) answer."""

    status: int
    body: bytes
    headers: dict[str, str]


_SIGNATURE_PARAM = "signature="


def redact_query(query: str) -> str:
    """The query without its ``signature`` parameter (what may be logged)."""
    return "&".join(p for p in query.split("&") if p and not p.startswith(_SIGNATURE_PARAM))


class RestTransport:
    """REST requests of one venue over its single ``aiohttp.ClientSession``.

    Parameters
    ----------
    venue:
        Venue name (errors and logs).
    base_url:
        ``https://api.mexc.com`` / ``https://api.gateio.ws/api/v4``; tests use 127.0.0.1.
    error_mapper:
        The venue's ``error_from_response``.
    limiter:
        Client-side rate limiter (the venue's limits).
    timeout_s:
        Total time allowed for one request.
    secrets:
        Strings that must never appear in a log line (API key, secret).
    default_retry_after_s:
        Pause applied after a 418/429 that carries no ``Retry-After``.

    Notes
    -----
    No network I/O in the constructor: the session is created on the first request (or by
    :meth:`open`) inside the running event loop.
    """

    def __init__(
        self,
        venue: str,
        base_url: str,
        error_mapper: ErrorMapper,
        limiter: RateLimiter,
        *,
        timeout_s: float = 10.0,
        secrets: Sequence[str] = (),
        default_retry_after_s: float = 1.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.venue = venue
        self.base_url = base_url.rstrip("/")
        self.error_mapper = error_mapper
        self.limiter = limiter
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.default_retry_after_s = default_retry_after_s
        self._secrets = tuple(s for s in secrets if s)
        self._headers = dict(headers or {})
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The venue's session (created on first use)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers=self._headers)
        return self._session

    async def open(self) -> None:
        """Create the session now (idempotent)."""
        _ = self.session

    async def close(self) -> None:
        """Close the session (idempotent)."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    def scrub(self, text: str) -> str:
        """``text`` with every registered secret replaced by ``***``."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    async def send(
        self,
        endpoint: Endpoint,
        prepare: Callable[[], Prepared],
        *,
        path: str | None = None,
        market: str = "",
    ) -> Response:
        """Rate-limit, build (``prepare()``), send and check one request.

        Parameters
        ----------
        endpoint:
            The endpoint row (method, limits, order flag).
        prepare:
            Builds the query/body/headers; called after the limiter so signatures are fresh.
        path:
            Overrides ``endpoint.path`` (paths with an id, e.g. ``/spot/orders/123``).
        market:
            Fills ``{market}`` in limit keys.

        Raises
        ------
        VenueError
            The venue's error mapped to the arbsim tree; :class:`OutcomeUnknown` for an order
            request whose outcome cannot be known; :class:`NetworkError` otherwise.
        """
        costs = [(key.format(market=market), cost) for key, cost in endpoint.costs]
        await self.limiter.acquire(costs)
        req = prepare()
        full_path = path or endpoint.path
        url_text = self.base_url + full_path + (f"?{req.query}" if req.query else "")
        # encoded=True: the query is sent byte for byte as signed (order and encoding kept).
        url = URL(url_text, encoded=True)
        shown = self.scrub(f"{endpoint.method} {full_path}?{redact_query(req.query)}")
        started = time.perf_counter()
        try:
            async with self.session.request(
                endpoint.method,
                url,
                data=req.body or None,
                headers=req.headers,
                timeout=self.timeout,
            ) as resp:
                body = await resp.read()
                status = resp.status
                headers = {k: v for k, v in resp.headers.items()}
        except aiohttp.ClientConnectorError as exc:
            # Never connected: the request did not leave this host, even for an order.
            log.warning("%s %s: cannot connect (%s)", self.venue, shown, type(exc).__name__)
            raise NetworkError(f"cannot connect: {type(exc).__name__}", venue=self.venue) from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            kind = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
            log.warning("%s %s: %s", self.venue, shown, kind)
            cls: type[VenueError] = OutcomeUnknown if endpoint.order else NetworkError
            raise cls(f"request failed: {kind}", code=kind, venue=self.venue) from None
        elapsed_ms = (time.perf_counter() - started) * 1000
        if status >= 400:
            error = self.error_mapper(status, body, headers, order_request=endpoint.order)
            if isinstance(error, RateLimited):
                pause = (
                    error.retry_after
                    if error.retry_after is not None
                    else self.default_retry_after_s
                )
                error.retry_after = pause
                self.limiter.block(pause)
            log.info(
                "%s %s -> %d in %.1f ms: %s",
                self.venue,
                shown,
                status,
                elapsed_ms,
                self.scrub(body[:300].decode(errors="replace")),
            )
            raise error
        log.debug("%s %s -> %d in %.1f ms", self.venue, shown, status, elapsed_ms)
        return Response(status=status, body=body, headers=headers)


# --------------------------------------------------------------------------------------------
# Streams: reconnect delays and book application
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Market-data stream: one loop for both venues, venue specifics in a dialect
# --------------------------------------------------------------------------------------------


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


class MarketStream:
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
        self.dialect = dialect
        self.venue = venue
        self._session = session
        self.books = dict(books)
        self.on_book = on_book
        self.on_trade = on_trade
        self.clock = clock
        self.backoff = backoff or Backoff()
        self.ping_interval_s = ping_interval_s
        self.resync_delay_s = resync_delay_s
        self.syncs: dict[str, DiffBookSync] = {n: dialect.new_sync(n) for n in self.books}
        self.ready = asyncio.Event()
        self.connections = 0
        self.resyncs = 0
        self.snapshots = 0
        self.resubscribes = 0
        self.error: BaseException | None = None
        self._task: asyncio.Task[None] | None = None
        self._snapshot_tasks: dict[str, asyncio.Task[None]] = {}
        self._ws: aiohttp.ClientWebSocketResponse | None = None

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> asyncio.Task[None]:
        """Run the stream in a task (reconnecting until :meth:`stop`)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name=f"{self.venue}-market")
        return self._task

    async def stop(self) -> None:
        """Close the connection and end the task."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # A failure of the task was already reported through wait_ready / error.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def wait_ready(self, timeout_s: float) -> None:
        """Wait until every subscription is confirmed (re-raise a fatal stream error)."""
        waiter = asyncio.ensure_future(self.ready.wait())
        tasks: set[asyncio.Future[Any]] = {waiter}
        if self._task is not None:
            tasks.add(self._task)
        done, _ = await asyncio.wait(tasks, timeout=timeout_s, return_when="FIRST_COMPLETED")
        waiter.cancel()
        if self._task is not None and self._task in done:
            self._task.result()
        if not self.ready.is_set():
            raise NetworkError(f"{self.venue}: market stream not ready in {timeout_s}s")

    async def drop(self) -> None:
        """Close the current connection (tests / operators): the stream reconnects."""
        if self._ws is not None:
            await self._ws.close()

    # ---------------------------------------------------------------- loop
    async def run(self) -> None:
        """Connect, subscribe and process frames; reconnect with backoff on any loss."""
        try:
            while True:
                try:
                    await self._connection()
                    reason = "closed by the venue"
                except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
                    reason = type(exc).__name__
                except SubscriptionRefused:
                    raise
                except VenueError as exc:
                    reason = str(exc)
                self.ready.clear()
                self._cancel_snapshots()
                delay = self.backoff.next_delay()
                log.warning("%s market stream lost (%s); reconnect in %.3fs",
                            self.venue, reason, delay)  # fmt: skip
                await asyncio.sleep(delay)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self.error = exc
            raise
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
            now_s = int(self.clock() // 1_000_000_000)
            for topic, frame in self.dialect.subscribe_frames(list(self.books), now_s):
                pending[topic] = frame
                await ws.send_str(frame)
            pinger = asyncio.create_task(self._ping(ws))
            try:
                async for msg in ws:
                    if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                        self._on_frame(msg.data, pending)
                    elif msg.type is aiohttp.WSMsgType.ERROR:
                        break
            finally:
                pinger.cancel()
                self._ws = None

    async def _ping(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        while True:
            await asyncio.sleep(self.ping_interval_s)
            await ws.send_str(self.dialect.ping_frame(int(self.clock() // 1_000_000_000)))

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
                    self.backoff.reset()
                    self.ready.set()
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
        now_s = int(self.clock() // 1_000_000_000)
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


# --------------------------------------------------------------------------------------------
# Order tracking: REST answers and private pushes merged into arbsim Orders
# --------------------------------------------------------------------------------------------


class OrderTracker:
    """The client's view of its orders on one venue, fed by REST answers and pushes.

    Pushes and REST answers race (a fill can be pushed before the place request returns,
    an order's "canceled" before its last fill), so:

    * an order is registered (NEW) *before* its request is sent;
    * any sign of life from the venue moves it to ACCEPTED first;
    * fills are de-duplicated by trade id and drive PARTIALLY_FILLED / FILLED;
    * a terminal state reported while fills are still missing is held back until they
      arrive (or a REST reconciliation supplies them).

    Every change is handed to ``on_order`` as an independent snapshot.
    """

    def __init__(self, venue: str, clock: Callable[[], int] = time.time_ns) -> None:
        self.venue = venue
        self.clock = clock
        self.on_order: Callable[[Order], None] | None = None
        self.orders: dict[str, Order] = {}
        self._by_order_id: dict[str, str] = {}
        self._trades: dict[str, set[str]] = {}
        self._held: dict[str, tuple[OrderStatus, Decimal]] = {}
        self._closed: dict[str, asyncio.Event] = {}

    # ---------------------------------------------------------------- lookup
    def get(self, client_order_id: str) -> Order | None:
        """The tracked order, if any."""
        return self.orders.get(client_order_id)

    def client_id(self, order_id: str, client_order_id: str = "") -> str | None:
        """Resolve a push to a tracked client id (by client id, else by venue id)."""
        if client_order_id and client_order_id in self.orders:
            return client_order_id
        return self._by_order_id.get(order_id)

    def snapshot(self, client_order_id: str) -> Order:
        """An independent copy of a tracked order."""
        return self.orders[client_order_id].snapshot()

    # ---------------------------------------------------------------- lifecycle
    def register(self, req: OrderRequest) -> Order:
        """Track a new order (NEW) before its request leaves."""
        order = Order.from_request(req, self.clock())
        self.orders[req.client_order_id] = order
        self._trades[req.client_order_id] = set()
        self._closed[req.client_order_id] = asyncio.Event()
        return order

    def adopt(self, order: Order) -> None:
        """Track an order learnt from the venue (e.g. placed before a restart)."""
        cid = order.client_order_id
        if cid and cid not in self.orders:
            self.orders[cid] = order
            self._trades[cid] = {f.trade_id for f in order.fills}
            self._closed[cid] = asyncio.Event()
            if order.order_id:
                self._by_order_id[order.order_id] = cid
            if not order.is_open:
                self._closed[cid].set()

    def accepted(self, client_order_id: str, order_id: str, ts: int = 0) -> None:
        """The venue acknowledged the order under ``order_id``."""
        order = self.orders[client_order_id]
        if order_id:
            order.order_id = order_id
            self._by_order_id[order_id] = client_order_id
        if order.status is OrderStatus.NEW:
            now = ts or self.clock()
            order.ts_accepted = now
            order.transition(OrderStatus.ACCEPTED, now)
            self._notify(order)

    def rejected(self, client_order_id: str, error: VenueError) -> None:
        """The venue refused the order."""
        order = self.orders[client_order_id]
        if order.status is OrderStatus.NEW:
            order.reject_code = error.code or ""
            order.reject_reason = str(error.args[0]) if error.args else ""
            order.transition(OrderStatus.REJECTED, self.clock())
            self._closed[client_order_id].set()
            self._notify(order)

    def fill(self, client_order_id: str, fill: Fill) -> bool:
        """Apply one fill (ignored when its trade id was seen). Returns True if applied."""
        order = self.orders[client_order_id]
        seen = self._trades[client_order_id]
        if fill.trade_id in seen or (not order.is_open and order.status is not OrderStatus.NEW):
            return False
        if order.status is OrderStatus.NEW:
            self.accepted(client_order_id, fill.order_id, fill.ts_local)
        seen.add(fill.trade_id)
        order.apply_fill(fill)
        held = self._held.get(client_order_id)
        if held is not None and order.filled_qty >= held[1] and order.is_open:
            del self._held[client_order_id]
            order.transition(held[0], fill.ts_local)
        if not order.is_open:
            self._closed[client_order_id].set()
        self._notify(order)
        return True

    def finished(
        self, client_order_id: str, status: OrderStatus, filled_qty: Decimal, ts: int = 0
    ) -> None:
        """The venue says the order ended (CANCELED / EXPIRED) with ``filled_qty`` filled."""
        order = self.orders[client_order_id]
        if not order.is_open:
            return
        if order.status is OrderStatus.NEW:
            self.accepted(client_order_id, order.order_id, ts)
        if status is OrderStatus.FILLED or order.filled_qty < filled_qty:
            # FILLED follows from the fills; a cancel waits for the fills it reports.
            if status is not OrderStatus.FILLED:
                self._held[client_order_id] = (status, filled_qty)
            return
        order.transition(status, ts or self.clock())
        self._closed[client_order_id].set()
        self._notify(order)

    def reconcile(self, remote: Order, fills: Sequence[Fill]) -> Order:
        """Merge a REST view of an order (and its fills) into the tracked one."""
        cid = remote.client_order_id
        if cid not in self.orders:
            self.adopt(remote)
            return remote.snapshot()
        if remote.status is not OrderStatus.NEW:
            self.accepted(cid, remote.order_id)
        for f in sorted(fills, key=lambda f: (f.ts_exchange, f.trade_id)):
            self.fill(cid, f)
        if remote.status in (OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REJECTED):
            self.finished(cid, remote.status, remote.filled_qty)
        return self.snapshot(cid)

    async def wait_closed(self, client_order_id: str, timeout_s: float) -> bool:
        """Wait until the order is terminal; False on timeout."""
        event = self._closed[client_order_id]
        try:
            await asyncio.wait_for(event.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    def _notify(self, order: Order) -> None:
        if self.on_order is not None:
            self.on_order(order.snapshot())


# --------------------------------------------------------------------------------------------
# The static part every live venue shares
# --------------------------------------------------------------------------------------------


class SymbolTable:
    """Started symbols of one live venue: native names, instruments and books."""

    def __init__(self, venue: str) -> None:
        self.venue = venue
        self.instruments: dict[str, Instrument] = {}
        self.natives: dict[str, str] = {}  # "BTC/USDT" -> "BTCUSDT"
        self.symbols: dict[str, str] = {}  # "BTCUSDT" -> "BTC/USDT"
        self.books: dict[str, OrderBook] = {}  # by native symbol

    def add(self, symbol: str, native: str, inst: Instrument) -> None:
        self.instruments[symbol] = inst
        self.natives[symbol] = native
        self.symbols[native] = symbol
        self.books[native] = OrderBook(self.venue, symbol, inst.tick)

    def instrument(self, symbol: str) -> Instrument:
        try:
            return self.instruments[symbol]
        except KeyError:
            raise InvalidSymbol(f"{symbol} was not started", venue=self.venue) from None

    def native(self, symbol: str) -> str:
        native = self.natives.get(symbol)
        if native is None:
            raise InvalidSymbol(f"{symbol} was not started", venue=self.venue)
        return native

    def book(self, symbol: str) -> OrderBook:
        return self.books[self.native(symbol)]
