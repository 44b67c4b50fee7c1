"""The shared matching engine, driven directly on an exchange-side OrderBook + Account.

Every expected number is computed by hand in the comments (exact Decimals).
Instrument: tick 0.1, lot 0.001, min qty 0.001, min notional 1, maker 2 bps, taker 10 bps.
"""

from __future__ import annotations

import itertools
from decimal import Decimal as D

import builders
import pytest

from arbsim.core.book import OrderBook
from arbsim.core.errors import IllegalTransition, OrderNotFound
from arbsim.core.model import (
    Fill,
    Instrument,
    Order,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from exchanges.simulated.matching import Account, ExecEvent, MatchingEngine

TS = builders.T0
_cids = itertools.count(1)

# asks 100.0 x 0.2, 100.1 x 0.3, 100.2 x 0.5 (1.0 displayed); bids 99.9 x 0.4, 99.8 x 1.0
ASKS = [(100.0, 0.2), (100.1, 0.3), (100.2, 0.5)]
BIDS = [(99.9, 0.4), (99.8, 1.0)]


def make(
    balances: dict[str, str] | None = None, inst_kw: dict[str, object] | None = None
) -> tuple[MatchingEngine, Account, OrderBook]:
    kw: dict[str, object] = {"maker_fee": D("0.0002"), "taker_fee": D("0.001")}
    kw.update(inst_kw or {})
    inst: Instrument = builders.instrument("mexc", **kw)
    book = OrderBook("mexc", inst.symbol, inst.tick)
    book.apply(
        [p for p, _ in BIDS],
        [s for _, s in BIDS],
        [p for p, _ in ASKS],
        [s for _, s in ASKS],
        ts_exchange=TS,
        ts_local=TS,
        snapshot=True,
    )
    bal = balances if balances is not None else {"USDT": "1000", "BTC": "1"}
    acct = Account("mexc", {k: D(v) for k, v in bal.items()})
    return MatchingEngine(inst, book, acct), acct, book


def order(
    side: Side,
    qty: str,
    price: str | None,
    tif: TimeInForce = TimeInForce.IOC,
    order_type: OrderType = OrderType.LIMIT,
) -> Order:
    return Order(
        venue="mexc",
        symbol="BTC/USDT",
        side=side,
        qty=D(qty),
        price=None if price is None else D(price),
        order_type=order_type,
        tif=tif,
        client_order_id=f"c{next(_cids)}",
    )


def fills(events: list[ExecEvent]) -> list[Fill]:
    return [e.fill for e in events if e.kind == "fill" and e.fill is not None]


def status(o: Order) -> OrderStatus:
    return o.status  # (a call: mypy must not narrow the status across engine calls)


def kinds(events: list[ExecEvent]) -> list[str]:
    return [e.kind for e in events]


def bal(acct: Account) -> tuple[D, D, D, D]:
    return (
        acct.free.get("USDT", D(0)),
        acct.locked.get("USDT", D(0)),
        acct.free.get("BTC", D(0)),
        acct.locked.get("BTC", D(0)),
    )


# ----------------------------------------------------------------------------- taker
def test_taker_buy_walks_three_levels_with_partial_last_level() -> None:
    eng, acct, _ = make()
    o = order(Side.BUY, "0.6", "100.2")
    evs = eng.submit(o, TS + 1)
    # 0.2 @ 100.0 = 20.00 fee 0.0200; 0.3 @ 100.1 = 30.03 fee 0.03003;
    # 0.1 @ 100.2 (partial of 0.5) = 10.02 fee 0.01002
    got = [(f.price, f.qty, f.fee, f.liquidity, f.fee_asset) for f in fills(evs)]
    assert got == [
        (D("100.0"), D("0.2"), D("0.02"), "taker", "USDT"),
        (D("100.1"), D("0.3"), D("0.03003"), "taker", "USDT"),
        (D("100.2"), D("0.1"), D("0.01002"), "taker", "USDT"),
    ]
    assert kinds(evs) == ["accepted", "fill", "fill", "fill"]
    assert o.status is OrderStatus.FILLED
    assert o.filled_qty == D("0.6")
    assert o.quote_qty == D("60.05")
    assert o.fee == D("0.06005")
    # free quote = 1000 - 60.05 - 0.06005 = 939.88995 ; base 1 + 0.6
    assert bal(acct) == (D("939.88995"), D(0), D("1.6"), D(0))
    assert all(f.ts_exchange == TS + 1 for f in fills(evs))


def test_taker_sell_walks_bids() -> None:
    eng, acct, _ = make()
    o = order(Side.SELL, "0.5", "99.8")
    evs = eng.submit(o, TS)
    # 0.4 @ 99.9 = 39.96 fee 0.03996 ; 0.1 @ 99.8 = 9.98 fee 0.00998
    assert [(f.price, f.qty, f.fee) for f in fills(evs)] == [
        (D("99.9"), D("0.4"), D("0.03996")),
        (D("99.8"), D("0.1"), D("0.00998")),
    ]
    # quote 1000 + 49.94 - 0.04994 = 1049.89006 ; base 1 - 0.5
    assert bal(acct) == (D("1049.89006"), D(0), D("0.5"), D(0))


def test_ioc_never_fills_beyond_displayed_size() -> None:
    eng, acct, book = make()
    o = order(Side.BUY, "2.0", "101.0")
    evs = eng.submit(o, TS)
    # exactly the displayed 0.2 + 0.3 + 0.5 = 1.0, then the remainder expires
    assert [f.qty for f in fills(evs)] == [D("0.2"), D("0.3"), D("0.5")]
    assert kinds(evs)[-1] == "expired"
    assert o.status is OrderStatus.EXPIRED
    assert o.filled_qty == D("1.0")
    # notional 20 + 30.03 + 50.1 = 100.13 ; fee 0.10013 ; 1000 - 100.13 - 0.10013 = 899.76987
    assert bal(acct) == (D("899.76987"), D(0), D("2.0"), D(0))
    assert eng.resting == {}
    # the book itself is not touched by our fills (the feed owns it)
    assert book.levels(Side.SELL, 10) == [(1000, 0.2), (1001, 0.3), (1002, 0.5)]


def test_limit_stops_at_limit_price() -> None:
    eng, acct, _ = make()
    o = order(Side.BUY, "1.0", "100.1")
    evs = eng.submit(o, TS)
    # 100.2 is beyond the limit: only 0.2 @ 100.0 + 0.3 @ 100.1
    assert [(f.price, f.qty) for f in fills(evs)] == [
        (D("100.0"), D("0.2")),
        (D("100.1"), D("0.3")),
    ]
    assert o.status is OrderStatus.EXPIRED
    # 1000 - 50.03 - 0.05003 = 949.91997
    assert bal(acct) == (D("949.91997"), D(0), D("1.5"), D(0))


def test_limit_not_crossing_ioc_expires_without_fill() -> None:
    eng, acct, _ = make()
    before = bal(acct)
    o = order(Side.BUY, "0.1", "99.9")
    evs = eng.submit(o, TS)
    assert kinds(evs) == ["accepted", "expired"]
    assert o.filled_qty == 0
    assert bal(acct) == before


def test_market_buy_walks_without_limit() -> None:
    eng, acct, _ = make()
    o = order(Side.BUY, "0.6", None, order_type=OrderType.MARKET)
    evs = eng.submit(o, TS)
    assert [(f.price, f.qty) for f in fills(evs)] == [
        (D("100.0"), D("0.2")),
        (D("100.1"), D("0.3")),
        (D("100.2"), D("0.1")),
    ]
    assert o.status is OrderStatus.FILLED
    assert bal(acct)[0] == D("939.88995")


def test_fok_not_fully_fillable_expires_with_no_fills() -> None:
    eng, acct, _ = make()
    before = bal(acct)
    # within the limit 100.1 only 0.5 is displayed < 0.6
    o = order(Side.BUY, "0.6", "100.1", TimeInForce.FOK)
    evs = eng.submit(o, TS)
    assert kinds(evs) == ["accepted", "expired"]
    assert fills(evs) == []
    assert o.status is OrderStatus.EXPIRED
    assert o.filled_qty == 0
    assert bal(acct) == before


def test_fok_fully_fillable_fills() -> None:
    eng, acct, _ = make()
    o = order(Side.BUY, "0.5", "100.1", TimeInForce.FOK)
    evs = eng.submit(o, TS)
    assert [f.qty for f in fills(evs)] == [D("0.2"), D("0.3")]
    assert o.status is OrderStatus.FILLED
    assert bal(acct) == (D("949.91997"), D(0), D("1.5"), D(0))


def test_post_only_crossing_is_rejected_with_code() -> None:
    eng, acct, _ = make()
    before = bal(acct)
    o = order(Side.BUY, "0.1", "100.0", TimeInForce.POST_ONLY)
    evs = eng.submit(o, TS)
    assert kinds(evs) == ["rejected"]
    assert evs[0].code == "POST_ONLY_WOULD_TAKE"
    assert o.status is OrderStatus.REJECTED
    assert o.reject_code == "POST_ONLY_WOULD_TAKE"
    assert bal(acct) == before
    # a sell post-only at the best bid also crosses
    s = order(Side.SELL, "0.1", "99.9", TimeInForce.POST_ONLY)
    assert eng.submit(s, TS)[0].code == "POST_ONLY_WOULD_TAKE"


def test_post_only_not_crossing_rests_and_locks() -> None:
    eng, acct, _ = make()
    o = order(Side.SELL, "0.3", "100.1", TimeInForce.POST_ONLY)
    evs = eng.submit(o, TS)
    assert kinds(evs) == ["accepted"]
    assert o.status is OrderStatus.ACCEPTED
    # sells lock base: free 1 - 0.3, locked 0.3
    assert bal(acct) == (D("1000"), D(0), D("0.7"), D("0.3"))


# ----------------------------------------------------------------------------- resting
def test_gtc_remainder_rests_then_book_cross_fills_as_maker() -> None:
    eng, acct, book = make()
    o = order(Side.BUY, "0.8", "100.1", TimeInForce.GTC)
    evs = eng.submit(o, TS)
    # taker: 0.2 @ 100.0 (fee 0.02) + 0.3 @ 100.1 (fee 0.03003) = 50.03 + 0.05003
    assert [(f.price, f.qty, f.liquidity) for f in fills(evs)] == [
        (D("100.0"), D("0.2"), "taker"),
        (D("100.1"), D("0.3"), "taker"),
    ]
    assert status(o) is OrderStatus.PARTIALLY_FILLED
    assert list(eng.resting) == [o.client_order_id]
    # remainder 0.3 locks 0.3 * 100.1 * (1 + 0.0002) = 30.036006
    # free = 1000 - 50.08003 - 30.036006 = 919.883964
    assert bal(acct) == (D("919.883964"), D("30.036006"), D("1.5"), D(0))

    # the feed replaces the book: the taken asks are gone, nothing crosses 100.1
    book.apply([99.9], [0.4], [100.2], [0.5], ts_exchange=TS + 1, ts_local=TS + 1, snapshot=True)
    assert eng.on_book(TS + 1) == []
    assert bal(acct)[1] == D("30.036006")

    # an ask at our price appears (0.1 displayed): maker fill of 0.1 at 100.1
    book.apply([], [], [100.1], [0.1], ts_exchange=TS + 2, ts_local=TS + 2)
    evs = eng.on_book(TS + 2)
    # fee 0.1 * 100.1 * 0.0002 = 0.002002
    assert [(f.price, f.qty, f.fee, f.liquidity) for f in fills(evs)] == [
        (D("100.1"), D("0.1"), D("0.002002"), "maker")
    ]
    assert evs[0].ts == TS + 2
    # unlock 0.1 * 100.1 * 1.0002 = 10.012002 exactly what is paid (10.01 + 0.002002)
    assert bal(acct) == (D("919.883964"), D("30.036006") - D("10.012002"), D("1.6"), D(0))

    # asks move through our price: filled at OUR price 100.1, not 100.0
    book.apply([], [], [100.0, 100.1], [1.0, 0.0], ts_exchange=TS + 3, ts_local=TS + 3)
    evs = eng.on_book(TS + 3)
    # remaining 0.2 @ 100.1 fee 0.2 * 100.1 * 0.0002 = 0.004004
    assert [(f.price, f.qty, f.fee, f.liquidity) for f in fills(evs)] == [
        (D("100.1"), D("0.2"), D("0.004004"), "maker")
    ]
    assert o.status is OrderStatus.FILLED
    assert eng.resting == {}
    # all locks released; total spent 50.08003 + 30.03 + 0.006006 = 80.116036
    assert bal(acct) == (D("919.883964"), D(0), D("1.8"), D(0))
    assert D(1000) - bal(acct)[0] == D("80.116036")


def test_sell_aggressor_trade_at_or_through_price_fills_resting_buy() -> None:
    eng, acct, _ = make()
    o = order(Side.BUY, "0.5", "99.5", TimeInForce.GTC)
    assert kinds(eng.submit(o, TS)) == ["accepted"]
    # lock 0.5 * 99.5 * 1.0002 = 49.75 * 1.0002 = 49.759950
    assert bal(acct) == (D("950.24005"), D("49.75995"), D("1"), D(0))
    # a sell aggressor above our price, and a buy aggressor at it: no fill
    assert eng.on_trade(-1, 996, 1.0, TS + 1) == []
    assert eng.on_trade(1, 995, 1.0, TS + 2) == []
    # a sell aggressor AT our price, 0.2: maker fill 0.2 @ 99.5 fee 0.2*99.5*0.0002 = 0.00398
    evs = eng.on_trade(-1, 995, 0.2, TS + 3)
    assert [(f.price, f.qty, f.fee, f.liquidity) for f in fills(evs)] == [
        (D("99.5"), D("0.2"), D("0.00398"), "maker")
    ]
    assert status(o) is OrderStatus.PARTIALLY_FILLED
    # a sell aggressor THROUGH our price (99.3), 1.0: fills the remaining 0.3 at 99.5
    evs = eng.on_trade(-1, 993, 1.0, TS + 4)
    assert [(f.price, f.qty, f.fee) for f in fills(evs)] == [(D("99.5"), D("0.3"), D("0.00597"))]
    assert o.status is OrderStatus.FILLED
    # spent 49.75 + 0.00995 = 49.75995 = exactly the lock
    assert bal(acct) == (D("950.24005"), D(0), D("1.5"), D(0))


def test_buy_aggressor_trade_fills_resting_sell() -> None:
    eng, acct, _ = make()
    o = order(Side.SELL, "0.4", "100.5", TimeInForce.GTC)
    eng.submit(o, TS)
    assert bal(acct) == (D("1000"), D(0), D("0.6"), D("0.4"))
    assert eng.on_trade(-1, 1005, 1.0, TS + 1) == []  # wrong aggressor side
    assert eng.on_trade(1, 1004, 1.0, TS + 1) == []  # below our price
    evs = eng.on_trade(1, 1006, 1.0, TS + 2)
    # 0.4 @ 100.5 = 40.2, maker fee 0.00804
    assert [(f.price, f.qty, f.fee) for f in fills(evs)] == [(D("100.5"), D("0.4"), D("0.00804"))]
    assert bal(acct) == (D("1040.19196"), D(0), D("0.6"), D(0))


def test_cancel_releases_lock_exactly() -> None:
    eng, acct, _ = make()
    start = bal(acct)
    o = order(Side.BUY, "0.5", "99.5", TimeInForce.GTC)
    eng.submit(o, TS)
    eng.on_trade(-1, 995, 0.2, TS + 1)  # 0.2 filled, 0.3 still locked
    # lock left: 0.3 * 99.5 * 1.0002 = 29.855970 ; free 1000 - 49.75995 = 950.24005
    assert bal(acct) == (D("950.24005"), D("29.85597"), D("1.2"), D(0))
    evs = eng.cancel(o.client_order_id, TS + 2)
    assert kinds(evs) == ["canceled"]
    assert o.status is OrderStatus.CANCELED
    assert eng.resting == {}
    # only the 0.2 fill costs: 19.9 + 0.00398 = 19.90398
    assert bal(acct) == (D("980.09602"), D(0), D("1.2"), D(0))
    assert start[0] - bal(acct)[0] == D("19.90398")

    s = order(Side.SELL, "0.7", "101.0", TimeInForce.GTC)
    eng.submit(s, TS + 3)
    assert bal(acct)[2:] == (D("0.5"), D("0.7"))
    eng.cancel(s.client_order_id, TS + 4)
    assert bal(acct)[2:] == (D("1.2"), D(0))


def test_cancel_unknown_or_done_raises_order_not_found() -> None:
    eng, _, _ = make()
    with pytest.raises(OrderNotFound) as ei:
        eng.cancel("nope", TS)
    assert ei.value.code == "ORDER_NOT_FOUND"
    o = order(Side.BUY, "0.1", "100.0")
    eng.submit(o, TS)  # IOC, filled: no longer open
    with pytest.raises(OrderNotFound):
        eng.cancel(o.client_order_id, TS)


def test_resting_order_does_not_refill_against_same_displayed_size() -> None:
    eng, _, book = make()
    book.apply([99.9], [0.4], [100.5], [1.0], ts_exchange=TS, ts_local=TS, snapshot=True)
    o = order(Side.BUY, "1.0", "100.0", TimeInForce.GTC)
    eng.submit(o, TS)
    book.apply([], [], [100.0], [0.3], ts_exchange=TS + 1, ts_local=TS + 1)
    assert sum(f.qty for f in fills(eng.on_book(TS + 1))) == D("0.3")
    # an unrelated bid-side update: the 0.3 ask at 100.0 was already taken by us
    book.apply([99.8], [2.0], [], [], ts_exchange=TS + 2, ts_local=TS + 2)
    eng.on_book(TS + 2)
    assert o.filled_qty == D("0.3")


# ----------------------------------------------------------------------------- rejections
def test_insufficient_balance_buy_and_sell_rejected_unchanged() -> None:
    eng, acct, _ = make({"USDT": "50", "BTC": "0.1"})
    before = bal(acct)
    # buy 0.5 @ 100.0 needs 0.5 * 100 * 1.001 = 50.05 > 50
    b = order(Side.BUY, "0.5", "100.0")
    evs = eng.submit(b, TS)
    assert kinds(evs) == ["rejected"]
    assert evs[0].code == b.reject_code == "INSUFFICIENT_BALANCE"
    assert b.status is OrderStatus.REJECTED
    # sell 0.2 > free 0.1 BTC
    s = order(Side.SELL, "0.2", "99.9")
    evs = eng.submit(s, TS)
    assert evs[0].code == "INSUFFICIENT_BALANCE"
    assert s.status is OrderStatus.REJECTED
    assert bal(acct) == before
    # 0.499 @ 100.0 needs 49.9 * 1.001 = 49.9499 <= 50: accepted
    ok = order(Side.BUY, "0.499", "100.0")
    assert kinds(eng.submit(ok, TS))[0] == "accepted"


def test_insufficient_balance_counts_locked_funds() -> None:
    eng, acct, _ = make({"USDT": "100", "BTC": "0"})
    rest = order(Side.BUY, "0.5", "99.5", TimeInForce.GTC)  # locks 49.75995
    eng.submit(rest, TS)
    # free 50.24005; another 0.5 @ 99.5 needs 49.8 (plus maker/taker max fee 0.1%) = 49.79975
    assert kinds(eng.submit(order(Side.BUY, "0.5", "99.5", TimeInForce.GTC), TS))[0] == "accepted"
    # now free 0.4801; a third is rejected
    evs = eng.submit(order(Side.BUY, "0.5", "99.5", TimeInForce.GTC), TS)
    assert evs[0].code == "INSUFFICIENT_BALANCE"
    assert bal(acct) == (D("0.48010"), D("99.51990"), D(0), D(0))


@pytest.mark.parametrize(
    ("qty", "price", "inst_kw", "code"),
    [
        ("0.1", "100.05", {}, "INVALID_PRICE_PRECISION"),  # off the 0.1 tick
        ("0.0005", "100.0", {}, "INVALID_QTY_PRECISION"),  # off the 0.001 lot
        ("0.1005", "100.0", {}, "INVALID_QTY_PRECISION"),
        ("0.005", "100.0", {"min_qty": D("0.01")}, "BELOW_MIN_QTY"),
        # 0.04 * 100.0 = 4.0 < 5
        ("0.04", "100.0", {"min_notional": D("5")}, "BELOW_MIN_NOTIONAL"),
    ],
)
def test_precision_and_minimum_rejections(
    qty: str, price: str, inst_kw: dict[str, object], code: str
) -> None:
    eng, acct, _ = make(inst_kw=inst_kw)
    before = bal(acct)
    o = order(Side.BUY, qty, price)
    evs = eng.submit(o, TS)
    assert kinds(evs) == ["rejected"]
    assert evs[0].code == code
    assert o.reject_code == code
    assert o.status is OrderStatus.REJECTED
    assert bal(acct) == before
    assert eng.error("invalid_price", "x").code == "INVALID_PRICE_PRECISION"


def test_minimums_boundary_passes() -> None:
    # 0.05 * 100.0 = 5.0 == min notional 5 : accepted ; 0.01 == min qty : accepted
    eng, _, _ = make(inst_kw={"min_notional": D("5"), "min_qty": D("0.01")})
    assert kinds(eng.submit(order(Side.BUY, "0.05", "100.0"), TS))[:2] == ["accepted", "fill"]
    assert kinds(eng.submit(order(Side.BUY, "0.01", "99.0"), TS))[0] == "rejected"  # 0.99 < 5


def test_duplicate_client_order_id_rejected() -> None:
    eng, _, _ = make()
    a = order(Side.BUY, "0.1", "99.0", TimeInForce.GTC)
    eng.submit(a, TS)
    b = order(Side.BUY, "0.1", "99.0", TimeInForce.GTC)
    b.client_order_id = a.client_order_id
    evs = eng.submit(b, TS)
    assert evs[0].code == "DUPLICATE_CLIENT_ORDER_ID"
    assert eng.orders[a.client_order_id] is a


# ----------------------------------------------------------------------------- lifecycle
def test_illegal_transitions_raise() -> None:
    o = order(Side.BUY, "0.1", "100.0")
    with pytest.raises(IllegalTransition):
        o.transition(OrderStatus.FILLED, TS)  # NEW -> FILLED
    with pytest.raises(IllegalTransition):
        o.transition(OrderStatus.CANCELED, TS)  # NEW -> CANCELED
    o.transition(OrderStatus.ACCEPTED, TS)
    with pytest.raises(IllegalTransition):
        o.transition(OrderStatus.REJECTED, TS)  # ACCEPTED -> REJECTED
    with pytest.raises(IllegalTransition):
        o.transition(OrderStatus.ACCEPTED, TS)  # ACCEPTED -> ACCEPTED
    o.transition(OrderStatus.CANCELED, TS)
    for st in OrderStatus:
        with pytest.raises(IllegalTransition):
            o.transition(st, TS)  # terminal: nothing


def test_fill_beyond_quantity_and_after_terminal_raise() -> None:
    eng, _, _ = make()
    o = order(Side.BUY, "0.2", "100.0")
    eng.submit(o, TS)
    assert o.status is OrderStatus.FILLED
    extra = o.fills[0]
    with pytest.raises(IllegalTransition):
        o.apply_fill(extra)  # exceeds remaining 0
    r = order(Side.BUY, "0.1", "100.05")  # off tick
    eng.submit(r, TS)
    assert r.status is OrderStatus.REJECTED
    with pytest.raises(IllegalTransition):
        r.transition(OrderStatus.ACCEPTED, TS)


# ----------------------------------------------------------------------------- consumption
def test_own_taker_fills_consume_displayed_liquidity_until_refreshed() -> None:
    eng, _, book = make()
    # first IOC takes 0.15 of the 0.2 at 100.0
    assert [f.qty for f in fills(eng.submit(order(Side.BUY, "0.15", "100.0"), TS))] == [D("0.15")]
    # the data has not changed: only 0.05 is left at 100.0 for the next order
    second = order(Side.BUY, "0.15", "100.0")
    assert [f.qty for f in fills(eng.submit(second, TS + 1))] == [D("0.05")]
    assert second.status is OrderStatus.EXPIRED
    # a walk through the level also sees only what is left: 0.3 @ 100.1 next
    walk = order(Side.BUY, "0.3", "100.1")
    assert [(f.price, f.qty) for f in fills(eng.submit(walk, TS + 2))] == [(D("100.1"), D("0.3"))]
    # the venue publishes a new size at 100.0 (0.2 -> 0.25): the level is fresh again
    book.apply([], [], [100.0], [0.25], ts_exchange=TS + 3, ts_local=TS + 3)
    again = order(Side.BUY, "0.3", "100.0")
    assert [f.qty for f in fills(eng.submit(again, TS + 4))] == [D("0.25")]


def test_consumption_can_be_switched_off() -> None:
    eng, _, _ = make()
    eng.consume_liquidity = False
    for k in range(2):
        o = order(Side.BUY, "0.2", "100.0")
        assert [f.qty for f in fills(eng.submit(o, TS + k))] == [D("0.2")]


# ----------------------------------------------------------------------------- exact arithmetic
# Queue positions, consumed liquidity and fill sizes are whole lots (lot 0.001 here): float
# book sizes are snapped to the lot grid once, when they enter the engine.
def test_trade_after_the_queue_fills_exactly_the_rest() -> None:
    eng, _, book = make()
    book.apply([99.9], [0.1], [], [], ts_exchange=TS, ts_local=TS)  # 0.1 displayed at 99.9
    o = order(Side.BUY, "1", "99.9", TimeInForce.GTC)
    eng.submit(o, TS)
    assert eng.queue_ahead(o.client_order_id) == D("0.1")
    # a sell of 0.3 at our price: 0.1 to the queue ahead, 0.3 - 0.1 = 0.2 to us (in float
    # 0.3 - 0.1 = 0.19999999999999998, which floored to the lot would be 0.199)
    evs = eng.on_trade(-1, 999, 0.3, TS + 1)
    assert [(f.price, f.qty, f.fee) for f in fills(evs)] == [
        # maker fee 0.2 * 99.9 * 0.0002 = 0.0039960
        (D("99.9"), D("0.2"), D("0.003996")),
    ]
    assert o.filled_qty == D("0.2") and o.remaining == D("0.8")
    assert eng.queue_ahead(o.client_order_id) == 0


def test_ask_at_our_price_after_the_queue_fills_exactly_and_is_consumed() -> None:
    eng, _, book = make()
    book.apply([99.9], [0.1], [], [], ts_exchange=TS, ts_local=TS)  # 0.1 ahead of us
    o = order(Side.BUY, "1", "99.9", TimeInForce.GTC)
    eng.submit(o, TS)
    # 0.3 offered at our price: 0.1 goes to the queue ahead, exactly 0.2 to us
    book.apply([], [], [99.9], [0.3], ts_exchange=TS + 1, ts_local=TS + 1)
    assert [f.qty for f in fills(eng.on_book(TS + 1))] == [D("0.2")]
    assert eng.queue_ahead(o.client_order_id) == 0
    # all 0.3 of that ask is now consumed (queue 0.1 + us 0.2): an unrelated update and a
    # taker see nothing left at 99.9
    book.apply([99.8], [2.0], [], [], ts_exchange=TS + 2, ts_local=TS + 2)
    assert fills(eng.on_book(TS + 2)) == []
    taker = order(Side.BUY, "0.3", "99.9")
    assert fills(eng.submit(taker, TS + 3)) == []
    assert taker.status is OrderStatus.EXPIRED
    # the venue refreshes the level (0.3 -> 0.5): 0.5 is offered afresh, we take 0.5 more
    book.apply([], [], [99.9], [0.5], ts_exchange=TS + 4, ts_local=TS + 4)
    assert [f.qty for f in fills(eng.on_book(TS + 4))] == [D("0.5")]
    assert o.filled_qty == D("0.7")


def test_taker_after_a_partial_own_take_gets_exactly_the_rest() -> None:
    eng, _, book = make()
    book.apply([], [], [100.0], [0.3], ts_exchange=TS, ts_local=TS)
    first = order(Side.BUY, "0.1", "100.0")
    assert [f.qty for f in fills(eng.submit(first, TS))] == [D("0.1")]
    second = order(Side.BUY, "1", "100.0")
    assert [f.qty for f in fills(eng.submit(second, TS + 1))] == [D("0.2")]
