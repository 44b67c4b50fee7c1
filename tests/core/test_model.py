from __future__ import annotations

from decimal import Decimal

import pytest
from builders import instrument

from arbsim.core.errors import IllegalTransition
from arbsim.core.model import Fill, Order, OrderRequest, OrderStatus, Side, parse_symbol


def order(qty: str = "1.0") -> Order:
    req = OrderRequest(
        venue="v",
        symbol="BTC/USDT",
        side=Side.BUY,
        qty=Decimal(qty),
        price=Decimal("100"),
        client_order_id="c1",
    )
    return Order.from_request(req, ts=1)


def fill(qty: str, price: str = "100") -> Fill:
    return Fill(
        venue="v",
        symbol="BTC/USDT",
        client_order_id="c1",
        order_id="1",
        trade_id="t",
        side=Side.BUY,
        price=Decimal(price),
        qty=Decimal(qty),
        fee=Decimal("0.01"),
        fee_asset="USDT",
        liquidity="taker",
        ts_exchange=2,
        ts_local=3,
    )


def test_lifecycle_happy_path_and_exact_sums() -> None:
    o = order()
    o.transition(OrderStatus.ACCEPTED, 2)
    o.apply_fill(fill("0.3", "100"))
    assert o.status is OrderStatus.PARTIALLY_FILLED and o.remaining == Decimal("0.7")
    o.apply_fill(fill("0.7", "101"))
    assert o.status is OrderStatus.FILLED  # type: ignore[comparison-overlap]  # stale narrowing across apply_fill
    assert o.quote_qty == Decimal("100.7") and o.fee == Decimal("0.02")
    assert o.avg_price == Decimal("100.7")
    assert not o.is_open


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        ([], OrderStatus.FILLED),  # NEW -> FILLED skips ACCEPTED
        ([], OrderStatus.CANCELED),
        ([OrderStatus.ACCEPTED], OrderStatus.NEW),
        ([OrderStatus.ACCEPTED], OrderStatus.REJECTED),
        ([OrderStatus.ACCEPTED, OrderStatus.CANCELED], OrderStatus.FILLED),
        ([OrderStatus.REJECTED], OrderStatus.ACCEPTED),
        ([OrderStatus.ACCEPTED, OrderStatus.EXPIRED], OrderStatus.CANCELED),
    ],
)
def test_illegal_transitions_raise(path: list[OrderStatus], bad: OrderStatus) -> None:
    o = order()
    for st in path:
        o.transition(st, 1)
    with pytest.raises(IllegalTransition):
        o.transition(bad, 2)


def test_overfill_and_fill_before_accept_raise() -> None:
    o = order("0.5")
    with pytest.raises(IllegalTransition):
        o.apply_fill(fill("0.1"))  # NEW cannot take fills
    o = order("0.5")
    o.transition(OrderStatus.ACCEPTED, 1)
    with pytest.raises(IllegalTransition, match="exceeds remaining"):
        o.apply_fill(fill("0.6"))


def test_instrument_rounding_is_exact_and_conservative() -> None:
    inst = instrument("v", tick=Decimal("0.01"), lot=Decimal("0.0001"))
    assert inst.round_price(100.005, Side.BUY) == Decimal("100.01")
    assert inst.round_price(100.005, Side.SELL) == Decimal("100.00")
    assert inst.round_price(Decimal("100.004")) == Decimal("100.00")
    assert inst.round_qty(0.12349) == Decimal("0.1234")
    assert inst.round_qty(0.1) == Decimal("0.1000")  # float repr, not binary expansion
    assert inst.on_tick(Decimal("61820.99")) and not inst.on_tick(Decimal("61820.995"))
    assert inst.on_lot(Decimal("0.0002")) and not inst.on_lot(Decimal("0.00021"))
    assert parse_symbol("BTC/USDT") == ("BTC", "USDT")
    with pytest.raises(ValueError, match="BASE/QUOTE"):
        parse_symbol("BTCUSDT")


def test_common_lot_and_floor() -> None:
    from arbsim.core.model import common_lot, floor_to

    assert common_lot(Decimal("0.003"), Decimal("0.002")) == Decimal("0.006")
    assert common_lot(Decimal("0.001"), Decimal("0.00001")) == Decimal("0.001")
    assert common_lot(Decimal("0.5"), Decimal("0.2")) == Decimal("1")
    assert floor_to(Decimal("0.1"), Decimal("0.006")) == Decimal("0.096")
