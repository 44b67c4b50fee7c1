"""Resting orders are indexed by side and tick: a book message looks only at the orders in
the tick ranges it touched plus those the new touch crosses, a trade only at the orders at or
through its price. The result must be exactly that of looking at every resting order."""

from __future__ import annotations

import itertools
import random
from decimal import Decimal as D
from pathlib import Path

import builders
import pytest

from arbsim.core.book import OrderBook
from arbsim.core.model import Order, OrderType, Side, TimeInForce
from arbsim.data.catalog import Catalog
from arbsim.data.feed import BookCursor
from exchanges.simulated.matching import Account, ExecEvent, MatchingEngine, QueueModel

TS = builders.T0
SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


def _engine(queue: QueueModel) -> MatchingEngine:
    inst = builders.instrument("v", maker_fee=D("0.0002"), taker_fee=D("0.001"))
    book = OrderBook("v", inst.symbol, inst.tick)
    book.apply(
        [99.9, 99.8, 99.7],
        [1.0, 2.0, 3.0],
        [100.0, 100.1, 100.2],
        [1.0, 2.0, 3.0],
        ts_exchange=TS,
        ts_local=TS,
        snapshot=True,
    )
    acct = Account("v", {"USDT": D("100000000"), "BTC": D("1000000")})
    return MatchingEngine(inst, book, acct, queue=queue)


def _summary(evs: list[ExecEvent]) -> list[tuple[str, str, D | None, D | None]]:
    return [
        (
            e.kind,
            e.client_order_id,
            e.fill.qty if e.fill else None,
            e.fill.price if e.fill else None,
        )
        for e in evs
    ]


def _state(eng: MatchingEngine) -> list[tuple[str, int, int, int, int, D]]:
    return [
        (cid, r.tick, r.ahead, r.level, r.traded, r.order.filled_qty)
        for cid, r in eng.resting.items()
    ]


@pytest.mark.parametrize(
    "queue",
    [QueueModel("risk_averse"), QueueModel("prob_power", power=2.0), QueueModel("prob_log")],
    ids=lambda q: q.describe(),
)
def test_indexed_matching_equals_looking_at_every_order(queue: QueueModel) -> None:
    rng = random.Random(7)
    indexed, full = _engine(queue), _engine(queue)
    ids = itertools.count(1)
    mid = 1000  # in ticks (tick 0.1)
    fills = 0
    for step in range(3000):
        ts = TS + step + 1
        r = rng.random()
        if r < 0.55:  # a book message: a few levels per side around a wandering mid
            mid += rng.choice((-2, -1, 0, 0, 1, 2))
            bids = {mid - rng.randint(-2, 15): rng.randint(0, 40) / 10 for _ in range(4)}
            asks = {mid + rng.randint(-2, 15): rng.randint(0, 40) / 10 for _ in range(4)}
            if rng.random() < 0.5:
                bids = {}
            elif rng.random() < 0.3:
                asks = {}
            bt, at = list(bids), list(asks)
            touched = (
                min(bt, default=1),
                max(bt, default=0),
                min(at, default=1),
                max(at, default=0),
            )
            for eng, arg in ((indexed, touched), (full, None)):
                eng.book.apply(
                    [t / 10 for t in bt],
                    list(bids.values()),
                    [t / 10 for t in at],
                    list(asks.values()),
                    ts_exchange=ts,
                    ts_local=ts,
                )
                got = eng.on_book(ts, arg)
                if eng is indexed:
                    a = _summary(got)
                else:
                    b = _summary(got)
        elif r < 0.8:  # a public trade near the touch
            side = rng.choice((1, -1))
            tick = mid + rng.randint(-6, 6)
            size = rng.randint(1, 30) / 10
            a = _summary(indexed.on_trade(side, tick, size, ts))
            b = _summary(full.on_trade(side, tick, size, ts))
        elif r < 0.95 or not indexed.resting:  # a resting order
            side = rng.choice((Side.BUY, Side.SELL))
            tick = mid + rng.randint(-12, 12)
            cid = f"o{next(ids)}"
            qty = D(rng.randint(1, 20)) / 10
            for eng in (indexed, full):
                o = Order(
                    venue="v",
                    symbol="BTC/USDT",
                    side=side,
                    qty=qty,
                    price=D(tick) / 10,
                    order_type=OrderType.LIMIT,
                    tif=TimeInForce.GTC,
                    client_order_id=cid,
                )
                got = eng.submit(o, ts)
                if eng is indexed:
                    a = _summary(got)
                else:
                    b = _summary(got)
        else:  # cancel one
            cid = rng.choice(sorted(indexed.resting))
            a = _summary(indexed.cancel(cid, ts))
            b = _summary(full.cancel(cid, ts))
        assert a == b, step
        assert _state(indexed) == _state(full), step
        fills += sum(1 for e in a if e[0] == "fill")
    assert fills > 200  # the walk did exercise the matching
    assert indexed.account.snapshot(0) == full.account.snapshot(0)


def test_book_cursor_touched_covers_each_message() -> None:
    catalog = Catalog(SAMPLE)
    inst = catalog.instrument("mexc", "BTC/USDT")
    book = OrderBook("mexc", inst.symbol, inst.tick)
    cursor = BookCursor(catalog, "mexc", "BTC/USDT", book.scale)
    n = 0
    while n < 5000 and cursor.next():
        bt, _, at, _ = cursor.current_levels()
        touched = cursor.touched()
        if cursor.flags & 1:
            assert touched is None
            continue
        assert touched is not None
        blo, bhi, alo, ahi = touched
        if len(bt):
            assert (blo, bhi) == (int(bt.min()), int(bt.max()))
        else:
            assert blo > bhi
        if len(at):
            assert (alo, ahi) == (int(at.min()), int(at.max()))
        else:
            assert alo > ahi
        n += 1
    assert n == 5000


def test_a_message_near_the_touch_does_not_look_at_orders_far_away() -> None:
    eng = _engine(QueueModel("prob_power", power=2.0))
    for i in range(1600):  # 1600 orders 10+ ticks under the bid and over the ask
        side = Side.BUY if i % 2 else Side.SELL
        tick = 989 - i // 2 if side is Side.BUY else 1011 + i // 2
        eng.submit(
            Order(
                venue="v",
                symbol="BTC/USDT",
                side=side,
                qty=D("0.1"),
                price=D(tick) / 10,
                order_type=OrderType.LIMIT,
                tif=TimeInForce.GTC,
                client_order_id=f"far{i}",
            ),
            TS,
        )
    assert len(eng.resting) == 1600
    looked: list[int] = []
    size_at = eng.book.size_at

    def counting(side: Side, tick: int) -> float:
        looked.append(tick)
        return size_at(side, tick)

    eng.book.size_at = counting  # type: ignore[method-assign]
    eng.book.apply([99.9, 99.8], [1.5, 0.5], [100.0], [0.7], ts_exchange=TS + 1, ts_local=TS + 1)
    assert eng.on_book(TS + 1, (998, 999, 1000, 1000)) == []
    assert eng.on_trade(-1, 999, 5.0, TS + 2) == []
    assert eng.on_trade(1, 1000, 5.0, TS + 3) == []
    assert looked == []
    # a message at one order's level looks at that order only
    eng.book.apply([98.9], [3.0], [], [], ts_exchange=TS + 4, ts_local=TS + 4)
    assert eng.on_book(TS + 4, (989, 989, 1, 0)) == []
    assert looked == [989]
    assert len(eng.resting) == 1600
