"""`arbsim record`: the live venues' public streams written to a Parquet catalog.

Each venue's public feed (its plug-in's ``feed``, no credentials) is started with a
:class:`~arbsim.data.capture.MarketCapture` as its recorder: every book update (the
snapshot at each (re)sync flagged, diffs with both timestamps and the venue's update
ids) and every public trade become catalog rows. Reconnects and resyncs are survived by
the feeds and show as flagged snapshots. A heartbeat line every few seconds says
messages/s per venue, resyncs and stream health. SIGINT / SIGTERM (or the duration)
stop the feeds, then every part is flushed and closed: the catalog is always readable.

While it records, the session serves ``/metrics`` (messages, book age, decode latency,
reconnects, resyncs), ``/health`` (each feed's stream, REST and clock) and ``/events``
(health changes, heartbeats) like a paper / live run (:mod:`arbsim.app.ops`), and logs
as JSON lines into ``CATALOG/logs/<run id>.jsonl``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import msgspec

from arbsim.app import signals
from arbsim.app.logs import run_log
from arbsim.app.ops import operations
from arbsim.app.realtime import VenueUrls, run_token
from arbsim.app.registry import Registry
from arbsim.app.telemetry import Telemetry
from arbsim.core.book import OrderBook
from arbsim.core.errors import ConfigError
from arbsim.core.model import Order, Trade, parse_symbol
from arbsim.core.ports import FeedSpec, MarketFeed
from arbsim.data.capture import MarketCapture
from arbsim.runtime.loop import WallClock


class RecordResult(msgspec.Struct, kw_only=True):
    catalog: str
    seconds: float
    book_messages: dict[str, int]
    trades: dict[str, int]
    resyncs: dict[str, int]


log = logging.getLogger("arbsim.record")


class _Counter:
    """The feeds' sink: counts what arrives per venue (the capture writes it) and tells
    the session's telemetry."""

    def __init__(self, telemetry: Telemetry | None = None) -> None:
        self.messages: dict[str, int] = {}
        self.telemetry = telemetry

    def on_book(self, venue: str, book: OrderBook) -> None:
        self.messages[venue] = self.messages.get(venue, 0) + 1
        if self.telemetry is not None:
            self.telemetry.book(venue, book)

    def on_trade(self, venue: str, trade: Trade) -> None:
        self.messages[venue] = self.messages.get(venue, 0) + 1
        if self.telemetry is not None:
            self.telemetry.trade(venue, trade)

    def on_order(self, order: Order) -> None:
        return None


async def record_async(
    venues: Sequence[str],
    symbols: Sequence[str],
    catalog: Path,
    *,
    duration_s: float | None = None,
    urls: Mapping[str, VenueUrls] | None = None,
    stop_event: asyncio.Event | None = None,
    heartbeat_s: float = 10.0,
    say: Callable[[str], None] = print,
    registry: Registry | None = None,
    metrics_host: str = "127.0.0.1",
    metrics_port: int | None = 0,
    probe_interval_s: float = 5.0,
    echo_heartbeat: bool = True,
    on_ops: Callable[[str], None] | None = None,
) -> RecordResult:
    """Record ``symbols`` of every venue in ``venues`` into ``catalog`` until the
    duration ends or ``stop_event`` is set.

    ``metrics_port``: where ``/metrics``, ``/health``, ``/events`` are served (0: an
    ephemeral port, None: nowhere); ``on_ops`` is told the URL. The start and each
    heartbeat are log records, and lines to ``say`` too with ``echo_heartbeat``."""
    if not venues:
        raise ConfigError("--venue: name at least one venue to record")
    if not symbols:
        raise ConfigError("--symbol: name at least one symbol to record")
    for s in symbols:
        try:
            parse_symbol(s)
        except ValueError as e:
            raise ConfigError(f"--symbol {s!r}: {e}") from None
    if duration_s is not None and duration_s <= 0:
        raise ConfigError(f"--duration must be > 0, got {duration_s}")
    urls = dict(urls or {})
    unknown = sorted(set(urls) - set(venues))
    if unknown:
        raise ConfigError(f"--venue-url names venues not recorded: {', '.join(unknown)}")
    reg = registry or Registry.from_entry_points()
    capture = MarketCapture(catalog, source=f"recorded by arbsim record: {', '.join(venues)}")
    setup = reg.setup(
        mode="paper",
        loop=asyncio.get_running_loop(),
        clock=WallClock(),
        environ=os.environ,
        recorder=capture,
        probe_interval_s=probe_interval_s,
    )
    feeds: dict[str, MarketFeed] = {}
    for name in venues:
        u = urls.get(name)
        spec = FeedSpec(name, u.rest if u else None, u.ws if u else None)
        feeds[name] = reg.feed(name, spec, setup)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    run_id = f"record-{stamp}-{run_token()[-4:]}"
    telemetry = Telemetry(mode="record", run_id=run_id)
    telemetry.health_of = {name: feed.health for name, feed in feeds.items()}
    sink = _Counter(telemetry)
    stop = stop_event or asyncio.Event()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    started: list[MarketFeed] = []
    try:
        with run_log(catalog / "logs" / f"{run_id}.jsonl", run_id):
            async with operations(
                telemetry, host=metrics_host, port=metrics_port, on_listen=on_ops
            ):
                for feed in feeds.values():
                    await feed.start(list(symbols), sink)
                    started.append(feed)
                telemetry.ready = True
                if echo_heartbeat:
                    say(f"recording {', '.join(symbols)} from {', '.join(venues)} into {catalog}")
                log.info(
                    "recording %s from %s into %s", ", ".join(symbols), ", ".join(venues),
                    catalog, extra={"event": "session_start", "mode": "record"},
                )  # fmt: skip
                deadline = None if duration_s is None else t0 + duration_s
                last, last_counts = loop.time(), dict(sink.messages)
                while not stop.is_set():
                    timeout = heartbeat_s
                    if deadline is not None:
                        timeout = min(timeout, deadline - loop.time())
                        if timeout <= 0:
                            break
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout)
                    now = loop.time()
                    if now - last >= heartbeat_s or stop.is_set():
                        span = now - last
                        rate = {
                            v: round((sink.messages.get(v, 0) - last_counts.get(v, 0)) / span, 1)
                            for v in venues
                        }
                        health = {v: feeds[v].health() for v in venues}
                        resyncs = sum(capture.stats.resyncs.values())
                        line = (
                            f"  {now - t0:6.0f}s  messages "
                            + ", ".join(f"{v} {r:.1f}/s" for v, r in rate.items())
                            + f"  resyncs {resyncs}  streams "
                            + ", ".join(
                                f"{v} {'up' if h.market else 'DOWN'}" for v, h in health.items()
                            )
                        )
                        if echo_heartbeat:
                            say(line)
                        snap = telemetry.snapshot()
                        telemetry.events.publish("heartbeat", rates=rate, resyncs=resyncs, **snap)
                        logging.getLogger("arbsim.heartbeat").info(
                            "heartbeat: " + " ".join(line.split()),
                            extra={"event": "heartbeat", "rates": rate, "resyncs": resyncs,
                                   **snap},
                        )  # fmt: skip
                        last, last_counts = now, dict(sink.messages)
                telemetry.closing = True
    finally:
        telemetry.closing = True
        for feed in started:
            with contextlib.suppress(Exception):  # a feed that fails to stop loses nothing
                await feed.stop()
        capture.close()
    return RecordResult(
        catalog=str(catalog),
        seconds=round(loop.time() - t0, 3),
        book_messages=capture.stats.book_messages,
        trades=capture.stats.trades,
        resyncs=capture.stats.resyncs,
    )


def record(
    venues: Sequence[str],
    symbols: Sequence[str],
    catalog: Path,
    *,
    duration_s: float | None = None,
    urls: Mapping[str, VenueUrls] | None = None,
    heartbeat_s: float = 10.0,
    say: Callable[[str], None] = print,
    metrics_port: int | None = 0,
    echo_heartbeat: bool = True,
    on_ops: Callable[[str], None] | None = None,
) -> RecordResult:
    """:func:`record_async` on a new loop; SIGINT / SIGTERM stop it cleanly."""

    async def main() -> RecordResult:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        installed: list[signal.Signals] = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
                installed.append(sig)
        mask = signals.unblock(installed) if installed else None
        try:
            return await record_async(
                venues, symbols, catalog, duration_s=duration_s, urls=urls,
                stop_event=stop, heartbeat_s=heartbeat_s, say=say, metrics_port=metrics_port,
                echo_heartbeat=echo_heartbeat, on_ops=on_ops,
            )  # fmt: skip
        finally:
            if mask is not None:
                signals.restore(mask)
            for sig in installed:
                loop.remove_signal_handler(sig)

    started = time.monotonic()
    result = asyncio.run(main())
    result.seconds = round(time.monotonic() - started, 3)
    return result
