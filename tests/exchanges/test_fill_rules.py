"""Queue position, venue rules and fees, computed by hand (issue: realistic fills)."""

from __future__ import annotations

import asyncio
import math
from decimal import Decimal as D
from pathlib import Path

import builders
import pytest

from arbsim.core.book import OrderBook
from arbsim.core.errors import PostOnlyWouldTake, RateLimited, VenueError
from arbsim.core.model import Order, OrderRequest, OrderStatus, OrderType, Side, TimeInForce
from arbsim.runtime.context import Context
from arbsim.runtime.strategy import Strategy
from exchanges.gateio.rules import GATEIO_RULES
from exchanges.mexc.rules import MEXC_RULES
from exchanges.simulated.matching import Account, ExecEvent, MatchingEngine, QueueModel
from exchanges.simulated.rules import GENERIC_RULES, RequestLimiter

TS = builders.T0
SEC = 1_000_000_000
RULES = {r.name: r for r in (GENERIC_RULES, MEXC_RULES, GATEIO_RULES)}


def setup(
    queue: QueueModel | None = None, rules: str = "generic", **inst_kw: object
) -> tuple[MatchingEngine, Account, OrderBook]:
    kw: dict[str, object] = {"maker_fee": D("0.0002"), "taker_fee": D("0.001")}
    kw.update(inst_kw)
    inst = builders.instrument("v", **kw)
    book = OrderBook("v", inst.symbol, inst.tick)
    # our price level 100.0 shows 5 on the bid; asks from 100.5
    book.apply(
        [100.0, 99.9],
        [5.0, 7.0],
        [100.5, 100.6],
        [2.0, 9.0],
        ts_exchange=TS,
        ts_local=TS,
        snapshot=True,
    )
    acct = Account("v", {"USDT": D("10000"), "BTC": D("10")})
    r = RULES[rules]
    eng = MatchingEngine(
        inst,
        book,
        acct,
        codes=r.codes,
        post_only_cross=r.post_only_cross,
        fee_currency=r.fee_currency,
        market_buy_in_quote=r.market_buy_in_quote,
        queue=queue,
    )
    return eng, acct, book


_n = iter(range(1, 10_000))


def order(
    side: Side,
    qty: str,
    price: str | None,
    tif: TimeInForce = TimeInForce.GTC,
    quote: str | None = None,
) -> Order:
    return Order(
        venue="v",
        symbol="BTC/USDT",
        side=side,
        qty=D(qty),
        price=None if price is None else D(price),
        order_type=OrderType.LIMIT if price is not None else OrderType.MARKET,
        tif=tif,
        client_order_id=f"q{next(_n)}",
        quote_order_qty=None if quote is None else D(quote),
    )


def filled(evs: list[ExecEvent]) -> D:
    return sum((e.fill.qty for e in evs if e.fill is not None), D(0))


# ----------------------------------------------------------------------------- queue
def test_trades_eat_the_queue_ahead_before_we_fill() -> None:
    eng, _, _ = setup()
    o = order(Side.BUY, "2", "100.0")
    eng.submit(o, TS)
    assert eng.queue_ahead(o.client_order_id) == D("5")  # displayed at our price
    # sells of 3 at our price: all eaten by the 5 ahead of us
    assert eng.on_trade(-1, 1000, 3.0, TS + 1) == []
    assert eng.queue_ahead(o.client_order_id) == D("2")
    # a further 3: 2 finish the queue, 1 fills us (maker, at our price)
    evs = eng.on_trade(-1, 1000, 3.0, TS + 2)
    assert filled(evs) == D("1") and evs[0].fill is not None
    assert evs[0].fill.liquidity == "maker" and evs[0].fill.price == D("100.0")
    assert o.status is OrderStatus.PARTIALLY_FILLED
    # buys (same side as us) and sells below... a buy aggressor never fills a resting buy
    assert eng.on_trade(1, 1000, 5.0, TS + 3) == []


def test_the_book_shrinking_after_trades_is_not_counted_twice() -> None:
    eng, _, book = setup(QueueModel("prob_power", power=1.0))
    o = order(Side.BUY, "1", "100.0")
    eng.submit(o, TS)
    eng.on_trade(-1, 1000, 3.0, TS + 1)  # queue 5 -> 2
    # the venue then shows the level at 2: exactly the traded 3 gone, nothing cancelled
    book.apply([100.0], [2.0], [], [], ts_exchange=TS + 2, ts_local=TS + 2)
    eng.on_book(TS + 2)
    assert eng.queue_ahead(o.client_order_id) == D("2")


@pytest.mark.parametrize(
    ("model", "cancelled", "expected"),
    [
        # front 5, back 10 (someone joined behind us), 4 cancelled
        (QueueModel("risk_averse"), "4", D("5")),
        # share ahead = 5^2 / (5^2 + 10^2) = 0.2 -> 0.2 * 4 = 0.8 ahead of us: 5 - 0.8
        (QueueModel("prob_power", power=2.0), "4", D("4.2")),
        # share ahead = 5 / (5 + 10) = 1/3 of 1 cancelled = 0.3333..., floored to the lot
        # (0.001): 0.333 ahead of us, 5 - 0.333
        (QueueModel("prob_power", power=1.0), "1", D("4.667")),
        # share ahead = ln 6 / (ln 6 + ln 11) = 0.427717..., of 4: 1.710869... -> 1.710
        (QueueModel("prob_log"), "4", D("3.290")),
    ],
)
def test_cancels_advance_the_queue_per_model(
    model: QueueModel, cancelled: str, expected: D
) -> None:
    eng, _, book = setup(model)
    o = order(Side.BUY, "1", "100.0")
    eng.submit(o, TS)
    book.apply([100.0], [15.0], [], [], ts_exchange=TS + 1, ts_local=TS + 1)  # 10 join behind
    eng.on_book(TS + 1)
    assert eng.queue_ahead(o.client_order_id) == D("5")
    left = 15.0 - float(cancelled)
    book.apply([100.0], [left], [], [], ts_exchange=TS + 2, ts_local=TS + 2)
    eng.on_book(TS + 2)
    assert eng.queue_ahead(o.client_order_id) == expected


def test_queue_share_is_snapped_to_whole_lots() -> None:
    # prob_log in quantities, not lots: front 5 (5000 lots of 0.001), back 10, 4 cancelled
    share = math.log(6) / (math.log(6) + math.log(11))
    assert math.floor(share * 4000) == 1710
    m = QueueModel("prob_log")
    assert m.advance(5000, 10_000, 4000, 0.001) == 5000 - 1710
    # prob_power(1): 1/3 of 3000 lots is 1000.0000000000001 or 999.9999999999999 in float:
    # float noise snaps to the nearest lot, a real fraction is floored
    p = QueueModel("prob_power", power=1.0)
    assert p.advance(5000, 10_000, 3000, 0.001) == 4000
    assert p.advance(5000, 10_000, 1000, 0.001) == 5000 - 333
    # never more than the decrease, never below 0
    assert p.advance(5000, 0, 7000, 0.001) == 0


def test_stochastic_queue_model_is_seeded() -> None:
    def run(seed: int) -> list[int]:
        m = QueueModel("prob_power", power=1.0, stochastic=True, seed=seed)
        return [m.advance(5000, 5000, 1000, 0.001) for _ in range(40)]

    a, b = run(1), run(1)
    assert a == b and set(a) == {4000, 5000}  # all of a cancel ahead, or none of it
    assert run(2) != a


def test_price_improvement_is_first_in_its_level() -> None:
    eng, _, _ = setup()
    o = order(Side.BUY, "1", "100.1")  # better than the 100.0 best bid: a new level
    eng.submit(o, TS)
    assert eng.queue_ahead(o.client_order_id) == 0
    assert filled(eng.on_trade(-1, 1001, 0.4, TS + 1)) == D("0.4")


def test_trade_through_our_price_fills_whatever_the_queue() -> None:
    eng, _, _ = setup()
    o = order(Side.BUY, "1", "100.0")
    eng.submit(o, TS)
    # a sell printed at 99.9: every bid at 100.0 was taken, us included
    assert filled(eng.on_trade(-1, 999, 0.7, TS + 1)) == D("0.7")


def test_an_ask_at_our_price_meets_the_queue_first() -> None:
    eng, _, book = setup()
    o = order(Side.BUY, "2", "100.0")
    eng.submit(o, TS)  # 5 ahead
    book.apply([], [], [100.0], [6.0], ts_exchange=TS + 1, ts_local=TS + 1)
    evs = eng.on_book(TS + 1)
    assert filled(evs) == D("1")  # 6 offered at our price: 5 to the queue, 1 to us
    assert eng.queue_ahead(o.client_order_id) == 0


# ----------------------------------------------------------------------------- venue rules
def test_post_only_cross_rejected_with_each_venues_code_or_cancelled() -> None:
    for rules, code in (("mexc", "-2010"), ("gateio", "POC_FILL_IMMEDIATELY")):
        eng, _, _ = setup(rules=rules)
        o = order(Side.BUY, "1", "100.5", TimeInForce.POST_ONLY)
        evs = eng.submit(o, TS)
        assert [e.kind for e in evs] == ["rejected"] and evs[0].code == code
        assert isinstance(eng.error("post_only_would_take", "x"), PostOnlyWouldTake)
    # the engine can also accept-then-cancel (finish_as=poc style)
    eng, acct, _ = setup()
    eng.post_only_cross = "cancel"
    o = order(Side.BUY, "1", "100.5", TimeInForce.POST_ONLY)
    evs = eng.submit(o, TS)
    assert [(e.kind, e.message) for e in evs] == [("accepted", ""), ("canceled", "poc")]
    assert o.status is OrderStatus.CANCELED and acct.locked.get("USDT", D(0)) == 0


def test_mexc_and_gate_charge_fees_in_the_asset_received() -> None:
    eng, acct, _ = setup(rules="mexc")
    buy = order(Side.BUY, "1", "100.5", TimeInForce.IOC)
    [f] = [e.fill for e in eng.submit(buy, TS) if e.fill is not None]
    # taker 10 bps of 1 BTC, in BTC
    assert (f.fee, f.fee_asset) == (D("0.001"), "BTC")
    assert acct.free["BTC"] == D("10") + D("1") - D("0.001")
    assert acct.free["USDT"] == D("10000") - D("100.5")
    sell = order(Side.SELL, "1", "100.0", TimeInForce.IOC)
    [f] = [e.fill for e in eng.submit(sell, TS) if e.fill is not None]
    assert (f.fee, f.fee_asset) == (D("0.1000"), "USDT")  # 100.0 * 1 * 0.001


def test_negative_maker_fee_is_a_rebate() -> None:
    eng, acct, _ = setup(maker_fee=D("-0.0001"))
    o = order(Side.SELL, "1", "100.5")  # joins the 2.0 already at 100.5 on the ask
    eng.submit(o, TS)
    evs = eng.on_trade(1, 1005, 3.0, TS + 1)
    [f] = [e.fill for e in evs if e.fill is not None]
    assert f.fee == D("-0.01005") and f.liquidity == "maker"
    # base locked then spent; quote receives 100.5 plus the 0.01005 rebate
    assert acct.free["USDT"] == D("10000") + D("100.5") + D("0.01005")
    assert acct.free["BTC"] + acct.locked["BTC"] == D("9")


def test_gate_market_buy_is_sized_in_quote() -> None:
    eng, acct, _ = setup(rules="gateio")
    no_quote = order(Side.BUY, "1", None, TimeInForce.IOC)
    evs = eng.submit(no_quote, TS)
    assert evs[0].kind == "rejected" and evs[0].code == "INVALID_PRECISION"
    # 301 USDT: 2.0 @ 100.5 = 201, then 100 / 100.6 = 0.994... -> 0.994 (lot 0.001)
    mkt = order(Side.BUY, "0", None, TimeInForce.IOC, quote="301")
    evs = eng.submit(mkt, TS)
    assert [(e.fill.price, e.fill.qty) for e in evs if e.fill is not None] == [
        (D("100.5"), D("2.000")),
        (D("100.6"), D("0.994")),
    ]
    assert mkt.qty == D("2.994") and mkt.status is OrderStatus.FILLED
    assert evs[0].qty == D("2.994")  # the venue tells the client the size it bought
    assert acct.free["USDT"] == D("10000") - D("201") - D("0.994") * D("100.6")


def test_request_rate_limits_per_venue() -> None:
    mexc = RequestLimiter(RULES["mexc"].rate_limits)
    # order + cancel share 12 per second
    results = [
        mexc.hit("place" if i % 2 else "cancel", TS + i, market="BTC/USDT") for i in range(13)
    ]
    assert results[:12] == [None] * 12 and results[12] is not None
    assert results[12].limit.name == "order" and results[12].retry_ns == SEC - 12
    assert mexc.hit("place", TS + SEC + 1, market="BTC/USDT") is None  # the window moved on
    gate = RequestLimiter(RULES["gateio"].rate_limits)
    places = [gate.hit("place", TS + i, market="BTC/USDT") for i in range(11)]
    assert places[10] is not None and places[10].limit.name == "place"
    assert gate.hit("place", TS + 11, market="ETH/USDT") is None  # per market
    assert gate.hit("cancel", TS + 12, market="BTC/USDT") is None  # cancels counted apart
    assert RULES["mexc"].codes["rate_limited"] == ("429", RateLimited)
    assert RULES["gateio"].codes["insufficient_balance"][0] == "BALANCE_NOT_ENOUGH"
    assert RULES["mexc"].codes["insufficient_balance"][0] == "10101"


def test_max_open_orders() -> None:
    eng, _, _ = setup()
    eng.max_open_orders = 2
    for _ in range(2):
        assert eng.submit(order(Side.BUY, "0.1", "99.0"), TS)[0].kind == "accepted"
    evs = eng.submit(order(Side.BUY, "0.1", "99.0"), TS)
    assert evs[0].kind == "rejected" and evs[0].code == "MAX_OPEN_ORDERS"
    # an IOC does not rest, so it is not limited
    assert eng.submit(order(Side.BUY, "0.1", "99.0", TimeInForce.IOC), TS)[0].kind == "accepted"


# ----------------------------------------------------------------------------- end to end
class Burst(Strategy):
    """A strategy sending 15 IOC buys at once on venue ``mexc``: the 13th and later
    break MEXC's 12 requests/s."""

    name = "burst"

    def __init__(self, params: object = None) -> None:
        self.errors: list[str] = []

    async def on_start(self, ctx: Context) -> None:
        async def one() -> None:
            req = OrderRequest(
                venue="mexc",
                symbol="BTC/USDT",
                side=Side.BUY,
                qty=D("0.01"),
                price=D("100.0"),
                tif=TimeInForce.IOC,
            )
            try:
                await ctx.place_order(req)
            except VenueError as e:
                self.errors.append(str(e.code))

        await asyncio.gather(*(one() for _ in range(15)))


def test_rate_limit_rejections_carry_mexc_codes_in_the_summary(tmp_path: Path) -> None:
    from arbsim.app.backtest import run_backtest
    from arbsim.app.config import parse_config

    v = builders.VenueData(builders.instrument("mexc"))
    v.message(TS, TS, bids=[(99.9, 5.0)], asks=[(100.0, 50.0)], snapshot=True)
    v.message(TS + 10**9, TS + 10**9, bids=[(99.9, 6.0)])
    builders.write_catalog(tmp_path / "cat", [v])
    cfg = parse_config(b"""
venues:
  - name: mexc
    balances: {USDT: "100000", BTC: "0"}
    fees: {tier: vip1, tiers: {vip0: {maker_fee: "0.002", taker_fee: "0.002"},
                               vip1: {maker_fee: "0", taker_fee: "0.0004"}}}
risk: {max_orders_per_s: 100, max_open_orders: 100}
""")
    s = Burst()
    out = run_backtest(cfg, catalog_path=tmp_path / "cat", out_dir=tmp_path / "r", strategy=s)
    assert sorted(s.errors) == ["429"] * 3
    assert out.summary["rejections"] == {"mexc:429": 3}
    assert out.summary["venues"]["mexc"]["rules"] == "mexc"
    import pyarrow.parquet as pq

    fills = pq.read_table(tmp_path / "r" / "fills.parquet").to_pandas()
    assert len(fills) == 12
    # vip1 taker 4 bps, charged in BTC on a buy (MEXC): 0.01 * 0.0004
    assert set(fills.fee) == {"0.000004"} and set(fills.fee_asset) == {"BTC"}
    assert out.summary["reconciled_exactly"] is True


def test_temporary_impact_moves_our_side_away_until_it_decays() -> None:
    eng, _, _ = setup()
    eng.impact_bps_per_depth = 100.0  # taking all the top depth moves the side 100 bps
    eng.impact_decay_ns = 50_000_000
    eng.consume_liquidity = False  # isolate the impact from liquidity consumption
    # asks 100.5 x 2 and 100.6 x 9 (top depth 11): taking 5.5 is half of it -> 50 bps of
    # 100.5 = 0.5025 -> the asks below 100.5 + 0.6 (ceil to ticks) are out of reach
    first = order(Side.BUY, "5.5", "101.0", TimeInForce.IOC)
    assert filled(eng.submit(first, TS)) == D("5.5")
    again = order(Side.BUY, "1", "101.0", TimeInForce.IOC)
    assert filled(eng.submit(again, TS + 1_000_000)) == D("0")  # 100.5 and 100.6 < 101.1
    later = order(Side.BUY, "1", "101.0", TimeInForce.IOC)
    assert filled(eng.submit(later, TS + 60_000_000)) == D("1")  # decayed after 50 ms
    off, _, _ = setup()
    off.consume_liquidity = False
    off.submit(order(Side.BUY, "5.5", "101.0", TimeInForce.IOC), TS)
    assert filled(off.submit(order(Side.BUY, "1", "101.0", TimeInForce.IOC), TS + 1)) == D("1")
