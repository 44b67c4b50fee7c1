"""`arbsim paper` and `arbsim live`: assemble venues, engine and journal; run on the wall
clock; write the run.

The strategy, execution, risk and latency code is the backtest's; only the venues and
the clock differ (DESIGN §1). Venues are built by their registered kinds:

- **paper** (kind ``paper``): simulated fills by the shared matching engine on the live
  public data of the venue's exchange (``exchange``, default: its name), with the
  configured balances, rules, queue model and latency (slept for real);
- **live** (kind ``mexc``, ``gateio``, ...): the venue package's live adapter, with API
  credentials taken ONLY from the environment variables the package names; they are
  never read from a config file, written to the run directory or logged.

Endpoints default to the real venues' (each venue package knows its own) and are
overridden per venue with ``--venue-url NAME=REST_URL,WS_URL``.

The run directory is a backtest's (config, orders, fills, arbs, latency, equity,
summary) plus ``journal.sqlite`` (:class:`~arbsim.runtime.journal.Journal`, DESIGN §8),
``catalog/`` (the market data received) and ``log.jsonl`` (the session's log as JSON
lines). While it runs, the session serves ``/metrics``, ``/health`` and ``/events``
(:mod:`arbsim.app.ops`, config ``ops``), logs a heartbeat every ``run.heartbeat_s`` and
raises the alerts of the config's ``alerts`` section (:mod:`arbsim.app.alerts`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import secrets
import shutil
import signal
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec

from arbsim.app import signals
from arbsim.app.backtest import _symbols, build_summary, build_venues
from arbsim.app.config import Config, build_strategy, dump_config
from arbsim.app.logs import run_log
from arbsim.app.ops import operations
from arbsim.app.registry import Registry
from arbsim.app.telemetry import ObservedRecorder, Telemetry
from arbsim.core.errors import ArbsimError, ConfigError, StrategyError, VenueError
from arbsim.core.ports import Endpoints
from arbsim.core.transfers import TransferNetwork
from arbsim.data.capture import MarketCapture
from arbsim.runtime.engine import Engine
from arbsim.runtime.journal import Journal, JournalState
from arbsim.runtime.loop import WallClock, scheduler
from arbsim.runtime.strategy import Strategy

RealtimeMode = Literal["paper", "live"]

log = logging.getLogger("arbsim.session")


class VenueUrls(msgspec.Struct, frozen=True):
    """A venue's REST base URL and public WebSocket URL (from ``--venue-url``)."""

    rest: str
    ws: str


def parse_venue_url(value: str) -> tuple[str, VenueUrls]:
    """``NAME=REST_URL,WS_URL`` -> ``(name, urls)``."""
    name, sep, rest = value.partition("=")
    parts = rest.split(",")
    if not sep or not name or len(parts) != 2 or not all(p.strip() for p in parts):
        raise ConfigError(f"--venue-url {value!r}: expected NAME=REST_URL,WS_URL")
    for url, schemes in ((parts[0], ("http://", "https://")), (parts[1], ("ws://", "wss://"))):
        if not url.strip().startswith(schemes):
            raise ConfigError(f"--venue-url {value!r}: {url!r} does not start with {schemes}")
    return name.strip(), VenueUrls(parts[0].strip(), parts[1].strip())


def with_urls(cfg: Config, urls: Mapping[str, VenueUrls]) -> Config:
    """``cfg`` with the endpoints of the venues ``urls`` names replaced."""
    unknown = sorted(set(urls) - {v.name for v in cfg.venues})
    if unknown:
        raise ConfigError(f"--venue-url names venues not in the config: {', '.join(unknown)}")
    venues = []
    for v in cfg.venues:
        u = urls.get(v.name)
        if u is not None:
            if not isinstance(v, Endpoints):
                raise ConfigError(f"--venue-url {v.name}: this venue's kind has no endpoints")
            v = msgspec.structs.replace(v, rest_url=u.rest, ws_url=u.ws)
        venues.append(v)
    return msgspec.structs.replace(cfg, venues=venues)


def final_books(engine: Engine) -> dict[str, dict[str, dict[str, float | None]]]:
    """The top of each book as the run last had it (to compare with the venue's)."""
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    for name, venue in engine.venues.items():
        for sym in engine.symbols[name]:
            try:
                book = venue.book(sym)
            except VenueError:  # the venue never started
                continue
            out.setdefault(name, {})[sym] = {"bid": book.best_bid, "ask": book.best_ask}
    return out


class RealtimeError(ArbsimError):
    """A venue failed during a paper / live run (run directory written)."""


class RealtimeResult(msgspec.Struct, kw_only=True):
    run_dir: str
    summary: dict[str, Any]


_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(n: int, width: int) -> str:
    out = ""
    for _ in range(width):
        n, r = divmod(n, 36)
        out = _DIGITS[r] + out
    return out


def run_token() -> str:
    """A token unique to one process of one run, so that client order ids never repeat
    across runs and restarts: the millisecond of the start (8 base-36 digits wrap after
    89 years) and two random digits (two starts in one millisecond)."""
    return _base36(time.time_ns() // 1_000_000, 8) + _base36(secrets.randbelow(36**2), 2)


async def run_realtime_async(
    cfg: Config,
    *,
    mode: RealtimeMode,
    out_dir: Path,
    duration_s: float | None = None,
    urls: Mapping[str, VenueUrls] | None = None,
    stop_event: asyncio.Event | None = None,
    env: Mapping[str, str] | None = None,
    strategy: Strategy | None = None,
    registry: Registry | None = None,
    resume: bool = False,
    resume_open_orders: Literal["cancel", "adopt"] = "cancel",
    on_ops: Callable[[str], None] | None = None,
) -> RealtimeResult:
    """Run ``cfg`` in ``mode`` on the running loop until ``duration_s`` elapses or
    ``stop_event`` is set; write the run directory (also when the strategy fails).

    ``on_ops`` is told the operations server's base URL once it listens (``cfg.ops``).

    ``resume``: ``out_dir`` is a run of this mode whose process ended (or was killed);
    its journal is read back and reconciled with every venue before trading (see
    :meth:`~arbsim.runtime.engine.Engine`), and the run continues in the same directory.

    Raises ConfigError for bad input (nothing written), StrategyError after writing what
    was recorded, and VenueError when a venue cannot be started (run directory written).
    """
    if mode not in ("paper", "live"):
        raise ConfigError(f"mode must be paper or live, got {mode!r}")
    if duration_s is not None and duration_s <= 0:
        raise ConfigError(f"--duration must be > 0, got {duration_s}")
    reg = registry or Registry.from_entry_points()
    cfg = with_urls(cfg, urls or {})
    if strategy is None:
        strategy = build_strategy(cfg, reg)
    symbols = _symbols(cfg, strategy, None)
    environ = os.environ if env is None else env
    webhook = cfg.alerts.webhook(environ)
    clock = WallClock()
    if not resume and out_dir.exists() and any(out_dir.iterdir()):
        raise ConfigError(
            f"--out {out_dir} exists and is not empty; pick a new run directory (or --resume it)"
        )
    # the market data the session receives, as received: its own backtest input
    capture = MarketCapture(out_dir / "catalog", source=f"received by an arbsim {mode} run")
    loop = asyncio.get_running_loop()
    setup = reg.setup(
        mode=mode,
        loop=loop,
        clock=clock,
        environ=environ,
        recorder=capture,
        probe_interval_s=cfg.ops.probe_interval_s,
        # paper venues move funds between their simulated accounts on the wall clock
        transfers=TransferNetwork(clock, scheduler(loop, clock)) if mode == "paper" else None,
    )
    try:
        venues = build_venues(cfg, reg, setup)
    except ConfigError:
        capture.close()
        if not resume:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    state: JournalState | None = None
    if resume:
        if not (out_dir / "journal.sqlite").is_file():
            raise ConfigError(f"--resume {out_dir}: no journal.sqlite there to resume from")
        journal = Journal(out_dir / "journal.sqlite")
        state = journal.load()
        if state.mode != mode:
            journal.close()
            raise ConfigError(
                f"--resume {out_dir}: that run is {state.mode or 'unknown'}, not {mode}"
            )
        journal.meta("resumed", dt.datetime.now(dt.UTC).isoformat())
    else:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.yaml").write_bytes(dump_config(cfg))
        journal = Journal(out_dir / "journal.sqlite")
        journal.meta("mode", mode)
        journal.meta("started", dt.datetime.now(dt.UTC).isoformat())
    id_prefix = f"{cfg.run.id_prefix}{run_token()}"
    journal.add_prefix(id_prefix)
    run_id = out_dir.resolve().name
    telemetry = Telemetry(
        mode=mode,
        run_id=run_id,
        alerts=cfg.alerts,
        max_skew_ms=cfg.ops.max_clock_skew_ms,
        events_kept=cfg.ops.events_kept,
    )
    recorder = ObservedRecorder(journal, telemetry)
    engine = Engine(
        strategy=strategy,
        venues=venues,
        symbols=symbols,
        loop=asyncio.get_running_loop(),
        clock=clock,
        risk_limits=cfg.risk,
        recorder=recorder,
        equity_interval_s=cfg.run.equity_interval_s,
        id_prefix=id_prefix,
        resume=state,
        resume_open_orders=resume_open_orders,
        shutdown_s=cfg.run.shutdown_s,
        observer=telemetry,
    )
    telemetry.attach(engine)
    started = False
    try:
        with run_log(out_dir / "log.jsonl", run_id):
            async with operations(
                telemetry,
                host=cfg.ops.host,
                port=cfg.ops.port,
                webhook_url=webhook,
                webhook_timeout_s=cfg.alerts.webhook_timeout_s,
                heartbeat_s=cfg.run.heartbeat_s,
                on_listen=on_ops,
            ):
                started = True
                log.info(
                    "%s run %s started%s", mode, run_id, " (resumed)" if resume else "",
                    extra={"event": "session_start", "mode": mode, "out": str(out_dir)},
                )  # fmt: skip
                return await _session(
                    engine, cfg, mode, out_dir, duration_s, stop_event, state, recorder,
                    capture, journal, telemetry,
                )  # fmt: skip
    except ConfigError:
        if started:
            raise
        # the operations server could not listen: nothing ran
        journal.close()
        capture.close()
        if not resume:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    raise AssertionError("unreachable")


async def _session(
    engine: Engine,
    cfg: Config,
    mode: RealtimeMode,
    out_dir: Path,
    duration_s: float | None,
    stop_event: asyncio.Event | None,
    state: JournalState | None,
    recorder: ObservedRecorder,
    capture: MarketCapture,
    journal: Journal,
    telemetry: Telemetry,
) -> RealtimeResult:
    """Run the engine and write the run directory (also when the run fails)."""
    clock = engine.clock
    error: BaseException | None = None
    reconciled: dict[str, dict[str, str]] = {}
    run_start = clock.now_ns()
    t0 = time.perf_counter()
    try:
        try:
            await engine.run_realtime(duration_s, stop_event, drain_s=cfg.run.drain_s)
            reconciled = await engine.reconcile()
        except (StrategyError, VenueError) as e:
            error = e
        finally:
            try:
                await engine.stop_venues()
            except Exception as e:  # stopping must not hide the run's outcome
                error = error or VenueError(f"stopping the venues failed: {e!r}")
    finally:
        run_end = clock.now_ns()
        wall = time.perf_counter() - t0
        summary = build_summary(engine, False, None, run_start, run_end, wall, reconciled, error)
        summary.update(mode=mode, data="live market streams")
        summary["books"] = final_books(engine)
        if state is not None:
            summary["resumed"] = engine.resumed
        recorder.write(out_dir, engine.latency.table(), summary, dump_config(cfg))
        capture.close()
        journal.meta("ended", dt.datetime.now(dt.UTC).isoformat())
        journal.meta("status", summary["status"])
        journal.close()
        telemetry.heartbeat()
        end = {k: summary.get(k) for k in ("status", "error", "orders", "fills", "pnl")}
        telemetry.events.publish("session", event="end", run_dir=str(out_dir), **end)
        log.log(
            logging.INFO if summary["status"] == "ok" else logging.ERROR,
            "%s run %s ended: %s", mode, telemetry.run_id, summary["status"],
            extra={"event": "session_end", **end},
        )  # fmt: skip
    if isinstance(error, StrategyError):
        raise StrategyError(f"{error} (run directory written: {out_dir})") from error
    if isinstance(error, ArbsimError):
        raise RealtimeError(f"{error} (run directory written: {out_dir})") from error
    return RealtimeResult(run_dir=str(out_dir), summary=summary)


def run_realtime(
    cfg: Config,
    *,
    mode: RealtimeMode,
    out_dir: Path,
    duration_s: float | None = None,
    urls: Mapping[str, VenueUrls] | None = None,
    env: Mapping[str, str] | None = None,
    strategy: Strategy | None = None,
    handle_signals: bool = True,
    resume: bool = False,
    resume_open_orders: Literal["cancel", "adopt"] = "cancel",
    on_ops: Callable[[str], None] | None = None,
) -> RealtimeResult:
    """:func:`run_realtime_async` on a new event loop; SIGINT / SIGTERM request a clean
    stop (drain, on_stop, cancel in-flight work and resting orders, write the run)."""

    async def main() -> RealtimeResult:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        installed: list[signal.Signals] = []
        if handle_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.add_signal_handler(sig, stop.set)
                    installed.append(sig)
        mask = signals.unblock(installed) if installed else None
        try:
            return await run_realtime_async(
                cfg,
                mode=mode,
                out_dir=out_dir,
                duration_s=duration_s,
                urls=urls,
                stop_event=stop,
                env=env,
                strategy=strategy,
                resume=resume,
                resume_open_orders=resume_open_orders,
                on_ops=on_ops,
            )
        finally:
            if mask is not None:
                signals.restore(mask)
            for sig in installed:
                loop.remove_signal_handler(sig)

    return asyncio.run(main())
