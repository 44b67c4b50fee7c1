"""Pre-trade risk: every denial, its counter, the circuit breaker and the rate window."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal as D
from typing import Any

import pytest

from arbsim.runtime.risk import RiskDenied, RiskLimits, RiskManager

T = 1_767_571_200_000_000_000  # 2026-01-05T00:00:00Z, a day boundary
S = 1_000_000_000
DAY = 86_400 * S


def rm(**kw: Any) -> RiskManager:
    return RiskManager(RiskLimits(**kw))


def denied(fn: Callable[..., object], *args: object, **kw: object) -> str:
    with pytest.raises(RiskDenied) as ei:
        fn(*args, **kw)
    return ei.value.reason


def test_stale_data() -> None:
    r = rm(stale_data_s=5.0)
    # exactly 5 s old is still fresh; 5 s + 1 ns is stale
    assert r.check_data(T + 5 * S, T, "mexc") is None
    d = r.check_data(T + 5 * S + 1, T, "mexc")
    assert d is not None and d.reason == "stale_data" and d.ts == T + 5 * S + 1
    assert "mexc" in d.detail
    r2 = rm(stale_data_s=0.25)
    assert r2.check_data(T + S // 4, T, "g") is None
    assert r2.check_data(T + S // 4 + 1, T, "g") is not None
    assert r.counts == {"stale_data": 1}
    assert [x.reason for x in r.denials] == ["stale_data"]


def test_position_and_exposure() -> None:
    r = rm(max_position={"BTC": D("0.5")}, max_total_exposure=D("60000"))
    # limits are inclusive
    assert r.check_trade(T, asset="BTC", position_after=D("0.5"), exposure_after=D(60000)) is None
    d = r.check_trade(T, asset="BTC", position_after=D("-0.501"), exposure_after=D(1))
    assert d is not None and d.reason == "position"
    d = r.check_trade(T, asset="BTC", position_after=D("0.1"), exposure_after=D("60000.01"))
    assert d is not None and d.reason == "exposure"
    # no cap configured for ETH: only exposure applies
    assert r.check_trade(T, asset="ETH", position_after=D(100), exposure_after=D(1)) is None
    assert r.counts == {"position": 1, "exposure": 1}


def test_max_order_notional_but_reducing_passes() -> None:
    r = rm(max_order_notional=D("30000"))
    r.check_order(T, D("30000"))
    assert denied(r.check_order, T + 1, D("30000.01")) == "order_notional"
    r.check_order(T + 2, D("90000"), reducing=True)
    assert r.counts == {"order_notional": 1}


def test_open_orders() -> None:
    r = rm(max_open_orders=2, max_orders_per_s=100)
    r.open_orders = 1
    r.check_order(T, D(1))
    r.open_orders = 2
    assert denied(r.check_order, T, D(1)) == "open_orders"
    # reducing orders are not exempt from the open-order cap
    assert denied(r.check_order, T, D(1), reducing=True) == "open_orders"
    assert r.counts == {"open_orders": 2}


def test_order_rate_window() -> None:
    r = rm(max_orders_per_s=3)
    for k in range(3):
        r.check_order(T + k * 100_000_000, D(1))  # T, T+0.1, T+0.2
    assert denied(r.check_order, T + S // 2, D(1)) == "order_rate"
    # a denied order does not occupy a slot; at T + 1 s the first order leaves the window
    assert denied(r.check_order, T + S - 1, D(1)) == "order_rate"
    r.check_order(T + S, D(1))
    # window now holds T+0.1, T+0.2, T+1.0 -> full until T+1.1
    assert denied(r.check_order, T + S + 99_999_999, D(1)) == "order_rate"
    r.check_order(T + S + 100_000_000, D(1))
    assert r.counts == {"order_rate": 3}


def test_daily_loss_trips_breaker_that_stays_tripped() -> None:
    r = rm(max_daily_loss=D("1000"), max_orders_per_s=2)
    r.on_pnl(T, 500.0)  # start of day: reference 500
    r.on_pnl(T + 10 * S, -500.0)  # loss exactly 1000: not beyond the limit
    assert not r.tripped
    r.on_pnl(T + 20 * S, -500.01)  # loss 1000.01
    assert r.tripped
    assert r.breaker_ts == T + 20 * S
    assert r.breaker_reason is not None and r.breaker_reason.startswith("daily loss 1000.01")
    # recovering, or a new day, does not reset it
    r.on_pnl(T + 30 * S, 10_000.0)
    r.on_pnl(T + DAY + S, 10_000.0)
    assert r.tripped
    # a later trip does not overwrite the first reason
    r.trip(T + DAY + 2 * S, "other")
    assert r.breaker_reason.startswith("daily loss")
    d = r.check_trade(T + DAY, asset="BTC", position_after=D(0), exposure_after=D(0))
    assert d is not None and d.reason == "circuit_breaker"
    assert denied(r.check_order, T + DAY, D(1)) == "circuit_breaker"
    # reducing orders pass the breaker ... but still respect the order rate
    r.check_order(T + DAY, D(1), reducing=True)
    r.check_order(T + DAY + 1, D(1), reducing=True)
    assert denied(r.check_order, T + DAY + 2, D(1), reducing=True) == "order_rate"
    assert r.counts == {"circuit_breaker": 2, "order_rate": 1}


def test_daily_loss_is_measured_from_the_day_start() -> None:
    r = rm(max_daily_loss=D("100"))
    r.on_pnl(T, 0.0)
    r.on_pnl(T + DAY - 1, -90.0)  # day 1: -90
    r.on_pnl(T + DAY, -90.0)  # day 2 starts at -90
    r.on_pnl(T + DAY + S, -180.0)  # day 2 loss 90: fine although -180 overall
    assert not r.tripped
    r.on_pnl(T + DAY + 2 * S, -190.5)  # day 2 loss 100.5
    assert r.tripped


def test_denials_are_counted_by_reason_with_time() -> None:
    r = rm(max_order_notional=D(10), max_orders_per_s=1, stale_data_s=1.0)
    r.check_data(T + 2 * S, T, "mexc")
    r.check_data(T + 3 * S, T, "gateio")
    denied(r.check_order, T, D(11))
    r.check_order(T, D(1))
    denied(r.check_order, T + 1, D(1))
    assert dict(r.counts) == {"stale_data": 2, "order_notional": 1, "order_rate": 1}
    assert [(d.ts, d.reason) for d in r.denials] == [
        (T + 2 * S, "stale_data"),
        (T + 3 * S, "stale_data"),
        (T, "order_notional"),
        (T + 1, "order_rate"),
    ]
