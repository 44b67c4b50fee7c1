"""Session statistics, hand-checked on small inputs, and on the bundled sample."""

from __future__ import annotations

import math
from decimal import Decimal as D
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from arbsim.analysis.frames import load_run, session_stats
from arbsim.analysis.report import render_report
from arbsim.app.backtest import bundled_sample, default_config_path, run_backtest
from arbsim.app.config import parse_config
from arbsim.core.model import Fill, Side
from arbsim.runtime.stats import ArbResult, arb_stats, curve_stats, inventory_drift, positions

S = 1_000_000_000


def test_curve_statistics_by_hand() -> None:
    # PnL 0, 10, 4, 12, 6, 8 at one-second samples on a capital of 1,000
    st = curve_stats([i * S for i in range(6)], [0, 10, 4, 12, 6, 8], 1000.0)
    assert st["return_on_capital"] == pytest.approx(0.008)
    # the first fall of 6 (10 -> 4) is the largest (the later 12 -> 6 only equals it);
    # it is back at 10 one sample after the trough: 2 s from the peak
    assert st["max_drawdown"] == 6
    assert st["max_drawdown_pct"] == pytest.approx(6 / 1010)
    assert st["max_drawdown_duration_s"] == 2.0 and st["max_drawdown_recovered"] is True
    # returns 0.010, -0.006, 0.008, -0.006, 0.002: mean 0.0016; deviations 0.0084,
    # -0.0076, 0.0064, -0.0076, 0.0004 square to 22.72e-5, over 4 -> variance 5.68e-5;
    # downside: (0.006² + 0.006²) / 5 = 1.44e-5; a year of one-second samples
    year = math.sqrt(365 * 86_400)
    assert st["sample_interval_s"] == 1.0
    assert st["sharpe"] == pytest.approx(0.0016 / math.sqrt(5.68e-5) * year)
    assert st["sortino"] == pytest.approx(0.0016 / math.sqrt(1.44e-5) * year)
    assert st["sharpe"] == pytest.approx(1192.2, abs=0.1)


def test_a_drawdown_not_recovered_lasts_to_the_end() -> None:
    st = curve_stats([0, 2 * S, 5 * S, 9 * S], [0, 5, 1, 2], 100.0)
    assert st["max_drawdown"] == 4 and st["max_drawdown_recovered"] is False
    assert st["max_drawdown_duration_s"] == 7.0  # from the peak (2 s) to the end (9 s)


def test_too_short_or_flat_curves_have_no_ratios() -> None:
    assert curve_stats([0, S], [0.0, 1.0], 10.0)["sharpe"] is None
    flat = curve_stats([0, S, 2 * S, 3 * S], [1.0, 1.0, 1.0, 1.0], 10.0)
    assert flat["sharpe"] is None and flat["sortino"] is None and flat["max_drawdown"] == 0
    assert curve_stats([], [], 10.0)["return_on_capital"] is None


def test_arbitrage_statistics_by_hand() -> None:
    def r(traded: bool, pnl: float, exp: float, bps: float) -> ArbResult:
        return ArbResult(traded=traded, pnl=pnl, expected_pnl=exp, expected_edge_bps=10.0,
                         realized_edge_bps=bps)  # fmt: skip

    st = arb_stats([r(True, 10, 12, 8), r(True, -5, 12, -4), r(True, 20, 16, 12),
                    r(True, 0, 10, 0), r(False, 0, 30, 0)])  # fmt: skip
    assert st["traded"] == 4 and st["wins"] == 2 and st["losses"] == 1
    assert st["win_rate"] == 0.5
    assert st["profit_factor"] == 6.0  # (10 + 20) / 5
    assert st["avg_pnl"] == 6.25  # 25 / 4
    assert st["avg_captured_edge_bps"] == 4.0  # (8 - 4 + 12 + 0) / 4
    assert st["edge_capture"] == 0.5  # 25 / (12 + 12 + 16 + 10); the untraded one is out
    assert arb_stats([r(True, 3, 3, 5)])["profit_factor"] is None  # no loss: undefined


def _fill(side: Side, qty: str, price: str, fee: str, fee_asset: str) -> Fill:
    return Fill(venue="a", symbol="BTC/USDT", client_order_id="c", order_id="o",
                trade_id="t", side=side, price=D(price), qty=D(qty), fee=D(fee),
                fee_asset=fee_asset, liquidity="taker", ts_exchange=0, ts_local=0)  # fmt: skip


def test_positions_at_average_cost_by_hand() -> None:
    fills = [
        _fill(Side.BUY, "1", "110", "0.11", "USDT"),  # 2 BTC at 105
        _fill(Side.SELL, "1.5", "120", "0.15", "USDT"),  # realises 1.5 x 15 = 22.5
        _fill(Side.BUY, "0.5", "90", "0.001", "BTC"),  # 1 BTC at 97.5, then 0.999
    ]
    start = {"a": {"BTC": D("1"), "USDT": D("1000")}}
    [pos] = positions(start, ((f, "BTC", "USDT") for f in fills), "USDT",
                      {"BTC": D("100")}, {"BTC": D("100")})  # fmt: skip
    assert pos.qty == D("0.999") and pos.avg_price == D("97.5")
    # -0.11 + 22.5 - 0.15 - 0.001 x 97.5 (the fee taken from the coins, at their cost)
    assert pos.realized == D("22.1425")
    assert pos.unrealized == D("0.999") * D("2.5")
    # the account: cash -110 - 0.11 + 180 - 0.15 - 45 = +24.74; coins 0.999 x 100 - 100
    assert pos.realized + pos.unrealized == D("24.74") + D("-0.1")


def test_a_position_that_crosses_zero_opens_the_rest_at_the_fill() -> None:
    start = {"a": {"BTC": D("0.5")}}
    fills = [_fill(Side.SELL, "1", "110", "0", "USDT"), _fill(Side.BUY, "0.5", "105", "0", "USDT")]
    [pos] = positions(start, ((f, "BTC", "USDT") for f in fills), "USDT",
                      {"BTC": D("100")}, {"BTC": D("104")})  # fmt: skip
    # 0.5 long closed at +10 each, 0.5 short opened at 110 and covered at 105: +2.5
    assert pos.realized == D("7.5") and pos.qty == 0 and pos.unrealized == 0


def test_inventory_drift_keeps_the_largest_excursion_with_its_sign() -> None:
    drift = inventory_drift([{"BTC": 0.1, "ETH": 0.0}, {"BTC": -0.3}, {"BTC": 0.2}])
    assert drift == {"BTC": -0.3, "ETH": 0.0}


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("stats") / "run"
    cfg = parse_config(default_config_path().read_bytes())
    run_backtest(cfg, catalog_path=bundled_sample(), out_dir=out)
    return out


def test_the_sample_summary_carries_statistics_that_agree_with_its_files(
    sample_run: Path,
) -> None:
    run = load_run(sample_run)
    st = run.summary["stats"]
    arbs = pq.read_table(sample_run / "arbs.parquet").to_pandas()
    traded = arbs[(arbs.buy_filled.map(D) > 0) | (arbs.sell_filled.map(D) > 0)]
    assert st["arbs"]["traded"] == len(traded) > 100
    assert st["arbs"]["wins"] == int((traded.realized_pnl > 0).sum())
    equity = pq.read_table(sample_run / "equity.parquet").to_pandas()
    assert st["samples"] == len(equity)
    assert st["return_on_capital"] == pytest.approx(equity.net_pnl.iloc[-1] / st["capital"])
    fills = pq.read_table(sample_run / "fills.parquet").to_pandas()
    notional = sum(D(p) * D(q) for p, q in zip(fills.price, fills.qty, strict=True))
    assert st["filled_notional"] == pytest.approx(float(notional))
    # positions: realised + unrealised = the net PnL (end marks) plus the starting
    # inventory's revaluation from its first mark to its last
    marks = st["marks"]
    drift = sum(
        float(p["qty_start"]) * (marks["end"][p["asset"]] - marks["start"][p["asset"]])
        for p in st["positions"]
    )
    total = sum(p["realized"] + p["unrealized"] for p in st["positions"])
    assert total == pytest.approx(run.summary["pnl"]["net"] + drift, abs=1e-6)
    assert {(p["venue"], p["asset"]) for p in st["positions"]} == {
        ("mexc", "BTC"),
        ("gateio", "BTC"),
    }


def test_the_report_shows_the_statistics(sample_run: Path) -> None:
    html = render_report(load_run(sample_run))
    st = session_stats(load_run(sample_run))
    assert 'id="stats"' in html and "profit factor" in html and "Sortino" in html
    assert f"{st['arbs']['win_rate']:.1%}" in html


def test_min_profit_quote_drops_smaller_opportunities(tmp_path: Path, sample_run: Path) -> None:
    text = default_config_path().read_text()
    assert "min_profit_quote: 0.0" in text
    cfg = parse_config(text.replace("min_profit_quote: 0.0", "min_profit_quote: 60.0").encode())
    run_backtest(cfg, catalog_path=bundled_sample(), out_dir=tmp_path / "run")
    arbs = pq.read_table(tmp_path / "run" / "arbs.parquet").to_pandas()
    base = pq.read_table(sample_run / "arbs.parquet").to_pandas()
    assert len(arbs) > 0 and arbs.expected_pnl.min() >= 60.0
    assert (base.expected_pnl < 60.0).any() and len(arbs) < len(base)


def test_fills_in_another_quote_currency_are_left_out_of_the_positions() -> None:
    eth_btc = Fill(venue="a", symbol="ETH/BTC", client_order_id="c", order_id="o",
                   trade_id="t", side=Side.BUY, price=D("0.05"), qty=D("1"), fee=D("0"),
                   fee_asset="BTC", liquidity="taker", ts_exchange=0, ts_local=0)  # fmt: skip
    held = positions({"a": {"BTC": D("1")}}, [(eth_btc, "ETH", "BTC")], "USDT",
                     {"BTC": D("100")}, {"BTC": D("110")})  # fmt: skip
    assert [(p.asset, p.qty, p.unrealized) for p in held] == [("BTC", D("1"), D("10"))]
