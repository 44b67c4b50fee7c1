"""arbsim.analysis on hand-built run directories: every number is worked out by hand."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from arbsim import analysis as an
from arbsim.core.errors import DataError
from arbsim.core.model import Fill, Side
from arbsim.runtime.recorder import ArbRecord, RunRecorder

T0 = 1_767_571_200_000_000_000  # 2026-01-05T00:00:00Z
MS = 1_000_000

CONFIG = """\
venues:
- name: a
  balances:
    BTC: '2'
    USDT: '1000'
- name: b
  balances:
    BTC: '2'
    USDT: '1000'
"""


def order_row(cid: str, venue: str, side: int, qty: str, filled: str, **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "client_order_id": cid,
        "order_id": cid,
        "venue": venue,
        "symbol": "BTC/USDT",
        "side": side,
        "order_type": "limit",
        "tif": "ioc",
        "price": "100",
        "qty": qty,
        "filled_qty": filled,
        "avg_price": None,
        "fee": "0",
        "fee_asset": "USDT",
        "status": "filled" if filled == qty else "expired",
        "reject_code": "",
        "tag": "",
        "ts_sent": T0,
        "ts_ack": T0 + 20 * MS,
        "ts_updated": T0 + 20 * MS,
    }
    row.update(kw)
    return row


def fill(cid: str, venue: str, side: Side, price: str, qty: str, fee: str = "0", **kw: Any) -> Fill:
    fields: dict[str, Any] = {
        "venue": venue,
        "symbol": "BTC/USDT",
        "client_order_id": cid,
        "order_id": cid,
        "trade_id": f"{cid}-{price}",
        "side": side,
        "price": Decimal(price),
        "qty": Decimal(qty),
        "fee": Decimal(fee),
        "fee_asset": "USDT",
        "liquidity": "taker",
        "ts_exchange": T0 + 10 * MS,
        "ts_local": T0 + 20 * MS,
    }
    fields.update(kw)
    return Fill(**fields)


def make_run(
    root: Path,
    *,
    arbs: list[ArbRecord] | None = None,
    orders: list[dict[str, Any]] | None = None,
    fills: list[Fill] | None = None,
    latency: list[tuple[int, str, str, int]] | None = None,
    equity: list[tuple[int, float, float, float]] | None = None,
    summary: dict[str, Any] | None = None,
    config: str = CONFIG,
) -> Path:
    """Write a run directory with the recorder's own schemas, row by row."""
    rec = RunRecorder()
    for a in arbs or []:
        rec.arbs.append(a)
    for f in fills or []:
        rec.fill(f)
    for ts, net, gross, fees in equity or []:
        rec.equity(ts, 1000.0 + net, net, gross, fees, {})
    lat = pa.table(
        {
            "ts": pa.array([r[0] for r in latency or []], pa.int64()),
            "kind": pa.array([r[1] for r in latency or []], pa.string()),
            "venue": pa.array([r[2] for r in latency or []], pa.string()),
            "latency_ns": pa.array([r[3] for r in latency or []], pa.int64()),
        }
    )
    full = {
        "status": "ok",
        "window": {
            "start": "2026-01-05T00:00:00.000+00:00",
            "end": "2026-01-05T00:01:00.000+00:00",
        },
        "arbs": {"attempted": len(arbs or []), "decisions": len(arbs or [])},
        "pnl": {"gross": 0.0, "fees": 0.0, "net": 0.0},
        "venues": {},
        "risk": {"denials": {}, "circuit_breaker": None},
        "rejections": {},
    }
    full.update(summary or {})
    rec.write(root, lat, full, config.encode())
    # orders are written as rows so that tests set every column they care about
    schema = rec.orders_table().schema
    pq.write_table(pa.Table.from_pylist(orders or [], schema=schema), root / "orders.parquet")
    return root


def arb(arb_id: int, **kw: Any) -> ArbRecord:
    fields: dict[str, Any] = {
        "arb_id": arb_id,
        "symbol": "BTC/USDT",
        "buy_venue": "a",
        "sell_venue": "b",
        "ts_trigger": T0,
        "ts_decision": T0,
        "ts_done": T0 + 50 * MS,
        "qty_target": "1",
        "outcome": "completed",
    }
    fields.update(kw)
    return ArbRecord(**fields)


@pytest.fixture
def slip_run(tmp_path: Path) -> Path:
    """Arb 1 pays at every step; arb 2 gains at every step; arb 3 is hedged."""
    arbs = [
        # buy on a: decision ask 100, arrival 100.5, fills 0.5@100.8 + 0.5@101.2 = 101.0
        # sell on b: decision bid 102, arrival 101, fill 100.98
        arb(
            1,
            decision_buy_price=100.0,
            decision_sell_price=102.0,
            buy_arrival_price=100.5,
            sell_arrival_price=101.0,
            buy_filled="1",
            sell_filled="1",
            expected_edge_bps=150.0,
            realized_edge_bps=-2.0,
            expected_pnl=1.5,
            realized_pnl=-0.02,
            orders=["o1", "o2"],
        ),
        # buy on a below the decision ask (99.0 -> 98.9), sell on b above the bid
        arb(
            2,
            ts_decision=T0 + 1000 * MS,
            ts_done=T0 + 1050 * MS,
            decision_buy_price=100.0,
            decision_sell_price=101.0,
            buy_arrival_price=99.0,
            sell_arrival_price=101.5,
            buy_filled="1",
            sell_filled="1",
            expected_edge_bps=100.0,
            realized_edge_bps=270.0,
            realized_pnl=2.7,
            orders=["o3", "o4"],
        ),
        # the buy leg misses; the sell is hedged by a buy on a at 100.3 (arrival unknown)
        arb(
            3,
            ts_decision=T0 + 2000 * MS,
            ts_done=T0 + 2100 * MS,
            qty_target="2",
            decision_buy_price=100.0,
            decision_sell_price=101.0,
            buy_arrival_price=100.2,
            sell_arrival_price=101.0,
            buy_filled="0",
            sell_filled="2",
            hedge_qty="2",
            outcome="hedged",
            realized_pnl=1.4,
            orders=["o5", "o6", "o7"],
        ),
        arb(4, ts_decision=T0 + 3000 * MS, outcome="skipped", reason="balance"),
    ]
    orders = [
        order_row("o1", "a", 1, "1", "1"),
        order_row("o2", "b", -1, "1", "1"),
        order_row("o3", "a", 1, "1", "1"),
        order_row("o4", "b", -1, "1", "1"),
        order_row("o5", "a", 1, "2", "0"),
        order_row("o6", "b", -1, "2", "2"),
        order_row("o7", "a", 1, "2", "2", tag="arb3:hedge0", ts_sent=T0 + 2060 * MS),
    ]
    fills = [
        fill("o1", "a", Side.BUY, "100.8", "0.5", fee="0.1"),
        fill("o1", "a", Side.BUY, "101.2", "0.5", fee="0.1", ts_local=T0 + 30 * MS),
        fill("o2", "b", Side.SELL, "100.98", "1"),
        fill("o3", "a", Side.BUY, "98.9", "1", ts_local=T0 + 1020 * MS),
        fill("o4", "b", Side.SELL, "101.6", "1", ts_local=T0 + 1020 * MS),
        fill("o6", "b", Side.SELL, "101.0", "2", ts_local=T0 + 2020 * MS),
        fill("o7", "a", Side.BUY, "100.3", "2", ts_local=T0 + 2090 * MS),
    ]
    equity = [
        (T0, 0.0, 0.0, 0.0),
        (T0 + 1000 * MS, -0.02, 0.18, 0.2),
        (T0 + 3000 * MS, 4.08, 4.28, 0.2),
    ]
    latency = [
        (T0, "place", "a", 10 * MS),
        (T0, "place", "a", 20 * MS),
        (T0, "place", "a", 30 * MS),
        (T0, "place", "b", 5 * MS),
        (0, "feed_sample", "a", 1 * MS),
    ]
    return make_run(
        tmp_path / "run", arbs=arbs, orders=orders, fills=fills, equity=equity, latency=latency
    )


def test_load_run_types(slip_run: Path) -> None:
    run = an.load_run(slip_run)
    assert run.name == "run"
    assert str(run.arbs["qty_target_f"].dtype) == "float64"
    assert run.arbs["qty_target_f"].tolist() == [1.0, 1.0, 2.0, 1.0]
    assert run.orders["filled_qty_f"].tolist() == [1.0, 1.0, 1.0, 1.0, 0.0, 2.0, 2.0]
    assert str(run.fills["time"].dt.tz) == "UTC"
    assert run.start_balances() == {
        "a": {"BTC": Decimal("2"), "USDT": Decimal("1000")},
        "b": {"BTC": Decimal("2"), "USDT": Decimal("1000")},
    }
    assert run.window_ns() == (T0, T0 + 60_000 * MS + 999_999)


def row(frame: pd.DataFrame, key: int | tuple[int, str]) -> pd.Series[Any]:
    """``frame.loc[key]``, the one row it names (pandas-stubs can't tell a row from a cell)."""
    found = frame.loc[key]
    assert isinstance(found, pd.Series)
    return found


def test_slippage_signs_and_decomposition(slip_run: Path) -> None:
    s = an.leg_slippage(an.load_run(slip_run)).set_index(["arb_id", "leg"])
    buy1, sell1 = row(s, (1, "buy")), row(s, (1, "sell"))
    # buying above the decision price is a cost, at each step
    assert buy1["fill_price"] == pytest.approx(101.0)
    assert buy1["delay_bps"] == pytest.approx(50.0)
    assert buy1["impact_bps"] == pytest.approx(50.0)
    assert buy1["total_bps"] == pytest.approx(100.0)
    assert buy1["cost_quote"] == pytest.approx(1.0)
    # selling below the decision price is a cost
    assert sell1["delay_bps"] == pytest.approx(1.0 / 102.0 * 1e4)
    assert sell1["impact_bps"] == pytest.approx(0.02 / 102.0 * 1e4)
    assert sell1["total_bps"] == pytest.approx(1.02 / 102.0 * 1e4)
    # improvements are negative costs: bought below, sold above the decision
    buy2, sell2 = row(s, (2, "buy")), row(s, (2, "sell"))
    assert buy2["delay_bps"] == pytest.approx(-100.0)
    assert buy2["impact_bps"] == pytest.approx(-10.0)
    assert buy2["total_bps"] == pytest.approx(-110.0)
    assert sell2["delay_bps"] == pytest.approx(-0.5 / 101.0 * 1e4)
    assert sell2["impact_bps"] == pytest.approx(-0.1 / 101.0 * 1e4)
    # components add up
    assert (s["delay_bps"] + s["impact_bps"]).dropna().tolist() == pytest.approx(
        s.loc[s["delay_bps"].notna(), "total_bps"].tolist()
    )
    # the missed buy of arb 3 has no row; its hedge is measured against the decision ask
    assert (3, "buy") not in s.index
    hedge = row(s, (3, "hedge"))
    assert hedge["venue"] == "a"
    assert hedge["side"] == 1
    assert hedge["decision_price"] == 100.0
    assert hedge["arrival_price"] != hedge["arrival_price"]  # NaN: not recorded
    assert hedge["total_bps"] == pytest.approx(30.0)
    assert hedge["cost_quote"] == pytest.approx(0.6)


def test_slippage_summary_weights_by_quantity(slip_run: Path) -> None:
    s = an.leg_slippage(an.load_run(slip_run))
    summ = an.slippage_summary(s)
    assert list(summ.index) == [("buy", "a"), ("sell", "b"), ("hedge", "a")]
    assert summ.loc[("buy", "a"), "legs"] == 2
    assert summ.loc[("buy", "a"), "total_bps"] == pytest.approx((100.0 - 110.0) / 2)
    sell_totals = [1.02 / 102.0 * 1e4, -0.6 / 101.0 * 1e4, 0.0]
    # arb 3's sell (2 units at the decision bid) weighs twice
    assert summ.loc[("sell", "b"), "total_bps"] == pytest.approx(
        (sell_totals[0] + sell_totals[1] + 2 * sell_totals[2]) / 4
    )


def test_arb_edges_and_fill_ratios(slip_run: Path) -> None:
    run = an.load_run(slip_run)
    e = an.arb_edges(run).set_index("arb_id")
    assert e.loc[1, "edge_gap_bps"] == pytest.approx(-152.0)
    assert e.loc[2, "edge_gap_bps"] == pytest.approx(170.0)
    assert e.loc[3, "fill_ratio"] == 0.0
    assert e.loc[1, "fill_ratio"] == 1.0
    assert not e.loc[4, "attempted"]
    realized = row(e, 4)["realized_edge_bps"]
    assert realized != realized  # NaN
    fr = an.fill_ratios(run)
    assert list(fr.index) == [("buy", "a"), ("sell", "b"), ("hedge", "a")]
    assert fr.loc[("buy", "a"), "fill_ratio"] == pytest.approx(2.0 / 4.0)
    assert fr.loc[("buy", "a"), "none"] == pytest.approx(1.0 / 3.0)
    assert fr.loc[("hedge", "a"), "full"] == 1.0


def test_time_to_fill(slip_run: Path) -> None:
    t = an.time_to_fill(an.load_run(slip_run)).set_index("client_order_id")
    assert t.loc["o1", "to_exchange_fill_ms"] == 10.0
    assert t.loc["o1", "to_first_fill_ms"] == 20.0
    assert t.loc["o1", "to_last_fill_ms"] == 30.0
    assert t.loc["o1", "n_fills"] == 2
    assert t.loc["o7", "leg"] == "hedge"
    assert t.loc["o7", "to_first_fill_ms"] == 30.0
    assert "o5" not in t.index


def test_latency_percentiles(slip_run: Path) -> None:
    lat = an.latency_percentiles(an.load_run(slip_run), percentiles=(50.0, 100.0))
    assert lat.loc[("place", "a"), "p50"] == 20.0
    assert lat.loc[("place", "a"), "p100"] == 30.0
    assert lat.loc[("place", "a"), "n"] == 3
    assert lat.loc[("place", "b"), "mean"] == 5.0
    assert lat.loc[("feed_sample", "a"), "max"] == 1.0


def test_inventory_from_start_balances_and_fills(slip_run: Path) -> None:
    inv = an.inventory(an.load_run(slip_run))
    end = inv.groupby(["venue", "asset"])["balance"].last()
    # a bought 1 + 1 + 2 BTC for 101.0 + 98.9 + 200.6 USDT and paid 0.2 USDT fees
    assert end[("a", "BTC")] == pytest.approx(6.0)
    assert end[("a", "USDT")] == pytest.approx(1000 - 101.0 - 98.9 - 200.6 - 0.2)
    assert end[("b", "BTC")] == pytest.approx(-2.0)
    assert end[("b", "USDT")] == pytest.approx(1000 + 100.98 + 101.6 + 202.0)
    first = inv.groupby(["venue", "asset"])["ts"].first()
    assert (first == T0).all()
    assert inv["ts"].is_monotonic_increasing


def test_pnl_over_time(slip_run: Path) -> None:
    p = an.pnl_over_time(an.load_run(slip_run))
    assert p["net"].tolist() == [0.0, -0.02, 4.08]
    # arb 1 is done at +50 ms, arb 2 at +1050 ms, arb 3 at +2100 ms, arb 4 at +50 ms
    assert p["arb_realized"].tolist() == pytest.approx([0.0, -0.02, -0.02 + 2.7 + 1.4])


# ---------------------------------------------------------------- errors
def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope: run directory does not exist"):
        an.load_run(tmp_path / "nope")


def test_file_instead_of_directory(tmp_path: Path) -> None:
    f = tmp_path / "x.parquet"
    f.write_bytes(b"")
    with pytest.raises(DataError, match=r"x.parquet: not a directory"):
        an.load_run(f)


def test_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "catalog.json").write_text("{}")
    with pytest.raises(DataError, match=r"not an arbsim run directory"):
        an.load_run(tmp_path)


@pytest.mark.parametrize(
    "name", ["orders.parquet", "fills.parquet", "arbs.parquet", "latency.parquet", "equity.parquet"]
)
def test_missing_file_is_named(tmp_path: Path, name: str) -> None:
    root = make_run(tmp_path / "run")
    (root / name).unlink()
    with pytest.raises(DataError, match=rf"{name}: missing from the run directory"):
        an.load_run(root)


def test_corrupt_parquet_is_named(tmp_path: Path) -> None:
    root = make_run(tmp_path / "run")
    (root / "fills.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match=r"fills.parquet: not a readable Parquet file"):
        an.load_run(root)


def test_foreign_parquet_is_named(tmp_path: Path) -> None:
    root = make_run(tmp_path / "run")
    pq.write_table(pa.table({"ts": [1], "price": [1.0]}), root / "arbs.parquet")
    with pytest.raises(DataError, match=r"arbs.parquet: not an arbsim arbs.parquet \(missing"):
        an.load_run(root)


def test_bad_decimal_column_is_named(tmp_path: Path) -> None:
    root = make_run(tmp_path / "run", orders=[order_row("o1", "a", 1, "one", "0")])
    with pytest.raises(DataError, match=r"orders.parquet: column qty holds non-decimal"):
        an.load_run(root)


def test_corrupt_summary_and_config(tmp_path: Path) -> None:
    root = make_run(tmp_path / "run")
    (root / "summary.json").write_text("{not json")
    with pytest.raises(DataError, match=r"summary.json: not valid JSON"):
        an.load_run(root)
    (root / "summary.json").write_text(json.dumps({"something": "else"}))
    with pytest.raises(DataError, match=r"summary.json: not an arbsim run summary"):
        an.load_run(root)
    root = make_run(tmp_path / "run2", config="venues: [unclosed")
    with pytest.raises(DataError, match=r"config.yaml: not valid YAML"):
        an.load_run(root)


def test_empty_run_loads(tmp_path: Path) -> None:
    run = an.load_run(make_run(tmp_path / "run"))
    assert an.leg_slippage(run).empty
    assert an.slippage_summary(an.leg_slippage(run)).empty
    assert an.fill_ratios(run).empty
    assert an.time_to_fill(run).empty
    assert an.arb_edges(run).empty
    assert an.latency_percentiles(run).empty
    assert len(an.inventory(run)) == 4  # the start balances


def test_hedge_legs_get_their_own_arrival_price(tmp_path: Path) -> None:
    """On a real backtest of the sample every filled leg, hedges and unwinds included,
    carries the touch it met at the venue, so the decomposition adds up for all of them."""
    from arbsim.analysis.frames import leg_slippage, load_run
    from arbsim.app.backtest import bundled_sample, default_config_path, run_backtest
    from arbsim.app.config import load_config

    run_backtest(
        load_config(default_config_path()),
        catalog_path=bundled_sample(),
        out_dir=tmp_path / "r",
        end="2026-01-05T00:06:00Z",
    )
    legs = leg_slippage(load_run(tmp_path / "r"))
    repairs = legs[legs["leg"].isin(["hedge", "unwind"])]
    assert len(repairs) > 0
    assert repairs["arrival_price"].notna().all()
    total = legs["delay_bps"] + legs["impact_bps"]
    assert ((total - legs["total_bps"]).abs() < 1e-9).all()
