"""The operations side of a paper / live / record session, over HTTP (aiohttp; never
loaded by a backtest):

- an HTTP server on 127.0.0.1 by default (``ops.host``, ``ops.port`` / ``--metrics-port``;
  port 0: an ephemeral port, printed at start):

  - ``GET /metrics``: Prometheus text format (``prometheus_client``'s exposition of the
    session's registry, :mod:`arbsim.app.telemetry`);
  - ``GET /health``: per venue market stream, private stream, REST, clock skew; JSON,
    200 when every venue is healthy, 503 otherwise (and while starting);
  - ``GET /events``: server-sent events, one JSON object per order state change, fill,
    arbitrage, risk event, health change, alert and heartbeat (``id`` = the event's
    ``seq``, ``event`` = its type). A follower gets every event the session still
    keeps after ``?since=SEQ`` or its ``Last-Event-ID`` (default: all kept), then each
    new one as it happens; ``?types=fill,order`` filters.

- the alert webhook: each alert POSTed as JSON, from a queue, never holding up trading;
- a heartbeat every ``run.heartbeat_s`` and a health watch (a venue going down or coming
  back is logged, published and alerted).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import msgspec
from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler

from arbsim.app.telemetry import Telemetry
from arbsim.core.errors import ConfigError

__all__ = ["EVENT_TYPES", "OpsServer", "WebhookSender", "operations"]

log = logging.getLogger("arbsim.ops")

#: the types of event /events carries
EVENT_TYPES = frozenset(
    {"order", "fill", "arbitrage", "risk", "health", "alert", "heartbeat", "session"}
)
_SHUTDOWN_S = 2.0


class WebhookSender:
    """POSTs alerts as JSON to one URL, in order, from a bounded queue (the oldest is
    dropped when the webhook cannot keep up); failures are logged, never raised. The
    URL is never logged (it may carry a token)."""

    def __init__(self, url: str, timeout_s: float = 5.0, queue_size: int = 100) -> None:
        self.url = url
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=queue_size)
        self.delivered = 0
        self.failed = 0
        self.dropped = 0
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None

    def send(self, alert: dict[str, Any]) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.queue.task_done()
            self.dropped += 1
        self.queue.put_nowait(alert)

    async def start(self) -> None:
        self._session = aiohttp.ClientSession()
        self._task = asyncio.create_task(self._worker(), name="alert-webhook")

    async def _worker(self) -> None:
        while True:
            alert = await self.queue.get()
            try:
                await self._post(alert)
            finally:
                self.queue.task_done()

    async def _post(self, alert: dict[str, Any]) -> None:
        assert self._session is not None
        body = msgspec.json.encode(alert, enc_hook=str)
        try:
            async with self._session.post(
                self.url, data=body, headers={"Content-Type": "application/json"},
                timeout=self.timeout,
            ) as resp:  # fmt: skip
                await resp.read()
                if resp.status >= 300:
                    self.failed += 1
                    log.warning(
                        "alert webhook answered HTTP %d to alert %s", resp.status, alert["alert"],
                        extra={"event": "webhook_failed", "status": resp.status},
                    )  # fmt: skip
                    return
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            self.failed += 1
            log.warning(
                "alert webhook failed for alert %s (%s)", alert["alert"], type(e).__name__,
                extra={"event": "webhook_failed"},
            )  # fmt: skip
            return
        self.delivered += 1

    async def stop(self, drain_s: float = 5.0) -> None:
        """Deliver what is queued (for up to ``drain_s``), then close."""
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.queue.join(), drain_s)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None


class OpsServer:
    """``/metrics``, ``/health`` and ``/events`` of one session on ``host:port``."""

    def __init__(
        self, telemetry: Telemetry, host: str = "127.0.0.1", port: int = 0,
        keepalive_s: float = 15.0,
    ) -> None:  # fmt: skip
        self.telemetry = telemetry
        self.host = host
        self.port = port
        self.keepalive_s = keepalive_s
        self.url = ""
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self.index)
        app.router.add_get(
            "/metrics", make_aiohttp_handler(self.telemetry.registry, disable_compression=True)
        )
        app.router.add_get("/health", self.health)
        app.router.add_get("/events", self.events)
        return app

    async def start(self) -> str:
        """Listen; the base URL (ConfigError when the address cannot be used)."""
        runner = web.AppRunner(
            self.app(), access_log=None, handle_signals=False, shutdown_timeout=_SHUTDOWN_S
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except OSError as e:
            await runner.cleanup()
            reason = "address already in use" if e.errno == errno.EADDRINUSE else e.strerror
            raise ConfigError(
                f"cannot listen on {self.host}:{self.port} for /metrics, /health, /events "
                f"(--metrics-port / ops.port): {reason or e}"
            ) from None
        self._runner = runner
        port = runner.addresses[0][1] if runner.addresses else self.port
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{host}:{port}"
        return self.url

    async def stop(self) -> None:
        """End every event stream, then stop serving."""
        self.telemetry.events.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ------------------------------------------------------------ handlers
    async def index(self, request: web.Request) -> web.Response:
        t = self.telemetry
        body = {
            "run_id": t.run_id,
            "mode": t.mode,
            "endpoints": {
                "/metrics": "Prometheus text format",
                "/health": "per venue health; 200 healthy, 503 not",
                "/events": "server-sent events (JSON): ?since=SEQ&types="
                + ",".join(sorted(EVENT_TYPES)),
            },
        }
        return web.json_response(body)

    async def health(self, request: web.Request) -> web.Response:
        rep = self.telemetry.report()
        return web.Response(
            body=msgspec.json.encode(rep),
            status=200 if rep.healthy else 503,
            content_type="application/json",
        )

    async def events(self, request: web.Request) -> web.StreamResponse:
        since_text = request.headers.get("Last-Event-ID") or request.query.get("since", "0")
        try:
            since = int(since_text)
        except ValueError:
            raise web.HTTPBadRequest(
                text=f"since / Last-Event-ID must be an event number, got {since_text!r}"
            ) from None
        types: set[str] | None = None
        if request.query.get("types"):
            types = {t.strip() for t in request.query["types"].split(",") if t.strip()}
            unknown = sorted(types - EVENT_TYPES)
            if unknown:
                raise web.HTTPBadRequest(
                    text=f"unknown event types {', '.join(unknown)}; known: "
                    + ", ".join(sorted(EVENT_TYPES))
                )
        resp = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await resp.prepare(request)
        sub = self.telemetry.events.subscribe(since, types)
        try:
            await resp.write(b": arbsim events\n\n")
            while True:
                try:
                    item = await asyncio.wait_for(sub.next(), self.keepalive_s)
                except TimeoutError:
                    await resp.write(b": keepalive\n\n")
                    continue
                if item is None:
                    if sub.overflowed:
                        await resp.write(b"event: overflow\ndata: {}\n\n")
                    break
                seq, etype, data = item
                await resp.write(b"id: %d\nevent: %s\ndata: %s\n\n" % (seq, etype.encode(), data))
            await resp.write_eof()
        except (ConnectionResetError, aiohttp.ClientConnectionResetError):
            pass
        finally:
            self.telemetry.events.unsubscribe(sub)
        return resp


@contextlib.asynccontextmanager
async def operations(
    telemetry: Telemetry,
    *,
    host: str = "127.0.0.1",
    port: int | None = 0,
    webhook_url: str | None = None,
    webhook_timeout_s: float = 5.0,
    heartbeat_s: float = 0.0,
    health_every_s: float = 0.1,
    on_listen: Callable[[str], None] | None = None,
) -> AsyncIterator[OpsServer | None]:
    """The operations side of a session for the length of the block: the server (unless
    ``port`` is None), the alert webhook (with a URL), the heartbeat (every
    ``heartbeat_s``, 0: none) and the health watch. Yields the server."""
    sender: WebhookSender | None = None
    server: OpsServer | None = None
    tasks: list[asyncio.Task[None]] = []
    if webhook_url:
        sender = WebhookSender(webhook_url, webhook_timeout_s)
        await sender.start()
        telemetry.webhook = sender.send
    try:
        if port is not None:
            server = OpsServer(telemetry, host, port)
            url = await server.start()
            log.info(
                "operations server on %s: /metrics /health /events", url,
                extra={"event": "ops_listening", "url": url},
            )  # fmt: skip
            if on_listen is not None:
                on_listen(url)

        async def every(interval: float, fn: Callable[[], object]) -> None:
            while True:
                await asyncio.sleep(interval)
                try:
                    fn()
                except Exception:  # an operator's view must never stop the session
                    log.exception("operations task failed", extra={"event": "ops_error"})

        tasks.append(asyncio.create_task(every(health_every_s, telemetry.check_health)))
        if heartbeat_s > 0:
            tasks.append(asyncio.create_task(every(heartbeat_s, telemetry.heartbeat)))
        yield server
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.stop()
        else:
            telemetry.events.close()
        if sender is not None:
            telemetry.webhook = None
            await sender.stop()
