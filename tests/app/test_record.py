"""Recording live feeds into a catalog: the live adapters against the local simulator,
with a dropped WebSocket and a sequence gap injected while recording."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner

from arbsim.app.cli import main
from arbsim.app.realtime import VenueUrls
from arbsim.app.record import record_async
from arbsim.app.registry import Registry
from arbsim.core.book import OrderBook
from arbsim.core.model import Order, Trade
from arbsim.core.ports import FeedSpec
from arbsim.data.capture import MarketCapture
from arbsim.data.catalog import FLAG_GAP, FLAG_SNAPSHOT_BEGIN, FLAG_SNAPSHOT_END, Catalog
from arbsim.data.feed import BookCursor
from arbsim.data.synth import generate_synthetic
from arbsim.runtime.loop import WallClock
from exchanges.sim import SimConfig, Simulator, run_simulator
from exchanges.sim import VenueConfig as SimVenueConfig
from exchanges.sim.config import FaultRule

SYM = "BTC/USDT"
ETH = "ETH/USDT"


def urls(sim: Simulator, name: str) -> VenueUrls:
    v = sim.venues[name]
    return VenueUrls(v.base_url if name == "mexc" else v.api_url, v.ws_url)


class Tape:
    """A sink that keeps the top of the live book after every message."""

    def __init__(self) -> None:
        self.states: dict[tuple[str, str], list[State]] = {}

    def on_book(self, venue: str, book: OrderBook) -> None:
        self.states.setdefault((venue, book.symbol), []).append(top(book))

    def on_trade(self, venue: str, trade: Trade) -> None:
        return None

    def on_order(self, order: Order) -> None:
        return None


State = tuple[object, object]


def top(book: OrderBook) -> State:
    return (book.bids(20), book.asks(20))


def replay(root: Path, venue: str, symbol: str) -> list[tuple[int, int, State]]:
    """(ts_exchange, flags, top 20) after every message of one catalog stream."""
    catalog = Catalog(root)
    book = OrderBook(venue, symbol, catalog.instrument(venue, symbol).tick)
    cursor = BookCursor(catalog, venue, symbol, book.scale, key="exchange", batch_size=256)
    out = []
    while cursor.next():
        cursor.apply(book)
        out.append((cursor.ts_exchange, cursor.flags, top(book)))
    return out


@pytest.fixture(scope="module")
def two_symbols(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("source") / "cat"
    generate_synthetic(root, seed=11, duration_s=60.0, symbols=[SYM, ETH])
    return root


async def test_recorded_books_are_the_simulators_books_through_drops_and_gaps(
    tmp_path: Path, two_symbols: Path
) -> None:
    cfg = SimConfig(
        data=str(two_symbols),
        venues=[SimVenueConfig(venue="mexc"), SimVenueConfig(venue="gateio")],
        speed=1,
    )
    async with run_simulator(cfg) as sim:
        offset_ns = sim.clock.offset_ns
        capture = MarketCapture(tmp_path / "cat", source="test", flush_rows=500)
        reg = Registry.from_entry_points()
        setup = reg.setup(mode="paper", loop=asyncio.get_running_loop(), clock=WallClock(),
                          environ={}, recorder=capture)  # fmt: skip
        tape = Tape()
        feeds = []
        for name in ("mexc", "gateio"):
            u = urls(sim, name)
            feed = reg.feed(name, FeedSpec(name, u.rest, u.ws), setup)
            await feed.start([SYM, ETH], tape)
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
    assert {i.key for i in catalog.instruments()} == {
        f"{v}:{s}" for v in ("mexc", "gateio") for s in (SYM, ETH)
    }
    for name in ("mexc", "gateio"):
        for symbol in (SYM, ETH):
            key = f"{name} {symbol}"
            source = replay(two_symbols, name, symbol)
            at = {ts + offset_ns: state for ts, _, state in source}
            recorded = replay(tmp_path / "cat", name, symbol)
            assert len(recorded) > 20, key
            # every update the venue pushed is recorded at the simulator's exchange time
            # (catalog time + offset) with the simulator's book after it; the snapshots a
            # (re)sync starts from are the simulator's book at some message, in order
            it = iter(state for _, _, state in source)
            timed = 0
            for ts, flags, state in recorded:
                if flags & (FLAG_SNAPSHOT_BEGIN | FLAG_SNAPSHOT_END | FLAG_GAP):
                    continue
                assert at.get(ts) == state, (key, ts)
                timed += 1
            assert timed > 20, key
            shown = [s for _, _, s in recorded if s != ((), ())]
            assert all(any(state == r for r in it) for state in shown), key
            # and every state the adapter showed the strategy is one of them
            it2 = iter(shown)
            assert all(any(state == r for r in it2) for state in tape.states[(name, symbol)])
            assert any(flags & FLAG_GAP for _, flags, _ in recorded), f"{key}: resync flagged"
            assert capture.stats.resyncs[key] >= 1, key


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
