"""`arbsim backtest`: assemble config, catalog, venues and engine; run; write the run.

Venues are built by their registered kinds (:mod:`arbsim.app.registry`), so the
application composes the run without knowing any venue package.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

import arbsim
from arbsim.app.config import (
    Config,
    DataConfig,
    Document,
    StrategyConfig,
    build_strategy,
    config_from_document,
    dump_config,
)
from arbsim.app.registry import Registry
from arbsim.app.rundir import check_writable
from arbsim.core.book import OrderBook
from arbsim.core.errors import ConfigError, DataError, StrategyError, VenueError
from arbsim.core.ports import Venue, VenueSetup
from arbsim.core.transfers import TransferNetwork
from arbsim.data.catalog import Catalog
from arbsim.data.feed import BookCursor, use_kernels
from arbsim.runtime.engine import Engine
from arbsim.runtime.loop import VirtualTimeLoop, scheduler
from arbsim.runtime.recorder import RunRecorder
from arbsim.runtime.strategy import Strategy


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
    raise DataError(f"{catalog.location}: {venue} {symbol} has no two-sided book to price from")


def catalog_pair(catalog: Catalog) -> tuple[str, list[str]]:
    """The catalog's symbol held by two venues, and those venues; explains when there is
    no such pair or more than one."""
    by_symbol: dict[str, list[str]] = {}
    for inst in catalog.instruments():
        by_symbol.setdefault(inst.symbol, []).append(inst.venue)
    pairs = {s: v for s, v in by_symbol.items() if len(v) >= 2}
    if not pairs:
        listing = ", ".join(f"{s}: {v}" for s, v in sorted(by_symbol.items())) or "nothing"
        raise DataError(
            f"{catalog.location}: no symbol is held by two venues (catalog has {listing}); "
            "a cross-exchange backtest needs two"
        )
    if len(pairs) > 1 or any(len(v) > 2 for v in pairs.values()):
        choices = "\n".join(f"  {s}: {', '.join(v)}" for s, v in sorted(pairs.items()))
        raise DataError(
            f"{catalog.location}: more than one venue pair is possible; write a config "
            f"(--config) naming the venues and strategy.params.symbol. Choices:\n{choices}"
        )
    symbol, names = next(iter(pairs.items()))
    return symbol, names


def catalog_config(
    catalog: Catalog, base: Config, registry: Registry | None = None
) -> tuple[Config, str]:
    """``base`` (the default config) run on ``catalog``'s venue pair: the default's
    strategy parameters, risk limits, run settings and each venue's latency, fees, queue
    and other settings, with the catalog's venue names and symbol. Balances are the
    default venue's when it holds the same assets, else 100,000 quote and that much
    worth of base at the data's first mid. Returns the config and a sentence saying so.
    """
    symbol, names = catalog_pair(catalog)
    base_venues = list(base.venues)
    by_name = {v.name: v for v in base_venues}
    order = [v.name for v in base_venues]
    names = sorted(names, key=lambda n: (order.index(n) if n in order else len(order), n))
    # a catalog venue takes the settings of the default venue of its name, else in order
    sources = [by_name.get(n) for n in names]
    spare = [v for v in base_venues if v.name not in names]
    for i, src in enumerate(sources):
        if src is None:
            sources[i] = spare.pop(0) if spare else base_venues[-1]
    venues: list[dict[str, Any]] = []
    mapping: list[str] = []
    for name, src in zip(names, sources, strict=True):
        assert src is not None
        inst = catalog.instrument(name, symbol)
        entry = msgspec.to_builtins(src)
        assert isinstance(entry, dict)
        entry["name"] = name
        balances = entry.get("balances")
        if isinstance(balances, dict) and not {inst.base, inst.quote} <= set(balances):
            mid = _first_mid(catalog, name, symbol)
            base_qty = inst.round_qty(Decimal(100_000) / Decimal(repr(mid)))
            entry["balances"] = {inst.quote: "100000", inst.base: str(base_qty)}
        mapping.append(name if src.name == name else f"{name} (as {src.name})")
        venues.append(entry)
    params = dict(base.strategy.params)
    params.update(symbol=symbol, venues=list(names))
    doc = Document(
        venues=venues,
        strategy=StrategyConfig(
            name=base.strategy.name, class_=base.strategy.class_, params=params
        ),
        risk=base.risk,
        data=DataConfig(catalog=catalog.location),
        run=base.run,
    )
    cfg = config_from_document(doc, f"{catalog.location} (default config)", "backtest", registry)
    note = (
        f"no --config: the default config's strategy, risk and latency "
        f"({default_config_path()}) on {catalog.location}: venues {', '.join(mapping)}, "
        f"symbol {symbol}"
    )
    return cfg, note


def session_latency(cfg: Config, run_dir: Path) -> Config:
    """``cfg`` with every venue's latency replayed from a paper or live session's
    measurements (``model: session``, :class:`arbsim.runtime.latency.SessionLatency`).

    Raises ConfigError when ``run_dir`` is not a run directory or a venue has no
    latency settings (a live venue config)."""
    from arbsim.runtime.latency import LatencyConfig

    if not (run_dir / "orders.parquet").is_file():
        raise ConfigError(f"--latency-from {run_dir}: not a run directory (no orders.parquet)")
    venues = []
    for v in cfg.venues:
        old = getattr(v, "latency", None)
        if not isinstance(old, LatencyConfig):
            raise ConfigError(f"--latency-from: venue {v.name!r} has no simulated latency")
        new = LatencyConfig(model="session", source=str(run_dir), entry_share=old.entry_share)
        venues.append(msgspec.structs.replace(v, latency=new))
    return msgspec.structs.replace(cfg, venues=venues)


def auto_config(catalog: Catalog, registry: Registry | None = None) -> Config:
    """The default config on ``catalog``'s venue pair (see :func:`catalog_config`)."""
    from arbsim.app.config import load_config

    return catalog_config(catalog, load_config(default_config_path()), registry)[0]


def default_config_path() -> Path:
    return Path(__file__).resolve().parent / "defaults" / "backtest.yaml"


class BacktestResult(msgspec.Struct, kw_only=True):
    run_dir: str
    summary: dict[str, Any]


class _Interrupted(Exception):
    """The replay was asked to stop (SIGINT / SIGTERM): the run so far is written."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def estimate_events(catalog: Catalog, symbols: dict[str, list[str]], start: int, end: int) -> int:
    """Rows (book level changes + trades) of the streams between ``start`` and ``end``,
    from the Parquet row groups' statistics (a row group partly inside counts pro rata):
    the total a progress bar counts towards."""
    from arbsim.data.catalog import KINDS

    total = 0.0
    for name, syms in symbols.items():
        for sym in syms:
            for kind in KINDS:
                for path in catalog.files(name, sym, kind):
                    meta = catalog.parquet(path, kind).metadata
                    col = meta.schema.names.index("ts_local")
                    for rg in range(meta.num_row_groups):
                        group = meta.row_group(rg)
                        st = group.column(col).statistics
                        if st is None or not st.has_min_max or st.min is None or st.max is None:
                            total += group.num_rows
                            continue
                        lo, hi = int(st.min), int(st.max)
                        overlap = min(hi, end) - max(lo, start)
                        if hi <= lo:
                            total += group.num_rows if start <= lo < end else 0
                        elif overlap > 0:
                            total += group.num_rows * overlap / (hi - lo)
    return round(total)


def run_backtest(
    cfg: Config,
    *,
    catalog_path: str | Path,
    out_dir: Path,
    start: str | None = None,
    end: str | None = None,
    progress: Callable[[float], None] | None = None,
    strategy: Strategy | None = None,
    registry: Registry | None = None,
    should_stop: Callable[[], str | None] | None = None,
    on_total: Callable[[int], None] | None = None,
    config_source: str | None = None,
    seek: bool = True,
    reference_replay: bool = False,
) -> BacktestResult:
    """Run one backtest and write its run directory; raises ConfigError / DataError for
    bad input (nothing written, checked before the replay: the data's time range, that
    ``out_dir`` can be written) and StrategyError after writing what was recorded.

    ``should_stop`` is polled during the replay: when it returns a reason (``"SIGINT"``)
    the replay stops there and the run so far is written, ``status: interrupted`` in
    ``summary.json``. ``on_total`` is told the estimated number of events to replay
    (what ``progress`` fractions are of); ``config_source`` names the config in the
    summary. ``seek=False`` replays every message before ``start`` to build the books
    instead of starting each stream at its latest snapshot before it (same outputs,
    slower: for checking). ``reference_replay`` replays on the straightforward path
    (every message through the merge and the Python book; see ``Engine.run_backtest``):
    same outputs, slower — the reference the fast path is tested against."""
    reg = registry or Registry.from_entry_points()
    catalog = Catalog(catalog_path)
    info = catalog.info()
    if strategy is None:
        strategy = build_strategy(cfg, reg)
    symbols = _symbols(cfg, strategy, catalog)
    start = start or cfg.data.start
    end = end or cfg.data.end
    start_ns = parse_time(start, "--start") if start else None
    end_ns = parse_time(end, "--end") if end else None
    # the data's own time range (from Parquet statistics) frames the run
    ranges = []
    for name, syms in symbols.items():
        for s in syms:
            catalog.instrument(name, s)
            r = catalog.time_range(name, s)
            if r is None:
                raise DataError(f"{catalog.location}: {name} {s} has no book data")
            ranges.append(r)
    data_start = min(r[0] for r in ranges)
    data_end = max(r[1] for r in ranges)
    if start_ns is not None and end_ns is not None and end_ns <= start_ns:
        raise ConfigError(f"--end {end} is not after --start {start}")
    if start_ns is not None and start_ns > data_end:
        raise DataError(f"--start {start} is after the data's end {iso(data_end)}")
    if end_ns is not None and end_ns <= data_start:
        raise DataError(
            f"--end {end} is not after the data's start {iso(data_start)} "
            f"(the data covers {iso(data_start)} -> {iso(data_end)})"
        )
    check_writable(out_dir)
    run_start = max(start_ns, data_start) if start_ns is not None else data_start
    run_end = min(end_ns, data_end + 1) if end_ns is not None else data_end + 1

    loop = VirtualTimeLoop(data_start)
    # the simulated venues' withdrawals and deposits, on the run's virtual time
    network = TransferNetwork(loop, scheduler(loop, loop))
    setup = reg.setup(
        mode="backtest",
        loop=loop,
        clock=loop,
        environ=os.environ,
        catalog=catalog_path,
        transfers=network,
    )
    venues = build_venues(cfg, reg, setup)
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
        shutdown_s=cfg.run.shutdown_s,
        reference_replay=reference_replay,
    )
    span = max(1, run_end - run_start)
    if on_total is not None:
        on_total(estimate_events(catalog, symbols, run_start, run_end))

    def on_progress(ts: int) -> None:
        if should_stop is not None:
            reason = should_stop()
            if reason:
                raise _Interrupted(reason)
        if progress is not None:
            progress(min(1.0, max(0.0, (ts - run_start) / span)))

    error: BaseException | None = None
    interrupted: str | None = None
    reconciled: dict[str, dict[str, str]] = {}
    if not reference_replay:
        use_kernels()  # compiled once per machine, then loaded from numba's cache
    t0 = time.perf_counter()
    try:
        loop.run_until_complete(
            engine.run_backtest(
                start_ns=run_start,
                end_ns=run_end,
                drain_ns=int(cfg.run.drain_s * 1e9),
                progress=on_progress,
                seek=seek,
            )
        )
        reconciled = loop.run_until_complete(engine.reconcile())
        loop.run_until_complete(engine.stop_venues())
    except StrategyError as e:
        error = e
    except _Interrupted as e:
        interrupted = e.reason
        run_end = max(run_start, loop.now_ns() + 1)
    finally:
        wall = time.perf_counter() - t0
        _cancel_all(loop)
        loop.close()
    summary = build_summary(
        engine, info.synthetic, catalog_path, run_start, run_end, wall, reconciled, error
    )
    summary["interrupted"] = interrupted is not None
    if interrupted is not None:
        summary["status"] = "interrupted"
        summary["interrupted_by"] = interrupted
    summary["config"] = config_source
    recorder.write(out_dir, engine.latency.table(), summary, dump_config(cfg))
    if error is not None:
        raise StrategyError(f"{error} (run directory written: {out_dir})") from error
    return BacktestResult(run_dir=str(out_dir), summary=summary)


def kind_of(venue: msgspec.Struct) -> str:
    """The registered kind a venue config was decoded as (its tag)."""
    tag = venue.__struct_config__.tag
    return tag if isinstance(tag, str) else type(venue).__name__


def build_venues(cfg: Config, registry: Registry, setup: VenueSetup) -> dict[str, Venue]:
    """Each configured venue, built by its kind (no I/O); one ConfigError naming every
    venue that cannot be built (e.g. all missing credentials at once)."""
    venues: dict[str, Venue] = {}
    problems: list[str] = []
    for i, v in enumerate(cfg.venues):
        kind = registry.venue_kind(kind_of(v), f"`$.venues[{i}].kind`")
        if setup.mode not in kind.modes:
            problems.append(f"venue {v.name}: a {kind_of(v)!r} venue cannot run in {setup.mode}")
            continue
        try:
            venues[v.name] = kind.build_venue(v, setup)
        except ConfigError as e:
            problems.append(str(e))
    if problems:
        raise ConfigError("; ".join(problems))
    return venues


def _symbols(cfg: Config, strategy: Strategy, catalog: Catalog | None) -> dict[str, list[str]]:
    """The symbols each venue starts: what the strategy subscribes to; with a catalog,
    a venue it names no symbols for starts every symbol the catalog holds for it."""
    names = [v.name for v in cfg.venues]
    wanted = strategy.subscriptions(names)
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        raise ConfigError(
            f"strategy {strategy.name!r} subscribes to venues not in the config: "
            f"{', '.join(unknown)} (configured: {', '.join(names)})"
        )
    out: dict[str, list[str]] = {}
    for name in names:
        syms = list(wanted.get(name, []))
        if not syms and catalog is not None:
            syms = [i.symbol for i in catalog.instruments() if i.venue == name]
        if not syms:
            raise ConfigError(
                f"strategy {strategy.name!r} names no symbol for venue {name}; "
                "paper and live runs start only what the strategy subscribes to"
            )
        out[name] = syms
    return out


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for t in pending:
        t.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))


def build_summary(
    engine: Engine,
    synthetic: bool,
    catalog_path: str | Path | None,
    run_start: int,
    run_end: int,
    wall: float,
    reconciled: dict[str, dict[str, str]],
    error: BaseException | None,
) -> dict[str, Any]:
    markets: dict[str, list[str]] = {}
    for name, v in engine.venues.items():
        seen: set[str] = set()
        for sym in engine.symbols[name]:
            try:
                seen.add(v.instrument(sym).market)
            except VenueError:  # the venue never started: the run's error says why
                continue
        markets[name] = sorted(seen)
    net, fees, gross = 0.0, 0.0, 0.0
    net_exact, arbs_exact = Decimal(0), Decimal(0)
    if engine.ledger.start:  # else no venue got as far as its balances: nothing to value
        try:
            net, fees, gross = engine.pnl()
            net_exact, arbs_exact = engine.pnl_exact()
        except VenueError:  # a venue never started: the run's error says why
            pass
    session: dict[str, Any] | None = None
    if engine.ledger.start:
        try:
            session = engine.session_stats()
        except VenueError:  # a venue never started: the run's error says why
            session = None
    outcomes = Counter(a.outcome for a in engine.recorder.arbs)
    fills = engine.recorder.fills
    return {
        "status": "error" if error else "ok",
        "error": str(error) if error else None,
        "catalog": None if catalog_path is None else str(catalog_path),
        "synthetic_data": synthetic,
        "window": {"start": iso(run_start), "end": iso(max(run_start, run_end - 1))},
        "venues": {
            name: {**v.describe(), "markets": markets[name]} for name, v in engine.venues.items()
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
        "pnl": {
            "gross": round(gross, 6),
            "fees": round(fees, 6),
            "net": round(net, 6),
            # exact, at the same marks: the arbitrages' own flows add up to the ledger
            "net_exact": str(net_exact),
            "arbs_net_exact": str(arbs_exact),
        },
        "stats": session,
        "unresolved_orders": sorted(engine.unresolved),
        "shutdown_errors": engine.shutdown_errors,
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
        # transfers between the venues, when there were any
        **({"transfers": engine.transfers.summary()} if engine.transfers.records else {}),
    }
