"""REST plumbing of the live adapters: rate limits and the transport.

One :class:`RestTransport` per venue owns the venue's single ``aiohttp.ClientSession`` (the
WebSocket clients of that venue connect through the same session). A request goes through:

1. the client-side :class:`RateLimiter` (token buckets driven by the venue's rate-limit table,
   ``exchanges/<venue>/rules.py``: the rows the simulators enforce), and the server's last
   ``Retry-After``;
2. the request itself, built *after* the limiter so that signed timestamps are fresh;
3. error mapping through the venue's ``errors`` module. For an ORDER request (place,
   cancel) a 5xx, a timeout or a connection that broke after the request was sent is
   :class:`~arbsim.core.errors.OutcomeUnknown`: the order may exist and must be queried.

Secrets never reach a log: the transport logs method, path and the query without its
``signature``, and scrubs every registered secret from anything it logs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Protocol

import aiohttp
import msgspec
from yarl import URL

from arbsim.core.errors import NetworkError, OutcomeUnknown, RateLimited, VenueError
from arbsim.core.rules import RateLimit, VenueRules
from exchanges.live.credentials import Credentials
from exchanges.live.errors import ErrorSpec

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class Endpoint(msgspec.Struct, frozen=True, kw_only=True):
    """One REST endpoint as data.

    Attributes
    ----------
    method, path:
        HTTP method and path below the base URL.
    costs:
        ``(limit family, cost)`` pairs charged to the limiter: each family names a row of
        the venue's rate-limit table, whose scope picks the bucket (per market: one per
        request's market; per endpoint: one per ``path``).
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
        self.capacity = float(limit.limit)
        self.rate = limit.limit / limit.window_s
        self.tokens = self.capacity
        self.stamp = now

    def refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_for(self, cost: float) -> float:
        return 0.0 if self.tokens >= cost else (cost - self.tokens) / self.rate


class RateLimiter:
    """Token buckets following a venue's rate-limit table.

    A row of ``limit`` requests per ``window_s`` is a bucket of ``limit`` tokens refilled
    continuously over ``window_s``; a row scoped per market (per endpoint) has one bucket
    per market (per endpoint). A family without a row is not limited.

    Parameters
    ----------
    limits:
        The venue's rate-limit rows (``VenueRules.rate_limits``).
    max_wait_s:
        A request that would have to wait longer is refused with :class:`RateLimited`
        (``retry_after`` set) instead of queueing: a stale arbitrage leg is worse than none.
    clock, sleep:
        Injectable for tests (monotonic seconds; ``asyncio.sleep``).
    """

    def __init__(
        self,
        limits: Iterable[RateLimit],
        *,
        venue: str = "",
        max_wait_s: float = 2.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.limits = {limit.name: limit for limit in limits}
        self.venue = venue
        self.max_wait_s = max_wait_s
        self.clock = clock
        self.sleep = sleep
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._blocked_until = 0.0

    def _bucket(self, family: str, market: str, endpoint: str, now: float) -> _Bucket | None:
        limit = self.limits.get(family)
        if limit is None:
            return None
        key = (family, limit.key(market=market, endpoint=endpoint))
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(limit, now)
        return bucket

    def block(self, seconds: float) -> None:
        """The venue said ``Retry-After: seconds``: refuse everything until then."""
        self._blocked_until = max(self._blocked_until, self.clock() + seconds)

    def blocked_for(self) -> float:
        """Seconds left of a server-imposed pause (0 when none)."""
        return max(0.0, self._blocked_until - self.clock())

    async def acquire(
        self, costs: Iterable[tuple[str, float]], *, market: str = "", endpoint: str = ""
    ) -> None:
        """Take ``cost`` tokens from the bucket of every ``(family, cost)``, waiting up to
        ``max_wait_s``. ``market`` and ``endpoint`` pick the bucket of a family scoped
        per market or per endpoint.

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
            for family, cost in items:
                bucket = self._bucket(family, market, endpoint, now)
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

    @classmethod
    def for_account(
        cls,
        rules: VenueRules,
        errors: ErrorSpec,
        base_url: str,
        credentials: Credentials | None,
        *,
        limiter: RateLimiter | None = None,
        timeout_s: float = 10.0,
        headers: Mapping[str, str] | None = None,
    ) -> RestTransport:
        """The transport of a venue's REST client: a limiter following the venue's rate
        limits (unless ``limiter`` is given, to share one), errors mapped by the venue's
        spec, the credentials kept out of every log line."""
        secrets = (credentials.api_key, credentials.api_secret) if credentials else ()
        return cls(
            rules.name,
            base_url,
            errors.error_from_response,
            limiter or RateLimiter(rules.rate_limits, venue=rules.name),
            timeout_s=timeout_s,
            secrets=secrets,
            headers=headers,
        )

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
            The request's market (the bucket of a limit scoped per market).

        Raises
        ------
        VenueError
            The venue's error mapped to the arbsim tree; :class:`OutcomeUnknown` for an order
            request whose outcome cannot be known; :class:`NetworkError` otherwise.
        """
        await self.limiter.acquire(endpoint.costs, market=market, endpoint=endpoint.path)
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
            error: VenueError = NetworkError(
                f"cannot connect: {type(exc).__name__} ({exc})", venue=self.venue
            )
            error.request = f"{endpoint.method} {self.base_url}{full_path}"
            raise error from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            kind = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
            log.warning("%s %s: %s", self.venue, shown, kind)
            cls: type[VenueError] = OutcomeUnknown if endpoint.order else NetworkError
            error = cls(f"request failed: {kind}", code=kind, venue=self.venue)
            error.request = f"{endpoint.method} {self.base_url}{full_path}"
            raise error from None
        elapsed_ms = (time.perf_counter() - started) * 1000
        if status >= 400:
            error = self.error_mapper(status, body, headers, order_request=endpoint.order)
            error.request = f"{endpoint.method} {self.base_url}{full_path}"
            error.http_status = status
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
