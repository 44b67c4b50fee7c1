"""Cross-exchange arbitrage: find_opportunity on hand-built books, and ArbExecutor end to
end through run_backtest with tiny hand-written catalogs. Numbers computed by hand."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path
from typing import Any

import builders
import pytest
from builders import MS, T0

from arbsim.app.backtest import run_backtest
from arbsim.app.config import parse_config
from arbsim.core.book import OrderBook
from arbsim.core.model import Instrument, Side
from arbsim.runtime.arbitrage import ArbParams, find_opportunity
from arbsim.runtime.context import Context
from arbsim.runtime.recorder import ArbRecord
from strategies.cross_exchange import CrossExchangeArb

Levels = list[tuple[float, float]]


def book(inst: Instrument, bids: Levels, asks: Levels) -> OrderBook:
    b = OrderBook(inst.venue, inst.symbol, inst.tick)
    b.apply(
        [p for p, _ in bids],
        [s for _, s in bids],
        [p for p, _ in asks],
        [s for _, s in asks],
        ts_exchange=T0,
        ts_local=T0,
        snapshot=True,
    )
    return b


A = builders.instrument("mexc")  # taker 10 bps, lot 0.001, tick 0.1, min notional 1
B = builders.instrument("gateio")
P = ArbParams(min_edge_bps=5.0, max_qty=D("0.5"))


# ----------------------------------------------------------------------------- detection
def test_no_opportunity_when_spread_inside_fees() -> None:
    # ask 100.0 / bid 100.2: 100.2 * 0.999 = 100.0998 < 100.0 * 1.001 * 1.0005 = 100.15005
    a = book(A, [(99.9, 1.0)], [(100.0, 1.0)])
    b = book(B, [(100.2, 1.0)], [(100.4, 1.0)])
    assert find_opportunity(a, b, A, B, P, T0) is None
    assert find_opportunity(b, a, B, A, P, T0) is None
    # with zero fees and zero edge the same books do trade: the fees are what blocks it
    free = {"taker_fee": D(0)}
    a0, b0 = builders.instrument("mexc", **free), builders.instrument("gateio", **free)
    assert find_opportunity(a, b, a0, b0, ArbParams(min_edge_bps=0.0), T0) is not None


def test_direction_buy_cheap_sell_dear() -> None:
    a = book(A, [(99.8, 1.0)], [(100.0, 1.0)])
    b = book(B, [(101.0, 1.0)], [(101.2, 1.0)])
    opp = find_opportunity(a, b, A, B, P, T0 + 7)
    assert opp is not None
    assert (opp.buy_venue, opp.sell_venue) == ("mexc", "gateio")
    assert (opp.buy_limit, opp.sell_limit, opp.qty) == (D("100.0"), D("101.0"), D("0.5"))
    assert opp.ts_trigger == T0 + 7
    # 0.5 * (101 * 0.999 - 100 * 1.001) = 0.5 * 0.799 = 0.3995
    assert opp.exp_pnl == pytest.approx(0.3995, abs=1e-9)
    # the other way round: buy at 101.2, sell at 99.8 -> nothing
    assert find_opportunity(b, a, B, A, P, T0) is None


ASKS = [(100.0, 0.1), (100.2, 0.2), (100.5, 0.3)]
BIDS = [(101.0, 0.15), (100.9, 0.2), (100.6, 0.5)]


def test_depth_aware_size_stops_at_marginal_level() -> None:
    # the marginal unit must satisfy  pb * 0.999 >= pa * 1.001 * (1 + edge)
    # 5 bps (x 1.0015005): pa 100.0 needs pb >= 100.2503, 100.2 -> 100.4508, 100.5 -> 100.7516
    #   100.0/101.0 take 0.1 ; 100.2/101.0 take 0.05 ; 100.2/100.9 take 0.15 ;
    #   100.5/100.9 take 0.05 ; 100.5/100.6 fails -> qty 0.35
    a = book(A, [(99.0, 1.0)], ASKS)
    b = book(B, BIDS, [(102.0, 1.0)])
    opp = find_opportunity(a, b, A, B, P, T0)
    assert opp is not None
    assert (opp.qty, opp.buy_limit, opp.sell_limit) == (D("0.350"), D("100.5"), D("100.9"))
    # cost 0.1*100 + 0.2*100.2 + 0.05*100.5 = 35.065 ; proceeds 0.15*101 + 0.2*100.9 = 35.33
    assert opp.exp_buy_avg == pytest.approx(35.065 / 0.35)
    assert opp.exp_sell_avg == pytest.approx(35.33 / 0.35)
    assert opp.exp_pnl == pytest.approx(35.33 * 0.999 - 35.065 * 1.001)
    # 20 bps (x 1.003002): 100.5 needs pb >= 100.9026 so 100.5/100.9 is now excluded
    opp20 = find_opportunity(a, b, A, B, ArbParams(min_edge_bps=20.0, max_qty=D("0.5")), T0)
    assert opp20 is not None
    assert (opp20.qty, opp20.buy_limit, opp20.sell_limit) == (D("0.3"), D("100.2"), D("100.9"))
    # max_qty caps the walk: 0.12 = 0.1 @ 100.0 + 0.02 @ 100.2, all against 101.0
    small = find_opportunity(a, b, A, B, ArbParams(min_edge_bps=5.0, max_qty=D("0.12")), T0)
    assert small is not None
    assert (small.qty, small.buy_limit, small.sell_limit) == (D("0.12"), D("100.2"), D("101.0"))


def test_slippage_cap() -> None:
    # expected buy avg 100.1857 vs touch 100.0: 18.57 bps > 10
    a = book(A, [(99.0, 1.0)], ASKS)
    b = book(B, BIDS, [(102.0, 1.0)])
    assert find_opportunity(a, b, A, B, ArbParams(max_slippage_bps=10.0), T0) is None
    assert find_opportunity(a, b, A, B, ArbParams(max_slippage_bps=19.0), T0) is not None


@pytest.mark.parametrize(("lot_a", "lot_b"), [("0.001", "0.01"), ("0.01", "0.001")])
def test_qty_snapped_to_both_lots(lot_a: str, lot_b: str) -> None:
    ia = builders.instrument("mexc", lot=D(lot_a))
    ib = builders.instrument("gateio", lot=D(lot_b))
    # only 0.347 clears the edge (the next ask 103.0 does not) -> 0.34 on the 0.01 grid
    a = book(ia, [(99.0, 1.0)], [(100.0, 0.347), (103.0, 5.0)])
    b = book(ib, [(101.0, 5.0)], [(102.0, 1.0)])
    opp = find_opportunity(a, b, ia, ib, P, T0)
    assert opp is not None
    assert opp.qty == D("0.34")
    assert ia.on_lot(opp.qty) and ib.on_lot(opp.qty)


@pytest.mark.parametrize(
    ("buy_kw", "sell_kw", "found"),
    [
        # notional of 0.347: 0.347 * 100.0 = 34.7 (buy side), 0.347 * 101.0 = 35.047 (sell)
        ({"min_notional": D("34.7")}, {"min_notional": D("35.047")}, True),  # inclusive
        ({"min_notional": D("34.8")}, {}, False),
        ({}, {"min_notional": D("35.1")}, False),
        ({"min_qty": D("0.347")}, {"min_qty": D("0.347")}, True),
        ({}, {"min_qty": D("0.348")}, False),
        ({"min_qty": D("0.35")}, {}, False),
    ],
)
def test_min_notional_and_min_qty_respected(
    buy_kw: dict[str, D], sell_kw: dict[str, D], found: bool
) -> None:
    ia = builders.instrument("mexc", **buy_kw)
    ib = builders.instrument("gateio", **sell_kw)
    a = book(ia, [(99.0, 1.0)], [(100.0, 0.347), (103.0, 5.0)])
    b = book(ib, [(101.0, 5.0)], [(102.0, 1.0)])
    opp = find_opportunity(a, b, ia, ib, P, T0)
    assert (opp is not None) == found
    if opp is not None:
        assert opp.qty == D("0.347")


def test_qty_not_lost_to_float_accumulation() -> None:
    a = book(A, [(99.0, 1.0)], [(100.0, 0.7), (100.1, 0.1), (105.0, 1.0)])
    b = book(B, [(101.0, 2.0)], [(102.0, 1.0)])
    opp = find_opportunity(a, b, A, B, ArbParams(max_qty=D("1.0")), T0)
    assert opp is not None
    assert opp.qty == D("0.8")


def test_qty_on_both_lots_when_lots_not_nested() -> None:
    ia = builders.instrument("mexc", lot=D("0.003"), min_qty=D("0.003"))
    ib = builders.instrument("gateio", lot=D("0.002"), min_qty=D("0.002"))
    a = book(ia, [(99.0, 1.0)], [(100.0, 0.1), (105.0, 1.0)])
    b = book(ib, [(101.0, 1.0)], [(102.0, 1.0)])
    opp = find_opportunity(a, b, ia, ib, ArbParams(min_edge_bps=5.0), T0)
    assert opp is not None
    # largest multiple of lcm(0.003, 0.002) = 0.006 not above 0.1 is 0.096
    assert ia.on_lot(opp.qty) and ib.on_lot(opp.qty)
    assert opp.qty == D("0.096")


# ----------------------------------------------------------------------------- execution
class ArbProbe(CrossExchangeArb):
    ctx: Context | None = None

    async def on_start(self, ctx: Context) -> None:
        self.ctx = ctx
        await super().on_start(ctx)


CONFIG = """
venues:
  - name: mexc
    rules: generic
    balances: {{USDT: "10000", BTC: "0.2"}}
    latency: {{entry_ms: 10.0, response_ms: 10.0}}
  - name: gateio
    rules: generic
    balances: {{USDT: "10000", BTC: "1"}}
    latency: {{entry_ms: 10.0, response_ms: 10.0}}
strategy:
  name: cross_exchange
  params: {{symbol: BTC/USDT, venues: [mexc, gateio], min_edge_bps: 5.0, max_qty: "0.5",
           leg_timeout_s: 2.0, hedge_slippage_bps: 30.0, max_hedge_attempts: 2,
           cooldown_s: 0.25}}
risk: {{max_one_sided: "{one_sided}"}}
run: {{drain_s: 1.0, equity_interval_s: 1.0}}
"""


def scenario() -> tuple[builders.VenueData, builders.VenueData]:
    """mexc ask 100.0, gateio bid 99.5; at T0+100 (local) gateio bids 101.0: buy mexc,
    sell gateio 0.5. Timeline: decision T0+100, balances back T0+120, legs reach the
    exchanges at T0+130, answers T0+140; a hedge/unwind placed at T0+140 arrives T0+150."""
    m = builders.VenueData(builders.instrument("mexc"))
    g = builders.VenueData(builders.instrument("gateio"))
    m.message(T0, T0, bids=[(99.0, 1.0)], asks=[(100.0, 1.0)], snapshot=True)
    g.message(T0, T0, bids=[(99.5, 1.0)], asks=[(100.5, 1.0)], snapshot=True)
    g.message(T0 + 95 * MS, T0 + 100 * MS, bids=[(101.0, 1.0)])
    return m, g


def run(
    tmp_path: Path, venues: tuple[builders.VenueData, ...], one_sided: str = "0.5"
) -> tuple[dict[str, Any], list[ArbRecord], Context]:
    cat = tmp_path / "cat"
    builders.write_catalog(cat, venues)
    cfg = parse_config(CONFIG.format(one_sided=one_sided).encode())
    probe = ArbProbe(ArbParams(venues=["mexc", "gateio"], max_qty=D("0.5")))
    res = run_backtest(cfg, catalog_path=cat, out_dir=tmp_path / "run", strategy=probe)
    assert probe.ctx is not None
    return res.summary, list(probe.ctx.recorder.arbs), probe.ctx


def balances(ctx: Context) -> dict[str, dict[str, D]]:
    return {v: {a: q for a, q in bal.items() if q or a in ("USDT", "BTC")}
            for v, bal in ctx.ledger.balances.items()}  # fmt: skip


def fills_of(ctx: Context, rec: ArbRecord) -> list[tuple[str, Side, D, D, D]]:
    out = []
    for cid in rec.orders:
        o = ctx.recorder.order(cid)
        assert o is not None
        out += [(f.venue, f.side, f.price, f.qty, f.fee) for f in o.fills]
    return out


def test_completed_arb_pnl_and_exact_ledger(tmp_path: Path) -> None:
    summary, arbs, ctx = run(tmp_path, scenario())
    assert len(arbs) == 1
    rec = arbs[0]
    assert rec.outcome == "completed", rec.reason
    assert (rec.buy_venue, rec.sell_venue) == ("mexc", "gateio")
    assert (rec.ts_trigger, rec.ts_decision, rec.ts_done) == (
        T0 + 100 * MS,
        T0 + 100 * MS,
        T0 + 140 * MS,
    )
    assert D(rec.qty_target) == D(rec.buy_filled) == D(rec.sell_filled) == D("0.5")
    assert fills_of(ctx, rec) == [
        ("mexc", Side.BUY, D("100.0"), D("0.5"), D("0.05")),
        ("gateio", Side.SELL, D("101.0"), D("0.5"), D("0.0505")),
    ]
    # 50.5 - 50.0 - (0.05 + 0.0505) = 0.3995
    assert rec.realized_pnl == pytest.approx(0.3995, abs=1e-9)
    assert rec.fees == pytest.approx(0.1005, abs=1e-12)
    assert summary["pnl"]["net"] == pytest.approx(0.3995, abs=1e-6)
    assert balances(ctx) == {
        "mexc": {"USDT": D("9949.95"), "BTC": D("0.7")},
        "gateio": {"USDT": D("10050.4495"), "BTC": D("0.5")},
    }
    assert summary["reconciled_exactly"] is True
    assert summary["arbs"] == {"attempted": 1, "decisions": 1, "completed": 1}
    assert summary["risk"]["circuit_breaker"] is None


def test_sell_leg_misses_then_bought_qty_is_hedged(tmp_path: Path) -> None:
    m, g = scenario()
    # exchange time T0+125 (before the sell leg arrives at T0+130): the 101.0 bid leaves;
    # the IOC sell at 101.0 expires unfilled. Hedge at T0+140 from the local best bid
    # 99.5: limit floor(99.5 * 0.997 = 99.2015) = 99.2, fills 0.5 @ 99.5 at T0+150
    g.message(T0 + 125 * MS, T0 + 128 * MS, bids=[(101.0, 0.0)])
    summary, arbs, ctx = run(tmp_path, (m, g))
    rec = arbs[0]
    assert (rec.outcome, rec.reason) == ("hedged", "one leg short")
    assert (D(rec.buy_filled), D(rec.sell_filled)) == (D("0.5"), D(0))
    assert (D(rec.hedge_qty), D(rec.unwind_qty), D(rec.residual_qty)) == (D("0.5"), D(0), D(0))
    assert fills_of(ctx, rec) == [
        ("mexc", Side.BUY, D("100.0"), D("0.5"), D("0.05")),
        ("gateio", Side.SELL, D("99.5"), D("0.5"), D("0.04975")),
    ]
    assert rec.ts_done == T0 + 160 * MS
    # 49.75 - 50.0 - (0.05 + 0.04975) = -0.34975
    assert rec.realized_pnl == pytest.approx(-0.34975, abs=1e-9)
    assert ctx.ledger.position("BTC") == 0
    assert balances(ctx) == {
        "mexc": {"USDT": D("9949.95"), "BTC": D("0.7")},
        "gateio": {"USDT": D("10049.70025"), "BTC": D("0.5")},
    }
    assert summary["reconciled_exactly"] is True
    assert summary["risk"]["circuit_breaker"] is None


def test_hedge_impossible_so_position_is_unwound(tmp_path: Path) -> None:
    m, g = scenario()
    # gateio loses every bid: no hedge is possible (no touch), the 0.5 bought on mexc is
    # sold back there: limit floor(99.0 * 0.997 = 98.703) = 98.7, fills 0.5 @ 99.0
    g.message(T0 + 125 * MS, T0 + 128 * MS, bids=[(101.0, 0.0), (99.5, 0.0)])
    summary, arbs, ctx = run(tmp_path, (m, g))
    rec = arbs[0]
    assert (rec.outcome, rec.reason) == ("unwound", "one leg short")
    assert (D(rec.hedge_qty), D(rec.unwind_qty), D(rec.residual_qty)) == (D(0), D("0.5"), D(0))
    assert fills_of(ctx, rec) == [
        ("mexc", Side.BUY, D("100.0"), D("0.5"), D("0.05")),
        ("mexc", Side.SELL, D("99.0"), D("0.5"), D("0.0495")),
    ]
    # 49.5 - 50.0 - 0.0995 = -0.5995
    assert rec.realized_pnl == pytest.approx(-0.5995, abs=1e-9)
    assert balances(ctx) == {
        "mexc": {"USDT": D("9999.4005"), "BTC": D("0.2")},
        "gateio": {"USDT": D("10000"), "BTC": D("1")},
    }
    assert summary["reconciled_exactly"] is True


@pytest.mark.parametrize(("one_sided", "tripped"), [("0.1", True), ("0.5", False)])
def test_residual_beyond_max_one_sided_trips_breaker(
    tmp_path: Path, one_sided: str, tripped: bool
) -> None:
    m, g = scenario()
    g.message(T0 + 125 * MS, T0 + 128 * MS, bids=[(101.0, 0.0), (99.5, 0.0)])
    # mexc's bid leaves at exchange time T0+145, before the unwind arrives (T0+150):
    # the unwind expires; the second round finds no bid anywhere locally (T0+155)
    m.message(T0 + 145 * MS, T0 + 155 * MS, bids=[(99.0, 0.0)])
    # a fresh opportunity later (after the cool-down): only traded if not tripped
    g.message(T0 + 600 * MS, T0 + 605 * MS, bids=[(102.0, 1.0)])
    summary, arbs, ctx = run(tmp_path, (m, g), one_sided)
    rec = arbs[0]
    assert (rec.outcome, rec.reason) == ("exposed", "residual 0.500")
    assert (D(rec.hedge_qty), D(rec.unwind_qty), D(rec.residual_qty)) == (D(0), D(0), D("0.5"))
    # buy leg + one unwind order (expired); no order where there was no touch
    assert len(rec.orders) == 3
    assert [f[:4] for f in fills_of(ctx, rec)] == [("mexc", Side.BUY, D("100.0"), D("0.5"))]
    # residual 0.5 valued at the decision mark (100 + 101) / 2: -50.05 + 50.25 = 0.2
    assert rec.realized_pnl == pytest.approx(0.2, abs=1e-9)
    assert summary["reconciled_exactly"] is True
    breaker = summary["risk"]["circuit_breaker"]
    if tripped:
        assert breaker is not None and breaker.startswith("one-sided exposure 0.500")
        assert len(arbs) == 1  # nothing new once tripped
    else:
        assert breaker is None  # 0.5 is not beyond 0.5
        assert len(arbs) == 2


def test_stale_book_is_denied_before_any_order(tmp_path: Path) -> None:
    m = builders.VenueData(builders.instrument("mexc"))
    g = builders.VenueData(builders.instrument("gateio"))
    m.message(T0, T0, bids=[(99.0, 1.0)], asks=[(100.0, 1.0)], snapshot=True)
    g.message(T0, T0, bids=[(99.5, 1.0)], asks=[(100.5, 1.0)], snapshot=True)
    # the opportunity appears 6 s later; mexc's book is then 6.02 s old at the decision
    g.message(T0 + 6000 * MS, T0 + 6000 * MS, bids=[(101.0, 1.0)])
    summary, arbs, ctx = run(tmp_path, (m, g))
    assert [(a.outcome, a.reason) for a in arbs] == [("denied", "stale_data")]
    assert arbs[0].orders == []
    assert summary["risk"]["denials"] == {"stale_data": 1}
    assert summary["orders"] == 0
    assert ctx.ledger.position("BTC") == 0
