"""Each live adapter against the local exchange simulator (exchanges.sim) over 127.0.0.1:
place -> partial fill -> fill -> cancel -> query -> balances, with the book in sync."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import pytest

import exchanges.sim.config as sim_config
import exchanges.sim.runner as sim_runner
from arbsim.core.book import OrderBook
from arbsim.core.model import Order, OrderRequest, OrderStatus, Side, TimeInForce, Trade
from exchanges.gateio.venue import GateVenue
from exchanges.live.credentials import Credentials
from exchanges.mexc.venue import MexcVenue

Level = tuple[float, float]


class Sink:
    def __init__(self) -> None:
        self.orders: list[Order] = []
        self.books = 0
        self.trades: list[Trade] = []

    def on_book(self, venue: str, book: OrderBook) -> None:
        self.books += 1

    def on_trade(self, venue: str, trade: Trade) -> None:
        self.trades.append(trade)

    def on_order(self, order: Order) -> None:
        self.orders.append(order)


async def until(cond: Callable[[], bool], timeout_s: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while not cond():
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def make_venue(name: str, v: sim_runner.SimVenue) -> MexcVenue | GateVenue:
    common: dict[str, Any] = dict(backoff_seed=1, backoff_base_s=0.01, settle_timeout_s=1.0,
                                  ready_timeout_s=5.0)  # fmt: skip
    if name == "mexc":
        return MexcVenue(
            Credentials(v.api_key, v.api_secret), rest_url=v.base_url, ws_url=v.ws_url,
            private_ws_url=v.ws_url + "?listenKey={listen_key}", **common,
        )  # fmt: skip
    return GateVenue(Credentials(v.api_key, v.api_secret), rest_url=v.api_url,
                     ws_url=v.ws_url, **common)  # fmt: skip


Setup = tuple[sim_runner.Simulator, sim_runner.SimVenue, MexcVenue | GateVenue, Sink]


@pytest.fixture(params=["mexc", "gateio"])
async def setup(request: pytest.FixtureRequest) -> AsyncIterator[Setup]:
    name = request.param
    cfg = sim_config.SimConfig(venues=[sim_config.VenueConfig(venue=name)], speed=0)
    async with sim_runner.run_simulator(cfg) as sim:
        venue = make_venue(name, sim.venues[name])
        sink = Sink()
        sim.step(50)
        await venue.start(["BTC/USDT"], sink)
        try:
            yield sim, sim.venues[name], venue, sink
        finally:
            await venue.stop()


def seen(sink: Sink, cid: str, status: OrderStatus) -> bool:
    return any(o.client_order_id == cid and o.status is status for o in sink.orders)


def req(venue: MexcVenue | GateVenue, cid: str, side: Side, qty: str, price: Decimal,
        tif: TimeInForce = TimeInForce.GTC) -> OrderRequest:  # fmt: skip
    return OrderRequest(venue=venue.name, symbol="BTC/USDT", side=side, qty=Decimal(qty),
                        price=price, tif=tif, client_order_id=cid)  # fmt: skip


async def test_place_partial_fill_fill_cancel_query_balances(
    setup: Setup,
) -> None:
    _sim, simv, venue, sink = setup
    book = venue.book("BTC/USDT")
    await until(lambda: book.best_bid is not None and book.best_ask is not None)
    inst = venue.instrument("BTC/USDT")
    before = await venue.fetch_balances()
    assert book.best_bid is not None
    price = inst.round_price(book.best_bid - 50 * float(inst.tick), Side.SELL)

    placed = await venue.place_order(req(venue, "a0000001", Side.BUY, "0.01", price))
    assert placed.status is OrderStatus.ACCEPTED and placed.order_id

    simv.exchange.inject_trade("BTC/USDT", Side.SELL, price, Decimal("0.004"))
    await until(lambda: seen(sink, "a0000001", OrderStatus.PARTIALLY_FILLED))
    simv.exchange.inject_trade("BTC/USDT", Side.SELL, price, Decimal("0.006"))
    await until(lambda: seen(sink, "a0000001", OrderStatus.FILLED))
    last = [o for o in sink.orders if o.client_order_id == "a0000001"][-1]
    assert last.filled_qty == Decimal("0.01") and len(last.fills) == 2
    assert all(f.fee_asset for f in last.fills)

    rest_order = await venue.place_order(req(venue, "a0000002", Side.BUY, "0.01", price))
    assert rest_order.is_open
    assert [o.client_order_id for o in await venue.open_orders("BTC/USDT")] == ["a0000002"]
    canceled = await venue.cancel_order("BTC/USDT", "a0000002")
    assert canceled.status is OrderStatus.CANCELED

    queried = await venue.fetch_order("BTC/USDT", "a0000001")
    assert queried.status is OrderStatus.FILLED and queried.filled_qty == Decimal("0.01")
    assert queried.avg_price == price

    after = await venue.fetch_balances()
    fees_base = sum((f.fee for f in last.fills if f.fee_asset == "BTC"), Decimal(0))
    assert after.total("BTC") == before.total("BTC") + Decimal("0.01") - fees_base
    assert after.free("USDT") < before.free("USDT")


def _levels(book: OrderBook, n: int = 20) -> tuple[list[Level], list[Level]]:
    return ([(lv.price, lv.size) for lv in book.bids(n)],
            [(lv.price, lv.size) for lv in book.asks(n)])  # fmt: skip


async def test_book_matches_the_simulator_through_gaps_and_drops(
    setup: Setup,
) -> None:
    sim, simv, venue, _sink = setup
    (state,) = simv.market.symbols.values()
    book = venue.book("BTC/USDT")

    def in_sync() -> bool:
        return _levels(book) == _levels(state.book) and book.best_bid is not None

    market = venue.market
    assert market is not None
    await until(in_sync)
    simv.inject_fault(sim_config.FaultRule(kind="skip_seq", count=1))
    sim.step(5)
    await until(lambda: market.resyncs >= 1 and in_sync())
    connections = market.connections
    simv.inject_fault(sim_config.FaultRule(kind="drop_ws"))
    await until(lambda: market.connections > connections and market.ready.is_set())
    sim.step(5)
    await until(in_sync)
    assert book.ts_local > 0 and book.ts_exchange > 0


async def test_ioc_taker_returns_its_final_state(setup: Setup) -> None:
    _sim, _simv, venue, _sink = setup
    book = venue.book("BTC/USDT")
    await until(lambda: book.best_ask is not None)
    inst = venue.instrument("BTC/USDT")
    assert book.best_ask is not None
    price = inst.round_price(book.best_ask, Side.BUY)
    qty = inst.round_qty(min(book.best_ask_size, 0.002))
    order = await venue.place_order(
        req(venue, "i0000001", Side.BUY, str(qty), price, TimeInForce.IOC)
    )
    assert not order.is_open
    assert order.filled_qty == qty and order.fills and order.fills[0].liquidity == "taker"


async def test_corrupt_frame_resyncs_and_duplicates_are_ignored(setup: Setup) -> None:
    """A corrupt depth frame (simulator fault ``garbage``) is counted, the book is synced
    again (the stream says "down" meanwhile) and ends equal to the simulator's; duplicated
    frames (fault ``duplicate``) change nothing and cost no resync."""
    sim, simv, venue, _sink = setup
    (state,) = simv.market.symbols.values()
    book = venue.book("BTC/USDT")
    market = venue.market
    assert market is not None

    def in_sync() -> bool:
        return _levels(book) == _levels(state.book) and book.best_bid is not None

    await until(lambda: in_sync() and market.up)
    resyncs = market.resyncs
    simv.inject_fault(sim_config.FaultRule(kind="duplicate", count=3))
    sim.step(5)
    await until(lambda: market.stale == 3 and book.seq == state.version)
    assert in_sync() and market.up
    assert market.resyncs == resyncs and market.malformed.total == 0

    simv.inject_fault(sim_config.FaultRule(kind="garbage", count=1))
    sim.step(1)
    await until(lambda: market.malformed.total == 1)
    assert not market.up and not venue.health().market  # down until synced again
    await until(lambda: market.up and in_sync())
    assert market.resyncs == resyncs + 1
    assert market.malformed.last is not None and market.malformed.last.venue == venue.name
    sim.step(5)
    await until(lambda: book.seq == state.version)
    assert in_sync() and market.up and venue.health().market
    assert market.connections == 1  # survived on the same connection
