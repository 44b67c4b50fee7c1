"""Paper and live runs end to end against the exchange simulator on 127.0.0.1: the engine's
real-time loop, paper fills with real latency, live orders with credentials from the
environment, the run directory and journal.sqlite, SIGINT, and the CLI's refusals."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from arbsim.app.cli import main
from arbsim.app.config import Config, parse_config
from arbsim.app.realtime import VenueUrls, parse_venue_url, run_realtime_async
from arbsim.core.book import OrderBook
from arbsim.core.errors import ConfigError, StrategyError
from arbsim.core.model import Order, OrderRequest, OrderStatus, Side, TimeInForce
from arbsim.core.ports import Mode
from arbsim.runtime.context import Context
from arbsim.runtime.journal import Journal
from arbsim.runtime.strategy import Strategy
from exchanges.gateio import plugin as gate_plugin
from exchanges.mexc import plugin as mexc_plugin
from exchanges.sim import SimConfig, Simulator, run_simulator
from exchanges.sim import VenueConfig as SimVenueConfig

MS = 1_000_000
SYMBOL = "BTC/USDT"


CREDENTIAL_ENV = {
    "mexc": (mexc_plugin.API_KEY_ENV, mexc_plugin.API_SECRET_ENV),
    "gateio": (gate_plugin.API_KEY_ENV, gate_plugin.API_SECRET_ENV),
}


def config_text(
    venues: list[str], mode: Mode = "paper", entry_ms: float = 20.0, response_ms: float = 15.0
) -> str:
    lines = ["strategy:", "  class: tests.app.test_realtime:Scripted", "venues:"]
    for v in venues:
        lines.append(f"  - name: {v}")
        if mode == "paper":
            lines += [
                '    balances: {BTC: "1", USDT: "100000"}',
                f"    latency: {{entry_ms: {entry_ms}, response_ms: {response_ms}}}",
            ]
    lines += ["run: {drain_s: 0.05, equity_interval_s: 0.2}"]
    return "\n".join(lines)


def config(venues: list[str], mode: Mode = "paper") -> Config:
    return parse_config(config_text(venues, mode).encode(), "<test>", mode)


def urls_of(sim: Simulator) -> dict[str, VenueUrls]:
    out = {}
    for name, v in sim.venues.items():
        out[name] = VenueUrls(v.base_url if name == "mexc" else v.api_url, v.ws_url)
    return out


async def touch(ctx: Context, venue: str, timeout_s: float = 5.0) -> tuple[float, float]:
    end = time.monotonic() + timeout_s
    while True:
        book = ctx.book(venue, SYMBOL)
        if book.best_bid is not None and book.best_ask is not None:
            return book.best_bid, book.best_ask
        if time.monotonic() > end:
            raise AssertionError(f"{venue}: no two-sided book")
        await asyncio.sleep(0.01)


class Scripted(Strategy):
    """Paper: a taker buy on the first venue (fills), a buy resting far below the touch on
    the last venue and a long task (both cancelled at shutdown). ``stop`` is set when done.
    Live (``live=True``): place a resting order on the first venue and cancel it."""

    name = "scripted"

    def __init__(self, params: object = None, live: bool = False):
        self.live = live
        self.stop: asyncio.Event | None = None
        self.done = threading.Event()
        self.orders: list[Order] = []
        self.round_trip_ns = 0
        self.canceled: Order | None = None

    def subscriptions(self, venues: Sequence[str]) -> dict[str, list[str]]:
        return {v: [SYMBOL] for v in venues}

    async def on_start(self, ctx: Context) -> None:
        ctx.spawn(self.script(ctx), name="script")

    def on_order(self, ctx: Context, order: Order) -> None:
        self.orders.append(order)

    async def script(self, ctx: Context) -> None:
        names = list(ctx.venues)
        first, last = names[0], names[-1]
        inst = ctx.instrument(first, SYMBOL)
        bid, ask = await touch(ctx, first)
        if self.live:
            price = inst.round_price(bid * 0.9, Side.SELL)
            req = OrderRequest(
                venue=first,
                symbol=SYMBOL,
                side=Side.BUY,
                qty=Decimal("0.001"),
                price=price,
                tif=TimeInForce.GTC,
            )
            placed = await ctx.place_order(req)
            assert placed.is_open
            self.canceled = await ctx.cancel_order(first, SYMBOL, placed.client_order_id)
        else:
            book = ctx.book(first, SYMBOL)
            assert book.best_ask_tick is not None
            size = inst.round_qty(book.size_at(Side.SELL, book.best_ask_tick))
            qty = min(Decimal("0.01"), size)
            t0 = ctx.now_ns()
            req = OrderRequest(
                venue=first,
                symbol=SYMBOL,
                side=Side.BUY,
                qty=qty,
                # 1% through the touch: the market moves while the order is in flight
                price=inst.round_price(ask * 1.01, Side.BUY),
                tif=TimeInForce.IOC,
            )
            filled = await ctx.place_order(req)
            self.round_trip_ns = ctx.now_ns() - t0
            assert filled.status is OrderStatus.FILLED, filled
            lbid, _ = await touch(ctx, last)
            linst = ctx.instrument(last, SYMBOL)
            far = OrderRequest(
                venue=last,
                symbol=SYMBOL,
                side=Side.BUY,
                qty=Decimal("0.001"),
                price=linst.round_price(lbid * 0.9, Side.SELL),
                tif=TimeInForce.GTC,
            )
            assert (await ctx.place_order(far)).is_open
            ctx.spawn(asyncio.sleep(3600), name="sleeper")
        self.done.set()
        if self.stop is not None:
            self.stop.set()


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    cfg = SimConfig(venues=[SimVenueConfig(venue="mexc"), SimVenueConfig(venue="gateio")], speed=20)
    async with run_simulator(cfg) as s:
        yield s


def journal_rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(path)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


async def test_paper_run_fills_with_latency_and_writes_the_run(
    sim: Simulator, tmp_path: Path
) -> None:
    cfg = config(["mexc", "gateio"])
    strategy = Scripted()
    stop = asyncio.Event()
    strategy.stop = stop
    out = tmp_path / "run"
    result = await run_realtime_async(
        cfg,
        mode="paper",
        out_dir=out,
        duration_s=8.0,
        urls=urls_of(sim),
        stop_event=stop,
        env={},
        strategy=strategy,
    )
    s = result.summary
    assert strategy.done.is_set() and s["status"] == "ok" and s["mode"] == "paper"
    # latency applied for real: round trip >= configured entry + response
    assert strategy.round_trip_ns >= 35 * MS
    lat = pq.read_table(out / "latency.parquet").to_pandas()
    place = lat[lat.kind == "place"]
    assert len(place) == 2 and (place.latency_ns >= 35 * MS).all()
    for f in (
        "config.yaml",
        "orders.parquet",
        "fills.parquet",
        "arbs.parquet",
        "equity.parquet",
        "summary.json",
        "journal.sqlite",
    ):
        assert (out / f).is_file(), f
    fills = pq.read_table(out / "fills.parquet").to_pylist()
    assert fills and all(f["venue"] == "mexc" and f["liquidity"] == "taker" for f in fills)
    journal = out / "journal.sqlite"
    jf = journal_rows(journal, "SELECT trade_id, qty, price FROM fills ORDER BY seq")
    assert jf == [(f["trade_id"], f["qty"], f["price"]) for f in fills]
    # shutdown cancelled the long task and the resting order, and recorded both
    cancelled = s["cancelled_at_shutdown"]
    assert "sleeper" in cancelled
    assert any(c.startswith("order gateio:") for c in cancelled)
    orders = {o["venue"]: o for o in pq.read_table(out / "orders.parquet").to_pylist()}
    assert orders["mexc"]["status"] == "filled" and orders["gateio"]["status"] == "canceled"
    statuses = journal_rows(journal, "SELECT venue, event, status FROM orders ORDER BY seq")
    assert ("gateio", "update", "canceled") in statuses
    assert ("mexc", "sent", "new") in statuses and ("mexc", "update", "filled") in statuses
    assert s["reconciled_exactly"] is True
    assert s["messages"] > 0
    assert journal_rows(journal, "SELECT value FROM meta WHERE key='status'") == [("ok",)]


async def test_live_run_places_and_cancels_a_simulated_order(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    v = sim.venues["mexc"]
    key_var, secret_var = CREDENTIAL_ENV["mexc"]
    monkeypatch.setenv(key_var, v.api_key)
    monkeypatch.setenv(secret_var, v.api_secret)
    strategy = Scripted(live=True)
    stop = asyncio.Event()
    strategy.stop = stop
    out = tmp_path / "live"
    result = await run_realtime_async(
        config(["mexc"], "live"),
        mode="live",
        out_dir=out,
        duration_s=8.0,
        urls={"mexc": urls_of(sim)["mexc"]},
        stop_event=stop,
        strategy=strategy,
    )
    assert result.summary["status"] == "ok"
    assert strategy.canceled is not None and strategy.canceled.status is OrderStatus.CANCELED
    (row,) = pq.read_table(out / "orders.parquet").to_pylist()
    assert row["status"] == "canceled" and row["order_id"]
    # the simulator's exchange saw the real order and has nothing open
    sim_orders = list(v.exchange.accounts[v.api_key].orders.values())
    assert len(sim_orders) == 1 and not sim_orders[0].is_open
    assert sim_orders[0].order.status is OrderStatus.CANCELED
    rows = journal_rows(out / "journal.sqlite", "SELECT event, status FROM orders")
    assert ("sent", "new") in rows and ("update", "canceled") in rows
    # secrets never reach the run directory
    for f in out.rglob("*"):
        if f.is_dir():
            continue
        data = f.read_bytes()
        assert v.api_secret.encode() not in data and v.api_key.encode() not in data


def test_live_without_credentials_exits_2_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for pair in CREDENTIAL_ENV.values():
        for var in pair:
            monkeypatch.delenv(var, raising=False)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(config_text(["mexc"], "live"))
    out = tmp_path / "run"
    res = CliRunner().invoke(
        main,
        [
            "live",
            "--config",
            str(cfg),
            "--out",
            str(out),
            "--venue-url",
            "mexc=http://127.0.0.1:9,ws://127.0.0.1:9/ws",
        ],
    )
    assert res.exit_code == 2, res.output
    assert "ARBSIM_MEXC_API_KEY" in res.output and "ARBSIM_MEXC_API_SECRET" in res.output
    assert not out.exists()


def test_venue_url_parsing() -> None:
    assert parse_venue_url("mexc=http://127.0.0.1:1,ws://127.0.0.1:1/ws") == (
        "mexc",
        VenueUrls("http://127.0.0.1:1", "ws://127.0.0.1:1/ws"),
    )
    for bad in ("mexc", "mexc=http://a", "mexc=ftp://a,ws://b", "=http://a,ws://b"):
        with pytest.raises(ConfigError):
            parse_venue_url(bad)


@pytest.fixture
def sim_thread() -> Iterator[dict[str, dict[str, VenueUrls]]]:
    """The simulator on its own loop in a thread (the CLI runs its own loop)."""
    info: dict[str, dict[str, VenueUrls]] = {}
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    halt: asyncio.Event | None = None

    async def serve() -> None:
        nonlocal halt
        halt = asyncio.Event()
        cfg = SimConfig(venues=[SimVenueConfig(venue="mexc")], speed=20)
        async with run_simulator(cfg) as s:
            info["urls"] = urls_of(s)
            ready.set()
            await halt.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield info
    finally:
        assert halt is not None
        loop.call_soon_threadsafe(halt.set)
        thread.join(10)
        loop.close()


def test_cli_paper_stops_cleanly_on_sigint(
    sim_thread: dict[str, dict[str, VenueUrls]], tmp_path: Path
) -> None:
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(config_text(["mexc"]))
    out = tmp_path / "run"
    u = sim_thread["urls"]["mexc"]

    def interrupt() -> None:
        # journal.sqlite exists once the run has begun (signal handlers are installed)
        end = time.monotonic() + 10
        while not (out / "journal.sqlite").exists() and time.monotonic() < end:
            time.sleep(0.02)
        time.sleep(1.5)
        os.kill(os.getpid(), signal.SIGINT)

    killer = threading.Thread(target=interrupt)
    killer.start()
    res = CliRunner().invoke(
        main,
        [
            "paper",
            "--config",
            str(cfg_path),
            "--out",
            str(out),
            "--duration",
            "15",
            "--venue-url",
            f"mexc={u.rest},{u.ws}",
        ],
    )
    killer.join()
    assert res.exit_code == 0, res.output
    assert "arbsim paper" in res.output
    summary = msgspec.json.decode((out / "summary.json").read_bytes())
    assert summary["wall_seconds"] < 10  # stopped by SIGINT, not by --duration
    assert "sleeper" in summary["cancelled_at_shutdown"]
    assert any(c.startswith("order mexc:") for c in summary["cancelled_at_shutdown"])
    rows = journal_rows(out / "journal.sqlite", "SELECT status FROM orders WHERE event='update'")
    assert ("canceled",) in rows


def test_journal_keeps_records_when_the_process_dies(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    code = f"""
import os
from decimal import Decimal
from pathlib import Path
from arbsim.core.model import Fill, Side
from arbsim.runtime.journal import Journal
j = Journal(Path({str(path)!r}))
for i in range(3):
    j.fill(Fill(venue="mexc", symbol="BTC/USDT", client_order_id="c", order_id="1",
                trade_id=f"t{{i}}", side=Side.BUY, price=Decimal("100.5"), qty=Decimal("0.001"),
                fee=Decimal("0"), fee_asset="BTC", liquidity="taker", ts_exchange=1, ts_local=2))
os._exit(9)  # no close, no commit call, no cleanup
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30)
    assert proc.returncode == 9, proc.stderr
    rows = journal_rows(path, "SELECT trade_id, price, qty FROM fills ORDER BY seq")
    assert rows == [(f"t{i}", "100.5", "0.001") for i in range(3)]
    assert journal_rows(path, "PRAGMA journal_mode") == [("wal",)]
    Journal(path).close()  # reopening an existing journal works


class Raising(Strategy):
    name = "raising"

    def subscriptions(self, venues: Sequence[str]) -> dict[str, list[str]]:
        return {v: [SYMBOL] for v in venues}

    def on_book(self, ctx: Context, venue: str, book: OrderBook) -> None:
        raise RuntimeError("boom")


async def test_strategy_exception_stops_the_run_and_writes_it(
    sim: Simulator, tmp_path: Path
) -> None:
    out = tmp_path / "err"
    t0 = time.monotonic()
    with pytest.raises(StrategyError, match="boom"):
        await run_realtime_async(
            config(["mexc"]),
            mode="paper",
            out_dir=out,
            duration_s=8.0,
            urls={"mexc": urls_of(sim)["mexc"]},
            strategy=Raising(),
        )
    assert time.monotonic() - t0 < 5  # stopped by the failure, not by the duration
    summary = msgspec.json.decode((out / "summary.json").read_bytes())
    assert summary["status"] == "error" and "boom" in summary["error"]
    assert (out / "journal.sqlite").is_file()


def test_journal_records_each_arb_when_decided_and_when_done(tmp_path: Path) -> None:
    from arbsim.runtime.journal import JournalRecorder
    from arbsim.runtime.recorder import ArbRecord

    journal = Journal(tmp_path / "journal.sqlite")
    rec = JournalRecorder(journal)
    arb = ArbRecord(
        arb_id=7,
        symbol="BTC/USDT",
        buy_venue="mexc",
        sell_venue="gateio",
        ts_trigger=1,
        ts_decision=2,
    )
    rec.arb_started(arb)
    arb.outcome, arb.reason = "hedged", "one leg short"
    rec.arb_finished(arb)
    rows = journal_rows(
        tmp_path / "journal.sqlite", "SELECT arb_id, event, outcome, record FROM arbs ORDER BY seq"
    )
    assert [r[:3] for r in rows] == [(7, "started", "pending"), (7, "finished", "hedged")]
    assert '"reason":"one leg short"' in rows[1][3]
    assert rec.arbs == [arb]
    journal.close()


def test_record_stops_on_sigterm_even_when_started_with_it_blocked(
    sim_thread: dict[str, dict[str, VenueUrls]], tmp_path: Path
) -> None:
    """A service manager's SIGTERM ends a session whose parent had the stop signals
    blocked (the mask is inherited, and a blocked signal is never delivered)."""
    u = sim_thread["urls"]["mexc"]
    catalog = tmp_path / "cat"

    def blocked() -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})

    proc = subprocess.Popen(
        [sys.executable, "-m", "arbsim.app.cli", "record", "--venue", "mexc",
         "--symbol", "BTC/USDT", "--catalog", str(catalog), "--duration", "60",
         "--metrics-port", "off", "--venue-url", f"mexc={u.rest},{u.ws}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=blocked,
    )  # fmt: skip
    try:
        end = time.monotonic() + 30
        while not list(catalog.glob("*/*/book/*/*.parquet")) and time.monotonic() < end:
            assert proc.poll() is None
            time.sleep(0.1)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    finally:
        proc.kill()
    assert code == 0 and time.monotonic() - started < 20
    assert list(catalog.glob("mexc/BTC-USDT/book/*/*.parquet"))
