"""Gate ``spot.obu`` as the book channel of GateVenue, against the local simulator over
127.0.0.1: the client's book equals the simulator's, no REST snapshot is used, and a gap
(injected ``skip_seq``) is repaired by unsubscribe + subscribe."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable

import pytest

import exchanges.sim.config as sim_config
import exchanges.sim.runner as sim_runner
from arbsim.core.book import OrderBook
from arbsim.core.model import Order, Trade
from exchanges.gateio import ws
from exchanges.gateio.rest import GateRestClient
from exchanges.gateio.stream import GateMarketDialect
from exchanges.gateio.venue import GateVenue
from exchanges.live.stream import Ack, DiffEvent

SYMBOL = "BTC/USDT"
Level = tuple[float, float]


class Sink:
    def __init__(self) -> None:
        self.books = 0

    def on_book(self, venue: str, book: OrderBook) -> None:
        self.books += 1

    def on_trade(self, venue: str, trade: Trade) -> None:
        pass

    def on_order(self, order: Order) -> None:
        pass


async def until(cond: Callable[[], bool], timeout_s: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while not cond():
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def levels(book: OrderBook, n: int = 20) -> tuple[list[Level], list[Level]]:
    return ([(lv.price, lv.size) for lv in book.bids(n)],
            [(lv.price, lv.size) for lv in book.asks(n)])  # fmt: skip


@contextlib.asynccontextmanager
async def obu_venue(
    depth: int = 400,
) -> AsyncIterator[tuple[sim_runner.Simulator, sim_runner.SimVenue, GateVenue, Sink]]:
    cfg = sim_config.SimConfig(venues=[sim_config.VenueConfig(venue="gateio")], speed=0)
    async with sim_runner.run_simulator(cfg) as sim:
        simv = sim.venues["gateio"]
        venue = GateVenue(None, rest_url=simv.api_url, ws_url=simv.ws_url, backoff_seed=1,
                          backoff_base_s=0.01, ready_timeout_s=5.0, book_channel="obu",
                          obu_depth=depth)  # fmt: skip
        sink = Sink()
        sim.step(50)
        try:
            await venue.start([SYMBOL], sink)
            yield sim, simv, venue, sink
        finally:
            await venue.stop()


async def test_obu_book_equals_the_simulator() -> None:
    # ob.BTC_USDT.400: deeper than the simulator's books. (With .50 the simulator, which
    # does not trim obu to the top 50, cannot show levels that move into the top 50 later.)
    async with obu_venue(400) as (sim, simv, venue, sink):
        (state,) = simv.market.symbols.values()
        book = venue.book(SYMBOL)

        def in_sync() -> bool:
            return book.best_bid is not None and levels(book) == levels(state.book)

        await until(in_sync)
        for _ in range(5):
            sim.step(10)
            await until(lambda: book.seq == state.version)
            assert in_sync()
        assert venue.market is not None
        assert venue.market.snapshots == 0  # the book never came from REST
        assert venue.market.resyncs == 0 and venue.market.resubscribes == 0
        assert sink.books > 5
        assert book.ts_exchange > 0 and book.ts_local > 0


async def test_obu_gap_resubscribes_and_ends_equal_again() -> None:
    async with obu_venue() as (sim, simv, venue, _sink):
        (state,) = simv.market.symbols.values()
        book = venue.book(SYMBOL)
        market = venue.market
        assert market is not None

        def in_sync() -> bool:
            return book.best_bid is not None and levels(book) == levels(state.book)

        await until(in_sync)
        simv.inject_fault(sim_config.FaultRule(kind="skip_seq", count=1))
        sim.step(5)
        await until(lambda: market.resubscribes >= 1 and in_sync())
        assert market.resyncs == 1 and market.resubscribes == 1
        assert market.connections == 1  # repaired on the same connection
        assert market.snapshots == 0
        sim.step(20)
        await until(lambda: book.seq == state.version)
        assert in_sync()
        assert market.resyncs == 1


def test_obu_dialect_frames_and_parsing() -> None:
    rest = GateRestClient("http://127.0.0.1:1/api/v4")
    dialect = GateMarketDialect(rest, {"BTC_USDT": SYMBOL}, book_channel="obu", obu_depth=50,
                                trades=False)  # fmt: skip
    ((topic, frame),) = dialect.subscribe_frames(["BTC_USDT"], 1700000000)
    assert topic == "spot.obu:ob.BTC_USDT.50"
    sent = json.loads(frame)
    assert sent["channel"] == "spot.obu" and sent["payload"] == ["ob.BTC_USDT.50"]
    assert sent["event"] == "subscribe" and sent["id"] == 1
    assert not dialect.rest_snapshot
    assert dialect.new_sync("BTC_USDT").symbol == "ob.BTC_USDT.50"

    unsub, sub = (json.loads(f) for f in dialect.resubscribe_frames("BTC_USDT", 1700000001))
    assert (unsub["event"], sub["event"]) == ("unsubscribe", "subscribe")
    assert unsub["payload"] == sub["payload"] == ["ob.BTC_USDT.50"]
    reply = {"time": 1, "channel": "spot.obu", "event": "subscribe", "id": sub["id"],
             "error": None, "result": {"status": "success"}}  # fmt: skip
    assert dialect.parse(json.dumps(reply), 0) == [Ack(topic)]

    push = {"time": 1, "channel": "spot.obu", "event": "update",
            "result": {"t": 5, "s": "ob.BTC_USDT.50", "U": 8, "u": 9,
                       "b": [["100.1", "2"]], "a": []}}  # fmt: skip
    (event,) = dialect.parse(json.dumps(push), 0)
    assert isinstance(event, DiffEvent) and event.native == "BTC_USDT"
    assert (event.diff.first_id, event.diff.last_id, event.diff.full) == (8, 9, False)
    full = {"time": 1, "channel": "spot.obu", "event": "update",
            "result": {"t": 5, "full": True, "s": "ob.BTC_USDT.50", "u": 9,
                       "b": [["100.1", "2"]], "a": [["100.2", "1"]]}}  # fmt: skip
    (event,) = dialect.parse(json.dumps(full), 0)
    assert isinstance(event, DiffEvent) and event.diff.full and event.diff.last_id == 9

    with pytest.raises(ValueError):
        GateMarketDialect(rest, {}, book_channel="obu", obu_depth=100)
    assert ws.obu_stream("BTC_USDT", 400) == "ob.BTC_USDT.400"


async def test_obu_corrupt_frame_resubscribes_and_ends_equal_again() -> None:
    async with obu_venue() as (sim, simv, venue, _sink):
        (state,) = simv.market.symbols.values()
        book = venue.book(SYMBOL)
        market = venue.market
        assert market is not None

        def in_sync() -> bool:
            return book.best_bid is not None and levels(book) == levels(state.book)

        await until(in_sync)
        simv.inject_fault(sim_config.FaultRule(kind="garbage", count=1))
        sim.step(5)
        await until(lambda: market.resubscribes >= 1 and market.up and in_sync())
        assert market.malformed.counts == {"spot.obu": 1}
        assert market.resyncs == 1 and market.snapshots == 0 and market.connections == 1
        simv.inject_fault(sim_config.FaultRule(kind="duplicate", count=2))
        sim.step(5)
        await until(lambda: book.seq == state.version)
        assert in_sync() and market.stale == 2 and market.resyncs == 1
