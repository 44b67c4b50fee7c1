"""`arbsim backtest`: assemble config, catalog, replay venues, engine; run; write the run.

Replay venues are found through :data:`arbsim.app.config.VENUE_KINDS` (import paths), so
``arbsim`` never imports ``exchanges`` statically.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

import arbsim
from arbsim.app.config import (
    VENUE_KINDS,
    Config,
    DataConfig,
    StrategyConfig,
    VenueConfig,
    dump_config,
    load_object,
    strategy_class,
    strategy_params,
)
from arbsim.core.book import OrderBook
from arbsim.core.errors import ConfigError, DataError
from arbsim.data.catalog import Catalog
from arbsim.data.feed import BookCursor
from arbsim.runtime.engine import Engine, Strategy, StrategyError
from arbsim.runtime.latency import LatencyModel, build_latency
from arbsim.runtime.loop import VirtualTimeLoop
from arbsim.runtime.recorder import RunRecorder


def bundled_sample() -> Path:
    """The synthetic sample catalog shipped in the repository's ``data/sample``."""
    here = Path(arbsim.__file__).resolve().parent.parent / "data" / "sample"
    return here if here.is_dir() else Path("data/sample")


def parse_time(value: str, what: str) -> int:
    """ISO-8601 (``2026-01-05T00:05:00Z``; naive means UTC) -> ns since the epoch."""
    try:
        t = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{what}: {value!r} is not an ISO-8601 time") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return int(t.timestamp() * 1_000_000) * 1000


def iso(ts_ns: int) -> str:
    return dt.datetime.fromtimestamp(ts_ns / 1e9, tz=dt.UTC).isoformat(timespec="milliseconds")


def _first_mid(catalog: Catalog, venue: str, symbol: str) -> float:
    inst = catalog.instrument(venue, symbol)
    book = OrderBook(venue, symbol, inst.tick)
    cur = BookCursor(catalog, venue, symbol, book.scale, batch_size=4096)
    for _ in range(50):
        if not cur.next():
            break
        cur.apply(book)
        if book.mid is not None:
            return book.mid
    raise DataError(f"{catalog.root}: {venue} {symbol} has no two-sided book to price from")


def auto_config(catalog: Catalog) -> Config:
    """Pick the catalog's two venues sharing a symbol; explain when that is ambiguous."""
    by_symbol: dict[str, list[str]] = {}
    for inst in catalog.instruments():
        by_symbol.setdefault(inst.symbol, []).append(inst.venue)
    pairs = {s: v for s, v in by_symbol.items() if len(v) >= 2}
    if not pairs:
        listing = ", ".join(f"{s}: {v}" for s, v in sorted(by_symbol.items())) or "nothing"
        raise DataError(
            f"{catalog.root}: no symbol is held by two venues (catalog has {listing}); "
            "a cross-exchange backtest needs two"
        )
    if len(pairs) > 1 or any(len(v) > 2 for v in pairs.values()):
        choices = "\n".join(f"  {s}: {', '.join(v)}" for s, v in sorted(pairs.items()))
        raise DataError(
            f"{catalog.root}: more than one venue pair is possible; write a config "
            f"(--config) naming the venues and strategy.params.symbol. Choices:\n{choices}"
        )
    symbol, names = next(iter(pairs.items()))
    venues = []
    for name in names:
        inst = catalog.instrument(name, symbol)
        mid = _first_mid(catalog, name, symbol)
        base = inst.round_qty(Decimal(100_000) / Decimal(repr(mid)))
        venues.append(
            VenueConfig(name=name, balances={inst.quote: Decimal(100_000), inst.base: base})
        )
    return Config(
        venues=venues,
        strategy=StrategyConfig(params={"symbol": symbol, "venues": names}),
        data=DataConfig(catalog=str(catalog.root)),
    )


def default_config_path() -> Path:
    return Path(__file__).resolve().parent / "defaults" / "backtest.yaml"


class BacktestResult(msgspec.Struct, kw_only=True):
    run_dir: str
    summary: dict[str, Any]


def run_backtest(
    cfg: Config,
    *,
    catalog_path: Path,
    out_dir: Path,
    start: str | None = None,
    end: str | None = None,
    progress: Callable[[float], None] | None = None,
    strategy: Strategy | None = None,
) -> BacktestResult:
    """Run one backtest and write its run directory; raises ConfigError / DataError for
    bad input (nothing written) and StrategyError after writing what was recorded."""
    catalog = Catalog(catalog_path)
    info = catalog.info()
    params = strategy_params(cfg)
    symbol = getattr(params, "symbol", None)
    start = start or cfg.data.start
    end = end or cfg.data.end
    start_ns = parse_time(start, "--start") if start else None
    end_ns = parse_time(end, "--end") if end else None
    # the data's own time range (from Parquet statistics) frames the run
    ranges = []
    for v in cfg.venues:
        syms = (
            [symbol] if symbol else [i.symbol for i in catalog.instruments() if i.venue == v.name]
        )
        for s in syms:
            catalog.instrument(v.name, s)
            r = catalog.time_range(v.name, s)
            if r is None:
                raise DataError(f"{catalog.root}: {v.name} {s} has no book data")
            ranges.append(r)
    data_start = min(r[0] for r in ranges)
    data_end = max(r[1] for r in ranges)
    if start_ns is not None and end_ns is not None and end_ns <= start_ns:
        raise ConfigError(f"--end {end} is not after --start {start}")
    if start_ns is not None and start_ns > data_end:
        raise DataError(f"--start {start} is after the data's end {iso(data_end)}")
    run_start = max(start_ns, data_start) if start_ns is not None else data_start
    run_end = min(end_ns, data_end + 1) if end_ns is not None else data_end + 1

    latencies = {v.name: _latency_of(v) for v in cfg.venues}
    loop = VirtualTimeLoop(data_start)
    venue_cls = load_object(VENUE_KINDS["replay"], "venue kind")
    rules_for = load_object("arbsim.app.config:venue_rules", "venue rules")
    queue_model = load_object("exchanges.simulated.matching:QueueModel", "queue model")
    venues: dict[str, Any] = {}
    symbols: dict[str, list[str]] = {}
    described: dict[str, dict[str, str]] = {}
    for v in cfg.venues:
        syms = (
            [symbol] if symbol else [i.symbol for i in catalog.instruments() if i.venue == v.name]
        )
        rules = rules_for(v.rules, v.name)
        queue = queue_model(v.queue.model, v.queue.power, v.queue.stochastic, v.queue.seed)
        venues[v.name] = venue_cls(
            v.name,
            catalog,
            loop=loop,
            symbols=syms,
            balances=v.balances,
            latency=latencies[v.name],
            feed_offset_ns=int(v.feed_offset_ms * 1e6),
            fee_overrides=v.fees.overrides(),
            rules=rules,
            queue=queue,
            consume_liquidity=v.consume_liquidity,
            max_open_orders=v.max_open_orders,
            impact=(v.impact.bps_per_depth, int(v.impact.decay_ms * 1e6), v.impact.levels),
        )
        described[v.name] = {
            "latency": latencies[v.name].describe(),
            "rules": rules.name,
            "queue": queue.describe(),
        }
        symbols[v.name] = syms
    if strategy is None:
        strategy = strategy_class(cfg)(params)
    recorder = RunRecorder()
    engine = Engine(
        strategy=strategy,
        venues=venues,
        symbols=symbols,
        loop=loop,
        clock=loop,
        risk_limits=cfg.risk,
        recorder=recorder,
        equity_interval_s=cfg.run.equity_interval_s,
        id_prefix=cfg.run.id_prefix,
    )
    sources = [s for v in venues.values() for s in v.sources(run_end)]
    span = max(1, run_end - run_start)

    def on_progress(ts: int) -> None:
        if progress is not None:
            progress(min(1.0, max(0.0, (ts - run_start) / span)))

    error: BaseException | None = None
    reconciled: dict[str, dict[str, str]] = {}
    t0 = time.perf_counter()
    try:
        loop.run_until_complete(
            engine.run_backtest(
                sources,
                start_ns=run_start,
                drain_ns=int(cfg.run.drain_s * 1e9),
                progress=on_progress,
            )
        )
        reconciled = loop.run_until_complete(engine.reconcile())
        loop.run_until_complete(engine.stop_venues())
    except StrategyError as e:
        error = e
    finally:
        wall = time.perf_counter() - t0
        _cancel_all(loop)
        loop.close()
    summary = build_summary(
        engine,
        cfg,
        info.synthetic,
        catalog_path,
        run_start,
        run_end,
        wall,
        reconciled,
        error,
        described,
    )
    recorder.write(out_dir, engine.latency.table(), summary, dump_config(cfg))
    if error is not None:
        raise StrategyError(f"{error} (run directory written: {out_dir})") from error
    return BacktestResult(run_dir=str(out_dir), summary=summary)


def _latency_of(v: VenueConfig) -> LatencyModel:
    try:
        return build_latency(v.latency)
    except ValueError as e:
        raise ConfigError(f"venue {v.name}: latency: {e}") from e


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for t in pending:
        t.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))


def build_summary(
    engine: Engine,
    cfg: Config,
    synthetic: bool,
    catalog_path: Path,
    run_start: int,
    run_end: int,
    wall: float,
    reconciled: dict[str, dict[str, str]],
    error: BaseException | None,
    described: dict[str, dict[str, str]] | None = None,
) -> dict[str, Any]:
    markets = {
        name: sorted({v.instrument(s).market for s in engine.symbols[name]})
        for name, v in engine.venues.items()
    }
    described = described or {}
    net, fees, gross = engine.pnl() if engine.ledger.start else (0.0, 0.0, 0.0)
    outcomes = Counter(a.outcome for a in engine.recorder.arbs)
    fills = engine.recorder.fills
    return {
        "status": "error" if error else "ok",
        "error": str(error) if error else None,
        "catalog": str(catalog_path),
        "synthetic_data": synthetic,
        "window": {"start": iso(run_start), "end": iso(max(run_start, run_end - 1))},
        "venues": {
            v.name: {
                **described.get(v.name, {}),
                "feed_offset_ms": v.feed_offset_ms,
                "markets": markets[v.name],
            }
            for v in cfg.venues
        },
        "events": engine.events,
        "messages": engine.messages,
        "wall_seconds": round(wall, 3),
        "events_per_s": round(engine.events / wall) if wall > 0 else None,
        "arbs": {
            "attempted": sum(
                1 for a in engine.recorder.arbs if a.outcome not in ("skipped", "denied")
            ),
            "decisions": len(engine.recorder.arbs),
            **{k: outcomes[k] for k in sorted(outcomes)},
        },
        "orders": len(engine.recorder.orders()),
        "fills": len(fills),
        "pnl": {"gross": round(gross, 6), "fees": round(fees, 6), "net": round(net, 6)},
        "reconciliation": reconciled,
        "reconciled_exactly": bool(reconciled) and all(not d for d in reconciled.values()),
        "latency_ms": engine.latency.summary(),
        "risk": {
            "denials": dict(sorted(engine.risk.counts.items())),
            "circuit_breaker": engine.risk.breaker_reason,
        },
        "rejections": dict(sorted(engine.recorder.rejections.items())),
        "cancelled_at_shutdown": engine.cancelled,
        "strategy": engine.strategy.summary(),
    }
