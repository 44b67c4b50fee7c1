"""Recording live feeds into a catalog: the live adapters against the local simulator,
with a dropped WebSocket and a sequence gap injected while recording."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pyarrow.parquet as pq
from click.testing import CliRunner

from arbsim.app.cli import main
from arbsim.app.realtime import VenueUrls
from arbsim.app.record import record_async
from arbsim.app.registry import Registry
from arbsim.core.book import OrderBook
from arbsim.core.model import Order, Trade
from arbsim.core.ports import FeedSpec
from arbsim.data.capture import MarketCapture
from arbsim.data.catalog import FLAG_GAP, Catalog
from arbsim.data.feed import BookCursor
from arbsim.runtime.loop import WallClock
from exchanges.sim import SimConfig, Simulator, run_simulator
from exchanges.sim import VenueConfig as SimVenueConfig
from exchanges.sim.config import FaultRule

SYM = "BTC/USDT"


def urls(sim: Simulator, name: str) -> VenueUrls:
    v = sim.venues[name]
    return VenueUrls(v.base_url if name == "mexc" else v.api_url, v.ws_url)


class Tape:
    """A sink that keeps the top of the live book after every message."""

    def __init__(self) -> None:
        self.states: dict[str, list[tuple[object, object]]] = {}

    def on_book(self, venue: str, book: OrderBook) -> None:
        self.states.setdefault(venue, []).append((book.bids(20), book.asks(20)))

    def on_trade(self, venue: str, trade: Trade) -> None:
        return None

    def on_order(self, order: Order) -> None:
        return None


async def test_recorded_books_replay_to_the_live_books_through_drops_and_gaps(
    tmp_path: Path,
) -> None:
    cfg = SimConfig(venues=[SimVenueConfig(venue="mexc"), SimVenueConfig(venue="gateio")], speed=1)
    async with run_simulator(cfg) as sim:
        capture = MarketCapture(tmp_path / "cat", source="test", flush_rows=500)
        reg = Registry.from_entry_points()
        setup = reg.setup(mode="paper", loop=asyncio.get_running_loop(), clock=WallClock(),
                          environ={}, recorder=capture)  # fmt: skip
        tape = Tape()
        feeds = []
        for name in ("mexc", "gateio"):
            u = urls(sim, name)
            feed = reg.feed(name, FeedSpec(name, u.rest, u.ws), setup)
            await feed.start([SYM], tape)
            feeds.append(feed)
        await asyncio.sleep(1.5)
        for v in sim.venues.values():
            v.inject_fault(FaultRule(kind="skip_seq", count=2))
        await asyncio.sleep(1.5)
        for v in sim.venues.values():
            v.inject_fault(FaultRule(kind="drop_ws"))
        await asyncio.sleep(3.0)
        for feed in feeds:
            await feed.stop()
        capture.close()
    catalog = Catalog(tmp_path / "cat")
    assert {i.key for i in catalog.instruments()} == {"mexc:BTC/USDT", "gateio:BTC/USDT"}
    for name in ("mexc", "gateio"):
        inst = catalog.instrument(name, SYM)
        book = OrderBook(name, SYM, inst.tick)
        cursor = BookCursor(catalog, name, SYM, book.scale, batch_size=256)
        replayed = []
        while cursor.next():
            cursor.apply(book)
            replayed.append((book.bids(20), book.asks(20)))
        live = tape.states[name]
        # every message the adapter applied (and showed) is in the catalog, in order; the
        # catalog also holds the empty state a resync starts from, which the feed never shows
        it = iter(replayed)
        assert all(any(state == r for r in it) for state in live), name
        assert len(live) > 20
        rows = pq.ParquetDataset(tmp_path / "cat" / name / "BTC-USDT" / "book").read()
        flags = rows.column("flags").to_pylist()
        assert any(int(f or 0) & FLAG_GAP for f in flags), f"{name}: the resyncs are flagged"
        assert capture.stats.resyncs[f"{name} {SYM}"] >= 1


async def test_record_command_writes_a_readable_catalog(tmp_path: Path) -> None:
    cfg = SimConfig(venues=[SimVenueConfig(venue="mexc")], speed=1)
    lines: list[str] = []
    async with run_simulator(cfg) as sim:
        result = await record_async(
            ["mexc"], [SYM], tmp_path / "cat", duration_s=2.5,
            urls={"mexc": urls(sim, "mexc")}, heartbeat_s=1.0, say=lines.append,
        )  # fmt: skip
    assert result.book_messages["mexc BTC/USDT"] > 10
    assert any("messages mexc" in line for line in lines)
    assert Catalog(tmp_path / "cat").time_range("mexc", SYM) is not None


def test_record_refuses_bad_arguments_before_anything(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        main, ["record", "--venue", "mexc", "--symbol", "BTCUSDT", "--catalog", str(tmp_path / "c")]
    )
    assert res.exit_code == 2 and "--symbol 'BTCUSDT'" in res.output
    assert not (tmp_path / "c").exists()
