"""The replay venue through the engine on the virtual-time loop (DESIGN §3).

Each test writes a tiny catalog with builders, runs ``arbsim.app.backtest.run_backtest``
with a small scripted Strategy, records what the strategy saw, and asserts on it
afterwards (assertions inside callbacks would only surface as StrategyError).

Latency everywhere: entry 10 ms, response 10 ms. The first book message is at
``T0`` (ts_local), so the engine is ready at T0 + 20 ms (start balances round trip).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Coroutine
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import builders
import pytest
from builders import MS, T0

from arbsim.app.backtest import run_backtest
from arbsim.app.config import Config, parse_config
from arbsim.core.book import OrderBook
from arbsim.core.errors import InsufficientBalance, OrderNotFound, PrecisionError, VenueError
from arbsim.core.model import (
    BookLevel,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    Trade,
)
from arbsim.runtime.context import Context
from arbsim.runtime.loop import VirtualTimeLoop
from arbsim.runtime.risk import RiskDenied
from arbsim.runtime.strategy import Strategy

ENTRY = 10 * MS
RESPONSE = 10 * MS
SYM = "BTC/USDT"

Script = Callable[[Context, "Probe"], Coroutine[Any, Any, None]]
#: what a strategy saw: (now, book ts_local, best bid, top bids, top asks)
Sample = tuple[int, int, float | None, list[BookLevel], list[BookLevel]]
#: a book message as written: (ts_exchange, ts_local, bids, asks, snapshot)
Message = tuple[int, int, list[builders.Level], list[builders.Level], bool]


class Probe(Strategy):
    """Runs ``script`` as a task from on_start and records everything it is shown."""

    name = "probe"

    def __init__(self, script: Script | None = None, timer_s: float | None = None):
        self.script = script
        self.timer_s = timer_s
        self.ctx: Context | None = None
        self.seen: dict[str, Any] = {}
        self.orders: list[tuple[int, Order]] = []
        self.books: list[Sample] = []
        self.timers: list[Sample] = []
        self.trades: list[tuple[int, Trade]] = []

    async def on_start(self, ctx: Context) -> None:
        self.ctx = ctx
        if self.script is not None:
            ctx.spawn(self.script(ctx, self), name="script")
        if self.timer_s is not None:
            ctx.every(self.timer_s, lambda: self._sample(ctx, self.timers))

    def _sample(self, ctx: Context, into: list[Sample]) -> None:
        b = ctx.book("mexc", SYM)
        into.append((ctx.now_ns(), b.ts_local, b.best_bid, b.bids(50), b.asks(50)))

    def on_book(self, ctx: Context, venue: str, book: OrderBook) -> None:
        self._sample(ctx, self.books)

    def on_trade(self, ctx: Context, venue: str, trade: Trade) -> None:
        self.trades.append((ctx.now_ns(), trade))

    def on_order(self, ctx: Context, order: Order) -> None:
        self.orders.append((ctx.now_ns(), order))


def make_config(balances: dict[str, str], extra: str = "") -> Config:
    bal = ", ".join(f'{k}: "{v}"' for k, v in balances.items())
    text = f"""
venues:
  - name: mexc
    rules: generic
    balances: {{{bal}}}
    latency: {{entry_ms: 10.0, response_ms: 10.0}}
run: {{drain_s: 1.0, equity_interval_s: 1.0}}
{extra}
"""
    return parse_config(text.encode())


def run(
    tmp_path: Path,
    data: builders.VenueData,
    probe: Probe,
    balances: dict[str, str] | None = None,
    extra: str = "",
) -> dict[str, Any]:
    cat = tmp_path / "cat"
    builders.write_catalog(cat, [data])
    res = run_backtest(
        make_config(balances or {"USDT": "1000", "BTC": "0"}, extra),
        catalog_path=cat,
        out_dir=tmp_path / "run",
        strategy=probe,
    )
    return res.summary


async def sleep_until(ts: int) -> None:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualTimeLoop)
    await loop.sleep_until(ts)


def req(side: Side, qty: str, price: str, tif: TimeInForce = TimeInForce.IOC) -> OrderRequest:
    return OrderRequest(venue="mexc", symbol=SYM, side=side, qty=D(qty), price=D(price), tif=tif)


def base_data(**inst_kw: object) -> builders.VenueData:
    kw: dict[str, object] = {"maker_fee": D("0.0002"), "taker_fee": D("0.001")}
    kw.update(inst_kw)
    v = builders.VenueData(builders.instrument("mexc", **kw))
    v.message(T0, T0, bids=[(99.0, 1.0)], asks=[(100.0, 1.0)], snapshot=True)
    return v


# ----------------------------------------------------------------------------- latency
def test_order_meets_exchange_book_at_arrival_and_answer_after_response(tmp_path: Path) -> None:
    v = base_data()
    # feed latency 20 ms: the exchange improves the ask to 99.5 at T0+105 (before our
    # arrival at T0+110), the strategy only sees it at T0+125
    v.message(T0 + 105 * MS, T0 + 125 * MS, asks=[(99.5, 1.0)])
    # after our arrival: must not be seen by our order
    v.message(T0 + 115 * MS, T0 + 135 * MS, asks=[(99.2, 1.0)])
    v.message(T0 + 300 * MS, T0 + 320 * MS, bids=[(98.0, 1.0)])

    async def script(ctx: Context, p: Probe) -> None:
        await sleep_until(T0 + 100 * MS)
        p.seen["local_ask_at_send"] = ctx.book("mexc", SYM).best_ask
        p.seen["sent"] = ctx.now_ns()
        p.seen["order"] = await ctx.place_order(req(Side.BUY, "0.5", "100.0"))
        p.seen["done"] = ctx.now_ns()
        p.seen["local_ask_at_answer"] = ctx.book("mexc", SYM).best_ask
        p.seen["balances"] = await ctx.fetch_balances("mexc")
        p.seen["bal_done"] = ctx.now_ns()

    probe = Probe(script)
    summary = run(tmp_path, v, probe)
    s = probe.seen
    assert s["sent"] == T0 + 100 * MS
    assert s["local_ask_at_send"] == 100.0
    o: Order = s["order"]
    # accepted and matched at exchange time sent + entry, against the exchange book then
    assert o.ts_accepted == s["sent"] + ENTRY
    assert o.arrival_price == 99.5
    assert o.status is OrderStatus.FILLED
    assert [(f.price, f.qty, f.fee) for f in o.fills] == [(D("99.5"), D("0.5"), D("0.04975"))]
    assert o.fills[0].ts_exchange == s["sent"] + ENTRY
    # the answer reaches the strategy exactly after entry + response
    assert s["done"] == s["sent"] + ENTRY + RESPONSE
    assert o.fills[0].ts_local == s["done"]
    # while the local book still shows the old ask (it learns of 99.5 at T0+125)
    assert s["local_ask_at_answer"] == 100.0
    # balances: 1000 - 49.75 - 0.04975 = 950.20025 ; BTC 0.5 ; one more round trip
    b = s["balances"]
    assert (b.free("USDT"), b.free("BTC")) == (D("950.20025"), D("0.5"))
    assert s["bal_done"] == s["done"] + ENTRY + RESPONSE
    assert summary["reconciled_exactly"] is True
    assert summary["status"] == "ok"


@pytest.mark.parametrize("first", ["big", "small"])
def test_same_time_orders_reach_exchange_fifo(tmp_path: Path, first: str) -> None:
    v = base_data()
    v.message(T0 + 500 * MS, T0 + 500 * MS, bids=[(98.0, 1.0)])
    # USDT 60: the big buy needs 0.5 * 100 * 1.001 = 50.05, the small 0.3 * 100 * 1.001
    # = 30.03; whichever reaches the exchange first fills, the other is rejected
    orders = {"big": req(Side.BUY, "0.5", "100.0"), "small": req(Side.BUY, "0.3", "100.0")}
    second = "small" if first == "big" else "big"

    async def one(ctx: Context, p: Probe, name: str) -> None:
        try:
            p.seen[name] = await ctx.place_order(orders[name])
        except VenueError as e:
            p.seen[name] = e
        p.seen[name + "_t"] = ctx.now_ns()

    async def script(ctx: Context, p: Probe) -> None:
        await sleep_until(T0 + 100 * MS)
        await asyncio.gather(one(ctx, p, first), one(ctx, p, second))
        p.seen["bal"] = await ctx.fetch_balances("mexc")

    probe = Probe(script)
    summary = run(tmp_path, v, probe, {"USDT": "60", "BTC": "0"})
    won, lost = probe.seen[first], probe.seen[second]
    assert isinstance(won, Order) and won.status is OrderStatus.FILLED
    assert won.ts_accepted == T0 + 100 * MS + ENTRY
    assert probe.seen[first + "_t"] == T0 + 100 * MS + ENTRY + RESPONSE
    assert isinstance(lost, InsufficientBalance)
    assert lost.code == "INSUFFICIENT_BALANCE"
    # the loser's answer comes after the winner's (FIFO), within a microsecond
    assert 0 <= probe.seen[second + "_t"] - probe.seen[first + "_t"] <= 1000
    spent = {"big": D("50.05"), "small": D("30.03")}[first]
    assert probe.seen["bal"].free("USDT") == D(60) - spent
    assert summary["rejections"] == {"mexc:INSUFFICIENT_BALANCE": 1}
    assert summary["reconciled_exactly"] is True


def test_rejected_order_raises_venue_error_with_code_after_round_trip(tmp_path: Path) -> None:
    v = base_data()
    v.message(T0 + 500 * MS, T0 + 500 * MS, bids=[(98.0, 1.0)])

    async def script(ctx: Context, p: Probe) -> None:
        await sleep_until(T0 + 100 * MS)
        try:
            await ctx.place_order(req(Side.BUY, "0.5", "100.05"))  # off the 0.1 tick
        except VenueError as e:
            p.seen["err"] = e
        p.seen["t"] = ctx.now_ns()
        p.seen["bal"] = await ctx.fetch_balances("mexc")

    probe = Probe(script)
    summary = run(tmp_path, v, probe)
    err = probe.seen["err"]
    assert isinstance(err, PrecisionError)
    assert err.code == "INVALID_PRICE_PRECISION"
    assert err.venue == "mexc"
    assert probe.seen["t"] == T0 + 100 * MS + ENTRY + RESPONSE
    assert [o.status for _, o in probe.orders] == [OrderStatus.REJECTED]
    assert probe.orders[0][1].reject_code == "INVALID_PRICE_PRECISION"
    assert probe.seen["bal"].free("USDT") == D("1000")
    assert summary["rejections"] == {"mexc:INVALID_PRICE_PRECISION": 1}


def test_resting_gtc_filled_later_seen_after_response_latency(tmp_path: Path) -> None:
    v = base_data()
    # exchange time T0+150: an ask at our price (0.2) -> maker fill of 0.2
    v.message(T0 + 150 * MS, T0 + 170 * MS, asks=[(99.5, 0.2)])
    # exchange time T0+250: ask through our price -> maker fill of the remaining 0.3
    v.message(T0 + 250 * MS, T0 + 270 * MS, asks=[(99.4, 1.0)])
    v.message(T0 + 500 * MS, T0 + 500 * MS, bids=[(98.0, 1.0)])

    async def script(ctx: Context, p: Probe) -> None:
        await sleep_until(T0 + 100 * MS)
        p.seen["ack"] = await ctx.place_order(req(Side.BUY, "0.5", "99.5", TimeInForce.GTC))
        p.seen["bal_resting"] = await ctx.fetch_balances("mexc")
        await sleep_until(T0 + 400 * MS)
        p.seen["bal_end"] = await ctx.fetch_balances("mexc")

    probe = Probe(script)
    summary = run(tmp_path, v, probe)
    ack: Order = probe.seen["ack"]
    assert ack.status is OrderStatus.ACCEPTED and ack.filled_qty == 0
    # resting: 0.5 * 99.5 * 1.0002 = 49.75995 locked
    br = probe.seen["bal_resting"]
    assert br.assets["USDT"].free == D("950.24005")
    assert br.assets["USDT"].locked == D("49.75995")
    got = [(t, o.status, o.filled_qty, [(f.price, f.qty, f.fee, f.liquidity) for f in o.fills])
           for t, o in probe.orders]  # fmt: skip
    assert got == [
        (T0 + 120 * MS, OrderStatus.ACCEPTED, D(0), []),
        # fill at exchange T0+150 reaches the strategy at T0+160; fee 0.2*99.5*0.0002
        (
            T0 + 160 * MS,
            OrderStatus.PARTIALLY_FILLED,
            D("0.2"),
            [(D("99.5"), D("0.2"), D("0.00398"), "maker")],
        ),
        (
            T0 + 260 * MS,
            OrderStatus.FILLED,
            D("0.5"),
            [
                (D("99.5"), D("0.2"), D("0.00398"), "maker"),
                (D("99.5"), D("0.3"), D("0.00597"), "maker"),
            ],
        ),
    ]
    assert [f.ts_exchange for f in probe.orders[-1][1].fills] == [T0 + 150 * MS, T0 + 250 * MS]
    # end: 1000 - 49.75 - 0.00995 = 950.24005 free, nothing locked, 0.5 BTC
    be = probe.seen["bal_end"]
    assert (be.assets["USDT"].free, be.assets["USDT"].locked) == (D("950.24005"), D(0))
    assert be.total("BTC") == D("0.5")
    assert summary["reconciled_exactly"] is True


def test_trades_delivered_locally_and_fill_resting_on_exchange_time(tmp_path: Path) -> None:
    v = base_data()
    # a sell aggressor through our resting buy at exchange time T0+150, local T0+180
    v.trade(T0 + 150 * MS, T0 + 180 * MS, -1, 99.3, 0.4)
    v.message(T0 + 500 * MS, T0 + 500 * MS, bids=[(98.0, 1.0)])

    async def script(ctx: Context, p: Probe) -> None:
        await sleep_until(T0 + 100 * MS)
        await ctx.place_order(req(Side.BUY, "0.5", "99.5", TimeInForce.GTC))

    probe = Probe(script)
    run(tmp_path, v, probe)
    assert [(t, tr.price, tr.side) for t, tr in probe.trades] == [(T0 + 180 * MS, 99.3, Side.SELL)]
    seen = [(t, o.status, [(f.price, f.qty) for f in o.fills]) for t, o in probe.orders]
    assert seen[:2] == [
        (T0 + 120 * MS, OrderStatus.ACCEPTED, []),
        # the private fill (exchange T0+150, + 10 ms) reaches us before the public trade
        (T0 + 160 * MS, OrderStatus.PARTIALLY_FILLED, [(D("99.5"), D("0.4"))]),
    ]
    # the 0.1 remainder is cancelled at shutdown
    assert seen[2][1] is OrderStatus.CANCELED
    assert len(seen) == 3


def test_cancel_resting_releases_lock_and_a_second_cancel_reads_the_state_back(
    tmp_path: Path,
) -> None:
    v = base_data()
    v.message(T0 + 500 * MS, T0 + 500 * MS, bids=[(98.0, 1.0)])

    async def script(ctx: Context, p: Probe) -> None:
        await sleep_until(T0 + 100 * MS)
        o = await ctx.place_order(req(Side.BUY, "0.5", "99.5", TimeInForce.GTC))
        p.seen["locked"] = (await ctx.fetch_balances("mexc")).assets["USDT"].locked
        t = ctx.now_ns()
        p.seen["canceled"] = await ctx.cancel_order("mexc", SYM, o.client_order_id)
        p.seen["cancel_rt"] = ctx.now_ns() - t
        p.seen["after"] = await ctx.fetch_balances("mexc")
        t = ctx.now_ns()
        # the venue no longer knows it as open: the order is read back, not guessed
        p.seen["again"] = await ctx.cancel_order("mexc", SYM, o.client_order_id)
        p.seen["again_rt"] = ctx.now_ns() - t
        try:
            await ctx.cancel_order("mexc", SYM, "never-sent")
        except OrderNotFound as e:
            p.seen["unknown"] = e

    probe = Probe(script)
    summary = run(tmp_path, v, probe)
    s = probe.seen
    # 0.5 * 99.5 * 1.0002 = 49.75995 locked while resting, all back after the cancel
    assert s["locked"] == D("49.75995")
    assert s["canceled"].status is OrderStatus.CANCELED
    assert s["cancel_rt"] == ENTRY + RESPONSE
    after = s["after"].assets["USDT"]
    assert (after.free, after.locked) == (D("1000"), D(0))
    assert s["again"].status is OrderStatus.CANCELED
    assert s["again_rt"] == 2 * (ENTRY + RESPONSE)  # the refused cancel, then the query
    assert s["unknown"].code == "ORDER_NOT_FOUND"
    assert summary["reconciled_exactly"] is True


def test_market_order_notional_is_checked(tmp_path: Path) -> None:
    v = base_data()
    v.message(T0 + 500 * MS, T0 + 500 * MS, bids=[(98.0, 1.0)])
    market = OrderRequest(
        venue="mexc", symbol=SYM, side=Side.BUY, qty=D("0.5"), order_type=OrderType.MARKET
    )

    async def script(ctx: Context, p: Probe) -> None:
        await sleep_until(T0 + 100 * MS)
        for name, r in (("limit", req(Side.BUY, "0.5", "100.0")), ("market", market)):
            try:
                p.seen[name] = await ctx.place_order(r)
            except RiskDenied as e:
                p.seen[name] = e.reason

    probe = Probe(script)
    run(tmp_path, v, probe, extra='risk: {max_order_notional: "10"}')
    # 0.5 * 100.0 = 50 > 10 for both; the market order would pay ~50 as well
    assert probe.seen["limit"] == "order_notional"
    assert probe.seen["market"] == "order_notional"


def test_resting_orders_count_as_open_orders(tmp_path: Path) -> None:
    v = base_data()
    v.message(T0 + 500 * MS, T0 + 500 * MS, bids=[(98.0, 1.0)])

    async def script(ctx: Context, p: Probe) -> None:
        await sleep_until(T0 + 100 * MS)
        p.seen["first"] = await ctx.place_order(req(Side.BUY, "0.1", "99.0", TimeInForce.GTC))
        try:
            p.seen["second"] = await ctx.place_order(req(Side.BUY, "0.1", "98.9", TimeInForce.GTC))
        except RiskDenied as e:
            p.seen["second"] = e.reason

    probe = Probe(script)
    run(tmp_path, v, probe, extra="risk: {max_open_orders: 1}")
    assert probe.seen["first"].status is OrderStatus.ACCEPTED  # resting, open
    assert probe.seen["second"] == "open_orders"


# ----------------------------------------------------------------------------- lookahead
def _rebuild(
    messages: list[Message], t: int
) -> tuple[int, list[builders.Level], list[builders.Level]]:
    """Independent book model: every message with ts_local <= t, applied in order."""
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    last = 0
    for _, tsl, mb, ma, snap in messages:
        if tsl > t:
            break
        if snap:
            bids.clear()
            asks.clear()
        for side, levels in ((bids, mb), (asks, ma)):
            for price, size in levels:
                if size == 0:
                    side.pop(price, None)
                else:
                    side[price] = size
        last = tsl
    return (
        last,
        sorted(bids.items(), reverse=True),
        sorted(asks.items()),
    )


def test_no_lookahead_in_callbacks_and_timers(tmp_path: Path) -> None:
    rng = random.Random(11)
    v = builders.VenueData(builders.instrument("mexc"))
    messages: list[Message] = []
    first = ([(99.5, 1.0), (99.4, 2.0)], [(100.1, 1.0), (100.2, 2.0)])
    messages.append((T0, T0, first[0], first[1], True))
    # timers fire on a 1 ms grid (T0 + 20 ms + k * 7 ms); messages sit at 0.25 ms offsets,
    # never on that grid (same-nanosecond ties: see the next test)
    times = {T0 + MS // 4 + rng.randint(1, 500) * MS // 2 for _ in range(70)}
    for tsl in sorted(times):
        tsx = tsl - rng.randint(0, 40) * MS // 2
        mb = [(round(99.0 + rng.randint(0, 9) / 10, 1), float(rng.choice([0, 0.5, 1, 3])))]
        ma = [(round(100.0 + rng.randint(0, 9) / 10, 1), float(rng.choice([0, 0.5, 1, 3])))]
        snap = rng.random() < 0.05
        if snap:
            mb.append((99.0, 1.0))
            ma.append((100.9, 1.0))
        messages.append((max(tsx, T0), tsl, mb, ma, snap))
    for tsx, tsl, mb, ma, snap in messages:
        v.message(tsx, tsl, bids=mb, asks=ma, snapshot=snap)

    probe = Probe(timer_s=0.007)
    run(tmp_path, v, probe)
    assert len(probe.books) > 30 and len(probe.timers) > 30

    def levels(bl: list[BookLevel]) -> list[tuple[float, float]]:
        return [(lv.price, lv.size) for lv in bl]

    for now, ts_local, best_bid, bids, asks in probe.books:
        # a callback is delivered at the message's own ts_local, with it applied
        assert ts_local == now
        last, eb, ea = _rebuild(messages, now)
        assert (levels(bids), levels(asks)) == (eb, ea)
        assert best_bid == (eb[0][0] if eb else None)
    for now, ts_local, best_bid, bids, asks in probe.timers:
        assert ts_local <= now
        last, eb, ea = _rebuild(messages, now)
        assert ts_local == last
        assert (levels(bids), levels(asks)) == (eb, ea)
        assert best_bid == (eb[0][0] if eb else None)


def test_timer_at_same_ns_as_message_sees_it(tmp_path: Path) -> None:
    v = builders.VenueData(builders.instrument("mexc"))
    v.message(T0, T0, bids=[(99.5, 1.0)], asks=[(100.1, 1.0)], snapshot=True)
    # one message exactly on every timer time: T0 + 20 ms (ready) + k * 7 ms
    for k in range(1, 30):
        t = T0 + 20 * MS + 7 * MS * k
        v.message(t, t, bids=[(99.0 + (k % 9) / 10, 1.0)])
    probe = Probe(timer_s=0.007)
    run(tmp_path, v, probe)
    on_grid = [(now, tsl) for now, tsl, *_ in probe.timers if now < T0 + 225 * MS]
    assert len(on_grid) == 29
    # each timer at t must see the message with ts_local == t (rows with ts_local <= t)
    assert [tsl for _, tsl in on_grid] == [T0 + 20 * MS + 7 * MS * k for k in range(1, 30)]
