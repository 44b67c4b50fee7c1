"""The paper venue: live market data (the exchange simulator over 127.0.0.1, or a
hand-driven feed), simulated fills by the shared matching engine, latency slept for real."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from decimal import Decimal
from typing import Any

import pytest
from builders import instrument

from arbsim.core.book import OrderBook
from arbsim.core.errors import InsufficientBalance
from arbsim.core.model import Instrument, Order, OrderRequest, OrderStatus, Side, TimeInForce, Trade
from arbsim.core.ports import MarketSink, Venue, VenueHealth
from arbsim.runtime.latency import ConstantLatency
from exchanges.mexc.rules import MEXC_RULES
from exchanges.mexc.venue import MexcVenue
from exchanges.sim import SimConfig, Simulator, run_simulator
from exchanges.sim import VenueConfig as SimVenueConfig
from exchanges.simulated.fills import FillModel
from exchanges.simulated.paper import PaperVenue

MS = 1_000_000


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
    end = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


def req(cid: str, side: Side, qty: str, price: Decimal | None, tif: TimeInForce) -> OrderRequest:
    return OrderRequest(
        venue="mexc",
        symbol="BTC/USDT",
        side=side,
        qty=Decimal(qty),
        price=price,
        tif=tif,
        client_order_id=cid,
    )


# ---------------------------------------------------------------- against the simulator
SimPaper = tuple[Simulator, PaperVenue, Sink]


@pytest.fixture
async def sim_paper() -> AsyncIterator[SimPaper]:
    cfg = SimConfig(venues=[SimVenueConfig(venue="mexc")], speed=0)
    async with run_simulator(cfg) as sim:
        v = sim.venues["mexc"]
        feed = MexcVenue(
            None,
            rest_url=v.base_url,
            ws_url=v.ws_url,
            backoff_seed=1,
            backoff_base_s=0.01,
            ready_timeout_s=5.0,
        )
        paper = PaperVenue(
            feed,
            fills=FillModel(
                balances={"USDT": Decimal("100000"), "BTC": Decimal("1")},
                latency=ConstantLatency(30 * MS, 20 * MS),
                rules=MEXC_RULES,
            ),
        )
        sink = Sink()
        sim.step(50)
        await paper.start(["BTC/USDT"], sink)
        try:
            yield sim, paper, sink
        finally:
            await paper.stop()


async def test_taker_fills_on_the_live_book_after_real_latency(
    sim_paper: SimPaper,
) -> None:
    sim, paper, sink = sim_paper
    assert isinstance(paper, Venue)
    book = paper.book("BTC/USDT")
    await until(lambda: book.best_ask is not None and book.best_bid is not None)
    inst = paper.instrument("BTC/USDT")
    assert inst.venue == "mexc" and inst.taker_fee >= 0
    before = await paper.fetch_balances()
    assert book.best_ask is not None and book.best_ask_tick is not None
    ask = inst.round_price(book.best_ask, Side.BUY)
    qty = min(Decimal("0.01"), inst.round_qty(book.size_at(Side.SELL, book.best_ask_tick)))
    t0 = time.time_ns()
    order = await paper.place_order(req("p1", Side.BUY, str(qty), ask, TimeInForce.IOC))
    round_trip = time.time_ns() - t0
    assert round_trip >= 50 * MS  # entry 30 ms + response 20 ms, slept for real
    assert order.status is OrderStatus.FILLED and order.filled_qty == qty
    assert order.fills[0].liquidity == "taker" and order.fills[0].price <= ask
    # the fill reached the sink too, with its local time after the exchange time
    assert any(o.client_order_id == "p1" and o.status is OrderStatus.FILLED for o in sink.orders)
    f = order.fills[0]
    assert f.ts_local - f.ts_exchange >= 20 * MS
    after = await paper.fetch_balances()
    fee_base = f.fee if f.fee_asset == "BTC" else Decimal(0)
    assert after.total("BTC") == before.total("BTC") + qty - fee_base
    assert after.total("USDT") == before.total("USDT") - f.price * qty
    # nothing reached the simulator's own matching: paper fills are simulated locally
    assert sim.venues["mexc"].exchange is not None
    # market data keeps flowing to the sink
    books = sink.books
    sim.step(5)
    await until(lambda: sink.books > books)


async def test_rejection_carries_the_venue_code(sim_paper: SimPaper) -> None:
    _sim, paper, _sink = sim_paper
    book = paper.book("BTC/USDT")
    await until(lambda: book.best_bid is not None)
    inst = paper.instrument("BTC/USDT")
    assert book.best_bid is not None
    price = inst.round_price(book.best_bid, Side.SELL)
    with pytest.raises(InsufficientBalance) as e:
        await paper.place_order(req("p2", Side.BUY, "50", price, TimeInForce.GTC))
    assert e.value.code  # MEXC's own code from exchanges/rules.py
    assert e.value.venue == "mexc"


# ---------------------------------------------------------------- hand-driven feed
class Feed:
    """A MarketFeed whose book and trades the test drives."""

    name = "mexc"

    def __init__(self, inst: Instrument):
        self.inst = inst
        self.ob = OrderBook("mexc", inst.symbol, inst.tick)
        self.sink: MarketSink | None = None
        self.stopped = False

    async def start(self, symbols: Sequence[str], sink: MarketSink) -> None:
        self.sink = sink

    async def stop(self) -> None:
        self.stopped = True

    def instrument(self, symbol: str) -> Instrument:
        return self.inst

    def book(self, symbol: str) -> OrderBook:
        return self.ob

    def health(self) -> VenueHealth:
        return VenueHealth()

    def describe(self) -> dict[str, str | float]:
        return {"kind": "feed", "exchange": "mexc"}

    def quote(self, bid: float, bid_size: float, ask: float, ask_size: float) -> None:
        now = time.time_ns()
        self.ob.apply(
            [bid], [bid_size], [ask], [ask_size], ts_exchange=now, ts_local=now, snapshot=True
        )
        assert self.sink is not None
        self.sink.on_book("mexc", self.ob)

    def trade(self, side: Side, price: float, size: float) -> None:
        now = time.time_ns()
        assert self.sink is not None
        self.sink.on_trade(
            "mexc",
            Trade(
                venue="mexc",
                symbol=self.inst.symbol,
                ts_exchange=now,
                ts_local=now,
                trade_id=1,
                side=side,
                price=price,
                size=size,
            ),
        )


async def fed_paper(**kw: Any) -> tuple[Feed, PaperVenue, Sink]:
    feed = Feed(instrument("mexc"))
    paper = PaperVenue(
        feed,
        fills=FillModel(
            balances={"USDT": Decimal("10000"), "BTC": Decimal("1")},
            latency=ConstantLatency(10 * MS, 10 * MS),
            **kw,
        ),
    )
    sink = Sink()
    await paper.start(["BTC/USDT"], sink)
    feed.quote(100.0, 1.0, 100.5, 1.0)
    return feed, paper, sink


async def test_resting_order_fills_from_public_trades_after_push_latency() -> None:
    feed, paper, sink = await fed_paper()
    try:
        order = await paper.place_order(
            req("r1", Side.BUY, "0.5", Decimal("100.0"), TimeInForce.GTC)
        )
        assert order.status is OrderStatus.ACCEPTED
        assert [o.client_order_id for o in await paper.open_orders()] == ["r1"]
        # 1.0 displayed ahead of us at 100.0: a 1.25 sell eats the queue, then 0.25 fills us
        t_trade = time.time_ns()
        feed.trade(Side.SELL, 100.0, 1.25)
        assert not any(o.fills for o in sink.orders)  # not before the push latency
        await until(lambda: any(o.status is OrderStatus.PARTIALLY_FILLED for o in sink.orders))
        fill = next(o for o in sink.orders if o.fills).fills[0]
        assert fill.qty == Decimal("0.25") and fill.liquidity == "maker"
        assert fill.ts_local - t_trade >= 10 * MS
        # the book going through our price fills the rest
        feed.quote(99.0, 1.0, 99.5, 1.0)
        await until(lambda: any(o.status is OrderStatus.FILLED for o in sink.orders))
        bal = await paper.fetch_balances()
        assert bal.total("BTC") == Decimal("1.5")
        assert bal.total("USDT") == Decimal("10000") - Decimal("50.0")  # maker fee 0
        assert await paper.open_orders() == []
    finally:
        await paper.stop()
    assert feed.stopped


async def test_requests_stay_fifo_and_cancel_releases_balance() -> None:
    _feed, paper, sink = await fed_paper()
    try:
        placed = asyncio.create_task(
            paper.place_order(req("c1", Side.BUY, "1", Decimal("99.0"), TimeInForce.GTC))
        )
        await asyncio.sleep(0)
        # sent after the order: reaches the exchange after it, so the order is found
        canceled = await paper.cancel_order("BTC/USDT", "c1")
        await placed
        assert canceled.status is OrderStatus.CANCELED
        assert [o.status for o in sink.orders] == [OrderStatus.ACCEPTED, OrderStatus.CANCELED]
        bal = await paper.fetch_balances()
        assert bal.free("USDT") == Decimal("10000") and bal.total("USDT") == Decimal("10000")
    finally:
        await paper.stop()


async def test_constructor_does_no_io_and_unstarted_symbols_are_refused() -> None:
    feed = Feed(instrument("mexc"))
    paper = PaperVenue(feed, fills=FillModel(balances={}))
    assert feed.sink is None
    with pytest.raises(Exception, match="not started"):
        paper.instrument("BTC/USDT")
