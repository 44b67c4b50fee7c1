"""`arbsim paper` and `arbsim live`: assemble venues, engine and journal; run on the wall
clock; write the run.

The strategy, execution, risk and latency code is the backtest's; only the venues and
the clock differ (DESIGN §1). Venues are found by import path (:data:`REALTIME_VENUES`),
so ``arbsim`` never imports ``exchanges`` statically.

- **paper**: each configured venue is a :class:`exchanges.simulated.paper.PaperVenue`: the public
  stream of the live adapter (built without credentials) and simulated fills by the
  shared matching engine, with the venue's balances, rules, queue model and latency from
  the config.
- **live**: each venue is the live adapter itself with API credentials taken ONLY from
  the environment (:data:`CREDENTIAL_ENV`); they are never read from a config file,
  written to the run directory or logged.

Endpoints default to the real venues (:data:`DEFAULT_URLS`) and are overridden per
venue (``--venue-url NAME=REST_URL,WS_URL``). MEXC's REST URL is the host
(``https://api.mexc.com``), Gate's includes ``/api/v4``.

The run directory is a backtest's (config, orders, fills, arbs, latency, equity,
summary) plus ``journal.sqlite`` (:class:`Journal`, DESIGN §8).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import signal
import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec

from arbsim.app.backtest import build_summary
from arbsim.app.config import (
    Config,
    VenueConfig,
    dump_config,
    load_object,
    strategy_class,
    strategy_params,
)
from arbsim.core.errors import ArbsimError, ConfigError, VenueError
from arbsim.core.model import Fill, Order, OrderRequest
from arbsim.runtime.engine import Engine, Strategy, StrategyError
from arbsim.runtime.latency import LatencyModel, build_latency
from arbsim.runtime.loop import WallClock
from arbsim.runtime.recorder import ArbRecord, RunRecorder

Mode = Literal["paper", "live"]

#: venue kind -> "module:Class" (paper wraps a live adapter's market data)
REALTIME_VENUES: dict[str, str] = {
    "paper": "exchanges.simulated.paper:PaperVenue",
    "mexc": "exchanges.mexc.venue:MexcVenue",
    "gateio": "exchanges.gateio.venue:GateVenue",
}
#: exchange -> its credentials class
CREDENTIAL_CLASSES: dict[str, str] = {
    "mexc": "exchanges.mexc.rest:MexcCredentials",
    "gateio": "exchanges.gateio.rest:GateCredentials",
}
#: exchange -> (API key variable, API secret variable): the only source of credentials
CREDENTIAL_ENV: dict[str, tuple[str, str]] = {
    "mexc": ("ARBSIM_MEXC_API_KEY", "ARBSIM_MEXC_API_SECRET"),
    "gateio": ("ARBSIM_GATEIO_API_KEY", "ARBSIM_GATEIO_API_SECRET"),
}


class VenueUrls(msgspec.Struct, frozen=True):
    """A venue's REST base URL and public WebSocket URL."""

    rest: str
    ws: str


#: the real venues' endpoints (PROTOCOLS.md A1 / B1)
DEFAULT_URLS: dict[str, VenueUrls] = {
    "mexc": VenueUrls("https://api.mexc.com", "wss://wbs-api.mexc.com/ws"),
    "gateio": VenueUrls("https://api.gateio.ws/api/v4", "wss://api.gateio.ws/ws/v4/"),
}


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


def exchange_of(v: VenueConfig) -> str:
    """Which real exchange a configured venue is: its name, else its ``rules``."""
    for key in (v.name, v.rules):
        if key in DEFAULT_URLS:
            return key
    known = ", ".join(DEFAULT_URLS)
    raise ConfigError(
        f"venue {v.name!r}: paper and live need a known exchange ({known}) as the venue "
        "name or its `rules`"
    )


def credentials_from_env(cfg: Config, env: Mapping[str, str]) -> dict[str, Any]:
    """Each venue's credentials from the environment; ConfigError naming the variables
    that are missing (never their values)."""
    out: dict[str, Any] = {}
    missing: list[str] = []
    for v in cfg.venues:
        exchange = exchange_of(v)
        key_var, secret_var = CREDENTIAL_ENV[exchange]
        key, secret = env.get(key_var, ""), env.get(secret_var, "")
        absent = [n for n, val in ((key_var, key), (secret_var, secret)) if not val]
        if absent:
            missing.extend(f"{n} (venue {v.name})" for n in absent)
            continue
        cls = load_object(CREDENTIAL_CLASSES[exchange], "credentials")
        out[v.name] = cls(key, secret)
    if missing:
        raise ConfigError(
            "live trading needs API credentials in the environment; missing: " + ", ".join(missing)
        )
    return out


# ---------------------------------------------------------------------------- journal
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ts INTEGER NOT NULL,
    event TEXT NOT NULL,
    venue TEXT NOT NULL,
    symbol TEXT NOT NULL,
    client_order_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    status TEXT NOT NULL,
    filled_qty TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS fills (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    venue TEXT NOT NULL,
    symbol TEXT NOT NULL,
    client_order_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    trade_id TEXT NOT NULL,
    side INTEGER NOT NULL,
    price TEXT NOT NULL,
    qty TEXT NOT NULL,
    fee TEXT NOT NULL,
    fee_asset TEXT NOT NULL,
    liquidity TEXT NOT NULL,
    ts_exchange INTEGER NOT NULL,
    ts_local INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS arbs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    arb_id INTEGER NOT NULL,
    event TEXT NOT NULL,
    outcome TEXT NOT NULL,
    record TEXT NOT NULL
);
"""


class Journal:
    """The crash-safe record of a paper / live run (``journal.sqlite``, DESIGN §8).

    Every order event (sent, acked, rejected, each update) and every fill is appended
    as its own committed transaction the moment it happens (SQLite WAL mode, stdlib
    ``sqlite3``), so a crash of the process keeps every record already written.
    ``synchronous=NORMAL``: commits do not wait for an fsync (an order is never delayed
    by the disk); an OS crash or power loss may lose the last few transactions.
    Exact quantities are decimal strings.
    """

    def __init__(self, path: Path):
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def order(self, event: str, order: Order, ts: int, detail: str = "") -> None:
        if not detail:
            detail = msgspec.json.encode(msgspec.structs.replace(order, fills=[])).decode()
        self._db.execute(
            "INSERT INTO orders (ts, event, venue, symbol, client_order_id, order_id, status,"
            " filled_qty, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                ts,
                event,
                order.venue,
                order.symbol,
                order.client_order_id,
                order.order_id,
                order.status.value,
                str(order.filled_qty),
                detail,
            ),
        )

    def arb(self, event: str, rec: ArbRecord) -> None:
        self._db.execute(
            "INSERT INTO arbs (arb_id, event, outcome, record) VALUES (?, ?, ?, ?)",
            (rec.arb_id, event, rec.outcome, msgspec.json.encode(rec).decode()),
        )

    def fill(self, f: Fill) -> None:
        self._db.execute(
            "INSERT INTO fills (venue, symbol, client_order_id, order_id, trade_id, side, price,"
            " qty, fee, fee_asset, liquidity, ts_exchange, ts_local)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                f.venue,
                f.symbol,
                f.client_order_id,
                f.order_id,
                f.trade_id,
                int(f.side),
                str(f.price),
                str(f.qty),
                str(f.fee),
                f.fee_asset,
                f.liquidity,
                f.ts_exchange,
                f.ts_local,
            ),
        )

    def close(self) -> None:
        self._db.close()


class JournalRecorder(RunRecorder):
    """A :class:`RunRecorder` that also appends every order event and fill to a
    :class:`Journal` as it happens."""

    def __init__(self, journal: Journal):
        super().__init__()
        self.journal = journal

    def order_sent(self, req: OrderRequest, ts: int) -> None:
        super().order_sent(req, ts)
        self.journal.order("sent", Order.from_request(req, ts), ts)

    def order_rejected(self, req: OrderRequest, ts: int, err: VenueError) -> None:
        super().order_rejected(req, ts, err)
        order = self.order(req.client_order_id) or Order.from_request(req, ts)
        detail = json.dumps({"code": err.code or type(err).__name__, "error": str(err)})
        self.journal.order("rejected", order, ts, detail)

    def order_acked(self, order: Order, ts: int) -> None:
        super().order_acked(order, ts)
        self.journal.order("acked", order, ts)

    def order_update(self, order: Order, ts: int) -> None:
        super().order_update(order, ts)
        self.journal.order("update", order, ts)

    def arb_started(self, rec: ArbRecord) -> None:
        super().arb_started(rec)
        self.journal.arb("started", rec)

    def arb_finished(self, rec: ArbRecord) -> None:
        super().arb_finished(rec)
        self.journal.arb("finished", rec)

    def fill(self, fill: Fill) -> None:
        super().fill(fill)
        self.journal.fill(fill)


# ---------------------------------------------------------------------------- assembly
class RealtimeError(ArbsimError):
    """A venue failed during a paper / live run (run directory written)."""


class RealtimeResult(msgspec.Struct, kw_only=True):
    run_dir: str
    summary: dict[str, Any]


def _latency_of(v: VenueConfig) -> LatencyModel:
    try:
        return build_latency(v.latency)
    except ValueError as e:
        raise ConfigError(f"venue {v.name}: latency: {e}") from e


def build_venues(
    cfg: Config,
    mode: Mode,
    urls: Mapping[str, VenueUrls],
    credentials: Mapping[str, Any],
    adapter_options: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
    """The configured venues for ``mode`` (no I/O) and their description for the summary."""
    opts = dict(adapter_options or {})
    venues: dict[str, Any] = {}
    described: dict[str, dict[str, str]] = {}
    unknown = sorted(set(urls) - {v.name for v in cfg.venues})
    if unknown:
        raise ConfigError(f"--venue-url names venues not in the config: {', '.join(unknown)}")
    for v in cfg.venues:
        exchange = exchange_of(v)
        u = urls.get(v.name, DEFAULT_URLS[exchange])
        adapter = load_object(REALTIME_VENUES[exchange], "venue kind")
        creds = credentials.get(v.name) if mode == "live" else None
        kwargs: dict[str, Any] = dict(opts, name=v.name, rest_url=u.rest, ws_url=u.ws)
        if exchange == "mexc":
            kwargs["private_ws_url"] = u.ws + "?listenKey={listen_key}"
        live = adapter(creds, **kwargs)
        described[v.name] = {"kind": mode, "exchange": exchange, "rest_url": u.rest, "ws_url": u.ws}
        if mode == "live":
            venues[v.name] = live
            described[v.name].update(latency="real", rules="real", queue="real")
            continue
        rules = load_object("arbsim.app.config:venue_rules", "venue rules")(v.rules, exchange)
        queue = load_object("exchanges.simulated.matching:QueueModel", "queue model")(
            v.queue.model, v.queue.power, v.queue.stochastic, v.queue.seed
        )
        latency = _latency_of(v)
        venues[v.name] = load_object(REALTIME_VENUES["paper"], "venue kind")(
            live,
            name=v.name,
            balances=v.balances,
            latency=latency,
            rules=rules,
            queue=queue,
            consume_liquidity=v.consume_liquidity,
            max_open_orders=v.max_open_orders,
            fee_overrides=v.fees.overrides(),
            impact=(v.impact.bps_per_depth, int(v.impact.decay_ms * 1e6), v.impact.levels),
        )
        described[v.name].update(
            latency=latency.describe(), rules=rules.name, queue=queue.describe()
        )
    return venues, described


def _run_token() -> str:
    """A short per-run token so that client order ids differ between runs."""
    n = int(time.time()) % 36**5
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    for _ in range(5):
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out


async def run_realtime_async(
    cfg: Config,
    *,
    mode: Mode,
    out_dir: Path,
    duration_s: float | None = None,
    urls: Mapping[str, VenueUrls] | None = None,
    stop_event: asyncio.Event | None = None,
    env: Mapping[str, str] | None = None,
    strategy: Strategy | None = None,
    adapter_options: Mapping[str, Any] | None = None,
) -> RealtimeResult:
    """Run ``cfg`` in ``mode`` on the running loop until ``duration_s`` elapses or
    ``stop_event`` is set; write the run directory (also when the strategy fails).

    Raises ConfigError for bad input (nothing written), StrategyError after writing what
    was recorded, and VenueError when a venue cannot be started (run directory written).
    """
    if mode not in ("paper", "live"):
        raise ConfigError(f"mode must be paper or live, got {mode!r}")
    if duration_s is not None and duration_s <= 0:
        raise ConfigError(f"--duration must be > 0, got {duration_s}")
    params = strategy_params(cfg)
    credentials = credentials_from_env(cfg, os.environ if env is None else env) if (
        mode == "live"
    ) else {}  # fmt: skip
    venues, described = build_venues(cfg, mode, urls or {}, credentials, adapter_options)
    symbol = params.get("symbol") if isinstance(params, dict) else getattr(params, "symbol", None)
    if not symbol:
        raise ConfigError("paper and live runs need `strategy.params.symbol`")
    symbols = {v.name: [symbol] for v in cfg.venues}
    if strategy is None:
        strategy = strategy_class(cfg)(params)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ConfigError(f"--out {out_dir} exists and is not empty; pick a new run directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.yaml").write_bytes(dump_config(cfg))
    journal = Journal(out_dir / "journal.sqlite")
    journal.meta("mode", mode)
    journal.meta("started", dt.datetime.now(dt.UTC).isoformat())
    recorder = JournalRecorder(journal)
    clock = WallClock()
    engine = Engine(
        strategy=strategy,
        venues=venues,
        symbols=symbols,
        loop=asyncio.get_running_loop(),
        clock=clock,
        risk_limits=cfg.risk,
        recorder=recorder,
        equity_interval_s=cfg.run.equity_interval_s,
        id_prefix=f"{cfg.run.id_prefix}{_run_token()}",
    )
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
        summary = build_summary(
            engine, cfg, False, Path(mode), run_start, run_end, wall, reconciled, error, described
        )
        summary.update(mode=mode, catalog=None, data="live market streams")
        for name, d in described.items():
            summary["venues"][name].update(d)
        recorder.write(out_dir, engine.latency.table(), summary, dump_config(cfg))
        journal.meta("ended", dt.datetime.now(dt.UTC).isoformat())
        journal.meta("status", summary["status"])
        journal.close()
    if isinstance(error, StrategyError):
        raise StrategyError(f"{error} (run directory written: {out_dir})") from error
    if isinstance(error, ArbsimError):
        raise RealtimeError(f"{error} (run directory written: {out_dir})") from error
    return RealtimeResult(run_dir=str(out_dir), summary=summary)


def run_realtime(
    cfg: Config,
    *,
    mode: Mode,
    out_dir: Path,
    duration_s: float | None = None,
    urls: Mapping[str, VenueUrls] | None = None,
    env: Mapping[str, str] | None = None,
    strategy: Strategy | None = None,
    handle_signals: bool = True,
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
            )
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    return asyncio.run(main())
